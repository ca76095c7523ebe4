"""The two ways particles are simulated: a jitted JAX scan (mjx) or a host batch (gymnasium).

Both implement :class:`Runner`, the whole surface :mod:`pes_rl.trainer` uses. The estimator
itself is the shared :class:`pes_rl.agents.pes.PES`.
"""

from __future__ import annotations

import math
from typing import Protocol

import jax
import jax.numpy as jnp
import numpy as np

from pes_rl import envs
from pes_rl.agents import host_unroll, jax_unroll, sharding
from pes_rl.agents.pes import PES, AgentState, WindowResult
from pes_rl import checkpoint, distributed


class Runner(Protocol):
    """What the trainer asks of a way of simulating the particles."""

    def place_state(self, state: AgentState) -> AgentState:
        """The agent state laid out where this runner computes (the mesh, or unchanged)."""

    def start(self, state: AgentState, key: jax.Array) -> int:
        """Fresh particles (and their stagger); returns the env steps the start simulated."""

    def run(self, state: AgentState, iterations: int | None = None) -> tuple[AgentState, list[dict]]:
        """``iterations`` ask/window/tell steps; the new state and one metrics row per iteration."""

    def particles_payload(self) -> dict:
        """Every particle's state as numpy, for a checkpoint."""

    def restore_particles(self, state: AgentState, key: jax.Array, payload: dict) -> bool:
        """Particles from a checkpoint; False when the env state could not be restored exactly
        (every particle then starts a fresh episode)."""


def burn_in_windows(config, num_pairs: int, seed: int, horizon: int) -> np.ndarray:
    """Per-particle stagger in windows, ``b_i ~ U{0..ceil(T/K)-1}``, shared by a pair; T is the
    env's own time limit (a user's env factory may set one other than ``config.horizon``)."""
    if config.stagger == "none":
        return np.zeros(2 * num_pairs, np.int64)
    windows = math.ceil(horizon / config.truncation_length)
    per_pair = np.random.default_rng([seed, 7]).integers(0, windows, size=num_pairs)
    return np.concatenate([per_pair, per_pair])


def ask_and_perturb(agent: PES):
    """``agent.ask`` that also returns every particle's ``θ + ε``: one jitted program per
    iteration instead of an ask and two eager JAX operations."""

    def ask(state: AgentState) -> tuple[AgentState, jax.Array, jax.Array]:
        state, epsilon = agent.ask(state)
        return state, epsilon, state.params[None, :] + epsilon

    return ask


def _iteration_rows(metrics: dict) -> list[dict]:
    metrics = jax.device_get(metrics)
    n = len(next(iter(metrics.values())))
    return [{k: _value(v[i]) for k, v in metrics.items()} for i in range(n)]


def _value(x):
    """A scalar metric as a float, a vector one as a list of floats."""
    return np.asarray(x).tolist() if np.ndim(x) else float(x)


class JaxRunner:
    """Particles as a vmapped pytree; ``chunk`` iterations per jitted call.

    With a ``mesh`` (:func:`pes_rl.agents.sharding.particle_mesh`) the particles are sharded
    over its devices, across processes too; the agent state passed to :meth:`run`
    must already be placed (:meth:`place_state`).
    """

    backend = "mjx"

    def __init__(self, config, agent: PES, apply_flat, env: envs.JaxEnv, chunk: int, mesh=None):
        self.config, self.agent, self.env, self.chunk, self.mesh = config, agent, env, chunk, mesh
        if mesh is not None:
            sharding.check_divisible(config.num_pairs, mesh)
        self.window = jax_unroll.make_window(
            env, apply_flat, config.truncation_length, config.normalize_obs, config.reset_at == "window",
            config.reward_shift,
        )
        self._chunks: dict[int, object] = {}  # iterations per jitted call -> its compiled scan
        self.compiler_options = envs.compiler_options(env)
        self.particles = None

    def place_state(self, state: AgentState) -> AgentState:
        """The agent state (host values, identical on every process) laid out on the mesh."""
        if self.mesh is None:
            return state
        return sharding.place(state, sharding.agent_state_shardings(self.mesh, state))

    def _place_particles(self, particles: jax_unroll.Particle) -> jax_unroll.Particle:
        if self.mesh is None:
            return jax.tree_util.tree_map(jnp.asarray, particles)
        return sharding.place(particles, sharding.particle_shardings(self.mesh, particles))

    def _init_particles(self, key: jax.Array, offsets: np.ndarray | None):
        pair_keys = jax.random.split(key, self.config.num_pairs)

        def init(pair_keys):
            particles = jax_unroll.init_particles(self.env, pair_keys)
            if offsets is not None:
                env_state = particles.env_state
                steps = jnp.asarray(offsets, env_state.steps.dtype)
                particles = particles._replace(env_state=env_state.replace(steps=steps))
            return particles

        if self.mesh is None:
            return jax.jit(init, compiler_options=self.compiler_options)(pair_keys)
        shardings = sharding.particle_shardings(self.mesh, jax.eval_shape(init, pair_keys))
        return jax.jit(init, out_shardings=shardings, compiler_options=self.compiler_options)(sharding.place(pair_keys, sharding.replicated(self.mesh)))

    def start(self, state: AgentState, key: jax.Array) -> int:
        windows = burn_in_windows(self.config, self.config.num_pairs, self.config.seed, self.env.episode_length)
        if self.config.stagger == "offset":
            self.particles = self._init_particles(key, windows * self.config.truncation_length)
            return 0
        self.particles = self._init_particles(key, None)
        burn_in = jax_unroll.make_burn_in(self.window, self.mesh, self.compiler_options)
        self.particles, steps = burn_in(state.params, state.normalizer, self.particles, windows)
        return steps

    def run(self, state: AgentState, iterations: int | None = None) -> tuple[AgentState, list[dict]]:
        """``iterations`` (default ``chunk``) PES iterations in one jitted scan. A scan's length is
        static: each distinct count compiles once (in practice ``chunk`` and a shorter last call)."""
        n = self.chunk if iterations is None else int(iterations)
        if n not in self._chunks:
            self._chunks[n] = jax_unroll.make_train_chunk(self.agent, self.window, n, self.mesh, self.compiler_options)
        state, self.particles, metrics = self._chunks[n](state, self.particles)
        return state, _iteration_rows(metrics)

    def particles_payload(self) -> dict:
        """Every particle's state as numpy (a collective in a multi-process job)."""
        return checkpoint.to_leaves(sharding.to_host(self.particles))

    def restore_particles(self, state: AgentState, key: jax.Array, payload: dict) -> bool:
        """The particles as saved: a JAX env's state is all arrays, so always exact (True)."""
        template = jax.eval_shape(lambda k: jax_unroll.init_particles(self.env, k), jax.random.split(key, self.config.num_pairs))
        self.particles = self._place_particles(checkpoint.from_leaves(template, payload))
        return True


class HostRunner:
    """Particles in a host batch (C MuJoCo threads or gymnasium); the same ask/tell, jitted,
    around a numpy rollout.

    In a multi-process job (``jax.distributed``) process r owns pairs ``r·n .. (r+1)·n − 1``
    (``n = N / processes``) and steps only those in its ``env``; each window's rewards and
    statistics are gathered into the global population's order, and every process runs the
    same ``tell`` on them, so all hold identical parameters, equal to a one-process run's.
    """

    backend = "gymnasium"

    def __init__(self, config, agent: PES, apply_flat, env: envs.BatchedEnv, chunk: int):
        self.config, self.agent, self.env, self.chunk = config, agent, env, chunk
        self._ask = jax.jit(ask_and_perturb(agent))
        self._tell = jax.jit(agent.tell)
        self.local_pairs = config.num_pairs // jax.process_count()
        if 2 * self.local_pairs != env.num_envs:
            raise ValueError(f"env has {env.num_envs} members; this process needs {2 * self.local_pairs}")
        pair_seeds = np.random.SeedSequence([config.seed, 11]).generate_state(config.num_pairs).astype(np.int64)
        first = jax.process_index() * self.local_pairs
        self.particles = host_unroll.HostParticles(
            env, apply_flat, config.normalize_obs, pair_seeds[first:first + self.local_pairs], config.reward_shift
        )
        pairs = np.arange(first, first + self.local_pairs)
        self.members = np.concatenate([pairs, pairs + config.num_pairs])  # this process's global particle indices

    def start(self, state: AgentState, key: jax.Array) -> int:
        del key
        windows = burn_in_windows(self.config, self.config.num_pairs, self.config.seed, self.env.episode_length)
        windows = windows[self.members]
        if self.config.stagger == "offset":
            try:
                self.env.advance_time_limit(windows * self.config.truncation_length)
                return 0
            except NotImplementedError:
                pass  # no TimeLimit to advance (a user's own env): burn in instead
        steps = self.particles.burn_in(
            state.params, state.normalizer, self.config.truncation_length, windows, self.config.reset_at == "window"
        )
        return int(distributed.sum_over_processes(steps))

    def run(self, state: AgentState, iterations: int | None = None) -> tuple[AgentState, list[dict]]:
        """``iterations`` (default ``chunk``) PES iterations on the host batch."""
        rows = []
        K = self.config.truncation_length
        for _ in range(self.chunk if iterations is None else int(iterations)):
            state, epsilon, thetas = self._ask(state)
            if len(self.members) != thetas.shape[0]:
                thetas = thetas[self.members]
            out = self.particles.window(thetas, state.normalizer, K, reset_at_window_end=self.config.reset_at == "window")
            per_particle = distributed.gather_particles({
                "rewards": out["rewards"], "dones": out["dones"],
                "finished": out["finished_return_sum"], "count": out["finished_count"],
                "obs_sum": out["obs_sum"], "obs_sq_sum": out["obs_sq_sum"],
            }, self.local_pairs)
            steps = int(distributed.sum_over_processes(out["steps"]))
            result = WindowResult(
                rewards=per_particle["rewards"],
                dones=per_particle["dones"],
                finished_return_sum=np.float32(per_particle["finished"].sum()),
                finished_count=np.float32(per_particle["count"].sum()),
                obs_sum=per_particle["obs_sum"].sum(0),
                obs_sq_sum=per_particle["obs_sq_sum"].sum(0),
                obs_count=np.float32(steps),
                steps=np.int32(steps),
            )
            state, metrics = self._tell(state, epsilon, result)
            rows.append({k: _value(v) for k, v in jax.device_get(metrics).items()})
        return state, rows

    def place_state(self, state: AgentState) -> AgentState:
        """Unchanged: the host batch's agent state lives on the default device."""
        return state

    def particles_payload(self) -> dict:
        """Every particle's state, in the global order (a collective in a multi-process job)."""
        p = self.particles
        payload = {"episode": p.episode.copy(), "episode_return": p.episode_return.copy(), "obs": p.obs.copy()}
        try:
            payload["env"] = self.env.get_state()
        except NotImplementedError:
            pass
        return distributed.gather_particles(payload, self.local_pairs)

    def restore_particles(self, state: AgentState, key: jax.Array, payload: dict) -> bool:
        """Restore this process's particles; returns False when the env's state could not be
        saved (non-MuJoCo env), in which case every particle starts a fresh episode."""
        payload = jax.tree_util.tree_map(lambda x: distributed.local_particles(x, self.local_pairs), payload)
        p = self.particles
        p.episode = np.asarray(payload["episode"], np.int64).copy()
        if "env" in payload:
            self.env.set_state(payload["env"])
            p.episode_return = np.asarray(payload["episode_return"], np.float64).copy()
            p.obs = np.asarray(payload["obs"], np.float64).copy()
            return True
        p.episode += 1
        p.episode_return[:] = 0.0
        p.obs = self.env.reset(p._seeds(np.ones(p.num_particles, bool)))
        return False
