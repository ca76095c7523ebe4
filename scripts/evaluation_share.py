"""What evaluations cost a training run: the share of its wall time, at a preset's own evaluation frequency.

Trains the same run (env, agent, seed, backend; the preset's ``total_steps`` unless ``--total-steps``)
twice per repeat in fresh subprocesses, once evaluating as the preset says (``eval_every``,
``eval_episodes``) and once never (``eval_every=0``; the final evaluation runs either way), after one
untimed run that fills the compilation cache (each run loads its programs, as ``pes-rl train`` does), and reports
``share = 1 - wall_without / wall_with`` from the medians, with each call's ``pes_rl.train`` wall time
(imports excluded). Evaluations on the host run in the background while training goes on
(pes_rl/trainer.py); this measures what they still cost. Evaluations must not change training, so the
script refuses to report a share unless every run ended with the same env steps and final return.

    python scripts/evaluation_share.py --env swimmer inverted_pendulum --agent pes --repeats 3
    python scripts/evaluation_share.py --env CartpoleSwingup --backend mjx --repeats 1
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys

import numpy as np

CHILD = """
import json, time
import pes_rl
from pes_rl import compile_cache
compile_cache.enable()  # as `pes-rl train` does: the warm-up run compiled, this one loads
t0 = time.perf_counter()
r = pes_rl.train(env={env!r}, agent={agent!r}, seed={seed}, backend={backend!r}, total_steps={total},
                 checkpoint_every=0, progress_bar=False{extra})
evals = sum(m["eval_return_mean"] is not None for m in r.metrics)
print(json.dumps({{"wall": time.perf_counter() - t0, "evaluations": evals, "env_steps": r.env_steps,
                  "final_eval_return": r.final_eval_return}}))
"""


def timed_run(env: str, agent: str, seed: int, backend: str, total: int | None, evaluate: bool) -> dict:
    """One training run in a fresh process: its train() wall time, evaluation count and end point."""
    code = CHILD.format(env=env, agent=agent, seed=seed, backend=backend, total=total,
                        extra="" if evaluate else ", eval_every=0")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    if out.returncode:
        raise SystemExit(f"evaluation_share: the {env} run failed:\n{out.stderr[-3000:]}")
    return json.loads(out.stdout.strip().splitlines()[-1])


def share_of(env: str, agent: str, seed: int, backend: str, total: int | None, repeats: int) -> dict:
    """``repeats`` pairs of runs, alternating with and without evaluations; the share from their medians."""
    runs: dict[bool, list[dict]] = {True: [], False: []}
    # untimed: fills the compilation cache with the training chunk and the evaluator, so that no timed
    # run pays XLA's compilation (on mjx it would otherwise hide the evaluations' cost)
    timed_run(env, agent, seed, backend, total, evaluate=True)
    for _ in range(repeats):
        for evaluate in (True, False):
            runs[evaluate].append(timed_run(env, agent, seed, backend, total, evaluate))
            print(json.dumps({"env": env, "evaluate": evaluate, **runs[evaluate][-1]}), flush=True)
    ends = {(r["env_steps"], r["final_eval_return"]) for r in runs[True] + runs[False]}
    if len(ends) != 1:
        raise SystemExit(f"evaluation_share: {env}'s runs did not train alike (env steps, final return): {sorted(ends)}")
    with_evals = float(np.median([r["wall"] for r in runs[True]]))
    without = float(np.median([r["wall"] for r in runs[False]]))
    return {"env": env, "agent": agent, "seed": seed, "backend": backend, "env_steps": runs[True][0]["env_steps"],
            "evaluations": runs[True][0]["evaluations"], "median_wall_with_evaluations": with_evals,
            "median_wall_without": without, "evaluation_share": 1.0 - without / with_evals}


def main(argv: list[str] | None = None) -> list[dict]:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--env", nargs="+", default=["swimmer"], help="one or more envs with a preset")
    parser.add_argument("--agent", default="pes")
    parser.add_argument("--seed", type=int, default=10)
    parser.add_argument("--backend", default="gymnasium", choices=["gymnasium", "mjx"])
    parser.add_argument("--total-steps", type=int, help="env steps of each run (default: the preset's total_steps)")
    parser.add_argument("--repeats", type=int, default=3, help="pairs of runs, alternating with and without")
    args = parser.parse_args(argv)
    summaries = []
    for env in args.env:
        summaries.append(share_of(env, args.agent, args.seed, args.backend, args.total_steps, args.repeats))
        print(json.dumps(summaries[-1]), flush=True)
    return summaries


if __name__ == "__main__":
    main()
