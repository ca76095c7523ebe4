"""The learned-optimizer experiment (scripts/learned_optimizer.py): a smoke run end to end, and the
optimizer MLP's step checked against Adam and for its scale invariance."""

import json
import math
import subprocess
import sys
from pathlib import Path

import numpy as np
from script_modules import load_script

SCRIPT = Path(__file__).resolve().parents[1] / "scripts" / "learned_optimizer.py"


def _script():
    return load_script("learned_optimizer")


def _finite(x) -> bool:
    if isinstance(x, dict):
        return all(_finite(v) for v in x.values())
    if isinstance(x, (list, tuple)):
        return all(_finite(v) for v in x)
    return not isinstance(x, float) or math.isfinite(x)


def test_learned_optimizer_smoke(tmp_path):
    """PES and ES at tiny sizes (TES differs from PES only in the estimator's name): the outputs exist
    and are finite, PES and ES spent the same compute (to within half an ES update, 2N·T steps), and
    the θ from 40 PES updates beats θ₀ (which makes no step) on the meta-loss of held-out inner runs,
    for T and for 2T steps (at seed 0 by about 1.4 nats; a broken estimator, system or optimizer
    leaves it at θ₀'s ln 10)."""
    out = subprocess.run([sys.executable, str(SCRIPT), "--smoke", "--methods", "PES", "ES", "--out", str(tmp_path)],
                         capture_output=True, text=True, timeout=300)
    assert out.returncode == 0, out.stderr
    summary = json.loads((tmp_path / "summary.json").read_text())
    assert _finite(summary)
    assert set(summary["methods"]) == {"PES", "ES"}
    horizon, pairs = summary["settings"]["horizon"], summary["settings"]["num_pairs"]
    methods = {name: per_seed["0"] for name, per_seed in summary["methods"].items()}
    for name, m in methods.items():
        assert len(m["theta"]) == summary["settings"]["theta_size"]
        assert abs(m["inner_steps"] - summary["budget_inner_steps"]) <= pairs * horizon, (name, m["inner_steps"])
        for window in ("eval_T", "eval_2T"):
            assert 0.0 <= m[window]["test_acc"] <= 1.0
    theta0, pes = summary["theta0"], methods["PES"]
    assert abs(theta0["eval_T"]["meta_loss"] - math.log(10)) < 0.2  # no step: the init's loss throughout
    for window in ("eval_T", "eval_2T"):
        assert pes[window]["meta_loss"] < theta0[window]["meta_loss"] - 0.5, window
        assert pes[window]["test_acc"] > theta0[window]["test_acc"] + 0.3, window
    assert summary["adam"]["lr"] in summary["adam"]["grid"]
    rows = (tmp_path / "meta_training.csv").read_text().splitlines()
    assert rows[0] == "method,seed,update,inner_steps,particle_loss,eval_meta_loss"
    assert len(rows) == 1 + sum(m["updates"] for m in methods.values())
    assert (tmp_path / "learned_optimizer.png").stat().st_size > 10_000


def test_linear_path_on_adam_feature_is_adam():
    """θ with only the linear weight on ``m̂_0.9/√v̂`` set to 1 is Adam at step STEP_MULT (β = 0.9, 0.999),
    step for step against optax; the step is a pure function that keeps every tensor's shape."""
    import jax
    import jax.numpy as jnp
    import optax

    lo = _script()
    theta = np.zeros(lo.THETA_SIZE, np.float32)
    theta[lo.THETA_SIZE - lo.FEATURES + 1] = 1.0  # the linear path `a`, on the second feature
    assert float(lo.unpack(jnp.asarray(theta))["a"][1]) == 1.0
    params = lo.init_params(jax.random.PRNGKey(0))
    ours, state = params, lo.opt_init(params)
    adam = optax.adam(lo.STEP_MULT, b1=0.9, b2=0.999, eps=lo.EPS)
    theirs, adam_state = params, adam.init(params)
    step = jax.jit(lo.lopt_step)
    for t in range(5):
        x = jax.random.normal(jax.random.PRNGKey(t + 1), (16, 64))
        y = jnp.arange(16) % 10
        g_ours = jax.grad(lo.cross_entropy)(ours, x, y)
        ours_again, _ = step(jnp.asarray(theta), ours, g_ours, state)  # same inputs, same outputs
        ours, state = step(jnp.asarray(theta), ours, g_ours, state)
        for a, b in zip(ours, ours_again):
            np.testing.assert_array_equal(np.asarray(a), np.asarray(b))
        updates, adam_state = adam.update(jax.grad(lo.cross_entropy)(theirs, x, y), adam_state, theirs)
        theirs = optax.apply_updates(theirs, updates)
        for a, b in zip(ours, theirs):
            assert a.shape == b.shape
            np.testing.assert_allclose(np.asarray(a), np.asarray(b), rtol=1e-4, atol=1e-6)
    assert int(state.t) == 5


def test_features_ignore_gradient_scale():
    """The gradient features are normalised by the running RMS: scaling every gradient by 1000 leaves
    them (and hence the learned step) unchanged, while the raw gradient changes a thousandfold."""
    import jax
    import jax.numpy as jnp

    lo = _script()
    params = lo.init_params(jax.random.PRNGKey(1))
    theta = jnp.asarray(np.random.default_rng(0).normal(size=lo.THETA_SIZE).astype(np.float32))
    results = []
    for scale in (1.0, 1000.0):
        p, state = params, lo.opt_init(params)
        for t in range(3):
            g = [scale * jax.random.normal(jax.random.PRNGKey(10 * t + i), q.shape) for i, q in enumerate(p)]
            p, state = lo.lopt_step(theta, p, g, state)
        f = lo.features(p[0], g[0], state.m_fast[0], state.m_slow[0], state.v[0], state.t)
        assert f.shape == p[0].shape + (lo.FEATURES,)
        results.append((p, f))
    (p1, f1), (p2, f2) = results
    np.testing.assert_allclose(np.asarray(f1), np.asarray(f2), rtol=1e-3, atol=1e-4)
    for a, b in zip(p1, p2):
        np.testing.assert_allclose(np.asarray(a), np.asarray(b), rtol=1e-3, atol=1e-5)
