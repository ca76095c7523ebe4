"""The two particle loops agree: the ``lax.scan`` path (:class:`pes_rl.runners.JaxRunner`, the mjx
backend) and the host batch (:class:`pes_rl.runners.HostRunner`, the gymnasium backend) run the
same seeds on the same system and end with the same rewards, dones, ξ and parameters.

The system is a point mass with early termination, written twice, once per backend: a pure JAX
env and a gymnasium env, with the same deterministic reset. Episodes end by falling out of
``|x| <= 1`` (a time that depends on each particle's perturbation) and by the time limit T, so
both reset rules, idling after an episode ends, the stagger (offset and burn-in) and ξ's resets
are exercised. The JAX side runs in float32 and gymnasium's in float64: values agree to float32
precision, counts (env steps, resets, finished episodes) exactly.
"""

import gymnasium as gym
import jax
import jax.numpy as jnp
import numpy as np
import pytest

from pes_rl.agents.pes import PES, PESConfig
from pes_rl.config import make_config
from pes_rl.envs.base import State, time_limit
from pes_rl.envs.gymnasium_backend import GymnasiumBatchedEnv
from pes_rl.policy_io import apply_flat, build_policy
from pes_rl.runners import HostRunner, JaxRunner
from pes_rl.trainer import make_optimizer

X0, V0 = 0.3, 0.0  # every episode starts here (seeds and keys are ignored: the two sides draw differently)
T = 40


def dynamics(x, v, a):
    """``v' = 0.9 v + 0.1 a``, ``x' = x + v'``; reward ``1 - x'²``; terminated once ``|x'| > 1``."""
    v = 0.9 * v + 0.1 * a
    x = x + v
    return x, v, 1.0 - x * x, abs(x) > 1.0


class JaxPointMass:
    name, backend = "point_mass", "mjx"
    observation_size, action_size, dt = 2, 1, 1.0

    def __init__(self, episode_length: int = T):
        self.episode_length = episode_length
        self.action_low = np.full(1, -1.0, np.float32)
        self.action_high = np.full(1, 1.0, np.float32)

    def reset(self, key):
        del key
        obs = jnp.array([X0, V0], jnp.float32)
        false = jnp.zeros((), bool)
        return State(obs, obs, jnp.zeros(()), false, false, jnp.zeros((), jnp.int32))

    def step(self, state, action):
        x, v, reward, terminated = dynamics(state.physics[0], state.physics[1], action[0])
        obs = jnp.stack([x, v])
        steps = state.steps + 1
        return State(obs, obs, reward, time_limit(steps, terminated, self.episode_length), terminated, steps)


class GymPointMass(gym.Env):
    observation_space = gym.spaces.Box(-np.inf, np.inf, (2,), np.float64)
    action_space = gym.spaces.Box(-1.0, 1.0, (1,), np.float32)

    def reset(self, *, seed=None, options=None):
        super().reset(seed=seed)
        self.x, self.v = X0, V0
        return np.array([self.x, self.v]), {}

    def step(self, action):
        self.x, self.v, reward, terminated = dynamics(self.x, self.v, float(action[0]))
        return np.array([self.x, self.v]), float(reward), bool(terminated), False, {}


def gym_point_mass():
    return gym.wrappers.TimeLimit(GymPointMass(), max_episode_steps=T)


def run_both(stagger: str, reset_at: str, iterations: int = 8):
    config = make_config(env="swimmer", backend="gymnasium", num_pairs=4, truncation_length=10, horizon=T, sigma=0.8,
                         lr=0.3, stagger=stagger, reset_at=reset_at, normalize_obs=True, seed=5, total_steps=10**6)
    jax_env = JaxPointMass()
    host_env = GymnasiumBatchedEnv("PointMass", config.num_particles, episode_length=T, env_fn=gym_point_mass)
    policy, flat0, unravel = build_policy(config, 2, 1, jax_env.action_low, jax_env.action_high)
    agent = PES(PESConfig(config.num_pairs, config.sigma, config.truncation_length, config.return_std_scaling,
                          config.normalize_obs), make_optimizer(config))
    agent_key, particle_key = jax.random.split(jax.random.PRNGKey(config.seed))
    state = agent.init(flat0, agent_key, 2)
    runners = [JaxRunner(config, agent, apply_flat(policy, unravel), jax_env, chunk=1),
               HostRunner(config, agent, apply_flat(policy, unravel), host_env, chunk=1)]
    # the scan path donates its buffers: each side gets its own copy of the initial state
    states = [jax.tree_util.tree_map(jnp.copy, state) for _ in runners]
    history = [[], []]
    for side, runner in enumerate(runners):
        history[side].append({"start_steps": runner.start(states[side], particle_key)})
        for _ in range(iterations):
            states[side], rows = runner.run(states[side], 1)
            history[side].append({**rows[0], "params": np.asarray(states[side].params),
                                  "xi": np.asarray(states[side].accumulator)})
    host_env.close()
    return history


COUNTS = ("env_steps", "resets", "finished_count")


@pytest.mark.parametrize("stagger, reset_at", [("offset", "window"), ("burn-in", "window"), ("burn-in", "step"),
                                               ("none", "step")])
def test_jax_and_host_particle_loops_agree(stagger, reset_at):
    jax_rows, host_rows = run_both(stagger, reset_at)
    # Burn-in counts the steps simulated: the scan path runs the + members and copies them to the −
    # members; a host env whose state cannot be copied (this one: not MuJoCo) runs both members.
    assert host_rows[0]["start_steps"] == 2 * jax_rows[0]["start_steps"]
    assert (jax_rows[0]["start_steps"] > 0) == (stagger == "burn-in")
    finished = 0
    for i, (j, h) in enumerate(zip(jax_rows[1:], host_rows[1:]), start=1):
        for key in COUNTS:
            assert j[key] == h[key], (i, key, j[key], h[key])
        finished += j.get("finished_count", 0)
        np.testing.assert_allclose(j["window_return_mean"], h["window_return_mean"], rtol=1e-4, atol=1e-4, err_msg=str(i))
        np.testing.assert_allclose(j["xi"], h["xi"], rtol=1e-4, atol=1e-5, err_msg=f"ξ, iteration {i}")
        np.testing.assert_allclose(j["params"], h["params"], rtol=1e-4, atol=1e-5, err_msg=f"θ, iteration {i}")
    assert finished > 0  # episodes did end (by falling or by the time limit) inside the compared iterations
    assert np.any(jax_rows[-1]["xi"] != 0)  # and ξ carried perturbations across windows
