"""The threaded C-MuJoCo batch equals plain gymnasium, step for step."""

import gymnasium as gym
import numpy as np
import pytest

import envs
from envs.gymnasium_backend import GymnasiumBatchedEnv
from envs.mujoco_threaded import ThreadedMujocoEnv

TOL = dict(rtol=1e-9, atol=1e-9)


@pytest.mark.parametrize("env_id,steps,horizon", [("Swimmer-v5", 1100, 500), ("Hopper-v5", 400, 1000)])
def test_equals_gymnasium_steps(env_id, steps, horizon):
    """Same seeds, same actions: identical obs, rewards, terminations and time-limit
    truncations, with resets (seeded per member) whenever an episode ends; part of
    the batch is masked out on some steps."""
    num = 5
    batch = ThreadedMujocoEnv(env_id, num, episode_length=horizon, num_threads=2)
    refs = [gym.make(env_id, max_episode_steps=horizon) for _ in range(num)]
    rng = np.random.default_rng(0)
    seeds = rng.integers(0, 2**31, size=num)
    obs = batch.reset(seeds)
    ref_obs = np.stack([env.reset(seed=int(s))[0] for env, s in zip(refs, seeds)])
    np.testing.assert_allclose(obs, ref_obs, **TOL)
    ends = 0
    for t in range(steps):
        actions = rng.uniform(-1.2, 1.2, size=(num, batch.action_size))  # beyond the bounds: clamped by MuJoCo
        mask = rng.random(num) < 0.8 if t % 7 == 3 else np.ones(num, bool)
        obs, reward, terminated, truncated = batch.step(actions, mask)
        for i in np.flatnonzero(mask):
            o, r, term, trunc, _ = refs[i].step(actions[i])
            np.testing.assert_allclose(obs[i], o, **TOL, err_msg=f"obs, member {i}, step {t}")
            np.testing.assert_allclose(reward[i], r, **TOL)
            assert (terminated[i], truncated[i]) == (term, trunc), (i, t)
        assert not reward[~mask].any()
        done = (terminated | truncated) & mask
        if done.any():
            ends += int(done.sum())
            new = rng.integers(0, 2**31, size=num)
            obs = batch.reset(new, mask=done)
            for i in np.flatnonzero(done):
                np.testing.assert_allclose(obs[i], refs[i].reset(seed=int(new[i]))[0], **TOL)
    assert ends >= num  # episodes really ended and were reset (time limit / falling)


def test_state_copy_and_restore():
    batch = ThreadedMujocoEnv("Swimmer-v5", 4, episode_length=1000, num_threads=2)
    batch.reset(np.arange(4))
    actions = np.full((4, batch.action_size), 0.5)
    for _ in range(10):
        batch.step(actions)
    saved = batch.get_state()
    after = batch.step(actions)[0]
    batch.set_state(saved)
    np.testing.assert_array_equal(batch.step(actions)[0], after)
    obs = batch.copy_members(np.array([0, 1]), np.array([2, 3]))
    np.testing.assert_array_equal(obs[2:], obs[:2])
    np.testing.assert_array_equal(batch.step(actions)[0][2:], batch.get_state()["obs"][:2])


def test_make_uses_threads_for_supported_ids_only():
    assert isinstance(envs.make("swimmer", "gymnasium", num_envs=2), ThreadedMujocoEnv)
    assert isinstance(envs.make("Pendulum-v1", "gymnasium", num_envs=2), GymnasiumBatchedEnv)
    assert isinstance(envs.make("halfcheetah", "gymnasium", num_envs=2), GymnasiumBatchedEnv)
    # A user's factory (own wrappers) always keeps gymnasium's own stepping.
    custom = envs.make("swimmer", "gymnasium", num_envs=2, env_fn=lambda: gym.make("Swimmer-v5"))
    assert isinstance(custom, GymnasiumBatchedEnv)
    assert isinstance(envs.make("swimmer", "gymnasium", num_envs=2, threaded=False), GymnasiumBatchedEnv)


def test_open_loop_replays_the_closed_loop_steps():
    """The benchmark's C MuJoCo limit replays recorded controls: it must reproduce the stepped states."""
    batch = ThreadedMujocoEnv("Swimmer-v5", 3, episode_length=1000, num_threads=2)
    batch.reset(np.arange(3))
    start = batch.get_state()["physics"]
    controls = np.random.default_rng(1).uniform(-1, 1, size=(3, 20, batch.action_size))
    for t in range(20):
        batch.step(controls[:, t])
    states = batch.open_loop(start, controls)
    assert states.shape == (3, 20 * batch.frame_skip, start.shape[1])
    np.testing.assert_allclose(states[:, -1], batch.get_state()["physics"], rtol=0, atol=1e-12)


def test_thread_count_from_the_environment(monkeypatch):
    from envs.mujoco_threaded import default_threads

    monkeypatch.setenv("PES_RL_THREADS", "1")
    assert default_threads() == 1 and envs.make("swimmer", "gymnasium", num_envs=2).num_threads == 1
    monkeypatch.setenv("PES_RL_THREADS", "two")
    with pytest.raises(ValueError, match="PES_RL_THREADS must be an integer >= 1; got 'two'"):
        default_threads()
