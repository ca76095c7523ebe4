"""PES on any unrolled computation: bring ``init`` and ``unroll_step``, get θ optimised.

An unrolled system is two pure JAX functions of the parameters θ being tuned (a flat vector):

* ``init(key, theta) -> state``: the state an unroll starts from (e.g. a fresh inner model);
* ``unroll_step(state, theta, key) -> (state, loss, done)``: one step of it (e.g. one SGD step of
  the inner model under the learning-rate schedule θ), its loss, and whether the unroll ended early.

An unroll lasts ``horizon`` steps (or until ``done``) and starts again from ``init``.
:func:`optimize` minimises the expected total loss of an unroll,
``L(θ) = E[Σ_t loss_t]`` (smoothed by the perturbations), with PES's particles: each of the 2N
particles keeps its own unroll state across K-step truncations and the accumulator ξ of its
perturbations since its unroll began (docs/estimator.md), so the estimate is unbiased however
short K is. ``estimator`` also takes ``"tes"`` (truncated ES, biased), ``"nres"`` and ``"es"``
(K = horizon). It is the very machinery that trains policies (:mod:`pes_rl.agents.jax_unroll`),
with the system seen as an environment whose action is θ and whose reward is ``-loss``.

    import jax.numpy as jnp, pes_rl.unroll as pu

    def init(key, theta):                      # inner problem: minimise (w - 3)² by SGD
        return jnp.zeros(())
    def unroll_step(w, theta, key):            # θ[0] = log learning rate
        w = w - jnp.exp(theta[0]) * 2 * (w - 3)
        return w, (w - 3) ** 2, False
    result = pu.optimize(init, unroll_step, jnp.array([-4.0]), horizon=50, truncation_length=10,
                         num_pairs=64, sigma=0.3, lr=0.01, iterations=300)
    result.thetas[-1], result.losses[-1]       # θ per iteration, mean loss per step of each iteration
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any, Callable

import jax
import jax.numpy as jnp
import numpy as np
import optax

from pes_rl.agents import jax_unroll
from pes_rl.agents.pes import PES, PESConfig
from pes_rl.envs.base import State, time_limit

ESTIMATORS = ("pes", "tes", "nres", "es")


class UnrolledSystem:
    """A user's ``init``/``unroll_step`` as a :class:`pes_rl.envs.base.JaxEnv` whose action is θ
    and whose reward is ``-loss``. ``init`` needs θ, which an env's ``reset`` does not get: the
    state is built at the first step of each unroll (the state's ``started`` flag). Vmapped over
    particles, that ``lax.cond`` evaluates both branches, so ``init`` runs at every step: keep it
    cheap (return a fixed state), or fold costly set-up into ``unroll_step``'s first step."""

    name, backend, dt = "unrolled_system", "mjx", 1.0
    observation_size = 1  # the particle loop needs an observation; θ alone drives the system

    def __init__(self, init: Callable, unroll_step: Callable, theta_size: int, horizon: int):
        self._init, self._unroll_step = init, unroll_step
        self.action_size = int(theta_size)
        self.action_low = np.full(theta_size, -np.inf, np.float32)
        self.action_high = np.full(theta_size, np.inf, np.float32)
        self.episode_length = int(horizon)
        theta = jax.ShapeDtypeStruct((theta_size,), jnp.float32)
        self._blank = jax.tree_util.tree_map(lambda s: jnp.zeros(s.shape, s.dtype),
                                             jax.eval_shape(init, jax.random.PRNGKey(0), theta))

    def reset(self, key: jax.Array) -> State:
        false = jnp.zeros((), bool)
        physics = (self._blank, key, false)
        return State(physics, jnp.zeros(1), jnp.zeros(()), false, false, jnp.zeros((), jnp.int32))

    def step(self, state: State, theta: jax.Array) -> State:
        system, key, started = state.physics
        key, init_key, step_key = jax.random.split(key, 3)
        system = jax.lax.cond(started, lambda: system, lambda: self._init(init_key, theta))
        system, loss, done = self._unroll_step(system, theta, step_key)
        steps = state.steps + 1
        terminated = jnp.asarray(done, bool)
        physics = (system, key, jnp.ones((), bool))
        return State(physics, jnp.zeros(1), -jnp.asarray(loss, jnp.float32),
                     time_limit(steps, terminated, self.episode_length), terminated, steps)


@dataclass
class UnrollResult:
    """θ after each iteration ``(iterations, D)``, the particles' mean loss per simulated step in
    each iteration's windows, the per-iteration metrics of ``tell``, and the system steps the
    stagger simulated before the first iteration (``burn_in_steps``; the iterations' own steps
    are ``metrics["env_steps"]``)."""

    thetas: np.ndarray
    losses: np.ndarray
    metrics: dict[str, np.ndarray]
    burn_in_steps: int = 0

    @property
    def theta(self) -> np.ndarray:
        return self.thetas[-1]


def optimize(
    init: Callable[[jax.Array, jax.Array], Any],
    unroll_step: Callable[[Any, jax.Array, jax.Array], tuple[Any, jax.Array, jax.Array]],
    theta0: jax.Array,
    *,
    horizon: int,
    truncation_length: int,
    num_pairs: int = 32,
    sigma: float = 0.1,
    lr: float = 0.01,
    optimizer: optax.GradientTransformation | None = None,
    iterations: int = 100,
    estimator: str = "pes",
    return_std_scaling: bool = False,
    stagger: bool = True,
    seed: int = 0,
) -> UnrollResult:
    """Minimise the total loss of ``horizon``-step unrolls over θ with PES (or ``estimator``).

    Args:
      init: ``(key, theta) -> state``, where an unroll starts (module docstring); pure JAX.
      unroll_step: ``(state, theta, key) -> (state, loss, done)``, one step; pure JAX.
      theta0: the starting θ, a flat float vector.
      horizon: T, the steps of one unroll.
      truncation_length: K, steps per truncation (one θ update per K steps of every particle);
        ``estimator="es"`` uses K = T.
      num_pairs: N antithetic pairs (2N particles).
      sigma: the perturbation scale σ.
      lr: the step of SGD, used unless ``optimizer`` is given.
      optimizer: any optax transformation (it descends the loss).
      iterations: θ updates, one per K-step window of every particle.
      estimator: ``pes``, ``tes`` (truncated ES, biased), ``nres`` or ``es`` (full unrolls).
      return_std_scaling: divide by the std of the particles' window losses instead of σ.
      stagger: start pair i ``b_i ~ U{0..ceil(T/K)-1}`` windows into its first unroll, so that
        the pairs do not restart in lockstep.
      seed: the PRNG seed of the noise, the stagger and the systems' keys.
    Raises:
      ValueError: an unknown estimator, or sizes out of range, naming the argument.
    """
    agent, window, state, particles, k, burn_in_steps = _setup(
        init, unroll_step, theta0, horizon, truncation_length, num_pairs, sigma, optimizer or optax.sgd(lr), estimator,
        return_std_scaling, stagger, seed, iterations)
    iteration = jax_unroll.make_iteration(agent, window)  # ask, the K-step windows, tell: as in training

    def body(carry, _):
        state, particles, metrics = iteration(*carry)
        return (state, particles), (state.params, metrics)

    run = jax.jit(lambda carry: jax.lax.scan(body, carry, None, length=iterations)[1])
    thetas, metrics = jax.device_get(run((state, particles)))
    metrics = {name: np.asarray(value) for name, value in metrics.items()}
    # window_return_mean is the mean over the 2N particles of their window's summed reward (-loss)
    losses = -metrics["window_return_mean"] * (2 * num_pairs) / np.maximum(metrics["env_steps"], 1)
    return UnrollResult(thetas=np.asarray(thetas), losses=losses, metrics=metrics, burn_in_steps=burn_in_steps)


def stagger_windows(seed: int, horizon: int, truncation_length: int, num_pairs: int) -> np.ndarray:
    """The windows ``b_i ~ U{0..ceil(T/K)-1}`` that pair i runs before the first iteration when
    :func:`optimize` staggers: ``b_i * K`` system steps each (fewer where an unroll ends early),
    :attr:`UnrollResult.burn_in_steps` in all."""
    return np.random.default_rng([seed, 7]).integers(0, math.ceil(horizon / truncation_length), size=num_pairs)


def _setup(init, unroll_step, theta0, horizon, truncation_length, num_pairs, sigma, optimizer, estimator,
           return_std_scaling, stagger, seed, iterations):
    """The agent, the K-step window over the system, the agent state, the (staggered) particles, K and
    the steps the stagger simulated."""
    if estimator not in ESTIMATORS:
        raise ValueError(f"estimator must be one of {', '.join(ESTIMATORS)}; got {estimator!r}")
    theta0 = jnp.asarray(theta0, jnp.float32)
    if theta0.ndim != 1 or theta0.size == 0:
        raise ValueError(f"theta0 must be a non-empty flat vector; got shape {tuple(theta0.shape)}")
    for name, value in (("horizon", horizon), ("truncation_length", truncation_length), ("num_pairs", num_pairs),
                        ("iterations", iterations)):
        if not isinstance(value, int) or value < 1:
            raise ValueError(f"{name} must be an integer >= 1; got {value!r}")
    if truncation_length > horizon:
        raise ValueError(f"truncation_length must be between 1 and horizon ({horizon}); got {truncation_length}")
    k = horizon if estimator == "es" else truncation_length
    system = UnrolledSystem(init, unroll_step, theta0.size, horizon)
    agent = PES(PESConfig(num_pairs, sigma, k, return_std_scaling, False,
                          estimator="pes" if estimator == "es" else estimator),
                optimizer)
    # the action is θ itself; idle until the window ends after an early `done` (the episodic objective)
    window = jax_unroll.make_window(system, lambda theta, obs: theta, k, False, True)
    key = jax.random.PRNGKey(seed)
    agent_key, particle_key = jax.random.split(key)
    state = agent.init(theta0, agent_key, system.observation_size)
    particles = jax_unroll.init_particles(system, jax.random.split(particle_key, num_pairs))
    burn_in_steps = 0
    if stagger and k < horizon:
        per_pair = stagger_windows(seed, horizon, k, num_pairs)
        particles, burn_in_steps = jax_unroll.make_burn_in(window)(theta0, state.normalizer, particles,
                                                                   np.r_[per_pair, per_pair])
    return agent, window, state, particles, k, int(burn_in_steps)


def estimate_gradient(
    init: Callable[[jax.Array, jax.Array], Any],
    unroll_step: Callable[[Any, jax.Array, jax.Array], tuple[Any, jax.Array, jax.Array]],
    theta: jax.Array,
    *,
    horizon: int,
    truncation_length: int,
    num_pairs: int = 256,
    sigma: float = 0.1,
    iterations: int = 100,
    estimator: str = "pes",
    seed: int = 0,
) -> np.ndarray:
    """Estimates of ``∇_θ L(θ)``, the gradient of an unroll's total loss (Gaussian-smoothed by σ), at a
    fixed θ: one per iteration, shape ``(iterations, D)``.

    Every iteration runs the particles' next K-step windows with θ held fixed and reads the
    estimate ``tell`` would step along. With the pairs staggered uniformly over the
    ``W = ceil(T/K)`` windows of an unroll, one window's estimate is unbiased for ``∇L / W``
    (PES; truncated ES is not), so each is multiplied by W. Average them after the first W
    iterations, when every particle's ξ covers its unroll so far.
    """
    theta = jnp.asarray(theta, jnp.float32)
    # SGD with step 1 and θ put back before each iteration: θ after tell - θ is the step taken
    agent, window, state, particles, k, _ = _setup(init, unroll_step, theta, horizon, truncation_length, num_pairs,
                                                sigma, optax.sgd(1.0), estimator, False, True, seed, iterations)
    iteration = jax_unroll.make_iteration(agent, window)
    windows = math.ceil(horizon / k)

    def body(carry, _):
        state, particles = carry
        state, particles, _ = iteration(state._replace(params=theta), particles)
        return (state, particles), (theta - state.params) * windows  # the step ascends -loss

    return np.asarray(jax.jit(lambda carry: jax.lax.scan(body, carry, None, length=iterations)[1])((state, particles)))
