"""Swimmer on MuJoCo-XLA, faithful to gymnasium's ``Swimmer-v5``.

Brax's own swimmer runs only on its generalized backend and crashes on current JAX, so this one is
built directly on ``mujoco.mjx`` from gymnasium's ``swimmer.xml`` (RK4 integrator, viscous fluid
forces), as every port of :mod:`pes_rl.envs.mjx_gymnasium`: observation ``(qpos[2:], qvel)``,
frame skip 4 (dt 0.04 s), reward ``(x_after - x_before)/dt - 1e-4 * ||a||^2``, reset noise
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

from pes_rl.envs.mjx_gymnasium import PORTS, MjxGymnasiumEnv, check_rk4_step_applies, rk4_step

__all__ = ["LS_ITERATIONS", "MjxSwimmer", "check_rk4_step_applies", "rk4_step"]

# the Newton line search's cap (MuJoCo's default 50): bit-identical here, see the module docstring
LS_ITERATIONS = PORTS["swimmer"].ls_iterations


class MjxSwimmer(MjxGymnasiumEnv):
    """Swimmer-v5 as a pure, unbatched JAX environment (see the module docstring)."""

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
        only); False: by ``mjx.step`` itself. The other arguments are Swimmer-v5's.
        """
        super().__init__(
            "swimmer", episode_length=episode_length, impl=impl, ls_iterations=ls_iterations,
            compact_rk4=compact_rk4, frame_skip=frame_skip, forward_reward_weight=forward_reward_weight,
            ctrl_cost_weight=ctrl_cost_weight, reset_noise_scale=reset_noise_scale,
        )
