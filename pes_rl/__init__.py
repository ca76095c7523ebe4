"""pes_rl: Persistent Evolution Strategies for reinforcement learning.

``pes_rl.train(config) -> TrainResult`` is the Python API; ``pes-rl`` the CLI.
"""

from pes_rl.config import Config, ConfigError, make_config
from pes_rl.loading import PolicyAgent, load_policy, load_run
from pes_rl.trainer import TrainResult, train

try:  # one source: pyproject.toml's version, as installed
    from importlib.metadata import PackageNotFoundError as _NotInstalled
    from importlib.metadata import version as _installed_version

    __version__ = _installed_version("pes_rl")
except _NotInstalled:  # imported from a source tree without `pip install -e .`
    __version__ = "0+unknown"
__all__ = ["PolicyAgent", "Config", "ConfigError", "TrainResult", "load_policy", "load_run", "make_config", "train"]
