"""Particles on a JAX environment: persistent states, K-step windows in one scan.

A particle's state (:class:`Particle`) survives from window to window. When its
episode ends inside a window it is reset right away (the next step belongs to
a new episode) with key ``fold_in(reset_key, episode)``: both members of an
antithetic pair share ``reset_key``, so their n-th episodes start from the same
state even when they end at different steps.
"""

from __future__ import annotations

import functools
from typing import Callable, NamedTuple

import jax
import jax.numpy as jnp
import numpy as np
from jax.sharding import Mesh, PartitionSpec

from pes_rl.agents import sharding
from pes_rl.agents.estimators import shift_rewards
from pes_rl.agents.normalization import NormalizerState, normalize
from pes_rl.agents.pes import PES, AgentState, WindowResult
from pes_rl.envs.base import JaxEnv, State, select_states


class Particle(NamedTuple):
    env_state: State
    reset_key: jax.Array
    episode: jax.Array  # episodes begun so far (indexes the reset key)
    episode_return: jax.Array  # return of the running episode so far


def init_particles(env: JaxEnv, pair_keys: jax.Array) -> Particle:
    """Both members of pair i (indices i and i + N) start from ``reset(fold_in(key_i, 0))``."""
    keys = jnp.concatenate([pair_keys, pair_keys], axis=0)

    def one(key: jax.Array) -> Particle:
        return Particle(env.reset(jax.random.fold_in(key, 0)), key, jnp.zeros((), jnp.int32), jnp.zeros(()))

    return jax.vmap(one)(keys)


def make_window(
    env: JaxEnv,
    apply_flat: Callable[[jax.Array, jax.Array], jax.Array],
    num_steps: int,
    normalize_obs: bool,
    reset_at_window_end: bool = False,
    reward_shift: float = 0.0,
) -> Callable[[jax.Array, NormalizerState, Particle], tuple[Particle, dict]]:
    """One particle, ``num_steps`` env steps with parameters ``theta`` (flat), in a ``lax.scan``.

    An episode that ends inside the window is reset at once (later steps belong
    to a new episode; ``reset_at_window_end=False``), or the particle idles with
    zero reward until the window ends and is reset then, reported done at the
    last step (``True``). Returns the new particle, per-step ``rewards``/``dones``,
    the env steps taken and episode/observation statistics. ``reward_shift`` is
    subtracted from the ``rewards`` of simulated steps (what the estimator sees;
    :func:`pes_rl.agents.estimators.shift_rewards`), never from idle steps nor from the
    episode returns in ``finished_return_sum``.
    """

    def window(theta: jax.Array, normalizer: NormalizerState, particle: Particle):
        def reset_where(pred: jax.Array, particle: Particle) -> Particle:
            fresh = env.reset(jax.random.fold_in(particle.reset_key, particle.episode + 1))
            return particle._replace(
                env_state=select_states(pred, fresh, particle.env_state),
                episode=particle.episode + pred.astype(jnp.int32),
            )

        def step(carry, _):
            particle, waiting = carry
            stepping = jnp.logical_not(waiting)
            obs = particle.env_state.obs
            action = apply_flat(theta, normalize(normalizer, obs, normalize_obs))
            nxt = env.step(particle.env_state, action)
            ended = jnp.logical_and(nxt.done, stepping)
            reward = jnp.where(stepping, nxt.reward, 0.0)
            episode_return = particle.episode_return + reward
            particle = particle._replace(
                env_state=select_states(stepping, nxt, particle.env_state),
                episode_return=jnp.where(ended, 0.0, episode_return),
            )
            if reset_at_window_end:
                waiting = jnp.logical_or(waiting, ended)
                done = jnp.zeros((), bool)
            else:
                particle = reset_where(ended, particle)
                done = ended
            seen = shift_rewards(reward, stepping, reward_shift)
            out = (seen, done, ended, jnp.where(ended, episode_return, 0.0), obs * stepping, stepping)
            return (particle, waiting), out

        (particle, waiting), (rewards, dones, ended, finished, obs, stepping) = jax.lax.scan(
            step, (particle, jnp.zeros((), bool)), None, length=num_steps
        )
        if reset_at_window_end:
            particle = reset_where(waiting, particle)
            dones = dones.at[-1].set(waiting)
        return particle, {
            "rewards": rewards,
            "dones": dones,
            "steps": jnp.sum(stepping.astype(jnp.int32)),
            "finished_return_sum": jnp.sum(finished),
            "finished_count": jnp.sum(ended),
            "obs_sum": jnp.sum(obs, axis=0),
            "obs_sq_sum": jnp.sum(jnp.square(obs), axis=0),
        }

    return window


def window_result(out: dict) -> WindowResult:
    """Reduce a vmapped window's outputs to what :meth:`PES.tell` needs."""
    return WindowResult(
        rewards=out["rewards"],
        dones=out["dones"],
        finished_return_sum=jnp.sum(out["finished_return_sum"]),
        finished_count=jnp.sum(out["finished_count"]),
        obs_sum=jnp.sum(out["obs_sum"], axis=0),
        obs_sq_sum=jnp.sum(out["obs_sq_sum"], axis=0),
        obs_count=jnp.sum(out["steps"]).astype(jnp.float32),
        steps=jnp.sum(out["steps"]),
    )


def vmap_window(window, mesh: Mesh | None = None, per_particle_theta: bool = True):
    """``window`` over the population: ``(thetas, normalizer, particles) -> (particles, out)``.

    With a ``mesh`` each device runs the windows of the particles it holds
    (``shard_map`` over the ``particles`` axis): no env state ever moves.
    """
    vmapped = jax.vmap(window, in_axes=(0 if per_particle_theta else None, None, 0))
    if mesh is None:
        return vmapped
    split, whole = PartitionSpec(sharding.AXIS), PartitionSpec()
    theta_spec = split if per_particle_theta else whole
    # check_vma=False: MJX branches (lax.cond) mix per-particle and replicated values, which
    # the replication checker rejects; every output here is per-particle anyway
    return jax.shard_map(vmapped, mesh=mesh, in_specs=(theta_spec, whole, split), out_specs=split, check_vma=False)


def _constrain(state: AgentState | None, particles: Particle | None, mesh: Mesh | None):
    """Pin the agent state and particles to their mesh layout (no-op without a mesh)."""
    if mesh is None:
        return state, particles
    if state is not None:
        state = jax.lax.with_sharding_constraint(state, sharding.agent_state_shardings(mesh, state))
    if particles is not None:
        particles = jax.lax.with_sharding_constraint(particles, sharding.particle_shardings(mesh, particles))
    return state, particles


def make_iteration(
    agent: PES, window, mesh: Mesh | None = None
) -> Callable[[AgentState, Particle], tuple[AgentState, Particle, dict]]:
    """A whole PES iteration (ask, vmapped K-step scan, tell) as one pure function.

    With a ``mesh`` the windows run where their particles live and the means over
    particles in ``tell`` (ĝ, the window statistics) become all-reduces.
    """
    vwindow = vmap_window(window, mesh)

    def iteration(state: AgentState, particles: Particle):
        state, epsilon = agent.ask(state)
        thetas = state.params[None, :] + epsilon
        particles, out = vwindow(thetas, state.normalizer, particles)
        state, metrics = agent.tell(state, epsilon, window_result(out))
        state, particles = _constrain(state, particles, mesh)
        return state, particles, metrics

    return iteration


def make_train_chunk(
    agent: PES, window, num_iterations: int, mesh: Mesh | None = None, compiler_options: dict | None = None
):
    """``num_iterations`` PES iterations in one jitted ``lax.scan`` (no host round-trips);
    the agent and particle buffers are donated, metrics come back stacked. ``compiler_options``:
    XLA's, for the env the window steps (:func:`pes_rl.envs.compiler_options`).

    With a ``mesh`` the particles stay sharded over it, the rest of the agent state
    and every metric come back replicated (readable by every process).
    """
    iteration = make_iteration(agent, window, mesh)

    def chunk(state: AgentState, particles: Particle):
        def body(carry, _):
            state, particles = carry
            state, particles, metrics = iteration(state, particles)
            return (state, particles), metrics

        state, particles = _constrain(state, particles, mesh)
        (state, particles), metrics = jax.lax.scan(body, (state, particles), None, length=num_iterations)
        if mesh is not None:
            metrics = jax.lax.with_sharding_constraint(metrics, sharding.replicated(mesh))
        return state, particles, metrics

    return jax.jit(chunk, donate_argnums=(0, 1), compiler_options=compiler_options)


def make_burn_in(window, mesh: Mesh | None = None, compiler_options: dict | None = None):
    """Stagger the pairs: pair i runs ``b_i`` windows with the unperturbed θ (so ξ stays 0).

    Both members of a pair would run identically, so only the + members (the first
    half) advance and the − members are then made their copies. Returns
    ``burn_in(theta, normalizer, particles, windows) -> (particles, env_steps)``
    where ``windows`` is a host ``(P,)`` int array (with a ``mesh``, ``theta`` and
    ``normalizer`` replicated and ``particles`` sharded over it). ``compiler_options`` as for
    :func:`make_train_chunk`.
    """
    vwindow = vmap_window(window, mesh, per_particle_theta=False)

    @functools.partial(jax.jit, compiler_options=compiler_options)
    def advance(theta, normalizer, particles: Particle, windows: jax.Array, w: jax.Array):
        half = windows.shape[0] // 2
        plus = jnp.arange(windows.shape[0]) < half
        advanced, out = vwindow(theta, normalizer, particles)
        moving = jnp.logical_and(w < windows, plus)
        _, particles = _constrain(None, select_states(moving, advanced, particles), mesh)
        return particles, jnp.sum(jnp.where(moving, out["steps"], 0))

    @jax.jit
    def mirror(particles: Particle) -> Particle:
        half = jax.tree_util.tree_leaves(particles)[0].shape[0] // 2
        particles = jax.tree_util.tree_map(lambda x: jnp.concatenate([x[:half], x[:half]], axis=0), particles)
        return _constrain(None, particles, mesh)[1]

    def burn_in(theta, normalizer, particles: Particle, windows) -> tuple[Particle, int]:
        windows = np.asarray(windows)
        replicated = (lambda x: x) if mesh is None else (lambda x: sharding.place(x, sharding.replicated(mesh)))
        placed = replicated(windows.astype(np.int32))
        steps = 0
        for w in range(int(windows.max()) if windows.size else 0):
            particles, moved = advance(theta, normalizer, particles, placed, replicated(np.int32(w)))
            steps += int(moved)
        return mirror(particles), steps

    return burn_in
