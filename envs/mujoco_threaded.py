"""Gymnasium's MuJoCo tasks stepped in C on every core (the fast CPU fallback).

A Python loop over gymnasium's ``SyncVectorEnv`` spends most of its time in
Python, on one core. Here the batch's physics states live in one numpy array
``(B, nstate)`` and every env step is one ``mujoco.rollout`` call: C threads (one
per core, each with its own ``MjData``) advance all members ``frame_skip``
MuJoCo steps with no Python per member. Observations, rewards, terminations and
seeded resets are computed from the state array exactly as gymnasium's
``*-v5`` classes compute them (``tests/test_mujoco_threaded.py`` compares against
plain gymnasium steps).

Only tasks whose obs/reward can be computed from ``qpos``/``qvel`` alone are
here, and only those whose trajectories stay equal to gymnasium's: rollout
does not hand back the constraint solver's warm start, so a model with
frequent contacts (HalfCheetah) drifts chaotically from gymnasium's stepping
at the solver tolerance. Every other gymnasium env keeps the vector-env path
(:class:`envs.gymnasium_backend.GymnasiumBatchedEnv`).
"""

from __future__ import annotations

import dataclasses
import os
from typing import Callable

import gymnasium as gym
import mujoco
import numpy as np
from gymnasium.utils import seeding
from mujoco import rollout

_FULLPHYSICS = mujoco.mjtState.mjSTATE_FULLPHYSICS


@dataclasses.dataclass(frozen=True)
class TaskRules:
    """How a gymnasium MuJoCo task turns ``(qpos, qvel)`` into observations and rewards.

    ``observe(qpos, qvel, env)`` -> ``(B, obs)``; ``reward(qpos_before, qpos, qvel,
    action, env)`` -> ``(reward (B,), terminated (B,))``, where ``env`` is the
    unwrapped gymnasium env that supplies the task's weights.
    """

    observe: Callable
    reward: Callable


def swimmer_observe(qpos: np.ndarray, qvel: np.ndarray, env) -> np.ndarray:
    """Swimmer-v5 ``_get_obs``: qpos without the (x, y) position, then qvel."""
    skip = 2 if env._exclude_current_positions_from_observation else 0
    return np.concatenate([qpos[:, skip:], qvel], axis=1)


def swimmer_reward(qpos_before, qpos, qvel, action, env):
    """Swimmer-v5 ``step``: ``w_f · Δx/dt − w_c · ‖a‖²``; never terminates."""
    x_velocity = (qpos[:, 0] - qpos_before[:, 0]) / env.dt
    reward = env._forward_reward_weight * x_velocity - env._ctrl_cost_weight * np.sum(np.square(action), axis=1)
    return reward, np.zeros(len(reward), bool)


def hopper_observe(qpos: np.ndarray, qvel: np.ndarray, env) -> np.ndarray:
    """Hopper-v5 ``_get_obs``: qpos without x, then qvel clipped to ±10."""
    skip = 1 if env._exclude_current_positions_from_observation else 0
    return np.concatenate([qpos[:, skip:], np.clip(qvel, -10, 10)], axis=1)


def hopper_healthy(qpos: np.ndarray, qvel: np.ndarray, env) -> np.ndarray:
    """Hopper-v5 ``is_healthy``: state, height and angle inside their open ranges."""
    z, angle = qpos[:, 1], qpos[:, 2]
    state = np.concatenate([qpos, qvel], axis=1)[:, 2:]
    lo, hi = env._healthy_state_range
    zlo, zhi = env._healthy_z_range
    alo, ahi = env._healthy_angle_range
    return np.all((lo < state) & (state < hi), axis=1) & (zlo < z) & (z < zhi) & (alo < angle) & (angle < ahi)


def hopper_reward(qpos_before, qpos, qvel, action, env):
    """Hopper-v5 ``step``: ``w_f · Δx/dt + healthy·r_h − w_c · ‖a‖²``; terminates when unhealthy."""
    healthy = hopper_healthy(qpos, qvel, env)
    x_velocity = (qpos[:, 0] - qpos_before[:, 0]) / env.dt
    reward = (
        env._forward_reward_weight * x_velocity
        + healthy * env._healthy_reward
        - env._ctrl_cost_weight * np.sum(np.square(action), axis=1)
    )
    return reward, ~healthy & bool(env._terminate_when_unhealthy)


# gymnasium id -> rules. Checked equal to gymnasium in tests/test_mujoco_threaded.py.
TASKS: dict[str, TaskRules] = {
    "Swimmer-v5": TaskRules(swimmer_observe, swimmer_reward),
    "Hopper-v5": TaskRules(hopper_observe, hopper_reward),
}


def default_threads() -> int:
    """``PES_RL_THREADS`` if set, else the cores this process may run on (its CPU affinity,
    which schedulers such as SLURM restrict to a task's own cores)."""
    value = os.environ.get("PES_RL_THREADS")
    if value:
        if not value.isdigit() or int(value) < 1:
            raise ValueError(f"PES_RL_THREADS must be an integer >= 1; got {value!r}")
        return int(value)
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # not Linux
        return os.cpu_count() or 1


def state_layout(model: mujoco.MjModel) -> dict[str, slice]:
    """Where time, qpos, qvel and act sit in an ``mjSTATE_FULLPHYSICS`` vector."""
    layout, start = {}, 0
    for name, bit in (("time", mujoco.mjtState.mjSTATE_TIME), ("qpos", mujoco.mjtState.mjSTATE_QPOS),
                      ("qvel", mujoco.mjtState.mjSTATE_QVEL), ("act", mujoco.mjtState.mjSTATE_ACT)):
        size = mujoco.mj_stateSize(model, bit)
        layout[name] = slice(start, start + size)
        start += size
    return layout


class ThreadedMujocoEnv:
    """``num_envs`` copies of a gymnasium MuJoCo task, stepped with ``mujoco.rollout`` threads.

    The same surface as :class:`envs.gymnasium_backend.GymnasiumBatchedEnv`
    (``reset(seeds, mask)``, ``step(actions, mask)``, ``get_state``/``set_state``,
    ``copy_members``, ``advance_time_limit``), so the trainer cannot tell them apart.

    Args:
      env_id: a key of :data:`TASKS`.
      num_envs: batch size.
      episode_length: the time limit ``T``.
      num_threads: C threads (default: every core this process may use).
    """

    backend = "gymnasium"
    supports_state = True

    def __init__(self, env_id: str, num_envs: int, episode_length: int | None = None,
                 num_threads: int | None = None, name: str | None = None):
        if env_id not in TASKS:
            raise ValueError(f"env_id must be one of {', '.join(TASKS)} for the threaded MuJoCo batch; got {env_id!r}")
        self.rules = TASKS[env_id]
        self.env_id = env_id
        self.name = name or env_id
        self.num_envs = int(num_envs)
        wrapped = gym.make(env_id)
        self.task = wrapped.unwrapped  # weights, dt, init_qpos; never stepped
        self.model = self.task.model
        self.frame_skip = int(self.task.frame_skip)
        self.dt = float(self.task.dt)
        self.episode_length = int(episode_length or wrapped.spec.max_episode_steps or 1000)
        self.action_low = np.asarray(wrapped.action_space.low, np.float32)
        self.action_high = np.asarray(wrapped.action_space.high, np.float32)
        self.action_size = int(wrapped.action_space.shape[0])
        self.observation_size = int(wrapped.observation_space.shape[0])
        self.num_threads = int(num_threads or default_threads())
        self._rollout = rollout.Rollout(nthread=self.num_threads)
        self._datas = [mujoco.MjData(self.model) for _ in range(self.num_threads)]
        self._models = [self.model] * self.num_envs  # rollout wants one (shared) model per member
        self._layout = state_layout(self.model)
        nstate = mujoco.mj_stateSize(self.model, _FULLPHYSICS)
        self.physics = np.zeros((self.num_envs, nstate))
        self.elapsed = np.zeros(self.num_envs, np.int64)
        self._substeps = np.empty((self.num_envs, self.frame_skip, nstate))
        self._obs = np.zeros((self.num_envs, self.observation_size))

    def _qpos(self, physics: np.ndarray) -> np.ndarray:
        return physics[:, self._layout["qpos"]]

    def _qvel(self, physics: np.ndarray) -> np.ndarray:
        return physics[:, self._layout["qvel"]]

    def _observe(self, physics: np.ndarray) -> np.ndarray:
        return self.rules.observe(self._qpos(physics), self._qvel(physics), self.task)

    def initial_physics(self, seed: int) -> np.ndarray:
        """The state gymnasium's ``reset(seed=seed)`` produces (``reset_model`` with a fresh
        ``np_random``: init_qpos/qvel plus uniform noise, time 0)."""
        rng, _ = seeding.np_random(int(seed))
        scale = self.task._reset_noise_scale
        state = np.zeros(self.physics.shape[1])
        state[self._layout["qpos"]] = self.task.init_qpos + rng.uniform(-scale, scale, size=self.model.nq)
        state[self._layout["qvel"]] = self.task.init_qvel + rng.uniform(-scale, scale, size=self.model.nv)
        return state

    def reset(self, seeds: np.ndarray, mask: np.ndarray | None = None) -> np.ndarray:
        """Reset the members where ``mask`` holds, member ``i`` as ``reset(seed=seeds[i])``."""
        seeds = np.asarray(seeds).reshape(-1)
        mask = np.ones(self.num_envs, bool) if mask is None else np.asarray(mask, bool)
        for i in np.flatnonzero(mask):
            self.physics[i] = self.initial_physics(seeds[i])
        self.elapsed[mask] = 0
        self._obs[mask] = self._observe(self.physics[mask])
        return self._obs.copy()

    def step(self, actions: np.ndarray, mask: np.ndarray | None = None):
        """Step the members where ``mask`` holds (default all) by one env step.

        Returns ``(obs, reward, terminated, truncated)`` for every member; members
        left out keep their observation and report zeros.
        """
        actions = np.asarray(actions, np.float64)
        rows = slice(None) if mask is None else np.flatnonzero(mask)
        before = self.physics[rows]
        n = len(before)
        if n == 0:
            zeros = np.zeros(self.num_envs)
            return self._obs.copy(), zeros, zeros.astype(bool), zeros.astype(bool)
        out = self._substeps[:n]
        # gymnasium holds ctrl for frame_skip MuJoCo steps; rollout reads one row per step.
        control = np.broadcast_to(actions[rows][:, None, :], (n, self.frame_skip, self.action_size))
        self._rollout.rollout(self._models[:n], self._datas, np.ascontiguousarray(before), np.ascontiguousarray(control),
                              nstep=self.frame_skip, state=out, skip_checks=True,
                              chunk_size=-(-n // self.num_threads))  # one chunk a thread: dispatch costs add up at small n
        after = out[:, -1]
        reward_m, terminated_m = self.rules.reward(self._qpos(before), self._qpos(after), self._qvel(after),
                                                   actions[rows], self.task)
        self.physics[rows] = after
        self.elapsed[rows] += 1
        self._obs[rows] = self._observe(after)
        reward = np.zeros(self.num_envs)
        terminated = np.zeros(self.num_envs, bool)
        truncated = np.zeros(self.num_envs, bool)
        reward[rows], terminated[rows] = reward_m, terminated_m
        truncated[rows] = self.elapsed[rows] >= self.episode_length
        return self._obs.copy(), reward, terminated, truncated

    def open_loop(self, physics: np.ndarray, controls: np.ndarray) -> np.ndarray:
        """Roll ``physics`` (P, nstate) forward under ``controls`` (P, S, nu), one action per env
        step, in a single ``mujoco.rollout`` call on every thread: no policy, no Python per step.
        Returns the physics states after each MuJoCo step, (P, S·frame_skip, nstate); the
        batch's own state is left alone."""
        P, S, _ = controls.shape
        per_substep = np.ascontiguousarray(np.repeat(np.asarray(controls, np.float64), self.frame_skip, axis=1))
        out = np.empty((P, S * self.frame_skip, self.physics.shape[1]))
        self._rollout.rollout([self.model] * P, self._datas, np.ascontiguousarray(physics, np.float64), per_substep,
                              nstep=S * self.frame_skip, state=out, skip_checks=True)
        return out

    def get_state(self) -> dict[str, np.ndarray]:
        """Every member's physics state and elapsed steps, for exact resumption."""
        return {"physics": self.physics.copy(), "elapsed_steps": self.elapsed.copy(), "obs": self._obs.copy()}

    def set_state(self, state: dict[str, np.ndarray]) -> None:
        """Inverse of :meth:`get_state`."""
        physics = np.asarray(state["physics"], np.float64)
        if physics.shape != self.physics.shape:
            raise ValueError(f"saved env state has shape {physics.shape}, this batch needs {self.physics.shape}")
        self.physics = physics.copy()
        self.elapsed = np.asarray(state["elapsed_steps"], np.int64).copy()
        self._obs = np.asarray(state["obs"], np.float64).copy()

    def advance_time_limit(self, steps: np.ndarray) -> None:
        """Count ``steps[i]`` env steps as already taken in member i's episode."""
        self.elapsed += np.asarray(steps, np.int64)

    def copy_members(self, source: np.ndarray, target: np.ndarray) -> np.ndarray:
        """Make member ``target[j]`` an exact copy of member ``source[j]``; returns all observations."""
        source, target = np.asarray(source), np.asarray(target)
        self.physics[target] = self.physics[source]
        self.elapsed[target] = self.elapsed[source]
        self._obs[target] = self._obs[source]
        return self._obs.copy()

    def close(self) -> None:
        self._rollout.close()
