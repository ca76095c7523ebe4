"""Gymnasium's Hopper, Walker2d and HalfCheetah on MJX (pes_rl.envs.mjx_gymnasium) against gymnasium's
``-v5`` classes on C MuJoCo: step for step in float64, and in distribution under a fixed policy."""

import json
import os
import subprocess
import sys

import gymnasium as gym
import jax
import jax.numpy as jnp
import numpy as np
import pytest
from pes_rl import envs
from pes_rl.envs.base import JaxEnv

PORTED = ["hopper", "walker2d", "halfcheetah"]

# In float64, from gymnasium's own initial state and with the same actions: per env step, the largest
# observation and reward differences, and whether the terminations agree. Contacts make HalfCheetah
# chaotic: rounding differences of 1e-15 grow tenfold every ~3 env steps (measured: 3e-13 at step 5,
# 3e-10 at 15, 4e-4 at 55, 3 at 95), so each task is compared over the steps given.
X64_SCRIPT = """
import json, sys
import jax, jax.numpy as jnp, numpy as np, gymnasium as gym
from pes_rl import envs
out = {}
for name, steps in json.loads(sys.argv[1]).items():
    env = envs.make(name, "mjx")
    g = gym.make(envs.gymnasium_id(name)); g.reset(seed=5); sim = g.unwrapped
    q0, v0 = sim.data.qpos.copy(), sim.data.qvel.copy()
    actions = np.random.default_rng(0).uniform(-1, 1, (steps, env.action_size))
    ref_obs, ref_rew, ref_term = [], [], []
    for a in actions:
        o, r, term, _, _ = g.step(a)
        ref_obs.append(o); ref_rew.append(r); ref_term.append(term)
        if term:
            break
    n = len(ref_rew)
    def f(s, a):
        s = env.step(s, a)
        return s, (s.obs, s.reward, s.terminated)
    start = env.state_from_qpos_qvel(jnp.asarray(q0), jnp.asarray(v0))
    obs, rew, term = jax.device_get(jax.jit(lambda: jax.lax.scan(f, start, jnp.asarray(actions[:n]))[1])())
    out[name] = dict(steps=n, obs=float(np.abs(obs - np.array(ref_obs)).max()),
                     reward=float(np.abs(rew - np.array(ref_rew)).max()),
                     terminated=[bool(t) for t in term] == ref_term, ended=bool(ref_term[-1]))
print(json.dumps(out))
"""


def test_ports_follow_gymnasium_step_for_step_in_float64():
    """Hopper and Walker2d until they fall (gymnasium's termination at the same step), HalfCheetah over
    its first 10 env steps: observations agree to rounding error, rewards to float32's."""
    steps = {"hopper": 200, "walker2d": 200, "halfcheetah": 10}
    env = dict(os.environ, JAX_ENABLE_X64="1")
    # -P where this interpreter runs with it: the same pes_rl as here, not the checkout's directory
    safe_path = ["-P"] if sys.flags.safe_path else []
    # one process per task, all at once: each spends most of its time compiling, on one core
    procs = {name: subprocess.Popen([sys.executable, *safe_path, "-c", X64_SCRIPT, json.dumps({name: n})],
                                    stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env)
             for name, n in steps.items()}
    result = {}
    for name, proc in procs.items():
        stdout, stderr = proc.communicate(timeout=900)
        assert proc.returncode == 0, stderr[-2000:]
        result.update(json.loads(stdout.strip().splitlines()[-1]))
    print(result)
    for name in ("hopper", "walker2d"):
        assert result[name]["ended"] and result[name]["steps"] > 10, "the random actions should topple it"
    for name, r in result.items():
        assert r["terminated"], name
        assert r["obs"] < 1e-9, name
        assert r["reward"] < 1e-5, name  # rewards are stored as float32


@pytest.mark.parametrize("name", PORTED)
def test_port_matches_gymnasium_in_distribution(name):
    """A fixed linear feedback policy, 16 episodes of up to 200 steps per side (Hopper and Walker2d
    fall before that; the mjx evaluator scans every step of the limit, so a short limit keeps this
    quick) with independent reset noise and float32 physics: the mean returns agree within 3
    standard errors of their difference. Also the
    port's shape: gymnasium's sizes and bounds, and reset states typed as stepped ones (a program
    fed both compiles once)."""
    from pes_rl.agents.normalization import init_normalizer
    from pes_rl.evaluation import evaluate_gymnasium, make_mjx_evaluator

    horizon = 200
    env = envs.make(name, "mjx", episode_length=horizon)
    gym_env = gym.make(envs.gymnasium_id(name))
    assert isinstance(env, JaxEnv) and env.backend == "mjx"
    assert (env.observation_size, env.action_size) == (gym_env.observation_space.shape[0], gym_env.action_space.shape[0])
    np.testing.assert_array_equal(env.action_low, gym_env.action_space.low)
    assert env.dt == pytest.approx(gym_env.unwrapped.dt)
    reset = jax.eval_shape(env.reset, jax.random.PRNGKey(0))
    stepped = jax.eval_shape(env.step, reset, jnp.zeros(env.action_size))
    assert [(x.shape, x.dtype, x.weak_type) for x in jax.tree_util.tree_leaves(reset)] == [
        (x.shape, x.dtype, x.weak_type) for x in jax.tree_util.tree_leaves(stepped)]

    # reset noise: the spread of 256 initial states per side (HalfCheetah draws qvel from a normal,
    # the others from a uniform: their standard deviations differ by sqrt(3))
    starts = jax.vmap(env.reset)(jax.random.split(jax.random.PRNGKey(1), 256)).physics
    sim = gym_env.unwrapped
    gym_starts = [gym_env.reset(seed=seed) and (sim.data.qpos.copy(), sim.data.qvel.copy()) for seed in range(256)]
    for ours, theirs in ((starts.qpos, [q for q, _ in gym_starts]), (starts.qvel, [v for _, v in gym_starts])):
        ratio = np.asarray(ours).std(axis=0).mean() / np.array(theirs).std(axis=0).mean()
        assert 0.85 < ratio < 1.15, ratio
        np.testing.assert_allclose(np.asarray(ours).mean(axis=0), np.array(theirs).mean(axis=0), atol=0.02)

    n_obs, n_act = env.observation_size, env.action_size
    w = np.random.default_rng(1).normal(0, 0.3, (n_act, n_obs)).astype(np.float32)
    episodes = 16
    evaluate = make_mjx_evaluator(env, lambda th, o: jnp.clip(th.reshape(n_act, n_obs) @ o, -1, 1), False, episodes)
    mjx_returns = np.asarray(evaluate(jnp.asarray(w.ravel()), init_normalizer(n_obs), jax.random.PRNGKey(0)))
    gym_returns = evaluate_gymnasium(name, lambda o: np.clip(o @ w.T, -1, 1), episodes, seed=0, horizon=horizon)
    se = np.sqrt(mjx_returns.var(ddof=1) / episodes + gym_returns.var(ddof=1) / episodes)
    diff = mjx_returns.mean() - gym_returns.mean()
    print(f"{name}: mjx {mjx_returns.mean():.2f} ± {mjx_returns.std():.2f}, gymnasium {gym_returns.mean():.2f} ± "
          f"{gym_returns.std():.2f}, difference {diff:+.2f} ({diff / se:+.2f} SE)")
    assert se > 0 and abs(diff) < 3 * se


def test_brax_tasks_keep_their_names_on_mjx_only():
    """On mjx the ported short names are gymnasium's tasks and ``brax_NAME`` is Brax's; Brax's names
    are refused on the gymnasium backend with the reason."""
    from pes_rl.envs.brax_tasks import BraxEnv
    from pes_rl.envs.mjx_gymnasium import MjxGymnasiumEnv

    assert isinstance(envs.make("hopper", "mjx"), MjxGymnasiumEnv)
    brax_hopper = envs.make("brax_hopper", "mjx")
    assert isinstance(brax_hopper, BraxEnv) and brax_hopper.name == "brax_hopper"
    assert envs.resolve_backend("auto", "brax_ant") == "mjx"
    with pytest.raises(ValueError, match="backend must be auto or mjx for env 'brax_ant' .Brax's task runs on mjx only"):
        envs.make("brax_ant", "gymnasium")
