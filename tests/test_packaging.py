"""The installed distribution puts one top-level package, ``pes_rl``, into site-packages: the
folders ``envs/`` and ``agents/`` install as ``pes_rl.envs`` and ``pes_rl.agents``, so another
project's ``envs`` or ``agents`` module can neither break nor be broken by pes_rl."""

import importlib.metadata
import subprocess
import sys


def test_the_distribution_declares_one_top_level_package():
    top_level = importlib.metadata.distribution("pes_rl").read_text("top_level.txt")
    assert top_level.split() == ["pes_rl"]


def test_no_top_level_envs_or_agents_is_importable_outside_the_checkout(tmp_path):
    """From a directory outside the source tree (no checkout on sys.path), only the namespaced
    names import."""
    code = ("import importlib.util as u; import pes_rl.envs, pes_rl.agents.pes; "
            "print(u.find_spec('envs'), u.find_spec('agents'), pes_rl.envs.__name__, pes_rl.agents.pes.__name__)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=tmp_path, timeout=120)
    assert out.returncode == 0, out.stderr
    assert out.stdout.split() == ["None", "None", "pes_rl.envs", "pes_rl.agents.pes"]


def test_the_lazy_api_lists_what_it_exports():
    """``pes_rl/__init__.py`` imports its API on first use: ``__all__`` (a literal, for static
    tools) and the lazy table name the same objects, and each one resolves."""
    import pes_rl

    assert sorted(pes_rl.__all__) == sorted(pes_rl._API)
    for name in pes_rl.__all__:
        assert getattr(pes_rl, name).__module__ == pes_rl._API[name]
