"""PES is unbiased where truncated ES is not (influence balancing, exact gradient by jax.grad).

At a fixed θ, with particles staggered uniformly over the windows of a T-step
episode, each window's PES estimate is unbiased for the gradient of that
window's smoothed return w.r.t. θ *through all earlier windows*; averaged over
windows that is ``(K/T) ∇ E[return of the episode]`` (K steps of a T-step
episode per window). Linear dynamics and a quadratic loss make smoothing add
only a constant, so the target is exactly ``jax.grad(episode_return)(θ) K/T``.
"""

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest

from pes_rl.agents import jax_unroll
from pes_rl.agents.pes import PES, PESConfig
from pes_rl.envs.influence import InfluenceBalancing, episode_return

# K does not divide T, so episodes end inside windows and per-step masking matters.

T, K = 20, 8
N, SIGMA, THETA = 500, 0.1, 0.5
W = -(-T // K)
WARMUP, ITERATIONS = 2 * W, 240


def per_pair_estimates(agent_class=PES, reset_at_window_end=False, estimator="pes"):
    """Time-averaged per-pair estimates ĝ of ``estimator``, shape (N,), read off ``PES.tell``.

    Each of the N pairs is its own one-pair agent (vmapped), so the pairs are independent
    and their spread gives the standard error. An iteration is the trainer's own
    (:func:`pes_rl.agents.jax_unroll.make_iteration`: ask, the K-step window of both particles,
    ``tell``); the optimizer is SGD with learning rate 1 and θ is put back to THETA before
    each iteration, so ``θ after tell − THETA`` is exactly the ĝ that ``tell`` applied:
    sign, scaling, estimator dispatch and the order of estimate and ξ update all count.
    """
    env = InfluenceBalancing(episode_length=T)
    window = jax_unroll.make_window(env, lambda th, obs: th, K, False, reset_at_window_end)
    agent = agent_class(PESConfig(num_pairs=1, sigma=SIGMA, truncation_length=K, estimator=estimator), optax.sgd(1.0))
    iteration = jax.vmap(jax_unroll.make_iteration(agent, window))  # over the N one-pair agents
    theta = jnp.array([THETA])
    key = jax.random.PRNGKey(0)
    states = jax.vmap(lambda k: agent.init(theta, k, env.observation_size))(jax.random.split(key, N))
    # pair i's members are particles i and i + N; staggered alike, uniformly over the windows
    particles = jax_unroll.init_particles(env, jax.random.split(key, N))
    stagger = np.random.default_rng(0).integers(0, W, size=N)
    particles, _ = jax_unroll.make_burn_in(window)(theta, states.normalizer, particles, jnp.asarray(np.r_[stagger, stagger]))
    particles = jax.tree_util.tree_map(lambda x: jnp.stack([x[:N], x[N:]], axis=1), particles)  # (N, 2, ...)

    def step(carry, _):
        states, particles = carry
        states = states._replace(params=jnp.broadcast_to(theta, states.params.shape))
        states, particles, _ = iteration(states, particles)
        return (states, particles), states.params[:, 0] - THETA

    _, grads = jax.jit(lambda c: jax.lax.scan(step, c, None, length=WARMUP + ITERATIONS))((states, particles))
    return np.asarray(grads[WARMUP:]).mean(0)


@pytest.fixture(scope="module", params=["step", "window"])
def reset_at(request):
    return request.param


@pytest.fixture(scope="module")
def exact(reset_at):
    """Per window: K/T of the episode's gradient when episodes reset at once; one
    episode per ceil(T/K) windows when they wait for the window's end."""
    per_window = K / T if reset_at == "step" else 1 / W
    return float(jax.grad(episode_return)(jnp.float32(THETA), T)) * per_window


@pytest.fixture(scope="module")
def pes_estimates(reset_at):
    return per_pair_estimates(reset_at_window_end=reset_at == "window")


def test_pes_mean_matches_exact_gradient(pes_estimates, exact):
    pes = pes_estimates
    mean, se = pes.mean(), pes.std(ddof=1) / np.sqrt(N)
    print(f"PES {mean:.4f} ± {se:.4f} vs exact {exact:.4f} ({(mean - exact) / se:+.2f} SE)")
    assert abs(mean - exact) < 4 * se


def test_truncated_es_is_biased(exact, reset_at):
    tes = per_pair_estimates(reset_at_window_end=reset_at == "window", estimator="tes")
    mean, se = tes.mean(), tes.std(ddof=1) / np.sqrt(N)
    print(f"TES {mean:.4f} ± {se:.4f} vs exact {exact:.4f} ({(mean - exact) / se:+.1f} SE)")
    assert abs(mean - exact) > 10 * se


def test_breaking_the_accumulator_breaks_unbiasedness(exact, reset_at):
    """Plausible accumulator bugs are caught. With immediate resets: the naive rule
    "ξ <- 0 when an episode ends" forgets the ε that drove the new episode's first
    steps after a mid-window reset."""
    if reset_at == "window":
        # resets fall on window boundaries here; the bug to catch is ξ <- ε (assignment
        # instead of accumulation). (Never zeroing ξ would only add variance: old noise is
        # independent of a new episode.)
        broken = lambda acc, eps, dones: jnp.where(dones[:, -1:], 0.0, eps)  # noqa: E731
    else:
        broken = lambda acc, eps, dones: jnp.where(jnp.any(dones, -1, keepdims=True), 0.0, acc + eps)  # noqa: E731

    class BrokenPES(PES):
        def next_accumulator(self, accumulator, epsilon, dones):
            return broken(accumulator, epsilon, dones)

    pes = per_pair_estimates(BrokenPES, reset_at_window_end=reset_at == "window")
    mean, se = pes.mean(), pes.std(ddof=1) / np.sqrt(N)
    print(f"broken PES {mean:.4f} ± {se:.4f} vs exact {exact:.4f}")
    assert abs(mean - exact) > 4 * se


def test_nres_is_unbiased_too():
    """Noise-reuse ES (one ε per episode, reused every window) also matches the exact gradient."""
    exact = float(jax.grad(episode_return)(jnp.float32(THETA), T)) / W
    nres = per_pair_estimates(reset_at_window_end=True, estimator="nres")
    mean, se = nres.mean(), nres.std(ddof=1) / np.sqrt(N)
    print(f"NRES {mean:.4f} ± {se:.4f} vs exact {exact:.4f} ({(mean - exact) / se:+.2f} SE)")
    assert abs(mean - exact) < 4 * se
