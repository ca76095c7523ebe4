"""`pes-rl bench` runs end to end (tiny sizes) and prints the documented JSON shape.

Speed targets live in the benchmark itself, never in tests: here only the
structure and the internal consistency of the report are checked.
"""

import json
import subprocess
import sys


def test_bench_json_shape():
    out = subprocess.run(
        [sys.executable, "-m", "pes_rl.cli", "bench", "--backend", "gymnasium", "--num-pairs", "8", "-K", "20", "--json"],
        capture_output=True, text=True, timeout=600,
    )
    assert out.returncode == 0, out.stderr
    report = json.loads(out.stdout)  # --json: stdout is the JSON object and nothing else
    assert "PES/raw" in out.stderr  # the table goes to stderr
    cpu = report["cpu"]
    g = cpu["gymnasium"]
    assert g["num_envs"] == 16
    for key in ("raw_steps_per_s", "pes_steps_per_s", "warmup_s"):
        assert g[key] > 0
    assert abs(g["ratio"] - g["pes_steps_per_s"] / g["raw_steps_per_s"]) < 1e-9
    assert abs(g["pes_over_mujoco_limit"] - g["pes_steps_per_s"] / cpu["mujoco_limit_steps_per_s"]) < 1e-9
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
    assert abs(g["pes_over_mujoco_limit"] - g["pes_steps_per_s"] / cpu["mujoco_limit_steps_per_s"]) < 1e-9


def test_bench_rejects_bad_env():
    out = subprocess.run([sys.executable, "-m", "pes_rl.cli", "bench", "--env", "pusher"], capture_output=True, text=True)
    assert out.returncode == 2
    assert out.stderr.strip().splitlines()[-1].startswith("pes-rl bench: error: env must be one of swimmer, hopper, ")


def test_bench_rejects_bad_sizes():
    out = subprocess.run([sys.executable, "-m", "pes_rl.cli", "bench", "--num-pairs", "0"], capture_output=True, text=True)
    assert out.returncode == 2
    assert out.stderr.strip().splitlines() == ["pes-rl bench: error: num_pairs must be an integer >= 1; got 0"]


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
