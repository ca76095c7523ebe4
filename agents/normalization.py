"""Running observation statistics, updated only *between* iterations.

Why between iterations: within one K-step window every particle must run a
fixed policy function of its parameters, otherwise the ± members of a pair see
different normalisers and the return difference mixes perturbation with
normaliser drift. The accumulated noise ξ still spans windows evaluated under
slightly different normalisers (the same kind of drift as θ itself changing
between truncations, which PES already tolerates); the drift shrinks like
1/(observations seen). Off by default, as in the PES paper.
"""

from __future__ import annotations

from typing import NamedTuple

import jax
import jax.numpy as jnp


class NormalizerState(NamedTuple):
    """Mean and (population) variance of every observation seen, and their count."""

    mean: jax.Array
    var: jax.Array
    count: jax.Array


def init_normalizer(observation_size: int) -> NormalizerState:
    return NormalizerState(
        mean=jnp.zeros((observation_size,), jnp.float32),
        var=jnp.ones((observation_size,), jnp.float32),
        count=jnp.zeros((), jnp.float32),
    )


MIN_STD = 1e-7  # a feature whose std is below this has been constant so far: it is ignored, not amplified


def normalize(state: NormalizerState, obs: jax.Array, enabled: bool) -> jax.Array:
    """``(o − μ) / σ`` when enabled, else ``o``; a feature with ``σ < 1e-7`` maps to 0.

    This is ARS's MeanStdFilter (Mania et al. 2018), unclipped. Clipping the normalised
    observation to ±10, as this function once did, halved the harness's ARS return on
    HalfCheetah-v5 at 1.2M env steps (seed 0: 1,751 clipped, 3,363 unclipped; plain ARS 3,220):
    early on, while the statistics rest on few states, the informative features are the large ones.
    """
    if not enabled:
        return obs
    std = jnp.sqrt(state.var)
    return jnp.where(std < MIN_STD, 0.0, (obs - state.mean) / jnp.maximum(std, MIN_STD))


def update_normalizer(state: NormalizerState, obs_sum: jax.Array, obs_sq_sum: jax.Array, count: jax.Array) -> NormalizerState:
    """Merge a batch given by its sums (Chan et al.'s parallel variance formula)."""
    batch_mean = obs_sum / jnp.maximum(count, 1.0)
    batch_var = jnp.maximum(obs_sq_sum / jnp.maximum(count, 1.0) - batch_mean**2, 0.0)
    total = state.count + count
    delta = batch_mean - state.mean
    mean = state.mean + delta * count / jnp.maximum(total, 1.0)
    m2 = state.var * state.count + batch_var * count + delta**2 * state.count * count / jnp.maximum(total, 1.0)
    var = jnp.where(total > 0, m2 / jnp.maximum(total, 1.0), state.var)
    return NormalizerState(mean, var, total)
