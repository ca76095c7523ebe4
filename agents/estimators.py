"""The PES estimator's math, one pure function per equation.

Notation (docs/estimator.md): P = 2N particles (N antithetic pairs), particle p runs
``θ + ε_p`` with ``ε_{p+N} = -ε_p``; ``ξ_p`` is the sum of every perturbation
particle p has run in the earlier windows of its current episode; ``R_{p,t}`` is its
reward at step t of the K-step window; ``σ`` the noise scale. ``A_p`` is the window's
return in the episode that was running when the window began and ``B_p`` its return
after a reset inside the window (see :func:`window_returns`).

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
    """Per particle: the return of the window's first episode ``A_p = Σ_t m_{p,t} R_{p,t}``
    (weighted by ``ξ_p + ε_p``) and of the whole window ``Σ_t R_{p,t} = A_p + B_p``, where
    ``B_p = Σ_t (1 − m_{p,t}) R_{p,t}`` is the return after a reset inside the window."""
    return jnp.sum(rewards * first_episode_mask(dones), axis=-1), jnp.sum(rewards, axis=-1)


def pes_gradient(
    accumulator: jax.Array, epsilon: jax.Array, rewards: jax.Array, dones: jax.Array, sigma: float
) -> jax.Array:
    """PES estimate with per-step masking of episode ends inside the window.

    ``ĝ = 1/(P σ²) Σ_p Σ_t R_{p,t} ξ_{p,t}``, where the noise in effect at
    step t is ``ξ_{p,t} = ξ_p + ε_p`` while the window's first episode runs and
    ``ε_p`` alone after a reset inside the window. Summed per particle, with
    ``A_p = Σ_t m_{p,t} R_{p,t}`` (the window's first episode) and
    ``B_p = Σ_t (1 − m_{p,t}) R_{p,t}`` (after a reset inside the window):

        ĝ = 1/(P σ²) Σ_p [ (A_p − Ā)(ξ_p + ε_p) + (B_p − B̄) ε_p ]

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
      rewards: the window's rewards, ``(P, K)``.
      dones: whether an episode ended at each step, ``(P, K)``.
      sigma: the noise scale σ.
    """
    return jnp.mean(pes_particle_estimates(accumulator, epsilon, rewards, dones, sigma), axis=0)


def pes_particle_estimates(
    accumulator: jax.Array,
    epsilon: jax.Array,
    rewards: jax.Array,
    dones: jax.Array,
    sigma: float,
    weights: jax.Array | None = None,
) -> jax.Array:
    """The P per-particle terms ``g_p = [(A_p − Ā)(ξ_p + ε_p) + (B_p − B̄) ε_p] / σ²``
    whose mean is :func:`pes_gradient` (``(P, D)``; for variance diagnostics and tests).
    ``A_p`` and ``B_p`` are the window's returns before and after a reset inside it
    (:func:`window_returns`; ``B_p = 0`` when no episode ended before the last step).

    With ``weights`` (``(P,)`` of 0/1, from :func:`top_directions_weights`) only the selected
    set S of ``2b`` particles counts: the baselines Ā and B̄ are taken over S and
    ``g_p`` is scaled by ``w_p P / |S|``, so that the plain mean over all P is the estimate
    restricted to the selected pairs (top-b equation, see :func:`top_directions_weights`):

        ĝ_b = 1/(2b σ²) Σ_{p∈S} [ (A_p − Ā_S)(ξ_p + ε_p) + (B_p − B̄_S) ε_p ]

    ``weights`` all ones (or None) is the unselected estimate.
    """
    first_episode, whole = window_returns(rewards, dones)
    after_reset = whole - first_episode
    if weights is None:
        a = first_episode - jnp.mean(first_episode)
        b = after_reset - jnp.mean(after_reset)
        return (a[:, None] * (accumulator + epsilon) + b[:, None] * epsilon) / sigma**2
    a = first_episode - selected_mean(first_episode, weights)
    b = after_reset - selected_mean(after_reset, weights)
    estimates = (a[:, None] * (accumulator + epsilon) + b[:, None] * epsilon) / sigma**2
    return estimates * selection_scale(weights)[:, None]


def shift_rewards(rewards, simulated, shift: float):
    """ARS's reward shift (Mania et al. 2018, §3, "shift"; their code subtracts it every step):

        R̃_{p,t} = (R_{p,t} − s) · m_{p,t}

    where ``m_{p,t} = 1`` on a step particle p actually simulated and 0 on an idle step
    (after its episode ended inside a ``reset_at=window`` window; those stay 0). It only
    changes the rewards the estimator sees: for alive-bonus tasks (Hopper, Walker, Ant:
    +1 per step alive) it removes the incentive to merely survive. Works on numpy and JAX
    arrays alike (the host unroll calls it per step); ``s = 0`` returns ``R · m`` exactly.
    """
    return (rewards - shift) * simulated


def top_directions_weights(window_return: jax.Array, top: int) -> jax.Array:
    """ARS V1-t/V2-t's top-b direction selection (Mania et al. 2018, Algorithm 2, step 6):
    sort the N pairs by ``max(R⁺_i, R⁻_i)`` and keep the b largest,

        w_i = 1  if  max(R⁺_i, R⁻_i) is among the b largest of the N,  else 0,

    returned per particle (``(P,)``: pair i's weight on particles i and i + N). ``R`` is the
    window return each particle is credited with (for PES, the window's return; for ES and
    ARS the episode's). Ties go to the lower pair index.

    A heuristic: it favours directions that happened to score high, so with b < N the
    estimate is no longer an unbiased gradient of the Gaussian-smoothed objective.
    ``b = N`` keeps every pair (weights all ones).
    """
    n = window_return.shape[0] // 2
    score = jnp.maximum(window_return[:n], window_return[n:])
    _, keep = jax.lax.top_k(score, top)
    pair = jnp.zeros((n,), window_return.dtype).at[keep].set(1.0)
    return jnp.concatenate([pair, pair])


def selected_mean(values: jax.Array, weights: jax.Array) -> jax.Array:
    """``Σ_p w_p v_p / Σ_p w_p``: the mean over the selected particles (axis 0)."""
    w = weights.reshape(weights.shape + (1,) * (values.ndim - 1))
    return jnp.sum(w * values, axis=0) / jnp.sum(weights)


def selection_scale(weights: jax.Array) -> jax.Array:
    """``w_p P / Σ_q w_q``: per-particle factors turning a plain mean over all P into the
    mean over the selected ones (all ones when nothing is dropped)."""
    return weights * (weights.shape[0] / jnp.sum(weights))


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


def return_std_scale(rewards: jax.Array, dones: jax.Array, sigma: float, weights: jax.Array | None = None) -> jax.Array:
    """``σ / std(R)``: turns ``1/σ²`` into ``1/(σ · std(R))`` (ARS; the PES code's
    ``divide_by_variance``), making the step size invariant to the reward scale.

    ``std(R)`` pools the spread of the window's first-episode returns and of its
    post-reset returns (both enter ĝ), so neither can be scaled up unboundedly
    when the other is constant (e.g. an alive bonus with immediate resets). With
    top-b ``weights`` the variances are over the 2b selected particles only (ARS V2-t).
    """
    first_episode, whole = window_returns(rewards, dones)
    if weights is None:
        std = jnp.sqrt(jnp.var(first_episode) + jnp.var(whole - first_episode))
    else:
        std = jnp.sqrt(selected_var(first_episode, weights) + selected_var(whole - first_episode, weights))
    return jnp.where(std > 0, sigma / jnp.maximum(std, 1e-12), 1.0)


def selected_var(values: jax.Array, weights: jax.Array) -> jax.Array:
    """Population variance (``ddof = 0``, like ``np.std`` in ARS) over the selected particles."""
    return selected_mean(jnp.square(values - selected_mean(values, weights)), weights)


def ars_particle_estimates(window_return: jax.Array, epsilon: jax.Array, sigma: float, weights: jax.Array) -> jax.Array:
    """The P per-particle terms whose plain mean is ARS's step direction before the
    ``1/σ_R`` scaling (:func:`ars_direction`):

        u_p = (P / b) · w_p (R_p − R̄_S) δ_p,   δ_p = ε_p / ν   (ν = σ, the noise scale)

    so ``mean_p u_p = (1/b) Σ_{k∈top b} (R⁺_k − R⁻_k) δ_k`` (particle k + N runs −δ_k; the
    baseline R̄_S over the selected set S cancels because Σ_{p∈S} δ_p = 0).
    """
    centred = window_return - selected_mean(window_return, weights)
    per_pair = 2.0 * selection_scale(weights)  # w_p P / (2b) · 2 = w_p P / b
    return centred[:, None] * (epsilon / sigma) * per_pair[:, None]


def ars_return_std_scale(window_return: jax.Array, weights: jax.Array) -> jax.Array:
    """``1 / σ_R``, σ_R the standard deviation (``ddof = 0``) of the 2b selected returns
    (ARS V1-t/V2-t); 1 when they are all equal (then every R⁺ − R⁻ is 0 anyway)."""
    std = jnp.sqrt(selected_var(window_return, weights))
    return jnp.where(std > 0, 1.0 / jnp.maximum(std, 1e-12), 1.0)


def ars_direction(
    window_return: jax.Array, epsilon: jax.Array, sigma: float, weights: jax.Array, std_scaling: bool = True
) -> jax.Array:
    """ARS's update direction (Mania, Guy & Recht 2018, Algorithm 2, step 7, V1-t/V2-t):

        θ_{j+1} = θ_j + α/(b σ_R) Σ_{k=1}^{b} [R(θ_j + ν δ_(k)) − R(θ_j − ν δ_(k))] δ_(k)

    returns ``1/(b σ_R) Σ_k (R⁺_k − R⁻_k) δ_k`` (the SGD step with ``lr = α`` is then the
    paper's update exactly). ``δ_k ~ N(0, I)`` is the unit direction, ``ε_k = ν δ_k`` the
    perturbation :meth:`pes_rl.agents.pes.PES.ask` returns; the b directions kept are ``weights``
    (:func:`top_directions_weights`). Without ``std_scaling`` σ_R = 1 (ARS V1:
    ``α/b Σ (R⁺ − R⁻) δ``). Note the factor: this is ``2σ/σ_R`` times the plain antithetic
    ES gradient ``1/(2bσ) Σ (R⁺ − R⁻) δ`` that the ``es`` agent estimates.
    """
    direction = jnp.mean(ars_particle_estimates(window_return, epsilon, sigma, weights), axis=0)
    if std_scaling:
        direction = direction * ars_return_std_scale(window_return, weights)
    return direction
