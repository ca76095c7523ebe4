"""Steps/s of the PES loop with the population on 1, 2, 4 ... devices or processes.

On the mjx backend: D devices in one process or P processes; on the gymnasium
backend (threaded C MuJoCo, every core of the process) one process against P
processes, each stepping N/P pairs.

Each layout runs in a fresh subprocess (a forced host-device count must be set
before JAX starts): ``XLA_FLAGS=--xla_force_host_platform_device_count=D`` for D
devices in one process, or P processes joined by ``jax.distributed`` on localhost
(one CPU device each, gloo collectives). On a GPU machine D is capped by the GPUs
JAX sees. The figure is the median of the logged rows' ``steps_per_s`` after the
first (which includes compilation)::

    python -m pes_rl.scaling --devices 1 2 4 --processes 2
"""

from __future__ import annotations

import argparse
import json
import os
import socket
import subprocess
import sys
import time

# A swimmer population big enough to keep a CPU busy, small enough to compile in a minute.
DEFAULT_CONFIG = dict(env="swimmer", backend="mjx", eval_backend="gymnasium", num_pairs=128, truncation_length=50,
                      horizon=1000, log_every=2, eval_every=0, eval_episodes=1, checkpoint_every=0, seed=0)
ROWS = 8  # logged rows per measurement (the first, with compilation, is dropped)


def measure(config: dict) -> dict:
    """Train ``config`` in this process (or this multi-process job); steps/s after compilation."""
    import jax
    import numpy as np

    import pes_rl

    per_row = 2 * config["num_pairs"] * config["truncation_length"] * config["log_every"]
    result = pes_rl.train(**config, total_steps=ROWS * per_row, progress_bar=False, run_dir=None)
    rates = [m["steps_per_s"] for m in result.metrics[1:]]
    return {
        "devices": jax.device_count(),
        "processes": jax.process_count(),
        "platform": jax.devices()[0].platform,
        "device_kind": jax.devices()[0].device_kind,
        "particles": 2 * config["num_pairs"],
        "steps_per_s": float(np.median(rates)),
    }


def free_port() -> int:
    """A TCP port free on localhost now (for a local jax.distributed coordinator)."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_all(procs: list[subprocess.Popen], timeout: float) -> list[tuple[str, str]]:
    """Wait for every process of a job; once one fails the rest are killed (they would wait
    for it in a collective until JAX's timeouts, minutes later). Returns (stdout, stderr)s."""
    deadline = time.monotonic() + timeout
    try:
        while any(p.poll() is None for p in procs) and time.monotonic() < deadline:
            if any(p.poll() not in (None, 0) for p in procs):
                break
            time.sleep(0.5)
    finally:
        for p in procs:
            if p.poll() is None:
                p.kill()
    return [p.communicate() for p in procs]


def _child_env(devices: int | None) -> dict:
    env = dict(os.environ, PYTHONWARNINGS="ignore")
    flags = [f for f in env.get("XLA_FLAGS", "").split() if "xla_force_host_platform_device_count" not in f]
    if devices is not None:
        flags.append(f"--xla_force_host_platform_device_count={devices}")
    env["XLA_FLAGS"] = " ".join(flags)
    return env


def _run(commands: list[list[str]], env: dict, timeout: float) -> dict:
    procs = [subprocess.Popen(c, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True) for c in commands]
    outputs = wait_all(procs, timeout)
    for p, (_, stderr) in zip(procs, outputs):
        if p.returncode != 0:
            raise RuntimeError(f"scaling run failed ({p.returncode}): {stderr.strip().splitlines()[-1:]}")
    return json.loads(outputs[0][0].strip().splitlines()[-1])


def scaling_table(devices=(1, 2, 4), processes=(2,), config: dict | None = None, timeout: float = 900) -> list[dict]:
    """One row per layout: ``D`` devices in one process, then ``P`` single-device processes.

    Returns dicts with ``layout``, ``devices``, ``processes``, ``particles``, ``steps_per_s``,
    ``platform`` and ``device_kind``; ``config`` overrides :data:`DEFAULT_CONFIG`.
    """
    config = {**DEFAULT_CONFIG, **(config or {})}
    if config["backend"] == "gymnasium":  # host batches: no devices to force, one process is the baseline
        devices = (1,)
    me = [sys.executable, "-m", "pes_rl.scaling", "--child", json.dumps(config)]
    rows = []
    for d in devices:
        row = _run([me], _child_env(d), timeout)
        layout = "1 process" if config["backend"] == "gymnasium" else f"{d} device(s), 1 process"
        rows.append({"layout": layout, "backend": config["backend"], **row})
    for p in processes:
        port = free_port()
        commands = [me + ["--coordinator-address", f"127.0.0.1:{port}", "--num-processes", str(p), "--process-id", str(i)]
                    for i in range(p)]
        row = _run(commands, _child_env(None), timeout)
        layout = f"{p} processes" if config["backend"] == "gymnasium" else f"{p} processes, 1 device each"
        rows.append({"layout": layout, "backend": config["backend"], **row})
    return rows


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m pes_rl.scaling", description=__doc__.split("\n\n")[0])
    parser.add_argument("--devices", type=int, nargs="*", default=[1, 2, 4])
    parser.add_argument("--processes", type=int, nargs="*", default=[2])
    parser.add_argument("--num-pairs", type=int, default=DEFAULT_CONFIG["num_pairs"])
    parser.add_argument("--backend", choices=("mjx", "gymnasium"), default="mjx")
    parser.add_argument("--child", help=argparse.SUPPRESS)
    parser.add_argument("--coordinator-address", help=argparse.SUPPRESS)
    parser.add_argument("--num-processes", type=int, help=argparse.SUPPRESS)
    parser.add_argument("--process-id", type=int, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.child:
        if args.coordinator_address:
            from pes_rl.distributed import initialize_distributed

            initialize_distributed(args.coordinator_address, args.num_processes, args.process_id)
        print(json.dumps(measure(json.loads(args.child))))
        return 0
    rows = scaling_table(args.devices, args.processes, {"num_pairs": args.num_pairs, "backend": args.backend})
    print("| layout | particles | env steps/s |\n|---|---|---|")
    for r in rows:
        print(f"| {r['layout']} | {r['particles']} | {r['steps_per_s']:,.0f} |")
    print(f"platform: {rows[0]['platform']} ({rows[0]['device_kind']}), {os.cpu_count()} CPU cores")
    print(json.dumps(rows))
    return 0


if __name__ == "__main__":
    sys.exit(main())
