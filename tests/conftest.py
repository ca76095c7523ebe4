"""Shared test setup: JAX's persistent compilation cache and session-scoped envs.

Compiling MJX steps dominates the suite's time on a CPU; the persistent cache
lets CLI subprocesses and later tests reuse what earlier ones compiled.
"""

import os

# MUJOCO_GL: pes_rl.envs asks for EGL where libEGL exists (a GPU server may lack it)
_CACHE = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), ".jax_cache")
os.environ.setdefault("JAX_COMPILATION_CACHE_DIR", _CACHE)
os.environ.setdefault("JAX_PERSISTENT_CACHE_MIN_COMPILE_TIME_SECS", "0.5")
os.environ.setdefault("JAX_PERSISTENT_CACHE_MIN_ENTRY_SIZE_BYTES", "0")

import jax  # noqa: E402
import pytest  # noqa: E402

jax.config.update("jax_compilation_cache_dir", os.environ["JAX_COMPILATION_CACHE_DIR"])
jax.config.update("jax_persistent_cache_min_compile_time_secs", float(os.environ["JAX_PERSISTENT_CACHE_MIN_COMPILE_TIME_SECS"]))


@pytest.fixture(scope="session")
def mjx_swimmer():
    from pes_rl import envs

    return envs.make("swimmer", "mjx")
