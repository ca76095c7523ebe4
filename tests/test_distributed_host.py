"""The CPU fallback across processes: each process steps its share of the pairs in its own
threaded C MuJoCo batch, and the job ends with exactly a one-process run's parameters."""

import subprocess
import sys

import numpy as np

import pes_rl
from pes_rl import checkpoint
from pes_rl.scaling import free_port, wait_all
from tests.test_sharding import ROOT, _env

FLAGS = dict(env="swimmer", backend="gymnasium", seed=3, num_pairs=4, truncation_length=25, horizon=100,
             total_steps=1200, eval_every=3, eval_episodes=2, checkpoint_every=2)


def _cli_flags(run_dir) -> list[str]:
    return ["--env", "swimmer", "--backend", "gymnasium", "--seed", "3", "--num-pairs", "4", "-K", "25", "-T", "100",
            "--total-steps", "1200", "--eval-every", "3", "--eval-episodes", "2", "--checkpoint-every", "2",
            "--run-dir", str(run_dir), "--no-progress"]


def test_two_processes_match_one_process_exactly(tmp_path):
    single = pes_rl.train(**FLAGS, progress_bar=False, run_dir=str(tmp_path / "single"))
    run_dir = tmp_path / "two"
    port = free_port()
    procs = [
        subprocess.Popen([sys.executable, "-m", "pes_rl.cli", "train", *_cli_flags(run_dir), "--distributed",
                          "--coordinator-address", f"127.0.0.1:{port}", "--num-processes", "2", "--process-id", str(i)],
                         cwd=ROOT, env=_env(), stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        for i in range(2)
    ]
    outputs = wait_all(procs, timeout=600)
    for p, (_, stderr) in zip(procs, outputs):
        assert p.returncode == 0, stderr[-3000:]
    saved = checkpoint.restore(str(run_dir))
    # the same windows, gathered in the same order: bit-identical, not merely close
    np.testing.assert_array_equal(saved["policy"]["params"], single.flat_params)
    # process 0 wrote every particle's simulator state (4 pairs, 8 members), in the global order
    ref = checkpoint.restore(str(tmp_path / "single"))
    for key in ("physics", "elapsed_steps", "obs"):
        np.testing.assert_array_equal(saved["particles"]["env"][key], ref["particles"]["env"][key])
    assert saved["particles"]["env"]["physics"].shape[0] == 8
    rows = (run_dir / "progress.csv").read_text().strip().splitlines()
    assert len(rows) == 1 + 6  # 1200 steps of 8 x 25 per iteration, logged once (process 0)
    # the checkpoint is layout-free: one process resumes the two-process run exactly
    more = dict(FLAGS, total_steps=1600, progress_bar=False)
    resumed_two = pes_rl.train(**more, run_dir=str(run_dir), resume=True)
    resumed_single = pes_rl.train(**more, run_dir=str(tmp_path / "single"), resume=True)
    np.testing.assert_array_equal(resumed_two.flat_params, resumed_single.flat_params)


def test_pairs_must_split_over_processes():
    """3 pairs over 2 processes: one line naming num_pairs, from every process."""
    port = free_port()
    procs = [
        subprocess.Popen([sys.executable, "-m", "pes_rl.cli", "train", "--backend", "gymnasium", "--num-pairs", "3",
                          "--total-steps", "10000", "--no-progress", "--distributed", "--coordinator-address",
                          f"127.0.0.1:{port}", "--num-processes", "2", "--process-id", str(i)],
                         cwd=ROOT, env=_env(), stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        for i in range(2)
    ]
    # both refuse on their own before any collective: wait for each (wait_all would kill the slower one)
    outputs = [p.communicate(timeout=300) for p in procs]
    for p, (_, stderr) in zip(procs, outputs):
        assert p.returncode == 2, stderr[-3000:]
        assert stderr.strip().splitlines()[-1] == (
            "pes-rl train: error: num_pairs must be a multiple of the 2 processes (each steps an equal share of the "
            "pairs on the gymnasium backend); got 3")
