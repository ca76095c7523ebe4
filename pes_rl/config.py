"""The training configuration: one typed dataclass, per-env presets, validation.

Every field is checked before any work; a bad value raises
:class:`ConfigError` whose one-line message names the field and what is
allowed (the CLI prints it and exits with status 2).
"""

from __future__ import annotations

import dataclasses
import importlib.util
import json
import math
import numbers
import typing
from dataclasses import dataclass
from typing import Any

import numpy as np

from pes_rl import envs
from pes_rl.envs.playground_tasks import INSTALL_HINT as PLAYGROUND_INSTALL_HINT
from pes_rl.agents.policies import POLICIES

# pes: persistent ES; es: full-episode ES (K = T); tes: truncated ES (biased); nres: noise-reuse ES;
# ars: Augmented Random Search V2-t (Mania et al. 2018; full episodes, K = T)
AGENTS = ("pes", "es", "tes", "nres", "ars")
PRESET_KINDS = ("default", "gpu")  # PRESETS (small batches, the CPU) or GPU_PRESETS (large populations)
OPTIMIZERS = ("sgd", "adam")
RESET_AT = ("window", "step")
STAGGERS = ("offset", "burn-in", "none")

# Upper limits. Python ints are unbounded but the arrays, PRNG seeds and counters they end up in are
# not; past these a value is a typo, not a plan, and would fail deep inside JAX, numpy or gymnasium.
MAX_SEED = 2**32 - 1  # jax.random.PRNGKey and numpy's SeedSequence take 32-bit words
MAX_STEPS = 10**15  # env-step counters are int64; 1e15 steps is decades of simulation
MAX_HORIZON = 10**7  # an evaluation runs eval_episodes whole episodes: T past 1e7 would never finish one
MAX_COUNT = 2**31 - 1  # sizes that become int32 array dimensions (pairs, episodes, window length)
MAX_LAYER = 2**20  # one hidden layer's width; the memory check bounds the whole policy
MAX_SCALE = 1e18  # sigma, lr: sigma^2 and lr * gradient must stay finite in float32 (max 3.4e38)
MIN_SIGMA = 1e-18  # sigma^2 must not underflow float32 (the estimate divides by it)


class ConfigError(ValueError):
    """A configuration value is not allowed; the message is one line naming the field."""


def _field(default: Any, help: str, *, short: str | None = None, choices: tuple[str, ...] | None = None,
           flag: bool = True) -> Any:
    """A :class:`Config` field with its CLI help: ``pes-rl train``'s flags are generated from these
    (:func:`pes_rl.cli.add_config_flags`); ``choices`` are the allowed values (validation and help)."""
    return dataclasses.field(default=default, metadata={"help": help, "short": short, "choices": choices, "flag": flag})


@dataclass
class Config:
    """Everything a training run needs. ``None`` fields take the env's preset, then the default.

    Each field's metadata holds its ``pes-rl train`` help and allowed values: the flags are
    generated from this class, so a field is declared here and nowhere else."""

    env: str = _field("swimmer", "the task: a short name of pes_rl.envs.ENV_NAMES (on mjx, swimmer, hopper, walker2d "
                      "and halfcheetah are gymnasium's tasks on MJX, the others Brax's), Brax's task by name "
                      "(pes_rl.envs.BRAX_MJX_NAMES, e.g. brax_hopper; mjx only), a MuJoCo Playground DM Control "
                      "task of pes_rl.envs.PLAYGROUND_NAMES (e.g. CheetahRun; mjx only, the playground extra) or, on "
                      "the gymnasium backend, any registered gymnasium id with a Box action space (e.g. Pendulum-v1)")
    backend: str = _field("auto", "auto: mjx on a GPU/TPU (or for a task that runs on mjx only), else gymnasium",
                          choices=envs.BACKENDS)
    mjx_impl: str | None = _field(None, "MJX's implementation on the mjx backend: jax (XLA) or warp (MJX-Warp) for "
                                  "swimmer and the MuJoCo Playground tasks (Brax's take jax only). Unset: "
                                  "pes_rl.envs.default_impl (jax, but warp for Playground's tasks on a GPU/TPU with warp-lang installed)", choices=envs.IMPLS)
    agent: str = _field("pes", "pes; es (full-episode ES: K = T); tes (truncated ES: biased); nres (noise-reuse "
                        "ES: one perturbation per episode); ars (Augmented Random Search V2-t: K = T, "
                        "normalize-obs and return-std scaling on by default)", choices=AGENTS)
    total_steps: int = _field(200_000, "env steps to train for (every particle step, burn-in included)")
    seed: int = _field(0, "random seed")
    run_dir: str | None = _field(None, "where config.json, progress.csv, tb/ and checkpoints/ go; "
                                 "unset: runs/ENV_AGENT_seedS")
    num_pairs: int = _field(10, "N antithetic pairs (2N particles)")
    sigma: float = _field(0.3, "perturbation scale σ")
    lr: float = _field(0.1, "learning rate")
    lr_end: float | None = _field(None, "decay the learning rate linearly from lr to this over total_steps")
    truncation_length: int = _field(100, "K, env steps per truncation window", short="-K")
    horizon: int = _field(1000, "T, the episode length (time limit)", short="-T")
    policy: str = _field("linear", "linear (no bias, zero init) or mlp", choices=POLICIES)
    hidden: tuple[int, ...] = _field((64, 64), "mlp hidden sizes, e.g. 64,64")
    optimizer: str = _field("sgd", "sgd (as in the paper) or adam", choices=OPTIMIZERS)
    return_std_scaling: bool = _field(True, "divide the estimate by the std of the window returns instead of σ "
                                      "(the PES code's divide_by_variance)")
    normalize_obs: bool = _field(False, "running observation normalisation, updated between iterations")
    stagger: str = _field("offset", "so pairs do not reset in lockstep, pair i starts b_i ~ U{0..ceil(T/K)-1} "
                          "windows into its first episode: offset (its first episode is that much shorter; no "
                          "extra steps), burn-in (it first runs b_i windows with the unperturbed policy; counted) "
                          "or none", choices=STAGGERS)
    reset_at: str = _field("window", "when an episode ends inside a window: window (idle until the window ends, "
                           "then reset: the gradient of the episodic return) or step (reset at once, later steps "
                           "weighted by the current noise alone: the gradient of the return summed over time)",
                           choices=RESET_AT)
    eval_every: int = _field(10, "iterations between evaluations (0: only at the end)")
    eval_episodes: int = _field(5, "episodes per evaluation")
    eval_backend: str | None = _field(None, "backend for evaluations; unset: the training backend", choices=envs.BACKENDS)
    checkpoint_every: int = _field(50, "iterations between checkpoints (0: only at the end)")
    capture_video: bool = _field(False, "record one episode to RUN_DIR/videos/ at every evaluation")
    log_every: int = _field(1, "iterations per logged row (and per jitted call on mjx)")
    progress_bar: bool = _field(True, "a progress bar on stderr (the CLI's --no-progress)", flag=False)
    reward_shift: float = _field(0.0, "subtract this from every simulated step's reward while training (ARS's "
                                 "shift; e.g. 1 removes Hopper's alive bonus); evaluations and the logged episode "
                                 "returns stay the true returns")
    preset: str = _field("default", "which settings fill the unset fields: default (tuned for the CPU's small "
                         "batches) or gpu (a large population for an accelerator; pes_rl.config.GPU_PRESETS). "
                         "Unset: gpu when a GPU/TPU is present, the backend is auto or mjx, the env has a gpu "
                         "preset and num_pairs is not given; else default", choices=PRESET_KINDS)
    top_directions: int | None = _field(None, "b, 1..num_pairs: only the b pairs with the largest max(R+, R-) "
                                        "contribute (ARS's top-b; return-std scaling then uses their 2b returns). A "
                                        "heuristic that biases the estimate: it favours directions that happened to "
                                        "score high, so with b < N it is no longer an unbiased gradient of the "
                                        "smoothed objective. Unset: all pairs")

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
    def from_dict(cls, d: Any) -> "Config":
        """A Config from a mapping of field: value (a JSON object, a run's config.json); every value
        is checked and converted strictly (:func:`coerce_field`): unknown fields are refused."""
        if not isinstance(d, dict):
            raise ConfigError(f"config must be a JSON object (a dict) of field: value; got {type(d).__name__}")
        names = [f.name for f in dataclasses.fields(cls)]
        unknown = sorted(str(k) for k in d if k not in names)
        if unknown:
            raise ConfigError(f"config: unknown field(s) {', '.join(unknown)}; allowed: {', '.join(sorted(names))}")
        return cls(**{k: coerce_field(k, v) for k, v in d.items()})


# Settings that train well per env; the CLI and ``make_config`` fill unset fields from these.
# What MuJoCo Playground's DM Control presets share: a 32x32 MLP, K = 100 of T = 1,000, σ 0.1, Adam
# 0.02, normalised observations, evaluations every 10 iterations (tuned on CartpoleSwingup and ReacherEasy).
_DMC_MLP: dict[str, Any] = dict(
    policy="mlp", hidden=(32, 32), truncation_length=100, sigma=0.1, lr=0.02, optimizer="adam", normalize_obs=True,
    return_std_scaling=True, eval_every=10,
)

PRESETS: dict[str, dict[str, Any]] = {  # env -> fields; "agents": agent -> fields for that agent
    # Tuned on gymnasium Swimmer-v5 with scripts/swimmer_sample_efficiency.py (docs/tasks_and_presets.md#swimmer).
    # NRES (--agent nres) takes twice the step: on seeds 0-4 its median to 325 / 350 was 44k / 64k env
    # steps with lr 0.3 against 44k / 92k with 0.15 (PES itself: 76k / 120k; lr 0.3, K = 100 or N = 5
    # were worse for PES). Evaluations every 20 iterations (80k env steps; progress.csv logs the training
    # returns every iteration): 5 episodes every 20k env steps cost 16-20% of the run's wall time on 2 cores
    # (scripts/evaluation_share.py; docs/performance.md, "Sixth round").
    "swimmer": dict(
        num_pairs=10, truncation_length=200, sigma=0.1, lr=0.15, return_std_scaling=True, total_steps=200_000,
        eval_every=20, agents=dict(nres=dict(lr=0.3)),
    ),
    # InvertedPendulum-v5: whole-episode windows, tuned on seeds 0-4 (all five reach 1000 within 1e5
    # env steps; with K = 100 windows, seeds 8 and 9 of the held-out five did not). Both pendulums
    # evaluate every 10 iterations: at every iteration evaluations took 30% of the run's wall time.
    "inverted_pendulum": dict(
        num_pairs=8, truncation_length=1000, sigma=0.3, lr=0.5, return_std_scaling=True, total_steps=100_000,
        eval_every=10,
    ),
    # InvertedDoublePendulum-v5: whole-episode windows (early falls end episodes), tuned on seeds 0-2:
    # all three past 9350 within 5e4 env steps (σ = 0.3 without normalisation: none of three).
    "inverted_double_pendulum": dict(
        num_pairs=8, truncation_length=1000, sigma=0.1, lr=0.1, normalize_obs=True, return_std_scaling=True,
        total_steps=100_000, eval_every=10,
    ),
    # Reacher-v5 (50-step episodes): one of eight settings tried on seeds 0-1 (linear or a 32x32 MLP,
    # N 8-32, σ 0.05-0.3, the ars agent), which all ended alike; none reaches the -3.75 threshold
    # (docs/tasks_and_presets.md).
    "reacher": dict(
        horizon=50, truncation_length=50, num_pairs=8, sigma=0.1, lr=0.05, normalize_obs=True,
        return_std_scaling=True, total_steps=500_000, eval_every=25,
    ),
    # Pendulum-v1 (200-step episodes, no termination): a linear policy cannot both swing up and
    # balance, so a 32x32 MLP. Truncated PES (K = 50, four windows an episode) beat whole-episode
    # windows on seeds 0-1 (best -293 and -299 vs -853 and -957 within 3e6 env steps).
    "Pendulum-v1": dict(
        horizon=200, truncation_length=50, policy="mlp", hidden=(32, 32), num_pairs=64, sigma=0.1, lr=0.02,
        optimizer="adam", return_std_scaling=True, total_steps=3_000_000, eval_every=10,
    ),
    # MuJoCo Playground's CartpoleSwingup (mjx only): tuned on seed 0 among four settings at 3M env steps
    # (a linear policy: 328; whole-episode ES windows: 227; this: 417; NRES with 32 pairs: 473).
    "CartpoleSwingup": dict(_DMC_MLP, num_pairs=16, total_steps=5_000_000),
    # MuJoCo Playground's ReacherEasy (mjx only): tuned on seed 0 among seven settings at 3-5M env steps
    # (a linear policy: final 410; 16 pairs: 466; this: 560, best 728; K = T: 562; NRES 16 or 32
    # pairs with or without a decaying lr: 348-547; evaluations of it swing by +-200).
    "ReacherEasy": dict(_DMC_MLP, num_pairs=32, total_steps=5_000_000),
    # MuJoCo Playground's CheetahRun (mjx only): 16 pairs, chosen on seed 0 among four settings at 3M env
    # steps (docs/tasks_and_presets.md): with --agent nres 253; PES with a linear policy 152, with 32
    # pairs 104 (it collapsed after a best of 283).
    "CheetahRun": dict(_DMC_MLP, num_pairs=16, total_steps=3_000_000),
    # MuJoCo Playground's WalkerWalk (mjx only): the one setting tried (seed 0: 220 at 3M env steps, 4.5k
    # env steps/s on one core; docs/tasks_and_presets.md).
    "WalkerWalk": dict(_DMC_MLP, num_pairs=32, total_steps=3_000_000),
    # MuJoCo Playground's SwimmerSwimmer6 and HopperHop (mjx only): WalkerWalk's settings, untuned (no other
    # setting tried on seed 0 did clearly better). Held-out seeds 5-9 at 3M (docs/tasks_and_presets.md):
    # SwimmerSwimmer6 ends near or below each seed's untrained return; HopperHop median 3.8, 27 with nres.
    "SwimmerSwimmer6": dict(_DMC_MLP, num_pairs=32, total_steps=3_000_000),
    "HopperHop": dict(_DMC_MLP, num_pairs=32, total_steps=3_000_000),
    # Hopper-v5 and HalfCheetah-v5, tuned on seed 0 (docs/tasks_and_presets.md). ARS's settings are the
    # ARS paper's (Mania et al. 2018, V2-t); PES's keep its noise scale, population and top-b, with lr = 2α
    # (ARS's step is 2σ/σ_R times the antithetic ES gradient, PES's return-std-scaled estimate σ/σ_R times it).
    # Hopper: whole-episode windows (K = T, where PES is ES); with K = 100 both PES and NRES stalled
    # near 250-670 (seed 0, 1M steps): a truncation ending in a fall hides the return the fall forfeits.
    # HalfCheetah evaluates every 10 iterations (128k env steps): every 5 took 12-18% of the run's wall time.
    "hopper": dict(
        num_pairs=8, top_directions=4, sigma=0.025, lr=0.02, reward_shift=1.0, normalize_obs=True,
        truncation_length=1000, total_steps=1_500_000, eval_every=10,
        agents=dict(ars=dict(lr=0.01)),
    ),
    "halfcheetah": dict(
        num_pairs=32, top_directions=4, sigma=0.03, lr=0.01, normalize_obs=True, truncation_length=200,
        total_steps=1_200_000, eval_every=10,
        agents=dict(ars=dict(lr=0.02)),
    ),
    # Walker2d-v5, Ant-v5 and Humanoid-v5: the ARS paper's V2-t settings (N, b, noise, step; shift =
    # the alive bonus), PES with whole-episode windows and lr = 2α as on Hopper. Not tuned here: a
    # 5e6-step run took 17 min (Walker2d) and 63 min (Ant) sharing this project's two cores
    # (docs/tasks_and_presets.md).
    "walker2d": dict(
        num_pairs=40, top_directions=30, sigma=0.025, lr=0.06, reward_shift=1.0, normalize_obs=True,
        truncation_length=1000, total_steps=20_000_000, eval_every=5,
        agents=dict(ars=dict(lr=0.03)),
    ),
    "ant": dict(
        num_pairs=60, top_directions=20, sigma=0.025, lr=0.03, reward_shift=1.0, normalize_obs=True,
        truncation_length=1000, total_steps=20_000_000, eval_every=5,
        agents=dict(ars=dict(lr=0.015)),
    ),
    "humanoid": dict(
        num_pairs=230, top_directions=230, sigma=0.0075, lr=0.04, reward_shift=5.0, normalize_obs=True,
        truncation_length=1000, total_steps=20_000_000, eval_every=2,
        agents=dict(ars=dict(lr=0.02)),
    ),
}


# Large populations for an accelerator (``preset="gpu"``): on a GPU an iteration costs K env steps of
# latency whatever the batch, so the batch is large, K short and the step long. Sample efficiency does
# not depend on the device: tuned on the CPU's threaded C MuJoCo with the same population
# (docs/gpu.md). Evaluations run on the host's C MuJoCo (an mjx evaluation is T sequential steps).
GPU_PRESETS: dict[str, dict[str, Any]] = {
    # Swimmer, seed 10 (held out from the CPU preset's tuning): lr 0.15 / 0.3 / 0.6 / 1.0 at 512 pairs,
    # K = 100, reached 350 in 21 / 13 / 10 / 39 iterations; K = 50 at lr 0.3 in 39.
    "swimmer": dict(
        num_pairs=1024, truncation_length=100, sigma=0.1, lr=0.6, return_std_scaling=True, total_steps=10_000_000,
        eval_every=1, eval_backend="gymnasium",
    ),
    # HalfCheetah-v5 (gymnasium's own model on mjx too), seed 0, 1,024 pairs, K = 200, σ 0.03 (the CPU
    # preset's): top 256 with lr 0.08 / 0.16 / 0.32 reached 3,430 in 10 / 7 / never (it diverged)
    # iterations; top 512 with lr 0.16 not in 12. 256 pairs (top 64, lr 0.04-0.08) took 14 iterations.
    "halfcheetah": dict(
        num_pairs=1024, top_directions=256, truncation_length=200, sigma=0.03, lr=0.16, normalize_obs=True,
        total_steps=6_000_000, eval_every=1, eval_backend="gymnasium",
    ),
    # Hopper-v5 (gymnasium's model on mjx too), seed 0, 256 pairs, K = T (the CPU preset's σ and shift):
    # top 128 with lr 0.08 reached 3,120 in 31 iterations; top 32 with lr 0.16 in 24 but fell back to
    # 250-450 four times; top 128 with lr 0.04 or 0.16 did worse. Held-out seeds 5-9: 4 of 5 reach 3,120,
    # in a median of 31 iterations (7.3M env steps) against the CPU preset's 184; it plateaus near 3,000-3,250.
    "hopper": dict(
        num_pairs=256, top_directions=128, truncation_length=1000, sigma=0.025, lr=0.08, reward_shift=1.0,
        normalize_obs=True, total_steps=10_000_000, eval_every=1, eval_backend="gymnasium",
    ),
}


# Agent-specific defaults, over the env's preset and under the user's values.
# ars: ARS V2 (state normalisation, σ_R scaling, plain SGD); top_directions unset = all N pairs.
AGENT_DEFAULTS: dict[str, dict[str, Any]] = {
    "ars": dict(normalize_obs=True, return_std_scaling=True, optimizer="sgd"),
}


def preset(env: str, agent: str = Config.agent, kind: str = "default") -> dict[str, Any]:
    """The settings ``env`` trains ``agent`` with: the agent's defaults, then the env's preset of
    ``kind`` (:data:`PRESETS` or :data:`GPU_PRESETS`), then the env's settings for that agent
    (``PRESETS[env]["agents"][agent]``)."""
    env_preset = dict((GPU_PRESETS if kind == "gpu" else PRESETS).get(env, {}))
    by_agent = env_preset.pop("agents", {})
    return {**AGENT_DEFAULTS.get(agent, {}), **env_preset, **by_agent.get(agent, {})}


def parse_hidden(value: Any) -> tuple[int, ...]:
    """``"64,64"`` (the CLI's form) or ``[64, 64]`` (JSON, API) -> ``(64, 64)``; strictly integers."""
    message = f"hidden must be comma-separated positive integers like 64,64; got {value!r}"
    if isinstance(value, str):
        try:
            sizes = tuple(int(v) for v in value.split(","))
        except ValueError:
            raise ConfigError(message) from None
    elif isinstance(value, (list, tuple)) and all(_is_int(v) for v in value):
        sizes = tuple(int(v) for v in value)
    else:
        raise ConfigError(message)
    if not sizes or any(not 1 <= s <= MAX_LAYER for s in sizes):
        raise ConfigError(message + f" (each between 1 and {MAX_LAYER})")
    return sizes


def make_config(**overrides: Any) -> Config:
    """Defaults <- :func:`preset` (env and agent) <- ``overrides`` (``None`` values are ignored); validated.

    A preset's ``top_directions`` is capped at the caller's ``num_pairs`` (``--env hopper --num-pairs 3``
    keeps all 3 pairs rather than failing on the preset's b = 4)."""
    overrides = {k: v for k, v in overrides.items() if v is not None}
    env = overrides.get("env", Config.env)
    agent = overrides.get("agent", Config.agent)
    kind = overrides.get("preset")
    if kind is None:
        kind = auto_preset_kind(env, overrides)
    elif kind not in PRESET_KINDS:
        raise ConfigError(f"preset must be one of {', '.join(PRESET_KINDS)}; got {kind!r}")
    elif kind == "gpu" and env not in GPU_PRESETS:
        raise ConfigError(f"preset gpu: env {env!r} has no gpu preset; envs with one: {', '.join(GPU_PRESETS)}")
    defaults = {**preset(env, agent, kind), "preset": kind} if isinstance(env, str) and isinstance(agent, str) else {}
    pairs, top = overrides.get("num_pairs"), defaults.get("top_directions")
    if "top_directions" not in overrides and top is not None and _is_int(pairs):
        defaults["top_directions"] = max(1, min(top, pairs))  # a preset's b never exceeds the caller's N
    config = Config.from_dict({**defaults, **overrides})
    if config.agent in ("es", "ars"):  # full ES / ARS: one window per episode
        config.truncation_length = config.horizon
    validate(config)
    return config


def auto_preset_kind(env: Any, overrides: dict[str, Any]) -> str:
    """``gpu`` where an unset ``preset`` means it: a GPU/TPU is present, the backend is auto or mjx,
    the env has a gpu preset and the caller did not choose the population; else ``default``."""
    if (isinstance(env, str) and env in GPU_PRESETS and "num_pairs" not in overrides
            and overrides.get("backend", Config.backend) in ("auto", "mjx") and envs.accelerator_available()):
        return "gpu"
    return "default"


def _is_int(value: Any) -> bool:
    """An integer, Python's or numpy's, and not a bool (True is an int to Python, never to us)."""
    return isinstance(value, numbers.Integral) and not isinstance(value, (bool, np.bool_))


def coerce_field(name: str, value: Any) -> Any:
    """``value`` as config field ``name``'s declared type, strictly: a bool must be a bool (not
    ``"false"``, not 1), an int an integer (not ``True``, not 8.7), a float any real number
    (numpy scalars included), a str a str. Raises :class:`ConfigError` naming the field."""
    hint = FIELD_TYPES[name]
    optional = type(None) in typing.get_args(hint)
    if value is None:
        if optional:
            return None
        raise ConfigError(f"{name} must be set (it has no 'unset' value); got null")
    base = next(a for a in typing.get_args(hint) if a is not type(None)) if optional else hint
    if name == "hidden":
        return parse_hidden(value)
    if base is bool:
        if isinstance(value, (bool, np.bool_)):
            return bool(value)
        raise ConfigError(f"{name} must be true or false (a JSON boolean); got {value!r}")
    if base is int:
        if _is_int(value):
            return int(value)
        raise ConfigError(f"{name} must be an integer; got {value!r}")
    if base is float:
        if isinstance(value, numbers.Real) and not isinstance(value, (bool, np.bool_)):
            return float(value)
        raise ConfigError(f"{name} must be a number; got {value!r}")
    if base is str:
        if isinstance(value, str):
            return value
        raise ConfigError(f"{name} must be a string; got {value!r}")
    raise AssertionError(f"no rule for config field {name} of type {hint}")  # a new field needs a rule here


FIELD_TYPES = typing.get_type_hints(Config)


def _check_int(name: str, value: int, minimum: int, maximum: int) -> None:
    if not minimum <= value <= maximum:
        raise ConfigError(f"{name} must be an integer between {minimum} and {maximum:,}; got {value!r}")


def _check_float(name: str, value: float, minimum: float, maximum: float, *, open_min: bool = True) -> None:
    low_ok = value > minimum if open_min else value >= minimum
    if not (math.isfinite(value) and low_ok and value <= maximum):
        bound = f"> {minimum}" if open_min else f">= {minimum}"
        raise ConfigError(f"{name} must be a finite number {bound} and <= {maximum:g}; got {value!r}")


def _check_choice(name: str, value: str, allowed: tuple[str, ...]) -> None:
    if value not in allowed:
        raise ConfigError(f"{name} must be one of {', '.join(allowed)}; got {value!r}")


def validate(config: Config) -> None:
    """Check every field (types strictly, then ranges and combinations); raise
    :class:`ConfigError` naming the first bad one. Converts numpy scalars in place."""
    for f in dataclasses.fields(config):
        setattr(config, f.name, coerce_field(f.name, getattr(config, f.name)))
    for f in dataclasses.fields(config):  # the allowed values declared with each field
        if f.metadata["choices"] is not None and getattr(config, f.name) is not None:
            _check_choice(f.name, getattr(config, f.name), f.metadata["choices"])
    if config.agent == "nres" and config.reset_at != "window":
        raise ConfigError("reset_at must be window for agent nres (its noise changes only between windows)")
    if config.env in envs.MJX_ONLY_NAMES:
        playground = config.env in envs.PLAYGROUND_NAMES
        if playground and importlib.util.find_spec("mujoco_playground") is None:
            raise ConfigError(f"env {config.env!r} needs MuJoCo Playground: {PLAYGROUND_INSTALL_HINT}")
        for name in ("backend", "eval_backend"):
            if getattr(config, name) == "gymnasium":
                raise ConfigError(f"{name} must be auto or mjx for env {config.env!r} "
                                  f"({envs.mjx_only_source(config.env)} runs on mjx only); got 'gymnasium'")
    elif config.env not in envs.ENV_NAMES:
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
    if config.mjx_impl == "warp" and config.env not in ("swimmer",) + envs.PLAYGROUND_NAMES:
        raise ConfigError(f"mjx_impl must be jax or unset for env {config.env!r} (warp: swimmer and MuJoCo Playground's "
                          "tasks); got 'warp'")
    if config.run_dir is not None and (not config.run_dir.strip() or "\0" in config.run_dir):
        raise ConfigError(f"run_dir must be a non-empty path (or unset for runs/ENV_AGENT_seedS); got {config.run_dir!r}")
    _check_int("total_steps", config.total_steps, 1, MAX_STEPS)
    _check_int("seed", config.seed, 0, MAX_SEED)
    _check_int("num_pairs", config.num_pairs, 1, MAX_COUNT)
    _check_float("sigma", config.sigma, MIN_SIGMA, MAX_SCALE, open_min=False)
    _check_float("lr", config.lr, 0.0, MAX_SCALE)
    if config.lr_end is not None:
        _check_float("lr_end", config.lr_end, 0.0, MAX_SCALE, open_min=False)
    _check_int("horizon", config.horizon, 1, MAX_HORIZON)
    _check_int("truncation_length", config.truncation_length, 1, MAX_COUNT)
    if config.truncation_length > config.horizon:
        raise ConfigError(
            f"truncation_length must be between 1 and horizon ({config.horizon}); got {config.truncation_length}"
        )
    _check_int("eval_every", config.eval_every, 0, MAX_STEPS)
    _check_int("eval_episodes", config.eval_episodes, 1, MAX_COUNT)
    _check_int("checkpoint_every", config.checkpoint_every, 0, MAX_STEPS)
    _check_int("log_every", config.log_every, 1, MAX_STEPS)
    _check_float("reward_shift", config.reward_shift, -MAX_SCALE, MAX_SCALE, open_min=False)
    if config.top_directions is not None and not 1 <= config.top_directions <= config.num_pairs:
        raise ConfigError(f"top_directions must be an integer between 1 and num_pairs ({config.num_pairs}); "
                          f"got {config.top_directions}")
    if config.agent == "ars" and config.reset_at != "window":
        raise ConfigError("reset_at must be window for agent ars (one rollout per episode, idle after it ends)")
    if config.steps_per_iteration > config.total_steps:
        raise ConfigError(
            f"total_steps ({config.total_steps:,}) is less than one iteration: {config.num_particles:,} particles x "
            f"truncation_length {config.truncation_length:,} = {config.steps_per_iteration:,} env steps; raise "
            "total_steps or lower num_pairs / truncation_length"
        )


def load_config_file(path: str, what: str = "config") -> dict[str, Any]:
    """Read a JSON object of config fields (a ``--config`` file or a run's ``config.json``);
    any problem with the file is a one-line :class:`ConfigError` naming ``what`` and the path."""
    try:
        with open(path) as f:
            data = json.load(f)
    except FileNotFoundError:
        raise ConfigError(f"{what}: file {path!r} does not exist") from None
    except IsADirectoryError:
        raise ConfigError(f"{what}: {path!r} is a directory, not a JSON file") from None
    except (OSError, UnicodeDecodeError) as e:
        raise ConfigError(f"{what}: {path!r} cannot be read ({type(e).__name__}: {e})") from None
    except json.JSONDecodeError as e:
        raise ConfigError(f"{what}: {path!r} is not valid JSON ({e.msg} at line {e.lineno})") from None
    except RecursionError:
        raise ConfigError(f"{what}: {path!r} nests too deeply to be a config") from None
    if not isinstance(data, dict):
        raise ConfigError(f"{what}: {path!r} must hold a JSON object of field: value; it holds a {type(data).__name__}")
    return data
