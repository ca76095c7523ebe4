"""pes-rl's persistent compilation cache (pes_rl/compile_cache.py), in fresh processes: where it
goes, how it is switched off, and that a configured JAX cache is left as the user set it."""

import os
import subprocess
import sys

PROBE = """
import jax
from pes_rl import compile_cache
print(compile_cache.enable())
jax.jit(lambda x: x * 3 + 2)(1.0)
"""


def _run(code: str, tmp_path, **env) -> subprocess.CompletedProcess:
    clean = {k: v for k, v in os.environ.items() if not k.startswith(("JAX_COMPILATION_CACHE", "JAX_PERSISTENT_CACHE",
                                                                         "PES_RL_COMPILATION_CACHE", "XDG_CACHE"))}
    return subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120,
                          env=clean | {"HOME": str(tmp_path / "home")} | env)


def test_default_cache_is_under_the_users_cache_dir_and_fills(tmp_path):
    out = _run(PROBE, tmp_path, XDG_CACHE_HOME=str(tmp_path / "xdg"))
    assert out.returncode == 0, out.stderr
    path = tmp_path / "xdg" / "pes_rl" / "jax"
    assert out.stdout.strip() == str(path)
    assert any(name.startswith("jit_") for name in os.listdir(path)), "a small compilation is cached too"
    assert "Error reading persistent compilation cache" not in out.stderr, out.stderr


def test_cache_switched_off(tmp_path):
    """``PES_RL_COMPILATION_CACHE`` set to 0, off or nothing: no cache (one process tries each)."""
    code = """
import os
from pes_rl import compile_cache
for value in ("0", "off", ""):
    os.environ["PES_RL_COMPILATION_CACHE"] = value
    print(compile_cache.enable())
"""
    out = _run(code, tmp_path)
    assert out.returncode == 0, out.stderr
    assert out.stdout.split() == ["None"] * 3 and not (tmp_path / "home" / ".cache").exists()


def test_a_jax_cache_the_user_configured_is_kept(tmp_path):
    mine = tmp_path / "mine"
    out = _run(PROBE, tmp_path, JAX_COMPILATION_CACHE_DIR=str(mine), PES_RL_COMPILATION_CACHE=str(tmp_path / "ours"))
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == str(mine) and not (tmp_path / "ours").exists()


def test_an_unwritable_cache_dir_leaves_the_run_uncached(tmp_path):
    blocker = tmp_path / "file"
    blocker.write_text("not a directory")
    out = _run(PROBE, tmp_path, PES_RL_COMPILATION_CACHE=str(blocker / "jax"))
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == "None"


def test_pes_rl_train_caches_its_programs(tmp_path):
    """The CLI turns the cache on: a training run leaves its compiled programs there."""
    cache = tmp_path / "cache"
    code = "import sys; from pes_rl.cli import main; sys.exit(main(sys.argv[1:]))"
    cmd = [sys.executable, "-c", code, "train", "--env", "swimmer", "--backend", "gymnasium", "--num-pairs", "2",
           "-K", "20", "-T", "40", "--total-steps", "160", "--eval-every", "0", "--no-progress",
           "--run-dir", str(tmp_path / "run")]
    clean = {k: v for k, v in os.environ.items() if not k.startswith(("JAX_COMPILATION_CACHE", "JAX_PERSISTENT_CACHE"))}
    out = subprocess.run(cmd, capture_output=True, text=True, timeout=300,
                         env=clean | {"PES_RL_COMPILATION_CACHE": str(cache)})
    assert out.returncode == 0, out.stderr
    assert len(os.listdir(cache)) >= 5, os.listdir(cache)
