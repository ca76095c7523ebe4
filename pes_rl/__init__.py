"""pes_rl: Persistent Evolution Strategies for reinforcement learning.

``pes_rl.train(config) -> TrainResult`` is the Python API; ``pes-rl`` the CLI. The simulators
are :mod:`pes_rl.envs` and the estimators :mod:`pes_rl.agents` (folders ``envs/`` and ``agents/``
of the source tree, installed under this package so that no top-level ``envs`` or ``agents`` is).

The API below is imported on first use (PEP 562), so that ``import pes_rl.envs`` loads the
simulators alone, not the trainer above them.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING

if TYPE_CHECKING:  # for type checkers and IDEs; at run time __getattr__ imports on first use
    from pes_rl.config import Config, ConfigError, make_config
    from pes_rl.loading import PolicyAgent, load_policy, load_run
    from pes_rl.trainer import TrainResult, train

_API = {  # name -> the module that defines it
    "Config": "pes_rl.config", "ConfigError": "pes_rl.config", "make_config": "pes_rl.config",
    "PolicyAgent": "pes_rl.loading", "load_policy": "pes_rl.loading", "load_run": "pes_rl.loading",
    "TrainResult": "pes_rl.trainer", "train": "pes_rl.trainer",
}

try:  # one source: pyproject.toml's version, as installed
    from importlib.metadata import PackageNotFoundError as _NotInstalled
    from importlib.metadata import version as _installed_version

    __version__ = _installed_version("pes_rl")
except _NotInstalled:  # imported from a source tree without `pip install -e .`
    __version__ = "0+unknown"
__all__ = ["Config", "ConfigError", "PolicyAgent", "TrainResult", "load_policy", "load_run", "make_config", "train"]


def __getattr__(name: str):
    if name in _API:
        value = getattr(importlib.import_module(_API[name]), name)
        globals()[name] = value  # once: later lookups skip this function
        return value
    raise AttributeError(f"module 'pes_rl' has no attribute {name!r}")


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(_API))
