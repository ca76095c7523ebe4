"""Policies from a config, and trained parameters as a plain numpy policy callable.

A leaf module (agents only): the trainer, loading, video and the benchmark all build
their policies here.
"""

from __future__ import annotations

import math
from typing import Callable

import jax
import numpy as np
from jax.flatten_util import ravel_pytree

from pes_rl.agents.normalization import NormalizerState, normalize
from pes_rl.agents.policies import Policy, make_policy


def build_policy(config, observation_size: int, action_size: int, low, high) -> tuple[Policy, jax.Array, Callable]:
    """The policy ``config`` asks for, its flat initial parameters and the ``unravel`` back to a pytree."""
    policy = make_policy(config.policy, observation_size, action_size, low, high, config.hidden)
    params = policy.init(jax.random.PRNGKey(config.seed))
    flat, unravel = ravel_pytree(params)
    return policy, flat, unravel


def parameter_count(config, observation_size: int, action_size: int) -> int:
    """How many parameters the policy has, computed from shapes alone (nothing is allocated)."""
    low, high = -np.ones(action_size, np.float32), np.ones(action_size, np.float32)
    policy = make_policy(config.policy, observation_size, action_size, low, high, config.hidden)
    shapes = jax.eval_shape(policy.init, jax.random.PRNGKey(0))
    return sum(math.prod(s.shape) for s in jax.tree_util.tree_leaves(shapes))


def apply_flat(policy: Policy, unravel) -> Callable:
    """``(flat θ, obs) -> action``: the policy on flat parameters."""
    return lambda theta, obs: policy.apply(unravel(theta), obs)


def make_batched_act(policy: Policy, unravel, normalize_obs: bool):
    """``act(theta, normalizer, obs_batch) -> actions``, jitted once per policy."""

    def act(theta, normalizer, obs):
        return policy.apply(unravel(theta), normalize(normalizer, obs, normalize_obs))

    return jax.jit(jax.vmap(act, in_axes=(None, None, 0)))


def policy_callable(batched_act, theta, normalizer: NormalizerState) -> Callable[[np.ndarray], np.ndarray]:
    """A function mapping an observation (or a batch) to a numpy action (or a batch).

    It refuses, with a one-line ``ValueError``, observations of the wrong shape and
    non-finite ones (which would otherwise come back as NaN actions without a word)."""
    size = int(np.shape(normalizer.mean)[-1])
    # on the device once, not converted again at every call (a call per env step in an evaluation)
    theta, normalizer = jax.device_put(theta), jax.device_put(normalizer)

    def act(obs: np.ndarray) -> np.ndarray:
        try:
            obs = np.asarray(obs, np.float32)
        except (TypeError, ValueError):
            raise ValueError(f"obs must be a numeric array of shape ({size},) or (batch, {size})") from None
        if obs.ndim not in (1, 2) or obs.shape[-1] != size or obs.size == 0:
            raise ValueError(f"obs must have shape ({size},) or (batch, {size}); got {obs.shape}")
        if not np.isfinite(obs).all():
            raise ValueError("obs contains NaN or inf; the policy needs finite observations")
        single = obs.ndim == 1
        actions = np.asarray(batched_act(theta, normalizer, obs[None] if single else obs))
        return actions[0] if single else actions

    return act
