"""The CPU fallback: a numpy batch of gymnasium environments.

Built on gymnasium 1.x vector envs with ``autoreset_mode=DISABLED``: members
that finish stay finished until the caller resets them with
``reset(seeds, mask)``, so an antithetic pair can be reset with one seed.
"""

from __future__ import annotations

from typing import Callable

import gymnasium as gym
import numpy as np
from gymnasium.vector import AutoresetMode, SyncVectorEnv

# Our short names -> gymnasium ids.
GYMNASIUM_IDS = {
    "swimmer": "Swimmer-v5",
    "hopper": "Hopper-v5",
    "halfcheetah": "HalfCheetah-v5",
    "ant": "Ant-v5",
    "walker2d": "Walker2d-v5",
    "inverted_pendulum": "InvertedPendulum-v5",
    "inverted_double_pendulum": "InvertedDoublePendulum-v5",
    "reacher": "Reacher-v5",
    "humanoid": "Humanoid-v5",
    "pusher": "Pusher-v5",
}
# The short names whose mjx env is gymnasium's own task on MJX (pes_rl.envs.mjx_gymnasium.PORTS, checked
# there at import); on mjx the other short names are Brax's tasks. Kept here, light: importing mjx
# takes seconds.
MJX_PORTS = ("swimmer", "hopper", "walker2d", "halfcheetah")


def check_box_action_space(env_id: str, space: gym.Space) -> None:
    """Reject anything but a bounded 1-D ``Box`` action space with a one-line reason."""
    if not isinstance(space, gym.spaces.Box) or len(space.shape) != 1:
        raise ValueError(
            f"env {env_id!r} has action space {space}; pes_rl policies need a 1-D Box action space "
            "(continuous actions). Discrete action spaces are not supported."
        )


def checked_factory(env_id: str, env_fn: Callable[[], gym.Env]) -> Callable[[], gym.Env]:
    """``env_fn`` whose failures are one-line ``ValueError``s naming the env: a missing optional
    dependency (``CarRacing-v3`` without Box2D), any gymnasium error, or a factory that returns
    something other than a gymnasium env."""

    def make() -> gym.Env:
        try:
            env = env_fn()
        except gym.error.DependencyNotInstalled as e:
            raise ValueError(f"env {env_id!r} needs an optional dependency that is not installed: "
                             f"{_first_line(e)}") from None
        except (gym.error.Error, ImportError) as e:
            raise ValueError(f"env {env_id!r} cannot be created: {type(e).__name__}: {_first_line(e)}") from None
        if not isinstance(env, gym.Env):
            raise ValueError(f"env_fn must return a gymnasium.Env for env {env_id!r}; it returned {type(env).__name__}")
        return env

    return make


def _first_line(error: BaseException) -> str:
    text = str(error).strip()
    return text.splitlines()[0] if text else type(error).__name__


class GymnasiumBatchedEnv:
    """``num_envs`` gymnasium environments stepped together on the host (numpy).

    Args:
      env_id: a registered gymnasium id (used for names and ``gym.make``).
      num_envs: batch size.
      episode_length: the time limit ``T`` (gymnasium's ``TimeLimit``).
      env_fn: optional factory ``() -> gym.Env`` with the user's own wrappers;
        it replaces ``gym.make(env_id, max_episode_steps=episode_length)``.
    """

    backend = "gymnasium"

    def __init__(
        self,
        env_id: str,
        num_envs: int,
        episode_length: int | None = None,
        env_fn: Callable[[], gym.Env] | None = None,
        name: str | None = None,
    ):
        if env_fn is None:
            spec = gym.spec(env_id)
            limit = episode_length or spec.max_episode_steps or 1000
            env_fn = lambda: gym.make(env_id, max_episode_steps=limit)  # noqa: E731
        self.name = name or env_id
        self.env_id = env_id
        self.num_envs = int(num_envs)
        env_fn = checked_factory(env_id, env_fn)
        self.vector_env = SyncVectorEnv([env_fn] * self.num_envs, autoreset_mode=AutoresetMode.DISABLED)
        single = self.vector_env.envs[0]
        check_box_action_space(env_id, single.action_space)
        obs_space = single.observation_space
        if not isinstance(obs_space, gym.spaces.Box) or len(obs_space.shape) != 1:
            raise ValueError(f"env {env_id!r} has observation space {obs_space}; a 1-D Box is needed")
        self.observation_size = int(obs_space.shape[0])
        self.action_size = int(single.action_space.shape[0])
        self.action_low = np.asarray(single.action_space.low, dtype=np.float32)
        self.action_high = np.asarray(single.action_space.high, dtype=np.float32)
        self.episode_length = int(single.spec.max_episode_steps if single.spec and single.spec.max_episode_steps else (episode_length or 1000))
        unwrapped = single.unwrapped
        self.dt = float(getattr(unwrapped, "dt", 1.0 / single.metadata.get("render_fps", 1) if single.metadata.get("render_fps") else 1.0))
        self._obs = np.zeros((self.num_envs, self.observation_size), np.float64)

    def reset(self, seeds: np.ndarray, mask: np.ndarray | None = None) -> np.ndarray:
        """Reset the members where ``mask`` holds, member ``i`` with ``seeds[i]``."""
        seeds = [int(s) for s in np.asarray(seeds).reshape(-1)]
        if mask is None:
            obs, _ = self.vector_env.reset(seed=seeds)
            self._obs = np.array(obs, dtype=np.float64)
        else:
            mask = np.asarray(mask, dtype=bool)
            if mask.any():
                obs, _ = self.vector_env.reset(seed=seeds, options={"reset_mask": mask})
                self._obs[mask] = np.asarray(obs)[mask]
        return self._obs.copy()

    def step(
        self, actions: np.ndarray, mask: np.ndarray | None = None
    ) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
        """Step the members (those where ``mask`` holds, default all).

        Returns ``(obs, reward, terminated, truncated)`` for every member;
        members left out keep their observation and report zeros.
        """
        actions = np.asarray(actions, dtype=np.float64)
        if mask is None:
            obs, reward, terminated, truncated, _ = self.vector_env.step(actions)
            self._obs = np.array(obs, dtype=np.float64)
            return self._obs.copy(), np.asarray(reward, np.float64), np.asarray(terminated, bool), np.asarray(truncated, bool)
        reward = np.zeros(self.num_envs)
        terminated = np.zeros(self.num_envs, bool)
        truncated = np.zeros(self.num_envs, bool)
        for i in np.flatnonzero(mask):
            obs, reward[i], terminated[i], truncated[i], _ = self.vector_env.envs[i].step(actions[i])
            self._obs[i] = obs
        return self._obs.copy(), reward, terminated, truncated

    @property
    def supports_state(self) -> bool:
        """Whether member states can be saved and copied (gymnasium MuJoCo envs)."""
        sim = self.vector_env.envs[0].unwrapped
        return hasattr(sim, "model") and hasattr(sim, "data")

    def _member_state(self, i: int) -> tuple[np.ndarray, int]:
        import mujoco

        env = self.vector_env.envs[i]
        sim = env.unwrapped
        state = np.empty(mujoco.mj_stateSize(sim.model, mujoco.mjtState.mjSTATE_INTEGRATION))
        mujoco.mj_getState(sim.model, sim.data, state, mujoco.mjtState.mjSTATE_INTEGRATION)
        limit = _time_limit(env)
        return state, (limit._elapsed_steps if limit is not None else 0)

    def _set_member_state(self, i: int, physics: np.ndarray, elapsed: int) -> None:
        import mujoco

        env = self.vector_env.envs[i]
        sim = env.unwrapped
        mujoco.mj_setState(sim.model, sim.data, np.asarray(physics, np.float64), mujoco.mjtState.mjSTATE_INTEGRATION)
        mujoco.mj_forward(sim.model, sim.data)
        limit = _time_limit(env)
        if limit is not None:
            limit._elapsed_steps = int(elapsed)

    def _require_state(self) -> None:
        if not self.supports_state:
            raise NotImplementedError(f"{self.env_id} is not a MuJoCo env; its state cannot be saved or copied")

    def get_state(self) -> dict[str, np.ndarray]:
        """Every member's full simulator state (MuJoCo envs only), for exact resumption.

        Raises:
          NotImplementedError: the env is not a gymnasium MuJoCo env.
        """
        self._require_state()
        physics, elapsed = zip(*(self._member_state(i) for i in range(self.num_envs)))
        return {"physics": np.stack(physics), "elapsed_steps": np.asarray(elapsed, np.int64), "obs": self._obs.copy()}

    def set_state(self, state: dict[str, np.ndarray]) -> None:
        """Inverse of :meth:`get_state`."""
        for i, (physics, elapsed) in enumerate(zip(state["physics"], state["elapsed_steps"])):
            self._set_member_state(i, physics, elapsed)
        self._obs = np.asarray(state["obs"], np.float64).copy()

    def advance_time_limit(self, steps: np.ndarray) -> None:
        """Count ``steps[i]`` env steps as already taken in member i's episode, so it ends that
        much sooner (staggers episode ends without simulating). Needs gymnasium's TimeLimit."""
        limits = [_time_limit(env) for env in self.vector_env.envs]
        if any(limit is None for limit in limits):
            raise NotImplementedError(f"{self.env_id} has no TimeLimit wrapper")
        for limit, n in zip(limits, np.asarray(steps)):
            limit._elapsed_steps += int(n)

    def copy_members(self, source: np.ndarray, target: np.ndarray) -> np.ndarray:
        """Make member ``target[j]`` an exact copy of member ``source[j]``; returns all observations."""
        self._require_state()
        for i, j in zip(np.asarray(source), np.asarray(target)):
            self._set_member_state(int(j), *self._member_state(int(i)))
            self._obs[j] = self._obs[i]
        return self._obs.copy()

    def close(self) -> None:
        self.vector_env.close()


def _time_limit(env: gym.Env) -> gym.wrappers.TimeLimit | None:
    while isinstance(env, gym.Wrapper):
        if isinstance(env, gym.wrappers.TimeLimit):
            return env
        env = env.env
    return None
