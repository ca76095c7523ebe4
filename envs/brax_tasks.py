"""Brax's MuJoCo tasks on the mjx pipeline, behind :class:`pes_rl.envs.base.JaxEnv`.

Brax reports termination in ``done`` and leaves time limits to a wrapper; here
the time limit is ours, so ``terminated`` is Brax's ``done`` and ``done`` adds
the limit.
"""

from __future__ import annotations

import contextlib
import functools

import jax
from pes_rl.envs.base import UpstreamEnv, quiet_mjx_import

# Our short name -> Brax's registered name.
BRAX_NAMES = {
    "ant": "ant",
    "halfcheetah": "halfcheetah",
    "hopper": "hopper",
    "walker2d": "walker2d",
    "inverted_pendulum": "inverted_pendulum",
    "inverted_double_pendulum": "inverted_double_pendulum",
    "reacher": "reacher",
    "humanoid": "humanoid",
    "pusher": "pusher",
}

# The Newton solver's line-search cap per task, where ours differs from Brax's (MuJoCo's 50). MJX
# runs every iteration of the cap under vmap (a scan of conds turned into selects) where C MuJoCo
# stops when converged, so the cap is most of the step's cost. Hopper's line search converges in 3:
# 32 envs x 300 env steps of uniform random actions (falls and floor contacts included) are
# bit-identical at caps 3 and 6 to 50, and the env step is 2.1-2.8x faster on the CPU (at 2 they
# differ). Walker2d and HalfCheetah are not bit-identical even at 16 and keep 50; Ant and Humanoid
# keep Brax's own 4.
LS_ITERATIONS = {"hopper": 6}


@contextlib.contextmanager
def _models_on_a_local_device():
    """``mjx.put_model`` places a model on ``jax.devices()[0]``, which in a multi-process job
    belongs to process 0 (the others would hold no data): place it on this process's own
    first device instead. Brax calls ``put_model`` with no device argument."""
    from mujoco import mjx

    if jax.process_count() == 1:
        yield
        return
    put_model = mjx.put_model
    mjx.put_model = functools.partial(put_model, device=jax.local_devices()[0])
    try:
        yield
    finally:
        mjx.put_model = put_model


class BraxEnv(UpstreamEnv):
    """A Brax ``PipelineEnv`` created with ``backend='mjx'``, without auto-reset."""

    def __init__(self, name: str, episode_length: int = 1000, ls_iterations: int | None = None, **brax_kwargs):
        """``name``: a key of :data:`BRAX_NAMES`, or that key prefixed ``brax_``.

        ``ls_iterations``: the solver's line-search cap; unset, :data:`LS_ITERATIONS`' entry for
        the task, else Brax's own."""
        with quiet_mjx_import():  # brax is heavy: imported only when a Brax task is made
            from brax import envs as brax_envs

        self.name = name
        task = name.removeprefix("brax_")
        with _models_on_a_local_device():
            self.brax_env = brax_envs.get_environment(BRAX_NAMES[task], backend="mjx", **brax_kwargs)
        ls_iterations = LS_ITERATIONS.get(task) if ls_iterations is None else ls_iterations
        if ls_iterations is not None:
            self.brax_env.sys = self.brax_env.sys.tree_replace({"opt.ls_iterations": int(ls_iterations)})
        self.upstream = self.brax_env
        self.episode_length = int(episode_length)
        self.dt = float(self.brax_env.dt)
        self.action_size = int(self.brax_env.action_size)
        self._set_action_bounds(self.brax_env.sys.mj_model)
        self.observation_size = int(jax.eval_shape(self.brax_env.reset, jax.random.PRNGKey(0)).obs.shape[-1])

    @property
    def mj_model(self):
        """The C MuJoCo model (for rendering)."""
        return self.brax_env.sys.mj_model
