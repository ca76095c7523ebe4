"""Faults: a NaN from the environment stops training cleanly and keeps the last checkpoint."""

import gymnasium as gym
import numpy as np
import pytest

import pes_rl
from pes_rl import checkpoint
from pes_rl.trainer import TrainingDiverged


class NanRewardAfter(gym.Wrapper):
    """Returns a NaN reward once the process has taken ``steps`` env steps (all envs counted)."""

    taken = 0

    def __init__(self, env, steps):
        super().__init__(env)
        self.steps = steps

    def step(self, action):
        obs, reward, terminated, truncated, info = self.env.step(action)
        NanRewardAfter.taken += 1
        return obs, (np.nan if NanRewardAfter.taken > self.steps else reward), terminated, truncated, info


def test_nan_reward_stops_with_iteration_and_particle_and_keeps_the_checkpoint(tmp_path):
    NanRewardAfter.taken = 0
    run = tmp_path / "run"
    common = dict(env="Swimmer-v5", backend="gymnasium", num_pairs=2, truncation_length=50, horizon=200,
                  eval_every=0, checkpoint_every=1, stagger=False, total_steps=10_000, run_dir=str(run),
                  progress_bar=False)
    # 4 particles x 50 steps per iteration: the 1001st step is in iteration 6, particle 0
    factory = lambda: NanRewardAfter(gym.make("Swimmer-v5", max_episode_steps=200), steps=1000)  # noqa: E731
    with pytest.raises(TrainingDiverged, match=r"non-finite return at iteration 6, particle 0"):
        pes_rl.train(env_fn=factory, **common)
    assert checkpoint.latest_step(str(run)) == 5
    restored = checkpoint.restore(str(run))
    assert np.isfinite(restored["policy"]["params"]).all()
    assert int(restored["iteration"]) == 5
