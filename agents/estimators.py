"""The PES estimator's math, one pure function per equation.

Notation (REFERENCE.md): P = 2N particles (N antithetic pairs), particle p runs
``θ + ε_p`` with ``ε_{p+N} = -ε_p``; ``ξ_p`` is the sum of every perturbation
particle p has run since its current episode began; ``R_{p,t}`` is its reward
at step t of the K-step window; ``σ`` the noise scale.

Convention: rewards are *summed* over the window's K steps (not averaged), and
the estimate is an ascent direction for the Gaussian-smoothed expected return.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp


def antithetic(noise: jax.Array) -> jax.Array:
    """``[ε_1..ε_N] -> [ε_1..ε_N, -ε_1..-ε_N]`` (pairs are ``p`` and ``p + N``)."""
    return jnp.concatenate([noise, -noise], axis=0)


def first_episode_mask(dones: jax.Array) -> jax.Array:
    """``m_{p,t} = 1`` iff no episode of particle p ended at a step before t.

    Steps with ``m = 1`` belong to the episode that was running when the window
    began (the done step itself included); steps after a reset have ``m = 0``.
    """
    dones = dones.astype(jnp.float32)
    ended_before = jnp.cumsum(dones, axis=-1) - dones
    return (ended_before == 0).astype(jnp.float32)


def window_returns(rewards: jax.Array, dones: jax.Array) -> tuple[jax.Array, jax.Array]:
    """Per particle: the return of the window's first episode ``Σ_t m_{p,t} R_{p,t}``
    (weighted by ``ξ_p + ε_p``) and of the whole window ``Σ_t R_{p,t}``."""
    return jnp.sum(rewards * first_episode_mask(dones), axis=-1), jnp.sum(rewards, axis=-1)


def pes_gradient(
    accumulator: jax.Array, epsilon: jax.Array, rewards: jax.Array, dones: jax.Array, sigma: float
) -> jax.Array:
    """PES estimate with per-step masking of episode ends inside the window.

    ``ĝ = 1/(P σ²) Σ_p Σ_t R_{p,t} ξ_{p,t}``, where the noise in effect at
    step t is ``ξ_{p,t} = ξ_p + ε_p`` while the window's first episode runs and
    ``ε_p`` alone after a reset inside the window. Summed per particle, with
    ``A_p = Σ_t m_{p,t} R_{p,t}`` and ``B_p = Σ_t R_{p,t}``:

        ĝ = 1/(P σ²) Σ_p [ (A_p − Ā) ξ_p + (B_p − B̄) ε_p ]

    With antithetic pairs in lockstep this is the paper's
    ``1/(2N σ²) Σ_i (R⁺_i − R⁻_i) ξ_i`` (``ξ_i`` including this window's ``ε_i``).
    The population means Ā, B̄ are a baseline: ``Σ_p ε_p = 0`` makes B̄ vanish
    and, once pairs fall out of step (their members' episodes ending at
    different times, so ``ξ⁺ ≠ −ξ⁻``), Ā stops the mean return from leaking
    in through ``Σ_p ξ_p ≠ 0``. Its correlation with ``ξ_p`` comes from p and
    its antithetic partner, whose first-order terms cancel.

    Args:
      accumulator: ``ξ`` before this window, ``(P, D)``.
      epsilon: this window's perturbations, ``(P, D)``.
      rewards, dones: ``(P, K)``.
    """
    return jnp.mean(pes_particle_estimates(accumulator, epsilon, rewards, dones, sigma), axis=0)


def pes_particle_estimates(
    accumulator: jax.Array, epsilon: jax.Array, rewards: jax.Array, dones: jax.Array, sigma: float
) -> jax.Array:
    """The P per-particle terms ``g_p = [(A_p − Ā) ξ_p + (B_p − A_p − mean) ε_p] / σ²``
    whose mean is :func:`pes_gradient` (``(P, D)``; for variance diagnostics and tests)."""
    first_episode, whole = window_returns(rewards, dones)
    after_reset = whole - first_episode
    a = first_episode - jnp.mean(first_episode)
    b = after_reset - jnp.mean(after_reset)
    return (a[:, None] * (accumulator + epsilon) + b[:, None] * epsilon) / sigma**2


def pes_accumulate(accumulator: jax.Array, epsilon: jax.Array, dones: jax.Array) -> jax.Array:
    """``ξ`` after the window: ``ξ + ε`` if the episode went on; ``ε`` if it reset mid-window;
    ``0`` if it ended on the window's last step (the new episode has run no step yet).
    """
    ended = jnp.any(dones, axis=-1, keepdims=True)
    ended_last = dones[:, -1:].astype(bool)
    return jnp.where(ended, 0.0, accumulator) + jnp.where(ended_last, 0.0, epsilon)


def truncations_in_episode(truncations: jax.Array, dones: jax.Array) -> jax.Array:
    """Windows whose noise ξ holds after this window (the count behind :func:`pes_accumulate`):
    +1 if the episode went on, 1 after a mid-window reset, 0 when it ended on the last step."""
    ended = jnp.any(dones, axis=-1)
    return jnp.where(ended, jnp.where(dones[:, -1], 0, 1), truncations + 1).astype(truncations.dtype)


def spread_by_truncation(particle_estimates: jax.Array, truncations: jax.Array, buckets: int) -> jax.Array:
    """Mean ``||g_p||²`` of the per-particle estimates grouped by the window's index in its
    episode (``truncations + 1``; the last bucket holds all later ones); NaN for empty buckets."""
    index = jnp.clip(truncations, 0, buckets - 1)
    sq_norm = jnp.sum(particle_estimates**2, axis=-1)
    sums = jnp.zeros(buckets).at[index].add(sq_norm)
    counts = jnp.zeros(buckets).at[index].add(1.0)
    return jnp.where(counts > 0, sums / jnp.maximum(counts, 1.0), jnp.nan)


def relative_spread(particle_estimates: jax.Array) -> jax.Array:
    """``tr Cov(g_p) / ||mean_p g_p||²``: the spread of the P per-particle estimates relative
    to their mean (the variance diagnostic; ~P / SNR² of the averaged estimate)."""
    mean = jnp.mean(particle_estimates, axis=0)
    trace_cov = jnp.sum(jnp.var(particle_estimates, axis=0))
    return trace_cov / jnp.maximum(jnp.sum(mean**2), 1e-30)


def nres_accumulate(episode_noise: jax.Array, epsilon: jax.Array, dones: jax.Array) -> jax.Array:
    """NRES keeps one ε per particle per episode: the slot holds it while the episode
    runs and is zeroed when it ends, which tells :func:`nres_noise` to draw anew."""
    return jnp.where(jnp.any(dones, axis=-1, keepdims=True), 0.0, epsilon)


def nres_noise(episode_noise: jax.Array, fresh: jax.Array) -> jax.Array:
    """This window's ε for NRES: the episode's own ε, or ``fresh`` where a new episode begins
    (an all-zero slot; a Gaussian draw is never exactly zero)."""
    new_episode = jnp.all(episode_noise == 0, axis=-1, keepdims=True)
    return jnp.where(new_episode, fresh, episode_noise)


def return_std_scale(rewards: jax.Array, dones: jax.Array, sigma: float) -> jax.Array:
    """``σ / std(R)``: turns ``1/σ²`` into ``1/(σ · std(R))`` (ARS; the PES code's
    ``divide_by_variance``), making the step size invariant to the reward scale.

    ``std(R)`` pools the spread of the window's first-episode returns and of its
    post-reset returns (both enter ĝ), so neither can be scaled up unboundedly
    when the other is constant (e.g. an alive bonus with immediate resets).
    """
    first_episode, whole = window_returns(rewards, dones)
    std = jnp.sqrt(jnp.var(first_episode) + jnp.var(whole - first_episode))
    return jnp.where(std > 0, sigma / jnp.maximum(std, 1e-12), 1.0)
