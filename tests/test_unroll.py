"""PES on a user's unrolled system (``pes_rl.unroll``): unbiased against ``jax.grad`` where truncated
ES is not, and ``optimize`` descends the unroll's loss."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import pes_rl.unroll as pu
from pes_rl.config import ConfigError
from pes_rl.envs.influence import episode_return, unrolled_system

T, K, THETA = 20, 5, 0.5  # K divides T: W = 4 windows an unroll
init, unroll_step = unrolled_system()  # influence balancing (Tallec & Ollivier) in the unroll API's vocabulary


def seed_means(estimator: str, seeds: int = 6, iterations: int = 44) -> np.ndarray:
    """Per seed, the mean estimate over the iterations after the first W (ξ then covers each unroll)."""
    return np.array([pu.estimate_gradient(init, unroll_step, jnp.array([THETA]), horizon=T, truncation_length=K,
                                          num_pairs=256, sigma=0.1, iterations=iterations, estimator=estimator,
                                          seed=seed)[T // K:, 0].mean() for seed in range(seeds)])


def test_pes_through_the_unroll_api_is_unbiased_and_truncated_es_is_not():
    # the loss is quadratic in θ, so Gaussian smoothing leaves its gradient unchanged
    exact = -float(jax.grad(lambda th: episode_return(th, T))(jnp.float32(THETA)))
    pes = seed_means("pes")
    se = pes.std(ddof=1) / np.sqrt(len(pes))
    assert abs(pes.mean() - exact) < 3 * se + 1e-3 * abs(exact), (pes.mean(), exact, se)
    tes = seed_means("tes")
    se_tes = tes.std(ddof=1) / np.sqrt(len(tes))
    assert abs(tes.mean() - exact) > 3 * se_tes + 0.05 * abs(exact), (tes.mean(), exact, se_tes)


def test_tbptt_through_the_api_is_exact_over_whole_unrolls_and_biased_over_truncations():
    """TBPTT (``jax.grad`` through each window from the systems' running states): with K = T every
    window is a whole unroll, so its gradient is exactly ``jax.grad`` of the unroll's loss; with
    K = 5 it ignores θ's influence across windows and misses it by far."""
    exact = -float(jax.grad(lambda th: episode_return(th, T))(jnp.float32(THETA)))
    whole = pu.estimate_gradient(init, unroll_step, jnp.array([THETA]), horizon=T, truncation_length=T,
                                 num_pairs=2, iterations=3, estimator="tbptt")
    np.testing.assert_allclose(whole[:, 0], exact, rtol=1e-4)
    truncated = pu.estimate_gradient(init, unroll_step, jnp.array([THETA]), horizon=T, truncation_length=K,
                                     num_pairs=64, iterations=20, estimator="tbptt")[T // K:, 0]
    assert abs(truncated.mean() - exact) > 0.5 * abs(exact), (truncated.mean(), exact)


def test_a_run_dir_logs_checkpoints_and_resumes_exactly(tmp_path):
    """With a run dir, ``optimize`` writes progress.csv (a row per iteration) and checkpoints; a run
    stopped at 40 iterations and resumed to 60 ends where an unstopped 60-iteration run does, and
    its result covers all 60; a resume with other settings is refused, naming them."""
    args = dict(horizon=T, truncation_length=K, num_pairs=16, sigma=0.1, lr=1e-4, checkpoint_every=20)
    full = pu.optimize(init, unroll_step, jnp.array([THETA]), iterations=60, run_dir=str(tmp_path / "full"), **args)
    pu.optimize(init, unroll_step, jnp.array([THETA]), iterations=40, run_dir=str(tmp_path / "part"), **args)
    resumed = pu.optimize(init, unroll_step, jnp.array([THETA]), iterations=60, run_dir=str(tmp_path / "part"),
                          resume=True, **args)
    np.testing.assert_array_equal(resumed.thetas, full.thetas)
    np.testing.assert_array_equal(resumed.losses, full.losses)
    assert resumed.thetas.shape == (60, 1) and resumed.burn_in_steps == full.burn_in_steps > 0
    rows = (tmp_path / "part" / "progress.csv").read_text().strip().splitlines()
    assert rows[0].split(",")[:5] == ["iteration", "system_steps", "wall_time", "steps_per_s", "loss"]
    assert [int(r.split(",")[0]) for r in rows[1:]] == list(range(1, 61))
    np.testing.assert_allclose([float(r.split(",")[4]) for r in rows[1:]], full.losses, rtol=1e-6)
    with pytest.raises(ConfigError, match=r"settings differ .* in sigma \(run 0.1, now 0.2\)"):
        pu.optimize(init, unroll_step, jnp.array([THETA]), iterations=80, run_dir=str(tmp_path / "part"),
                    resume=True, **(args | dict(sigma=0.2)))


def test_optimize_tunes_a_learning_rate():
    """The module's example: θ = log learning rate of SGD on (w - 3)²; from lr = e^-4 (barely moving)
    PES finds one that reaches the minimum within the 50-step unroll."""
    def init_w(key, theta):
        return jnp.zeros(())

    def sgd_step(w, theta, key):
        w = w - jnp.exp(theta[0]) * 2 * (w - 3)
        return w, (w - 3) ** 2, False

    result = pu.optimize(init_w, sgd_step, jnp.array([-4.0]), horizon=50, truncation_length=10, num_pairs=64,
                         sigma=0.3, lr=0.01, iterations=300)
    assert result.thetas.shape == (300, 1) and result.losses.shape == (300,)
    assert result.losses[0] > 1.0 > 0.05 > result.losses[-1]
    assert -2.0 < result.theta[0] < 0.0  # lr between e^-2 and 1: fast, and short of divergence (lr > 1)
    # the stagger's steps: pair i ran b_i windows of K = 10 before the first iteration (no unroll ends early)
    windows = pu.stagger_windows(0, 50, 10, 64)
    assert windows.max() > 0 and result.burn_in_steps == 10 * int(windows.sum())


@pytest.mark.parametrize("kwargs, message", [
    (dict(estimator="ppo"), "estimator must be one of pes, tes, nres, es, tbptt; got 'ppo'"),
    (dict(truncation_length=30), r"truncation_length must be between 1 and horizon \(20\); got 30"),
    (dict(num_pairs=0), "num_pairs must be an integer >= 1; got 0"),
])
def test_bad_arguments_name_the_argument(kwargs, message):
    args = dict(horizon=T, truncation_length=K, iterations=2) | kwargs
    with pytest.raises(ValueError, match=message):
        pu.optimize(init, unroll_step, jnp.array([THETA]), **args)
