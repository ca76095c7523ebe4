"""Why a background evaluation costs a training run more than its physics (docs/performance.md, sixth round).

Times 2,000 steps of the Swimmer preset's training batch (20 simulations, 2 threads) alone, and again
while another Python thread steps an evaluation-sized batch (5 simulations, 1 thread) without pause,
on a 2-core machine. Random controls; physics only (mujoco.batch.Batch, 4 substeps per env step).

    python docs/perf/2026-11-27b/straggler.py
"""

import json
import threading
import time

import gymnasium as gym
import numpy as np
from mujoco import batch as mjbatch

MODEL = gym.make("Swimmer-v5").unwrapped.model
STEPS = 2000


def timed(nsim: int, nthread: int) -> float:
    """Seconds for STEPS steps of an ``nsim``-simulation batch on ``nthread`` threads."""
    sim = mjbatch.Batch(MODEL, nsim, nthread)
    ctrl, rng = sim.bind("ctrl"), np.random.default_rng(0)
    t0 = time.perf_counter()
    for _ in range(STEPS):
        ctrl[:] = rng.uniform(-1, 1, ctrl.shape)
        sim.step(nstep=4)
    return time.perf_counter() - t0


def main() -> dict:
    out = {"train_20_on_2_threads": timed(20, 2), "train_20_on_1_thread": timed(20, 1),
           "evaluation_5_on_1_thread": timed(5, 1)}
    stop = threading.Event()

    def evaluation_forever() -> None:
        sim = mjbatch.Batch(MODEL, 5, 1)
        while not stop.is_set():
            sim.step(nstep=4)

    thread = threading.Thread(target=evaluation_forever)
    thread.start()
    try:
        out["train_20_on_2_threads_beside_an_evaluation"] = timed(20, 2)
        out["train_20_on_1_thread_beside_an_evaluation"] = timed(20, 1)
    finally:
        stop.set()
        thread.join()
    print(json.dumps(out))
    return out


if __name__ == "__main__":
    main()
