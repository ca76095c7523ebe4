"""Loading a trained run back: its config, parameters and a numpy policy."""

from __future__ import annotations

import os
from typing import Callable, NamedTuple

import jax.numpy as jnp
import numpy as np

from pes_rl import envs
from pes_rl.agents.normalization import NormalizerState
from pes_rl import checkpoint
from pes_rl.config import Config, ConfigError, load_config_file, validate
from pes_rl.policy_io import build_policy, make_batched_act, policy_callable

# The fields that decide what policy a run holds: a config.json without them is not a run's.
RUN_IDENTITY_FIELDS = ("env", "backend", "policy", "hidden", "normalize_obs", "horizon", "seed")


def load_run_config(run_dir: str) -> Config:
    """A run's ``config.json``, read and validated exactly as ``train`` validates a config."""
    if not isinstance(run_dir, (str, os.PathLike)) or not str(run_dir):
        raise ConfigError(f"run_dir must be a path to a pes-rl run directory; got {run_dir!r}")
    path = os.path.join(run_dir, "config.json")
    if not os.path.isdir(run_dir):
        raise ConfigError(f"run_dir {str(run_dir)!r} is not a directory")
    if not os.path.exists(path):
        raise ConfigError(f"run_dir {str(run_dir)!r} has no config.json (is it a pes-rl run directory?)")
    data = load_config_file(path, what="run config")
    missing = [name for name in RUN_IDENTITY_FIELDS if name not in data]
    if missing:
        raise ConfigError(f"run config {path!r} lacks {', '.join(missing)}: it is not a pes-rl run's config.json")
    try:
        config = Config.from_dict(data)
        validate(config)
    except ConfigError as e:
        raise ConfigError(f"run config {path!r}: {e}") from None
    return config


def load_run(run_dir: str) -> tuple[Config, jnp.ndarray, NormalizerState]:
    """``(config, flat θ, normaliser)`` from ``RUN_DIR/config.json`` and the newest readable checkpoint."""
    config = load_run_config(run_dir)
    try:
        payload = checkpoint.restore(run_dir)
    except FileNotFoundError:
        raise ConfigError(f"run_dir {str(run_dir)!r} has no checkpoint under checkpoints/") from None
    policy = payload["policy"]
    normalizer = NormalizerState(jnp.asarray(policy["obs_mean"]), jnp.asarray(policy["obs_var"]), jnp.asarray(policy["obs_count"]))
    return config, jnp.asarray(policy["params"]), normalizer


def env_for_policy(env_name: str, backend: str, horizon: int, impl: str | None = None):
    """An env to build a policy for: the mjx env itself (MJX implementation ``impl``), or a
    one-member gymnasium batch (closed: only its sizes and bounds are needed)."""
    if backend == "mjx":
        return envs.make(env_name, "mjx", episode_length=horizon, impl=impl)
    env = envs.make(env_name, "gymnasium", num_envs=1, episode_length=horizon)
    env.close()
    return env


def policy_for_env(config: Config, theta: jnp.ndarray, env) -> tuple:
    """The run's ``(policy, unravel)`` rebuilt for ``env``; a one-line error when the env's
    observation or action size does not fit the trained parameters."""
    policy, flat0, unravel = build_policy(config, env.observation_size, env.action_size, env.action_low, env.action_high)
    if flat0.shape != theta.shape:
        raise ConfigError(
            f"env {env.name!r} on {env.backend} (observation {env.observation_size}, action {env.action_size}) does not "
            f"match the run's policy ({theta.shape[0]} parameters where this env needs {flat0.shape[0]})"
        )
    return policy, unravel


def load_policy(run_dir: str, env=None) -> Callable[[np.ndarray], np.ndarray]:
    """A callable mapping a gymnasium observation (numpy, single or batched) to an action.

    ``env`` (optional) is any env with ``observation_size``/``action_size`` and
    action bounds; by default the run's env is built on the gymnasium backend.
    """
    config, theta, normalizer = load_run(run_dir)
    if env is None:
        env = env_for_policy(config.env, "gymnasium", config.horizon)
    policy, unravel = policy_for_env(config, theta, env)
    return policy_callable(make_batched_act(policy, unravel, config.normalize_obs), theta, normalizer)


class PolicyAgent:
    """A trained run as an agent object for your own gymnasium code.

    ``agent.act(obs)`` / ``agent(obs)`` return an action in the env's action
    space; ``agent.predict(obs)`` follows stable-baselines' ``(action, state)``
    convention. ``observation_space``/``action_space`` are the gymnasium spaces
    the policy was built for.
    """

    def __init__(self, run_dir: str, env_id: str | None = None):
        import gymnasium as gym

        from pes_rl.envs.gymnasium_backend import checked_factory

        config, theta, normalizer = load_run(run_dir)
        self.config = config
        try:
            self.env_id = env_id or envs.gymnasium_id(config.env)
            probe = checked_factory(self.env_id, lambda: gym.make(self.env_id))()
        except (ValueError, gym.error.Error) as e:
            raise ConfigError(str(e).splitlines()[0]) from None
        self.observation_space, self.action_space = probe.observation_space, probe.action_space
        probe.close()
        spaces = _Spaces.of(self.env_id, self.observation_space, self.action_space)
        policy, unravel = policy_for_env(config, theta, spaces)  # refuses spaces the policy was not built for
        self._act = policy_callable(make_batched_act(policy, unravel, config.normalize_obs), theta, normalizer)

    def act(self, obs: np.ndarray) -> np.ndarray:
        return self._act(obs).astype(self.action_space.dtype)

    __call__ = act

    def predict(self, obs: np.ndarray, state=None, episode_start=None, deterministic: bool = True):
        return self.act(obs), state


class _Spaces(NamedTuple):
    """An env's sizes and action bounds, read from its gymnasium spaces (what a policy is built for)."""

    name: str
    backend: str
    observation_size: int
    action_size: int
    action_low: np.ndarray
    action_high: np.ndarray

    @classmethod
    def of(cls, env_id: str, observation_space, action_space) -> "_Spaces":
        from pes_rl.envs.gymnasium_backend import check_box_action_space

        check_box_action_space(env_id, action_space)
        if len(getattr(observation_space, "shape", None) or ()) != 1:
            raise ConfigError(f"env {env_id!r} has observation space {observation_space}; a 1-D Box is needed")
        return cls(env_id, "gymnasium", int(observation_space.shape[0]), int(action_space.shape[0]),
                   np.asarray(action_space.low, np.float32), np.asarray(action_space.high, np.float32))
