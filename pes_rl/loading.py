"""Loading a trained run back: its config, parameters and a numpy policy."""

from __future__ import annotations

import json
import os
from typing import Callable

import jax.numpy as jnp
import numpy as np

import envs
from agents.normalization import NormalizerState
from pes_rl import checkpoint
from pes_rl.config import Config, ConfigError


def load_run(run_dir: str) -> tuple[Config, jnp.ndarray, NormalizerState]:
    """``(config, flat θ, normaliser)`` from ``RUN_DIR/config.json`` and the latest checkpoint."""
    path = os.path.join(run_dir, "config.json")
    if not os.path.exists(path):
        raise ConfigError(f"run_dir {run_dir!r} has no config.json (is it a pes-rl run directory?)")
    with open(path) as f:
        config = Config.from_dict(json.load(f))
    try:
        payload = checkpoint.restore(run_dir)
    except FileNotFoundError:
        raise ConfigError(f"run_dir {run_dir!r} has no checkpoint under checkpoints/") from None
    policy = payload["policy"]
    normalizer = NormalizerState(jnp.asarray(policy["obs_mean"]), jnp.asarray(policy["obs_var"]), jnp.asarray(policy["obs_count"]))
    return config, jnp.asarray(policy["params"]), normalizer


def env_for_policy(env_name: str, backend: str, horizon: int):
    """An env to build a policy for: the mjx env itself, or a one-member gymnasium batch
    (closed: only its sizes and bounds are needed)."""
    if backend == "mjx":
        return envs.make(env_name, "mjx", episode_length=horizon)
    env = envs.make(env_name, "gymnasium", num_envs=1, episode_length=horizon)
    env.close()
    return env


def policy_for_env(config: Config, theta: jnp.ndarray, env) -> tuple:
    """The run's ``(policy, unravel)`` rebuilt for ``env``; a one-line error when the env's
    observation or action size does not fit the trained parameters."""
    from pes_rl.trainer import build_policy

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
    from pes_rl.policy_io import make_batched_act, policy_callable

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

        self.config, _, _ = load_run(run_dir)
        self.env_id = env_id or envs.gymnasium_id(self.config.env)
        probe = gym.make(self.env_id)
        self.observation_space, self.action_space = probe.observation_space, probe.action_space
        probe.close()
        self._act = load_policy(run_dir)

    def act(self, obs: np.ndarray) -> np.ndarray:
        return self._act(obs).astype(self.action_space.dtype)

    __call__ = act

    def predict(self, obs: np.ndarray, state=None, episode_start=None, deterministic: bool = True):
        return self.act(obs), state
