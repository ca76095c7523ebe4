"""The threaded C-MuJoCo batch equals plain gymnasium, bit for bit, step for step."""

import gymnasium as gym
import mujoco
import numpy as np
import pytest

from pes_rl import envs
from pes_rl.envs.gymnasium_backend import GYMNASIUM_IDS, GymnasiumBatchedEnv
from pes_rl.envs.mujoco_threaded import TASKS, ThreadedMujocoEnv

INTEGRATION = mujoco.mjtState.mjSTATE_INTEGRATION

# (id, env steps, time limit): enough steps for every member to end episodes (time limit or
# falling) and be reset; horizons short where the task never terminates. ~0.5-2 s each.
CASES = [
    ("Swimmer-v5", 1100, 500),
    ("Hopper-v5", 400, 1000),
    ("HalfCheetah-v5", 400, 150),
    ("Walker2d-v5", 400, 1000),
    ("Ant-v5", 400, 150),
    ("Humanoid-v5", 300, 1000),
    ("InvertedPendulum-v5", 300, 1000),
    ("InvertedDoublePendulum-v5", 300, 1000),
    ("Reacher-v5", 300, 50),
]


def integration_state(env: gym.Env) -> np.ndarray:
    sim = env.unwrapped
    state = np.empty(mujoco.mj_stateSize(sim.model, INTEGRATION))
    mujoco.mj_getState(sim.model, sim.data, state, INTEGRATION)
    return state


def test_every_task_is_covered():
    assert sorted(TASKS) == sorted(case[0] for case in CASES)


@pytest.mark.parametrize("env_id,steps,horizon", CASES)
def test_equals_gymnasium_steps(env_id, steps, horizon):
    """Same seeds, same actions: identical physics (the whole mjSTATE_INTEGRATION state, the
    solver's warm start included), obs, rewards, terminations and time-limit truncations, with
    resets (seeded per member) whenever an episode ends; part of the batch is masked out on
    some steps. Exact equality: any difference in a rule or in the physics fails."""
    num = 5
    batch = ThreadedMujocoEnv(env_id, num, episode_length=horizon, num_threads=2)
    refs = [gym.make(env_id, max_episode_steps=horizon) for _ in range(num)]
    rng = np.random.default_rng(0)
    seeds = rng.integers(0, 2**31, size=num)
    obs = batch.reset(seeds)
    np.testing.assert_array_equal(obs, np.stack([env.reset(seed=int(s))[0] for env, s in zip(refs, seeds)]))
    ends, contact = 0, 0.0
    for t in range(steps):
        # beyond the bounds (clamped by MuJoCo; the ctrl costs see them unclamped)
        actions = rng.uniform(-1.2, 1.2, size=(num, batch.action_size)) * batch.action_high
        mask = rng.random(num) < 0.8 if t % 7 == 3 else np.ones(num, bool)
        obs, reward, terminated, truncated = batch.step(actions, mask)
        for i in np.flatnonzero(mask):
            o, r, term, trunc, _ = refs[i].step(actions[i])
            np.testing.assert_array_equal(batch.physics[i], integration_state(refs[i]), err_msg=f"physics, member {i}, step {t}")
            np.testing.assert_array_equal(obs[i], o, err_msg=f"obs, member {i}, step {t}")
            assert reward[i] == r, (i, t, reward[i], r)
            assert (terminated[i], truncated[i]) == (term, trunc), (i, t)
            contact = max(contact, np.abs(refs[i].unwrapped.data.cfrc_ext).max())
        assert not reward[~mask].any()
        done = (terminated | truncated) & mask
        if done.any():
            ends += int(done.sum())
            new = rng.integers(0, 2**31, size=num)
            obs = batch.reset(new, mask=done)
            for i in np.flatnonzero(done):
                np.testing.assert_array_equal(obs[i], refs[i].reset(seed=int(new[i]))[0])
    assert ends >= num  # episodes really ended and were reset (time limit / falling)
    if TASKS[env_id].contact_forces:
        assert contact > 1  # contact forces (in obs and reward) were really exercised


@pytest.mark.parametrize("env_id", ["Swimmer-v5", "Ant-v5", "InvertedPendulum-v5"])
def test_state_copy_and_restore(env_id):
    """get_state/set_state and copy_members carry everything the next step reads: the rows
    (warm start included) and the derived position the reward differences against."""
    batch = ThreadedMujocoEnv(env_id, 4, episode_length=1000, num_threads=2)
    batch.reset(np.arange(4))
    actions = np.full((4, batch.action_size), 0.5)
    for _ in range(10):
        batch.step(actions)
    saved = batch.get_state()
    after = batch.step(actions)
    batch.set_state(saved)
    for got, want in zip(batch.step(actions), after):
        np.testing.assert_array_equal(got, want)
    batch.copy_members(np.array([0, 1]), np.array([2, 3]))
    obs, reward, _, _ = batch.step(actions)
    np.testing.assert_array_equal(obs[2:], obs[:2])
    np.testing.assert_array_equal(reward[2:], reward[:2])


def test_make_uses_threads_for_supported_ids_only():
    for name, env_id in GYMNASIUM_IDS.items():
        expected = ThreadedMujocoEnv if env_id in TASKS else GymnasiumBatchedEnv
        assert isinstance(envs.make(name, "gymnasium", num_envs=2), expected), name
    assert sum(env_id in TASKS for env_id in GYMNASIUM_IDS.values()) == 9
    assert isinstance(envs.make("Pendulum-v1", "gymnasium", num_envs=2), GymnasiumBatchedEnv)
    # A user's factory (own wrappers) always keeps gymnasium's own stepping.
    custom = envs.make("swimmer", "gymnasium", num_envs=2, env_fn=lambda: gym.make("Swimmer-v5"))
    assert isinstance(custom, GymnasiumBatchedEnv)
    assert isinstance(envs.make("swimmer", "gymnasium", num_envs=2, threaded=False), GymnasiumBatchedEnv)


@pytest.mark.parametrize("env_id", ["Swimmer-v5", "HalfCheetah-v5"])
def test_open_loop_replays_the_closed_loop_steps(env_id):
    """The benchmark's C MuJoCo limit replays recorded controls: it must reproduce the stepped
    states exactly, contacts (and so the warm start) included."""
    batch = ThreadedMujocoEnv(env_id, 3, episode_length=1000, num_threads=2)
    batch.reset(np.arange(3))
    start = batch.get_state()["physics"]
    controls = np.random.default_rng(1).uniform(-1, 1, size=(3, 20, batch.action_size))
    for t in range(20):
        batch.step(controls[:, t])
    np.testing.assert_array_equal(batch.open_loop(start, controls), batch.get_state()["physics"])


def test_thread_count_from_the_environment(monkeypatch):
    from pes_rl.envs.mujoco_threaded import default_threads

    monkeypatch.setenv("PES_RL_THREADS", "1")
    assert default_threads() == 1 and envs.make("swimmer", "gymnasium", num_envs=2).num_threads == 1
    monkeypatch.setenv("PES_RL_THREADS", "two")
    with pytest.raises(ValueError, match="PES_RL_THREADS must be an integer >= 1; got 'two'"):
        default_threads()
