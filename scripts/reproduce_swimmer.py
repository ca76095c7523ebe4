"""PES vs full ES vs truncated ES vs NRES on Swimmer, with the paper's settings and with ours.

For each setting and method, trains ``--seeds`` seeds through ``pes_rl.train`` (gymnasium
evaluations of the deterministic policy), then writes ``OUT/curves.csv`` (every evaluation),
``OUT/summary.csv`` (median env steps to 325 and 350 per method) and ``OUT/swimmer.png``
(mean ± std of the evaluation return against env steps; a seed that stopped at 350 keeps its last
value) and ``OUT/variance.png`` (the variance diagnostic: mean ``||g_p||²`` of the per-particle
estimates by the window's index in its episode, relative to the first window).

    python scripts/reproduce_swimmer.py --seeds 5 --total-steps 300000 --out docs/swimmer_methods
    python scripts/reproduce_swimmer.py --smoke        # < 2 minutes on a CPU
"""

from __future__ import annotations

import argparse
import csv
import os
import sys
import warnings

import numpy as np

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from swimmer_sample_efficiency import THRESHOLDS, first_crossing, median_or_none  # noqa: E402

# The official PES code's Swimmer settings (N = 10 pairs, return-std scaling); NRES, absent
# there, takes PES's. "ours" is pes_rl's Swimmer preset for every method (ES: K = T).
SETTINGS = {
    "paper": {
        "es": dict(truncation_length=1000, sigma=0.3, lr=0.3),
        "tes": dict(truncation_length=100, sigma=0.1, lr=0.1),
        "pes": dict(truncation_length=100, sigma=0.3, lr=0.1),
        "nres": dict(truncation_length=100, sigma=0.3, lr=0.1),
    },
    "ours": {agent: {} for agent in ("es", "tes", "pes", "nres")},
}


def main(argv: list[str] | None = None) -> list[dict]:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seeds", type=int, default=5)
    parser.add_argument("--total-steps", type=int, default=300_000)
    parser.add_argument("--eval-every", type=int, default=2, help="iterations between evaluations")
    parser.add_argument("--eval-episodes", type=int, default=5)
    parser.add_argument("--backend", default="gymnasium", choices=["auto", "mjx", "gymnasium"])
    parser.add_argument("--settings", nargs="+", default=list(SETTINGS), choices=list(SETTINGS))
    parser.add_argument("--smoke", action="store_true", help="1 seed, 20k steps, 1-episode evaluations")
    parser.add_argument("--out", default="runs/swimmer_methods")
    args = parser.parse_args(argv)
    if args.smoke:
        args.seeds, args.total_steps, args.eval_episodes = 1, 20_000, 1

    import pes_rl

    os.makedirs(args.out, exist_ok=True)
    curves, summary, variance = [], [], {}
    for setting in args.settings:
        for agent, overrides in SETTINGS[setting].items():
            crossings = {th: [] for th in THRESHOLDS}
            for seed in range(args.seeds):
                result = pes_rl.train(env="swimmer", backend=args.backend, eval_backend="gymnasium", agent=agent,
                                      seed=seed, total_steps=args.total_steps, eval_every=args.eval_every,
                                      eval_episodes=args.eval_episodes, checkpoint_every=0, progress_bar=False,
                                      stop_at_eval_return=350.0, **overrides)
                rows = [r for r in result.metrics if r["eval_return_mean"] is not None]
                for r in rows:
                    curves.append({"setting": setting, "agent": agent, "seed": seed, "env_steps": r["env_steps"],
                                   "wall_time": r["wall_time"], "eval_return": r["eval_return_mean"]})
                for th in THRESHOLDS:
                    crossings[th].append(first_crossing(rows, th, "env_steps"))
                by_window = [r["grad_sq_norm_by_truncation"] for r in result.metrics if r.get("grad_sq_norm_by_truncation")]
                if by_window:
                    variance.setdefault((setting, agent), []).append(np.nanmean(np.array(by_window, float), axis=0))
            entry = {"setting": setting, "agent": agent, "seeds": args.seeds,
                     **{f"median_steps_to_{th:.0f}": median_or_none(crossings[th]) for th in THRESHOLDS},
                     **{f"reached_{th:.0f}": sum(c is not None for c in crossings[th]) for th in THRESHOLDS}}
            summary.append(entry)
            print(entry, flush=True)
    for name, rows in (("curves.csv", curves), ("summary.csv", summary)):
        with open(os.path.join(args.out, name), "w", newline="") as f:
            writer = csv.DictWriter(f, fieldnames=list(rows[0]))
            writer.writeheader()
            writer.writerows(rows)
    _plot(curves, args.settings, args.total_steps, os.path.join(args.out, "swimmer.png"))
    _plot_variance(variance, os.path.join(args.out, "variance.png"))
    return summary


def _plot_variance(variance: dict, path: str) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(6, 4))
    for (setting, agent), per_seed in sorted(variance.items()):
        with warnings.catch_warnings():  # buckets no particle reached are NaN
            warnings.simplefilter("ignore", RuntimeWarning)
            curve = np.nanmean(np.array(per_seed), axis=0)
        windows = np.flatnonzero(np.isfinite(curve)) + 1
        if agent != "es" and len(windows) > 1:
            ax.semilogy(windows, curve[windows - 1] / curve[windows[0] - 1], marker="o", label=f"{agent.upper()} ({setting})")
    ax.set_xlabel("window index within the episode (last bucket: all later)")
    ax.set_ylabel("E||g_p||² relative to the first window")
    ax.set_title("per-particle gradient-estimate variance, Swimmer")
    ax.legend(fontsize=7)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def _plot(curves: list[dict], settings: list[str], total_steps: int, path: str) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    grid = np.linspace(0, total_steps, 61)
    fig, axes = plt.subplots(1, len(settings), figsize=(6 * len(settings), 4), squeeze=False)
    for ax, setting in zip(axes[0], settings):
        for agent in ("pes", "es", "tes", "nres"):
            runs = []
            for seed in sorted({c["seed"] for c in curves if c["setting"] == setting and c["agent"] == agent}):
                pts = [c for c in curves if c["setting"] == setting and c["agent"] == agent and c["seed"] == seed]
                if pts:
                    x = [p["env_steps"] for p in pts]
                    y = [p["eval_return"] for p in pts]
                    runs.append(np.interp(grid, x, y, left=np.nan, right=y[-1]))
            if runs:
                runs = np.array(runs)
                with warnings.catch_warnings():  # grid points before a seed's first evaluation are NaN
                    warnings.simplefilter("ignore", RuntimeWarning)
                    mean, std = np.nanmean(runs, 0), np.nanstd(runs, 0)
                ax.plot(grid, mean, label=agent.upper())
                ax.fill_between(grid, mean - std, mean + std, alpha=0.2)
        for th in THRESHOLDS:
            ax.axhline(th, color="gray", ls="--", lw=0.8)
        ax.set_title(f"Swimmer-v5, {setting} settings")
        ax.set_xlabel("environment steps")
        ax.set_ylabel("evaluation return (mean ± std over seeds)")
        ax.legend()
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


if __name__ == "__main__":
    main()
