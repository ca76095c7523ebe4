"""Gymnasium's MuJoCo tasks stepped in C on every core (the fast CPU fallback).

A Python loop over gymnasium's ``SyncVectorEnv`` spends most of its time in
Python, on one core. Here every member of the batch is one row of a
:class:`mujoco.batch.Batch`: its ``mjSTATE_INTEGRATION`` state (time, qpos,
qvel, ctrl and the constraint solver's warm start ``qacc_warmstart``, among
others). Every env step is one ``Batch.step`` call: C threads (one per core)
advance all members ``frame_skip`` MuJoCo steps with no Python per member.
Observations, rewards, terminations and seeded resets are computed from the
rows, and from the MjData fields the batch copies out after the step, exactly as
gymnasium's ``*-v5`` classes compute them from ``self.data``. Every task in
:data:`TASKS` is bit-identical to gymnasium (``tests/test_mujoco_threaded.py``
steps both side by side and compares states, observations, rewards and
terminations exactly), for three reasons:

* The warm start is part of the row, so each member's solver starts where
  gymnasium's does. ``mujoco.rollout``, the engine here before, returns
  ``mjSTATE_FULLPHYSICS`` states, which leave it out, and starts each call from
  ``initial_warmstart`` or zeros; it cannot hand back the warm start it ends
  with. Whenever constraints are active the solver then stops at a slightly
  different point, and contact-rich tasks (HalfCheetah, Walker2d, Ant,
  Humanoid) drift apart chaotically from that alone.
* After ``mj_step``, gymnasium reads derived fields (``xpos``, ``xipos``,
  ``cinert``, ``cvel``, ``qfrc_actuator``, ``site_xpos``, ``qfrc_constraint``)
  that describe the start of the last substep, or, for the RK4 models, its last
  Runge-Kutta stage: not the new state. The batch's bound outputs are those very
  fields as ``mj_step`` leaves them, so nothing here recomputes them.
* ``cfrc_ext`` (Ant, Humanoid) comes from the ``mj_rnePostConstraint`` that
  gymnasium calls after ``mj_step`` and the batch does not. Those tasks run a
  persistent batch (one MjData per member) and call it per member on a copy of
  that MjData: a Python loop, measured at 15-35 µs a member, 11-15 % of an Ant
  or Humanoid step on 2 cores (see ``contact_forces_per_member``). A sensor in a
  model copy cannot do it in C: an acceleration sensor's ``mj_rnePostConstraint``
  runs at the substep's first forward pass (even a delayed sensor, evaluated at
  the end of the substep, reuses that result), which for the RK4 models is not
  the Runge-Kutta stage whose contacts gymnasium reads (checked: equal for the
  Euler HalfCheetah, different for Walker2d, Ant and Humanoid).

Any other gymnasium env keeps the vector-env path
(:class:`pes_rl.envs.gymnasium_backend.GymnasiumBatchedEnv`).
"""

from __future__ import annotations

import dataclasses
import os
from typing import Any, Callable

import gymnasium as gym
import mujoco
import numpy as np
from gymnasium.utils import seeding
from mujoco import batch as mjbatch

_INTEGRATION = mujoco.mjtState.mjSTATE_INTEGRATION


class BatchData:
    """The batch's counterpart of gymnasium's ``self.data`` for ``n`` members.

    Attributes are MjData field names with a leading member axis: ``data.qpos``
    is ``(n, nq)``, ``data.xpos`` is ``(n, nbody, 3)``. They hold what gymnasium's
    data holds at the same point: after a step, the new state and the derived
    fields ``mj_step`` + ``mj_rnePostConstraint`` leave; after a reset, the state
    and the fields of ``set_state``'s ``mj_forward``. Only the fields a task
    names in :attr:`TaskRules.fields` are present (and ``qpos``, ``qvel``, ``ctrl``,
    ``cfrc_ext`` where the task reads contact forces, and ``position``, what
    :attr:`TaskRules.position` gives for this data).
    """

    def __init__(self, **fields: np.ndarray):
        self.__dict__.update(fields)


# The rules' signatures. ``env`` is the unwrapped gymnasium env: the task's weights
# and ranges (``env._ctrl_cost_weight``, ...), ``dt``, ``model``; it is never stepped.
Observe = Callable[[BatchData, Any], np.ndarray]  # (data, env) -> (n, obs)
Reward = Callable[[np.ndarray, BatchData, np.ndarray, Any], "tuple[np.ndarray, np.ndarray]"]
Position = Callable[[BatchData, Any], np.ndarray]  # (data, env) -> (n, k)
ResetModel = Callable[[np.random.Generator, Any], "tuple[np.ndarray, np.ndarray]"]


@dataclasses.dataclass(frozen=True)
class TaskRules:
    """How a gymnasium MuJoCo task turns MjData into observations, rewards and resets.

    Attributes:
      observe: ``_get_obs``: ``(data, env) -> (n, obs)``.
      reward: ``step``'s reward and termination: ``(position_before, data, action, env)
        -> (reward (n,), terminated (n,))``; ``position_before`` is what ``position``
        gave before the step (``None`` for tasks without one).
      reset_model: ``reset_model``'s draws from the seeded ``np_random``:
        ``(rng, env) -> (qpos, qvel)``.
      position: what ``step`` reads before and after ``do_simulation`` to get a
        velocity (x, or the xy of a body or of the center of mass), ``(n, k)``;
        ``None`` when the reward has no velocity term. Derived fields read before
        the step are the previous step's (or the reset's), so the batch keeps it.
      fields: derived MjData fields the rules read besides qpos, qvel and ctrl.
      contact_forces: whether they read ``cfrc_ext`` (needs ``mj_rnePostConstraint``).
    """

    observe: Observe
    reward: Reward
    reset_model: ResetModel
    position: Position | None = None
    fields: tuple[str, ...] = ()
    contact_forces: bool = False


# ---------------------------------------------------------------------------------------------
# Rules shared by several tasks


def uniform_reset(rng: np.random.Generator, env) -> tuple[np.ndarray, np.ndarray]:
    """``reset_model`` of Swimmer, Hopper, Walker2d, Humanoid and InvertedPendulum:
    init_qpos and init_qvel plus uniform noise in ±reset_noise_scale (qpos drawn first)."""
    scale = env._reset_noise_scale
    qpos = env.init_qpos + rng.uniform(low=-scale, high=scale, size=env.model.nq)
    qvel = env.init_qvel + rng.uniform(low=-scale, high=scale, size=env.model.nv)
    return qpos, qvel


def normal_qvel_reset(rng: np.random.Generator, env) -> tuple[np.ndarray, np.ndarray]:
    """``reset_model`` of HalfCheetah, Ant and InvertedDoublePendulum: uniform qpos noise,
    then normal qvel noise ``reset_noise_scale · N(0, 1)``."""
    scale = env._reset_noise_scale
    qpos = env.init_qpos + rng.uniform(low=-scale, high=scale, size=env.model.nq)
    qvel = env.init_qvel + scale * rng.standard_normal(env.model.nv)
    return qpos, qvel


def qpos_x(data: BatchData, env) -> np.ndarray:
    """``self.data.qpos[0]``, which the planar walkers' ``step`` reads around ``do_simulation``."""
    return data.qpos[:, :1]


def control_cost(action: np.ndarray, weight: float) -> np.ndarray:
    """``control_cost``: ``weight · Σ action²`` per member."""
    return weight * np.sum(np.square(action), axis=1)


def locomotion_reward(position_before: np.ndarray, data: BatchData, action: np.ndarray, env, *,
                      healthy: np.ndarray | None = None,
                      contact_cost: np.ndarray | None = None) -> tuple[np.ndarray, np.ndarray]:
    """``step`` and ``_get_rew`` of the locomotion tasks, in gymnasium's order of operations:
    ``(w_f · v_x + healthy · r_h) − (ctrl_cost + contact_cost)``, ``v_x`` the x velocity of
    :attr:`TaskRules.position` over ``dt``. Terminates when unhealthy (if the task terminates)."""
    x_velocity = ((data.position - position_before) / env.dt)[:, 0]
    rewards = env._forward_reward_weight * x_velocity
    if healthy is not None:
        rewards = rewards + healthy * env._healthy_reward
    costs = control_cost(action, env._ctrl_cost_weight)
    if contact_cost is not None:
        costs = costs + contact_cost
    if healthy is None:
        return rewards - costs, np.zeros(len(rewards), bool)
    return rewards - costs, ~healthy & bool(env._terminate_when_unhealthy)


def planar_observe(skipped: int, clip_qvel: bool) -> Observe:
    """``_get_obs`` of the planar tasks: qpos without its first ``skipped`` entries (when
    ``exclude_current_positions_from_observation``), then qvel, clipped to ±10 if ``clip_qvel``."""

    def observe(data: BatchData, env) -> np.ndarray:
        skip = skipped if env._exclude_current_positions_from_observation else 0
        qvel = np.clip(data.qvel, -10, 10) if clip_qvel else data.qvel
        return np.concatenate([data.qpos[:, skip:], qvel], axis=1)

    return observe


def flat(array: np.ndarray) -> np.ndarray:
    """Each member's part flattened, as gymnasium's ``.flatten()`` of one env's field."""
    return array.reshape(len(array), -1)


# ---------------------------------------------------------------------------------------------
# Swimmer-v5, HalfCheetah-v5


def swimmer_reward(position_before, data, action, env):
    """Swimmer-v5 ``step``: ``w_f · v_x − w_c · ‖a‖²``; never terminates."""
    return locomotion_reward(position_before, data, action, env)


halfcheetah_reward = swimmer_reward  # HalfCheetah-v5 ``_get_rew`` is the same


# ---------------------------------------------------------------------------------------------
# Hopper-v5, Walker2d-v5


def hopper_healthy(data: BatchData, env) -> np.ndarray:
    """Hopper-v5 ``is_healthy``: state (from qpos[2]), height and angle inside their open ranges."""
    z, angle = data.qpos[:, 1], data.qpos[:, 2]
    state = np.concatenate([data.qpos, data.qvel], axis=1)[:, 2:]
    lo, hi = env._healthy_state_range
    zlo, zhi = env._healthy_z_range
    alo, ahi = env._healthy_angle_range
    return np.all((lo < state) & (state < hi), axis=1) & (zlo < z) & (z < zhi) & (alo < angle) & (angle < ahi)


def walker2d_healthy(data: BatchData, env) -> np.ndarray:
    """Walker2d-v5 ``is_healthy``: height and angle inside their open ranges."""
    z, angle = data.qpos[:, 1], data.qpos[:, 2]
    zlo, zhi = env._healthy_z_range
    alo, ahi = env._healthy_angle_range
    return (zlo < z) & (z < zhi) & (alo < angle) & (angle < ahi)


def hopper_reward(position_before, data, action, env):
    """Hopper-v5 ``step``: ``w_f · v_x + healthy · r_h − w_c · ‖a‖²``; terminates when unhealthy."""
    return locomotion_reward(position_before, data, action, env, healthy=hopper_healthy(data, env))


def walker2d_reward(position_before, data, action, env):
    """Walker2d-v5 ``step``: as Hopper's, with Walker2d's ``is_healthy``."""
    return locomotion_reward(position_before, data, action, env, healthy=walker2d_healthy(data, env))


# ---------------------------------------------------------------------------------------------
# Ant-v5


def ant_contact_forces(data: BatchData, env) -> np.ndarray:
    """Ant-v5 ``contact_forces``: ``cfrc_ext`` clipped to ``contact_force_range``."""
    lo, hi = env._contact_force_range
    return np.clip(data.cfrc_ext, lo, hi)


def ant_position(data: BatchData, env) -> np.ndarray:
    """Ant-v5 ``step``: ``self.data.body(main_body).xpos[:2]`` (a derived field)."""
    return data.xpos[:, env.model.body(env._main_body).id, :2]


def ant_healthy(data: BatchData, env) -> np.ndarray:
    """Ant-v5 ``is_healthy``: a finite state and z in the closed ``healthy_z_range``."""
    state = np.concatenate([data.qpos, data.qvel], axis=1)
    lo, hi = env._healthy_z_range
    return np.isfinite(state).all(axis=1) & (lo <= state[:, 2]) & (state[:, 2] <= hi)


def ant_observe(data: BatchData, env) -> np.ndarray:
    """Ant-v5 ``_get_obs``: qpos (without x, y), qvel, then the clipped contact forces of
    every body but the world."""
    position = data.qpos[:, 2:] if env._exclude_current_positions_from_observation else data.qpos
    parts = [position, data.qvel]
    if env._include_cfrc_ext_in_observation:
        parts.append(flat(ant_contact_forces(data, env)[:, 1:]))
    return np.concatenate(parts, axis=1)


def ant_reward(position_before, data, action, env):
    """Ant-v5 ``step``/``_get_rew``: ``v_x · w_f + healthy · r_h − (ctrl_cost + contact_cost)``,
    ``contact_cost = w · Σ contact_forces²``; terminates when unhealthy."""
    contact_cost = env._contact_cost_weight * np.sum(flat(np.square(ant_contact_forces(data, env))), axis=1)
    return locomotion_reward(position_before, data, action, env, healthy=ant_healthy(data, env),
                             contact_cost=contact_cost)


# ---------------------------------------------------------------------------------------------
# Humanoid-v5


def mass_center(data: BatchData, env) -> np.ndarray:
    """Humanoid-v5 ``mass_center``: the body masses' weighted mean of ``xipos``, (x, y).
    (The same einsum, batched: its sums run in the same order as gymnasium's one-env einsum.)"""
    mass = env.model.body_mass
    return (np.einsum("b,nbj->nj", mass, data.xipos) / mass.sum())[:, 0:2]


def humanoid_healthy(data: BatchData, env) -> np.ndarray:
    """Humanoid-v5 ``is_healthy``: z inside the open ``healthy_z_range``."""
    lo, hi = env._healthy_z_range
    return (lo < data.qpos[:, 2]) & (data.qpos[:, 2] < hi)


def humanoid_observe(data: BatchData, env) -> np.ndarray:
    """Humanoid-v5 ``_get_obs``: qpos (without x, y), qvel, then, per flag, cinert, cvel of every
    body but the world, qfrc_actuator of the joints after the free joint, and cfrc_ext."""
    position = data.qpos[:, 2:] if env._exclude_current_positions_from_observation else data.qpos
    parts = [position, data.qvel]
    if env._include_cinert_in_observation is True:
        parts.append(flat(data.cinert[:, 1:]))
    if env._include_cvel_in_observation is True:
        parts.append(flat(data.cvel[:, 1:]))
    if env._include_qfrc_actuator_in_observation is True:
        parts.append(data.qfrc_actuator[:, 6:])
    if env._include_cfrc_ext_in_observation is True:
        parts.append(flat(data.cfrc_ext[:, 1:]))
    return np.concatenate(parts, axis=1)


def humanoid_reward(position_before, data, action, env):
    """Humanoid-v5 ``step``/``_get_rew``: ``w_f · v_x + healthy · r_h − (ctrl_cost + contact_cost)``
    with ``v_x`` of the center of mass, ``ctrl_cost`` of ``data.ctrl`` and ``contact_cost =
    clip(w · Σ cfrc_ext², contact_cost_range)``; terminates when unhealthy."""
    lo, hi = env._contact_cost_range
    contact_cost = np.clip(env._contact_cost_weight * np.sum(flat(np.square(data.cfrc_ext)), axis=1), lo, hi)
    return locomotion_reward(position_before, data, data.ctrl, env, healthy=humanoid_healthy(data, env),
                             contact_cost=contact_cost)


# ---------------------------------------------------------------------------------------------
# InvertedPendulum-v5, InvertedDoublePendulum-v5


def pendulum_observe(data: BatchData, env) -> np.ndarray:
    """InvertedPendulum-v5 ``_get_obs``: qpos, then qvel."""
    return np.concatenate([data.qpos, data.qvel], axis=1)


def pendulum_reward(position_before, data, action, env):
    """InvertedPendulum-v5 ``step``: reward 1 while the observation is finite and the pole
    within 0.2 rad, else 0 and terminated."""
    obs = pendulum_observe(data, env)
    terminated = ~np.isfinite(obs).all(axis=1) | (np.abs(obs[:, 1]) > 0.2)
    return (~terminated).astype(np.float64), terminated


def double_pendulum_observe(data: BatchData, env) -> np.ndarray:
    """InvertedDoublePendulum-v5 ``_get_obs``: cart x, sin and cos of the link angles, qvel
    clipped to ±10, and the cart's constraint force clipped to ±10."""
    return np.concatenate([
        data.qpos[:, :1],
        np.sin(data.qpos[:, 1:]),
        np.cos(data.qpos[:, 1:]),
        np.clip(data.qvel, -10, 10),
        np.clip(data.qfrc_constraint, -10, 10)[:, :1],
    ], axis=1)


def double_pendulum_reward(position_before, data, action, env):
    """InvertedDoublePendulum-v5 ``step``/``_get_rew``: the tip (site 0) at x, y; terminates when
    ``y ≤ 1``; ``alive_bonus − (0.01 x² + (y − 2)²) − (1e-3 v₁² + 5e-3 v₂²)``."""
    x, y = data.site_xpos[:, 0, 0], data.site_xpos[:, 0, 2]
    terminated = y <= 1
    v1, v2 = data.qvel[:, 1], data.qvel[:, 2]
    dist_penalty = 0.01 * x**2 + (y - 2) ** 2
    vel_penalty = 1e-3 * v1**2 + 5e-3 * v2**2
    alive_bonus = env._healthy_reward * ~terminated
    return alive_bonus - dist_penalty - vel_penalty, terminated


# ---------------------------------------------------------------------------------------------
# Reacher-v5


def reacher_reset(rng: np.random.Generator, env) -> tuple[np.ndarray, np.ndarray]:
    """Reacher-v5 ``reset_model``: qpos noise ±0.1, a goal drawn in the disc of radius 0.2
    (rejection sampling) into the target's two slide joints, qvel noise ±0.005 with the
    target at rest."""
    qpos = rng.uniform(low=-0.1, high=0.1, size=env.model.nq) + env.init_qpos
    while True:
        goal = rng.uniform(low=-0.2, high=0.2, size=2)
        if np.linalg.norm(goal) < 0.2:
            break
    qpos[-2:] = goal
    qvel = env.init_qvel + rng.uniform(low=-0.005, high=0.005, size=env.model.nv)
    qvel[-2:] = 0
    return qpos, qvel


def reacher_vector(data: BatchData, env) -> np.ndarray:
    """Reacher-v5 ``get_body_com("fingertip") - get_body_com("target")``, (n, 3)."""
    return data.xpos[:, env.model.body("fingertip").id] - data.xpos[:, env.model.body("target").id]


def reacher_observe(data: BatchData, env) -> np.ndarray:
    """Reacher-v5 ``_get_obs``: cos and sin of the two arm angles, the target's qpos, the arm's
    qvel, and the fingertip-to-target vector's x, y."""
    theta = data.qpos[:, :2]
    return np.concatenate([np.cos(theta), np.sin(theta), data.qpos[:, 2:], data.qvel[:, :2],
                           reacher_vector(data, env)[:, :2]], axis=1)


def reacher_reward(position_before, data, action, env):
    """Reacher-v5 ``_get_rew``: ``−‖fingertip − target‖ · w_dist − Σ a² · w_ctrl``; never terminates.
    (``np.linalg.norm`` of a vector is ``sqrt(x.dot(x))``; ``vecdot`` is that dot, row by row.)"""
    vec = reacher_vector(data, env)
    reward_dist = -np.sqrt(np.vecdot(vec, vec)) * env._reward_dist_weight
    reward_ctrl = -np.sum(np.square(action), axis=1) * env._reward_control_weight
    return reward_dist + reward_ctrl, np.zeros(len(vec), bool)


# gymnasium id -> rules, for the default constructor arguments' env (the weights and flags
# are read from the env itself). Checked equal to gymnasium in tests/test_mujoco_threaded.py.
TASKS: dict[str, TaskRules] = {
    "Swimmer-v5": TaskRules(planar_observe(2, clip_qvel=False), swimmer_reward, uniform_reset, qpos_x),
    "Hopper-v5": TaskRules(planar_observe(1, clip_qvel=True), hopper_reward, uniform_reset, qpos_x),
    "HalfCheetah-v5": TaskRules(planar_observe(1, clip_qvel=False), halfcheetah_reward, normal_qvel_reset, qpos_x),
    "Walker2d-v5": TaskRules(planar_observe(1, clip_qvel=True), walker2d_reward, uniform_reset, qpos_x),
    "Ant-v5": TaskRules(ant_observe, ant_reward, normal_qvel_reset, ant_position, fields=("xpos",),
                        contact_forces=True),
    "Humanoid-v5": TaskRules(humanoid_observe, humanoid_reward, uniform_reset, mass_center,
                             fields=("xipos", "cinert", "cvel", "qfrc_actuator"), contact_forces=True),
    "InvertedPendulum-v5": TaskRules(pendulum_observe, pendulum_reward, uniform_reset),
    "InvertedDoublePendulum-v5": TaskRules(double_pendulum_observe, double_pendulum_reward, normal_qvel_reset,
                                           fields=("site_xpos", "qfrc_constraint")),
    "Reacher-v5": TaskRules(reacher_observe, reacher_reward, reacher_reset, fields=("xpos",)),
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


def state_slice(model: mujoco.MjModel, component: mujoco.mjtState) -> slice:
    """Where ``component`` (one mjtState bit) sits in an ``mjSTATE_INTEGRATION`` row: the
    components are stored in the order of their bits."""
    start = mujoco.mj_stateSize(model, int(_INTEGRATION) & (int(component) - 1))
    return slice(start, start + mujoco.mj_stateSize(model, component))


def contact_forces_per_member(sim: mjbatch.Batch, model: mujoco.MjModel, ids: np.ndarray,
                              scratch: mujoco.MjData) -> np.ndarray:
    """``cfrc_ext`` as gymnasium's ``_step_mujoco_simulation`` leaves it: ``mj_rnePostConstraint``
    on each member's MjData after its step (a persistent batch), ``(n, nbody, 6)``.

    The one Python loop over members here: the batch does not run ``mj_rnePostConstraint``
    and has no call that would, so each member's MjData is copied into ``scratch`` (most of
    the 15-35 µs a member) and the function run on the copy.
    """
    out = np.empty((len(ids), model.nbody, 6))
    for k, i in enumerate(ids):
        sim.get_data(int(i), scratch)
        mujoco.mj_rnePostConstraint(model, scratch)
        out[k] = scratch.cfrc_ext
    return out


class ThreadedMujocoEnv:
    """``num_envs`` copies of a gymnasium MuJoCo task, stepped by a :class:`mujoco.batch.Batch`.

    The same surface as :class:`pes_rl.envs.gymnasium_backend.GymnasiumBatchedEnv`
    (``reset(seeds, mask)``, ``step(actions, mask)``, ``get_state``/``set_state``,
    ``copy_members``, ``advance_time_limit``), so the trainer cannot tell them apart.
    ``physics`` rows are ``mjSTATE_INTEGRATION`` states of gymnasium's model, the
    format ``GymnasiumBatchedEnv.get_state`` saves too.

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
        # persistent: one MjData per member, which mj_rnePostConstraint needs after the step
        self.sim = mjbatch.Batch(self.model, self.num_envs, self.num_threads, persistent=self.rules.contact_forces)
        self._views = {name: self.sim.bind(name) for name in ("qpos", "qvel", "ctrl", *self.rules.fields)}
        self._scratch = mujoco.MjData(self.model) if self.rules.contact_forces else None
        # the row gymnasium's mj_resetData leaves (time 0, zero ctrl and warm start), before set_state
        reset_data = mujoco.MjData(self.model)
        mujoco.mj_resetData(self.model, reset_data)
        self._reset_row = np.empty(self.sim.nstate)
        mujoco.mj_getState(self.model, reset_data, self._reset_row, _INTEGRATION)
        self._qpos_slice = state_slice(self.model, mujoco.mjtState.mjSTATE_QPOS)
        self._qvel_slice = state_slice(self.model, mujoco.mjtState.mjSTATE_QVEL)
        self.elapsed = np.zeros(self.num_envs, np.int64)
        self._obs = np.zeros((self.num_envs, self.observation_size))
        self._position = None  # (num_envs, k): what rules.position gave after each member's last step or reset
        if self.rules.position is not None:
            self._position = np.zeros((self.num_envs, self._data(np.arange(1), True).position.shape[1]))

    @property
    def physics(self) -> np.ndarray:
        """The members' ``mjSTATE_INTEGRATION`` rows, (num_envs, nstate): the batch's own memory."""
        return self.sim.state

    def _data(self, ids: np.ndarray | slice, after_reset: bool = False) -> BatchData:
        """What gymnasium's ``self.data`` holds for members ``ids`` now (see :class:`BatchData`);
        ``ids`` a slice gives views of the batch's memory, to be read before the next step."""
        fields = {name: view[ids] for name, view in self._views.items()}
        if self.rules.contact_forces:
            ids = np.arange(self.num_envs)[ids]
            # mj_resetData zeroes cfrc_ext and set_state's mj_forward does not compute it
            fields["cfrc_ext"] = (np.zeros((len(ids), self.model.nbody, 6)) if after_reset else
                                  contact_forces_per_member(self.sim, self.model, ids, self._scratch))
        data = BatchData(**fields)
        if self.rules.position is not None:
            data.position = self.rules.position(data, self.task)
        return data

    def initial_physics(self, seed: int) -> np.ndarray:
        """The row gymnasium's ``reset(seed=seed)`` produces: ``mj_resetData``, then
        ``reset_model``'s draws from a fresh ``np_random`` written by ``set_state``."""
        rng, _ = seeding.np_random(int(seed))
        qpos, qvel = self.rules.reset_model(rng, self.task)
        row = self._reset_row.copy()
        row[self._qpos_slice], row[self._qvel_slice] = qpos, qvel
        return row

    def _observe(self, ids: np.ndarray, data: BatchData) -> None:
        self._obs[ids] = self.rules.observe(data, self.task)
        if self._position is not None:
            self._position[ids] = data.position

    def reset(self, seeds: np.ndarray, mask: np.ndarray | None = None) -> np.ndarray:
        """Reset the members where ``mask`` holds, member ``i`` as ``reset(seed=seeds[i])``."""
        seeds = np.asarray(seeds).reshape(-1)
        ids = np.arange(self.num_envs) if mask is None else np.flatnonzero(mask)
        if len(ids):
            self.physics[ids] = [self.initial_physics(seeds[i]) for i in ids]
            self.sim.forward(ids)  # set_state's mj_forward: the derived fields the reset obs reads
            self._observe(ids, self._data(ids, after_reset=True))
        self.elapsed[ids] = 0
        return self._obs.copy()

    def step(self, actions: np.ndarray, mask: np.ndarray | None = None):
        """Step the members where ``mask`` holds (default all) by one env step.

        Returns ``(obs, reward, terminated, truncated)`` for every member; members
        left out keep their observation and report zeros.
        """
        actions = np.asarray(actions, np.float64)
        # every member: a basic slice (views, no copies) where a mask needs an index array
        ids = slice(None) if mask is None else np.flatnonzero(mask)
        reward = np.zeros(self.num_envs)
        terminated = np.zeros(self.num_envs, bool)
        truncated = np.zeros(self.num_envs, bool)
        if mask is not None and len(ids) == 0:
            return self._obs.copy(), reward, terminated, truncated
        # do_simulation: ctrl held for frame_skip mj_steps (ctrl is part of the row)
        self._views["ctrl"][ids] = actions[ids]
        self.sim.step(None if mask is None else ids, nstep=self.frame_skip)
        data = self._data(ids)
        # a copy: _observe overwrites the positions this reward differences against
        before = None if self._position is None else self._position[ids].copy()
        reward[ids], terminated[ids] = self.rules.reward(before, data, actions[ids], self.task)
        self._observe(ids, data)
        self.elapsed[ids] += 1
        truncated[ids] = self.elapsed[ids] >= self.episode_length
        return self._obs.copy(), reward, terminated, truncated

    def open_loop(self, physics: np.ndarray, controls: np.ndarray) -> np.ndarray:
        """Roll ``physics`` (P, nstate) forward under ``controls`` (P, S, nu), one action per env
        step, in a single ``Batch.rollout`` call on every thread: no policy, no Python per step,
        nothing recorded. Returns the rows after the last step, (P, nstate); the batch's own
        state is left alone. (The benchmark's C MuJoCo limit.)"""
        P, S, _ = controls.shape
        per_substep = np.repeat(np.asarray(controls, np.float64), self.frame_skip, axis=1)
        sim = mjbatch.Batch(self.model, P, self.num_threads)
        sim.state[:] = physics
        sim.rollout(S * self.frame_skip, control=per_substep, record=())
        return sim.state.copy()

    def get_state(self) -> dict[str, np.ndarray]:
        """Every member's physics row, elapsed steps, observation and, for tasks with a velocity
        reward, ``position`` (what the next reward differences against), for exact resumption."""
        state = {"physics": self.physics.copy(), "elapsed_steps": self.elapsed.copy(), "obs": self._obs.copy()}
        if self._position is not None:
            state["position"] = self._position.copy()
        return state

    def set_state(self, state: dict[str, np.ndarray]) -> None:
        """Inverse of :meth:`get_state`."""
        physics = np.asarray(state["physics"], np.float64)
        if physics.shape != self.physics.shape:
            raise ValueError(f"saved env state has shape {physics.shape}, this batch needs {self.physics.shape}")
        if self._position is not None:
            position = np.asarray(state.get("position", np.zeros(0)), np.float64)
            if position.shape != self._position.shape:
                raise ValueError(f"saved env position has shape {position.shape}, this batch needs {self._position.shape}")
            self._position = position.copy()
        self.physics[:] = physics
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
        if self._position is not None:
            self._position[target] = self._position[source]
        return self._obs.copy()

    def close(self) -> None:
        self.sim = None  # the batch's threads end with it
