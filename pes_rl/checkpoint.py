"""Checkpoints under ``RUN_DIR/checkpoints/`` with orbax-checkpoint.

A checkpoint holds the whole training state: the agent (θ, optimizer state, ξ,
normaliser, PRNG key), every particle's simulator state, and the counters.
Pytrees whose node types orbax does not know (mjx ``Data``, optax states) are
stored as their list of leaves and rebuilt with the live treedef on resume.
orbax writes each step to a temporary directory and renames it when complete,
so a crash mid-save leaves the previous checkpoint readable.
"""

from __future__ import annotations

import os
from typing import Any

import jax
import numpy as np


class CheckpointError(ValueError):
    """A checkpoint is missing, damaged or written by something else (one-line message)."""


def checkpoint_dir(run_dir: str) -> str:
    return os.path.abspath(os.path.join(run_dir, "checkpoints"))


def _ocp():
    import orbax.checkpoint as ocp  # slow to import: only runs that write or read checkpoints pay

    return ocp


def _manager(run_dir: str, max_to_keep: int = 3):
    ocp = _ocp()
    if jax.process_count() == 1:
        options = ocp.CheckpointManagerOptions(max_to_keep=max_to_keep, enable_async_checkpointing=False, create=True)
        return ocp.CheckpointManager(checkpoint_dir(run_dir), options=options)
    # A multi-process job: the payload is plain numpy that every process holds in full, so
    # the trainer lets process 0 alone write, and each process reads on its own; a manager
    # spanning only this process keeps orbax from waiting on the others.
    me = jax.process_index()
    os.makedirs(checkpoint_dir(run_dir), exist_ok=True)  # orbax cannot create it for a process subset
    options = ocp.CheckpointManagerOptions(
        max_to_keep=max_to_keep, enable_async_checkpointing=False, create=False,
        multiprocessing_options=ocp.options.MultiprocessingOptions(primary_host=me, active_processes={me}),
    )
    return ocp.CheckpointManager(checkpoint_dir(run_dir), options=options)


def to_leaves(tree: Any) -> dict[str, np.ndarray]:
    """The pytree's leaves keyed by position; zero-size leaves (which orbax refuses) are
    left out and rebuilt from the template by :func:`from_leaves`."""
    leaves = jax.tree_util.tree_leaves(tree)
    return {str(i): np.asarray(x) for i, x in enumerate(leaves) if np.size(x) > 0}


def from_leaves(like: Any, stored: dict[str, np.ndarray]) -> Any:
    """Rebuild a pytree shaped like ``like`` (arrays or ``ShapeDtypeStruct``s) from :func:`to_leaves`."""
    template, treedef = jax.tree_util.tree_flatten(like)
    leaves = []
    for i, t in enumerate(template):
        if np.prod(t.shape, dtype=int) == 0:
            leaves.append(np.zeros(t.shape, t.dtype))
            continue
        if str(i) not in stored:
            raise ValueError(f"checkpoint lacks array {i} of {len(template)}: it was written by a different run setup")
        value = np.asarray(stored[str(i)])
        if value.shape != tuple(t.shape):
            raise ValueError(f"checkpoint array {i} has shape {value.shape} where this run needs {tuple(t.shape)}")
        leaves.append(value.astype(t.dtype, copy=False))
    extra = set(stored) - {str(i) for i in range(len(template))}
    if extra:
        raise ValueError(f"checkpoint holds {len(stored)} arrays where this run needs {len(template)}")
    return jax.tree_util.tree_unflatten(treedef, leaves)


def save(run_dir: str, step: int, payload: dict) -> None:
    """Save ``payload`` (nested dicts/lists of arrays) as checkpoint ``step``."""
    with _manager(run_dir) as manager:
        manager.save(step, args=_ocp().args.StandardSave(payload), force=True)
        manager.wait_until_finished()


def latest_step(run_dir: str) -> int | None:
    if not os.path.isdir(checkpoint_dir(run_dir)):
        return None
    with _manager(run_dir) as manager:
        return manager.latest_step()


def restore(run_dir: str, step: int | None = None) -> dict:
    """Restore checkpoint ``step`` (default: the latest) as nested dicts/lists of numpy arrays."""
    with _manager(run_dir) as manager:
        step = manager.latest_step() if step is None else step
        if step is None:
            raise FileNotFoundError(f"no checkpoint under {checkpoint_dir(run_dir)}")
        try:
            payload = manager.restore(step, args=_ocp().args.StandardRestore())
        except Exception as e:  # orbax raises many types for damaged files
            raise CheckpointError(
                f"checkpoint {step} under {checkpoint_dir(run_dir)} cannot be read ({type(e).__name__}); "
                "it is damaged or not a pes_rl checkpoint"
            ) from e
        missing = {"agent", "particles", "iteration", "env_steps", "policy"} - set(payload)
        if missing:
            raise CheckpointError(
                f"checkpoint {step} under {checkpoint_dir(run_dir)} is not a pes_rl checkpoint (lacks {', '.join(sorted(missing))})"
            )
        return payload
