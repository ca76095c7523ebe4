"""Imports run one way, ``envs`` → ``agents`` → ``pes_rl`` (installed as ``pes_rl.envs``,
``pes_rl.agents`` and ``pes_rl``), with no cycle between modules, counting imports inside functions
too (read from the source, so nothing is imported to check); and importing a lower layer does not
load a higher one (``pes_rl/__init__.py`` imports its API lazily)."""

import ast
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
LAYERS = ("envs", "agents", "pes_rl")  # a module may import from its own layer and the ones before it
PACKAGES = {"envs": "pes_rl.envs", "agents": "pes_rl.agents", "pes_rl": "pes_rl"}  # folder -> installed name


def _modules() -> dict[str, Path]:
    mods = {}
    for folder, package in PACKAGES.items():
        for path in (ROOT / folder).glob("*.py"):
            mods[package if path.stem == "__init__" else f"{package}.{path.stem}"] = path
    return mods


def layer(module: str) -> str:
    """The layer (a folder of LAYERS) a module's installed name belongs to."""
    return next(folder for folder, package in PACKAGES.items() if module == package or module.startswith(package + "."))


def import_graph(mods: dict[str, Path]) -> dict[str, set[str]]:
    """Module -> the project modules it imports anywhere in its source. ``from pkg import mod``
    counts as importing ``pkg.mod``; ``pkg`` itself only when a name comes from its ``__init__``."""
    graph = {}
    for name, path in mods.items():
        found: set[str] = set()
        for node in ast.walk(ast.parse(path.read_text(), str(path))):
            if isinstance(node, ast.Import):
                found.update(alias.name for alias in node.names)
            elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
                subs = [f"{node.module}.{alias.name}" for alias in node.names]
                found.update(s for s in subs if s in mods)
                if any(s not in mods for s in subs):
                    found.add(node.module)
        graph[name] = {m for m in found if m in mods and m != name}
    return graph


def find_cycle(graph: dict[str, set[str]]) -> list[str] | None:
    """One import cycle as a path ``[a, b, ..., a]``, or None (depth-first search)."""
    state: dict[str, int] = {}  # 1: on the current path, 2: done
    path: list[str] = []

    def visit(node: str) -> list[str] | None:
        state[node] = 1
        path.append(node)
        for nxt in sorted(graph[node]):
            if state.get(nxt) == 1:
                return path[path.index(nxt):] + [nxt]
            if nxt not in state and (cycle := visit(nxt)):
                return cycle
        path.pop()
        state[node] = 2
        return None

    for start in sorted(graph):
        if start not in state and (cycle := visit(start)):
            return cycle
    return None


def test_imports_follow_the_layers():
    graph = import_graph(_modules())
    rank = {layer: i for i, layer in enumerate(LAYERS)}
    upward = sorted((a, b) for a, targets in graph.items() for b in targets
                    if rank[layer(b)] > rank[layer(a)])
    assert upward == [], f"imports against the layers envs -> agents -> pes_rl: {upward}"


@pytest.mark.parametrize("module, absent", [
    ("pes_rl.envs", ("pes_rl.agents", "pes_rl.trainer", "pes_rl.config")),
    ("pes_rl.agents.pes", ("pes_rl.trainer", "pes_rl.config", "pes_rl.runners")),
])
def test_a_lower_layer_loads_no_higher_one(module, absent):
    """``import pes_rl.envs`` runs ``pes_rl/__init__.py`` first: it must not pull in the trainer."""
    code = f"import sys, {module}; print(sorted(m for m in {absent!r} if m in sys.modules))"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == "[]"


def test_no_import_cycle():
    assert find_cycle(import_graph(_modules())) is None


@pytest.mark.parametrize("graph, cycle", [
    ({"a": {"b"}, "b": {"c"}, "c": {"a"}}, ["a", "b", "c", "a"]),
    ({"a": {"b"}, "b": set(), "c": {"b"}}, None),
])
def test_find_cycle(graph, cycle):
    assert find_cycle(graph) == cycle
