"""The population on a device mesh: particles split over a ``particles`` axis.

PES is embarrassingly parallel across particles: each one runs its own K-step
window. The population (env states, ξ accumulators, window counters) is
sharded on its leading axis over every device of the job (all processes, all
hosts); the parameters, optimizer state, normaliser and PRNG key are
replicated. The only cross-device traffic of an iteration is the reduction of
per-particle terms (ĝ's mean, the window statistics), which XLA emits as
all-reduces inside the jitted step.

Placement builds global arrays from a host value every process computes
identically (same seed, same code): each process keeps the shards its own
devices hold (:func:`place`), so a multi-process job needs no broadcast.
"""

from __future__ import annotations

from typing import Any

import jax
import numpy as np
from jax.sharding import Mesh, NamedSharding, PartitionSpec

AXIS = "particles"

# AgentState fields with one row per particle (sharded); every other field is replicated.
PER_PARTICLE_FIELDS = ("accumulator", "truncations")


def particle_mesh(devices=None) -> Mesh:
    """A 1-D mesh named ``particles`` over ``devices`` (default: ``jax.devices()``, every
    device of every process)."""
    devices = jax.devices() if devices is None else list(devices)
    return Mesh(np.asarray(devices), (AXIS,))


def check_divisible(num_pairs: int, mesh: Mesh) -> None:
    """2N particles must split evenly over the mesh; a one-line ValueError names the allowed N."""
    devices = mesh.size
    if (2 * num_pairs) % devices:
        step = devices // np.gcd(2, devices)
        raise ValueError(
            f"num_pairs must be a multiple of {step} so that the 2 x num_pairs particles split evenly over "
            f"{devices} devices; got {num_pairs}"
        )


def replicated(mesh: Mesh) -> NamedSharding:
    return NamedSharding(mesh, PartitionSpec())


def split(mesh: Mesh) -> NamedSharding:
    """Leading axis over the ``particles`` mesh axis, the rest whole."""
    return NamedSharding(mesh, PartitionSpec(AXIS))


def agent_state_shardings(mesh: Mesh, state) -> Any:
    """An :class:`pes_rl.agents.pes.AgentState` of shardings: per-particle fields split, the rest replicated."""
    rep, per_particle = replicated(mesh), split(mesh)
    return type(state)(**{
        name: jax.tree_util.tree_map(lambda _: per_particle if name in PER_PARTICLE_FIELDS else rep, value)
        for name, value in state._asdict().items()
    })


def particle_shardings(mesh: Mesh, particles) -> Any:
    """Every leaf of the particle pytree has the particle as its leading axis."""
    per_particle = split(mesh)
    return jax.tree_util.tree_map(lambda _: per_particle, particles)


def place(tree, shardings) -> Any:
    """Global arrays with ``shardings`` from a host value every process holds in full.

    Works in one process and in a multi-process job: each process copies only the
    slices its own devices hold (``jax.make_array_from_callback``).
    """

    def one(value, sharding):
        host = np.asarray(value)
        return jax.make_array_from_callback(host.shape, sharding, lambda index: host[index])

    return jax.tree_util.tree_map(one, tree, shardings)


def to_host(tree) -> Any:
    """The full numpy value of every leaf on every process (a collective in a multi-process
    job: every process must call it)."""
    from jax.experimental import multihost_utils

    def one(x):
        if not isinstance(x, jax.Array) or x.is_fully_addressable or x.is_fully_replicated:
            return np.asarray(x)
        return np.asarray(multihost_utils.process_allgather(x, tiled=True))

    return jax.tree_util.tree_map(one, tree)
