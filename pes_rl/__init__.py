"""pes_rl: Persistent Evolution Strategies for reinforcement learning."""

__version__ = "0.1.0"
