"""Simulators behind one protocol (see :mod:`pes_rl.envs.base`); knows nothing of PES.

``envs.make(name, backend="auto")`` is the entry point:

- ``mjx``: a pure, unbatched :class:`JaxEnv`, for a GPU/TPU; vmap it yourself. Swimmer, Hopper,
  Walker2d and HalfCheetah are gymnasium's ``-v5`` tasks on MJX (:data:`MJX_PORTS`,
  :mod:`pes_rl.envs.mjx_gymnasium`: the same observations, rewards and terminations); the other
  short names are Brax's MJX tasks, and ``brax_NAME`` names every Brax task (:data:`BRAX_MJX_NAMES`,
  mjx only). With the ``playground`` extra, MuJoCo Playground's DM Control suite
  (:data:`PLAYGROUND_NAMES`, e.g. ``CheetahRun``: mjx only).
- ``gymnasium``: a numpy :class:`BatchedEnv` of N envs, for the CPU (C MuJoCo is
  faster there). Swimmer, Hopper, HalfCheetah, Walker2d, Ant, Humanoid,
  InvertedPendulum, InvertedDoublePendulum and Reacher ``-v5`` are stepped by C
  threads, bit-equal to gymnasium (:mod:`pes_rl.envs.mujoco_threaded`); any other id runs
  on gymnasium's vector env.
- ``auto``: ``mjx`` if JAX sees a GPU/TPU or the task runs on mjx only, else ``gymnasium``.
"""

from __future__ import annotations

import ctypes.util
import importlib.util
import os
from typing import Callable

# Headless rendering by default (MuJoCo reads this when first imported); set
# MUJOCO_GL=glfw yourself for on-screen viewers. Only where libEGL exists: with
# MUJOCO_GL=egl and no libEGL, `import mujoco` itself fails (PyOpenGL raises
# AttributeError), which would take physics down with rendering.
if ctypes.util.find_library("EGL"):
    os.environ.setdefault("MUJOCO_GL", "egl")

import gymnasium as gym

from pes_rl.envs.base import BatchedEnv, JaxEnv, State, compiler_options
from pes_rl.envs.brax_tasks import BRAX_NAMES  # names only: brax itself is imported on first use
from pes_rl.envs.gymnasium_backend import GYMNASIUM_IDS, MJX_PORTS, GymnasiumBatchedEnv
from pes_rl.envs.playground_tasks import IMPLS, PLAYGROUND_NAMES  # names only, as for Brax

BACKENDS = ("auto", "mjx", "gymnasium")
ENV_NAMES = ("swimmer",) + tuple(BRAX_NAMES)  # short names on both backends
BRAX_MJX_NAMES = tuple(f"brax_{name}" for name in BRAX_NAMES)  # Brax's own tasks by name, mjx only
MJX_ONLY_NAMES = BRAX_MJX_NAMES + PLAYGROUND_NAMES  # tasks without a gymnasium counterpart
MJX_NAMES = ENV_NAMES + MJX_ONLY_NAMES  # every task of the mjx backend

__all__ = [
    "BACKENDS",
    "BRAX_MJX_NAMES",
    "ENV_NAMES",
    "IMPLS",
    "MJX_NAMES",
    "MJX_ONLY_NAMES",
    "MJX_PORTS",
    "PLAYGROUND_NAMES",
    "BatchedEnv",
    "JaxEnv",
    "State",
    "compiler_options",
    "make",
    "resolve_backend",
    "gymnasium_id",
    "default_impl",
    "accelerator_available",
]


def accelerator_available() -> bool:
    """True when JAX's default backend is a GPU or TPU."""
    import jax

    return jax.default_backend() not in ("cpu",)


def mjx_only_source(name: str) -> str:
    """Where a task of :data:`MJX_ONLY_NAMES` comes from, for error messages."""
    return "MuJoCo Playground's task" if name in PLAYGROUND_NAMES else "Brax's task"


def resolve_backend(backend: str, name: str | None = None) -> str:
    """``auto`` -> ``mjx`` on a GPU/TPU or for a task ``name`` that runs on mjx only
    (:data:`MJX_ONLY_NAMES`), else ``gymnasium``; validates the backend (and that such a task is not
    asked for on gymnasium)."""
    if backend not in BACKENDS:
        raise ValueError(f"backend must be one of {', '.join(BACKENDS)}; got {backend!r}")
    if name in MJX_ONLY_NAMES:
        if backend == "gymnasium":
            raise ValueError(f"backend must be auto or mjx for env {name!r} ({mjx_only_source(name)} runs on mjx "
                             "only); got 'gymnasium'")
        return "mjx"
    if backend == "auto":
        return "mjx" if accelerator_available() else "gymnasium"
    return backend


def default_impl(name: str) -> str:
    """MJX's implementation for ``name`` when none is asked for: ``jax`` for our Swimmer and Brax's
    tasks; for MuJoCo Playground's, ``jax`` on a CPU and Playground's own default (``warp``) on an
    accelerator. On a 2-core CPU the PES loop stepped CheetahRun at ~11k env steps/s (20 envs)
    under jax and ~0.2k under warp, whose kernels run one after another there
    (docs/backends.md); warp is MuJoCo's fast path on NVIDIA GPUs (not yet measured here). Without
    warp-lang installed (the ``playground`` extra brings it) it is ``jax`` everywhere."""
    if name in PLAYGROUND_NAMES and accelerator_available() and warp_installed():
        return "warp"
    return "jax"


def warp_installed() -> bool:
    """Whether MJX-Warp's package (``warp-lang``, import name ``warp``) can be imported."""
    return importlib.util.find_spec("warp") is not None


def gymnasium_id(name: str) -> str:
    """Map a short name to a gymnasium id; a registered gymnasium id maps to itself."""
    if name in GYMNASIUM_IDS:
        return GYMNASIUM_IDS[name]
    if name in gym.registry:
        return name
    raise ValueError(
        f"env must be one of {', '.join(ENV_NAMES)} or a registered gymnasium id (backend gymnasium); got {name!r}"
    )


def make(
    name: str,
    backend: str = "auto",
    *,
    num_envs: int = 1,
    episode_length: int = 1000,
    env_fn: Callable[[], gym.Env] | None = None,
    threaded: bool | None = None,
    num_threads: int | None = None,
    impl: str | None = None,
) -> JaxEnv | BatchedEnv:
    """Create environment ``name`` on ``backend``.

    Args:
      name: a short name (``swimmer``, ``hopper``, ...; on mjx, :data:`MJX_PORTS` are gymnasium's
        tasks and the others Brax's); on mjx only, a Brax task by name (``brax_hopper``, ...) or a
        Playground task (``CheetahRun``, ...); on the gymnasium backend, any registered gymnasium id
        with a Box action space.
      backend: ``auto``, ``mjx`` or ``gymnasium``.
      num_envs: batch size of the gymnasium backend (the mjx env is unbatched).
      episode_length: the time limit T.
      env_fn: gymnasium backend only: a factory with the user's own wrappers
        (always stepped by gymnasium itself).
      threaded: gymnasium backend: step the task's MuJoCo model in C threads
        (``None``: whenever the id is in :data:`pes_rl.envs.mujoco_threaded.TASKS` and
        no ``env_fn`` is given; ``False``: gymnasium's ``SyncVectorEnv``).
      num_threads: C threads of the threaded batch (default: every core).
      impl: mjx backend: MJX's implementation, ``jax`` or ``warp`` (MJX-Warp), for the
        gymnasium ports and the Playground tasks (warp is tested for Swimmer and Playground's);
        None: :func:`default_impl`.
    Raises:
      ValueError: unknown name, backend or impl, naming the valid choices.
      pes_rl.envs.playground_tasks.PlaygroundMissing: a Playground task without the extra.
    """
    backend = resolve_backend(backend, name)
    if impl is not None and impl not in IMPLS:
        raise ValueError(f"impl must be one of {', '.join(IMPLS)}; got {impl!r}")
    if backend == "mjx":
        if name in MJX_PORTS:
            from pes_rl.envs.mjx_gymnasium import MjxGymnasiumEnv

            return MjxGymnasiumEnv(name, episode_length=episode_length, impl=impl or "jax")
        if name in PLAYGROUND_NAMES:
            from pes_rl.envs.playground_tasks import PlaygroundEnv

            return PlaygroundEnv(name, episode_length=episode_length, impl=impl or default_impl(name))
        if name in BRAX_NAMES or name in BRAX_MJX_NAMES:
            if impl not in (None, "jax"):
                raise ValueError(f"impl must be jax for Brax's task {name!r}; got {impl!r}")
            from pes_rl.envs.brax_tasks import BraxEnv

            return BraxEnv(name, episode_length=episode_length)
        raise ValueError(f"env must be one of {', '.join(MJX_NAMES)} on backend mjx; got {name!r}")
    env_id = name if env_fn is not None and name not in GYMNASIUM_IDS else gymnasium_id(name)
    from pes_rl.envs.mujoco_threaded import TASKS, ThreadedMujocoEnv

    if threaded and (env_fn is not None or env_id not in TASKS):
        raise ValueError(f"threaded stepping supports {', '.join(TASKS)} without env_fn; got {env_id!r}")
    if threaded is not False and env_fn is None and env_id in TASKS:
        return ThreadedMujocoEnv(env_id, num_envs, episode_length=episode_length, num_threads=num_threads, name=name)
    return GymnasiumBatchedEnv(env_id, num_envs, episode_length=episode_length, env_fn=env_fn, name=name)
