"""What evaluations cost a training run: the share of its wall time, at a preset's own evaluation frequency.

Trains the same run (env, agent, seed, env steps) twice per repeat in fresh subprocesses, once
evaluating as the preset says (``eval_every``, ``eval_episodes``) and once never (``eval_every=0``;
the final evaluation runs either way), and reports ``share = 1 - wall_without / wall_with`` from the
medians, with each call's ``pes_rl.train`` wall time (imports excluded). Evaluations on the host run
in the background while training goes on (pes_rl/trainer.py); this measures what they still cost.

    python scripts/evaluation_share.py --env swimmer --agent nres --total-steps 100000 --repeats 3
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
t0 = time.perf_counter()
r = pes_rl.train(env={env!r}, agent={agent!r}, seed={seed}, backend="gymnasium", total_steps={total},
                 checkpoint_every=0, progress_bar=False{extra})
evals = sum(m["eval_return_mean"] is not None for m in r.metrics)
print(json.dumps({{"wall": time.perf_counter() - t0, "evaluations": evals, "env_steps": r.env_steps}}))
"""


def timed_run(env: str, agent: str, seed: int, total: int, evaluate: bool) -> dict:
    """One training run in a fresh process: its train() wall time and evaluation count."""
    code = CHILD.format(env=env, agent=agent, seed=seed, total=total, extra="" if evaluate else ", eval_every=0")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    return json.loads(out.stdout.strip().splitlines()[-1])


def main(argv: list[str] | None = None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--env", default="swimmer")
    parser.add_argument("--agent", default="pes")
    parser.add_argument("--seed", type=int, default=10)
    parser.add_argument("--total-steps", type=int, default=100_000)
    parser.add_argument("--repeats", type=int, default=3, help="pairs of runs, alternating with and without")
    args = parser.parse_args(argv)
    runs = {True: [], False: []}
    for _ in range(args.repeats):
        for evaluate in (True, False):
            runs[evaluate].append(timed_run(args.env, args.agent, args.seed, args.total_steps, evaluate))
            print(json.dumps({"evaluate": evaluate, **runs[evaluate][-1]}), flush=True)
    with_evals = float(np.median([r["wall"] for r in runs[True]]))
    without = float(np.median([r["wall"] for r in runs[False]]))
    summary = {"env": args.env, "agent": args.agent, "seed": args.seed, "env_steps": runs[True][0]["env_steps"],
               "evaluations": runs[True][0]["evaluations"], "median_wall_with_evaluations": with_evals,
               "median_wall_without": without, "evaluation_share": 1.0 - without / with_evals}
    print(json.dumps(summary))
    return summary


if __name__ == "__main__":
    main()
