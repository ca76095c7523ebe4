"""Config values are typed strictly (files, CLI and API alike), and bad input of any shape gives a
one-line ConfigError or usage error, never another exception. Property-based (hypothesis)."""

import dataclasses
import json
import math
import os
import subprocess
import sys

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import pes_rl
from pes_rl import cli
from pes_rl.config import Config, ConfigError, make_config

FIELDS = [f.name for f in dataclasses.fields(Config)]

json_scalars = st.one_of(
    st.none(), st.booleans(), st.integers(min_value=-(2**70), max_value=2**70),
    st.floats(allow_nan=True, allow_infinity=True), st.text(max_size=12),
    st.sampled_from(["swimmer", "hopper", "Pendulum-v1", "mjx", "gymnasium", "auto", "pes", "nres", "linear", "mlp",
                     "adam", "window", "step", "offset", "none", "64,64", "false", "true", "0", "1e308", ""]),
)
json_values = st.recursive(json_scalars, lambda inner: st.lists(inner, max_size=3)
                           | st.dictionaries(st.text(max_size=5), inner, max_size=3), max_leaves=6)


@settings(max_examples=400, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.dictionaries(st.sampled_from(FIELDS), json_values, max_size=6))
def test_any_json_config_is_accepted_or_refused_in_one_line(fields):
    try:
        config = make_config(**fields)
    except ConfigError as e:
        assert str(e) and "\n" not in str(e)
        return
    # accepted: every field holds its declared type, and no bool slipped in as a number
    for name, value in config.to_dict().items():
        declared = fields.get(name)
        if isinstance(declared, bool):
            assert isinstance(value, bool), (name, value)
        if isinstance(value, float):
            assert math.isfinite(value), (name, value)
    assert config.steps_per_iteration <= config.total_steps


FLAG_VALUES = st.one_of(st.sampled_from(["0", "-1", "1", "3", "1e308", "inf", "nan", "abc", "", "true", "64,64",
                                         "8.7,8", "swimmer", "hopper", "mjx", "gymnasium", "es", "window", "99999999999999999999",
                                         "-K", "--sigma"]), st.text(max_size=8))
FLAGS = ["--env", "--backend", "--agent", "--total-steps", "--seed", "--num-pairs", "--sigma", "--lr", "--lr-end", "-K",
         "-T", "--policy", "--hidden", "--optimizer", "--stagger", "--reset-at", "--eval-every", "--eval-episodes",
         "--eval-backend", "--checkpoint-every", "--log-every", "--run-dir", "--config"]
SWITCHES = ["--normalize-obs", "--no-normalize-obs", "--return-std-scaling", "--capture-video", "--no-progress",
            "--resume", "--overwrite"]


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(st.one_of(st.tuples(st.sampled_from(FLAGS), FLAG_VALUES), st.sampled_from(SWITCHES)), max_size=6))
def test_any_cli_arguments_give_a_config_or_a_one_line_error(tmp_path_factory, tokens):
    argv = ["train"]
    for token in tokens:
        argv += list(token) if isinstance(token, tuple) else [token]
    parser = cli.build_parser()
    try:
        args = parser.parse_args(argv)
    except SystemExit as e:  # argparse's usage error: exit 2 with one line (cli._Parser)
        assert e.code == 2
        return
    try:
        config = cli.config_from_args(args)
    except ConfigError as e:
        assert str(e) and "\n" not in str(e)
        return
    assert isinstance(config, Config)


@pytest.mark.parametrize("fields, field", [
    ({"normalize_obs": "false"}, "normalize_obs"),
    ({"capture_video": "no"}, "capture_video"),
    ({"return_std_scaling": "False"}, "return_std_scaling"),
    ({"normalize_obs": 1}, "normalize_obs"),
    ({"seed": True}, "seed"),
    ({"num_pairs": 2.0}, "num_pairs"),
    ({"hidden": [8.7, 8]}, "hidden"),
    ({"hidden": [8, True]}, "hidden"),
    ({"run_dir": 5}, "run_dir"),
    ({"run_dir": ""}, "run_dir"),
    ({"env": ["swimmer"]}, "env"),
    ({"sigma": 1e308}, "sigma"),
    ({"sigma": "0.1"}, "sigma"),
    ({"lr_end": float("inf")}, "lr_end"),
    ({"lr": float("nan")}, "lr"),
    ({"seed": 2**40}, "seed"),
    ({"horizon": 10**12}, "horizon"),
    ({"num_pairs": 100_000, "total_steps": 8000}, "total_steps"),
])
def test_wrong_types_and_sizes_are_refused(fields, field):
    with pytest.raises(ConfigError, match=field) as error:
        make_config(**fields)
    assert "\n" not in str(error.value)


def test_strings_for_booleans_in_a_config_file_are_refused(tmp_path):
    """Regression: ``"normalize_obs": "false"`` used to turn normalisation *on*."""
    path = tmp_path / "c.json"
    path.write_text(json.dumps({"normalize_obs": "false", "capture_video": "no"}))
    out = subprocess.run([sys.executable, "-m", "pes_rl.cli", "train", "--config", str(path), "--run-dir",
                          str(tmp_path / "r")], capture_output=True, text=True, timeout=300,
                         env={**os.environ, "PYTHONWARNINGS": "ignore"})
    assert out.returncode == 2 and out.stderr.strip().count("\n") == 0 and "normalize_obs" in out.stderr, out.stderr
    assert not (tmp_path / "r").exists()


def test_numpy_scalars_are_accepted_in_the_api():
    config = make_config(sigma=np.float32(0.25), num_pairs=np.int64(3), normalize_obs=np.bool_(True))
    assert type(config.sigma) is float and type(config.num_pairs) is int and config.normalize_obs is True
    assert config.sigma == pytest.approx(0.25)


@pytest.mark.parametrize("bad", [[("env", "swimmer")], "swimmer", 3])
def test_train_refuses_a_config_that_is_not_a_mapping(bad):
    with pytest.raises(ConfigError, match="config must be"):
        pes_rl.train(bad)


def test_env_fn_returning_none_is_one_line():
    with pytest.raises(ValueError, match="env_fn must return a gymnasium.Env") as error:
        pes_rl.train(env="Pendulum-v1", backend="gymnasium", env_fn=lambda: None, num_pairs=1, truncation_length=10,
                     horizon=20, total_steps=100, progress_bar=False)
    assert "\n" not in str(error.value)
