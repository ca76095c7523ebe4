"""Deterministic-policy evaluation over full episodes, on either backend."""

from __future__ import annotations

import functools
from typing import Callable

import jax
import jax.numpy as jnp
import numpy as np

from pes_rl import envs
from pes_rl.agents.host_unroll import episode_seed
from pes_rl.agents.normalization import NormalizerState, normalize

EVAL_SEED_OFFSET = 1_000_003  # evaluation episodes never share reset seeds with training


def evaluate_gymnasium(
    env_name: str,
    act: Callable[[np.ndarray], np.ndarray],
    episodes: int,
    seed: int,
    horizon: int,
    env_fn=None,
    num_threads: int | None = None,
) -> np.ndarray:
    """Returns of ``episodes`` full episodes on gymnasium, one batch (C threads: ``num_threads``,
    default every core); ``act`` maps a batch of obs to actions."""
    env = envs.make(env_name, "gymnasium", num_envs=episodes, episode_length=horizon, env_fn=env_fn,
                    num_threads=num_threads)
    try:
        seeds = np.array([episode_seed(seed + EVAL_SEED_OFFSET, i) for i in range(episodes)])
        obs = env.reset(seeds)
        returns = np.zeros(episodes)
        running = np.ones(episodes, bool)
        while running.any():
            # no mask while every episode runs: the batch then steps views, not index copies
            obs, reward, terminated, truncated = env.step(act(obs), mask=None if running.all() else running)
            returns += reward * running
            running &= ~(terminated | truncated)
        return returns
    finally:
        env.close()


def make_mjx_evaluator(env: envs.JaxEnv, apply_flat, normalize_obs: bool, episodes: int):
    """A jitted ``evaluate(theta, normalizer, key) -> returns (episodes,)`` over full episodes."""

    def one(theta, normalizer, key):
        def step(carry, _):
            state, total, running = carry
            action = apply_flat(theta, normalize(normalizer, state.obs, normalize_obs))
            state = env.step(state, action)
            total = total + state.reward * running
            return (state, total, jnp.logical_and(running, ~state.done)), None

        init = (env.reset(key), jnp.zeros(()), jnp.ones((), bool))
        (_, total, _), _ = jax.lax.scan(step, init, None, length=env.episode_length)
        return total

    @functools.partial(jax.jit, compiler_options=envs.compiler_options(env))
    def evaluate(theta, normalizer: NormalizerState, key):
        keys = jax.random.split(key, episodes)
        return jax.vmap(one, in_axes=(None, None, 0))(theta, normalizer, keys)

    return evaluate
