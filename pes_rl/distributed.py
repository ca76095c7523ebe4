"""Multi-process and multi-host training on JAX's own runtime (``jax.distributed``).

One process per host (or per GPU) joins one JAX job; :func:`pes_rl.agents.sharding.particle_mesh`
then spans every device of every process and each process steps the particles its
devices hold. Host-side work (logs, evaluation, checkpoint writing) happens on
process 0 only; every process computes the same replicated metrics.

Where the job's shape comes from, first match wins:

1. arguments (``pes-rl train --coordinator-address --num-processes --process-id``);
2. the environment: ``JAX_COORDINATOR_ADDRESS`` (read by JAX itself),
   ``JAX_NUM_PROCESSES`` and ``JAX_PROCESS_ID`` (read here);
3. JAX's cluster auto-detection (SLURM, Open MPI, Kubernetes, Cloud TPU), e.g. under
   ``srun`` with one task per GPU.
"""

from __future__ import annotations

import os

import jax
import numpy as np

ENV_NUM_PROCESSES = "JAX_NUM_PROCESSES"
ENV_PROCESS_ID = "JAX_PROCESS_ID"


def _env_int(name: str) -> int | None:
    value = os.environ.get(name)
    if value in (None, ""):
        return None
    try:
        return int(value)
    except ValueError:
        raise ValueError(f"{name} must be an integer; got {value!r}") from None


def initialize_distributed(
    coordinator_address: str | None = None,
    num_processes: int | None = None,
    process_id: int | None = None,
) -> None:
    """Join (or, as process 0, start) the JAX job; call before any other JAX work.

    On the CPU the cross-process collectives go through gloo (set here; it does
    not affect GPU or TPU processes, whose collectives are NCCL's or the TPU's).
    """
    num_processes = num_processes if num_processes is not None else _env_int(ENV_NUM_PROCESSES)
    process_id = process_id if process_id is not None else _env_int(ENV_PROCESS_ID)
    if num_processes is not None and num_processes < 1:
        raise ValueError(f"num_processes must be an integer >= 1; got {num_processes}")
    if process_id is not None and num_processes is not None and not 0 <= process_id < num_processes:
        raise ValueError(f"process_id must be between 0 and num_processes - 1 ({num_processes - 1}); got {process_id}")
    jax.config.update("jax_cpu_collectives_implementation", "gloo")
    jax.distributed.initialize(coordinator_address=coordinator_address, num_processes=num_processes, process_id=process_id)


def is_main_process() -> bool:
    return jax.process_index() == 0


def barrier(name: str) -> None:
    """Wait until every process reaches this point (a no-op in a single process)."""
    if jax.process_count() > 1:
        from jax.experimental import multihost_utils

        multihost_utils.sync_global_devices(name)


def from_main(value) -> np.ndarray:
    """Process 0's ``value`` on every process (other processes pass a placeholder of the
    same shape and dtype); a no-op in a single process."""
    if jax.process_count() == 1:
        return np.asarray(value)
    from jax.experimental import multihost_utils

    value = np.ascontiguousarray(value)
    # sent as raw bytes: JAX would otherwise round float64 to float32 on the way
    raw = np.asarray(multihost_utils.broadcast_one_to_all(value.view(np.uint8).reshape(-1)))
    return raw.astype(np.uint8).view(value.dtype).reshape(value.shape)


def _allgather_bytes(x: np.ndarray) -> np.ndarray:
    """Every process's ``x`` (same shape everywhere) stacked on a new leading axis, bit-exact."""
    from jax.experimental import multihost_utils

    x = np.ascontiguousarray(x)
    raw = np.asarray(multihost_utils.process_allgather(x.view(np.uint8).reshape(-1)))
    return raw.astype(np.uint8).view(x.dtype).reshape((-1,) + x.shape)


def gather_particles(tree, num_local_pairs: int):
    """The host batches of every process, as one population on every process.

    Each process holds ``2n`` members ordered [its + members, its − members]
    (process r owns pairs ``r·n .. (r+1)·n − 1``); the result has pes_rl's global
    order [all + members by pair, all − members], exactly what a single process with
    every pair would hold. A no-op in a single process.
    """
    if jax.process_count() == 1:
        return tree
    n = num_local_pairs

    def one(x):
        full = _allgather_bytes(np.asarray(x))
        rest = full.shape[2:]
        return np.concatenate([full[:, :n].reshape((-1,) + rest), full[:, n:].reshape((-1,) + rest)])

    return jax.tree_util.tree_map(one, tree)


def local_particles(x: np.ndarray, num_local_pairs: int) -> np.ndarray:
    """This process's members of a global population array (inverse of :func:`gather_particles`)."""
    num_pairs = len(x) // 2
    first = jax.process_index() * num_local_pairs
    pairs = np.arange(first, first + num_local_pairs)
    return np.asarray(x)[np.concatenate([pairs, pairs + num_pairs])]


def sum_over_processes(value: float) -> float:
    """``value`` summed over the processes of the job (a no-op in a single process)."""
    if jax.process_count() == 1:
        return value
    return float(_allgather_bytes(np.asarray(value, np.float64)).sum())
