"""Checkpoints under ``RUN_DIR/checkpoints/`` with orbax-checkpoint.

A checkpoint holds the whole training state: the agent (θ, optimizer state, ξ,
normaliser, PRNG key), every particle's simulator state, and the counters.
Pytrees whose node types orbax does not know (mjx ``Data``, optax states) are
stored as their list of leaves and rebuilt with the live treedef on resume.
orbax writes each step to a temporary directory and renames it when complete,
so a crash mid-save leaves the previous checkpoint readable; SIGINT and SIGTERM wait
until a save has finished (:func:`signals_held`).
"""

from __future__ import annotations

import contextlib
import logging
import os
import signal
import threading
from typing import Any, Iterator

import jax
import numpy as np


log = logging.getLogger("pes_rl")


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


@contextlib.contextmanager
def signals_held(signals: tuple[int, ...] = (signal.SIGINT, signal.SIGTERM)) -> Iterator[None]:
    """Hold ``signals`` until the block ends: meanwhile they are only recorded, and the first one
    that arrived is raised again, to the handler in place before, once the block is done. In the
    main thread only (Python runs signal handlers there); elsewhere a no-op.

    Why: SIGTERM (the CLI turns it into an exception) handled mid-save unwinds the main thread while
    orbax's writer threads (tensorstore, C++) are still at work; the process was then seen to abort at
    exit (``terminate called ...``, exit -6 instead of 143) or to hang in the manager's close."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    arrived: list[int] = []
    previous = {s: signal.signal(s, lambda signum, frame: arrived.append(signum)) for s in signals}
    try:
        yield
    finally:
        for s, handler in previous.items():
            signal.signal(s, handler)
        if arrived:
            signal.raise_signal(arrived[0])


def save(run_dir: str, step: int, payload: dict) -> None:
    """Save ``payload`` (nested dicts/lists of arrays) as checkpoint ``step``, whole: SIGINT and
    SIGTERM are held until the save is done."""
    with signals_held(), _manager(run_dir) as manager:
        manager.save(step, args=_ocp().args.StandardSave(payload), force=True)
        manager.wait_until_finished()


def latest_step(run_dir: str, attempts: int = 5) -> int | None:
    """The newest finalised checkpoint step under ``run_dir``, or None.

    Safe beside a run that is writing: orbax lists the steps and then reads each one's
    metadata, and a writer may delete its oldest step (``max_to_keep``) in between, which
    raises FileNotFoundError or NotADirectoryError; the listing is then taken again.
    """
    if not os.path.isdir(checkpoint_dir(run_dir)):
        return None
    for _ in range(attempts - 1):
        try:
            with _manager(run_dir) as manager:
                return manager.latest_step()
        except OSError:  # FileNotFoundError, NotADirectoryError: a step vanished mid-listing
            pass
    with _manager(run_dir) as manager:  # the last attempt's error, if any, is the caller's
        return manager.latest_step()


def _restore_step(manager, run_dir: str, step: int) -> dict:
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


def restore(run_dir: str, step: int | None = None, set_aside_damaged: bool = False) -> dict:
    """Restore checkpoint ``step``, or by default the newest one that can be read.

    A newer checkpoint that is damaged (or a stray directory named like a step) does not hide
    the intact ones before it: they are tried newest first, and the fallback is logged in one
    line (logger ``pes_rl``). The steps passed over are listed under ``payload["skipped"]``;
    with ``set_aside_damaged`` (a resume, which will write new steps) they are moved to
    ``damaged_checkpoints/`` (:func:`set_aside`).
    """
    if step is not None:
        with _manager(run_dir) as manager:
            return _restore_step(manager, run_dir, step)
    with _manager(run_dir) as manager:
        steps = sorted(manager.all_steps(), reverse=True)
    if not steps:
        raise FileNotFoundError(f"no checkpoint under {checkpoint_dir(run_dir)}")
    skipped, first_error = [], None
    for candidate in steps:
        try:
            # a fresh manager per attempt: a failed restore leaves orbax's handler registry unusable
            with _manager(run_dir) as manager:
                payload = _restore_step(manager, run_dir, candidate)
        except CheckpointError as e:
            skipped.append(candidate)
            first_error = first_error or e
            continue
        if skipped:
            moved = f"; moved it to {set_aside(run_dir, skipped)}" if set_aside_damaged else ""
            log.warning("checkpoint %s under %s cannot be read; using checkpoint %d%s",
                        ", ".join(map(str, skipped)), checkpoint_dir(run_dir), candidate, moved)
        payload["skipped"] = skipped
        return payload
    raise first_error


def set_aside(run_dir: str, steps: list[int]) -> str:
    """Move unreadable checkpoint steps out of ``checkpoints/`` into ``damaged_checkpoints/`` (kept,
    not deleted), so a resumed run's new checkpoints are not shadowed by a higher stray step."""
    target = os.path.join(os.path.abspath(run_dir), "damaged_checkpoints")
    os.makedirs(target, exist_ok=True)
    for step in steps:
        source = os.path.join(checkpoint_dir(run_dir), str(step))
        destination = os.path.join(target, str(step))
        suffix = 1
        while os.path.exists(destination):
            destination = os.path.join(target, f"{step}.{suffix}")
            suffix += 1
        os.replace(source, destination)
    return target
