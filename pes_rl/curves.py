"""Learning curves: when a run first reaches a return, summarised over seeds.

Used by the benchmark scripts (``scripts/benchmark_tasks.py``,
``scripts/swimmer_sample_efficiency.py``).
"""

from __future__ import annotations

import numpy as np

# Return thresholds per task: the ARS paper's (Mania, Guy & Recht 2018, Table 1) for the
# locomotion tasks, gymnasium's registered reward_threshold for the pendulums and Reacher, and the
# Swimmer figure the PES paper plots against. Pendulum-v1 has none registered: -200 is the usual
# "solved" mark (a swing-up held upright).
THRESHOLDS: dict[str, float] = {
    "swimmer": 325.0,
    "hopper": 3120.0,
    "halfcheetah": 3430.0,
    "walker2d": 4390.0,
    "ant": 3580.0,
    "humanoid": 6000.0,
    "inverted_pendulum": 1000.0,
    "inverted_double_pendulum": 9350.0,
    "reacher": -3.75,
    "Pendulum-v1": -200.0,
}


# Further returns a task's benchmark reports steps to: Swimmer's target is a median of 325 and every
# seed at 350 (the returns the PES paper's Swimmer curves reach).
SECOND_THRESHOLDS: dict[str, tuple[float, ...]] = {"swimmer": (350.0,)}


def first_crossing(rows: list[dict], threshold: float, key: str = "env_steps") -> float | None:
    """``row[key]`` of the first evaluated row whose ``eval_return_mean`` reaches ``threshold``."""
    for r in rows:
        if r.get("eval_return_mean") is not None and r["eval_return_mean"] >= threshold:
            return r[key]
    return None


def median_or_none(values: list) -> float | None:
    """Median over seeds, counting a seed that never crossed (None) as infinitely slow; None when
    that median is infinite (fewer than half of the seeds crossed)."""
    vals = [np.inf if v is None else v for v in values]
    if not vals:
        return None
    m = float(np.median(vals))
    return None if not np.isfinite(m) else m
