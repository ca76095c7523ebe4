"""Persistent Evolution Strategies as an ask/tell pair of pure functions.

The agent owns the estimator state (parameters, optimizer state, the per-
particle noise accumulators ξ, the observation normaliser, the PRNG key); the
particles' *system* states live with whoever simulates them (a jitted JAX
unroll, or a host-side gymnasium batch) and persist across truncations.

One iteration::

    state, epsilon = agent.ask(state)                  # ε_p ~ N(0, σ²I), antithetic
    result = simulate K steps with θ + ε_p per particle  # backend's business
    state, metrics = agent.tell(state, epsilon, result) # ĝ, optax step, ξ update
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable, NamedTuple

import jax
import jax.numpy as jnp
import optax

from pes_rl.agents.estimators import (
    antithetic,
    ars_particle_estimates,
    ars_return_std_scale,
    nres_accumulate,
    nres_noise,
    pes_accumulate,
    pes_particle_estimates,
    relative_spread,
    return_std_scale,
    spread_by_truncation,
    top_directions_weights,
    truncations_in_episode,
    window_returns,
)
from pes_rl.agents.normalization import NormalizerState, init_normalizer, update_normalizer

SPREAD_BUCKETS = 10  # windows-into-the-episode resolution of the variance diagnostic


class Estimator(NamedTuple):
    """What sets one estimator apart, as pure functions (optax-style: built by :func:`pes`,
    :func:`tes`, :func:`nres`, :func:`ars`; ``es`` is :func:`pes` with one window per episode).

    Attributes:
      name: its short name.
      draw: ``(accumulator, fresh ε) -> ε`` the particles run with this window.
      estimates: ``(accumulator, ε, result, σ, weights) -> (P, D)`` per-particle terms whose mean is ĝ.
      std_scale: ``(result, σ, weights) -> scalar``, return-std scaling (replaces ``1/σ``).
      accumulate: ``(accumulator, ε, dones) -> accumulator`` after the window.
      always_select: rank pairs for top-b even without ``top_directions`` (ARS: b = N).
    """

    name: str
    draw: Callable
    estimates: Callable
    std_scale: Callable
    accumulate: Callable
    always_select: bool = False


def _fresh(accumulator, epsilon):
    return epsilon


def _no_accumulator(accumulator, epsilon, dones):
    return jnp.zeros_like(accumulator)


def _pes_estimates(accumulator, epsilon, result, sigma, weights):
    return pes_particle_estimates(accumulator, epsilon, result.rewards, result.dones, sigma, weights)


def _epsilon_estimates(accumulator, epsilon, result, sigma, weights):  # ξ = 0: ε alone weights the returns
    return pes_particle_estimates(jnp.zeros_like(accumulator), epsilon, result.rewards, result.dones, sigma, weights)


def _std_scale(result, sigma, weights):
    return return_std_scale(result.rewards, result.dones, sigma, weights)


def _ars_estimates(accumulator, epsilon, result, sigma, weights):
    return ars_particle_estimates(window_returns(result.rewards, result.dones)[1], epsilon, sigma, weights)


def _ars_std_scale(result, sigma, weights):
    return ars_return_std_scale(window_returns(result.rewards, result.dones)[1], weights)


def pes() -> Estimator:
    """Persistent ES: this window's returns weighted by ξ + ε, ξ every perturbation since the
    episode began (unbiased)."""
    return Estimator("pes", _fresh, _pes_estimates, _std_scale, pes_accumulate)


def tes() -> Estimator:
    """Truncated ES: weighted by ε alone, as if each window began an episode (biased)."""
    return Estimator("tes", _fresh, _epsilon_estimates, _std_scale, _no_accumulator)


def nres() -> Estimator:
    """Noise-reuse ES: one ε per episode, drawn at its start and reused in every window (unbiased:
    that ε drove every step so far)."""
    return Estimator("nres", nres_noise, _epsilon_estimates, _std_scale, nres_accumulate)


def ars() -> Estimator:
    """Augmented Random Search V2-t (Mania et al. 2018): whole-episode returns, top-b pairs, the
    std of the selected returns; run with one window per episode."""
    return Estimator("ars", _fresh, _ars_estimates, _ars_std_scale, _no_accumulator, always_select=True)


ESTIMATORS: dict[str, Callable[[], Estimator]] = {"pes": pes, "tes": tes, "nres": nres, "ars": ars}


def make_estimator(name: str) -> Estimator:
    """The estimator called ``name``; a ``ValueError`` naming the choices for any other name."""
    if name not in ESTIMATORS:
        raise ValueError(f"estimator must be one of {', '.join(ESTIMATORS)}; got {name!r}")
    return ESTIMATORS[name]()


@dataclass(frozen=True)
class PESConfig:
    """Hyperparameters of the estimator (validated by the caller)."""

    num_pairs: int = 10
    sigma: float = 0.3
    truncation_length: int = 100
    return_std_scaling: bool = False
    normalize_obs: bool = False
    estimator: str = "pes"  # "pes", "tes" (ξ = ε: truncated ES), "nres" (one ε per episode) or "ars"
    # ARS's top-b heuristic: only the b pairs with the largest max(R⁺, R⁻) count (None: all N).
    # Biased: with b < N the estimate is no longer an unbiased gradient of the smoothed objective.
    top_directions: int | None = None

    @property
    def num_particles(self) -> int:
        return 2 * self.num_pairs

    def check(self) -> None:
        """Raise ``ValueError`` for an unknown estimator or an out-of-range ``top_directions``."""
        make_estimator(self.estimator)
        b = self.top_directions
        if b is not None and (not isinstance(b, int) or isinstance(b, bool) or not 1 <= b <= self.num_pairs):
            raise ValueError(f"top_directions must be an integer between 1 and num_pairs ({self.num_pairs}); got {b!r}")


class AgentState(NamedTuple):
    params: jax.Array  # θ, flat (D,)
    opt_state: optax.OptState
    # (P, D). PES: ξ, every perturbation since the episode began. TES: unused (0).
    # NRES: the episode's one perturbation (0 once it ended: draw a new one).
    accumulator: jax.Array
    truncations: jax.Array  # (P,) windows since the particle's episode began (whose noise ξ holds)
    normalizer: NormalizerState
    key: jax.Array
    iteration: jax.Array


class WindowResult(NamedTuple):
    """What simulating one K-step window reports back to :meth:`PES.tell`."""

    rewards: jax.Array  # (P, K)
    dones: jax.Array  # (P, K) episode ended at this step (its reward counted)
    finished_return_sum: jax.Array  # () sum of returns of episodes that ended
    finished_count: jax.Array  # () how many ended
    obs_sum: jax.Array  # (obs,) for the normaliser
    obs_sq_sum: jax.Array  # (obs,)
    obs_count: jax.Array  # ()
    steps: jax.Array  # () env steps simulated in this window (all particles)


class PES:
    """PES agent (and its baselines); ``optimizer`` is any optax transformation (applied to ``-ĝ``).

    ``estimator="ars"`` is Augmented Random Search (V2-t with ``normalize_obs`` and
    ``return_std_scaling``): ĝ is :func:`pes_rl.agents.estimators.ars_direction`, so an SGD step with
    ``lr = α`` is the paper's ``θ ← θ + α/(b σ_R) Σ_{top b} (R⁺_k − R⁻_k) δ_k`` exactly. Run
    it with one window per episode (K = T) and idle-until-window-end resets, as ``pes_rl``'s
    ``agent="ars"`` does.
    """

    def __init__(self, config: PESConfig, optimizer: optax.GradientTransformation):
        config.check()
        self.config = config
        self.estimator = make_estimator(config.estimator)
        self.optimizer = optimizer

    def init(self, params: jax.Array, key: jax.Array, observation_size: int) -> AgentState:
        return AgentState(
            params=params,
            opt_state=self.optimizer.init(params),
            accumulator=jnp.zeros((self.config.num_particles, params.shape[0]), params.dtype),
            truncations=jnp.zeros((self.config.num_particles,), jnp.int32),
            normalizer=init_normalizer(observation_size),
            key=key,
            iteration=jnp.zeros((), jnp.int32),
        )

    def ask(self, state: AgentState) -> tuple[AgentState, jax.Array]:
        """Draw ``ε_i ~ N(0, σ²I)`` for N pairs; returns per-particle ``ε`` (P, D).

        NRES reuses each particle's episode noise and draws only for new episodes.
        """
        key, noise_key = jax.random.split(state.key)
        noise = self.config.sigma * jax.random.normal(noise_key, (self.config.num_pairs, state.params.shape[0]))
        epsilon = self.estimator.draw(state.accumulator, antithetic(noise.astype(state.params.dtype)))
        return state._replace(key=key), epsilon

    def direction_weights(self, result: WindowResult) -> jax.Array | None:
        """Per-particle 0/1 weights of the top-b selection (None: no selection, all pairs count).

        Pairs are ranked by max(R⁺, R⁻) of the window's return (what each particle is
        credited with; :func:`pes_rl.agents.estimators.top_directions_weights`). ARS always selects
        (b = N unless ``top_directions`` is set: V2)."""
        top = self.config.top_directions
        if top is None:
            if not self.estimator.always_select:
                return None
            top = self.config.num_pairs
        _, whole = window_returns(result.rewards, result.dones)
        return top_directions_weights(whole, top)

    def particle_estimates(
        self, state: AgentState, epsilon: jax.Array, result: WindowResult, weights: jax.Array | None = None
    ) -> jax.Array:
        """The P per-particle terms whose mean is ĝ (before return-std scaling).

        PES weights this window's returns by ξ + ε; truncated ES by ε alone (ξ = 0, biased);
        NRES by the episode's reused ε alone (unbiased: that ε drove every step so far).
        See :func:`pes_rl.agents.estimators.pes_gradient` for the equation, and
        :func:`pes_rl.agents.estimators.ars_particle_estimates` for ARS. ``weights``: the top-b
        selection (:meth:`direction_weights`); unselected particles' terms are 0.
        """
        if weights is None and self.estimator.always_select:
            weights = self.direction_weights(result)
        return self.estimator.estimates(state.accumulator, epsilon, result, self.config.sigma, weights)

    def gradient(self, state: AgentState, epsilon: jax.Array, result: WindowResult) -> jax.Array:
        """The ascent direction ĝ."""
        weights = self.direction_weights(result)
        return self._scaled_mean(self.particle_estimates(state, epsilon, result, weights), result, weights)

    def _scaled_mean(self, estimates: jax.Array, result: WindowResult, weights: jax.Array | None = None) -> jax.Array:
        grad = jnp.mean(estimates, axis=0)
        if self.config.return_std_scaling:
            grad = grad * self.estimator.std_scale(result, self.config.sigma, weights)
        return grad

    def next_accumulator(self, accumulator: jax.Array, epsilon: jax.Array, dones: jax.Array) -> jax.Array:
        return self.estimator.accumulate(accumulator, epsilon, dones)

    def tell(self, state: AgentState, epsilon: jax.Array, result: WindowResult) -> tuple[AgentState, dict]:
        """Estimate ĝ, take the optimizer step on ``-ĝ``, advance ξ and the normaliser.

        ``result.rewards`` are what the estimator sees (with a reward shift, the shifted
        rewards; ``finished_return_sum`` holds the true episode returns)."""
        weights = self.direction_weights(result)
        estimates = self.particle_estimates(state, epsilon, result, weights)
        grad = self._scaled_mean(estimates, result, weights)
        updates, opt_state = self.optimizer.update(-grad, state.opt_state, state.params)
        params = optax.apply_updates(state.params, updates)
        normalizer = state.normalizer
        if self.config.normalize_obs:
            normalizer = update_normalizer(normalizer, result.obs_sum, result.obs_sq_sum, result.obs_count)
        window_returns = jnp.sum(result.rewards, axis=-1)
        metrics = {
            "window_return_mean": jnp.mean(window_returns),
            "window_return_std": jnp.std(window_returns),
            "finished_return_sum": result.finished_return_sum,
            "finished_count": result.finished_count,
            "grad_norm": jnp.linalg.norm(grad),
            "param_norm": jnp.linalg.norm(params),
            "resets": jnp.sum(result.dones),
            "env_steps": result.steps,
            # variance diagnostics: tr Cov(g_p)/||ĝ||², and E||g_p||² by window index in the episode
            "grad_spread": relative_spread(estimates),
            "grad_sq_norm_by_truncation": spread_by_truncation(estimates, state.truncations, SPREAD_BUCKETS),
            # the first particle whose window return is not finite, or -1
            "nonfinite_particle": jnp.where(
                jnp.all(jnp.isfinite(window_returns)), -1, jnp.argmax(~jnp.isfinite(window_returns))
            ),
        }
        new_state = AgentState(
            params=params,
            opt_state=opt_state,
            accumulator=self.next_accumulator(state.accumulator, epsilon, result.dones),
            truncations=truncations_in_episode(state.truncations, result.dones),
            normalizer=normalizer,
            key=state.key,
            iteration=state.iteration + 1,
        )
        return new_state, metrics
