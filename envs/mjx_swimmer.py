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
    ):
        """``impl``: MJX's implementation, ``jax`` (XLA) or ``warp`` (MJX-Warp's kernels).

        ``ls_iterations``: the solver's line-search cap (50 is MuJoCo's own; see the module docstring).
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

    def _obs(self, data: mjx.Data) -> jax.Array:
        return jnp.concatenate([data.qpos[2:], data.qvel])

    def state_from_qpos_qvel(self, qpos: jax.Array, qvel: jax.Array) -> State:
        """A state at exactly ``(qpos, qvel)``, as gymnasium's ``set_state`` makes it."""
        # MJX-Warp builds its data from the C model only
        source = self.mj_model if self.impl == "warp" else self.model
        data = mjx.make_data(source, impl=self.impl).replace(qpos=qpos, qvel=qvel)
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
        """Initial state with gymnasium's reset noise ``U(-s, s)`` on qpos and qvel."""
        k_pos, k_vel = jax.random.split(key)
        s = self.reset_noise_scale
        qpos = self._init_qpos + jax.random.uniform(k_pos, self._init_qpos.shape, minval=-s, maxval=s)
        qvel = self._init_qvel + jax.random.uniform(k_vel, self._init_qvel.shape, minval=-s, maxval=s)
        return self.state_from_qpos_qvel(qpos, qvel)

    def step(self, state: State, action: jax.Array) -> State:
        """One env step: ``frame_skip`` physics steps, Swimmer-v5's reward, the time limit.

        Reward: ``w_f * (x_after - x_before) / dt - w_c * ||a||^2``. As in
        gymnasium the control cost is charged on the action as given, while the
        actuators see it clipped to ``ctrlrange``.
        """
        ctrl = jnp.clip(action, self.action_low, self.action_high)
        data = state.physics.replace(ctrl=ctrl)
        x_before = data.qpos[0]
        data = jax.lax.fori_loop(0, self.frame_skip, lambda _, d: mjx.step(self.model, d), data)
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
