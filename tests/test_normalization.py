"""Running observation normalisation: exact statistics, ARS's filter semantics (unclipped)."""

import jax.numpy as jnp
import numpy as np

from pes_rl.agents.normalization import init_normalizer, normalize, update_normalizer


def test_merged_batches_give_the_statistics_of_every_observation():
    rng = np.random.default_rng(0)
    batches = [rng.normal(3.0, 2.0, size=(n, 4)) for n in (5, 300, 17)]
    state = init_normalizer(4)
    for b in batches:
        state = update_normalizer(state, jnp.asarray(b.sum(0)), jnp.asarray((b**2).sum(0)), jnp.asarray(len(b), jnp.float32))
    everything = np.concatenate(batches)
    np.testing.assert_allclose(state.mean, everything.mean(0), rtol=1e-5)
    np.testing.assert_allclose(state.var, everything.var(0), rtol=1e-4)
    assert float(state.count) == len(everything)


def test_normalize_is_unclipped_and_ignores_constant_features():
    state = init_normalizer(3)._replace(mean=jnp.array([1.0, 0.0, 5.0]), var=jnp.array([4.0, 1e-20, 1.0]))
    out = np.asarray(normalize(state, jnp.array([101.0, 3.0, 5.0]), True))
    # 50 standard deviations stay 50 (ARS does not clip); a feature constant so far maps to 0
    np.testing.assert_allclose(out, [50.0, 0.0, 0.0])
    np.testing.assert_array_equal(np.asarray(normalize(state, jnp.array([7.0, 8.0, 9.0]), False)), [7.0, 8.0, 9.0])
