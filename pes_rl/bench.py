"""``pes-rl bench``: raw environment stepping vs the full PES loop, on every backend here.

For each backend the same batch (``2N`` envs) and the same policy evaluation are
timed twice in one process:

* **raw**: the batch stepped with a perturbed policy (θ₀ + σε, ε redrawn every K
  steps), nothing else: no estimator, no update, no logging.
* **pes**: :func:`pes_rl.train` itself (perturbation, rollout, estimator, update,
  resets, progress.csv/TensorBoard logging); steps/s are taken over the chunks
  after the first, whose time (compilation included) is reported as ``warmup_s``.

On the CPU, ``mujoco_limit_steps_per_s`` is what C MuJoCo does with the machine:
the raw run's own trajectories (same initial states, same controls) replayed
open loop by ``mujoco.rollout`` on every core, one call, no policy, no Python per
env. (The cost of a MuJoCo step depends on the state — joint limits engage —
so the limit is measured on the very states the policy visits.)

``memory`` compares peak RSS of two short training processes with horizons
T = 1,000 and T = 100,000 and the same K: PES's memory must not grow with T.
Env steps count every simulated step of every particle.
"""

from __future__ import annotations

import json
import os
import platform
import subprocess
import sys
import tempfile
import time
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np

import envs
from agents.normalization import init_normalizer, normalize
from envs.mujoco_threaded import default_threads

ENV = "swimmer"
CPU_PAIRS = {"gymnasium": 256, "mjx": 32}
GPU_PAIRS = (512, 2048, 8192, 32768)


def _config(backend: str, num_pairs: int, truncation_length: int, horizon: int = 1000, **extra):
    from pes_rl.config import make_config

    return make_config(
        env=ENV, backend=backend, num_pairs=num_pairs, truncation_length=truncation_length, horizon=horizon,
        eval_every=0, checkpoint_every=0, progress_bar=False, **extra,
    )


def _perturbed(flat0: jax.Array, sigma: float, num_particles: int, seed: int) -> jax.Array:
    eps = jax.random.normal(jax.random.PRNGKey(seed), (num_particles // 2, flat0.shape[0]))
    return flat0[None, :] + sigma * jnp.concatenate([eps, -eps])


def raw_host(num_pairs: int, truncation_length: int, windows: int = 2, threaded: bool = True) -> dict[str, Any]:
    """Raw stepping of the CPU batch (threaded C MuJoCo or gymnasium's vector env) with the
    PES policy evaluation. Threaded: the open-loop replay of the same trajectories gives
    ``mujoco_limit_steps_per_s`` too."""
    from pes_rl.trainer import build_policy

    config = _config("gymnasium", num_pairs, truncation_length)
    P = config.num_particles
    env = envs.make(ENV, "gymnasium", num_envs=P, episode_length=config.horizon, threaded=threaded)
    policy, flat0, unravel = build_policy(config, env.observation_size, env.action_size, env.action_low, env.action_high)
    normalizer = init_normalizer(env.observation_size)

    def act(theta, obs):
        return policy.apply(unravel(theta), normalize(normalizer, obs, config.normalize_obs))

    batched = jax.jit(jax.vmap(act))
    obs = env.reset(np.arange(P))
    start = env.get_state() if threaded else None
    thetas = _perturbed(flat0, config.sigma, P, 0)
    np.asarray(batched(thetas, obs.astype(np.float32)))  # compile outside the timing
    steps = windows * truncation_length
    controls = np.empty((P, steps, env.action_size))
    t0 = time.perf_counter()
    for t in range(steps):
        if t % truncation_length == 0:
            thetas = _perturbed(flat0, config.sigma, P, t)
        controls[:, t] = np.asarray(batched(thetas, obs.astype(np.float32)))
        obs, _, terminated, truncated = env.step(controls[:, t])
        done = terminated | truncated
        if done.any():
            obs = env.reset(np.arange(P) + t, mask=done)
    elapsed = time.perf_counter() - t0
    out = {"num_envs": P, "raw_steps_per_s": P * steps / elapsed}
    if threaded:
        out["mujoco_limit_steps_per_s"] = mujoco_limit(env, start, controls)
    env.close()
    return out


def mujoco_limit(env, start: dict, controls: np.ndarray) -> float:
    """Env steps/s of ``mujoco.rollout`` on every core replaying ``controls`` (P, S, nu)
    open loop from ``start``: the machine's C MuJoCo limit on these trajectories."""
    P, S, _ = controls.shape
    t0 = time.perf_counter()
    env.open_loop(start["physics"], controls)
    return P * S / (time.perf_counter() - t0)


def single_thread_steps_per_s(seconds: float = 1.0) -> float:
    """One C MuJoCo Swimmer (``mj_step`` × frame_skip) on one thread, for context."""
    import gymnasium as gym
    import mujoco

    sim = gym.make(envs.gymnasium_id(ENV)).unwrapped
    sim.reset(seed=0)
    n, t0 = 0, time.perf_counter()
    while time.perf_counter() - t0 < seconds:
        for _ in range(200):
            sim.data.ctrl[:] = np.sin(0.1 * n)
            mujoco.mj_step(sim.model, sim.data, nstep=sim.frame_skip)
            n += 1
    return n / (time.perf_counter() - t0)


def raw_mjx(num_pairs: int, truncation_length: int, windows: int = 3) -> dict[str, Any]:
    """Raw MJX stepping: the vmapped env and policy in one jitted K-step scan per window."""
    from pes_rl.trainer import build_policy

    config = _config("mjx", num_pairs, truncation_length)
    P = config.num_particles
    env = envs.make(ENV, "mjx", episode_length=config.horizon)
    policy, flat0, unravel = build_policy(config, env.observation_size, env.action_size, env.action_low, env.action_high)
    normalizer = init_normalizer(env.observation_size)

    def member(theta, state, key):
        def step(state, _):
            action = policy.apply(unravel(theta), normalize(normalizer, state.obs, config.normalize_obs))
            return env.step(state, action), None

        # Swimmer only ends at its time limit, a multiple of K: reset once, at the window's end
        state = jax.lax.scan(step, state, None, length=truncation_length)[0]
        fresh = env.reset(jax.random.fold_in(key, state.steps))
        return jax.tree_util.tree_map(lambda a, b: jnp.where(state.done, a, b), fresh, state)

    window = jax.jit(jax.vmap(member), donate_argnums=(1,))
    keys = jax.random.split(jax.random.PRNGKey(0), P)
    states = jax.jit(jax.vmap(env.reset))(keys)
    t0 = time.perf_counter()
    states = jax.block_until_ready(window(_perturbed(flat0, config.sigma, P, 0), states, keys))
    warmup = time.perf_counter() - t0
    t0 = time.perf_counter()
    for w in range(windows):
        states = window(_perturbed(flat0, config.sigma, P, w + 1), states, keys)
    jax.block_until_ready(states)
    elapsed = time.perf_counter() - t0
    return {"num_envs": P, "raw_steps_per_s": P * truncation_length * windows / elapsed, "raw_warmup_s": warmup}


def pes_loop(backend: str, num_pairs: int, truncation_length: int, iterations: int = 4, chunk: int = 1) -> dict[str, Any]:
    """Env steps/s of :func:`pes_rl.train` after its first chunk (compilation), logging on."""
    from pes_rl.trainer import train

    config = _config(backend, num_pairs, truncation_length, log_every=chunk)
    total = config.steps_per_iteration * chunk * (iterations + 1)
    with tempfile.TemporaryDirectory() as run_dir:
        t0 = time.perf_counter()
        result = train(config, total_steps=total, run_dir=os.path.join(run_dir, "run"))
        wall = time.perf_counter() - t0
    first, last = result.metrics[0], result.metrics[-1]
    steps = last["env_steps"] - first["env_steps"]
    return {
        "pes_steps_per_s": steps / (last["wall_time"] - first["wall_time"]),
        "warmup_s": first["wall_time"],
        "total_s": wall,
    }


def memory_probe(horizon: int, truncation_length: int = 100, num_pairs: int = 16, iterations: int = 5) -> int:
    """Peak RSS (KiB) of a fresh process that trains ``iterations`` iterations with horizon T."""
    # VmHWM, not ru_maxrss: Linux carries ru_maxrss across exec, so a child of a big parent
    # (this benchmark, after compiling MJX) would report the parent's size.
    code = (
        "import resource, pes_rl\n"
        f"pes_rl.train(env={ENV!r}, num_pairs={num_pairs}, truncation_length={truncation_length}, horizon={horizon}, "
        f"total_steps={2 * num_pairs * truncation_length * iterations}, eval_every=0, checkpoint_every=0, progress_bar=False)\n"
        "try:\n"
        "    print(next(int(l.split()[1]) for l in open('/proc/self/status') if l.startswith('VmHWM:')))\n"
        "except (OSError, StopIteration):\n"
        "    print(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss)\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    return int(out.stdout.strip().splitlines()[-1])


def _ratio(entry: dict) -> dict:
    entry["ratio"] = entry["pes_steps_per_s"] / entry["raw_steps_per_s"]
    return entry


def run(backends: list[str] | None = None, num_pairs: list[int] | None = None, truncation_length: int = 200,
        memory: bool = True, vector: bool = False, scaling: bool = False, log=print) -> dict[str, Any]:
    """Run the benchmark; returns the nested dict ``pes-rl bench --json`` prints.

    ``num_pairs``: batch sizes in pairs (the gymnasium backend takes the first; mjx
    measures each, a batch-size curve). Default: 256 pairs for gymnasium, 32 for mjx on
    a CPU, 512..32768 on a GPU.
    """
    gpu = envs.accelerator_available()
    backends = backends or (["mjx"] if gpu else ["gymnasium", "mjx"])
    report: dict[str, Any] = {"machine": machine()}
    if "gymnasium" in backends:
        n = num_pairs[0] if num_pairs else CPU_PAIRS["gymnasium"]
        log(f"gymnasium (threaded C MuJoCo): {2 * n} envs, raw stepping")
        raw = raw_host(n, truncation_length)
        limit = raw.pop("mujoco_limit_steps_per_s")
        log("gymnasium: PES loop")
        entry = _ratio({**raw, **pes_loop("gymnasium", n, truncation_length)})
        entry["pes_over_mujoco_limit"] = entry["pes_steps_per_s"] / limit
        report["cpu"] = {"mujoco_limit_steps_per_s": limit, "mujoco_one_thread_steps_per_s": single_thread_steps_per_s(),
                         "threads": default_threads(), "gymnasium": entry}
        if vector:
            log("gymnasium vector env (SyncVectorEnv): raw stepping")
            raw = raw_host(n, truncation_length, windows=1, threaded=False)
            report["cpu"]["gymnasium_vector"] = {**raw}
    if "mjx" in backends:
        sizes = list(num_pairs) if num_pairs else (list(GPU_PAIRS) if gpu else [CPU_PAIRS["mjx"]])
        curve = []
        for n in sizes:
            log(f"mjx: {2 * n} envs, raw stepping (compiling)")
            raw = raw_mjx(n, truncation_length)
            log(f"mjx: {2 * n} envs, PES loop (compiling)")
            curve.append(_ratio({**raw, **pes_loop("mjx", n, truncation_length, iterations=3 if gpu else 2, chunk=2)}))
        best = max(curve, key=lambda e: e["pes_steps_per_s"])
        entry = {**best, "curve": curve} if len(curve) > 1 else best
        report.setdefault("gpu" if gpu else "cpu", {})["mjx"] = entry
    if scaling:
        from pes_rl.scaling import scaling_table

        report["scaling"] = []
        for backend in backends:
            log(f"scaling: {backend} on 1, 2, 4 devices / 2 processes (a subprocess each)")
            report["scaling"] += scaling_table((1, 2, 4), (2,), {"backend": backend})
    if memory:
        log("memory: T = 1,000 vs T = 100,000")
        small, large = memory_probe(1000), memory_probe(100_000)
        report["memory"] = {"rss_kib_T1000": small, "rss_kib_T100000": large, "rss_growth_T100000_over_T1000": large / small}
    return report


def machine() -> dict[str, Any]:
    cpu = platform.processor() or platform.machine()
    try:
        with open("/proc/cpuinfo") as f:
            cpu = next(line.split(":", 1)[1].strip() for line in f if line.startswith("model name"))
    except (OSError, StopIteration):
        pass
    return {"cpu": cpu, "cores": default_threads(),
            "jax_devices": [str(d) for d in jax.devices()], "jax": jax.__version__}


def table(report: dict[str, Any]) -> str:
    """The report as a plain-text table."""
    rows = [("where", "backend", "envs", "raw steps/s", "PES steps/s", "PES/raw", "warm-up s")]
    for where in ("cpu", "gpu"):
        for backend, e in report.get(where, {}).items():
            if not isinstance(e, dict):
                continue
            for point in e.get("curve", [e]):
                rows.append((where, backend, str(point["num_envs"]), f"{point['raw_steps_per_s']:,.0f}",
                             f"{point['pes_steps_per_s']:,.0f}" if "pes_steps_per_s" in point else "-",
                             f"{point['ratio']:.2f}" if "ratio" in point else "-",
                             f"{point['warmup_s']:.1f}" if "warmup_s" in point else "-"))
    widths = [max(len(r[i]) for r in rows) for i in range(len(rows[0]))]
    lines = ["  ".join(c.rjust(w) for c, w in zip(r, widths)) for r in rows]
    cpu = report.get("cpu", {})
    if "mujoco_limit_steps_per_s" in cpu:
        g = cpu["gymnasium"]
        lines.append(f"C MuJoCo limit on {cpu['threads']} threads (same trajectories, open loop): "
                     f"{cpu['mujoco_limit_steps_per_s']:,.0f} steps/s; PES/limit {g['pes_over_mujoco_limit']:.2f}; "
                     f"one thread {cpu['mujoco_one_thread_steps_per_s']:,.0f} steps/s")
    for row in report.get("scaling", []):
        lines.append(f"scaling {row['backend']}: {row['layout']}, {row['particles']} particles: "
                     f"{row['steps_per_s']:,.0f} steps/s")
    if "memory" in report:
        m = report["memory"]
        lines.append(f"peak RSS T=100,000 / T=1,000: {m['rss_growth_T100000_over_T1000']:.3f} "
                     f"({m['rss_kib_T100000'] / 1024:.0f} / {m['rss_kib_T1000'] / 1024:.0f} MiB)")
    lines.append(f"machine: {report['machine']['cpu']}, {report['machine']['cores']} cores, JAX {report['machine']['jax_devices']}")
    return "\n".join(lines)


def to_json(report: dict[str, Any]) -> str:
    return json.dumps(report, separators=(",", ":"))

