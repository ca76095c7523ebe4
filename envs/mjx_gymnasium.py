"""Gymnasium's MuJoCo tasks on MuJoCo-XLA, faithful to their ``-v5`` classes.

Each task (:data:`PORTS`) is built on ``mujoco.mjx`` from the model gymnasium's class loads, and
computes what that class computes: the observation, the reward in gymnasium's order of
operations, the termination, the frame skip and the reset noise. The task's weights, ranges, frame
skip and model file are read from an unwrapped gymnasium env that is never stepped, so they have one
source, as in the threaded C MuJoCo batch (:mod:`pes_rl.envs.mujoco_threaded`), and the keyword
arguments gymnasium's class accepts (``forward_reward_weight=``, ...) apply here too. So a policy
moves between the gymnasium and mjx backends unchanged. What differs from gymnasium:

- resets draw from ``jax.random``, not from the env's seeded numpy generator: the same seed gives
  other initial states, from the same distribution;
- JAX computes in float32 unless ``jax_enable_x64`` is set; in float64, trajectories agree with C
  MuJoCo's to rounding error (``tests/test_mjx_gymnasium.py``);
- Swimmer's and Hopper's Newton solver caps its line search at 6 iterations
  (:attr:`Port.ls_iterations`; MuJoCo's is 50). C MuJoCo stops the line search once converged; MJX
  runs it as a fixed-length ``scan`` of ``cond``s, which ``vmap`` turns into selects, so every env
  pays every iteration of the cap. For Hopper, 32 envs x 300 env steps of uniform random actions
  (falls and floor contacts included) are bit-identical at 6 and at 50, and the env step is 2.2x
  faster on the CPU; Walker2d's differ from step 52 even at 16, HalfCheetah's at 6, so they keep 50
  (``docs/perf/2026-11-26g/ls_cap_ports.py``). The float64 parity tests run with the caps.

Hopper, Walker2d and HalfCheetah read only ``qpos`` and ``qvel``. Ant and Humanoid read
``cfrc_ext``, which needs ``mj_rnePostConstraint`` after the step; they are not ported (on mjx the
short names ``ant`` and ``humanoid`` are Brax's tasks).

Two things shrink the XLA program an env step compiles to, with no effect on the dynamics (tested):

- :func:`rk4_step` is ``mjx.step`` with one copy of ``mjx.forward`` instead of four, for the RK4
  models. ``mjx.step`` runs ``forward`` and then RK4's three later stages in a ``scan`` unrolled
  three times, so XLA compiles the whole forward pass (the constraint solver and its line search
  included) four times per physics step. Here all four stages are one ``scan`` step each; the first
  stage's offset is zero, so it evaluates at the current state exactly as the leading ``forward``
  does. The arithmetic is MJX's; only XLA's fusion of it differs, which moves float32 rounding by
  an ulp now and then (in float64 the two agree to 5e-12 after 300 Swimmer env steps).
- :meth:`MjxGymnasiumEnv.reset` does not run ``forward``: the observation needs only ``qpos`` and
  ``qvel``, and every step begins with a ``forward`` of its own (bit-identical steps). That removes
  another copy from the PES window, which resets particles inside its ``scan``.
"""

from __future__ import annotations

import dataclasses
from typing import Any, Callable

import gymnasium as gym
import jax
import jax.numpy as jnp
import mujoco
import numpy as np
from pes_rl.envs.base import State, quiet_mjx_import, time_limit
from pes_rl.envs.gymnasium_backend import GYMNASIUM_IDS, MJX_PORTS

with quiet_mjx_import():
    from mujoco import mjx

# MuJoCo's RK4 Butcher tableau (engine_forward.c, mj_RK4): stage offsets a_i and weights b_i
RK4_A = np.array([0.0, 0.5, 0.5, 1.0])
RK4_B = np.array([1.0 / 6.0, 1.0 / 3.0, 1.0 / 3.0, 1.0 / 6.0])


def check_rk4_step_applies(mj_model: mujoco.MjModel) -> None:
    """:func:`rk4_step` integrates positions as ``qpos + dt * qvel``, which holds for hinge and
    slide joints only, and carries no actuator activations; refuse any other model."""
    scalar = (mujoco.mjtJoint.mjJNT_HINGE, mujoco.mjtJoint.mjJNT_SLIDE)
    if mj_model.opt.integrator != mujoco.mjtIntegrator.mjINT_RK4:
        raise ValueError("rk4_step: the model's integrator must be RK4")
    if mj_model.na != 0 or any(int(t) not in scalar for t in mj_model.jnt_type):
        raise ValueError("rk4_step: the model must have only hinge and slide joints and no activations")


def rk4_step(model: mjx.Model, data: mjx.Data) -> mjx.Data:
    """One physics step of the classical Runge-Kutta method, as ``mjx.step`` with MuJoCo's RK4
    (mj_RK4) computes it, for the models :func:`check_rk4_step_applies` accepts.

    Stage i evaluates the acceleration ``k_i = forward(q0 + a_i dt v_{i-1}, v0 + a_i dt k_{i-1})``
    at time ``t0 + a_i dt``, where ``v_i = v0 + a_i dt k_{i-1}`` is the velocity it was evaluated
    at and ``a_0 = 0``; then ``v1 = v0 + dt sum_i b_i k_i`` and ``q1 = q0 + dt sum_i b_i v_i``. The
    arithmetic is MJX's, operation for operation (XLA may round differently where it fuses
    differently); the four ``forward`` evaluations are the steps of one ``scan`` (module docstring).
    """
    dt = model.opt.timestep
    zero = jnp.zeros_like(data.qvel)

    def stage(carry, x):
        qvel_sum, qacc_sum, kqvel, kqacc, d = carry
        a, b, t = x
        # the stage's point: for the first stage (a = 0) exactly (q0, v0, t0)
        kqpos = data.qpos + dt * (a * kqvel)
        kqvel = data.qvel + (a * kqacc) * dt
        d = mjx.forward(model, d.replace(qpos=kqpos, qvel=kqvel, time=t))
        return (qvel_sum + b * kqvel, qacc_sum + b * d.qacc, kqvel, d.qacc, d), None

    table = jnp.stack([jnp.asarray(RK4_A), jnp.asarray(RK4_B), data.time + RK4_A * dt], axis=1)
    (qvel_sum, qacc_sum, _, _, last), _ = jax.lax.scan(stage, (zero, zero, zero, zero, data), table)
    # MJX's _advance: the velocity from the weighted accelerations, the position from the weighted
    # velocities, and the last stage's acceleration kept as the next step's solver warm start
    return last.replace(
        qpos=data.qpos + dt * qvel_sum, qvel=data.qvel + qacc_sum * dt, time=data.time + dt, qacc_warmstart=last.qacc
    )


# ---------------------------------------------------------------------------------------------
# The tasks' rules: ``env`` is the unwrapped gymnasium env (weights, ranges, dt; never stepped)


def planar_observe(skipped: int, clip_qvel: bool) -> Callable[[mjx.Data, Any], jax.Array]:
    """``_get_obs`` of the planar tasks: qpos without its first ``skipped`` entries (when
    ``exclude_current_positions_from_observation``), then qvel, clipped to ±10 if ``clip_qvel``."""

    def observe(data: mjx.Data, env) -> jax.Array:
        skip = skipped if env._exclude_current_positions_from_observation else 0
        qvel = jnp.clip(data.qvel, -10, 10) if clip_qvel else data.qvel
        return jnp.concatenate([data.qpos[skip:], qvel])

    return observe


def hopper_healthy(data: mjx.Data, env) -> jax.Array:
    """Hopper-v5 ``is_healthy``: state (from qpos[2]), height and angle inside their open ranges."""
    z, angle = data.qpos[1], data.qpos[2]
    state = jnp.concatenate([data.qpos, data.qvel])[2:]
    lo, hi = env._healthy_state_range
    zlo, zhi = env._healthy_z_range
    alo, ahi = env._healthy_angle_range
    return jnp.all((lo < state) & (state < hi)) & (zlo < z) & (z < zhi) & (alo < angle) & (angle < ahi)


def walker2d_healthy(data: mjx.Data, env) -> jax.Array:
    """Walker2d-v5 ``is_healthy``: height and angle inside their open ranges."""
    z, angle = data.qpos[1], data.qpos[2]
    zlo, zhi = env._healthy_z_range
    alo, ahi = env._healthy_angle_range
    return (zlo < z) & (z < zhi) & (alo < angle) & (angle < ahi)


def locomotion_reward(x_before: jax.Array, data: mjx.Data, action: jax.Array, env,
                      healthy: jax.Array | None) -> tuple[jax.Array, jax.Array]:
    """``step`` of the planar locomotion tasks in gymnasium's order of operations:
    ``(w_f · v_x + healthy · r_h) − w_c · ‖a‖²`` with ``v_x = (x_after − x_before) / dt``; the
    control cost is charged on the action as given (the actuators see it clipped). Terminates when
    unhealthy, if the task terminates; ``healthy`` None: no healthy reward and no termination."""
    x_velocity = (data.qpos[0] - x_before) / env.dt
    rewards = env._forward_reward_weight * x_velocity
    if healthy is not None:
        rewards = rewards + healthy * env._healthy_reward
    reward = rewards - env._ctrl_cost_weight * jnp.sum(jnp.square(action))
    if healthy is None:
        return reward, jnp.zeros((), bool)
    return reward, jnp.logical_and(jnp.logical_not(healthy), bool(env._terminate_when_unhealthy))


def uniform_reset(key: jax.Array, env) -> tuple[jax.Array, jax.Array]:
    """``reset_model`` of Swimmer, Hopper and Walker2d: init_qpos and init_qvel plus ``U(-s, s)``,
    ``s = reset_noise_scale``."""
    k_pos, k_vel = jax.random.split(key)
    s = env._reset_noise_scale
    qpos = jnp.asarray(env.init_qpos) + jax.random.uniform(k_pos, env.init_qpos.shape, minval=-s, maxval=s)
    qvel = jnp.asarray(env.init_qvel) + jax.random.uniform(k_vel, env.init_qvel.shape, minval=-s, maxval=s)
    return qpos, qvel


def normal_qvel_reset(key: jax.Array, env) -> tuple[jax.Array, jax.Array]:
    """``reset_model`` of HalfCheetah: uniform qpos noise, then ``s · N(0, 1)`` on qvel."""
    k_pos, k_vel = jax.random.split(key)
    s = env._reset_noise_scale
    qpos = jnp.asarray(env.init_qpos) + jax.random.uniform(k_pos, env.init_qpos.shape, minval=-s, maxval=s)
    qvel = jnp.asarray(env.init_qvel) + s * jax.random.normal(k_vel, env.init_qvel.shape)
    return qpos, qvel


@dataclasses.dataclass(frozen=True)
class Port:
    """One gymnasium task on MJX.

    Attributes:
      observe: ``_get_obs``: ``(data, env) -> obs``.
      healthy: ``is_healthy``: ``(data, env) -> bool``; None for a task without a healthy reward
        or termination.
      reset: ``reset_model``'s draws: ``(key, env) -> (qpos, qvel)``.
      ls_iterations: the Newton solver's line-search cap (MuJoCo's is 50); None keeps the model's.
    """

    observe: Callable[[mjx.Data, Any], jax.Array]
    healthy: Callable[[mjx.Data, Any], jax.Array] | None
    reset: Callable[[jax.Array, Any], tuple[jax.Array, jax.Array]]
    ls_iterations: int | None = None


PORTS: dict[str, Port] = {
    # line-search caps where bit-identical to MuJoCo's 50 (module docstring; Swimmer: pes_rl.envs.mjx_swimmer)
    "swimmer": Port(planar_observe(2, clip_qvel=False), None, uniform_reset, ls_iterations=6),
    "hopper": Port(planar_observe(1, clip_qvel=True), hopper_healthy, uniform_reset, ls_iterations=6),
    "walker2d": Port(planar_observe(1, clip_qvel=True), walker2d_healthy, uniform_reset),
    "halfcheetah": Port(planar_observe(1, clip_qvel=False), None, normal_qvel_reset),
}
if tuple(PORTS) != MJX_PORTS:
    raise ImportError(f"mjx_gymnasium.PORTS {tuple(PORTS)} and gymnasium_backend.MJX_PORTS {MJX_PORTS} must agree")


class MjxGymnasiumEnv:
    """A gymnasium ``-v5`` task of :data:`PORTS` as a pure, unbatched JAX environment (see the
    module docstring)."""

    backend = "mjx"

    def __init__(
        self,
        name: str,
        episode_length: int = 1000,
        impl: str = "jax",
        ls_iterations: int | None = None,
        compact_rk4: bool = True,
        **gym_kwargs: Any,
    ):
        """``name``: a key of :data:`PORTS` (gymnasium's id: ``GYMNASIUM_IDS[name]``). ``impl``: MJX's
        implementation, ``jax`` (XLA) or ``warp`` (MJX-Warp's kernels).

        ``ls_iterations``: the solver's line-search cap (None: the port's, else the model's own).

        ``compact_rk4``: RK4 models step by :func:`rk4_step` (one ``forward`` to compile; impl jax
        only); False: by ``mjx.step`` itself.

        ``gym_kwargs``: keyword arguments of gymnasium's class (``ctrl_cost_weight=``, ...).
        """
        if name not in PORTS:
            raise ValueError(f"env must be one of {', '.join(PORTS)}; got {name!r}")
        self.name = name
        self.port = PORTS[name]
        # the task's weights, ranges, frame skip and model file: gymnasium's own, never stepped
        self.gym_env = gym.make(GYMNASIUM_IDS[name], **gym_kwargs).unwrapped
        self.mj_model = mujoco.MjModel.from_xml_path(self.gym_env.fullpath)
        ls_iterations = self.port.ls_iterations if ls_iterations is None else ls_iterations
        if ls_iterations is not None:
            self.mj_model.opt.ls_iterations = int(ls_iterations)
        self.impl = impl
        # this process's own device: jax.devices()[0] (put_model's default) may be another process's
        self.model = mjx.put_model(self.mj_model, device=jax.local_devices()[0], impl=impl)
        self.episode_length = int(episode_length)
        self.frame_skip = int(self.gym_env.frame_skip)
        self.dt = float(self.gym_env.dt)
        self.observation_size = int(self.gym_env.observation_space.shape[0])
        self.action_size = self.mj_model.nu
        self.action_low = self.mj_model.actuator_ctrlrange[:, 0].astype(np.float32)
        self.action_high = self.mj_model.actuator_ctrlrange[:, 1].astype(np.float32)
        # MJX-Warp's step is its own kernel (nothing for XLA to compile four times)
        compact_rk4 = compact_rk4 and impl == "jax" and self.mj_model.opt.integrator == mujoco.mjtIntegrator.mjINT_RK4
        if compact_rk4:
            check_rk4_step_applies(self.mj_model)
        self._physics_step = rk4_step if compact_rk4 else mjx.step

    def _obs(self, data: mjx.Data) -> jax.Array:
        return self.port.observe(data, self.gym_env)

    def state_from_qpos_qvel(self, qpos: jax.Array, qvel: jax.Array, forward: bool = True) -> State:
        """A state at exactly ``(qpos, qvel)``, as gymnasium's ``set_state`` makes it.

        ``forward=False`` leaves the derived quantities (body positions, contacts, ...) unset:
        the observation and the next step do not read them (the step starts with ``forward``).
        """
        # MJX-Warp builds its data from the C model only
        source = self.mj_model if self.impl == "warp" else self.model
        data = mjx.make_data(source, impl=self.impl).replace(qpos=qpos, qvel=qvel)
        if forward:
            data = mjx.forward(self.model, data)
        zero = jnp.zeros((), jnp.float32)
        return State(
            physics=data,
            obs=self._obs(data),
            reward=zero,
            done=jnp.zeros((), bool),
            terminated=jnp.zeros((), bool),
            steps=jnp.zeros((), jnp.int32),
        )

    def reset(self, key: jax.Array) -> State:
        """An initial state with gymnasium's reset noise; without ``forward`` (module docstring):
        a state to step from, not to read body positions from."""
        qpos, qvel = self.port.reset(key, self.gym_env)
        return self.state_from_qpos_qvel(qpos, qvel, forward=False)

    def step(self, state: State, action: jax.Array) -> State:
        """One env step: ``frame_skip`` physics steps, the task's reward and termination, the
        time limit."""
        ctrl = jnp.clip(action, self.action_low, self.action_high)
        data = state.physics.replace(ctrl=ctrl)
        x_before = data.qpos[0]
        data = jax.lax.fori_loop(0, self.frame_skip, lambda _, d: self._physics_step(self.model, d), data)
        healthy = None if self.port.healthy is None else self.port.healthy(data, self.gym_env)
        reward, terminated = locomotion_reward(x_before, data, action, self.gym_env, healthy)
        steps = state.steps + 1
        return State(
            physics=data,
            obs=self._obs(data),
            reward=reward.astype(jnp.float32),
            done=time_limit(steps, terminated, self.episode_length),
            terminated=terminated,
            steps=steps,
        )
