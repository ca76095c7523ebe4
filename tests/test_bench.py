"""`pes-rl bench` runs end to end (tiny sizes) and prints the documented JSON shape.

Speed targets live in the benchmark itself, never in tests: here only the
structure and the internal consistency of the report are checked.
"""

import json
import subprocess
import sys

import pytest


def test_bench_json_shape():
    out = subprocess.run(
        [sys.executable, "-m", "pes_rl.cli", "bench", "--backend", "gymnasium", "--num-pairs", "8", "-K", "20",
         "--min-timed-steps", "3000", "--json"],
        capture_output=True, text=True, timeout=600,
    )
    assert out.returncode == 0, out.stderr
    report = json.loads(out.stdout)  # --json: stdout is the JSON object and nothing else
    assert "PES/raw" in out.stderr  # the table goes to stderr
    cpu = report["cpu"]
    g = cpu["gymnasium"]
    assert g["num_envs"] == 16
    assert 3000 <= g["pes_timed_env_steps"] < 4000  # --min-timed-steps: ten iterations of 320 after the first
    for key in ("raw_steps_per_s", "pes_steps_per_s", "warmup_s"):
        assert g[key] > 0
    assert abs(g["ratio"] - g["pes_steps_per_s"] / g["raw_steps_per_s"]) < 1e-9
    assert abs(g["pes_over_mujoco_limit"] - g["pes_steps_per_s"] / g["pes_mujoco_limit_steps_per_s"]) < 1e-9
    assert cpu["mujoco_limit_steps_per_s"] > 0
    assert cpu["threads"] >= 1 and cpu["mujoco_one_thread_steps_per_s"] > 0
    memory = report["memory"]
    assert memory["rss_kib_T1000"] > 0 and memory["rss_growth_T100000_over_T1000"] == memory["rss_kib_T100000"] / memory["rss_kib_T1000"]
    assert "gpu" not in report  # no accelerator on the CI machine: omitted, not faked
    assert report["env"] == "swimmer"


def test_bench_other_env():
    """``--env``: the same report for another threaded task (tiny: 4 pairs, K = 10, no memory probe)."""
    out = subprocess.run(
        [sys.executable, "-m", "pes_rl.cli", "bench", "--backend", "gymnasium", "--env", "hopper", "--num-pairs", "4",
         "-K", "10", "--no-memory", "--json"],
        capture_output=True, text=True, timeout=600,
    )
    assert out.returncode == 0, out.stderr
    report = json.loads(out.stdout)
    assert "env: hopper (Hopper-v5)" in out.stderr.splitlines()  # the table's first line
    assert report["env"] == "hopper" and "memory" not in report
    cpu = report["cpu"]
    g = cpu["gymnasium"]
    assert g["num_envs"] == 8 and g["raw_steps_per_s"] > 0 and g["pes_steps_per_s"] > 0
    assert abs(g["pes_over_mujoco_limit"] - g["pes_steps_per_s"] / g["pes_mujoco_limit_steps_per_s"]) < 1e-9


def test_recorded_transitions_are_the_loops_own_trajectory(tmp_path):
    """What the PES loop's C MuJoCo limit replays: each recorded row, stepped by C MuJoCo alone with
    its recorded action, gives exactly the row recorded at the next env step (no resets here), and
    the block between two step counts holds exactly those steps."""
    import numpy as np

    import pes_rl
    from pes_rl import bench, envs
    from pes_rl.envs.mujoco_threaded import ThreadedMujocoEnv

    original = ThreadedMujocoEnv.step
    log = []
    with bench.recorded_transitions(log):
        pes_rl.train(env="swimmer", backend="gymnasium", num_pairs=2, truncation_length=10, total_steps=120,
                     stagger="none", eval_every=0, checkpoint_every=0, progress_bar=False, run_dir=str(tmp_path / "run"))
    assert ThreadedMujocoEnv.step is original  # restored on exit
    training = [(rows, actions) for owner, rows, actions in log if owner == log[0][0]]
    assert len(log) > len(training) == 30  # the final evaluation's batch is recorded, and told apart
    assert all(rows.shape[0] == 4 and actions.shape == (4, 2) for rows, actions in training)
    env = envs.make("swimmer", "gymnasium", num_envs=1)
    moved = 0.0
    for (rows, actions), (next_rows, _) in zip(training, training[1:]):
        np.testing.assert_array_equal(env.open_loop(rows, actions[:, None]), next_rows)
        moved = max(moved, float(np.abs(next_rows - rows).max()))
    assert moved > 1e-3  # the replay is not comparing a frozen state with itself
    (rows, actions), = bench.transitions_between(log, 40, 120)
    np.testing.assert_array_equal(rows, np.concatenate([r for r, _ in training[10:]]))
    blocks = bench.transitions_between(log, 0, 120, rows_per_call=50)
    assert [len(r) for r, _ in blocks] == [52, 52, 16]
    with pytest.raises(ValueError, match="recorded step boundaries"):
        bench.transitions_between(log, 2, 120)


def test_bench_rejects_bad_env():
    out = subprocess.run([sys.executable, "-m", "pes_rl.cli", "bench", "--env", "pusher"], capture_output=True, text=True)
    assert out.returncode == 2
    assert out.stderr.strip().splitlines()[-1].startswith("pes-rl bench: error: env must be one of swimmer, hopper, ")


def test_bench_rejects_bad_sizes():
    out = subprocess.run([sys.executable, "-m", "pes_rl.cli", "bench", "--num-pairs", "0"], capture_output=True, text=True)
    assert out.returncode == 2
    assert out.stderr.strip().splitlines() == ["pes-rl bench: error: num_pairs must be an integer >= 1; got 0"]
    out = subprocess.run([sys.executable, "-m", "pes_rl.cli", "bench", "--min-timed-steps", "0"], capture_output=True,
                         text=True)
    assert out.returncode == 2
    assert out.stderr.strip().splitlines() == ["pes-rl bench: error: min_timed_steps must be an integer >= 1; got 0"]


def test_bench_config_holds_any_batch():
    """The GPU curve's batches (up to 65,536 envs) exceed the Swimmer preset's 200,000-step budget
    in one iteration; the benchmark's config must still validate (it failed on the first GPU run)."""
    from pes_rl.bench import GPU_PAIRS, _config
    from pes_rl.config import PRESETS

    n = max(GPU_PAIRS)
    assert 2 * n * 100 > PRESETS["swimmer"]["total_steps"]
    for env in ("swimmer", "hopper"):
        config = _config("mjx", n, 100, env=env)
        assert config.num_particles == 2 * n and config.total_steps >= config.steps_per_iteration


def test_bench_times_each_mjx_implementation_side_by_side(monkeypatch):
    """``--mjx-impl jax warp``: both implementations are measured (each step handed its impl),
    the first reported as ``mjx`` and the other as ``mjx_warp``, each entry and table row naming
    its impl. (The timings are stubbed: compiling MJX twice would cost CI a minute; real warp
    stepping is tested in test_mjx_swimmer.py.)"""
    from pes_rl import bench

    seen = []

    def raw_mjx(n, k, windows=3, env_name="swimmer", mjx_impl=None):
        seen.append(("raw", env_name, mjx_impl))
        return {"num_envs": 2 * n, "raw_steps_per_s": 100.0 if mjx_impl == "jax" else 50.0, "raw_warmup_s": 1.0}

    def pes_loop(backend, n, k, iterations=4, chunk=1, env_name="swimmer", mjx_impl=None):
        seen.append(("pes", env_name, mjx_impl))
        return {"pes_steps_per_s": 90.0 if mjx_impl == "jax" else 45.0, "warmup_s": 2.0, "total_s": 3.0}

    monkeypatch.setattr(bench, "raw_mjx", raw_mjx)
    monkeypatch.setattr(bench, "pes_loop", pes_loop)
    report = bench.run(["mjx"], [2], 5, memory=False, log=lambda m: None, mjx_impls=["jax", "warp"])
    assert seen == [("raw", "swimmer", "jax"), ("pes", "swimmer", "jax"), ("raw", "swimmer", "warp"),
                    ("pes", "swimmer", "warp")]
    cpu = report["cpu"]
    assert (cpu["mjx"]["impl"], cpu["mjx_warp"]["impl"]) == ("jax", "warp")
    assert cpu["mjx"]["ratio"] == 0.9 and cpu["mjx_warp"]["pes_steps_per_s"] == 45.0
    lines = bench.table(report).splitlines()
    assert any("mjx (jax)" in line and "100" in line for line in lines)
    assert any("mjx (warp)" in line and "50" in line for line in lines)
    # a Playground task: mjx only, its own default impl, no gymnasium memory probe
    seen.clear()
    report = bench.run(None, [2], 5, log=lambda m: None, env="CheetahRun")
    assert seen == [("raw", "CheetahRun", "jax"), ("pes", "CheetahRun", "jax")] and "memory" not in report
    assert bench.table(report).splitlines()[0] == "env: CheetahRun (MuJoCo Playground)"


def test_bench_rejects_a_playground_task_on_gymnasium():
    out = subprocess.run([sys.executable, "-m", "pes_rl.cli", "bench", "--env", "CheetahRun", "--backend", "gymnasium"],
                         capture_output=True, text=True, timeout=120)
    assert out.returncode == 2
    assert out.stderr.strip().splitlines() == [
        "pes-rl bench: error: backend: env 'CheetahRun' (MuJoCo Playground) runs on mjx only"]
