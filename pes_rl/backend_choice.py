"""Which backend ``auto`` trains on: mjx only where an accelerator out-steps the CPU for the run's
population.

MJX on a GPU is latency-bound: one env step of a batch takes about the same time from one env to
thousands, so its env steps/s grow with the population, P / (seconds per step), until the device
is full. The threaded C MuJoCo batch does a fixed number of env steps/s per core whatever the
batch. ``auto`` therefore picks mjx when an accelerator is present and P is at least the
crossover population where the two rates meet (:func:`crossover_particles`); an explicit
backend always wins. The two constants are measured figures (docs/performance.md); re-measure
them with ``scripts/gpu_figures.sh`` and ``pes-rl bench`` on the machine at hand.
"""

from __future__ import annotations

import math

from pes_rl import envs
from pes_rl.envs.mujoco_threaded import default_threads

# Seconds per env step of the PES loop on mjx at a latency-bound batch: Swimmer, 2,048 envs, 206,662
# env steps/s on one H200 (2026-11-26, after the line-search cap of pes_rl.envs.mjx_swimmer), so
# 9.9 ms a step; 42 ms at 65,536 envs (1.55M env steps/s). Brax Hopper (its line search capped too):
# 10.4 ms at 16,384 envs (1.57M env steps/s).
MJX_SECONDS_PER_STEP = 0.010
# Env steps/s per core of the threaded C MuJoCo batch: Swimmer, 10k-29k per thread on the CPUs
# measured (AMD EPYC, Intel Xeon); the heavier tasks are slower on both paths alike.
CPU_STEPS_PER_S_PER_CORE = 20_000


def crossover_particles(cores: int) -> int:
    """The population P from which mjx on an accelerator out-steps ``cores`` CPU threads:
    ``P / MJX_SECONDS_PER_STEP >= cores * CPU_STEPS_PER_S_PER_CORE``."""
    return math.ceil(cores * CPU_STEPS_PER_S_PER_CORE * MJX_SECONDS_PER_STEP)


def choose_backend(requested: str, num_particles: int, accelerator: bool, cores: int,
                   mjx_task: bool = True, gymnasium_task: bool = True) -> tuple[str, str]:
    """``(backend, why)`` for a run of ``num_particles`` particles; ``requested`` other than
    ``auto`` is returned as is. ``mjx_task``: the env has an mjx version (else gymnasium only);
    ``gymnasium_task``: it has a gymnasium version (else mjx only, as MuJoCo Playground's tasks)."""
    if requested != "auto":
        return requested, "as asked"
    if not gymnasium_task:
        return "mjx", "the env runs on mjx only (MuJoCo Playground)"
    if not accelerator:
        return "gymnasium", "no GPU/TPU: C MuJoCo threads on the CPU"
    if not mjx_task:
        return "gymnasium", "the env runs on gymnasium only"
    crossover = crossover_particles(cores)
    if num_particles >= crossover:
        return "mjx", (f"{num_particles:,} particles >= {crossover:,}, from where the accelerator out-steps "
                       f"{cores} CPU threads")
    return "gymnasium", (f"{num_particles:,} particles < {crossover:,}: below that {cores} CPU threads step faster "
                         "than the latency-bound accelerator (--backend mjx to use it anyway)")


def resolve(requested: str, num_envs: int, env_name: str, env_fn=None) -> tuple[str, str]:
    """:func:`choose_backend` on this machine (its accelerator, the cores this process may use) for
    a training population of ``num_envs`` envs stepped at once. (``pes-rl eval`` and ``record`` keep
    ``pes_rl.envs.resolve_backend``: a run's ``auto`` must evaluate on the backend it trained on,
    and Brax's tasks observe differently from gymnasium's.)"""
    return choose_backend(requested, num_envs, envs.accelerator_available(), default_threads(),
                          mjx_task=env_name in envs.MJX_NAMES and env_fn is None,
                          gymnasium_task=env_name not in envs.MJX_ONLY_NAMES)
