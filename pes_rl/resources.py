"""Will a run fit in memory? An estimate made before anything large is allocated.

A run's big allocations scale with a few config fields: the particles' parameter
arrays (``num_pairs`` x the policy's size, ``hidden``), the training batch of
simulators (``num_pairs``), and the evaluation batch (``eval_episodes``: every
episode of an evaluation runs at once). :func:`check_memory` adds them up from
shapes alone and refuses a config that needs more than the machine has, naming
the fields of the largest part, instead of failing later with a MemoryError or
an out-of-memory kill.
"""

from __future__ import annotations

import math
import os
from dataclasses import dataclass

import jax
import numpy as np

from pes_rl.config import Config, ConfigError
from pes_rl.policy_io import parameter_count

GIB = 2**30
# Copies of a (particles x parameters) float32 array alive at once in ask/tell: the accumulator ξ,
# ε, the perturbed θ's, the per-particle estimates, and XLA's temporaries around them.
PARTICLE_ARRAY_COPIES = 6
# What a gymnasium MuJoCo env costs beyond its model and data buffers (see member_bytes).
GYM_MUJOCO_ENV_OVERHEAD = 640 * 1024
# A gymnasium env that is not MuJoCo (Pendulum, a user's env): small, but not free (Python objects).
PLAIN_GYM_ENV_BYTES = 64 * 1024
# Live copies of the mjx state per particle in a jitted scan (carry in, carry out, step temporaries).
MJX_STATE_COPIES = 4


@dataclass(frozen=True)
class MemoryPart:
    nbytes: int
    what: str  # names the config fields it scales with
    fix: str  # which fields to lower


def available_memory() -> int:
    """Bytes this process can still allocate: the kernel's MemAvailable, capped by a cgroup limit."""
    available = None
    try:
        with open("/proc/meminfo") as f:
            for line in f:
                if line.startswith("MemAvailable:"):
                    available = int(line.split()[1]) * 1024
    except OSError:
        pass
    if available is None:
        available = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")
    for limit_file, usage_file in (("/sys/fs/cgroup/memory.max", "/sys/fs/cgroup/memory.current"),
                                   ("/sys/fs/cgroup/memory/memory.limit_in_bytes",
                                    "/sys/fs/cgroup/memory/memory.usage_in_bytes")):
        try:
            with open(limit_file) as f, open(usage_file) as g:
                limit, usage = f.read().strip(), int(g.read().strip())
        except (OSError, ValueError):
            continue
        if limit.isdigit() and int(limit) < 2**60:
            available = min(available, int(limit) - usage)
    return max(available, 0)


def member_bytes(env) -> int:
    """Memory one member of a host (gymnasium backend) batch takes."""
    physics = getattr(env, "physics", None)
    if physics is not None:  # the threaded C MuJoCo batch: one state row per member, plus step buffers
        return int(physics.shape[1]) * 8 * (int(getattr(env, "frame_skip", 1)) + 3) + env.observation_size * 16
    vector_env = getattr(env, "vector_env", None)
    sim = vector_env.envs[0].unwrapped if vector_env is not None else None
    model = getattr(sim, "model", None)
    if model is not None and hasattr(model, "nbuffer"):
        # each gymnasium MuJoCo env holds its own model and data plus Python objects around them;
        # measured RSS per env (KiB, estimate in brackets): Swimmer 1063 (1151), Pusher 631 (686),
        # Ant 557 (1180), Reacher 291 (662): never below, at worst 2.3x above
        return int(model.nbuffer) + int(getattr(sim.data, "nbuffer", 0)) + GYM_MUJOCO_ENV_OVERHEAD
    return PLAIN_GYM_ENV_BYTES


def mjx_state_bytes(env) -> int:
    """Bytes of one mjx env state, from shapes alone."""
    shapes = jax.eval_shape(env.reset, jax.random.PRNGKey(0))
    return sum(math.prod(s.shape) * np.dtype(s.dtype).itemsize for s in jax.tree_util.tree_leaves(shapes))


def estimate(config: Config, probe, eval_probe=None) -> list[MemoryPart]:
    """The large parts of a run's memory. ``probe`` is the training env (a one-member batch on the
    gymnasium backend, the env itself on mjx); ``eval_probe`` the evaluation's, if different."""
    D = parameter_count(config, probe.observation_size, probe.action_size)
    P = config.num_particles
    parts = [MemoryPart(PARTICLE_ARRAY_COPIES * P * D * 4,
                        f"{P:,} particles (num_pairs {config.num_pairs:,}) x {D:,} policy parameters "
                        f"(policy {config.policy}" + (f", hidden {','.join(map(str, config.hidden))})" if config.policy == "mlp" else ")"),
                        "num_pairs or hidden")]

    def batch(env, count: int, label: str, field: str, value: int) -> MemoryPart:
        each = MJX_STATE_COPIES * mjx_state_bytes(env) if env.backend == "mjx" else member_bytes(env)
        return MemoryPart(count * each, f"{count:,} {label} simulators ({field} {value:,}) x {each / 2**20:.2f} MiB",
                          field)

    parts.append(batch(probe, P, "training", "num_pairs", config.num_pairs))
    parts.append(batch(eval_probe or probe, config.eval_episodes, "evaluation", "eval_episodes", config.eval_episodes))
    return parts


def check_memory(config: Config, probe, eval_probe=None, available: int | None = None) -> None:
    """Refuse (one-line :class:`ConfigError`) a config whose estimate exceeds the available memory."""
    parts = estimate(config, probe, eval_probe)
    total = sum(p.nbytes for p in parts)
    available = available_memory() if available is None else available
    if total > available:
        worst = max(parts, key=lambda p: p.nbytes)
        raise ConfigError(
            f"memory: this run needs about {total / GIB:,.1f} GiB, more than the {available / GIB:,.1f} GiB "
            f"available; the largest part is {worst.what}: lower {worst.fix}"
        )


def check_batch(env, count: int, field: str, available: int | None = None) -> None:
    """Refuse (one line) a host batch of ``count`` members of ``env`` that would not fit in memory."""
    each = MJX_STATE_COPIES * mjx_state_bytes(env) if env.backend == "mjx" else member_bytes(env)
    available = available_memory() if available is None else available
    if count * each > available:
        raise ConfigError(f"memory: {field} {count:,} would need about {count * each / GIB:,.1f} GiB "
                          f"({each / 2**20:.2f} MiB each), more than the {available / GIB:,.1f} GiB available; lower {field}")
