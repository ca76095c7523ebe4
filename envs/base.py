"""The one environment protocol every simulator backend implements.

Two shapes of the same semantics:

* :class:`JaxEnv` — a pure, jit-able, *unbatched* environment (mjx backend).
  Callers batch it with ``jax.vmap`` and decide themselves when to reset:
  ``step`` never auto-resets, so a caller can reset an antithetic pair with
  one shared key.
* :class:`BatchedEnv` — a host-side (numpy) batch of environments (gymnasium
  backend) where the caller chooses which members reset and with which seed.

Both report ``done`` (the episode ended) and ``terminated`` (it ended because
the task said so, not because of the time limit); ``truncated`` is their
difference.
"""

from __future__ import annotations

import contextlib
import dataclasses
import io
from typing import Any, Iterator, Protocol, runtime_checkable

import jax
import jax.numpy as jnp
import numpy as np


# a frozen dataclass registered as a pytree (fields flattened in declaration order); not flax's
# struct.dataclass, whose import (flax.linen) alone cost ~0.2 s of every run's start-up
@jax.tree_util.register_dataclass
@dataclasses.dataclass(frozen=True)
class State:
    """One environment's state on a JAX backend.

    Attributes:
      physics: the simulator's own state (``mjx.Data`` or a Brax ``State``).
      obs: observation after the last reset/step, shape ``(observation_size,)``.
      reward: reward of the last step (0 after a reset).
      done: the episode has ended (termination or time limit).
      terminated: the episode ended because the task terminated it.
      steps: env steps taken since the last reset.
    """

    physics: Any
    obs: jax.Array
    reward: jax.Array
    done: jax.Array
    terminated: jax.Array
    steps: jax.Array

    def replace(self, **changes: Any) -> "State":
        """A copy with ``changes`` applied (as flax's ``struct.dataclass`` offers)."""
        return dataclasses.replace(self, **changes)

    @property
    def truncated(self) -> jax.Array:
        """The episode ended by the time limit only."""
        return jnp.logical_and(self.done, jnp.logical_not(self.terminated))


@runtime_checkable
class JaxEnv(Protocol):
    """A pure single environment on a JAX backend (``backend == "mjx"``)."""

    name: str
    backend: str
    observation_size: int
    action_size: int
    episode_length: int
    dt: float
    action_low: np.ndarray
    action_high: np.ndarray

    def reset(self, key: jax.Array) -> State: ...

    def step(self, state: State, action: jax.Array) -> State: ...


@runtime_checkable
class BatchedEnv(Protocol):
    """A host-side batch of environments (``backend == "gymnasium"``).

    ``reset(seeds, mask)`` resets the members where ``mask`` is true, each
    with its own seed, and returns every member's current observation.
    ``step(actions)`` returns ``(obs, reward, terminated, truncated)`` numpy
    arrays; members that are done stay done until the caller resets them.
    """

    name: str
    backend: str
    num_envs: int
    observation_size: int
    action_size: int
    episode_length: int
    dt: float
    action_low: np.ndarray
    action_high: np.ndarray

    def reset(self, seeds: np.ndarray, mask: np.ndarray | None = None) -> np.ndarray: ...

    def step(self, actions: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]: ...

    def close(self) -> None: ...


def time_limit(steps: jax.Array, terminated: jax.Array, episode_length: int) -> jax.Array:
    """``done = terminated or steps >= episode_length`` (the time-limit rule)."""
    return jnp.logical_or(terminated, steps >= episode_length)


def strong_types(tree: Any) -> Any:
    """``tree`` with every array leaf strongly typed (its dtype kept; ``astype`` drops a weak type
    and costs nothing where there is none)."""
    return jax.tree_util.tree_map(lambda x: jnp.asarray(x).astype(jnp.asarray(x).dtype), tree)


class UpstreamEnv:
    """A :class:`JaxEnv` over another library's MJX env (Brax, MuJoCo Playground) whose state has
    ``obs``, ``reward`` and ``done`` (termination only) and which leaves time limits to a wrapper:
    ``terminated`` is its ``done``, ``done`` adds our time limit, and steps never auto-reset.
    Subclasses set ``upstream`` (its ``reset(key)`` and ``step(state, action)``),
    ``episode_length`` and the action bounds."""

    backend = "mjx"
    upstream: Any
    episode_length: int
    action_low: np.ndarray
    action_high: np.ndarray

    def _set_action_bounds(self, mj_model: Any) -> None:
        """The actuators' control ranges; [-1, 1] where an actuator is not limited."""
        limited = np.asarray(mj_model.actuator_ctrllimited, dtype=bool)
        ctrl_range = np.asarray(mj_model.actuator_ctrlrange, dtype=np.float32)
        self.action_low = np.where(limited, ctrl_range[:, 0], -1.0).astype(np.float32)
        self.action_high = np.where(limited, ctrl_range[:, 1], 1.0).astype(np.float32)

    def _wrap(self, upstream_state: Any, steps: jax.Array) -> State:
        terminated = jnp.asarray(upstream_state.done) > 0.5
        return State(
            physics=upstream_state,
            obs=upstream_state.obs,
            reward=jnp.asarray(upstream_state.reward, jnp.float32),
            done=time_limit(steps, terminated, self.episode_length),
            terminated=terminated,
            steps=steps,
        )

    def reset(self, key: jax.Array) -> State:
        # Reset and step states strongly typed alike: Playground's CheetahRun resets ``data.time``
        # weakly typed and Brax's tasks step ``done`` so, and a program fed reset states compiled
        # again for stepped ones (the PES chunk of CheetahRun: 78 s twice on a 2-core CPU).
        return self._wrap(strong_types(self.upstream.reset(key)), jnp.zeros((), jnp.int32))

    def step(self, state: State, action: jax.Array) -> State:
        action = jnp.clip(action, self.action_low, self.action_high)
        return self._wrap(strong_types(self.upstream.step(state.physics, action)), state.steps + 1)


# XLA's CPU fast-math (LLVM may reassociate and contract floating-point arithmetic) with NaNs,
# infinities, division and library functions still honoured: the settings an env opts into with
# ``cpu_compiler_options``.
CPU_FAST_MATH = {
    "xla_cpu_enable_fast_math": True,
    "xla_cpu_fast_math_honor_nans": True,
    "xla_cpu_fast_math_honor_infs": True,
    "xla_cpu_fast_math_honor_division": True,
    "xla_cpu_fast_math_honor_functions": True,
}


def compiler_options(env: Any) -> dict | None:
    """The XLA compiler options every jitted program that steps ``env`` is compiled with: the
    env's ``cpu_compiler_options`` (none unless it sets them) when JAX runs on the CPU, else
    None. GPU programs are left alone: the options were measured on the CPU only."""
    options = getattr(env, "cpu_compiler_options", None)
    if not options or jax.default_backend() != "cpu":
        return None
    return dict(options)


@contextlib.contextmanager
def quiet_mjx_import() -> Iterator[None]:
    """Import mujoco.mjx (or brax) inside this: mjx prints "Failed to import warp" to stdout
    when the optional warp backend is absent (we use MJX's JAX implementation), and the
    CLI's stdout must stay clean for its JSON output."""
    with contextlib.redirect_stdout(io.StringIO()):
        yield


def select_states(pred: jax.Array, on_true: Any, on_false: Any) -> Any:
    """``jnp.where(pred, on_true, on_false)`` leaf by leaf over two env states (or any pytrees
    holding them): ``pred`` is a scalar inside ``vmap``, or ``(P,)`` over a batch's leading axis.

    MJX-Warp's ``mjx.Data`` keeps some fields for the whole batch rather than per env (its contact
    pool, ``naconmax`` long): those are taken from ``on_false``, as ``mjx.Data.where`` does, instead
    of being given a batch axis they must not have."""

    def where(a, b):
        return jnp.where(jnp.reshape(pred, jnp.shape(pred) + (1,) * (jnp.ndim(b) - jnp.ndim(pred))), a, b)

    def merge(a, b):
        if not _is_warp_data(b):
            return jax.tree_util.tree_map(where, a, b)
        from mujoco.mjx._src.types import tree_path_to_attr_str
        from mujoco.mjx.warp import types as warp_types

        batched = warp_types._BATCH_DIM["Data"]  # which fields carry the batch axis (mjx.Data.where's source)
        return jax.tree_util.tree_map_with_path(
            lambda path, x, y: where(x, y) if batched.get(tree_path_to_attr_str(path), True) else y, a, b)

    return jax.tree_util.tree_map(merge, on_true, on_false, is_leaf=_is_warp_data)


def _is_warp_data(x: Any) -> bool:
    impl = getattr(x, "impl", None)
    return type(x).__name__ == "Data" and getattr(impl, "value", None) == "warp"
