"""Deterministic policies as pure functions of their parameters.

A :class:`Policy` is a pair ``init(key) -> params`` and
``apply(params, obs) -> action`` (Brax style: a policy is a function of
params, not an object holding them). Actions are clipped to the action space.
"""

from __future__ import annotations

from typing import Any, Callable, NamedTuple, Sequence

import jax
import jax.numpy as jnp
import numpy as np

POLICIES = ("linear", "mlp")

Params = Any


class Policy(NamedTuple):
    """``init(key) -> params``; ``apply(params, obs) -> action`` (unbatched obs)."""

    init: Callable[[jax.Array], Params]
    apply: Callable[[Params, jax.Array], jax.Array]


def _bounds(action_low, action_high) -> tuple[np.ndarray, np.ndarray]:
    """The action bounds as float32 numpy constants (``jnp.asarray`` here would dispatch a JAX
    program per policy before any training, ~20 ms each at start-up)."""
    return np.asarray(action_low, np.float32), np.asarray(action_high, np.float32)


def linear_policy(observation_size: int, action_size: int, action_low: np.ndarray, action_high: np.ndarray) -> Policy:
    """``a = clip(W o)``: no bias, ``W`` initialised to zero (the PES paper's Swimmer policy)."""
    low, high = _bounds(action_low, action_high)

    def init(key: jax.Array) -> Params:
        del key
        return {"w": jnp.zeros((action_size, observation_size), jnp.float32)}

    def apply(params: Params, obs: jax.Array) -> jax.Array:
        return jnp.clip(params["w"] @ obs, low, high)

    return Policy(init, apply)


def mlp_policy(
    observation_size: int,
    action_size: int,
    action_low: np.ndarray,
    action_high: np.ndarray,
    hidden: Sequence[int] = (64, 64),
) -> Policy:
    """``a = clip(W_L tanh(... tanh(W_1 o + b_1) ...) + b_L)``.

    Hidden layers use LeCun-normal weights; the output layer starts at zero so
    the initial policy emits zero actions, as the linear policy does.
    """
    low, high = _bounds(action_low, action_high)
    sizes = [observation_size, *hidden, action_size]

    def init(key: jax.Array) -> Params:
        layers = []
        keys = jax.random.split(key, len(sizes) - 1)
        for i, (k, n_in, n_out) in enumerate(zip(keys, sizes[:-1], sizes[1:])):
            last = i == len(sizes) - 2
            w = jnp.zeros((n_out, n_in)) if last else jax.random.normal(k, (n_out, n_in)) / jnp.sqrt(n_in)
            layers.append({"w": w.astype(jnp.float32), "b": jnp.zeros((n_out,), jnp.float32)})
        return {"layers": layers}

    def apply(params: Params, obs: jax.Array) -> jax.Array:
        h = obs
        for layer in params["layers"][:-1]:
            h = jnp.tanh(layer["w"] @ h + layer["b"])
        out = params["layers"][-1]
        return jnp.clip(out["w"] @ h + out["b"], low, high)

    return Policy(init, apply)


def constant_policy(action_size: int, value: float = 0.0) -> Policy:
    """``a = θ`` whatever the observation: an open-loop parameter vector (e.g. influence balancing)."""

    def init(key: jax.Array) -> Params:
        del key
        return {"theta": jnp.full((action_size,), value, jnp.float32)}

    def apply(params: Params, obs: jax.Array) -> jax.Array:
        del obs
        return params["theta"]

    return Policy(init, apply)


def make_policy(
    kind: str,
    observation_size: int,
    action_size: int,
    action_low: np.ndarray,
    action_high: np.ndarray,
    hidden: Sequence[int] = (64, 64),
) -> Policy:
    """Build policy ``kind`` (one of :data:`POLICIES`)."""
    if kind == "linear":
        return linear_policy(observation_size, action_size, action_low, action_high)
    if kind == "mlp":
        return mlp_policy(observation_size, action_size, action_low, action_high, hidden)
    raise ValueError(f"policy must be one of {', '.join(POLICIES)}; got {kind!r}")
