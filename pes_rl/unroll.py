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

import functools
import json
import math
import os
import time
from dataclasses import dataclass
from typing import Any, Callable

import jax
import jax.numpy as jnp
import numpy as np
import optax

from pes_rl import checkpoint, rundir
from pes_rl.agents import jax_unroll
from pes_rl.agents.pes import PES, PESConfig
from pes_rl.config import ConfigError
from pes_rl.envs.base import State, time_limit
from pes_rl.logger import RunLogger

ESTIMATORS = ("pes", "tes", "nres", "es", "tbptt")


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
    each iteration's windows, the per-iteration metrics (``tell``'s, or TBPTT's), and the system
    steps the stagger simulated before the first iteration (``burn_in_steps``; the iterations' own
    steps are ``metrics["env_steps"]``). A resumed run's result covers all its iterations."""

    thetas: np.ndarray
    losses: np.ndarray
    metrics: dict[str, np.ndarray]
    burn_in_steps: int = 0

    @property
    def theta(self) -> np.ndarray:
        return self.thetas[-1]


# progress.csv of an unroll run: one row per iteration
LOG_COLUMNS = ("iteration", "system_steps", "wall_time", "steps_per_s", "loss", "window_loss_std", "grad_norm",
               "theta_norm")
SETTINGS_FILE = "unroll.json"  # the run's settings; a resume must match them (all but iterations)


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
    run_dir: str | None = None,
    checkpoint_every: int = 100,
    resume: bool = False,
    overwrite: bool = False,
    progress_bar: bool = False,
) -> UnrollResult:
    """Minimise the total loss of ``horizon``-step unrolls over θ with PES (or ``estimator``).

    Args:
      init: ``(key, theta) -> state``, where an unroll starts (module docstring); pure JAX.
      unroll_step: ``(state, theta, key) -> (state, loss, done)``, one step; pure JAX.
      theta0: the starting θ, a flat float vector.
      horizon: T, the steps of one unroll.
      truncation_length: K, steps per truncation (one θ update per K steps of every particle);
        ``estimator="es"`` uses K = T.
      num_pairs: N antithetic pairs (2N particles; TBPTT runs N unperturbed systems).
      sigma: the perturbation scale σ.
      lr: the step of SGD, used unless ``optimizer`` is given.
      optimizer: any optax transformation (it descends the loss).
      iterations: θ updates, one per K-step window of every particle (in all, counting those of
        the run being resumed).
      estimator: ``pes``, ``tes`` (truncated ES, biased), ``nres``, ``es`` (full unrolls) or
        ``tbptt``: truncated backprop, ``jax.grad`` of the window's total loss through its K
        steps from each system's running state (held fixed), averaged over the N systems; it needs
        ``unroll_step`` differentiable in θ, and is biased like truncated ES.
      return_std_scaling: divide by the std of the particles' window losses instead of σ.
      stagger: start pair i ``b_i ~ U{0..ceil(T/K)-1}`` windows into its first unroll, so that
        the pairs do not restart in lockstep.
      seed: the PRNG seed of the noise, the stagger and the systems' keys.
      run_dir: where to log (``progress.csv``: a row per iteration, TensorBoard under ``tb/``) and
        checkpoint (the agent, every particle's system state, θ and the metrics so far), as a
        training run does (the same marker, lock and overwrite rules: docs/reliability.md).
      checkpoint_every: iterations between checkpoints (with ``run_dir``).
      resume: continue ``run_dir`` from its newest checkpoint to ``iterations``, exactly where an
        uninterrupted run would be; the settings must equal the run's (a custom ``optimizer``
        cannot be compared: pass the same one).
      overwrite: replace a ``run_dir`` that pes-rl created.
      progress_bar: a tqdm bar on stderr, counting iterations.
    Raises:
      ValueError: an unknown estimator, or sizes out of range, naming the argument
        (:class:`pes_rl.config.ConfigError` for run dir and resume problems).
    """
    settings = dict(horizon=horizon, truncation_length=truncation_length, num_pairs=num_pairs, sigma=float(sigma),
                    lr=None if optimizer is not None else float(lr), estimator=estimator,
                    return_std_scaling=bool(return_std_scaling), stagger=bool(stagger), seed=seed,
                    theta_size=int(np.size(theta0)))
    if run_dir is None and resume:
        raise ValueError("resume needs run_dir")
    if run_dir is not None and (not isinstance(checkpoint_every, int) or checkpoint_every < 1):
        raise ValueError(f"checkpoint_every must be an integer >= 1; got {checkpoint_every!r}")
    optimizer = optimizer or optax.sgd(lr)
    lock = rundir.open_run_dir(run_dir, resume, overwrite, SETTINGS_FILE) if run_dir is not None else None
    try:
        if resume:
            _check_resume(run_dir, settings)
        iteration, state, particles, burn_in_steps, population = _setup(
            init, unroll_step, theta0, horizon, truncation_length, num_pairs, sigma, optimizer, estimator,
            return_std_scaling, stagger and not resume, seed, iterations)
        done, history = 0, []
        if resume:
            payload = checkpoint.restore(run_dir, set_aside_damaged=True)
            state = checkpoint.from_leaves(state, payload["agent"])
            particles = checkpoint.from_leaves(particles, payload["particles"])
            done, burn_in_steps = int(payload["iteration"]), int(payload["burn_in_steps"])
            history = [(np.asarray(payload["thetas"]), {k: np.asarray(v) for k, v in payload["metrics"].items()})]
        if run_dir is not None:
            rundir.write_json(os.path.join(run_dir, SETTINGS_FILE), settings | {"iterations": iterations})
        return _run(iteration, state, particles, burn_in_steps, population, done, history, iterations, run_dir,
                    checkpoint_every if run_dir is not None else iterations, progress_bar, estimator)
    finally:
        if lock is not None:
            lock.release()


def _run(iteration, state, particles, burn_in_steps, population, done, history, iterations, run_dir, chunk,
         progress_bar, estimator) -> UnrollResult:
    """Iterate from ``done`` to ``iterations`` in jitted chunks of ``chunk``, logging and checkpointing
    after each when there is a ``run_dir``."""
    def body(carry, _):
        state, particles, metrics = iteration(*carry)
        return (state, particles), (state.params, metrics)

    @functools.lru_cache(maxsize=2)  # the chunk length, and the last (shorter) one
    def scan(length):
        return jax.jit(lambda carry: jax.lax.scan(body, carry, None, length=length))

    logger = RunLogger(run_dir, iterations, done, progress_bar, resume_iteration=done if history else None,
                       columns=LOG_COLUMNS, x_key="iteration", desc=estimator)
    system_steps = burn_in_steps + sum(int(m["env_steps"].sum()) for _, m in history)
    t_start = time.perf_counter()
    try:
        while done < iterations:
            n = min(chunk, iterations - done)
            t0 = time.perf_counter()
            (state, particles), (thetas, metrics) = scan(n)((state, particles))
            thetas, metrics = jax.device_get((thetas, metrics))
            elapsed = time.perf_counter() - t0
            metrics = {name: np.asarray(value) for name, value in metrics.items()}
            history.append((np.asarray(thetas), metrics))
            losses = mean_step_losses(metrics, population)
            for i in range(n):
                system_steps += int(metrics["env_steps"][i])
                logger.log({"iteration": done + i + 1, "system_steps": system_steps,
                            "wall_time": logger.wall_time_offset + time.perf_counter() - t_start,
                            "steps_per_s": float(metrics["env_steps"].sum()) / max(elapsed, 1e-9),
                            "loss": float(losses[i]), "window_loss_std": float(metrics["window_return_std"][i]),
                            "grad_norm": float(metrics["grad_norm"][i]), "theta_norm": float(metrics["param_norm"][i])})
            done += n
            if run_dir is not None:
                thetas_so_far = np.concatenate([t for t, _ in history])
                metrics_so_far = {k: np.concatenate([m[k] for _, m in history]) for k in history[0][1]}
                history = [(thetas_so_far, metrics_so_far)]
                checkpoint.save(run_dir, done, {
                    "agent": checkpoint.to_leaves(state), "particles": checkpoint.to_leaves(particles),
                    "iteration": np.int64(done), "env_steps": np.int64(system_steps),
                    "burn_in_steps": np.int64(burn_in_steps), "thetas": thetas_so_far, "metrics": metrics_so_far,
                    "policy": {"params": np.asarray(state.params)},
                })
    finally:
        logger.close()
    thetas = np.concatenate([t for t, _ in history])
    metrics = {k: np.concatenate([m[k] for _, m in history]) for k in history[0][1]}
    return UnrollResult(thetas=thetas, losses=mean_step_losses(metrics, population), metrics=metrics,
                        burn_in_steps=burn_in_steps)


def mean_step_losses(metrics: dict[str, np.ndarray], population: int) -> np.ndarray:
    """Each iteration's mean loss per simulated step: ``-window_return_mean · P / steps``, the
    window returns (−loss summed over a window) averaged over the P particles, re-summed and
    divided by the steps they simulated."""
    return -metrics["window_return_mean"] * population / np.maximum(metrics["env_steps"], 1)


def _check_resume(run_dir: str, settings: dict) -> None:
    """A resumed unroll run keeps every setting but ``iterations`` (one-line ConfigError)."""
    path = os.path.join(run_dir, SETTINGS_FILE)
    if not os.path.isfile(path):
        raise ConfigError(f"resume: {run_dir!r} has no {SETTINGS_FILE}; it is not an unroll run")
    with open(path) as f:
        saved = json.load(f)
    changed = [f"{k} (run {saved.get(k)!r}, now {v!r})" for k, v in settings.items() if saved.get(k) != v]
    if changed:
        raise ConfigError(f"resume: settings differ from the run's {SETTINGS_FILE} in {', '.join(changed)}")
    if checkpoint.latest_step(run_dir) is None:
        raise ConfigError(f"resume: {run_dir!r} has no checkpoint under checkpoints/")


def stagger_windows(seed: int, horizon: int, truncation_length: int, num_pairs: int) -> np.ndarray:
    """The windows ``b_i ~ U{0..ceil(T/K)-1}`` that pair i runs before the first iteration when
    :func:`optimize` staggers: ``b_i * K`` system steps each (fewer where an unroll ends early),
    :attr:`UnrollResult.burn_in_steps` in all."""
    return np.random.default_rng([seed, 7]).integers(0, math.ceil(horizon / truncation_length), size=num_pairs)


def _setup(init, unroll_step, theta0, horizon, truncation_length, num_pairs, sigma, optimizer, estimator,
           return_std_scaling, stagger, seed, iterations):
    """The iteration ``(state, particles) -> (state, particles, metrics)``, the agent state, the
    (staggered) particles, the steps the stagger simulated and the particles per iteration."""
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
                          estimator={"es": "pes", "tbptt": "tes"}.get(estimator, estimator)),
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
        burn_in_steps //= 2 if estimator == "tbptt" else 1  # the − members, mirrors of the + ones, are dropped
    if estimator == "tbptt":  # the + members: N systems, nothing to mirror without perturbations
        particles = jax.tree_util.tree_map(lambda x: x[:num_pairs], particles)
        return tbptt_iteration(window, optimizer), state, particles, int(burn_in_steps), num_pairs
    return jax_unroll.make_iteration(agent, window), state, particles, int(burn_in_steps), 2 * num_pairs


def tbptt_iteration(window, optimizer: optax.GradientTransformation):
    """Online truncated backprop as an iteration ``(state, particles) -> (state, particles, metrics)``:
    ``g = ∇_θ (1/P) Σ_p Σ_{t in window} r_t`` through the window's K steps from each system's state
    (the state itself is a constant: gradients stop at the window's start), then the optimizer
    steps on ``-g`` (rewards are −losses). Metrics have :meth:`PES.tell`'s names where they mean
    the same."""
    vwindow = jax_unroll.vmap_window(window, per_particle_theta=False)

    def iteration(state, particles):
        def objective(theta):
            particles_next, out = vwindow(theta, state.normalizer, particles)
            return jnp.mean(jnp.sum(out["rewards"], axis=1)), (particles_next, out)

        (_, (particles, out)), grad = jax.value_and_grad(objective, has_aux=True)(state.params)
        updates, opt_state = optimizer.update(-grad, state.opt_state, state.params)
        params = optax.apply_updates(state.params, updates)
        window_returns = jnp.sum(out["rewards"], axis=1)
        metrics = {"window_return_mean": jnp.mean(window_returns), "window_return_std": jnp.std(window_returns),
                   "grad_norm": jnp.linalg.norm(grad), "param_norm": jnp.linalg.norm(params),
                   "resets": jnp.sum(out["dones"]), "env_steps": jnp.sum(out["steps"])}
        return state._replace(params=params, opt_state=opt_state, iteration=state.iteration + 1), particles, metrics

    return iteration


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
    (PES; truncated ES and TBPTT are not), so each is multiplied by W. Average them after the
    first W iterations, when every particle's ξ covers its unroll so far.
    """
    theta = jnp.asarray(theta, jnp.float32)
    # SGD with step 1 and θ put back before each iteration: θ after tell - θ is the step taken
    iteration, state, particles, _, _ = _setup(init, unroll_step, theta, horizon, truncation_length, num_pairs,
                                               sigma, optax.sgd(1.0), estimator, False, True, seed, iterations)
    windows = math.ceil(horizon / (horizon if estimator == "es" else truncation_length))

    def body(carry, _):
        state, particles = carry
        state, particles, _ = iteration(state._replace(params=theta), particles)
        return (state, particles), (theta - state.params) * windows  # the step ascends -loss

    return np.asarray(jax.jit(lambda carry: jax.lax.scan(body, carry, None, length=iterations)[1])((state, particles)))
