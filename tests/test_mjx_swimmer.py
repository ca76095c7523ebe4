"""MJX Swimmer against gymnasium's Swimmer-v5 (C MuJoCo): open loop and closed loop."""

import gymnasium as gym
import jax
import jax.numpy as jnp
import numpy as np
import pytest

STEPS = 400


@pytest.fixture(scope="module")
def mjx_rollout(mjx_swimmer):
    env = mjx_swimmer

    @jax.jit
    def rollout(qpos, qvel, actions):
        def step(state, action):
            state = env.step(state, action)
            return state, (state.physics.qpos, state.obs, state.reward)

        # full float32 matmuls: a GPU's default (TF32) rounds to ~1e-3 and, measured on an H200,
        # took the 400-step return 0.015 away from C MuJoCo's
        with jax.default_matmul_precision("highest"):
            return jax.lax.scan(step, env.state_from_qpos_qvel(qpos, qvel), actions)[1]

    return rollout


def test_mjx_swimmer_properties(mjx_swimmer):
    env = mjx_swimmer
    assert (env.observation_size, env.action_size, env.episode_length) == (8, 2, 1000)
    assert env.dt == pytest.approx(0.04)
    state = jax.jit(env.reset)(jax.random.PRNGKey(3))
    assert state.obs.shape == (8,) and int(state.steps) == 0 and not bool(state.done)
    assert np.abs(np.asarray(state.physics.qpos)).max() <= 0.1 + 1e-6


def test_open_loop_trajectory_matches_gymnasium(mjx_rollout):
    """Same initial state, same actions: qpos and rewards agree after 400 env steps."""
    gym_env = gym.make("Swimmer-v5")
    gym_env.reset(seed=123)
    sim = gym_env.unwrapped
    qpos0, qvel0 = sim.data.qpos.copy(), sim.data.qvel.copy()
    actions = np.random.default_rng(0).uniform(-1, 1, (STEPS, 2))
    gym_qpos, gym_rewards = [], []
    for a in actions:
        _, r, *_ = gym_env.step(a)
        gym_qpos.append(sim.data.qpos.copy())
        gym_rewards.append(r)
    qpos, obs, rewards = jax.device_get(mjx_rollout(jnp.asarray(qpos0), jnp.asarray(qvel0), jnp.asarray(actions, jnp.float32)))
    max_qpos_error = np.abs(qpos - np.array(gym_qpos)).max()
    return_difference = abs(rewards.sum() - np.sum(gym_rewards))
    print(f"max |qpos error| over {STEPS} steps: {max_qpos_error:.2e}; return difference {return_difference:.2e} "
          f"(return {np.sum(gym_rewards):.3f})")
    # float32 rounding grows along the trajectory (~1e-5 after 100 steps, ~1e-3
    # after 400); the float64 test below shows the dynamics themselves agree.
    assert max_qpos_error < 1e-2
    assert return_difference < 1e-2 * max(1.0, abs(np.sum(gym_rewards)))


def test_warp_open_loop_trajectory_matches_gymnasium():
    """MJX-Warp (``impl="warp"``, float32 only): the same check over 100 env steps, where float32
    rounding stays near 1e-5 (measured: qpos 3.6e-5, return 4.7e-4 apart) and a wrong model or
    integrator would be off by 1e-1 or more. (Full episodes under warp, a closed-loop policy over 8
    per side: 16.1 +- 6.1 vs gymnasium's 17.3 +- 9.8, -0.27 standard errors; docs/backends.md.
    Too slow for this suite on a CPU: MJX-Warp launches its kernels one by one there.)"""
    pytest.importorskip("warp", reason="MJX-Warp comes with the playground extra")
    from pes_rl import envs

    env = envs.make("swimmer", "mjx", impl="warp")
    gym_env = gym.make("Swimmer-v5")
    gym_env.reset(seed=123)
    sim = gym_env.unwrapped
    qpos0, qvel0 = sim.data.qpos.copy(), sim.data.qvel.copy()
    actions = np.random.default_rng(0).uniform(-1, 1, (100, 2))
    gym_qpos, gym_rewards = [], []
    for a in actions:
        _, r, *_ = gym_env.step(a)
        gym_qpos.append(sim.data.qpos.copy())
        gym_rewards.append(r)

    def step(state, action):
        state = env.step(state, action)
        return state, (state.physics.qpos, state.reward)

    start = env.state_from_qpos_qvel(jnp.asarray(qpos0, jnp.float32), jnp.asarray(qvel0, jnp.float32))
    qpos, rewards = jax.device_get(jax.jit(lambda s, a: jax.lax.scan(step, s, a)[1])(start, jnp.asarray(actions, jnp.float32)))
    assert np.abs(qpos - np.array(gym_qpos)).max() < 1e-3
    assert abs(rewards.sum() - np.sum(gym_rewards)) < 1e-2 * max(1.0, abs(np.sum(gym_rewards)))


X64_SCRIPT = """
import jax, jax.numpy as jnp, numpy as np, gymnasium as gym
from pes_rl import envs
env = envs.make("swimmer", "mjx")
g = gym.make("Swimmer-v5"); g.reset(seed=123); sim = g.unwrapped
q0, v0 = sim.data.qpos.copy(), sim.data.qvel.copy()
actions = np.random.default_rng(0).uniform(-1, 1, (400, 2))
ref, ref_r = [], []
for a in actions:
    ref_r.append(g.step(a)[1]); ref.append(sim.data.qpos.copy())
def f(s, a):
    s = env.step(s, a)
    return s, (s.physics.qpos, s.reward)
q, r = jax.jit(lambda: jax.lax.scan(f, env.state_from_qpos_qvel(jnp.asarray(q0), jnp.asarray(v0)), jnp.asarray(actions))[1])()
print(np.abs(np.asarray(q) - np.array(ref)).max(), abs(float(np.sum(r)) - float(np.sum(ref_r))))
"""


def test_open_loop_trajectory_matches_gymnasium_in_float64():
    """With JAX in float64, MJX Swimmer reproduces C MuJoCo to rounding error after 400 env steps."""
    import os
    import subprocess
    import sys

    env = dict(os.environ, JAX_ENABLE_X64="1")
    # -P where this interpreter runs with it: the same pes_rl as here, not the checkout's directory
    safe_path = ["-P"] if sys.flags.safe_path else []
    out = subprocess.run([sys.executable, *safe_path, "-c", X64_SCRIPT], capture_output=True, text=True, env=env, timeout=600)
    assert out.returncode == 0, out.stderr[-2000:]
    qpos_error, return_difference = map(float, out.stdout.split()[-2:])
    print(f"float64: max |qpos error| {qpos_error:.1e}, return difference {return_difference:.1e}")
    assert qpos_error < 1e-9
    assert return_difference < 1e-4  # rewards are stored as float32


def test_closed_loop_policy_has_the_same_mean_return(mjx_swimmer):
    """A fixed linear feedback policy, 8 full episodes per backend with independent
    reset noise: the means agree within 4 standard errors of their difference."""
    from pes_rl.evaluation import evaluate_gymnasium, make_mjx_evaluator

    from pes_rl.agents.normalization import init_normalizer

    w = np.random.default_rng(1).normal(0, 0.5, (2, 8)).astype(np.float32)
    episodes = 8
    evaluate = make_mjx_evaluator(mjx_swimmer, lambda th, o: jnp.clip(th.reshape(2, 8) @ o, -1, 1), False, episodes)
    mjx_returns = np.asarray(evaluate(jnp.asarray(w.ravel()), init_normalizer(8), jax.random.PRNGKey(0)))
    gym_returns = evaluate_gymnasium("swimmer", lambda o: np.clip(o @ w.T, -1, 1), episodes, seed=0, horizon=1000)
    se = np.sqrt(mjx_returns.var(ddof=1) / episodes + gym_returns.var(ddof=1) / episodes)
    diff = mjx_returns.mean() - gym_returns.mean()
    print(f"closed loop: mjx {mjx_returns.mean():.3f} ± {mjx_returns.std():.3f}, gymnasium "
          f"{gym_returns.mean():.3f} ± {gym_returns.std():.3f}, difference {diff:+.3f} ({diff / se:+.2f} SE)")
    assert abs(mjx_returns.mean()) > 1.0, "the test policy should actually swim somewhere"
    assert abs(diff) < 4 * se



def test_line_search_cap_leaves_the_trajectory_bit_identical(mjx_swimmer, mjx_rollout):
    """Capping the solver's line search at LS_ITERATIONS (MJX runs every iteration of the cap under
    vmap) gives the same trajectory, bit for bit, as MuJoCo's 50, in a run that presses both joints
    against their limits; a cap of 1 does not."""
    from pes_rl.envs.mjx_swimmer import LS_ITERATIONS, MjxSwimmer

    assert int(mjx_swimmer.mj_model.opt.ls_iterations) == LS_ITERATIONS < 50
    full = MjxSwimmer(ls_iterations=50)

    @jax.jit
    def full_rollout(qpos, qvel, actions):
        def step(state, action):
            state = full.step(state, action)
            return state, state.physics.qpos
        with jax.default_matmul_precision("highest"):  # as mjx_rollout
            return jax.lax.scan(step, full.state_from_qpos_qvel(qpos, qvel), actions)[1]

    # bang-bang: full torque one way for 25 env steps, then the other (the joints reach their limits)
    sign = np.where((np.arange(STEPS) // 25) % 2 == 0, 1.0, -1.0)[:, None]
    actions = jnp.asarray(sign * np.array([1.0, -1.0]), jnp.float32)
    qpos, qvel = jnp.asarray([0.0, 0.0, 0.05, -0.05, 0.05]), jnp.zeros(5)
    q_capped = np.asarray(mjx_rollout(qpos, qvel, actions)[0])  # compiled already by the tests above
    q_full = np.asarray(full_rollout(qpos, qvel, actions))
    assert (np.abs(q_full[:, 3:]) > 0.99 * np.deg2rad(100)).mean() > 0.05  # the limits are active
    np.testing.assert_array_equal(q_capped, q_full)


# A small RK4 model with what Swimmer's step exercises (slide and hinge joints at their limits,
# motors, fluid forces) that compiles in seconds, where Swimmer's own mjx.step takes ~40 s in CI.
RK4_XML = """
<mujoco>
  <option integrator="RK4" timestep="0.01" viscosity="0.1" density="4000"/>
  <worldbody>
    <body><joint name="slide" type="slide" axis="1 0 0" limited="true" range="-1 1"/>
      <geom type="capsule" fromto="0 0 0 0.3 0 0" size="0.05"/>
      <body pos="0.3 0 0"><joint name="hinge" type="hinge" axis="0 0 1" limited="true" range="-60 60"/>
        <geom type="capsule" fromto="0 0 0 0.3 0 0" size="0.05"/>
      </body>
    </body>
  </worldbody>
  <actuator><motor joint="slide" gear="5"/><motor joint="hinge" gear="3"/></actuator>
</mujoco>"""


def test_rk4_step_and_reset_without_forward_leave_the_step_unchanged():
    """The env step's XLA program holds one copy of ``mjx.forward`` (rk4_step) and reset skips it;
    neither changes a step. rk4_step does MJX's RK4 arithmetic, but XLA fuses the two programs
    differently, so float32 rounding may differ by an ulp: over five physics steps from states
    pressing the joint limits the two agree to float32 rounding (a tableau weight off by 1e-3 is off
    by 6e-5). The float64 test above bounds Swimmer's dynamics. A state made without forward (as
    Swimmer's reset makes it) steps exactly, bit for bit, as one made with it."""
    import mujoco
    from mujoco import mjx

    from pes_rl.envs.mjx_swimmer import check_rk4_step_applies, rk4_step

    mj_model = mujoco.MjModel.from_xml_string(RK4_XML)
    check_rk4_step_applies(mj_model)
    model = mjx.put_model(mj_model)
    ours = jax.jit(lambda d: rk4_step(model, d))
    theirs = jax.jit(lambda d: mjx.step(model, d))
    forward = jax.jit(lambda d: mjx.forward(model, d))  # eager, each of its ops would compile alone
    limit = np.deg2rad(60)
    starts = [([0.99, 0.99 * limit], [1.0, 2.0], [1.0, 1.0]), ([-1.0, -limit], [-0.5, -3.0], [-1.0, -1.0]),
              ([0.2, 0.1], [0.0, 0.0], [0.3, -0.7])]
    for qpos, qvel, ctrl in starts:
        raw = mjx.make_data(model).replace(qpos=jnp.asarray(qpos), qvel=jnp.asarray(qvel), ctrl=jnp.asarray(ctrl))
        data = forward(raw)
        a, b, c = data, data, raw
        for _ in range(5):  # the warm start carried from one step to the next
            a, b, c = ours(a), theirs(b), ours(c)
        assert np.asarray(b._impl.efc_J).size > 0  # the joint-limit constraints are active
        for field in ("qpos", "qvel", "qacc", "qacc_warmstart", "time"):
            x, y = np.asarray(getattr(a, field)), np.asarray(getattr(b, field))
            np.testing.assert_allclose(x, y, rtol=1e-5, atol=1e-5 * np.abs(y).max(), err_msg=field)
            np.testing.assert_array_equal(np.asarray(getattr(c, field)), x, err_msg=f"{field}, without forward")
