"""pes_rl: Persistent Evolution Strategies for reinforcement learning.

``pes_rl.train(config) -> TrainResult`` is the Python API; ``pes-rl`` the CLI.
"""

from pes_rl.config import Config, ConfigError, make_config
from pes_rl.loading import PolicyAgent, load_policy, load_run
from pes_rl.trainer import TrainResult, train

__version__ = "0.1.0"
__all__ = ["PolicyAgent", "Config", "ConfigError", "TrainResult", "load_policy", "load_run", "make_config", "train"]
