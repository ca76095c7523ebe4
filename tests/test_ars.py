"""ARS (Mania, Guy & Recht 2018) in the PES harness: the update, top-b selection, the reward shift."""

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest

import pes_rl
from pes_rl.agents import estimators
from pes_rl.agents.pes import PES, PESConfig, WindowResult
from pes_rl.config import ConfigError, make_config


def _result(rewards, dones=None):
    rewards = jnp.asarray(rewards, jnp.float32)
    if dones is None:  # every episode ends with the window (K = T)
        dones = jnp.zeros(rewards.shape, bool).at[:, -1].set(True)
    zero = jnp.zeros(())
    return WindowResult(rewards, jnp.asarray(dones), zero, zero, jnp.zeros(3), jnp.zeros(3), zero, jnp.zeros((), jnp.int32))


# ---------------------------------------------------------------- the ARS update, by hand


@pytest.mark.parametrize("top, std_scaling", [(2, True), (4, True), (2, False)])
def test_ars_tell_is_the_papers_update(top, std_scaling):
    """θ ← θ + α/(b σ_R) Σ_{k ∈ top b} (R⁺_k − R⁻_k) δ_k, δ_k ~ N(0, I), perturbation ν δ_k (V1-t: σ_R = 1)."""
    n, d, k, nu, alpha = 4, 2000, 6, 0.025, 0.01
    agent = PES(PESConfig(num_pairs=n, sigma=nu, truncation_length=k, return_std_scaling=std_scaling,
                          estimator="ars", top_directions=top), optax.sgd(alpha))
    rng = np.random.default_rng(0)
    theta = rng.normal(size=d).astype(np.float32)
    state = agent.init(jnp.asarray(theta), jax.random.PRNGKey(1), observation_size=3)
    state, epsilon = agent.ask(state)
    epsilon = np.asarray(epsilon, np.float64)
    delta = epsilon[:n] / nu  # ask returns ε = ν δ (antithetic: the − members run −ε)
    np.testing.assert_array_equal(epsilon[n:], -epsilon[:n])
    assert abs(delta.std() - 1.0) < 0.02, "ε / ν must be a unit Gaussian direction"

    rewards = rng.normal(1.0, 1.0, (2 * n, k))
    rewards[1, 3:] = 0.0  # an episode that ended early: idle steps have reward 0
    r = rewards.sum(axis=1)
    r_plus, r_minus = r[:n], r[n:]
    best = np.argsort(-np.maximum(r_plus, r_minus))[:top]
    sigma_r = np.std(np.concatenate([r_plus[best], r_minus[best]])) if std_scaling else 1.0
    step = alpha / (top * sigma_r) * sum((r_plus[i] - r_minus[i]) * delta[i] for i in best)

    new_state, _ = jax.jit(agent.tell)(state, jnp.asarray(epsilon, jnp.float32), _result(rewards))
    np.testing.assert_allclose(np.asarray(new_state.params) - theta, step, rtol=2e-4, atol=1e-7)
    returns = jnp.asarray(r, jnp.float32)  # the pure function alone
    weights = estimators.top_directions_weights(returns, top)
    direction = estimators.ars_direction(returns, jnp.asarray(epsilon, jnp.float32), nu, weights, std_scaling)
    np.testing.assert_allclose(alpha * np.asarray(direction), step, rtol=2e-4, atol=1e-7)


def test_unknown_estimator_refused_when_the_agent_is_built():
    with pytest.raises(ValueError, match="estimator must be one of pes, tes, nres, ars; got 'arss'"):
        PES(PESConfig(estimator="arss"), optax.sgd(0.1))
    with pytest.raises(ValueError, match="top_directions must be an integer between 1 and num_pairs"):
        PES(PESConfig(num_pairs=3, top_directions=4), optax.sgd(0.1))


# ---------------------------------------------------------------- top-b selection


def test_top_directions_weights_keep_the_pairs_with_the_largest_max():
    r_plus = jnp.array([1.0, 5.0, 2.0, 0.0])
    r_minus = jnp.array([3.0, 0.0, 2.5, 4.0])  # max per pair: 3, 5, 2.5, 4
    w = estimators.top_directions_weights(jnp.concatenate([r_plus, r_minus]), 2)
    np.testing.assert_array_equal(w, [0, 1, 0, 1, 0, 1, 0, 1])
    w3 = estimators.top_directions_weights(jnp.concatenate([r_plus, r_minus]), 3)
    np.testing.assert_array_equal(w3, [1, 1, 0, 1, 1, 1, 0, 1])


def _pes_case(n=5, d=3, k=6, seed=0):
    rng = np.random.default_rng(seed)
    sigma = 0.2
    eps = estimators.antithetic(jnp.asarray(rng.normal(0, sigma, (n, d)), jnp.float32))
    acc = jnp.asarray(rng.normal(0, sigma, (2 * n, d)), jnp.float32)  # pairs out of step: ξ⁺ ≠ −ξ⁻
    rewards = rng.normal(size=(2 * n, k))
    dones = np.zeros((2 * n, k), bool)
    dones[2, 2] = dones[7, 4] = True  # resets inside the window
    return sigma, acc, eps, rewards, dones


@pytest.mark.parametrize("estimator", ["pes", "tes", "nres"])
@pytest.mark.parametrize("std_scaling", [False, True])
def test_top_b_equal_to_n_is_no_selection(estimator, std_scaling):
    sigma, acc, eps, rewards, dones = _pes_case()
    n = eps.shape[0] // 2

    def grad(top):
        agent = PES(PESConfig(num_pairs=n, sigma=sigma, return_std_scaling=std_scaling, estimator=estimator,
                              top_directions=top), optax.sgd(1.0))
        state = agent.init(jnp.zeros(3), jax.random.PRNGKey(0), 3)._replace(accumulator=acc)
        return agent.gradient(state, eps, _result(rewards, dones))

    np.testing.assert_allclose(grad(n), grad(None), rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize("std_scaling", [False, True])
def test_top_b_is_the_estimate_over_the_selected_pairs_alone(std_scaling):
    """b < N: the unselected pairs' terms are 0, and ĝ (and σ·/std(R) over the 2b selected returns)
    is exactly PES run on the sub-population of the b pairs with the largest max(R⁺, R⁻)."""
    sigma, acc, eps, rewards, dones = _pes_case()
    n, b = eps.shape[0] // 2, 2
    agent = PES(PESConfig(num_pairs=n, sigma=sigma, return_std_scaling=std_scaling, top_directions=b), optax.sgd(1.0))
    state = agent.init(jnp.zeros(3), jax.random.PRNGKey(0), 3)._replace(accumulator=acc)
    result = _result(rewards, dones)

    window = rewards.sum(axis=1)
    best = np.sort(np.argsort(-np.maximum(window[:n], window[n:]))[:b])
    members = np.concatenate([best, best + n])
    weights = agent.direction_weights(result)
    np.testing.assert_array_equal(np.flatnonzero(np.asarray(weights)), members)
    estimates = np.asarray(agent.particle_estimates(state, eps, result, weights))
    dropped = np.setdiff1d(np.arange(2 * n), members)
    assert np.all(estimates[dropped] == 0) and np.all(np.abs(estimates[members]).sum(axis=1) > 0)

    sub = PES(PESConfig(num_pairs=b, sigma=sigma, return_std_scaling=std_scaling), optax.sgd(1.0))
    sub_state = sub.init(jnp.zeros(3), jax.random.PRNGKey(0), 3)._replace(accumulator=acc[members])
    expected = sub.gradient(sub_state, eps[members], _result(rewards[members], dones[members]))
    np.testing.assert_allclose(agent.gradient(state, eps, result), expected, rtol=1e-5, atol=1e-6)


# ---------------------------------------------------------------- the reward shift on Hopper


def _hopper_window(reward_shift):
    """One ARS iteration on Hopper (gymnasium backend), recording what the env simulated and the
    WindowResult handed to ``tell``."""
    from pes_rl.runners import HostRunner
    from pes_rl.policy_io import apply_flat
    from pes_rl.trainer import _env_for, build_policy, make_optimizer

    config = make_config(env="Hopper-v5", backend="gymnasium", agent="ars", num_pairs=3, horizon=150, sigma=0.5,
                         reward_shift=reward_shift, progress_bar=False)
    env = _env_for(config, "gymnasium")
    policy, flat0, unravel = build_policy(config, env.observation_size, env.action_size, env.action_low, env.action_high)
    agent = PES(PESConfig(config.num_pairs, config.sigma, config.truncation_length, config.return_std_scaling,
                          config.normalize_obs, estimator="ars"), make_optimizer(config))
    runner = HostRunner(config, agent, apply_flat(policy, unravel), env, chunk=1)
    stepped, env_rewards, seen = [], [], []
    env_step, tell = env.step, runner._tell

    def spy_step(actions, mask=None):
        obs, reward, terminated, truncated = env_step(actions, mask)
        stepped.append(np.ones(env.num_envs, bool) if mask is None else np.asarray(mask, bool).copy())
        env_rewards.append(np.where(stepped[-1], reward, np.nan))
        return obs, reward, terminated, truncated

    def spy_tell(state, epsilon, result):
        seen.append(jax.tree_util.tree_map(np.asarray, result))
        return tell(state, epsilon, result)

    env.step, runner._tell = spy_step, spy_tell
    state = agent.init(flat0, jax.random.PRNGKey(0), env.observation_size)
    runner.start(state, jax.random.PRNGKey(1))
    state, rows = runner.run(state)
    env.close()
    return np.array(stepped).T, np.array(env_rewards).T, seen[0], rows[0]


def test_reward_shift_only_on_simulated_steps_and_never_in_returns():
    simulated, true_rewards, result, row = _hopper_window(1.0)
    assert simulated.shape == result.rewards.shape == (6, 150)
    assert (~simulated).any(), "some Hopper episode must end early so that its particle idles"
    # the estimator sees the true reward − 1 on exactly the simulated steps, 0 on the idle ones
    np.testing.assert_allclose(result.rewards[simulated], true_rewards[simulated] - 1.0, rtol=1e-6, atol=1e-5)
    assert np.all(result.rewards[~simulated] == 0.0)
    # env steps count the simulated steps only
    assert int(result.steps) == simulated.sum() == row["env_steps"] < simulated.size
    # the logged episode returns are the true ones
    assert row["finished_count"] == 6
    np.testing.assert_allclose(row["finished_return_sum"], np.nansum(true_rewards), rtol=1e-6)

    plain_sim, plain_rewards, plain, plain_row = _hopper_window(0.0)  # the same parameters, no shift
    np.testing.assert_array_equal(plain_sim, simulated)
    np.testing.assert_allclose(plain.rewards, np.where(simulated, result.rewards + 1.0, 0.0), rtol=1e-6, atol=1e-5)
    assert plain_row["finished_return_sum"] == row["finished_return_sum"]


class _FallsAfter:
    """A pure JaxEnv whose episode terminates after ⌊action⌋ steps; reward 10 + step index."""

    name, backend, observation_size, action_size, episode_length, dt = "falls", "mjx", 1, 1, 100, 1.0
    action_low, action_high = np.full(1, -np.inf, np.float32), np.full(1, np.inf, np.float32)

    def reset(self, key):
        from pes_rl.envs.base import State

        false = jnp.zeros((), bool)
        return State(jnp.zeros(()), jnp.ones(1), jnp.zeros(()), false, false, jnp.zeros((), jnp.int32))

    def step(self, state, action):
        steps = state.steps + 1
        ended = steps >= jnp.floor(action[0])
        return state.replace(reward=10.0 + state.steps, done=ended, terminated=ended, steps=steps)


def test_reward_shift_on_the_jax_unroll():
    """The jitted window shifts the simulated steps' rewards only; returns and env steps stay true."""
    from pes_rl.agents import jax_unroll
    from pes_rl.agents.normalization import init_normalizer

    env, k = _FallsAfter(), 8
    thetas = jnp.array([[3.0], [5.0], [99.0], [3.0], [5.0], [99.0]])  # episodes of 3, 5 and ≥ 8 steps
    window = jax_unroll.make_window(env, lambda th, obs: th, k, False, True, reward_shift=1.0)
    particles = jax_unroll.init_particles(env, jax.random.split(jax.random.PRNGKey(0), 3))
    _, out = jax.jit(jax_unroll.vmap_window(window))(thetas, init_normalizer(1), particles)
    result = jax_unroll.window_result(out)
    simulated = np.arange(k)[None, :] < np.array([3, 5, 8, 3, 5, 8])[:, None]
    true = np.broadcast_to(10.0 + np.arange(k), (6, k))
    np.testing.assert_array_equal(result.rewards, np.where(simulated, true - 1.0, 0.0))
    assert int(result.steps) == simulated.sum() == 32
    assert float(result.finished_return_sum) == 2 * ((10 + 11 + 12) + (10 + 11 + 12 + 13 + 14))
    assert float(result.finished_count) == 4


def test_reward_shift_leaves_logged_and_evaluated_returns_alone():
    from pes_rl.evaluation import evaluate_gymnasium

    common = dict(env="Hopper-v5", backend="gymnasium", agent="ars", num_pairs=2, horizon=100, sigma=0.3, lr=0.02,
                  total_steps=400, eval_episodes=2, progress_bar=False)
    shifted = pes_rl.train(reward_shift=1.0, **common)
    plain = pes_rl.train(reward_shift=0.0, **common)
    # iteration 1 ran the same parameters: same true episode returns logged
    assert shifted.metrics[0]["train_episode_return"] == plain.metrics[0]["train_episode_return"]
    assert not np.array_equal(shifted.flat_params, plain.flat_params), "the shift changes the update"
    # the evaluation of the shifted run's parameters is the unshifted return of those parameters
    returns = evaluate_gymnasium("hopper", shifted.policy, 2, seed=0, horizon=100)
    assert shifted.metrics[-1]["eval_return_mean"] == pytest.approx(float(np.mean(returns)), rel=1e-6)


# ---------------------------------------------------------------- config, CLI, end to end


def test_ars_config_defaults_and_validation():
    config = make_config(env="Hopper-v5", agent="ars")
    assert config.truncation_length == config.horizon  # one window per episode
    assert config.normalize_obs and config.return_std_scaling and config.optimizer == "sgd"
    assert config.top_directions is None and config.reward_shift == 0.0  # None: all N pairs (ARS V2)
    assert not make_config(env="Hopper-v5", agent="ars", normalize_obs=False).normalize_obs
    for bad, message in [
        (dict(top_directions=11), r"top_directions must be an integer between 1 and num_pairs \(10\); got 11"),
        (dict(top_directions=0), "top_directions must be"),
        (dict(reward_shift=float("nan")), "reward_shift must be a finite number"),
        (dict(agent="ars", reset_at="step"), "reset_at must be window for agent ars"),
    ]:
        with pytest.raises(ConfigError, match=message):
            make_config(**bad)


def test_cli_flags():
    from pes_rl import cli

    parser = cli.build_parser()
    args = parser.parse_args(["train", "--agent", "ars", "--reward-shift", "1", "--top-directions", "4"])
    assert (args.agent, args.reward_shift, args.top_directions) == ("ars", 1.0, 4)
    assert {"reward_shift", "top_directions"} <= {f.name for f in cli.flag_fields()}
    train = parser._subparsers._group_actions[0].choices["train"]
    text = " ".join(train.format_help().split())
    assert "biases the estimate" in text and "ars" in text


def test_ars_trains_on_hopper():
    result = pes_rl.train(env="Hopper-v5", backend="gymnasium", agent="ars", num_pairs=4, top_directions=2,
                          reward_shift=1.0, total_steps=8000, eval_episodes=2, run_dir=None, progress_bar=False)
    assert result.config.truncation_length == result.config.horizon == 1000
    assert result.env_steps >= 8000 and float(result.normalizer.count) > 0
    assert np.linalg.norm(result.flat_params) > 0
    # episodes end early on Hopper: only the simulated steps are counted
    assert all(m["env_steps"] < m["iteration"] * 8 * 1000 for m in result.metrics)
    assert result.final_eval_return is not None
