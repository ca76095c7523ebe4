"""MuJoCo Playground's DeepMind Control suite behind :class:`pes_rl.envs.base.JaxEnv`.

`MuJoCo Playground <https://github.com/google-deepmind/mujoco_playground>`_ is the maintained
successor of Brax's MJX environments. Its DM Control suite tasks (``CheetahRun``,
``WalkerWalk``, ...) load and step with no network access; they run on the mjx backend only
(there is no gymnasium version of them here). Install them with the optional extra
``pip install -e ".[playground]"`` (``playground==0.2.0``).

Playground reports termination in ``done`` (the DM Control tasks only when the physics turns NaN)
and leaves the time limit to a wrapper; here the time limit is ours, so ``terminated`` is
Playground's ``done`` and ``done`` adds the limit, as for Brax's tasks.

``impl`` chooses MJX's implementation: ``"jax"`` (MJX in JAX: XLA kernels on any device) or
``"warp"`` (MJX-Warp: NVIDIA Warp kernels called from JAX; they also run on the CPU).
"""

from __future__ import annotations

import jax

from pes_rl.envs.base import CPU_FAST_MATH, UpstreamEnv, quiet_mjx_import

# Every task of Playground 0.2.0's DM Control suite (mujoco_playground.dm_control_suite.ALL_ENVS;
# a test checks the two agree). Names only: playground itself is imported on first use.
PLAYGROUND_NAMES = (
    "AcrobotSwingup", "AcrobotSwingupSparse", "BallInCup", "CartpoleBalance", "CartpoleBalanceSparse",
    "CartpoleSwingup", "CartpoleSwingupSparse", "CheetahRun", "FingerSpin", "FingerTurnEasy",
    "FingerTurnHard", "FishSwim", "HopperHop", "HopperStand", "HumanoidStand", "HumanoidWalk",
    "HumanoidRun", "PendulumSwingup", "PointMass", "ReacherEasy", "ReacherHard", "SwimmerSwimmer6",
    "WalkerRun", "WalkerStand", "WalkerWalk",
)
IMPLS = ("jax", "warp")
INSTALL_HINT = 'pip install -e ".[playground]" (playground==0.2.0)'


class PlaygroundMissing(ImportError):
    """MuJoCo Playground is not installed."""


def dm_control_suite():
    """Playground's DM Control suite module; :class:`PlaygroundMissing` with the install line when absent."""
    try:
        with quiet_mjx_import():
            from mujoco_playground import dm_control_suite as suite
    except ImportError as e:
        raise PlaygroundMissing(f"MuJoCo Playground's tasks need the playground extra: {INSTALL_HINT}") from e
    return suite


class PlaygroundEnv(UpstreamEnv):
    """A Playground DM Control task, without auto-reset (see module docstring)."""

    # On the CPU, XLA without fast-math compiles MJX's forward kinematics of a long chain into code
    # whose cost grows about tenfold per link past four: SwimmerSwimmer6 stepped 96 env steps/s at
    # 64 envs, 11,669 with these options (equal rewards), CheetahRun 13.3k and 16.1k
    # (docs/tasks_and_presets.md, "CPU compiler options").
    cpu_compiler_options = CPU_FAST_MATH

    def __init__(self, name: str, episode_length: int = 1000, impl: str | None = None):
        """``impl``: ``"jax"``, ``"warp"``, or None for Playground's own default for the task."""
        if name not in PLAYGROUND_NAMES:
            raise ValueError(f"env must be one of {', '.join(PLAYGROUND_NAMES)}; got {name!r}")
        if impl is not None and impl not in IMPLS:
            raise ValueError(f"impl must be one of {', '.join(IMPLS)}; got {impl!r}")
        suite = dm_control_suite()
        overrides = {} if impl is None else {"impl": impl}
        self.name = name
        self.playground_env = suite.load(name, config_overrides=overrides)
        self.upstream = self.playground_env
        self.impl = str(self.playground_env.mjx_model.impl.value)
        self.episode_length = int(episode_length)
        self.dt = float(self.playground_env.dt)
        self.action_size = int(self.playground_env.action_size)
        self._set_action_bounds(self.playground_env.mj_model)
        obs = jax.eval_shape(self.playground_env.reset, jax.random.PRNGKey(0)).obs
        if not hasattr(obs, "shape") or len(obs.shape) != 1:  # vision / dict observations: not these tasks
            raise ValueError(f"env {name!r}: observations must be one flat array; got {obs}")
        self.observation_size = int(obs.shape[0])

    @property
    def mj_model(self):
        """The C MuJoCo model (for rendering)."""
        return self.playground_env.mj_model
