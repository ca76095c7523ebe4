"""Faults: a NaN from the environment stops training cleanly and keeps the last checkpoint."""

import gymnasium as gym
import numpy as np
import pytest

import pes_rl
from pes_rl import checkpoint
from pes_rl.trainer import TrainingDiverged


class NanRewardAfter(gym.Wrapper):
    """Returns a NaN reward once the process has taken ``steps`` env steps (all envs counted)."""

    taken = 0

    def __init__(self, env, steps):
        super().__init__(env)
        self.steps = steps

    def step(self, action):
        obs, reward, terminated, truncated, info = self.env.step(action)
        NanRewardAfter.taken += 1
        return obs, (np.nan if NanRewardAfter.taken > self.steps else reward), terminated, truncated, info


def test_nan_reward_stops_with_iteration_and_particle_and_keeps_the_checkpoint(tmp_path):
    NanRewardAfter.taken = 0
    run = tmp_path / "run"
    common = dict(env="Swimmer-v5", backend="gymnasium", num_pairs=2, truncation_length=50, horizon=200,
                  eval_every=0, checkpoint_every=1, stagger="none", total_steps=10_000, run_dir=str(run),
                  progress_bar=False)
    # 4 particles x 50 steps per iteration: the 1001st step is in iteration 6, particle 0
    factory = lambda: NanRewardAfter(gym.make("Swimmer-v5", max_episode_steps=200), steps=1000)  # noqa: E731
    with pytest.raises(TrainingDiverged, match=r"non-finite return at iteration 6, particle 0"):
        pes_rl.train(env_fn=factory, **common)
    assert checkpoint.latest_step(str(run)) == 5
    restored = checkpoint.restore(str(run))
    assert np.isfinite(restored["policy"]["params"]).all()
    assert int(restored["iteration"]) == 5


def _cli(*args):
    import os
    import sys

    return [sys.executable, "-m", "pes_rl.cli", *args], dict(os.environ, PYTHONWARNINGS="ignore")


RUN = ["--env", "swimmer", "--backend", "gymnasium", "--num-pairs", "3", "-K", "50", "-T", "200", "--seed", "7",
       "--total-steps", "24000", "--eval-every", "0", "--checkpoint-every", "1", "--no-progress"]


def test_resume_after_sigkill_is_bit_identical(tmp_path):
    """kill -9 a training process once a checkpoint exists, resume it, and end with exactly
    the parameters of an uninterrupted run."""
    import os
    import signal
    import subprocess
    import time

    cmd, env = _cli("train", "--run-dir", str(tmp_path / "full"), *RUN)
    assert subprocess.run(cmd, env=env, capture_output=True, timeout=600).returncode == 0

    cmd, env = _cli("train", "--run-dir", str(tmp_path / "killed"), *RUN)
    proc = subprocess.Popen(cmd, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.time() + 300
    while checkpoint.latest_step(str(tmp_path / "killed")) is None or checkpoint.latest_step(str(tmp_path / "killed")) < 3:
        assert proc.poll() is None, "the run finished before it could be killed; give it more steps"
        assert time.time() < deadline
        time.sleep(0.05)
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait()
    killed_at = checkpoint.latest_step(str(tmp_path / "killed"))
    cmd, env = _cli("train", "--run-dir", str(tmp_path / "killed"), "--resume", "--no-progress")
    out = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=600)
    assert out.returncode == 0, out.stderr
    full, resumed = checkpoint.restore(str(tmp_path / "full")), checkpoint.restore(str(tmp_path / "killed"))
    print(f"killed after checkpoint {killed_at}; resumed to iteration {int(resumed['iteration'])}")
    assert int(resumed["iteration"]) == int(full["iteration"]) and int(killed_at) < int(full["iteration"])
    np.testing.assert_array_equal(resumed["policy"]["params"], full["policy"]["params"])


def test_latest_step_beside_a_writer_that_deletes_old_steps(tmp_path):
    """``checkpoint.latest_step`` while another process saves steps 1..40 (keeping 3, so it deletes
    one with every save): orbax lists the steps, then reads each one's metadata, and a step deleted
    in between raised FileNotFoundError or NotADirectoryError (the kill -9 test once failed on it in
    CI). Every call must answer, and the answers never go backwards."""
    import subprocess
    import sys

    run = str(tmp_path / "run")
    writer = subprocess.Popen([sys.executable, "-c", (
        "import sys, numpy as np\n"
        "from pes_rl import checkpoint\n"
        "for s in range(1, 41):\n"
        "    checkpoint.save(sys.argv[1], s, {'x': np.arange(1000.0) + s})\n"), run])
    seen = []
    while writer.poll() is None:
        step = checkpoint.latest_step(run)
        if step is not None:
            seen.append(step)
    assert writer.returncode == 0
    assert len(seen) > 100 and seen == sorted(seen) and checkpoint.latest_step(run) == 40


def test_damaged_or_foreign_checkpoint_is_one_line(tmp_path):
    import shutil
    import subprocess

    run = tmp_path / "run"
    cmd, env = _cli("train", "--run-dir", str(run), "--backend", "gymnasium", "--num-pairs", "2", "-K", "50", "-T", "200",
                    "--total-steps", "1000", "--eval-every", "0", "--checkpoint-every", "1", "--no-progress")
    assert subprocess.run(cmd, env=env, capture_output=True, timeout=600).returncode == 0
    for path in (run / "checkpoints").rglob("*"):  # every step: a damaged newest one alone is passed over
        if path.is_file() and path.stat().st_size > 0 and "metadata" not in path.name:
            path.write_bytes(b"\0" * 16)
    cmd, env = _cli("eval", "--run-dir", str(run), "--episodes", "1")
    out = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=600)
    assert out.returncode == 2 and "Traceback" not in out.stderr, out.stderr
    assert len(out.stderr.strip().splitlines()) == 1 and "cannot be read" in out.stderr

    shutil.rmtree(run / "checkpoints")
    cmd, env = _cli("train", "--run-dir", str(run), "--resume", "--no-progress")
    out = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=600)
    assert out.returncode == 2 and "no checkpoint" in out.stderr and "Traceback" not in out.stderr


@pytest.mark.slow
def test_mjx_resume_is_bit_identical(tmp_path):
    """The mjx backend's checkpoint holds the particles' MJX states: resuming matches exactly. The
    agent is ARS (top-b, a reward shift, state normalisation), so that this one MJX compilation
    also runs ARS on mjx; what a checkpoint holds of the particles does not depend on the agent
    (PES's ξ is resumed exactly in test_resume_after_sigkill_is_bit_identical)."""
    common = dict(env="swimmer", backend="mjx", eval_backend="gymnasium", agent="ars", seed=1, num_pairs=2,
                  top_directions=1, reward_shift=0.5, horizon=40, eval_every=0, eval_episodes=1, progress_bar=False)
    full = pes_rl.train(total_steps=320, run_dir=str(tmp_path / "full"), checkpoint_every=0, **common)
    pes_rl.train(total_steps=160, run_dir=str(tmp_path / "part"), checkpoint_every=1, **common)
    resumed = pes_rl.train(total_steps=320, run_dir=str(tmp_path / "part"), checkpoint_every=1, resume=True, **common)
    assert resumed.env_steps == full.env_steps == 320  # Swimmer never ends early: 2 iterations of 4 x 40 steps
    assert len(full.metrics) == 2 and np.linalg.norm(full.flat_params) > 0
    np.testing.assert_array_equal(resumed.flat_params, full.flat_params)


def test_foreign_checkpoint_is_refused(tmp_path):
    """A checkpoint written for another env/policy shape cannot be resumed into this run."""
    import json
    import shutil

    base = dict(backend="gymnasium", num_pairs=2, truncation_length=20, horizon=40, eval_every=0, total_steps=200,
                progress_bar=False)
    pes_rl.train(env="swimmer", run_dir=str(tmp_path / "swim"), **base)
    pes_rl.train(env="Pendulum-v1", run_dir=str(tmp_path / "pend"), **base)
    shutil.rmtree(tmp_path / "pend" / "checkpoints")
    shutil.copytree(tmp_path / "swim" / "checkpoints", tmp_path / "pend" / "checkpoints")
    with pytest.raises(ValueError, match="checkpoint"):
        pes_rl.train(env="Pendulum-v1", run_dir=str(tmp_path / "pend"), resume=True, **base)
    assert json.loads((tmp_path / "pend" / "config.json").read_text())["env"] == "Pendulum-v1"


def test_existing_run_dir_needs_resume_or_overwrite(tmp_path):
    from pes_rl.config import ConfigError

    base = dict(env="swimmer", backend="gymnasium", num_pairs=1, truncation_length=20, horizon=40, eval_every=0,
                total_steps=100, progress_bar=False, run_dir=str(tmp_path / "r"))
    pes_rl.train(**base)
    (tmp_path / "r" / "marker").write_text("old run")
    with pytest.raises(ConfigError, match="already exists; pass --resume .* or --overwrite"):
        pes_rl.train(**base)
    assert (tmp_path / "r" / "marker").exists(), "a refused run must not touch the old one"
    pes_rl.train(**base, overwrite=True)
    # the user's file stays (test_run_dir_safety.py); pes-rl's own entries were replaced
    assert (tmp_path / "r" / "marker").exists() and checkpoint.latest_step(str(tmp_path / "r")) is not None


# --- Bad input anywhere is one line (exit 2) naming what is wrong, and nothing is written. ---

BASE = ["train", "--backend", "gymnasium", "--env", "swimmer", "--total-steps", "8000", "--num-pairs", "2", "-K", "20",
        "-T", "100", "--no-progress", "--eval-every", "0", "--checkpoint-every", "0"]


def _run_cli(*args, timeout=300):
    import subprocess

    cmd, env = _cli(*args)
    return subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=timeout)


def _assert_one_line(out, *words):
    lines = [line for line in out.stderr.splitlines() if line.strip()]
    assert out.returncode == 2 and len(lines) == 1 and "Traceback" not in out.stderr, out.stderr
    for word in words:
        assert word in lines[0], lines[0]


@pytest.mark.parametrize("args, words", [
    (["--run-dir", "{tmp}/a_file"], ["run_dir", "not a directory"]),
    (["--run-dir", ""], ["run_dir"]),
    (["--run-dir", "/proc/pes_rl_cannot_be_here"], ["run_dir", "cannot be created"]),
    (["--config", "{tmp}"], ["config", "is a directory"]),
    (["--sigma", "1e308"], ["sigma"]),
    (["--lr-end", "inf"], ["lr_end"]),
    (["--env", "CarRacing-v3"], ["CarRacing-v3", "optional dependency"]),
    (["--coordinator-address", "not an address"], ["coordinator_address", "HOST:PORT"]),
    (["--log-every", "300", "--num-pairs", "100000"], ["total_steps", "less than one iteration"]),
    (["--env", "Pusher-v5", "--num-pairs", "100000", "--total-steps", "100000000"], ["memory", "num_pairs"]),
    (["--policy", "mlp", "--hidden", "30000,30000"], ["memory", "hidden"]),
    (["--eval-episodes", str(10**12)], ["eval_episodes"]),
    (["-T", str(10**12)], ["horizon"]),
])
def test_train_bad_input_is_one_line(tmp_path, args, words):
    (tmp_path / "a_file").write_text("x")
    args = [a.replace("{tmp}", str(tmp_path)) for a in args]
    if "--run-dir" not in args:
        args += ["--run-dir", str(tmp_path / "run")]
    _assert_one_line(_run_cli(*BASE, *args), *words)
    assert not (tmp_path / "run").exists()


def test_log_every_never_overrides_the_step_budget():
    """Regression: --log-every 300 trained 24,000 steps for --total-steps 8000, and 10**12 never ended."""
    base = dict(env="swimmer", backend="gymnasium", num_pairs=2, truncation_length=20, horizon=100, eval_every=0,
                checkpoint_every=0, total_steps=8000, progress_bar=False, run_dir=None)
    for log_every in (300, 10**12, 7):
        result = pes_rl.train(**base, log_every=log_every)
        assert result.env_steps == 8000, (log_every, result.env_steps)


@pytest.fixture(scope="module")
def swimmer_run(tmp_path_factory):
    run = tmp_path_factory.mktemp("runs") / "swim"
    pes_rl.train(env="swimmer", backend="gymnasium", num_pairs=2, truncation_length=20, horizon=100, eval_every=0,
                 total_steps=800, progress_bar=False, run_dir=str(run))
    return run


@pytest.mark.parametrize("content, words", [
    ("[]", ["config.json", "JSON object"]),
    ("{garbage", ["config.json", "not valid JSON"]),
    ('{"env": "swimmer"}', ["config.json", "lacks"]),
    ('{"env": "swimmer", "backend": "gymnasium", "policy": "linear", "hidden": [64], "normalize_obs": "false", '
     '"horizon": 100, "seed": 0}', ["config.json", "normalize_obs"]),
])
def test_eval_record_and_load_policy_refuse_a_damaged_config_json(tmp_path, swimmer_run, content, words):
    import shutil

    from pes_rl.config import ConfigError

    run = tmp_path / "run"
    shutil.copytree(swimmer_run, run)
    (run / "config.json").write_text(content)
    _assert_one_line(_run_cli("eval", "--run-dir", str(run), "--episodes", "1"), *words)
    _assert_one_line(_run_cli("record", "--run-dir", str(run), "--out", str(tmp_path / "v.mp4")), *words)
    for load in (pes_rl.load_policy, pes_rl.PolicyAgent):
        with pytest.raises(ConfigError, match="config.json"):
            load(str(run))


def test_eval_episodes_that_cannot_fit_are_refused(swimmer_run):
    _assert_one_line(_run_cli("eval", "--run-dir", str(swimmer_run), "--episodes", str(2 * 10**9)), "memory", "episodes")
    _assert_one_line(_run_cli("eval", "--run-dir", str(swimmer_run), "--episodes", str(10**12)), "episodes")


def test_record_checks_its_output_before_reading_or_rendering(tmp_path):
    # the run dir does not even exist: the unwritable output is what is reported first
    _assert_one_line(_run_cli("record", "--run-dir", str(tmp_path / "missing"), "--out", "/proc/x/v.mp4"), "out")


def test_policy_agent_checks_the_env_against_the_policy(swimmer_run):
    from pes_rl.config import ConfigError

    with pytest.raises(ConfigError, match="does not match the run's policy"):
        pes_rl.PolicyAgent(str(swimmer_run), env_id="Hopper-v5")


def test_policy_refuses_nan_and_wrong_shaped_observations(swimmer_run):
    policy = pes_rl.load_policy(str(swimmer_run))
    assert policy(np.zeros(8)).shape == (2,) and policy(np.zeros((3, 8))).shape == (3, 2)
    with pytest.raises(ValueError, match="NaN"):
        policy(np.full(8, np.nan))
    for shape in [(3,), (2, 3), (1, 2, 8)]:
        with pytest.raises(ValueError, match=r"shape \(8,\) or \(batch, 8\)"):
            policy(np.zeros(shape))


def test_sigterm_is_one_line(tmp_path):
    import signal
    import subprocess
    import time

    cmd, env = _cli(*BASE, "--total-steps", "100000000", "--checkpoint-every", "1", "--run-dir", str(tmp_path / "r"))
    proc = subprocess.Popen(cmd, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    deadline = time.time() + 300
    while checkpoint.latest_step(str(tmp_path / "r")) is None:
        assert proc.poll() is None and time.time() < deadline
        time.sleep(0.05)
    proc.send_signal(signal.SIGTERM)
    _, err = proc.communicate(timeout=120)
    assert proc.returncode == 143 and err.strip() == "pes-rl train: terminated (SIGTERM)", err


def test_a_signal_during_a_checkpoint_save_waits_for_the_save():
    """SIGTERM sent mid-save reaches the handler only once the save is done (and is not lost)."""
    import os
    import signal

    class Terminated(Exception):
        pass

    def on_sigterm(signum, frame):
        raise Terminated

    previous = signal.signal(signal.SIGTERM, on_sigterm)
    finished = []
    try:
        with pytest.raises(Terminated):
            with checkpoint.signals_held():
                os.kill(os.getpid(), signal.SIGTERM)
                for _ in range(1000):  # bytecodes at which Python would run a pending handler
                    pass
                finished.append(True)
        assert finished == [True]
        assert signal.getsignal(signal.SIGTERM) is on_sigterm  # the caller's handler is back
    finally:
        signal.signal(signal.SIGTERM, previous)
