"""Influence balancing (Tallec & Ollivier, UORO), the PES paper's unbiasedness demo.

State ``s ∈ R^23``, ``s_0 = 1``; ``s_{t+1} = A s_t + θ b`` with
``A = 0.5 I + 0.5 · superdiagonal shift`` and ``b = (+1 ×10, −1 ×13)``; the
loss after each step is ``½ (s[0] − 1)²``. Exposed as a :class:`JaxEnv`
whose *action* is θ (drive it with a constant policy) and whose reward is
minus the loss, so the RL machinery unrolls it unchanged. Linear dynamics and
a quadratic loss make the exact gradient available by ``jax.grad``.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np

from pes_rl.envs.base import State, time_limit

DIM = 23
POSITIVE = 10


def influence_matrices() -> tuple[jax.Array, jax.Array]:
    """``A = 0.5 I + 0.5 · shift`` (s[i] reads s[i+1]) and ``b``."""
    a = 0.5 * jnp.eye(DIM) + 0.5 * jnp.eye(DIM, k=1)
    b = jnp.concatenate([jnp.ones(POSITIVE), -jnp.ones(DIM - POSITIVE)])
    return a, b


class InfluenceBalancing:
    """Episodes of ``episode_length`` steps from ``s_0 = 1`` (deterministic resets)."""

    name = "influence_balancing"
    backend = "mjx"  # a pure JAX env, batched with vmap like the mjx ones
    observation_size = DIM
    action_size = 1
    dt = 1.0

    def __init__(self, episode_length: int = 100):
        self.episode_length = int(episode_length)
        self.action_low = np.full((1,), -np.inf, np.float32)
        self.action_high = np.full((1,), np.inf, np.float32)
        self.a, self.b = influence_matrices()

    def reset(self, key: jax.Array) -> State:
        del key
        false = jnp.zeros((), bool)
        return State(jnp.ones(DIM), jnp.ones(DIM), jnp.zeros(()), false, false, jnp.zeros((), jnp.int32))

    def step(self, state: State, action: jax.Array) -> State:
        """``s' = A s + θ b``; reward ``-½ (s'[0] - 1)²``."""
        s = self.a @ state.physics + action[0] * self.b
        steps = state.steps + 1
        terminated = jnp.zeros((), bool)
        return State(s, s, -0.5 * (s[0] - 1.0) ** 2, time_limit(steps, terminated, self.episode_length), terminated, steps)


def episode_return(theta: jax.Array, episode_length: int) -> jax.Array:
    """``Σ_{t=1}^{T} -½ (s_t[0] - 1)²`` from ``s_0 = 1`` with θ held fixed (differentiable)."""
    a, b = influence_matrices()

    def step(s, _):
        s = a @ s + theta * b
        return s, -0.5 * (s[0] - 1.0) ** 2

    _, rewards = jax.lax.scan(step, jnp.ones(DIM), None, length=episode_length)
    return jnp.sum(rewards)


def unrolled_system() -> tuple:
    """The task as ``(init, unroll_step)`` for :func:`pes_rl.unroll.optimize`: ``init`` gives
    ``s_0 = 1``, ``unroll_step(s, θ, key)`` steps ``s' = A s + θ_0 b`` with loss ``½ (s'[0] - 1)²``
    and never ends early."""
    a, b = influence_matrices()

    def init(key: jax.Array, theta: jax.Array) -> jax.Array:
        return jnp.ones(DIM)

    def unroll_step(s: jax.Array, theta: jax.Array, key: jax.Array):
        s = a @ s + theta[0] * b
        return s, 0.5 * (s[0] - 1.0) ** 2, False

    return init, unroll_step
