"""The training configuration: one typed dataclass, per-env presets, validation.

Every field is checked before any work; a bad value raises
:class:`ConfigError` whose one-line message names the field and what is
allowed (the CLI prints it and exits with status 2).
"""

from __future__ import annotations

import dataclasses
import json
import math
from dataclasses import dataclass
from typing import Any

# pes: persistent ES; es: full-episode ES (K = T); tes: truncated ES (biased); nres: noise-reuse ES;
# ars: Augmented Random Search V2-t (Mania et al. 2018; full episodes, K = T)
AGENTS = ("pes", "es", "tes", "nres", "ars")
POLICIES = ("linear", "mlp")
OPTIMIZERS = ("sgd", "adam")
BACKENDS = ("auto", "mjx", "gymnasium")
RESET_AT = ("window", "step")
STAGGERS = ("offset", "burn-in", "none")


class ConfigError(ValueError):
    """A configuration value is not allowed; the message is one line naming the field."""


@dataclass
class Config:
    """Everything a training run needs. ``None`` fields take the env's preset, then the default."""

    env: str = "swimmer"
    backend: str = "auto"
    agent: str = "pes"
    total_steps: int = 200_000
    seed: int = 0
    run_dir: str | None = None
    num_pairs: int = 10
    sigma: float = 0.3
    lr: float = 0.1
    lr_end: float | None = None
    truncation_length: int = 100
    horizon: int = 1000
    policy: str = "linear"
    hidden: tuple[int, ...] = (64, 64)
    optimizer: str = "sgd"
    return_std_scaling: bool = True
    normalize_obs: bool = False
    stagger: str = "offset"
    reset_at: str = "window"
    eval_every: int = 10
    eval_episodes: int = 5
    eval_backend: str | None = None
    checkpoint_every: int = 50
    capture_video: bool = False
    log_every: int = 1
    progress_bar: bool = True
    reward_shift: float = 0.0  # subtracted from every simulated step's reward while training (ARS's shift)
    top_directions: int | None = None  # ARS's top-b heuristic (biased): only the b best pairs count; None: all

    @property
    def num_particles(self) -> int:
        return 2 * self.num_pairs

    @property
    def steps_per_iteration(self) -> int:
        return self.num_particles * self.truncation_length

    def to_dict(self) -> dict[str, Any]:
        d = dataclasses.asdict(self)
        d["hidden"] = list(self.hidden)
        return d

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> "Config":
        names = {f.name for f in dataclasses.fields(cls)}
        unknown = sorted(set(d) - names)
        if unknown:
            raise ConfigError(f"config: unknown field(s) {', '.join(unknown)}; allowed: {', '.join(sorted(names))}")
        d = dict(d)
        if "hidden" in d and d["hidden"] is not None:
            d["hidden"] = parse_hidden(d["hidden"])
        return cls(**d)


# Settings that train well per env; the CLI and ``make_config`` fill unset fields from these.
PRESETS: dict[str, dict[str, Any]] = {
    # Tuned on gymnasium Swimmer-v5 with scripts/swimmer_sample_efficiency.py (README, "Swimmer").
    "swimmer": dict(
        num_pairs=10, truncation_length=200, sigma=0.1, lr=0.15, return_std_scaling=True, total_steps=200_000,
        eval_every=5,
    ),
    "inverted_pendulum": dict(
        num_pairs=8, truncation_length=100, sigma=0.3, lr=0.5, return_std_scaling=True, total_steps=100_000,
        eval_every=10,
    ),
}


# Agent-specific defaults, over the env's preset and under the user's values.
# ars: ARS V2 (state normalisation, σ_R scaling, plain SGD); top_directions unset = all N pairs.
AGENT_DEFAULTS: dict[str, dict[str, Any]] = {
    "ars": dict(normalize_obs=True, return_std_scaling=True, optimizer="sgd"),
}


def parse_hidden(value: Any) -> tuple[int, ...]:
    """``"64,64"`` or ``[64, 64]`` -> ``(64, 64)``."""
    try:
        if isinstance(value, str):
            sizes = tuple(int(v) for v in value.split(",") if v.strip())
        else:
            sizes = tuple(int(v) for v in value)
    except (TypeError, ValueError):
        raise ConfigError(f"hidden must be comma-separated positive integers like 64,64; got {value!r}") from None
    if not sizes or any(s < 1 for s in sizes):
        raise ConfigError(f"hidden must be comma-separated positive integers like 64,64; got {value!r}")
    return sizes


def make_config(**overrides: Any) -> Config:
    """Defaults <- the env's preset <- ``overrides`` (``None`` values are ignored); validated."""
    overrides = {k: v for k, v in overrides.items() if v is not None}
    env = overrides.get("env", Config.env)
    merged = {**PRESETS.get(env, {}), **AGENT_DEFAULTS.get(overrides.get("agent"), {}), **overrides}
    if merged.get("agent") in ("es", "ars"):  # full ES / ARS: one window per episode
        merged["truncation_length"] = merged.get("horizon", Config.horizon)
    config = Config.from_dict(merged)
    validate(config)
    return config


def validate(config: Config) -> None:
    """Check every field; raise :class:`ConfigError` naming the first bad one."""
    import envs  # local: keep config importable without the simulators

    def positive_int(name: str, value: Any, minimum: int = 1) -> None:
        if not isinstance(value, int) or isinstance(value, bool) or value < minimum:
            raise ConfigError(f"{name} must be an integer >= {minimum}; got {value!r}")

    def positive_float(name: str, value: Any) -> None:
        if not isinstance(value, (int, float)) or isinstance(value, bool) or not math.isfinite(value) or value <= 0:
            raise ConfigError(f"{name} must be a finite number > 0; got {value!r}")

    if config.backend not in BACKENDS:
        raise ConfigError(f"backend must be one of {', '.join(BACKENDS)}; got {config.backend!r}")
    if config.eval_backend is not None and config.eval_backend not in BACKENDS:
        raise ConfigError(f"eval_backend must be one of {', '.join(BACKENDS)}; got {config.eval_backend!r}")
    if config.agent not in AGENTS:
        raise ConfigError(f"agent must be one of {', '.join(AGENTS)}; got {config.agent!r}")
    if config.policy not in POLICIES:
        raise ConfigError(f"policy must be one of {', '.join(POLICIES)}; got {config.policy!r}")
    if config.stagger not in STAGGERS:
        raise ConfigError(f"stagger must be one of {', '.join(STAGGERS)}; got {config.stagger!r}")
    if config.reset_at not in RESET_AT:
        raise ConfigError(f"reset_at must be one of {', '.join(RESET_AT)}; got {config.reset_at!r}")
    if config.agent == "nres" and config.reset_at != "window":
        raise ConfigError("reset_at must be window for agent nres (its noise changes only between windows)")
    if config.optimizer not in OPTIMIZERS:
        raise ConfigError(f"optimizer must be one of {', '.join(OPTIMIZERS)}; got {config.optimizer!r}")
    known = config.env in envs.ENV_NAMES
    if not known:
        try:
            envs.gymnasium_id(config.env)
        except ValueError:
            raise ConfigError(
                f"env must be one of {', '.join(envs.ENV_NAMES)} or a registered gymnasium id; got {config.env!r}"
            ) from None
        if config.backend == "mjx":
            raise ConfigError(
                f"env {config.env!r} is a gymnasium id; backend mjx supports only {', '.join(envs.MJX_NAMES)}"
            )
    positive_int("total_steps", config.total_steps)
    positive_int("num_pairs", config.num_pairs)
    positive_float("sigma", config.sigma)
    positive_float("lr", config.lr)
    if config.lr_end is not None:
        if not isinstance(config.lr_end, (int, float)) or isinstance(config.lr_end, bool) or not 0 <= config.lr_end:
            raise ConfigError(f"lr_end must be a number >= 0 (or unset for a constant lr); got {config.lr_end!r}")
    positive_int("horizon", config.horizon)
    positive_int("truncation_length", config.truncation_length)
    if config.truncation_length > config.horizon:
        raise ConfigError(
            f"truncation_length must be between 1 and horizon ({config.horizon}); got {config.truncation_length}"
        )
    if not isinstance(config.seed, int) or config.seed < 0:
        raise ConfigError(f"seed must be an integer >= 0; got {config.seed!r}")
    positive_int("eval_every", config.eval_every, minimum=0)
    positive_int("eval_episodes", config.eval_episodes)
    positive_int("checkpoint_every", config.checkpoint_every, minimum=0)
    positive_int("log_every", config.log_every)
    shift = config.reward_shift
    if not isinstance(shift, (int, float)) or isinstance(shift, bool) or not math.isfinite(shift):
        raise ConfigError(f"reward_shift must be a finite number; got {shift!r}")
    top = config.top_directions
    if top is not None and (not isinstance(top, int) or isinstance(top, bool) or not 1 <= top <= config.num_pairs):
        raise ConfigError(f"top_directions must be an integer between 1 and num_pairs ({config.num_pairs}); got {top!r}")
    if config.agent == "ars" and config.reset_at != "window":
        raise ConfigError("reset_at must be window for agent ars (one rollout per episode, idle after it ends)")
    config.hidden = parse_hidden(config.hidden)


def load_config_file(path: str) -> dict[str, Any]:
    """Read a JSON config file (the same shape as a run's ``config.json``)."""
    try:
        with open(path) as f:
            data = json.load(f)
    except FileNotFoundError:
        raise ConfigError(f"config: file {path!r} does not exist") from None
    except json.JSONDecodeError as e:
        raise ConfigError(f"config: {path!r} is not valid JSON ({e.msg} at line {e.lineno})") from None
    if not isinstance(data, dict):
        raise ConfigError(f"config: {path!r} must hold a JSON object of field: value")
    return data
