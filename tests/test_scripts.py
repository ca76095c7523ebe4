"""The reproduction and measurement scripts run (smoke mode) and say what they should."""

import json
import math
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
from script_modules import load_script

SCRIPTS = Path(__file__).resolve().parents[1] / "scripts"


def test_reproduce_influence_smoke(tmp_path):
    out = subprocess.run([sys.executable, str(SCRIPTS / "reproduce_influence.py"), "--smoke", "--out", str(tmp_path)],
                         capture_output=True, text=True, timeout=300)
    assert out.returncode == 0, out.stderr
    summary = json.loads((tmp_path / "summary.json").read_text())
    optimum = summary["optimum_steady_state"]
    assert abs(optimum + 1 / 6) < 1e-5
    final = summary["final_theta"]
    # PES and NRES head for the optimum from θ0 = 0.5; truncated ES and TBPTT(K=1) move away from it
    assert abs(final["PES"] - optimum) < 0.1 and abs(final["NRES"] - optimum) < 0.1
    assert final["TES"] > 0.5 and final["TBPTT K=1"] > 0.5
    assert (tmp_path / "influence.png").stat().st_size > 0 and (tmp_path / "influence.csv").exists()


def test_swimmer_sample_efficiency_script(tmp_path):
    out = subprocess.run([sys.executable, str(SCRIPTS / "swimmer_sample_efficiency.py"), "--seeds", "1", "--total-steps",
                          "8000", "--eval-every", "2", "--eval-episodes", "1", "--out", str(tmp_path)],
                         capture_output=True, text=True, timeout=300)
    assert out.returncode == 0, out.stderr
    summary = json.loads((tmp_path / "summary.json").read_text())
    assert summary["seeds"][0]["seed"] == 0 and "median_steps_to_325" in summary
    assert (tmp_path / "curves.csv").read_text().startswith("seed,iteration,env_steps")
    assert (tmp_path / "returns.png").stat().st_size > 0


def test_wall_time_comparison_evaluates_both_loops_on_one_grid(tmp_path):
    # A threshold every evaluation passes: each side stops at its first evaluation, which must fall
    # at the same env step (20k), although the preset itself evaluates less often.
    out = subprocess.run([sys.executable, str(SCRIPTS / "swimmer_sample_efficiency.py"), "--compare-plain", "--seeds", "1",
                          "--first-seed", "3", "--total-steps", "60000", "--eval-episodes", "1", "--stop-at=-1e8",
                          "--out", str(tmp_path)], capture_output=True, text=True, timeout=300)
    assert out.returncode == 0, out.stderr
    summary = json.loads((tmp_path / "plain_comparison.json").read_text())
    seed = summary["seeds"][0]
    assert seed["ours_steps"] == seed["plain_steps"] == summary["eval_every_steps"] == 20_000
    assert seed["ours_wall"] > 0 and seed["plain_wall"] > 0


def test_evaluation_share_runs_the_preset_with_and_without_evaluations():
    from pes_rl.config import PRESETS

    module = load_script("evaluation_share")
    swimmer = PRESETS["swimmer"]
    # one evaluation on the preset's schedule, then the final one an iteration later
    steps = (swimmer["eval_every"] + 1) * 2 * swimmer["num_pairs"] * swimmer["truncation_length"]
    [summary] = module.main(["--env", "swimmer", "--total-steps", str(steps), "--repeats", "1"])
    assert summary["env_steps"] == steps and summary["evaluations"] == 2
    assert summary["median_wall_with_evaluations"] > 0 and summary["median_wall_without"] > 0
    assert summary["evaluation_share"] < 1


def test_reproduce_swimmer_smoke(tmp_path):
    out = subprocess.run([sys.executable, str(SCRIPTS / "reproduce_swimmer.py"), "--smoke", "--settings", "ours",
                          "--total-steps", "6000", "--out", str(tmp_path)], capture_output=True, text=True, timeout=300)
    assert out.returncode == 0, out.stderr
    rows = (tmp_path / "summary.csv").read_text().strip().splitlines()
    assert [r.split(",")[1] for r in rows[1:]] == ["es", "tes", "pes", "nres"]
    assert (tmp_path / "swimmer.png").stat().st_size > 0


def test_benchmark_tasks_smoke(tmp_path):
    cmd = [sys.executable, str(SCRIPTS / "benchmark_tasks.py"), "--tasks", "inverted_pendulum", "--agents", "pes",
           "--seeds", "5", "6", "--total-steps", "16000", "--eval-every-steps", "8000", "--eval-episodes", "1",
           "--out", str(tmp_path), "--run-dirs", str(tmp_path / "runs")]
    jobs = ["--jobs", "2"] if len(os.sched_getaffinity(0)) >= 2 else []  # two seeds at once, in worker processes
    out = subprocess.run(cmd + jobs, capture_output=True, text=True, timeout=300)
    assert out.returncode == 0, out.stderr
    assert sorted(json.loads(line)["seed"] for line in out.stdout.splitlines() if line.startswith("{")) == [5, 6]
    summary = json.loads((tmp_path / "summary.json").read_text())
    entry = summary["inverted_pendulum"]["pes"]
    assert [s["seed"] for s in entry["seeds"]] == [5, 6] and entry["threshold"] == 1000.0
    assert all(s["env_steps"] >= 16000 for s in entry["seeds"])  # the preset's iteration: 16 whole episodes
    rows = (tmp_path / "curves.csv").read_text().splitlines()
    assert rows[0] == "task,agent,seed,iteration,env_steps,wall_time,eval_return_mean,eval_return_std"
    assert (tmp_path / "inverted_pendulum.png").stat().st_size > 0
    # where each curve starts: the seed's initial policy on the seed's own evaluation episodes
    from pes_rl.trainer import initial_policy_returns

    config = _benchmark_module().task_config("inverted_pendulum", "pes", 5, 16000, 8000, 1, "gymnasium")
    expected = {seed: float(np.mean(r)) for seed, r in initial_policy_returns(config, [5, 6]).items()}
    assert {s["seed"]: s["initial_return"] for s in entry["seeds"]} == expected
    initial = (tmp_path / "initial.csv").read_text()
    assert initial.splitlines()[0] == "task,agent,seed,initial_return" and len(initial.splitlines()) == 3
    # a second call finds every run in curves.csv and initial.csv and trains or scores nothing more
    again = subprocess.run(cmd, capture_output=True, text=True, timeout=300)
    assert again.returncode == 0 and (tmp_path / "curves.csv").read_text().splitlines() == rows
    assert (tmp_path / "initial.csv").read_text() == initial


def _benchmark_module():
    return load_script("benchmark_tasks")


def test_benchmark_run_resumes_from_its_run_dir(tmp_path):
    """A benchmark run stopped partway (here: its budget reached at 20k of 40k env steps) resumes
    from its run dir's checkpoint to exactly the curve of a run that was never stopped, and a
    finished run is read back without training."""
    bench = _benchmark_module()
    args = ("inverted_pendulum", "pes", 5)
    part = bench.run_one(*args, 20000, 8000, 1, "gymnasium", run_dir=str(tmp_path / "run"))
    assert part[-1]["env_steps"] < 40000
    resumed = bench.run_one(*args, 40000, 8000, 1, "gymnasium", run_dir=str(tmp_path / "run"))
    whole = bench.run_one(*args, 40000, 8000, 1, "gymnasium", run_dir=str(tmp_path / "whole"))
    assert resumed[:len(part)] == part and len(resumed) > len(part)
    key = [(r["iteration"], r["env_steps"], r["eval_return_mean"]) for r in resumed]
    assert key == [(r["iteration"], r["env_steps"], r["eval_return_mean"]) for r in whole]
    progress = tmp_path / "run" / "progress.csv"
    before = progress.stat().st_mtime_ns
    assert bench.run_one(*args, 40000, 8000, 1, "gymnasium", run_dir=str(tmp_path / "run")) == resumed
    assert progress.stat().st_mtime_ns == before


def test_benchmark_tasks_runs_the_gpu_presets(tmp_path):
    """``--preset gpu``: each run takes the task's large-population preset, is budgeted at that
    preset's total_steps and trains in a run dir of its own; a task without one is refused."""
    from pes_rl.config import GPU_PRESETS

    bench = _benchmark_module()
    config = bench.task_config("swimmer", "pes", 5, 10_000_000, 20_000, 5, "gymnasium", preset="gpu")
    assert (config.num_pairs, config.truncation_length) == (GPU_PRESETS["swimmer"]["num_pairs"],
                                                             GPU_PRESETS["swimmer"]["truncation_length"])
    assert config.backend == "gymnasium" and config.eval_every == 1  # an iteration is over 20k env steps
    assert bench.task_config("swimmer", "pes", 5, 200_000, 20_000, 5, "gymnasium").num_pairs == 10
    assert bench.budget("swimmer", "gpu") == GPU_PRESETS["swimmer"]["total_steps"] != bench.budget("swimmer")
    assert bench.run_dir_for("d", "swimmer", "pes", 5, 7, "gpu") == os.path.join("d", "swimmer-pes-gpu-seed5-7")
    assert bench.run_dir_for("d", "swimmer", "pes", 5, 7) == os.path.join("d", "swimmer-pes-seed5-7")
    out = subprocess.run([sys.executable, str(SCRIPTS / "benchmark_tasks.py"), "--preset", "gpu", "--tasks", "reacher",
                          "--out", str(tmp_path)], capture_output=True, text=True, timeout=120)
    assert out.returncode == 2
    assert out.stderr.strip().splitlines()[-1].startswith("benchmark_tasks.py: error: --tasks must be among swimmer")
    assert "(the gpu presets); got reacher" in out.stderr


def test_benchmark_summary_counts_swimmers_steps_to_350():
    """Swimmer's summary also gives the seeds reaching 350 and the median steps to it (a seed
    that never did counts as slowest)."""
    bench = _benchmark_module()
    returns = {5: [100, 330, 360], 6: [200, 340, 345], 7: [300, 355, 356]}  # evaluations at 4k, 8k, 12k steps
    curves = [{"task": "swimmer", "agent": "pes", "seed": seed, "iteration": i, "env_steps": 4000 * (i + 1),
               "wall_time": 1.0, "eval_return_mean": float(r), "eval_return_std": 0.0}
              for seed, rs in returns.items() for i, r in enumerate(rs)]
    entry = bench.summarise(curves)["swimmer"]["pes"]
    assert [s["steps_to_350"] for s in entry["seeds"]] == [12000, None, 8000]
    assert entry["reached_350"] == 2 and entry["median_steps_to_350"] == 12000
    assert entry["reached"] == 3 and entry["median_steps_to_threshold"] == 8000  # 325


def test_plain_ars_smoke():
    out = subprocess.run([sys.executable, str(SCRIPTS / "plain_ars.py"), "--env", "Hopper-v5", "--total-steps", "3000",
                          "--eval-every-steps", "1000", "--eval-episodes", "1", "--shift", "1"],
                         capture_output=True, text=True, timeout=300)
    assert out.returncode == 0, out.stderr
    rows = [json.loads(line) for line in out.stdout.splitlines()]
    assert rows[0]["env_steps"] == 0 and rows[-1]["env_steps"] >= 3000


def test_gpu_report_tables_and_crossover(tmp_path):
    """scripts/gpu_report.py on the H200 run's own results (docs/gpu/) plus a host C MuJoCo bench line:
    each mjx point's seconds per step and crossover, the wall time, and the steps that ran out of time."""
    import json

    results = (Path(__file__).resolve().parents[1] / "docs" / "gpu" / "h200_2026-11-26_results.jsonl").read_text()
    cpu = {"env": "swimmer", "cpu": {"threads": 16, "mujoco_limit_steps_per_s": 4e5,
                                     "gymnasium": {"num_envs": 2048, "pes_steps_per_s": 320_000.0}}}
    # a later run's wall line, which also times from the train call and from launch
    wall = {"seed": 11, "steps_to_350": 1843200, "wall_to_350": 13.6, "call_to_350": 23.0, "launch_to_350": 23.7}
    (tmp_path / "results.jsonl").write_text(results + json.dumps({"step": "bench_cpu", "rc": 0, "seconds": 30.0,
                                                                  "stdout": json.dumps(cpu) + "\n"}) + "\n"
                                            + json.dumps({"step": "wall_to_350_seed11", "rc": 0, "seconds": 25.0,
                                                          "stdout": json.dumps(wall) + "\n"}) + "\n")
    out = subprocess.run([sys.executable, str(SCRIPTS / "gpu_report.py"), str(tmp_path)], capture_output=True,
                         text=True, timeout=120)
    assert out.returncode == 0, out.stderr
    report = json.loads((tmp_path / "report.json").read_text())
    (hopper,) = report["mjx"]
    assert hopper["env"] == "hopper" and hopper["num_envs"] == 16384
    assert abs(hopper["seconds_per_step"] - 16384 / hopper["pes_steps_per_s"]) < 1e-12
    assert hopper["crossover_particles"] == math.ceil(16 * 20_000 * hopper["seconds_per_step"])
    assert report["wall_to_350"] == [
        {"seed": 10, "steps": 2252800, "wall_s": 86.33631404300002, "call_s": None, "launch_s": None,
         "step": "wall_to_350_seed10"},
        {"seed": 11, "steps": 1843200, "wall_s": 13.6, "call_s": 23.0, "launch_s": 23.7, "step": "wall_to_350_seed11"}]
    assert [f["step"] for f in report["failed"]] == ["bench_swimmer_1024", "bench_swimmer_8192", "bench_swimmer_32768"]
    text = (tmp_path / "report.md").read_text()
    assert "| hopper | 16,384 | 892,159 | 597,282 | 0.67 |" in text and "(time limit, exit 124" in text
    assert "seed 11 (wall_to_350_seed11): 13.6 s from the training loop's start (1,843,200 env steps); " \
           "from the train call 23.0 s; from launch 23.7 s" in text


def test_gpu_figures_script_smoke_on_the_cpu(tmp_path):
    """scripts/gpu_figures.sh end to end on the CPU with its MJX steps switched off: the host's C
    MuJoCo bench runs under its time limit, every step is logged with its exit code, and the report
    names the host's rate (the MJX steps' own smoke tests are the latency probe's and the bench's)."""
    import json
    import os

    env = dict(os.environ, PY=f"{sys.executable}", OUT=str(tmp_path), PARITY="", SIZES="", WALL_SEEDS="",
               HOPPER_PAIRS="", TASKS="", LATENCY_ENVS="", BENCH_CPU_PAIRS="2", CPU_LIMIT="120")
    out = subprocess.run(["bash", str(SCRIPTS / "gpu_figures.sh")], capture_output=True, text=True, timeout=300,
                         env=env, cwd=SCRIPTS.parent)
    assert out.returncode == 0, out.stderr
    (step,) = [json.loads(line) for line in (tmp_path / "results.jsonl").read_text().splitlines()]
    assert step["step"] == "bench_cpu" and step["rc"] == 0, (tmp_path / "stderr.log").read_text()[-2000:]
    report = json.loads((tmp_path / "report.json").read_text())
    assert report["cpu"]["num_envs"] == 4 and report["cpu"]["pes_steps_per_s"] > 0 and not report["failed"]
    assert "Host CPU path:" in (tmp_path / "report.md").read_text()


def test_reproduce_lr_schedule_smoke(tmp_path):
    """The LR-schedule experiment end to end on a small grid: the surface, four trajectories from the
    same start, each method's exact meta-loss, and PES below where it started."""
    import json

    out = subprocess.run([sys.executable, str(SCRIPTS / "reproduce_lr_schedule.py"), "--smoke", "--out", str(tmp_path)],
                         capture_output=True, text=True, timeout=600)
    assert out.returncode == 0, out.stderr
    summary = json.loads((tmp_path / "summary.json").read_text())
    assert set(summary["methods"]) == {"PES", "TES", "ES", "TBPTT K=10"}
    assert summary["methods"]["PES"]["meta_loss"] < summary["start"]["meta_loss"]
    assert (tmp_path / "surface.png").stat().st_size > 10_000
    rows = (tmp_path / "trajectories.csv").read_text().splitlines()
    assert rows[0] == "method,update,log_lr,log_decay" and len(rows) > 4 * 6


def test_mjx_latency_probe_smoke():
    """The GPU script's latency probe runs on the CPU and prints one JSON object per piece."""
    out = subprocess.run([sys.executable, str(SCRIPTS / "mjx_latency.py"), "--num-envs", "4", "--steps", "2",
                          "--pieces", "mjx_forward"], capture_output=True, text=True, timeout=300)
    assert out.returncode == 0, out.stderr
    rows = [json.loads(line) for line in out.stdout.splitlines()]
    assert [r["piece"] for r in rows] == ["mjx_forward"]
    assert all(r["num_envs"] == 4 and r["ms_per_call"] > 0 for r in rows)


def test_reacher_reference_controller_beats_doing_nothing():
    """scripts/reacher_pd_baseline.py: the Jacobian-transpose PD controller (the docs' scale for what
    Reacher's presets reach) scores far above the zero action on the same reset seeds."""
    import json

    out = subprocess.run([sys.executable, str(SCRIPTS / "reacher_pd_baseline.py"), "--episodes", "4"],
                         capture_output=True, text=True, timeout=300)
    assert out.returncode == 0, out.stderr
    result = json.loads(out.stdout.splitlines()[-1])
    assert result["best"]["return"] > result["zero_action"]["return"] + 3
