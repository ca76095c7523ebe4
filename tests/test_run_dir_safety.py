"""Run directories: never delete what pes-rl did not create, one writer at a time, and nothing
lost when the end of a run (evaluation, video) fails. Real files, real subprocesses."""

import json
import os
import shutil
import signal
import subprocess
import sys
import time

import numpy as np
import pytest

import pes_rl
from pes_rl import checkpoint, rundir
from pes_rl.config import ConfigError

TINY = dict(env="swimmer", backend="gymnasium", num_pairs=2, truncation_length=20, horizon=100, eval_every=0,
            checkpoint_every=0, total_steps=800, progress_bar=False)
CLI_TINY = ["--backend", "gymnasium", "--env", "swimmer", "--total-steps", "8000", "--num-pairs", "2", "-K", "20",
            "-T", "100", "--no-progress", "--eval-every", "0", "--checkpoint-every", "0"]


def cli(*args, cwd=None, env=None, timeout=600):
    return subprocess.run([sys.executable, "-m", "pes_rl.cli", *args], capture_output=True, text=True, cwd=cwd,
                          timeout=timeout, env={**os.environ, "PYTHONWARNINGS": "ignore", **(env or {})})


def one_line_error(out, *words):
    lines = [line for line in out.stderr.splitlines() if line.strip()]
    assert out.returncode == 2, out.stderr
    assert len(lines) == 1 and "Traceback" not in out.stderr, out.stderr
    for word in words:
        assert word in lines[0], lines[0]
    return lines[0]


def snapshot(path):
    """Every file under ``path`` with its bytes (a directory's whole content)."""
    return {os.path.relpath(os.path.join(d, f), path): open(os.path.join(d, f), "rb").read()
            for d, _, files in os.walk(path) for f in files}


def test_overwrite_refuses_a_directory_pes_rl_did_not_create(tmp_path):
    victim = tmp_path / "victim"
    (victim / "sub").mkdir(parents=True)
    (victim / "notes.txt").write_text("mine")
    (victim / "sub" / "data.csv").write_text("1,2")
    before = snapshot(victim)
    line = one_line_error(cli("train", *CLI_TINY, "--run-dir", str(victim), "--overwrite"), "not created by pes-rl")
    assert "run_dir" in line
    assert snapshot(victim) == before


def test_overwrite_never_clears_the_current_directory_its_parents_or_home(tmp_path):
    run = tmp_path / "run"
    pes_rl.train(**TINY, run_dir=str(run))  # a genuine, marked pes-rl run ...
    (run / "notes.txt").write_text("mine")
    before = snapshot(run)
    # ... is still never cleared when it is the cwd, a parent of the cwd, or the home directory
    one_line_error(cli("train", *CLI_TINY, "--run-dir", ".", "--overwrite", cwd=run), "current directory")
    (run / "sub").mkdir()
    one_line_error(cli("train", *CLI_TINY, "--run-dir", "..", "--overwrite", cwd=run / "sub"),
                   "contains the current directory")
    one_line_error(cli("train", *CLI_TINY, "--run-dir", str(run), "--overwrite", env={"HOME": str(run)}),
                   "home directory")
    (run / "sub").rmdir()
    assert snapshot(run) == before


def test_overwrite_replaces_only_pes_rl_entries(tmp_path):
    run = tmp_path / "run"
    first = pes_rl.train(**TINY, run_dir=str(run))
    (run / "notes.txt").write_text("mine")
    second = pes_rl.train(**{**TINY, "seed": 3}, run_dir=str(run), overwrite=True)
    assert (run / "notes.txt").read_text() == "mine", "a user's file inside a run dir survives --overwrite"
    assert json.loads((run / "config.json").read_text())["seed"] == 3
    assert rundir.is_pes_rl_run(str(run))
    np.testing.assert_array_equal(checkpoint.restore(str(run))["policy"]["params"], second.flat_params)
    assert not np.array_equal(first.flat_params, second.flat_params)


def test_new_run_writes_the_marker(tmp_path):
    pes_rl.train(**TINY, run_dir=str(tmp_path / "run"))
    assert rundir.is_pes_rl_run(str(tmp_path / "run"))


def _wait_for(predicate, proc, what, limit=300):
    deadline = time.time() + limit
    while not predicate():
        assert proc.poll() is None, f"the run ended before {what}: {proc.stderr.read()}"
        assert time.time() < deadline, what
        time.sleep(0.05)


def test_a_second_writer_is_refused_with_the_holders_pid(tmp_path):
    """While a run writes into D, a new run, --overwrite and --resume into D are all refused
    (naming the live run's PID) and D is left exactly as the live run writes it."""
    run = tmp_path / "live"
    proc = subprocess.Popen(
        [sys.executable, "-m", "pes_rl.cli", "train", *CLI_TINY, "--total-steps", "10000000", "--checkpoint-every", "5",
         "--run-dir", str(run)], stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True,
        env={**os.environ, "PYTHONWARNINGS": "ignore"})
    try:
        _wait_for(lambda: checkpoint.latest_step(str(run)) is not None, proc, "its first checkpoint")
        config_before = (run / "config.json").read_bytes()
        for extra in (["--seed", "1", "--overwrite"], ["--resume"], ["--seed", "1"]):
            out = cli("train", *CLI_TINY, "--run-dir", str(run), *extra)
            expected = "already exists" if extra == ["--seed", "1"] else f"PID {proc.pid}"
            one_line_error(out, expected)
        assert (run / "config.json").read_bytes() == config_before
        assert proc.poll() is None, "the live run was not disturbed"
    finally:
        proc.send_signal(signal.SIGTERM)
        _, err = proc.communicate(timeout=120)
    assert proc.returncode == 143 and err.strip() == "pes-rl train: terminated (SIGTERM)", err
    # the kernel dropped the lock with the process: the run resumes
    resumed = cli("train", "--run-dir", str(run), "--resume", "--total-steps", "80", "--no-progress")
    assert resumed.returncode == 0, resumed.stderr


def test_lock_is_exclusive_within_one_machine(tmp_path):
    run = tmp_path / "run"
    run.mkdir()
    with rundir.RunDirLock(str(run)):
        with pytest.raises(ConfigError, match=f"PID {os.getpid()}"):
            rundir.RunDirLock(str(run)).acquire()
    rundir.RunDirLock(str(run)).acquire().release()  # released: free again


def test_final_checkpoint_is_saved_before_the_final_evaluation(tmp_path, monkeypatch):
    """A failure in the final evaluation (or video) must not lose the trained state."""
    import pes_rl.trainer

    def broken(*args, **kwargs):
        raise RuntimeError("evaluation failed")

    monkeypatch.setattr(pes_rl.trainer, "evaluate_gymnasium", broken)
    run = tmp_path / "run"
    with pytest.raises(RuntimeError, match="evaluation failed"):
        pes_rl.train(**TINY, run_dir=str(run))
    payload = checkpoint.restore(str(run))
    assert int(payload["env_steps"]) == TINY["total_steps"], "the whole trained state was saved"


def test_video_of_a_non_mujoco_env_is_refused_before_training(tmp_path):
    run = tmp_path / "run"
    line = one_line_error(cli("train", *CLI_TINY, "--env", "Pendulum-v1", "--capture-video", "--run-dir", str(run)),
                          "not a MuJoCo env")
    assert "Pendulum-v1" in line and not run.exists()


def test_a_failed_resume_leaves_config_json_alone(tmp_path):
    run = tmp_path / "run"
    pes_rl.train(**{**TINY, "checkpoint_every": 1}, run_dir=str(run))
    for path in (run / "checkpoints").rglob("*"):
        if path.is_file() and path.stat().st_size > 0 and "metadata" not in path.name:
            path.write_bytes(b"\0" * 16)
    before = (run / "config.json").read_bytes()
    one_line_error(cli("train", "--run-dir", str(run), "--resume", "--total-steps", "5000", "--no-progress"),
                   "cannot be read")
    assert (run / "config.json").read_bytes() == before


def test_a_stray_newest_checkpoint_falls_back_to_the_newest_intact_one(tmp_path):
    run = tmp_path / "run"
    pes_rl.train(**{**TINY, "checkpoint_every": 2}, run_dir=str(run))
    intact = checkpoint.latest_step(str(run))
    (run / "checkpoints" / "999").mkdir()
    (run / "checkpoints" / "999" / "keep.txt").write_text("not pes-rl's")
    out = cli("eval", "--run-dir", str(run), "--episodes", "1", "--json")
    assert out.returncode == 0, out.stderr
    warning, summary = out.stderr.strip().splitlines()  # --json: the summary line goes to stderr too
    assert warning == (f"pes-rl: warning: checkpoint 999 under {run / 'checkpoints'} cannot be read; "
                       f"using checkpoint {intact}")
    assert summary.startswith("swimmer on gymnasium: mean return") and json.loads(out.stdout)["episodes"] == 1
    out = cli("train", "--run-dir", str(run), "--resume", "--total-steps", "1200", "--no-progress")
    assert out.returncode == 0, out.stderr
    assert "moved it to" in out.stderr and len(out.stderr.strip().splitlines()) == 1, out.stderr
    # set aside, not deleted; the resumed run's checkpoints are the newest again
    assert (run / "damaged_checkpoints" / "999" / "keep.txt").read_text() == "not pes-rl's"
    assert checkpoint.latest_step(str(run)) > intact and int(checkpoint.restore(str(run))["env_steps"]) >= 1200


def test_progress_csv_keeps_its_rows_when_resumed(tmp_path):
    run = tmp_path / "run"
    pes_rl.train(**{**TINY, "total_steps": 1600, "checkpoint_every": 5}, run_dir=str(run))
    rows = (run / "progress.csv").read_text().splitlines()
    shutil.rmtree(run / "checkpoints" / "20")  # resume from iteration 15 of 20
    pes_rl.train(**{**TINY, "total_steps": 1600, "checkpoint_every": 5}, run_dir=str(run), resume=True)
    resumed = (run / "progress.csv").read_text().splitlines()
    assert [r.split(",")[:2] for r in resumed] == [r.split(",")[:2] for r in rows]
    # the wall time goes on from iteration 15's, as in one uninterrupted run
    wall = [float(r.split(",")[2]) for r in resumed[1:]]
    assert wall == sorted(wall) and wall[15] > wall[14] > 0, wall
