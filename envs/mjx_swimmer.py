"""Swimmer on MuJoCo-XLA, faithful to gymnasium's ``Swimmer-v5``.

Brax's own swimmer runs only on its generalized backend and crashes on current
JAX, so this one is built directly on ``mujoco.mjx`` from gymnasium's
``swimmer.xml`` (RK4 integrator, viscous fluid forces). Everything gymnasium
does is reproduced: observation ``(qpos[2:], qvel)``, frame skip 4 (dt 0.04 s),
reward ``(x_after - x_before)/dt - 1e-4 * ||a||^2``, reset noise
``U(-0.1, 0.1)`` on ``qpos`` and ``qvel``, and a 1000-step time limit.

One solver setting differs from the XML, with no effect on the trajectory: the line search of the
Newton constraint solver is capped at ``LS_ITERATIONS`` iterations instead of MuJoCo's 50. C MuJoCo
stops the line search when it has converged; MJX runs it as a fixed-length ``scan`` of ``cond``s,
which ``vmap`` turns into selects, so every env pays all 50 iterations at every solver iteration.
Swimmer's only constraints are its two joint limits, and its line search converges within 2
iterations even when the limits are hit (400 bang-bang steps over 256 envs reach them 5.6% of the
time, and capping at 2 is bit-identical to 50 there; at 1 it is not). So 6 leaves a threefold margin,
and the env step runs ~1.9x faster on the CPU.

Two things shrink the XLA program an env step compiles to (the PES window compiles in about half
the time on the CPU), with no effect on the dynamics (tested):

- :func:`rk4_step` is ``mjx.step`` with one copy of ``mjx.forward`` instead of four. ``mjx.step``
  runs ``forward`` and then RK4's three later stages in a ``scan`` unrolled three times, so XLA
  compiles the whole forward pass (the constraint solver and its line search included) four
  times per physics step. Here all four stages are one ``scan`` step each; the first stage's
  offset is zero, so it evaluates at the current state exactly as the leading ``forward`` does.
  The arithmetic is MJX's; only XLA's fusion of it differs, which moves float32 rounding by an
  ulp now and then (in float64 the two agree to 5e-12 after 300 env steps).
- :meth:`MjxSwimmer.reset` does not run ``forward``: the observation needs only ``qpos`` and
  ``qvel``, and every step begins with a ``forward`` of its own (bit-identical steps). That
  removes a fifth copy from the PES window, which resets particles inside its ``scan``.
"""

from __future__ import annotations

import os

import gymnasium
import jax
import jax.numpy as jnp
import mujoco
import numpy as np
from pes_rl.envs.base import State, quiet_mjx_import, time_limit

with quiet_mjx_import():
    from mujoco import mjx

SWIMMER_XML = os.path.join(os.path.dirname(gymnasium.__file__), "envs", "mujoco", "assets", "swimmer.xml")
# the Newton line search's cap (MuJoCo's default 50): bit-identical here, see the module docstring
LS_ITERATIONS = 6
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


class MjxSwimmer:
    """Swimmer-v5 as a pure, unbatched JAX environment (see module docstring)."""

    name = "swimmer"
    backend = "mjx"

    def __init__(
        self,
        episode_length: int = 1000,
        frame_skip: int = 4,
        forward_reward_weight: float = 1.0,
        ctrl_cost_weight: float = 1e-4,
        reset_noise_scale: float = 0.1,
        impl: str = "jax",
        ls_iterations: int = LS_ITERATIONS,
        compact_rk4: bool = True,
    ):
        """``impl``: MJX's implementation, ``jax`` (XLA) or ``warp`` (MJX-Warp's kernels).

        ``ls_iterations``: the solver's line-search cap (50 is MuJoCo's own; see the module docstring).

        ``compact_rk4``: physics steps by :func:`rk4_step` (one ``forward`` to compile, impl jax
        only); False: by ``mjx.step`` itself.
        """
        self.mj_model = mujoco.MjModel.from_xml_path(SWIMMER_XML)
        self.mj_model.opt.ls_iterations = int(ls_iterations)
        self.impl = impl
        # this process's own device: jax.devices()[0] (put_model's default) may be another process's
        self.model = mjx.put_model(self.mj_model, device=jax.local_devices()[0], impl=impl)
        self.episode_length = int(episode_length)
        self.frame_skip = int(frame_skip)
        self.dt = float(self.mj_model.opt.timestep * frame_skip)
        self.forward_reward_weight = forward_reward_weight
        self.ctrl_cost_weight = ctrl_cost_weight
        self.reset_noise_scale = reset_noise_scale
        self.observation_size = self.mj_model.nq - 2 + self.mj_model.nv
        self.action_size = self.mj_model.nu
        self.action_low = self.mj_model.actuator_ctrlrange[:, 0].astype(np.float32)
        self.action_high = self.mj_model.actuator_ctrlrange[:, 1].astype(np.float32)
        self._init_qpos = jnp.asarray(self.mj_model.qpos0)
        self._init_qvel = jnp.zeros(self.mj_model.nv)
        # MJX-Warp's step is its own kernel (nothing for XLA to compile four times)
        compact_rk4 = compact_rk4 and impl == "jax"
        if compact_rk4:
            check_rk4_step_applies(self.mj_model)
        self._physics_step = rk4_step if compact_rk4 else mjx.step

    def _obs(self, data: mjx.Data) -> jax.Array:
        return jnp.concatenate([data.qpos[2:], data.qvel])

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
        """Initial state with gymnasium's reset noise ``U(-s, s)`` on qpos and qvel; without
        ``forward`` (module docstring): a state to step from, not to read body positions from."""
        k_pos, k_vel = jax.random.split(key)
        s = self.reset_noise_scale
        qpos = self._init_qpos + jax.random.uniform(k_pos, self._init_qpos.shape, minval=-s, maxval=s)
        qvel = self._init_qvel + jax.random.uniform(k_vel, self._init_qvel.shape, minval=-s, maxval=s)
        return self.state_from_qpos_qvel(qpos, qvel, forward=False)

    def step(self, state: State, action: jax.Array) -> State:
        """One env step: ``frame_skip`` physics steps, Swimmer-v5's reward, the time limit.

        Reward: ``w_f * (x_after - x_before) / dt - w_c * ||a||^2``. As in
        gymnasium the control cost is charged on the action as given, while the
        actuators see it clipped to ``ctrlrange``.
        """
        ctrl = jnp.clip(action, self.action_low, self.action_high)
        data = state.physics.replace(ctrl=ctrl)
        x_before = data.qpos[0]
        data = jax.lax.fori_loop(0, self.frame_skip, lambda _, d: self._physics_step(self.model, d), data)
        x_velocity = (data.qpos[0] - x_before) / self.dt
        reward = self.forward_reward_weight * x_velocity - self.ctrl_cost_weight * jnp.sum(jnp.square(action))
        steps = state.steps + 1
        terminated = jnp.zeros((), bool)
        return State(
            physics=data,
            obs=self._obs(data),
            reward=reward.astype(jnp.float32),
            done=time_limit(steps, terminated, self.episode_length),
            terminated=terminated,
            steps=steps,
        )
