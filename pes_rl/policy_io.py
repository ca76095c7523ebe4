"""Turning trained parameters into a plain numpy policy callable."""

from __future__ import annotations

from typing import Callable

import jax
import numpy as np

from agents.normalization import NormalizerState, normalize
from agents.policies import Policy


def make_batched_act(policy: Policy, unravel, normalize_obs: bool):
    """``act(theta, normalizer, obs_batch) -> actions``, jitted once per policy."""

    def act(theta, normalizer, obs):
        return policy.apply(unravel(theta), normalize(normalizer, obs, normalize_obs))

    return jax.jit(jax.vmap(act, in_axes=(None, None, 0)))


def policy_callable(batched_act, theta, normalizer: NormalizerState) -> Callable[[np.ndarray], np.ndarray]:
    """A function mapping an observation (or a batch) to a numpy action (or a batch)."""

    def act(obs: np.ndarray) -> np.ndarray:
        obs = np.asarray(obs, np.float32)
        single = obs.ndim == 1
        actions = np.asarray(batched_act(theta, normalizer, obs[None] if single else obs))
        return actions[0] if single else actions

    return act
