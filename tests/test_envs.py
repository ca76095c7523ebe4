"""The environment layer: make(), the gymnasium batch, the Brax tasks on mjx."""

import jax
import numpy as np
import pytest

from pes_rl import envs
from pes_rl.envs.base import BatchedEnv, JaxEnv


def test_unknown_env_and_backend_name_the_choices():
    with pytest.raises(ValueError, match="backend must be one of auto, mjx, gymnasium"):
        envs.make("swimmer", backend="cuda")
    with pytest.raises(ValueError, match="env must be one of swimmer, ant"):
        envs.make("swimer", backend="gymnasium")
    with pytest.raises(ValueError, match="env must be one of swimmer, ant.*on backend mjx"):
        envs.make("Pendulum-v1", backend="mjx")


def test_auto_backend_is_gymnasium_on_cpu():
    assert jax.default_backend() == "cpu"
    assert envs.resolve_backend("auto") == "gymnasium"
    env = envs.make("swimmer", num_envs=2)
    assert isinstance(env, BatchedEnv) and env.backend == "gymnasium"
    env.close()


def test_discrete_action_space_is_rejected_with_a_clear_error():
    with pytest.raises(ValueError, match="Box action space"):
        envs.make("CartPole-v1", backend="gymnasium")


def test_gymnasium_batch_pairs_reset_alike_and_masked_resets_leave_others():
    env = envs.make("swimmer", "gymnasium", num_envs=4, episode_length=5)
    assert (env.observation_size, env.action_size, env.episode_length, env.dt) == (8, 2, 5, pytest.approx(0.04))
    obs = env.reset(np.array([7, 8, 7, 8]))
    np.testing.assert_array_equal(obs[0], obs[2])
    np.testing.assert_array_equal(obs[1], obs[3])
    assert not np.allclose(obs[0], obs[1])
    for t in range(5):
        obs, reward, terminated, truncated = env.step(np.full((4, 2), 0.3))
    assert truncated.all() and not terminated.any(), "the time limit ends Swimmer, never termination"
    before = obs.copy()
    after = env.reset(np.array([7, 0, 0, 0]), mask=np.array([True, False, False, False]))
    np.testing.assert_array_equal(after[1:], before[1:])
    np.testing.assert_array_equal(after[0], env.reset(np.array([7, 8, 7, 8]))[2])
    env.close()


def test_any_registered_box_gymnasium_id_works():
    env = envs.make("Pendulum-v1", "gymnasium", num_envs=2, episode_length=200)
    assert (env.observation_size, env.action_size) == (3, 1)
    np.testing.assert_allclose(env.action_high, [2.0])
    env.reset(np.array([0, 1]))
    obs, reward, term, trunc = env.step(np.zeros((2, 1)))
    assert obs.shape == (2, 3) and reward.shape == (2,)
    env.close()


def test_gymnasium_state_roundtrip_is_exact():
    env = envs.make("hopper", "gymnasium", num_envs=2)
    env.reset(np.array([1, 2]))
    rng = np.random.default_rng(0)
    for _ in range(3):
        env.step(rng.uniform(-1, 1, (2, 3)))
    saved = env.get_state()
    actions = rng.uniform(-1, 1, (5, 2, 3))
    first = [env.step(a) for a in actions]
    env.set_state(saved)
    second = [env.step(a) for a in actions]
    for a, b in zip(first, second):
        for x, y in zip(a, b):
            np.testing.assert_array_equal(x, y)
    env.close()


def test_brax_hopper_line_search_cap_leaves_the_trajectory_bit_identical():
    """Hopper's line-search cap (envs.brax_tasks.LS_ITERATIONS) gives the trajectories of MuJoCo's 50
    bit for bit, through falls and floor contacts; a cap of 2 does not."""
    from pes_rl.envs.brax_tasks import LS_ITERATIONS, BraxEnv

    capped, full = BraxEnv("hopper"), BraxEnv("hopper", ls_iterations=50)
    assert int(capped.brax_env.sys.opt.ls_iterations) == LS_ITERATIONS["hopper"] < 50
    n, steps = 32, 300
    keys = jax.random.split(jax.random.PRNGKey(0), n)
    actions = jax.random.uniform(jax.random.PRNGKey(1), (steps, n, capped.action_size), minval=-1, maxval=1)

    def positions(env):
        b = env.brax_env
        step = lambda s, a: (jax.vmap(b.step)(s, a), s.pipeline_state.q)  # noqa: E731
        return np.asarray(jax.jit(lambda k: jax.lax.scan(step, jax.vmap(b.reset)(k), actions)[1])(keys))

    q_capped, q_full = positions(capped), positions(full)
    assert q_full[:, :, 1].min() < 0.7  # fallen: below Hopper's healthy height, on the floor
    np.testing.assert_array_equal(q_capped, q_full)


# Brax's tasks are kept for comparisons (hopper steps in the line-search test above): one by its
# brax_ name, one Brax-only short name of each kind (contacts, a reaching arm)
BRAX_TASKS = ["brax_walker2d", "ant", "reacher"]


@pytest.mark.parametrize("name", BRAX_TASKS)
def test_brax_task_resets_and_steps_on_mjx(name):
    env = envs.make(name, "mjx", episode_length=3)
    assert isinstance(env, JaxEnv) and env.backend == "mjx"
    # reset and stepped states alike (Brax steps ``done`` weakly typed): a program fed both compiles once
    reset = jax.eval_shape(env.reset, jax.random.PRNGKey(0))
    stepped = jax.eval_shape(env.step, reset, jax.numpy.zeros(env.action_size))
    assert [(x.shape, x.dtype, x.weak_type) for x in jax.tree_util.tree_leaves(reset)] == [
        (x.shape, x.dtype, x.weak_type) for x in jax.tree_util.tree_leaves(stepped)]

    @jax.jit
    def rollout(key):
        keys = jax.random.split(key, 2)
        state = jax.vmap(env.reset)(keys)
        actions = jax.random.uniform(key, (3, 2, env.action_size), minval=-1, maxval=1)

        def step(s, a):
            s = jax.vmap(env.step)(s, a)
            return s, (s.obs, s.reward, s.done, s.terminated, s.steps)

        return state, jax.lax.scan(step, state, actions)[1]

    state, (obs, reward, done, terminated, steps) = rollout(jax.random.PRNGKey(0))
    assert state.obs.shape == (2, env.observation_size)
    assert obs.shape == (3, 2, env.observation_size) and reward.shape == (3, 2)
    assert np.isfinite(np.asarray(obs)).all() and np.isfinite(np.asarray(reward)).all()
    np.testing.assert_array_equal(np.asarray(steps)[:, 0], [1, 2, 3])
    assert bool(np.asarray(done)[-1].all()), "the 3-step time limit ends every episode"
    assert not bool(np.asarray(done)[0].any() & ~np.asarray(terminated)[0].any())
    assert env.dt > 0 and env.action_size > 0
