"""The estimator's pieces, each against a hand-computed case."""

import jax.numpy as jnp
import numpy as np

from pes_rl.agents import estimators
from pes_rl.agents.policies import make_policy


def test_first_episode_mask_includes_the_done_step_and_nothing_after():
    dones = jnp.array([[0, 0, 1, 0, 1], [0, 0, 0, 0, 0], [1, 0, 0, 0, 0]], bool)
    np.testing.assert_array_equal(
        estimators.first_episode_mask(dones), [[1, 1, 1, 0, 0], [1, 1, 1, 1, 1], [1, 0, 0, 0, 0]]
    )


def test_accumulator_cases():
    xi = jnp.array([[1.0], [1.0], [1.0]])
    eps = jnp.array([[0.5], [0.5], [0.5]])
    dones = jnp.array([[0, 0, 0], [0, 1, 0], [0, 1, 1]], bool)
    # went on: ξ+ε; reset mid-window: ε (the new episode ran with it); ended on the last step: 0
    np.testing.assert_allclose(estimators.pes_accumulate(xi, eps, dones), [[1.5], [0.5], [0.0]])


def test_lockstep_pairs_give_the_papers_formula():
    """ĝ = 1/(2Nσ²) Σ_i (R⁺_i − R⁻_i)(ξ_i + ε_i) when no episode ends."""
    rng = np.random.default_rng(0)
    n, d, k, sigma = 3, 4, 5, 0.3
    noise = rng.normal(0, sigma, (n, d))
    xi = rng.normal(0, sigma, (n, d))
    eps = estimators.antithetic(jnp.asarray(noise))
    acc = estimators.antithetic(jnp.asarray(xi))
    rewards = jnp.asarray(rng.normal(size=(2 * n, k)))
    dones = jnp.zeros((2 * n, k), bool)
    r = np.asarray(rewards.sum(1))
    expected = ((r[:n] - r[n:])[:, None] * (xi + noise)).sum(0) / (2 * n * sigma**2)
    np.testing.assert_allclose(estimators.pes_gradient(acc, eps, rewards, dones, sigma), expected, rtol=1e-5)


def test_post_reset_steps_are_weighted_by_epsilon_alone():
    sigma = 1.0
    acc = jnp.array([[10.0], [-10.0]])
    eps = jnp.array([[1.0], [-1.0]])
    dones = jnp.array([[0, 1, 0], [0, 0, 0]], bool)
    rewards = jnp.array([[1.0, 2.0, 4.0], [0.0, 0.0, 0.0]])
    # particle 0: first episode (1+2) with ξ+ε = 11, after reset 4 with ε = 1
    # centred over the 2 particles: A = (3, 0) -> (1.5, -1.5); B - A = (4, 0) -> (2, -2)
    expected = (1.5 * 11 + -1.5 * -11 + 2 * 1 + -2 * -1) / 2
    np.testing.assert_allclose(estimators.pes_gradient(acc, eps, rewards, dones, sigma), [expected])


def test_policies_are_zero_initialised_and_clip_to_the_action_space():
    low, high = np.array([-1.0, -2.0]), np.array([1.0, 2.0])
    for kind in ("linear", "mlp"):
        policy = make_policy(kind, 3, 2, low, high, hidden=(8, 8))
        params = policy.init(jnp.zeros(2, jnp.uint32))
        np.testing.assert_array_equal(policy.apply(params, jnp.ones(3)), [0.0, 0.0])
    linear = make_policy("linear", 3, 2, low, high)
    big = {"w": jnp.full((2, 3), 10.0)}
    np.testing.assert_array_equal(linear.apply(big, jnp.ones(3)), [1.0, 2.0])
    mlp = make_policy("mlp", 3, 2, low, high, hidden=(64, 64))
    params = mlp.init(jnp.zeros(2, jnp.uint32))
    assert [l["w"].shape for l in params["layers"]] == [(64, 3), (64, 64), (2, 64)]


def test_normalizer_merges_batches_like_numpy():
    from pes_rl.agents.normalization import init_normalizer, normalize, update_normalizer

    rng = np.random.default_rng(0)
    batches = [rng.normal(3.0, 2.0, (n, 4)) for n in (5, 17, 40)]
    state = init_normalizer(4)
    for b in batches:
        state = update_normalizer(state, jnp.asarray(b.sum(0)), jnp.asarray((b**2).sum(0)), jnp.asarray(float(len(b))))
    everything = np.concatenate(batches)
    np.testing.assert_allclose(state.mean, everything.mean(0), rtol=1e-5)
    np.testing.assert_allclose(state.var, everything.var(0), rtol=1e-4)
    assert float(state.count) == len(everything)
    z = normalize(state, jnp.asarray(everything), True)
    np.testing.assert_allclose(np.asarray(z).mean(0), 0.0, atol=1e-4)
    np.testing.assert_array_equal(normalize(state, jnp.ones(4), False), jnp.ones(4))


def _influence_run(estimator, truncation_length, horizon, iterations=6, reset_xi=False):
    """θ after a few real PES-family iterations on influence balancing (lr > 0)."""
    import jax
    import optax

    from pes_rl.agents import jax_unroll
    from pes_rl.agents.pes import PES, PESConfig
    from pes_rl.envs.influence import InfluenceBalancing

    env = InfluenceBalancing(episode_length=horizon)
    window = jax_unroll.make_window(env, lambda th, obs: th, truncation_length, False, True)
    agent = PES(PESConfig(num_pairs=8, sigma=0.1, truncation_length=truncation_length, estimator=estimator),
                optax.sgd(1e-4))
    iteration = jax.jit(jax_unroll.make_iteration(agent, window))
    key = jax.random.PRNGKey(0)
    state = agent.init(jnp.array([0.5]), key, env.observation_size)
    particles = jax_unroll.init_particles(env, jax.random.split(key, 8))
    thetas = []
    for _ in range(iterations):
        if reset_xi:
            state = state._replace(accumulator=jnp.zeros_like(state.accumulator))
        state, particles, _ = iteration(state, particles)
        thetas.append(float(state.params[0]))
    return thetas


def test_pes_with_one_window_per_episode_is_es():
    """K = T: ξ is 0 at every window start, so PES and (full-episode) ES take identical steps."""
    assert _influence_run("pes", 10, 10) == _influence_run("tes", 10, 10)


def test_truncated_es_is_pes_whose_xi_is_reset_every_window():
    pes_reset = _influence_run("pes", 5, 20, reset_xi=True)
    assert pes_reset == _influence_run("tes", 5, 20)
    assert pes_reset != _influence_run("pes", 5, 20), "with ξ kept, PES must differ from truncated ES"


def test_truncation_counter_and_spread_buckets():
    dones = jnp.array([[0, 0], [0, 1], [1, 0]], bool)
    # went on: +1; ended on the last step: 0; reset mid-window: 1 (the new episode has run one window's noise)
    np.testing.assert_array_equal(estimators.truncations_in_episode(jnp.array([2, 2, 2]), dones), [3, 0, 1])
    g = jnp.array([[1.0, 0.0], [0.0, 2.0], [3.0, 0.0], [0.0, 0.0]])
    by = estimators.spread_by_truncation(g, jnp.array([0, 0, 1, 7]), buckets=3)
    np.testing.assert_allclose(by, [2.5, 9.0, 0.0])
    assert np.isnan(estimators.spread_by_truncation(g, jnp.array([0, 0, 0, 0]), buckets=2)[1])
    np.testing.assert_allclose(estimators.relative_spread(jnp.array([[1.0], [3.0]])), 1.0 / 4.0)


def test_estimators_are_objects_built_by_name():
    """pes(), tes(), nres(), ars() build the estimators; an unknown name fails when the agent is built."""
    import optax
    import pytest

    from pes_rl.agents.pes import ESTIMATORS, PES, PESConfig, ars, make_estimator, nres, pes, tes

    assert [f().name for f in (pes, tes, nres, ars)] == list(ESTIMATORS) == ["pes", "tes", "nres", "ars"]
    assert make_estimator("nres") == nres()
    assert PES(PESConfig(estimator="tes"), optax.sgd(0.1)).estimator == tes()
    with pytest.raises(ValueError, match="estimator must be one of pes, tes, nres, ars; got 'es'"):
        PES(PESConfig(estimator="es"), optax.sgd(0.1))  # es is PES with K = T, chosen by the config
