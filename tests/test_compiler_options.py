"""Every jitted program that steps a JAX env is compiled with the env's CPU compiler options
(:func:`pes_rl.envs.compiler_options`; MuJoCo Playground's tasks ask for XLA's fast-math).

The env here asks for an option XLA rejects at compile time, so each program shows that it
carries the options by failing with XLA's message naming that option."""

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest
from test_particle_loops_agree import JaxPointMass

from pes_rl import envs
from pes_rl.agents import jax_unroll
from pes_rl.agents.normalization import init_normalizer
from pes_rl.agents.pes import PES, PESConfig
from pes_rl.config import make_config
from pes_rl.evaluation import make_mjx_evaluator
from pes_rl.runners import JaxRunner

BOGUS = {"xla_not_an_option": True}
REJECTED = "No such compile option: 'xla_not_an_option'"


class AskingPointMass(JaxPointMass):
    cpu_compiler_options = BOGUS


def apply(theta, obs):
    return jnp.tanh(obs[:1] * theta[0])


def setup(env):
    config = make_config(env="swimmer", backend="mjx", num_pairs=2, truncation_length=5, horizon=20, seed=0,
                         stagger="burn-in")
    agent = PES(PESConfig(num_pairs=2, sigma=0.1, truncation_length=5), optax.sgd(0.1))
    state = agent.init(jnp.ones(1), jax.random.PRNGKey(1), env.observation_size)
    return config, agent, state


def test_options_apply_on_the_cpu_only(monkeypatch):
    assert envs.compiler_options(JaxPointMass()) is None
    assert envs.compiler_options(AskingPointMass()) == BOGUS
    monkeypatch.setattr(jax, "default_backend", lambda: "gpu")
    assert envs.compiler_options(AskingPointMass()) is None


def test_every_program_that_steps_the_env_carries_its_options():
    env = AskingPointMass()
    config, agent, state = setup(env)
    runner = JaxRunner(config, agent, apply, env, chunk=1)
    with pytest.raises(Exception, match=REJECTED):  # the particles' initial states
        runner.start(state, jax.random.PRNGKey(2))

    window = jax_unroll.make_window(env, apply, 5, False)
    particles = jax_unroll.init_particles(env, jax.random.split(jax.random.PRNGKey(0), 2))  # eager: no options
    normalizer = init_normalizer(env.observation_size)
    options = envs.compiler_options(env)
    with pytest.raises(Exception, match=REJECTED):
        jax_unroll.make_burn_in(window, None, options)(state.params, normalizer, particles, np.ones(4, int))
    with pytest.raises(Exception, match=REJECTED):
        jax_unroll.make_train_chunk(agent, window, 1, None, options)(state, particles)
    with pytest.raises(Exception, match=REJECTED):
        make_mjx_evaluator(env, apply, False, 2)(state.params, normalizer, jax.random.PRNGKey(0))


def test_the_runner_compiles_its_chunks_with_the_options():
    """A runner over an env without options trains; the same runner, given the options after it
    started, fails at its next chunk's compilation."""
    env = JaxPointMass()
    config, agent, state = setup(env)
    runner = JaxRunner(config, agent, apply, env, chunk=1)
    assert runner.compiler_options is None
    runner.start(state, jax.random.PRNGKey(2))
    state, rows = runner.run(state, 1)
    assert rows[0]["env_steps"] > 0
    runner.compiler_options = BOGUS
    with pytest.raises(Exception, match=REJECTED):
        runner.run(state, 2)  # a new scan length: a new program
