"""MuJoCo Playground's DM Control suite on the mjx backend (the ``playground`` extra).

CartpoleBalance stands in for the suite: it compiles in seconds on a CPU, where the contact-rich
tasks take about two minutes."""

import os
import subprocess
import sys

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import pes_rl
from pes_rl import envs
from pes_rl.config import ConfigError, make_config

pytest.importorskip("mujoco_playground", reason="the playground extra is not installed")

TASK = "CartpoleBalance"


@pytest.fixture(scope="module")
def cartpole():
    return envs.make(TASK, "mjx", episode_length=5, impl="jax")


def test_names_are_the_whole_dm_control_suite():
    from mujoco_playground import dm_control_suite

    assert sorted(envs.PLAYGROUND_NAMES) == sorted(dm_control_suite.ALL_ENVS)
    assert set(envs.PLAYGROUND_NAMES) <= set(envs.MJX_NAMES)
    assert not set(envs.PLAYGROUND_NAMES) & set(envs.ENV_NAMES)  # ENV_NAMES: the tasks of both backends


def test_steps_as_playground_does_with_our_time_limit(cartpole):
    """Observations and rewards are Playground's own for the same key and actions; ``done``
    comes from our time limit (T = 5 here), not from Playground."""
    from mujoco_playground import dm_control_suite

    raw = dm_control_suite.load(TASK, config_overrides={"impl": "jax"})
    assert (cartpole.observation_size, cartpole.action_size, cartpole.impl) == (5, 1, "jax")
    np.testing.assert_array_equal(cartpole.action_low, [-1.0])
    key = jax.random.PRNGKey(7)
    ours, theirs = jax.jit(cartpole.reset)(key), jax.jit(raw.reset)(key)
    np.testing.assert_array_equal(ours.obs, theirs.obs)
    step, raw_step = jax.jit(cartpole.step), jax.jit(raw.step)
    for t, a in enumerate([0.5, -1.0, 0.3, 1.0, -0.2]):
        action = jnp.array([a])
        ours, theirs = step(ours, action), raw_step(theirs, action)
        np.testing.assert_array_equal(ours.obs, theirs.obs)
        assert ours.reward.dtype == jnp.float32 and float(ours.reward) == pytest.approx(float(theirs.reward))
        assert bool(ours.done) == (t == 4) and not bool(ours.terminated)
    # actions outside [-1, 1] are clipped, as for Brax's tasks
    np.testing.assert_array_equal(step(ours, jnp.array([5.0])).obs, step(ours, jnp.array([1.0])).obs)


def test_warp_steps_as_jax_does(cartpole):
    """MJX-Warp and MJX's jax implementation step the same physics (float32, 5 steps)."""
    warp = envs.make(TASK, "mjx", episode_length=5, impl="warp")
    assert warp.impl == "warp"
    key = jax.random.PRNGKey(3)
    a, b = jax.jit(cartpole.reset)(key), jax.jit(warp.reset)(key)
    np.testing.assert_allclose(a.obs, b.obs, atol=1e-5)
    step_jax, step_warp = jax.jit(cartpole.step), jax.jit(warp.step)  # compiled once each
    for _ in range(5):
        a, b = step_jax(a, jnp.array([0.7])), step_warp(b, jnp.array([0.7]))
    np.testing.assert_allclose(a.obs, b.obs, atol=1e-3)
    assert float(a.reward) == pytest.approx(float(b.reward), abs=1e-3)


def test_backend_and_impl_choices():
    """auto means mjx for a Playground task; gymnasium and impls it lacks are one-line errors."""
    assert envs.resolve_backend("auto", TASK) == envs.resolve_backend("mjx", TASK) == "mjx"
    with pytest.raises(ValueError, match="backend must be auto or mjx for env 'CartpoleBalance'"):
        envs.make(TASK, "gymnasium")
    with pytest.raises(ConfigError, match="eval_backend must be auto or mjx"):
        make_config(env=TASK, eval_backend="gymnasium")
    with pytest.raises(ConfigError, match="mjx_impl must be jax or unset for env 'hopper'"):
        make_config(env="hopper", mjx_impl="warp")
    with pytest.raises(ValueError, match="impl must be one of jax, warp"):
        envs.make(TASK, "mjx", impl="cuda")


def test_default_impl_is_jax_on_a_cpu_and_playgrounds_on_an_accelerator(monkeypatch):
    assert envs.make(TASK, "mjx").impl == "jax"  # this machine: a CPU
    monkeypatch.setattr(envs, "accelerator_available", lambda: True)
    assert [envs.default_impl(n) for n in (TASK, "swimmer", "hopper")] == ["warp", "jax", "jax"]
    monkeypatch.setattr(envs, "warp_installed", lambda: False)  # a GPU machine without warp-lang
    assert envs.default_impl(TASK) == "jax"


def test_without_the_extra_the_error_says_how_to_install(tmp_path):
    """With mujoco_playground unimportable, `pes-rl train --env CheetahRun` fails in one line
    naming the extra, and so does envs.make."""
    hide = tmp_path / "sitecustomize.py"  # runs at interpreter start: make the package unimportable
    hide.write_text("import sys\nsys.modules['mujoco_playground'] = None\n")
    env = dict(os.environ, PYTHONPATH=str(tmp_path), PYTHONWARNINGS="ignore")
    out = subprocess.run([sys.executable, "-m", "pes_rl", "train", "--env", "CheetahRun", "--no-progress"],
                         capture_output=True, text=True, timeout=300, env=env)
    assert out.returncode == 2, out.stderr
    assert 'pip install -e ".[playground]"' in out.stderr and "Traceback" not in out.stderr
    code = "from pes_rl import envs\ntry:\n    envs.make('CheetahRun', 'mjx')\nexcept ImportError as e:\n    print(e)\n"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=300, env=env)
    assert 'pip install -e ".[playground]"' in out.stdout, out.stderr


@pytest.mark.filterwarnings("ignore:os.fork\\(\\) was called:RuntimeWarning")
def test_train_resume_eval_and_record(tmp_path):
    """A Playground task through the whole tool: PES training with persistent particles and
    staggering, a checkpoint of every particle's Playground state that a resumed run loads and
    continues from (bit-identical resumes are tested on MJX Swimmer, test_reliability.py: the same
    particle loop and checkpoint code), `pes-rl eval` and `pes-rl record`."""
    common = dict(env=TASK, mjx_impl="jax", seed=2, num_pairs=2, truncation_length=10, horizon=30, eval_every=0,
                  eval_episodes=2, progress_bar=False, checkpoint_every=1)
    part = pes_rl.train(total_steps=120, run_dir=str(tmp_path / "full"), **common)
    assert part.config.backend == "auto" and part.env_steps == 120
    resumed = pes_rl.train(total_steps=200, run_dir=str(tmp_path / "full"), resume=True, **common)
    assert resumed.env_steps == 200 and resumed.metrics[0]["env_steps"] > 120  # continued, not restarted
    assert np.isfinite(resumed.final_eval_return)

    env = dict(os.environ, PYTHONWARNINGS="ignore")
    out = subprocess.run([sys.executable, "-m", "pes_rl", "eval", "--run-dir", str(tmp_path / "full"), "--episodes",
                          "2"], capture_output=True, text=True, timeout=600, env=env)
    assert out.returncode == 0, out.stderr
    assert out.stdout.startswith(f"{TASK} on mjx: mean return")
    video = tmp_path / "cartpole.mp4"
    out = subprocess.run([sys.executable, "-m", "pes_rl", "record", "--run-dir", str(tmp_path / "full"), "--out",
                          str(video), "--width", "64", "--height", "48", "--no-progress"],
                         capture_output=True, text=True, timeout=600, env=env)
    assert out.returncode == 0, out.stderr
    assert "31 frames" in out.stdout and video.stat().st_size > 0


def test_benchmark_tasks_trains_and_evaluates_a_playground_task_on_mjx():
    """scripts/benchmark_tasks.py's run of a DM Control task: its preset, on mjx, evaluated there
    (gymnasium has no such task), with the asked implementation; a gymnasium task keeps its
    gymnasium evaluations. (Training itself is the preset test's and the train test's.)"""
    from script_modules import load_script

    bench = load_script("benchmark_tasks")
    config = bench.task_config("CartpoleSwingup", "nres", 5, 5_000_000, 250_000, 5, "gymnasium", "jax")
    assert (config.env, config.agent, config.backend, config.eval_backend, config.mjx_impl) == (
        "CartpoleSwingup", "nres", "mjx", None, "jax")
    assert (config.policy, config.num_pairs) == ("mlp", 16)  # the task's preset
    assert config.eval_every == round(250_000 / config.steps_per_iteration)
    hopper = bench.task_config("hopper", "pes", 5, 1_500_000, 20_000, 1, "gymnasium")
    assert (hopper.backend, hopper.eval_backend) == ("gymnasium", "gymnasium")
    assert "CartpoleSwingup" in bench.BUDGETS


def test_training_under_mjx_warp_resets_particles(tmp_path):
    """MJX-Warp keeps its contact pool for the whole batch: the particle loop's resets (and the
    stagger's burn-in) merge states with ``select_states``, which leaves those fields alone, so
    training runs across many episode ends (T = 30, K = 10) and resumes from its checkpoint."""
    common = dict(env=TASK, mjx_impl="warp", seed=1, num_pairs=2, truncation_length=10, horizon=30, eval_every=0,
                  eval_episodes=1, progress_bar=False, checkpoint_every=1)
    pes_rl.train(total_steps=120, run_dir=str(tmp_path / "run"), **common)
    result = pes_rl.train(total_steps=240, run_dir=str(tmp_path / "run"), resume=True, **common)
    assert result.env_steps == 240 and np.all(np.isfinite(result.flat_params))
    assert sum(m["resets"] for m in result.metrics) > 0



def test_playground_programs_are_compiled_with_cpu_fast_math(cartpole):
    """On the CPU a Playground env asks for XLA's fast-math (SwimmerSwimmer6 steps ~100x faster with
    it); our MJX Swimmer asks for nothing. (That every program stepping an env carries its options:
    test_compiler_options.py.)"""
    assert envs.compiler_options(cartpole) == envs.base.CPU_FAST_MATH
    assert envs.compiler_options(envs.make("swimmer", "mjx")) is None


def test_cpu_fast_math_leaves_the_physics_unchanged(cartpole):
    """The fast-math options change rounding only: 30 steps of CartpoleBalance under a fixed
    open-loop action sequence give the same observations and rewards to float32 precision."""
    key = jax.random.PRNGKey(4)
    actions = jnp.sin(jnp.arange(30.0))[:, None]

    def rollout(state):
        def step(state, action):
            state = cartpole.step(state, action)
            return state, (state.obs, state.reward)
        return jax.lax.scan(step, state, actions)[1]

    state = jax.jit(cartpole.reset)(key)
    plain = jax.jit(rollout)(state)
    fast = jax.jit(rollout, compiler_options=envs.base.CPU_FAST_MATH)(state)
    np.testing.assert_allclose(fast[0], plain[0], rtol=1e-4, atol=1e-5)
    np.testing.assert_allclose(fast[1], plain[1], rtol=1e-4, atol=1e-5)


def test_reset_states_are_typed_as_stepped_ones():
    """A reset state has the avals (shapes, dtypes, weak types) of a stepped one, so the PES chunk
    that takes reset particles first and its own output later compiles once. CheetahRun's own reset
    leaves ``data.time`` weakly typed."""
    env = envs.make("CheetahRun", "mjx", impl="jax")
    reset = jax.eval_shape(env.reset, jax.random.PRNGKey(0))
    stepped = jax.eval_shape(env.step, reset, jnp.zeros(env.action_size))
    avals = lambda tree: [(x.shape, x.dtype, x.weak_type) for x in jax.tree_util.tree_leaves(tree)]  # noqa: E731
    assert jax.tree_util.tree_structure(reset) == jax.tree_util.tree_structure(stepped)
    assert avals(reset) == avals(stepped)
