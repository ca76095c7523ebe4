"""Every task, every agent, held-out seeds: env steps to each task's threshold and the final return.

For each task and agent, trains each seed with that task's preset for the agent
(``pes_rl.config.preset``), evaluating the deterministic policy's *true* return on
gymnasium (``-v5``) about every ``--eval-every-steps`` env steps, and writes to ``--out``.
MuJoCo Playground's DM Control tasks (``CheetahRun``, ...; the ``playground`` extra) train and
evaluate on mjx (``--mjx-impl`` chooses MJX's implementation); they have no threshold, so
their rows report returns at the budget:

* ``curves.csv``: one row per evaluation (task, agent, seed, iteration, env_steps, wall_time,
  eval_return_mean, eval_return_std); rows are appended as each run ends, and runs already
  in the file are skipped, so an interrupted benchmark continues where it stopped;
* ``initial.csv``: each run's initial policy θ₀ scored on that run's own evaluation episodes
  (from its run dir's ``config.json``), where its curve starts;
* ``summary.json``: per task and agent, each seed's steps to the threshold, final and initial
  return, and their medians (a seed that never reached the threshold counts as infinitely slow); for
  Swimmer also the seeds reaching 350 and the median steps to it (``SECOND_THRESHOLDS``);
* ``TASK.png``: median evaluation return over seeds against env steps, with the min-max band.

Each run trains in its own run dir, ``--run-dirs/TASK-AGENT-seedS-BUDGET``, with a checkpoint at
every evaluation: a run killed midway (a 2e7-step Ant run takes hours) resumes there on the next
call, and a finished one is read back from its ``progress.csv`` without training. Its policy stays
there for ``pes-rl record``.

    python scripts/benchmark_tasks.py --tasks hopper halfcheetah --agents pes,nres,ars,es --seeds 5 6 7 8 9

``--jobs J`` trains J runs at once, each in its own process stepping its batch on
(cores / J) threads (``PES_RL_THREADS``); rows still reach ``curves.csv`` one whole run at a time.

Env steps count every simulated step of every particle (idle steps after an episode ended
inside a window are not simulated and not counted). Budgets default to the issue's targets
(:data:`BUDGETS`); ``--total-steps`` overrides them all. ``--preset gpu`` trains with the large-population
presets (``pes_rl.config.GPU_PRESETS``) on the CPU's threaded path, where their sample efficiency is
tuned, and budgets each task at its gpu preset's ``total_steps``:

    python scripts/benchmark_tasks.py --preset gpu --tasks halfcheetah --agents pes --out runs/tasks_gpu
"""

from __future__ import annotations

import argparse
import concurrent.futures
import csv
import json
import math
import multiprocessing
import os
import time

import numpy as np

from pes_rl.curves import SECOND_THRESHOLDS, THRESHOLDS, first_crossing, median_or_none
from pes_rl.envs import PLAYGROUND_NAMES

# env steps each task gets by default (the budgets the task table is measured at)
BUDGETS = {
    "swimmer": 200_000,
    "hopper": 1_500_000,
    "halfcheetah": 1_200_000,
    "walker2d": 20_000_000,
    "ant": 20_000_000,
    "humanoid": 20_000_000,
    "inverted_pendulum": 100_000,
    "inverted_double_pendulum": 100_000,
    "reacher": 500_000,
    "Pendulum-v1": 3_000_000,
    # MuJoCo Playground's DM Control tasks (mjx only; returns in [0, 1000])
    "CartpoleSwingup": 5_000_000,
    "ReacherEasy": 5_000_000,
    "SwimmerSwimmer6": 3_000_000,
    "CheetahRun": 3_000_000,
    "WalkerWalk": 3_000_000,
    "HopperHop": 3_000_000,
}
COLUMNS = ("task", "agent", "seed", "iteration", "env_steps", "wall_time", "eval_return_mean", "eval_return_std")


def task_config(task: str, agent: str, seed: int, total_steps: int, eval_every_steps: int, eval_episodes: int,
                backend: str, mjx_impl: str | None = None, preset: str = "default"):
    """One run's config: the task's ``preset`` (default or gpu) for the agent; evaluations of the
    true return on gymnasium, or on mjx for a Playground task (which trains there too), every
    ~eval_every_steps (at least every iteration)."""
    import pes_rl
    from pes_rl.envs import PLAYGROUND_NAMES

    playground = task in PLAYGROUND_NAMES
    config = pes_rl.make_config(env=task, agent=agent, preset=preset, seed=seed, total_steps=total_steps,
                                backend="mjx" if playground else backend,
                                eval_backend=None if playground else "gymnasium", mjx_impl=mjx_impl,
                                eval_episodes=eval_episodes, checkpoint_every=0, progress_bar=False)
    config.eval_every = max(1, round(eval_every_steps / config.steps_per_iteration))
    return config


def budget(task: str, preset: str = "default") -> int:
    """A task's default env steps: :data:`BUDGETS`, or its gpu preset's own ``total_steps``."""
    if preset == "gpu":
        from pes_rl.config import GPU_PRESETS

        return GPU_PRESETS[task]["total_steps"]
    return BUDGETS[task]


def run_dir_for(run_dirs: str, task: str, agent: str, seed: int, total_steps: int, preset: str = "default") -> str:
    """Where one run trains and keeps its checkpoints."""
    agent = agent if preset == "default" else f"{agent}-{preset}"
    return os.path.join(run_dirs, f"{task}-{agent}-seed{seed}-{total_steps}")


def evaluation_rows(run_dir: str) -> list[dict]:
    """The evaluated rows of a run dir's ``progress.csv`` (a resumed run's rows included), as
    ``iteration, env_steps, wall_time, eval_return_mean, eval_return_std``."""
    path = os.path.join(run_dir, "progress.csv")
    if not os.path.exists(path):
        return []
    with open(path, newline="") as f:
        return [{"iteration": int(r["iteration"]), "env_steps": int(r["env_steps"]), "wall_time": float(r["wall_time"]),
                 "eval_return_mean": float(r["eval_return_mean"]), "eval_return_std": float(r["eval_return_std"])}
                for r in csv.DictReader(f) if r["eval_return_mean"]]


def run_one(task: str, agent: str, seed: int, total_steps: int, eval_every_steps: int, eval_episodes: int,
            backend: str, mjx_impl: str | None = None, run_dir: str | None = None, preset: str = "default") -> list[dict]:
    """Train one seed in ``run_dir`` (resuming it from its last checkpoint, or only reading it
    back when it already ran its budget); the evaluation rows of its learning curve."""
    import pes_rl
    from pes_rl import checkpoint

    config = task_config(task, agent, seed, total_steps, eval_every_steps, eval_episodes, backend, mjx_impl, preset)
    if run_dir is None:
        metrics = [r for r in pes_rl.train(config).metrics if r["eval_return_mean"] is not None]
    else:
        config.run_dir, config.checkpoint_every = run_dir, config.eval_every
        metrics = evaluation_rows(run_dir)
        if not metrics or metrics[-1]["env_steps"] < total_steps:
            resume = os.path.isdir(run_dir) and checkpoint.latest_step(run_dir) is not None
            # a dir without a checkpoint was killed before its first evaluation: start it again
            # (pes-rl replaces only a run dir it created)
            pes_rl.train(config, resume=resume, overwrite=os.path.isdir(run_dir) and not resume)
            metrics = evaluation_rows(run_dir)
    return [{"task": task, "agent": agent, "seed": seed, **{k: r[k] for k in COLUMNS[3:]}} for r in metrics]


def _run_job(job: tuple) -> tuple:
    """One queued run in a worker process: (task, agent, seed, rows, wall seconds)."""
    task, agent, seed, total_steps, eval_every_steps, eval_episodes, backend, mjx_impl, threads, run_dir, preset = job
    if threads is not None:  # read when the batch is built, after this
        os.environ["PES_RL_THREADS"] = str(threads)
    t0 = time.perf_counter()
    rows = run_one(task, agent, seed, total_steps, eval_every_steps, eval_episodes, backend, mjx_impl, run_dir, preset)
    return task, agent, seed, rows, time.perf_counter() - t0


def run_jobs(jobs: list[tuple], workers: int):
    """Yield each job's result as it finishes: in this process when ``workers`` is 1, else in a
    pool of ``workers`` fresh processes (spawned, one run each, so no run inherits another's state)."""
    if workers == 1:
        yield from map(_run_job, jobs)
        return
    context = multiprocessing.get_context("spawn")
    with concurrent.futures.ProcessPoolExecutor(workers, mp_context=context, max_tasks_per_child=1) as pool:
        for future in concurrent.futures.as_completed([pool.submit(_run_job, job) for job in jobs]):
            yield future.result()


def read_curves(path: str) -> list[dict]:
    if not os.path.exists(path):
        return []
    with open(path, newline="") as f:
        rows = list(csv.DictReader(f))
    for r in rows:
        r["seed"], r["iteration"], r["env_steps"] = int(r["seed"]), int(r["iteration"]), int(r["env_steps"])
        for k in ("wall_time", "eval_return_mean", "eval_return_std"):
            r[k] = float(r[k])
    return rows


def append_curves(path: str, rows: list[dict]) -> None:
    new = not os.path.exists(path)
    with open(path, "a", newline="") as f:
        writer = csv.DictWriter(f, fieldnames=COLUMNS)
        if new:
            writer.writeheader()
        writer.writerows(rows)


def run_config(run_dirs: str, task: str, agent: str, seed: int, final_steps: int, preset: str = "default"):
    """The Config (its ``config.json``) of the run dir that produced a curve ending at
    ``final_steps``: the one whose budget its last iteration crossed; None when none is left."""
    from pes_rl.config import Config, load_config_file

    prefix = os.path.basename(run_dir_for(run_dirs, task, agent, seed, 0, preset))[:-1]  # "...-seedS-"
    for name in sorted(os.listdir(run_dirs)) if os.path.isdir(run_dirs) else []:
        path = os.path.join(run_dirs, name, "config.json")
        if name.startswith(prefix) and name[len(prefix):].isdigit() and os.path.exists(path):
            config = Config.from_dict(load_config_file(path))
            if config.total_steps <= final_steps < config.total_steps + config.steps_per_iteration:
                return config
    return None


def read_initial(path: str) -> dict[tuple, float]:
    """``initial.csv`` as {(task, agent, seed): initial_return}; empty when there is none yet."""
    if not os.path.exists(path):
        return {}
    with open(path, newline="") as f:
        return {(r["task"], r["agent"], int(r["seed"])): float(r["initial_return"]) for r in csv.DictReader(f)}


def add_initial_returns(path: str, curves: list[dict], run_dirs: str, preset: str = "default") -> dict[tuple, float]:
    """Each run's initial policy θ₀ scored on the run's own evaluation episodes
    (``pes_rl.trainer.initial_policy_returns``, configured from its run dir's ``config.json``):
    where its curve starts, which a task without a threshold needs to tell learning from luck
    (a Playground seed's evaluation targets alone move its return by hundreds). Kept in ``path``
    (``initial.csv``: task, agent, seed, initial_return); runs whose dir is gone stay out."""
    from pes_rl.trainer import initial_policy_returns

    known = read_initial(path)
    finals = {(r["task"], r["agent"], r["seed"]): r["env_steps"] for r in curves}  # the last row wins
    groups: dict[str, list] = {}  # runs whose configs differ only in seed and run dir share one evaluator
    for (task, agent, seed), final_steps in sorted(finals.items()):
        config = None if (task, agent, seed) in known else run_config(run_dirs, task, agent, seed, final_steps, preset)
        if config is not None:
            shared = {k: v for k, v in config.to_dict().items() if k not in ("seed", "run_dir")}
            groups.setdefault(json.dumps(shared, sort_keys=True), []).append(((task, agent, seed), config))
    for members in groups.values():
        returns = initial_policy_returns(members[0][1], [config.seed for _, config in members])
        new = {key: float(np.mean(returns[config.seed])) for key, config in members}
        write_header = not os.path.exists(path)
        with open(path, "a", newline="") as f:
            writer = csv.writer(f)
            if write_header:
                writer.writerow(["task", "agent", "seed", "initial_return"])
            writer.writerows([*key, value] for key, value in new.items())
        known.update(new)
    return known


def summarise(curves: list[dict], initial: dict[tuple, float] | None = None) -> dict:
    """Per task and agent: each seed's steps to the threshold, final return and (where known) its
    initial policy's return, and the medians."""
    initial = initial or {}
    summary: dict = {}
    for task, agent in sorted({(r["task"], r["agent"]) for r in curves}):
        threshold = THRESHOLDS.get(task)
        seeds = []
        for seed in sorted({r["seed"] for r in curves if (r["task"], r["agent"]) == (task, agent)}):
            rows = [r for r in curves if (r["task"], r["agent"], r["seed"]) == (task, agent, seed)]
            seeds.append({"seed": seed, "steps_to_threshold": first_crossing(rows, threshold) if threshold is not None else None,
                          "final_return": rows[-1]["eval_return_mean"], "best_return": max(r["eval_return_mean"] for r in rows),
                          "initial_return": initial.get((task, agent, seed)),
                          "env_steps": rows[-1]["env_steps"], "wall_time": rows[-1]["wall_time"],
                          **{f"steps_to_{t:g}": first_crossing(rows, t) for t in SECOND_THRESHOLDS.get(task, ())}})
        entry = summary.setdefault(task, {})[agent] = {
            "threshold": threshold,
            "seeds": seeds,
            "reached": sum(s["steps_to_threshold"] is not None for s in seeds),
            "median_steps_to_threshold": median_or_none([s["steps_to_threshold"] for s in seeds]),
            "median_final_return": float(np.median([s["final_return"] for s in seeds])),
            # over the seeds whose initial return is known (None when none is)
            "median_initial_return": (float(np.median(known)) if (known := [s["initial_return"] for s in seeds
                                                                            if s["initial_return"] is not None]) else None),
        }
        for t in SECOND_THRESHOLDS.get(task, ()):
            steps = [s[f"steps_to_{t:g}"] for s in seeds]
            entry[f"reached_{t:g}"] = sum(x is not None for x in steps)
            entry[f"median_steps_to_{t:g}"] = median_or_none(steps)
    return summary


def plot_task(curves: list[dict], task: str, path: str, initial: dict[tuple, float] | None = None) -> None:
    """Median evaluation return over seeds against env steps per agent, with the min-max band and,
    dotted, the median return of its seeds' initial policies where known."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(6.5, 4))
    for agent in sorted({r["agent"] for r in curves if r["task"] == task}):
        runs = [[r for r in curves if (r["task"], r["agent"], r["seed"]) == (task, agent, s)]
                for s in sorted({r["seed"] for r in curves if (r["task"], r["agent"]) == (task, agent)})]
        end = max(run[-1]["env_steps"] for run in runs)
        grid = np.linspace(0, end, 200)
        # each seed's curve held at its last evaluation between evaluations (a step function)
        values = np.array([[run[max(0, np.searchsorted([r["env_steps"] for r in run], x, side="right") - 1)]
                            ["eval_return_mean"] for x in grid] for run in runs])
        line, = ax.plot(grid, np.median(values, axis=0), label=f"{agent} ({len(runs)} seeds)")
        starts = [(initial or {}).get((task, agent, run[0]["seed"])) for run in runs]
        if None not in starts:
            ax.axhline(float(np.median(starts)), color=line.get_color(), ls=":", lw=1,
                       label=f"{agent}: initial policy (median)")
        ax.fill_between(grid, values.min(axis=0), values.max(axis=0), color=line.get_color(), alpha=0.15)
    if task in THRESHOLDS:
        ax.axhline(THRESHOLDS[task], color="gray", ls="--", lw=0.8)
    ax.set_title(task)
    ax.set_xlabel("environment steps (every simulated step of every particle)")
    source = "Playground" if task in PLAYGROUND_NAMES else "gymnasium -v5"
    ax.set_ylabel(f"evaluation return\n(true reward, {source})")
    ax.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def main(argv: list[str] | None = None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--tasks", nargs="+", default=["hopper", "halfcheetah"], help=f"any of {', '.join(BUDGETS)}")
    parser.add_argument("--agents", default="pes,nres,ars,es", help="comma-separated: pes, nres, ars, es, tes")
    parser.add_argument("--seeds", type=int, nargs="+", default=[5, 6, 7, 8, 9],
                        help="held-out seeds (presets are tuned on seeds 0-4)")
    parser.add_argument("--total-steps", type=int, help="env steps per run for every task (default: BUDGETS)")
    parser.add_argument("--eval-every-steps", type=int, default=20_000)
    parser.add_argument("--eval-episodes", type=int, default=5)
    parser.add_argument("--backend", default="gymnasium", choices=["gymnasium", "mjx", "auto"],
                        help="for the tasks of both backends (Playground's run on mjx)")
    parser.add_argument("--mjx-impl", choices=["jax", "warp"], help="MJX's implementation (default: the env's)")
    parser.add_argument("--preset", default="default", choices=["default", "gpu"],
                        help="gpu: the large-population presets (pes_rl.config.GPU_PRESETS), budgeted at their "
                             "total_steps")
    parser.add_argument("--jobs", type=int, default=1, help="runs trained at once, each in its own process")
    parser.add_argument("--out", default="runs/benchmark_tasks")
    parser.add_argument("--run-dirs", default="runs/benchmark_runs",
                        help="where each run trains and checkpoints (TASK-AGENT-seedS-BUDGET); an interrupted run "
                             "resumes from it")
    args = parser.parse_args(argv)
    cores = len(os.sched_getaffinity(0))
    if not 1 <= args.jobs <= cores:
        parser.error(f"--jobs must be between 1 and the {cores} cores this process may use; got {args.jobs}")
    agents = [a for a in args.agents.split(",") if a]
    from pes_rl.config import GPU_PRESETS

    allowed = list(BUDGETS) if args.preset == "default" else list(GPU_PRESETS)
    unknown = [t for t in args.tasks if t not in allowed]
    if unknown:
        parser.error(f"--tasks must be among {', '.join(allowed)}{' (the gpu presets)' if args.preset == 'gpu' else ''}; "
                     f"got {', '.join(unknown)}")
    os.makedirs(args.out, exist_ok=True)
    path = os.path.join(args.out, "curves.csv")
    done = {(r["task"], r["agent"], r["seed"]) for r in read_curves(path)}
    # several at once share the cores; one at a time keeps the caller's PES_RL_THREADS (default: every core)
    threads = max(1, cores // args.jobs) if args.jobs > 1 else None
    jobs = [(task, agent, seed, args.total_steps or budget(task, args.preset), args.eval_every_steps, args.eval_episodes,
             args.backend, args.mjx_impl, threads,
             run_dir_for(args.run_dirs, task, agent, seed, args.total_steps or budget(task, args.preset), args.preset),
             args.preset)
            for task in args.tasks for agent in agents for seed in args.seeds if (task, agent, seed) not in done]
    for task, agent, seed, rows, wall in run_jobs(jobs, args.jobs):
        append_curves(path, rows)
        print(json.dumps({"task": task, "agent": agent, "seed": seed, "final": rows[-1]["eval_return_mean"],
                          "best": max(r["eval_return_mean"] for r in rows), "env_steps": rows[-1]["env_steps"],
                          "steps_to_threshold": first_crossing(rows, THRESHOLDS.get(task, math.inf)),
                          "wall_s": round(wall, 1)}), flush=True)
    curves = read_curves(path)
    initial = add_initial_returns(os.path.join(args.out, "initial.csv"), curves, args.run_dirs, args.preset)
    summary = summarise(curves, initial)
    with open(os.path.join(args.out, "summary.json"), "w") as f:
        json.dump(summary, f, indent=2)
    for task in sorted({r["task"] for r in curves}):
        plot_task(curves, task, os.path.join(args.out, f"{task}.png"), initial)
    for task, by_agent in summary.items():
        for agent, s in by_agent.items():
            start = s["median_initial_return"]
            print(f"{task:>26} {agent:>5}: reached {s['reached']}/{len(s['seeds'])}, median steps to "
                  f"{s['threshold']}: {s['median_steps_to_threshold']}, median final {s['median_final_return']:.1f}"
                  + (f" (initial policy {start:.1f})" if start is not None else ""))
    return summary


if __name__ == "__main__":
    main()
