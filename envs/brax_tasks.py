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

    def __init__(self, name: str, episode_length: int = 1000, **brax_kwargs):
        with quiet_mjx_import():  # brax is heavy: imported only when a Brax task is made
            from brax import envs as brax_envs

        self.name = name
        with _models_on_a_local_device():
            self.brax_env = brax_envs.get_environment(BRAX_NAMES[name], backend="mjx", **brax_kwargs)
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
