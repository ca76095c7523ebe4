"""``auto`` picks mjx only where an accelerator out-steps the CPU for the run's population, and
``preset`` picks the large-population settings where an accelerator will run them."""

import subprocess
import sys

import pytest

from pes_rl import envs
from pes_rl.backend_choice import CPU_STEPS_PER_S_PER_CORE, MJX_SECONDS_PER_STEP, choose_backend, crossover_particles
from pes_rl.config import GPU_PRESETS, ConfigError, make_config


def test_crossover_is_where_the_two_rates_meet():
    for cores in (1, 2, 16, 64):
        p = crossover_particles(cores)
        assert (p - 1) / MJX_SECONDS_PER_STEP < cores * CPU_STEPS_PER_S_PER_CORE <= p / MJX_SECONDS_PER_STEP


@pytest.mark.parametrize("requested, particles, accelerator, cores, mjx_task, expected", [
    ("auto", 20, False, 2, True, "gymnasium"),          # no accelerator
    ("auto", 10**6, False, 2, True, "gymnasium"),
    ("auto", 20, True, 16, True, "gymnasium"),          # the Swimmer preset's 20 envs on a GPU box
    ("auto", 2048, True, 16, True, "gymnasium"),        # below 16 cores' crossover
    ("auto", 65536, True, 16, True, "mjx"),             # far above it
    ("auto", 65536, True, 16, False, "gymnasium"),      # a gymnasium id has no mjx version
    ("mjx", 20, True, 16, True, "mjx"),                 # an explicit backend always wins
    ("gymnasium", 65536, True, 16, True, "gymnasium"),
])
def test_choose_backend(requested, particles, accelerator, cores, mjx_task, expected):
    backend, why = choose_backend(requested, particles, accelerator, cores, mjx_task)
    assert backend == expected and why


def test_train_says_which_backend_auto_chose(tmp_path):
    base = [sys.executable, "-m", "pes_rl", "train", "--env", "swimmer", "--num-pairs", "2", "-K", "10", "-T", "20",
            "--total-steps", "40", "--eval-episodes", "1", "--no-progress"]
    out = subprocess.run(base + ["--run-dir", str(tmp_path / "a")], capture_output=True, text=True, timeout=300)
    assert out.returncode == 0, out.stderr
    assert "pes_rl: backend auto -> gymnasium: no GPU/TPU: C MuJoCo threads on the CPU" in out.stderr.splitlines()
    out = subprocess.run(base + ["--backend", "gymnasium", "--run-dir", str(tmp_path / "b")], capture_output=True,
                         text=True, timeout=300)
    assert out.returncode == 0, out.stderr
    assert "backend auto" not in out.stderr


def test_gpu_preset_is_chosen_where_an_accelerator_will_run_it(monkeypatch):
    assert make_config().preset == "default"  # no accelerator here
    monkeypatch.setattr(envs, "accelerator_available", lambda: True)
    gpu = make_config()
    assert gpu.preset == "gpu" and gpu.num_pairs == GPU_PRESETS["swimmer"]["num_pairs"]
    assert gpu.eval_backend == "gymnasium"  # an mjx evaluation would be T sequential steps
    assert make_config(num_pairs=10).preset == "default"  # the caller chose the population
    assert make_config(backend="gymnasium").preset == "default"
    assert make_config(env="walker2d").preset == "default"  # no gpu preset for it
    cheetah = make_config(env="halfcheetah")
    assert cheetah.preset == "gpu" and cheetah.num_pairs == GPU_PRESETS["halfcheetah"]["num_pairs"]
    assert make_config(preset="default").num_pairs == 10


def test_gpu_preset_explicitly_and_its_errors():
    config = make_config(preset="gpu", backend="gymnasium")  # tuned on the CPU: it must run there too
    assert (config.num_pairs, config.truncation_length) == (GPU_PRESETS["swimmer"]["num_pairs"],
                                                             GPU_PRESETS["swimmer"]["truncation_length"])
    with pytest.raises(ConfigError, match="preset gpu: env 'walker2d' has no gpu preset; envs with one: swimmer, "
                                          "halfcheetah, hopper"):
        make_config(env="walker2d", preset="gpu")
    with pytest.raises(ConfigError, match="preset must be one of default, gpu; got 'tpu'"):
        make_config(preset="tpu")
