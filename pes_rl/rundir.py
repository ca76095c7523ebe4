"""Run directories: created with a marker, written by one process at a time, never over a user's files.

A run dir holds what pes-rl writes (:data:`OWN_ENTRIES`) and a marker file,
:data:`MARKER`, written when pes-rl creates it. ``--overwrite`` removes only
pes-rl's own entries of a *marked* directory, and never the current directory,
one of its parents, or the home directory. While a run writes into a dir it
holds an advisory lock (``fcntl.flock`` on :data:`LOCK`, which records its PID):
a second writer (a new run, ``--overwrite`` or ``--resume``) is refused with the
holder's PID. The kernel drops the lock when the holder exits, however it exits
(``kill -9`` included), so a stale lock never blocks a resume.
"""

from __future__ import annotations

import fcntl
import json
import os
import shutil
import tempfile
from typing import Any

from pes_rl.config import ConfigError

MARKER = ".pes_rl_run"
LOCK = ".pes_rl.lock"
# Everything pes-rl writes into a run dir; anything else in it is the user's and is never removed.
OWN_ENTRIES = ("config.json", "unroll.json", "progress.csv", "tb", "checkpoints", "damaged_checkpoints", "videos",
               MARKER)  # unroll.json: pes_rl.unroll.optimize's settings


def atomic_write_text(path: str, text: str) -> None:
    """Write ``text`` to ``path`` so that readers see the old file or the new one, never a part:
    a temporary file in the same directory, flushed to disk, then renamed over ``path``."""
    directory = os.path.dirname(os.path.abspath(path))
    fd, tmp = tempfile.mkstemp(dir=directory, prefix="." + os.path.basename(path) + ".", suffix=".tmp")
    try:
        with os.fdopen(fd, "w") as f:
            f.write(text)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise


def write_json(path: str, data: Any) -> None:
    atomic_write_text(path, json.dumps(data, indent=2) + "\n")


def is_pes_rl_run(run_dir: str) -> bool:
    """True when ``run_dir`` carries the marker pes-rl writes when it creates a run dir."""
    return os.path.isfile(os.path.join(run_dir, MARKER))


def _protected(run_dir: str) -> str | None:
    """Why ``run_dir`` may never be removed, or None: the cwd, a parent of it, home or a root."""
    target = os.path.realpath(run_dir)
    cwd = os.path.realpath(os.getcwd())
    if target == cwd:
        return "it is the current directory"
    if cwd.startswith(target.rstrip(os.sep) + os.sep):
        return "it contains the current directory"
    if target == os.path.realpath(os.path.expanduser("~")):
        return "it is the home directory"
    if os.path.dirname(target) == target:
        return "it is a filesystem root"
    return None


def check_run_dir(run_dir: str, resume: bool, overwrite: bool, settings_file: str = "config.json") -> None:
    """Refuse, before anything is written, a run dir this run may not use (one-line ConfigError);
    a resumed dir must hold the run's ``settings_file``."""
    if os.path.exists(run_dir) and not os.path.isdir(run_dir):
        raise ConfigError(f"run_dir {run_dir!r} exists and is not a directory")
    exists = os.path.isdir(run_dir) and bool(os.listdir(run_dir))
    if resume:
        if not os.path.isfile(os.path.join(run_dir, settings_file)):
            raise ConfigError(f"resume: {run_dir!r} has no {settings_file}; nothing to resume")
        return
    if not exists:
        parent = os.path.dirname(os.path.abspath(run_dir))
        while not os.path.exists(parent):
            parent = os.path.dirname(parent)
        if not os.access(parent, os.W_OK | os.X_OK):
            raise ConfigError(f"run_dir {run_dir!r} cannot be created: {parent!r} is not writable")
        return
    if not overwrite:
        raise ConfigError(f"run_dir {run_dir!r} already exists; pass --resume to continue it or --overwrite to replace it")
    reason = _protected(run_dir)
    if reason:
        raise ConfigError(f"overwrite: refusing to clear run_dir {run_dir!r}: {reason}")
    if not is_pes_rl_run(run_dir):
        raise ConfigError(
            f"overwrite: run_dir {run_dir!r} was not created by pes-rl (no {MARKER} marker); it is left untouched: "
            "choose another --run-dir or remove it yourself"
        )


class RunDirLock:
    """An exclusive advisory lock on a run dir, held from :meth:`acquire` to :meth:`release`."""

    def __init__(self, run_dir: str):
        self.path = os.path.join(run_dir, LOCK)
        self._fd: int | None = None

    def acquire(self) -> "RunDirLock":
        fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o644)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            holder = os.pread(fd, 64, 0).decode(errors="replace").strip() or "unknown"
            os.close(fd)
            raise ConfigError(
                f"run_dir {os.path.dirname(self.path)!r} is in use by another pes-rl process (PID {holder}); "
                "wait for it to finish or choose another --run-dir"
            ) from None
        os.ftruncate(fd, 0)
        os.pwrite(fd, f"{os.getpid()}\n".encode(), 0)
        self._fd = fd
        return self

    def release(self) -> None:
        if self._fd is not None:
            os.ftruncate(self._fd, 0)  # the PID of a finished run would only mislead
            os.close(self._fd)  # closing drops the flock
            self._fd = None

    def __enter__(self) -> "RunDirLock":
        return self.acquire()

    def __exit__(self, *exc) -> None:
        self.release()


def open_run_dir(run_dir: str, resume: bool, overwrite: bool, settings_file: str = "config.json") -> RunDirLock:
    """Check ``run_dir`` (:func:`check_run_dir`), create it with its marker if new, take its lock,
    and for ``overwrite`` clear pes-rl's own entries (under the lock, so a live run is never
    cleared). Returns the held lock; the caller releases it when the run ends."""
    check_run_dir(run_dir, resume, overwrite, settings_file)
    try:
        os.makedirs(run_dir, exist_ok=True)
    except OSError as e:
        raise ConfigError(f"run_dir {run_dir!r} cannot be created ({e.strerror})") from None
    if not os.listdir(run_dir):  # new (or empty): ours from now on
        atomic_write_text(os.path.join(run_dir, MARKER), "pes_rl run directory\n")
    lock = RunDirLock(run_dir).acquire()
    try:
        if overwrite and not resume:
            check_run_dir(run_dir, resume, overwrite, settings_file)  # again, now that no other writer can change it
            for name in OWN_ENTRIES:
                path = os.path.join(run_dir, name)
                if name == MARKER or not os.path.lexists(path):
                    continue
                if os.path.isdir(path) and not os.path.islink(path):
                    shutil.rmtree(path)
                else:
                    os.unlink(path)
        elif not resume:  # a run that started between our check and our lock has written here
            others = sorted(set(os.listdir(run_dir)) - {MARKER, LOCK})
            if others:
                raise ConfigError(f"run_dir {run_dir!r} already exists; pass --resume to continue it or --overwrite "
                                  "to replace it")
        if resume and not is_pes_rl_run(run_dir):  # a run written before markers existed
            atomic_write_text(os.path.join(run_dir, MARKER), "pes_rl run directory\n")
    except BaseException:
        lock.release()
        raise
    return lock
