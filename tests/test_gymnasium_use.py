"""Using pes_rl with gymnasium: any Box env, user factories, trained policies in plain loops."""

import gymnasium as gym
import numpy as np
import pytest

import pes_rl


@pytest.fixture(scope="module")
def pendulum_run(tmp_path_factory):
    run = tmp_path_factory.mktemp("runs") / "pendulum"
    # linear rather than the Pendulum-v1 preset's MLP: 3 parameters to check by shape
    result = pes_rl.train(env="Pendulum-v1", backend="gymnasium", total_steps=6000, num_pairs=4, policy="linear",
                          truncation_length=50, horizon=200, eval_every=0, eval_episodes=3, run_dir=str(run),
                          progress_bar=False)
    return run, result


def test_train_on_any_registered_box_env(pendulum_run):
    run, result = pendulum_run
    assert result.flat_params.shape == (3,)
    assert result.final_eval_return is not None and np.isfinite(result.final_eval_return)


def test_load_policy_in_a_plain_gymnasium_loop(pendulum_run):
    run, result = pendulum_run
    policy = pes_rl.load_policy(str(run))
    env = gym.make("Pendulum-v1")
    obs, _ = env.reset(seed=0)
    for _ in range(20):
        action = policy(obs)
        assert env.action_space.contains(action.astype(np.float32))
        np.testing.assert_allclose(action, result.policy(obs), rtol=1e-6)
        obs, *_ = env.step(action)


def test_policy_agent_object(pendulum_run):
    run, _ = pendulum_run
    agent = pes_rl.PolicyAgent(str(run))
    assert agent.action_space == gym.make("Pendulum-v1").action_space
    obs = agent.observation_space.sample()
    action, state = agent.predict(obs)
    assert agent.action_space.contains(action) and state is None
    np.testing.assert_array_equal(agent(obs), action)


def test_user_env_factory_with_own_wrappers():
    """A factory's wrappers are what training sees: here rewards are scaled by 0 (nothing to learn)."""
    factory = lambda: gym.wrappers.TransformReward(gym.make("Pendulum-v1", max_episode_steps=100), lambda r: 0.0 * r)  # noqa: E731
    result = pes_rl.train(env="Pendulum-v1", backend="gymnasium", env_fn=factory, total_steps=2000, num_pairs=2,
                          policy="linear", truncation_length=50, horizon=100, eval_every=0, progress_bar=False)
    assert result.final_eval_return == 0.0
    np.testing.assert_array_equal(result.flat_params, 0.0)


def test_discrete_action_env_gets_a_clear_error():
    with pytest.raises(ValueError, match="Box action space"):
        pes_rl.train(env="CartPole-v1", backend="gymnasium", total_steps=10_000, progress_bar=False)
