"""Swimmer sample efficiency: env steps (and wall time) to returns of 325 and 350.

Trains ``--seeds`` seeds with the Swimmer preset (or overrides), evaluating the
deterministic policy on gymnasium ``Swimmer-v5`` every ``--eval-every``
iterations, and writes ``OUT/curves.csv`` (one row per evaluation),
``OUT/summary.json`` (per-seed and median steps/wall time to each threshold)
and ``OUT/returns.png``. Per seed, ``wall_to_*`` counts from the start of the training loop (the
compiling first chunk included, set-up not) to the end of the iteration that reached the threshold;
``call_to_*`` from the ``pes_rl.train`` call (env and particle set-up, every compilation) to the
moment that evaluation's result was in; ``launch_to_*`` the same from this script's first line
(the imports too; not the interpreter's own start).

    python scripts/swimmer_sample_efficiency.py --seeds 5 --out runs/swimmer_eff

``--compare-plain`` instead times, seed by seed in one run, wall-clock time to a
return of 350 *from process launch* (interpreter start, imports, compilation
and evaluations included) for pes_rl's Swimmer preset (for ``--agent``; NRES's has its own lr) and for
``scripts/plain_pes_swimmer.py`` (the official settings in plain Python, one
gymnasium env per particle), both evaluated every 20,000 env steps, and writes
``OUT/plain_comparison.json``:

    python scripts/swimmer_sample_efficiency.py --compare-plain --seeds 5 --out runs/swimmer_wall
"""

from __future__ import annotations

import time

LAUNCH = time.perf_counter()  # before the imports: launch_to_* counts them

import argparse
import csv
import json
import os
import subprocess
import sys

from pes_rl.curves import first_crossing, median_or_none

THRESHOLDS = (325.0, 350.0)


def main(argv: list[str] | None = None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seeds", type=int, default=5)
    parser.add_argument("--first-seed", type=int, default=0)
    parser.add_argument("--backend", default="gymnasium", choices=["auto", "mjx", "gymnasium"])
    parser.add_argument("--total-steps", type=int, default=300_000)
    parser.add_argument("--eval-every", type=int, default=None, help="iterations between evaluations")
    parser.add_argument("--eval-episodes", type=int, default=5)
    parser.add_argument("--agent", help="pes (default), tes, nres, es or ars")
    parser.add_argument("--preset", choices=["default", "gpu"], help="the Swimmer preset to start from (default: default)")
    parser.add_argument("--num-pairs", type=int)
    parser.add_argument("--truncation-length", type=int)
    parser.add_argument("--sigma", type=float)
    parser.add_argument("--lr", type=float)
    parser.add_argument("--lr-end", type=float)
    parser.add_argument("--train-steps", type=int, help="total_steps of each run (sets the lr schedule); default --total-steps")
    parser.add_argument("--optimizer")
    parser.add_argument("--no-return-std-scaling", action="store_true")
    parser.add_argument("--stagger", choices=["offset", "burn-in", "none"])
    parser.add_argument("--stop-at", type=float, default=350.0, help="stop a seed once its evaluation reaches this")
    parser.add_argument("--out", default="runs/swimmer_sample_efficiency")
    parser.add_argument("--compare-plain", action="store_true",
                        help="time pes_rl's preset against scripts/plain_pes_swimmer.py from process launch to --stop-at")
    args = parser.parse_args(argv)
    if args.compare_plain:
        return compare_plain(args)

    import pes_rl
    from pes_rl import compile_cache

    compile_cache.enable()  # as `pes-rl train` does: a later seed (or run) of the same shapes loads, not compiles
    os.makedirs(args.out, exist_ok=True)
    overrides = dict(
        env="swimmer", backend=args.backend, eval_backend="gymnasium", total_steps=args.total_steps,
        agent=args.agent, preset=args.preset or "default", eval_every=args.eval_every, eval_episodes=args.eval_episodes, num_pairs=args.num_pairs,
        truncation_length=args.truncation_length, sigma=args.sigma, lr=args.lr, lr_end=args.lr_end, optimizer=args.optimizer,
        progress_bar=False, checkpoint_every=0,
    )
    if args.no_return_std_scaling:
        overrides["return_std_scaling"] = False
    if args.stagger:
        overrides["stagger"] = args.stagger
    per_seed, curves = [], []
    for seed in range(args.first_seed, args.first_seed + args.seeds):
        t0 = time.perf_counter()
        known: dict[float, float] = {}  # threshold: perf_counter when an evaluation's result reached it

        def note(env_steps: int, row: dict) -> None:
            ret, now = row["eval_return_mean"], time.perf_counter()
            for th in THRESHOLDS:
                if ret is not None and ret >= th:
                    known.setdefault(th, now)

        result = pes_rl.train(seed=seed, stop_at_eval_return=args.stop_at, progress_fn=note, **overrides)
        wall = time.perf_counter() - t0
        rows = [dict(r, wall_time=r["wall_time"]) for r in result.metrics]
        for r in rows:
            if r["eval_return_mean"] is not None:
                curves.append({"seed": seed, "iteration": r["iteration"], "env_steps": r["env_steps"],
                               "wall_time": r["wall_time"], "eval_return_mean": r["eval_return_mean"],
                               "eval_return_std": r["eval_return_std"]})
        entry = {"seed": seed, "wall_time_total": wall, "final_eval_return": result.final_eval_return}
        for th in THRESHOLDS:
            entry[f"steps_to_{th:.0f}"] = first_crossing(rows, th, "env_steps")
            entry[f"wall_to_{th:.0f}"] = first_crossing(rows, th, "wall_time")
            entry[f"call_to_{th:.0f}"] = known[th] - t0 if th in known else None
            entry[f"launch_to_{th:.0f}"] = known[th] - LAUNCH if th in known else None
        per_seed.append(entry)
        print(json.dumps(entry), flush=True)

    summary = {"config": {k: v for k, v in result.config.to_dict().items() if k not in ("seed", "run_dir")},
               "seeds": per_seed}
    for th in THRESHOLDS:
        summary[f"median_steps_to_{th:.0f}"] = median_or_none([s[f"steps_to_{th:.0f}"] for s in per_seed])
        summary[f"median_wall_to_{th:.0f}"] = median_or_none([s[f"wall_to_{th:.0f}"] for s in per_seed])
    with open(os.path.join(args.out, "curves.csv"), "w", newline="") as f:
        writer = csv.DictWriter(f, fieldnames=list(curves[0]) if curves else ["seed"])
        writer.writeheader()
        writer.writerows(curves)
    with open(os.path.join(args.out, "summary.json"), "w") as f:
        json.dump(summary, f, indent=2)
    _plot(curves, os.path.join(args.out, "returns.png"))
    print(json.dumps({k: v for k, v in summary.items() if k.startswith("median")}))
    return summary


EVAL_EVERY_STEPS = 20_000

OURS = """
import json, sys, time
import pes_rl
from pes_rl import compile_cache
compile_cache.enable()  # as `pes-rl train` does
r = pes_rl.train(env="swimmer", agent={agent!r}, seed={seed}, backend={backend!r}, eval_backend="gymnasium", total_steps={total},
                 eval_every={every}, eval_episodes={episodes}, stop_at_eval_return={stop}, checkpoint_every=0, progress_bar=False)
hit = [m["env_steps"] for m in r.metrics if (m["eval_return_mean"] or -1e9) >= {stop}]
print(json.dumps({{"end": time.time(), "steps": hit[0] if hit else None}}))
"""


def _launch(cmd: list[str]) -> tuple[float, list[str]]:
    """Run ``cmd``; returns (launch time, stdout lines)."""
    t0 = time.time()
    out = subprocess.run(cmd, capture_output=True, text=True, check=True)
    return t0, out.stdout.strip().splitlines()


def compare_plain(args) -> dict:
    """Wall time from launch to an evaluation return of ``--stop-at``: pes_rl vs plain Python."""
    from pes_rl.config import PRESETS

    # Both sides evaluate on one grid, every EVAL_EVERY_STEPS env steps: finer than the preset's own
    # schedule, so that the time to 350 is not rounded up to a coarse grid.
    every, rest = divmod(EVAL_EVERY_STEPS, PRESETS["swimmer"]["num_pairs"] * 2 * PRESETS["swimmer"]["truncation_length"])
    assert every and not rest, "the grid must be a whole number of the preset's iterations"
    plain_script = os.path.join(os.path.dirname(os.path.abspath(__file__)), "plain_pes_swimmer.py")
    os.makedirs(args.out, exist_ok=True)
    seeds = []
    for seed in range(args.first_seed, args.first_seed + args.seeds):
        code = OURS.format(agent=args.agent, seed=seed, backend=args.backend, total=args.total_steps, every=every,
                           episodes=args.eval_episodes, stop=args.stop_at)
        t0, lines = _launch([sys.executable, "-c", code])
        ours = json.loads(lines[-1])
        entry = {"seed": seed, "ours_steps": ours["steps"], "ours_wall": ours["end"] - t0 if ours["steps"] else None}
        t0, lines = _launch([sys.executable, plain_script, "--seed", str(seed), "--total-steps", str(args.total_steps),
                             "--eval-every-steps", str(EVAL_EVERY_STEPS), "--eval-episodes", str(args.eval_episodes),
                             "--stop-at", str(args.stop_at)])
        end = time.time()
        rows = [json.loads(line) for line in lines]
        hit = [r for r in rows if r["eval_return_mean"] >= args.stop_at]
        entry["plain_steps"] = hit[0]["env_steps"] if hit else None
        entry["plain_wall"] = end - t0 if hit else None
        seeds.append(entry)
        print(json.dumps(entry), flush=True)
    summary = {"stop_at": args.stop_at, "agent": args.agent, "seeds": seeds, "eval_every_steps": EVAL_EVERY_STEPS}
    for who in ("ours", "plain"):
        summary[f"median_{who}_wall"] = median_or_none([s[f"{who}_wall"] for s in seeds])
        summary[f"median_{who}_steps"] = median_or_none([s[f"{who}_steps"] for s in seeds])
    if summary["median_ours_wall"] and summary["median_plain_wall"]:
        summary["wall_ratio_ours_over_plain"] = summary["median_ours_wall"] / summary["median_plain_wall"]
    with open(os.path.join(args.out, "plain_comparison.json"), "w") as f:
        json.dump(summary, f, indent=2)
    print(json.dumps({k: v for k, v in summary.items() if k != "seeds"}))
    return summary


def _plot(curves: list[dict], path: str) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(6, 4))
    for seed in sorted({c["seed"] for c in curves}):
        pts = [c for c in curves if c["seed"] == seed]
        ax.plot([c["env_steps"] for c in pts], [c["eval_return_mean"] for c in pts], label=f"seed {seed}")
    for th in THRESHOLDS:
        ax.axhline(th, color="gray", ls="--", lw=0.8)
    ax.set_xlabel("environment steps (every simulated step of every particle)")
    ax.set_ylabel("evaluation return (Swimmer-v5)")
    ax.legend(fontsize=7)
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)


if __name__ == "__main__":
    main()
