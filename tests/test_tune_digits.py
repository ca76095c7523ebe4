"""The digits hyperparameter experiment (scripts/tune_digits.py) runs end to end in smoke mode."""

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
from script_modules import load_script

SCRIPT = Path(__file__).resolve().parents[1] / "scripts" / "tune_digits.py"
METHODS = {"PES", "TES", "ES", "random"}


def test_tune_digits_smoke(tmp_path):
    """Both experiments, every method, one seed: the outputs exist, every reported accuracy is a
    fraction, every method spent the same compute (to within half an ES update or one trial), and PES's
    final θ beats the box centre it started from on the meta-objective (by 0.05 to 0.18 at seed 0;
    a broken estimator, system or evaluation leaves it at or above the start)."""
    out = subprocess.run([sys.executable, str(SCRIPT), "--smoke", "--out", str(tmp_path)],
                         capture_output=True, text=True, timeout=600)
    assert out.returncode == 0, out.stderr
    results = json.loads((tmp_path / "results.json").read_text())
    assert set(results["experiments"]) == {"schedule", "many"}
    for name, exp in results["experiments"].items():
        assert len(exp["theta_names"]) == (2 if name == "schedule" else 21)
        methods = exp["seeds"]["0"]
        assert set(methods) == METHODS
        horizon = results["settings"]["horizon"]
        for method, r in methods.items():
            assert len(r["theta"]) == len(exp["theta_names"])
            for key in ("val_acc", "test_acc"):
                assert 0.0 <= r[key] <= 1.0, (name, method, key, r[key])
                assert all(0.0 <= v <= 1.0 for v in r["curve"][key])
            # ES spends 2N·T per update and random search T per trial: equal to within half a unit
            slack = results["settings"]["num_pairs"] * horizon if method == "ES" else horizon
            assert abs(r["inner_steps"] - exp["budget_inner_steps"]) <= slack, (name, method, r["inner_steps"])
        for r in (exp["start"], *methods.values()):
            # training helps: the last step's error sits below the run's mean error (a flipped metric inverts this)
            assert 1.0 - r["val_acc"] < r["mean_val_error"], (name, r)
        assert methods["PES"]["mean_val_error"] < exp["start"]["mean_val_error"] - 0.02, name
        assert methods["PES"]["val_acc"] > exp["start"]["val_acc"], name
    assert "| PES |" in (tmp_path / "summary.md").read_text()
    assert (tmp_path / "curves.png").stat().st_size > 10_000


def _script():
    return load_script("tune_digits")


def test_error_rate_counts_mistakes_and_divergence():
    """The meta-loss against numpy: a net that always answers class c errs on every label that is not c,
    and one with a non-finite weight errs everywhere."""
    import jax.numpy as jnp

    td = _script()
    data = td.load_split()
    assert (data.x_train.shape[0], data.x_val.shape[0], data.x_test.shape[0]) == (1078, 359, 360)
    params = [jnp.zeros((a, b)) if i % 2 == 0 else jnp.zeros(b)
              for a, b in zip(td.SIZES[:-1], td.SIZES[1:]) for i in (0, 1)]
    params[-1] = params[-1].at[3].set(1.0)  # output bias: always class 3
    expected = 1.0 - np.mean(np.asarray(data.y_val) == 3)
    assert abs(float(td.error_rate(params, data.x_val, data.y_val)) - expected) < 1e-6
    params[0] = params[0].at[0, 0].set(jnp.nan)
    assert float(td.error_rate(params, data.x_val, data.y_val)) == 1.0
