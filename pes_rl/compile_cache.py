"""JAX's persistent compilation cache, on by default for ``pes-rl`` commands.

A gymnasium-backend Swimmer run jits about twenty small programs (the batched policy, the
optimizer step, the normaliser, ...), ~1.5 s of XLA compilation on a 2-core CPU before the first
iteration; an mjx run compiles its K-step window for tens of seconds. With the cache, the second
and later runs of the same shapes load the executables from disk instead.

Where it goes (:func:`cache_dir`): ``$PES_RL_COMPILATION_CACHE`` if set (``0``, ``off`` or an empty
value: no cache), else ``$XDG_CACHE_HOME/pes_rl/jax`` (``~/.cache/pes_rl/jax``). A cache the user
configured for JAX (``JAX_COMPILATION_CACHE_DIR`` or ``jax.config``) is used as it is. JAX evicts
the least recently used entries beyond :data:`MAX_BYTES`.
"""

from __future__ import annotations

import os

import jax

MAX_BYTES = 1 << 30  # 1 GiB: hundreds of mjx windows
OFF = ("", "0", "off", "false", "no")


def cache_dir() -> str | None:
    """The directory pes-rl caches compiled programs in, or None when switched off."""
    value = os.environ.get("PES_RL_COMPILATION_CACHE")
    if value is not None:
        return None if value.strip().lower() in OFF else os.path.expanduser(value)
    base = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
    return os.path.join(base, "pes_rl", "jax")


def enable() -> str | None:
    """Turn the persistent cache on for this process, caching every compilation (pes-rl's are
    small and many); returns the directory in use, or None. A directory that cannot be created
    leaves the process uncached: a cache is never a reason for a run to fail."""
    configured = jax.config.jax_compilation_cache_dir
    if configured:
        return configured
    path = cache_dir()
    if path is None:
        return None
    try:
        os.makedirs(path, exist_ok=True)
    except OSError:
        return None
    jax.config.update("jax_compilation_cache_dir", path)
    jax.config.update("jax_persistent_cache_min_compile_time_secs", 0.0)
    jax.config.update("jax_persistent_cache_min_entry_size_bytes", 0)
    jax.config.update("jax_compilation_cache_max_size", MAX_BYTES)
    return path
