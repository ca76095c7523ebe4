"""Particles sharded over devices and processes give the single-device run's parameters.

One tiny mjx Swimmer configuration, trained three ways with the same seed and the
same 2 pairs (4 particles): in this process on one device (the reference), in a
subprocess with 4 forced host devices, and by two CPU processes joined with
``jax.distributed`` (gloo). Float tolerance, not bit equality: the means over
particles are summed in a different order when they are split over devices.
"""

import json
import os
import subprocess
import sys

import numpy as np
import pytest

import pes_rl
from pes_rl.agents import sharding
from pes_rl import checkpoint
from pes_rl.scaling import free_port, wait_all

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
CONFIG = dict(env="swimmer", backend="mjx", eval_backend="gymnasium", seed=5, num_pairs=2, truncation_length=10,
              horizon=40, total_steps=160, eval_every=0, eval_episodes=1, checkpoint_every=0)
TOLERANCE = dict(rtol=1e-4, atol=1e-5)


def _env(**extra) -> dict:
    env = dict(os.environ, PYTHONWARNINGS="ignore", **extra)
    env["PYTHONPATH"] = os.pathsep.join([ROOT] + [p for p in [env.get("PYTHONPATH")] if p])
    env.pop("XLA_FLAGS", None)
    env.update(extra)
    return env


@pytest.fixture(scope="module")
def single_device_params():
    import jax

    assert jax.device_count() == 1
    return pes_rl.train(**CONFIG, progress_bar=False).flat_params


FOUR_DEVICES = """
import json, sys
import jax, numpy as np
import pes_rl
from pes_rl import runners

assert jax.device_count() == 4
seen = []
run = runners.JaxRunner.run

def spy(self, state, iterations=None):  # how the population is laid out while it trains
    state, rows = run(self, state, iterations)
    obs = self.particles.env_state.obs
    seen.append({"devices": len(obs.sharding.device_set), "obs_shard": list(obs.addressable_shards[0].data.shape),
                 "accumulator_shard": list(state.accumulator.addressable_shards[0].data.shape),
                 "params_replicated": bool(state.params.sharding.is_fully_replicated)})
    return state, rows

runners.JaxRunner.run = spy
result = pes_rl.train(**json.loads(sys.argv[1]), progress_bar=False)
np.save(sys.argv[2], result.flat_params)
print(json.dumps(seen[-1]))
"""


@pytest.fixture(scope="module")
def four_device_run(tmp_path_factory):
    """The 4-device subprocess, started before the reference so that the two compile side by side."""
    out_file = tmp_path_factory.mktemp("four") / "params.npy"
    proc = subprocess.Popen([sys.executable, "-c", FOUR_DEVICES, json.dumps(CONFIG), str(out_file)], cwd=ROOT,
                            env=_env(XLA_FLAGS="--xla_force_host_platform_device_count=4"), stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True)
    yield proc, out_file
    if proc.poll() is None:
        proc.kill()
        proc.communicate()


@pytest.mark.slow
def test_four_devices_match_one_device(four_device_run, single_device_params):
    proc, out_file = four_device_run
    stdout, stderr = proc.communicate(timeout=600)
    assert proc.returncode == 0, stderr[-3000:]
    layout = json.loads(stdout.strip().splitlines()[-1])
    # 4 particles over 4 devices: one particle (and one row of ξ) per device
    assert layout == {"devices": 4, "obs_shard": [1, 8], "accumulator_shard": [1, 16], "params_replicated": True}
    np.testing.assert_allclose(np.load(out_file), single_device_params, **TOLERANCE)
    assert np.any(single_device_params != 0)


@pytest.mark.slow
def test_two_processes_match_one_process(tmp_path, single_device_params):
    run_dir = tmp_path / "run"
    flags = ["--env", "swimmer", "--backend", "mjx", "--eval-backend", "gymnasium", "--seed", str(CONFIG["seed"]),
             "--num-pairs", "2", "-K", "10", "-T", "40", "--total-steps", "160", "--eval-every", "2",
             "--eval-episodes", "1", "--checkpoint-every", "2", "--run-dir", str(run_dir), "--no-progress"]
    port = free_port()
    procs = [
        subprocess.Popen([sys.executable, "-m", "pes_rl.cli", "train", *flags, "--distributed", "--coordinator-address",
                          f"127.0.0.1:{port}", "--num-processes", "2", "--process-id", str(i)], cwd=ROOT, env=_env(),
                         stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        for i in range(2)
    ]
    outputs = wait_all(procs, timeout=600)
    for p, (stdout, stderr) in zip(procs, outputs):
        assert p.returncode == 0, stderr[-3000:]
    assert "run dir" in outputs[0][0] and "run dir" not in outputs[1][0], "process 0 alone reports"
    import csv

    rows = list(csv.DictReader((run_dir / "progress.csv").open()))
    assert [r["iteration"] for r in rows] == ["1", "2", "3", "4"], "4 iterations, written once"
    # evaluations and checkpoints mid-run (process 0 evaluates and writes; the others wait for it)
    assert [bool(r["eval_return_mean"]) for r in rows] == [False, True, False, True]
    assert sorted(os.listdir(run_dir / "checkpoints")) == ["2", "4"]
    params = checkpoint.restore(str(run_dir))["policy"]["params"]
    np.testing.assert_allclose(params, single_device_params, **TOLERANCE)


def test_particles_that_do_not_split_over_the_devices_are_refused():
    """3 pairs are 6 particles: not a multiple of 4 devices (one line, naming num_pairs)."""
    out = subprocess.run([sys.executable, "-m", "pes_rl.cli", "train", "--backend", "mjx", "--num-pairs", "3",
                          "--total-steps", "10000", "--no-progress"], cwd=ROOT, capture_output=True, text=True,
                         env=_env(XLA_FLAGS="--xla_force_host_platform_device_count=4"), timeout=300)
    assert out.returncode == 2 and "Traceback" not in out.stderr, out.stderr[-3000:]
    assert out.stderr.strip().splitlines() == [
        "pes-rl train: error: num_pairs must be a multiple of 2 so that the 2 x num_pairs particles split evenly "
        "over 4 devices; got 3"
    ]


def test_a_bad_process_id_is_a_one_line_error():
    out = subprocess.run([sys.executable, "-m", "pes_rl.cli", "train", "--backend", "mjx", "--num-processes", "2",
                          "--process-id", "2", "--no-progress"], cwd=ROOT, capture_output=True, text=True, env=_env(),
                         timeout=300)
    assert out.returncode == 2 and out.stderr.strip().splitlines() == [
        "pes-rl train: error: process_id must be between 0 and num_processes - 1 (1); got 2"
    ], out.stderr[-3000:]


@pytest.mark.parametrize("devices, num_pairs, ok", [(1, 3, True), (2, 3, True), (4, 2, True), (4, 3, False),
                                                    (8, 6, False), (8, 4, True), (3, 3, True), (3, 2, False)])
def test_divisibility_rule(devices, num_pairs, ok):
    mesh = type("FakeMesh", (), {"size": devices})()
    if ok:
        sharding.check_divisible(num_pairs, mesh)
    else:
        with pytest.raises(ValueError, match=f"num_pairs must be a multiple of .* over {devices} devices; got {num_pairs}"):
            sharding.check_divisible(num_pairs, mesh)
