"""``pes-rl``: train and evaluate PES policies (a thin layer over :func:`pes_rl.train`)."""

from __future__ import annotations

import argparse
import contextlib
import json
import logging
import os
import signal
import sys
import threading
import typing


class _Parser(argparse.ArgumentParser):
    """argparse, but a usage error is one line naming the option (no usage dump)."""

    def error(self, message: str):
        self.exit(2, f"{self.prog}: error: {message}\n")


def _env_help(default: str) -> str:
    """``--env`` help: the short names from :data:`pes_rl.envs.ENV_NAMES` (one source with the code that
    accepts them), and that any registered gymnasium id works on the gymnasium backend."""
    from pes_rl import envs

    return (f"short name: {', '.join(envs.ENV_NAMES)} (each runs on the gymnasium and mjx backends; on mjx, "
            f"{', '.join(envs.MJX_PORTS)} are gymnasium's tasks on MJX and the others Brax's); Brax's task by name: "
            f"{', '.join(envs.BRAX_MJX_NAMES)} (mjx only); a MuJoCo "
            f"Playground DM Control task: {', '.join(envs.PLAYGROUND_NAMES)} (mjx only; the playground extra); or any "
            f"registered gymnasium id with a Box action space, e.g. Pendulum-v1 (gymnasium backend only); {default}")


def _backend_help() -> str:
    from pes_rl import envs

    return f"one of {', '.join(envs.BACKENDS)}; default: the run's backend"


def _train_parser(sub) -> None:
    p = sub.add_parser(
        "train",
        help="train a policy with PES",
        description="Train a policy with PES. Unset options take the env's preset (see pes_rl/config.py), "
        "then the defaults. Precedence: defaults < preset < --config file < flags.",
    )
    add_config_flags(p)
    p.add_argument("--config", help="JSON file of config fields (same shape as a run's config.json)")
    p.add_argument("--resume", action="store_true", help="continue RUN_DIR from its latest checkpoint")
    p.add_argument("--overwrite", action="store_true", help="replace an existing RUN_DIR")
    p.add_argument("--no-progress", action="store_true", help="no progress bar")
    d = p.add_argument_group(
        "multi-process / multi-host",
        "Start one process per host (or per GPU) with the same flags; together they train one population: "
        "on mjx sharded over every device of every process, on gymnasium each process steps num_pairs / "
        "processes pairs on its own cores. Unset options come from JAX_COORDINATOR_ADDRESS, "
        "JAX_NUM_PROCESSES and JAX_PROCESS_ID, else JAX's cluster auto-detection (SLURM, Open MPI). "
        "Process 0 writes the logs and checkpoints; RUN_DIR must be on a filesystem every process sees.",
    )
    d.add_argument("--distributed", action="store_true", help="join a multi-process JAX job (jax.distributed.initialize)")
    d.add_argument("--coordinator-address", help="HOST:PORT of process 0's coordinator (implies --distributed)")
    d.add_argument("--num-processes", type=int, help="processes in the job (implies --distributed)")
    d.add_argument("--process-id", type=int, help="this process's index, 0 .. num_processes-1 (implies --distributed)")


def _eval_parser(sub) -> None:
    p = sub.add_parser("eval", help="evaluate a trained run's deterministic policy over full episodes")
    p.add_argument("--run-dir", required=True)
    p.add_argument("--env", help=_env_help("default: the run's env"))
    p.add_argument("--backend", help=_backend_help())
    p.add_argument("--episodes", type=int, default=10)
    p.add_argument("--seed", type=int, default=0, help="evaluation seed")
    p.add_argument("--json", action="store_true", help="print only one JSON object on stdout (the summary line "
                   "goes to stderr)")


def _record_parser(sub) -> None:
    p = sub.add_parser("record", help="render a trained run's deterministic policy to an mp4 (headless, EGL)")
    p.add_argument("--run-dir", required=True)
    p.add_argument("--out", help="output .mp4; default videos/<run name>.mp4")
    p.add_argument("--episodes", type=int, default=1)
    p.add_argument("--env", help=_env_help("default: the run's env"))
    p.add_argument("--backend", help=_backend_help())
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--width", type=int, default=480)
    p.add_argument("--height", type=int, default=360)
    p.add_argument("--full-quality", action="store_true", help="render with the model's own shadow map (MuJoCo's "
                   "default, 4096 x 4096) and 4x multisampling; default: a shadow map sized to the frame and no "
                   "multisampling, about 3x faster without a GPU (docs/getting_started.md#videos)")
    p.add_argument("--no-progress", action="store_true", help="no progress bar")


def _bench_parser(sub) -> None:
    p = sub.add_parser(
        "bench",
        help="time raw env stepping vs the full PES loop on every backend here (Swimmer, or --env)",
        description="Time raw batched stepping of one task (same batch, same policy evaluation) and the full PES "
        "training loop on every backend available, in one process; on the CPU also the C MuJoCo limit "
        "(mujoco.batch on every core replaying the transitions of the raw run and, recorded by a second "
        "identical run, of the PES loop), and peak RSS at T = 100,000 "
        "vs T = 1,000. Compilation/warm-up is reported separately.",
    )
    from pes_rl.bench import MIN_TIMED_STEPS, threaded_env_names
    from pes_rl.envs import IMPLS

    p.add_argument("--env", default="swimmer", help="the task: a short name the threaded C MuJoCo batch steps "
                   f"({', '.join(threaded_env_names())}; default swimmer); on mjx, swimmer is pes_rl's MJX port "
                   "and the others Brax's MJX tasks (without --backend, a CPU measures those on gymnasium only); "
                   "or a MuJoCo Playground task (CheetahRun, ...; mjx only)")
    p.add_argument("--backend", action="append", choices=("gymnasium", "mjx"),
                   help="only this backend (repeatable); default: gymnasium and mjx on a CPU, mjx on a GPU")
    p.add_argument("--num-pairs", type=int, nargs="+", help="antithetic pairs (envs = 2 x pairs); several values give "
                   "mjx a batch-size curve (gymnasium takes the first); default 256 for gymnasium, 32 for mjx on a "
                   "CPU, the curve 512 2048 8192 32768 on a GPU")
    p.add_argument("--mjx-impl", nargs="+", choices=IMPLS, metavar="IMPL",
                   help=f"MJX's implementations to time side by side ({', '.join(IMPLS)}; default: the env's own)")
    p.add_argument("--truncation-length", "-K", type=int, default=200, help="K (default 200)")
    p.add_argument("--min-timed-steps", type=int, default=MIN_TIMED_STEPS,
                   help=f"on the host, time raw stepping and the PES loop over at least this many env steps "
                   f"(at most 100 iterations; default {MIN_TIMED_STEPS:,})")
    p.add_argument("--no-memory", action="store_true", help="skip the T = 1,000 vs 100,000 peak-RSS probe")
    p.add_argument("--vector", action="store_true", help="also time gymnasium's SyncVectorEnv path (raw)")
    p.add_argument("--scaling", action="store_true", help="also the PES loop on 1, 2, 4 devices (mjx; forced host "
                   "devices on a CPU) and on 2 jax.distributed processes, each layout in fresh subprocesses")
    p.add_argument("--json", action="store_true", help="print only one JSON object on stdout (the table and "
                   "progress go to stderr)")


def flag_fields() -> list:
    """The :class:`pes_rl.Config` fields that are ``pes-rl train`` flags (all but ``progress_bar``)."""
    import dataclasses

    from pes_rl.config import Config

    return [f for f in dataclasses.fields(Config) if f.metadata["flag"]]


def add_config_flags(p: argparse.ArgumentParser) -> None:
    """One flag per :class:`pes_rl.Config` field, generated from the field: its name, type, help,
    allowed values and default are declared once, in pes_rl/config.py. Every flag defaults to
    None (unset), so that the env's preset and a ``--config`` file can fill it."""
    from pes_rl.config import FIELD_TYPES, Config

    for f in flag_fields():
        names = [f"--{f.name.replace('_', '-')}"] + ([f.metadata["short"]] if f.metadata["short"] else [])
        hint = FIELD_TYPES[f.name]
        optional = type(None) in typing.get_args(hint)
        base = next(a for a in typing.get_args(hint) if a is not type(None)) if optional else hint
        default = getattr(Config, f.name)
        shown = ",".join(map(str, default)) if f.name == "hidden" else ("unset" if default is None else default)
        help_ = f.metadata["help"]
        if f.metadata["choices"] is not None:
            help_ += f" (one of: {', '.join(f.metadata['choices'])})"
        if "unset" not in help_:  # else the help already says what unset means
            help_ += f"; default {shown}, or the env's preset"
        if f.name == "env":
            help_ = _env_help(f"default {default}")
        if base is bool:
            p.add_argument(*names, dest=f.name, action=argparse.BooleanOptionalAction, default=None, help=help_)
        else:  # ints and floats parse here; strings (hidden "64,64" too) are checked by the config
            p.add_argument(*names, dest=f.name, type=base if base in (int, float) else str, help=help_)


def config_from_args(args):
    """The run's :class:`pes_rl.Config` from parsed ``train`` arguments: defaults < preset < the
    resumed run's config.json < ``--config`` file < flags; validated (a one-line ConfigError)."""
    from pes_rl.config import ConfigError, load_config_file, make_config

    fields: dict = {}
    if args.resume:
        if not args.run_dir:
            raise ConfigError("run_dir: --resume needs --run-dir")
        saved = os.path.join(args.run_dir, "config.json")
        if not os.path.exists(saved):
            raise ConfigError(f"resume: {args.run_dir!r} has no config.json; nothing to resume")
        fields.update(load_config_file(saved, what="resume"))
    if args.config:
        fields.update(load_config_file(args.config))
    fields.update({f.name: getattr(args, f.name) for f in flag_fields() if getattr(args, f.name) is not None})
    if args.no_progress:
        fields["progress_bar"] = False
    config = make_config(**fields)
    if config.run_dir is None:
        config.run_dir = os.path.join("runs", f"{config.env}_{config.agent}_seed{config.seed}")
    return config


def _check_coordinator_address(address: str | None) -> None:
    """``HOST:PORT`` with a port in 1..65535, before JAX would fail on it with a traceback."""
    from pes_rl.config import ConfigError

    if address is None:
        return
    host, _, port = address.rpartition(":")
    if not host or not port.isdigit() or not 1 <= int(port) <= 65535 or any(c.isspace() for c in address):
        raise ConfigError(f"coordinator_address must be HOST:PORT (e.g. 10.0.0.1:1234); got {address!r}")


def _cmd_train(args) -> int:
    distributed = args.distributed or any(
        getattr(args, k) is not None for k in ("coordinator_address", "num_processes", "process_id")
    )
    config = config_from_args(args)  # validated before a coordinator is joined or anything is written
    if distributed:  # before any JAX computation
        from pes_rl.distributed import initialize_distributed

        _check_coordinator_address(args.coordinator_address)
        initialize_distributed(args.coordinator_address, args.num_processes, args.process_id)
    from pes_rl.trainer import train

    result = train(config, resume=args.resume, overwrite=args.overwrite)
    import jax

    if jax.process_index() != 0:  # process 0 speaks for the job
        return 0
    final = result.final_eval_return
    print(f"trained {config.env} for {result.env_steps} env steps; final evaluation return "
          f"{final:.1f}; run dir {config.run_dir}" if final is not None else f"run dir {config.run_dir}")
    return 0


def _cmd_eval(args) -> int:
    import numpy as np

    from pes_rl import envs
    from pes_rl.evaluation import evaluate_gymnasium, make_mjx_evaluator
    from pes_rl.loading import env_for_policy, load_run, policy_for_env
    from pes_rl.policy_io import apply_flat, make_batched_act, policy_callable

    from pes_rl.config import MAX_COUNT, MAX_SEED
    from pes_rl.resources import check_batch

    _check_range("episodes", args.episodes, 1, MAX_COUNT)
    _check_range("seed", args.seed, 0, MAX_SEED)
    config, theta, normalizer = load_run(args.run_dir)
    env_name = args.env or config.env
    backend = envs.resolve_backend(args.backend or config.backend, env_name)
    env = env_for_policy(env_name, backend, config.horizon, config.mjx_impl)
    check_batch(env, args.episodes, "episodes")  # every episode runs at once
    policy, unravel = policy_for_env(config, theta, env)
    if backend == "mjx":
        import jax

        evaluate = make_mjx_evaluator(env, apply_flat(policy, unravel), config.normalize_obs, args.episodes)
        returns = np.asarray(evaluate(theta, normalizer, jax.random.PRNGKey(args.seed)))
    else:
        act = policy_callable(make_batched_act(policy, unravel, config.normalize_obs), theta, normalizer)
        returns = evaluate_gymnasium(env_name, act, args.episodes, args.seed, config.horizon)
    summary = {
        "env": env_name,
        "backend": backend,
        "episodes": int(args.episodes),
        "seed": int(args.seed),
        "mean_return": float(np.mean(returns)),
        "std_return": float(np.std(returns)),
        "min_return": float(np.min(returns)),
        "max_return": float(np.max(returns)),
    }
    print(f"{env_name} on {backend}: mean return {summary['mean_return']:.2f} ± {summary['std_return']:.2f} "
          f"over {args.episodes} episodes", file=_human(args))
    if args.json:
        _print_json(summary)
    return 0


def _cmd_record(args) -> int:
    from pes_rl.config import MAX_COUNT, MAX_SEED, ConfigError
    from pes_rl.video import record

    _check_range("episodes", args.episodes, 1, MAX_COUNT)
    _check_range("seed", args.seed, 0, MAX_SEED)
    for name in ("width", "height"):
        _check_range(name, getattr(args, name), 1, MAX_FRAME_SIDE)
    if args.out is not None and not args.out.endswith(".mp4"):
        raise ConfigError(f"out must be a path ending in .mp4; got {args.out!r}")
    info = record(args.run_dir, args.out, env_name=args.env, backend=args.backend, episodes=args.episodes,
                  seed=args.seed, width=args.width, height=args.height, full_quality=args.full_quality,
                  progress=not args.no_progress)
    print(f"wrote {info['path']}: {info['frames']} frames at {info['fps']:.0f} fps, "
          f"returns {', '.join(f'{r:.1f}' for r in info['returns'])}")
    return 0


MAX_FRAME_SIDE = 8192  # MuJoCo's offscreen buffer and H.264 both stop well before this


def _check_range(name: str, value: int, minimum: int, maximum: int) -> None:
    from pes_rl.config import ConfigError

    if not minimum <= value <= maximum:
        raise ConfigError(f"{name} must be an integer between {minimum} and {maximum:,}; got {value}")


def _cmd_bench(args) -> int:
    from pes_rl import bench
    from pes_rl.config import ConfigError

    for name in ("num_pairs", "truncation_length", "min_timed_steps"):
        values = getattr(args, name)
        for value in values if isinstance(values, list) else [values]:
            if value is not None and value < 1:
                raise ConfigError(f"{name} must be an integer >= 1; got {value}")
    report = bench.run(args.backend, args.num_pairs, args.truncation_length, memory=not args.no_memory,
                       vector=args.vector, scaling=args.scaling, env=args.env, mjx_impls=args.mjx_impl,
                       min_timed_steps=args.min_timed_steps,
                       log=lambda m: print(f"bench: {m}", file=sys.stderr, flush=True))
    print(bench.table(report), file=_human(args))
    if args.json:
        _print_json(report, bench.to_json(report))
    return 0


# --json: stdout carries the JSON object alone. The real stdout is kept here while the command runs
# with stdout pointed at stderr (Python's sys.stdout and file descriptor 1 both, so that a print or a C
# library's printf in the middle of the work cannot land in the JSON stream).
_JSON_OUT = None


def _human(args):
    """Where a command's human-readable lines go: stderr under ``--json``, else stdout."""
    return sys.stderr if getattr(args, "json", False) else sys.stdout


def _print_json(obj, text: str | None = None) -> None:
    out = _JSON_OUT if _JSON_OUT is not None else sys.stdout
    out.write((json.dumps(obj, sort_keys=True) if text is None else text) + "\n")
    out.flush()


@contextlib.contextmanager
def _stdout_to_stderr():
    """While the body runs, stdout (``sys.stdout`` and fd 1) goes to stderr; :func:`_print_json`
    writes to the real stdout."""
    global _JSON_OUT
    sys.stdout.flush()
    try:
        saved_fd = os.dup(1)
    except OSError:  # no fd 1 (an embedding without one): Python-level redirection only
        saved_fd = None
    real = open(saved_fd, "w", closefd=False) if saved_fd is not None else sys.stdout
    if saved_fd is not None:
        os.dup2(2, 1)
    _JSON_OUT = real
    try:
        with contextlib.redirect_stdout(sys.stderr):
            yield
    finally:
        _JSON_OUT = None
        sys.stderr.flush()
        if saved_fd is not None:
            real.flush()
            os.dup2(saved_fd, 1)
            os.close(saved_fd)


def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(
        prog="pes-rl",
        description="Train policies with Persistent Evolution Strategies on MuJoCo-XLA, Brax and gymnasium.",
    )
    from pes_rl import __version__  # the installed pes_rl distribution's (importlib.metadata)

    parser.add_argument("--version", action="version", version=f"pes-rl {__version__}",
                        help="print pes-rl's version (the installed pes_rl distribution's) and exit")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", parser_class=_Parser)
    _train_parser(sub)
    _eval_parser(sub)
    _record_parser(sub)
    _bench_parser(sub)
    return parser


class _Terminated(Exception):
    """SIGTERM, raised in the main thread so that it unwinds like Ctrl-C (locks released, files closed)."""


def _on_sigterm(signum, frame):
    raise _Terminated()


class _OneLine(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        return f"pes-rl: {record.levelname.lower()}: {record.getMessage()}"


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if args.command is None:
        parser.print_help()
        return 0
    from pes_rl.config import ConfigError

    # orbax logs recoverable trouble through absl; the CLI reports errors in one line of its own
    logging.getLogger("absl").setLevel(logging.CRITICAL)
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(_OneLine())
    ours = logging.getLogger("pes_rl")
    ours.addHandler(handler)
    ours.propagate = False
    in_main_thread = threading.current_thread() is threading.main_thread()  # signal handlers live there only
    previous = signal.signal(signal.SIGTERM, _on_sigterm) if in_main_thread else None
    command = {"train": _cmd_train, "eval": _cmd_eval, "record": _cmd_record, "bench": _cmd_bench}[args.command]
    if args.command != "bench":  # bench reports compilation time: it compiles afresh
        from pes_rl import compile_cache

        compile_cache.enable()
    try:
        with _stdout_to_stderr() if getattr(args, "json", False) else contextlib.nullcontext():
            return command(args)
    except (ConfigError, ValueError) as e:
        message = str(e).splitlines()[0] if str(e) else type(e).__name__
        print(f"pes-rl {args.command}: error: {message}", file=sys.stderr)
        return 2
    except MemoryError:
        print(f"pes-rl {args.command}: error: out of memory; lower the sizes (num_pairs, hidden, episodes)",
              file=sys.stderr)
        return 2
    except RuntimeError as e:
        from pes_rl.trainer import TrainingDiverged

        if not isinstance(e, TrainingDiverged):
            raise
        print(f"pes-rl {args.command}: error: {e}", file=sys.stderr)
        return 3
    except KeyboardInterrupt:
        print(f"pes-rl {args.command}: interrupted", file=sys.stderr)
        return 130
    except _Terminated:
        print(f"pes-rl {args.command}: terminated (SIGTERM)", file=sys.stderr)
        return 143
    finally:
        if in_main_thread:
            signal.signal(signal.SIGTERM, previous)
        ours.removeHandler(handler)


if __name__ == "__main__":
    sys.exit(main())
