"""``pes-rl bench``: raw environment stepping vs the full PES loop, on every backend here.

One task (``--env``, default Swimmer; any short name the threaded C MuJoCo batch
steps, :data:`pes_rl.envs.mujoco_threaded.TASKS`; on the mjx backend Swimmer is our own
MJX port and the others are Brax's MJX tasks). For each backend the same batch (``2N`` envs) and the same policy
evaluation are timed twice in one process:

* **raw**: the batch stepped with a perturbed policy (θ₀ + σε, ε redrawn every K
  steps), nothing else: no estimator, no update, no logging.
* **pes**: :func:`pes_rl.train` itself (perturbation, rollout, estimator, update,
  resets, progress.csv/TensorBoard logging); steps/s are taken over the chunks
  after the first, whose time (compilation included) is reported as ``warmup_s``
  (on the host both are timed over at least :data:`MIN_TIMED_STEPS` env steps).

On the CPU, ``mujoco_limit_steps_per_s`` is what C MuJoCo does with the machine:
every transition of the raw run (the state before each env step, warm start
included, and its action) replayed by ``mujoco.batch.Batch.rollout`` on every
core, one call per window of K steps, no policy, no Python per env. (The cost of
a MuJoCo step depends on the state — joint limits engage, contacts come and go,
episodes end and restart — so the limit is measured on the very states the
policy visits, resets included.) ``pes_mujoco_limit_steps_per_s`` is the same
replay of the PES loop's own timed transitions: training is deterministic, so
a second, untimed run of the same loop records them (:func:`recorded_transitions`),
and ``pes_over_mujoco_limit`` divides by this one. The raw run's trajectories are
not the PES loop's: it times the first windows of an episode from reset, the loop
later ones, whose steps cost more (Swimmer, 20 envs: ~19% more in iterations 2–5 than in 6–12).

``memory`` compares peak RSS of two short training processes with horizons
T = 1,000 and T = 100,000 and the same K: PES's memory must not grow with T.
Env steps count every simulated step of every particle.
"""

from __future__ import annotations

import contextlib
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

from pes_rl import envs
from pes_rl.agents.normalization import init_normalizer, normalize
from pes_rl.envs.base import select_states
from pes_rl.envs.mujoco_threaded import ThreadedMujocoEnv, default_threads

ENV = "swimmer"  # the default task
CPU_PAIRS = {"gymnasium": 256, "mjx": 32}
GPU_PAIRS = (512, 2048, 8192, 32768)
# The host PES loop is timed over at least this many env steps (at most 100 iterations after the
# first): at the Swimmer preset's 20 envs four iterations of K = 200 last ~0.3 s, and such
# figures moved by ±5% between calls.
MIN_TIMED_STEPS = 200_000


def _config(backend: str, num_pairs: int, truncation_length: int, horizon: int = 1000, env: str = ENV, **extra):
    from pes_rl.config import make_config

    extra.setdefault("total_steps", 2 * num_pairs * truncation_length)  # at least one iteration, whatever the preset says
    return make_config(
        env=env, backend=backend, num_pairs=num_pairs, truncation_length=truncation_length, horizon=horizon,
        eval_every=0, checkpoint_every=0, progress_bar=False, **extra,
    )


def _perturbed(flat0: jax.Array, sigma: float, num_particles: int, seed: int) -> jax.Array:
    eps = jax.random.normal(jax.random.PRNGKey(seed), (num_particles // 2, flat0.shape[0]))
    return flat0[None, :] + sigma * jnp.concatenate([eps, -eps])


def raw_host(num_pairs: int, truncation_length: int, windows: int = 2, threaded: bool = True,
             env_name: str = ENV) -> dict[str, Any]:
    """Raw stepping of the CPU batch (threaded C MuJoCo or gymnasium's vector env) with the
    PES policy evaluation. Threaded: the replay of the same transitions, window by window,
    gives ``mujoco_limit_steps_per_s`` too."""
    from pes_rl.policy_io import build_policy

    config = _config("gymnasium", num_pairs, truncation_length, env=env_name)
    P = config.num_particles
    env = envs.make(env_name, "gymnasium", num_envs=P, episode_length=config.horizon, threaded=threaded)
    policy, flat0, unravel = build_policy(config, env.observation_size, env.action_size, env.action_low, env.action_high)
    normalizer = init_normalizer(env.observation_size)

    def act(theta, obs):
        return policy.apply(unravel(theta), normalize(normalizer, obs, config.normalize_obs))

    batched = jax.jit(jax.vmap(act))
    obs = env.reset(np.arange(P))
    thetas = _perturbed(flat0, config.sigma, P, 0)
    np.asarray(batched(thetas, obs.astype(np.float32)))  # compile outside the timing
    K = truncation_length
    controls = np.empty((P, K, env.action_size))
    rows = np.empty((P, K, env.physics.shape[1])) if threaded else None
    elapsed = limit = 0.0
    for w in range(windows):
        t0 = time.perf_counter()
        for k in range(K):
            t = w * K + k
            if k == 0:
                thetas = _perturbed(flat0, config.sigma, P, t)
            controls[:, k] = np.asarray(batched(thetas, obs.astype(np.float32)))
            if threaded:  # the state this step starts from, for the replay (not timed)
                pause = time.perf_counter()
                rows[:, k] = env.physics
                t0 += time.perf_counter() - pause
            obs, _, terminated, truncated = env.step(controls[:, k])
            done = terminated | truncated
            if done.any():
                obs = env.reset(np.arange(P) + t, mask=done)
        elapsed += time.perf_counter() - t0
        if threaded:
            limit += mujoco_limit_seconds(env, rows, controls)
    out = {"num_envs": P, "raw_steps_per_s": P * windows * K / elapsed}
    if threaded:
        out["mujoco_limit_steps_per_s"] = P * windows * K / limit
    env.close()
    return out


def mujoco_limit_seconds(env, rows: np.ndarray, controls: np.ndarray) -> float:
    """Seconds C MuJoCo alone takes for the transitions ``rows`` (P, S, nstate) x ``controls``
    (P, S, nu): the P·S env steps as one ``Batch.rollout`` call on every core."""
    P, S, _ = controls.shape
    physics = rows.reshape(P * S, -1)
    actions = controls.reshape(P * S, 1, -1)
    t0 = time.perf_counter()
    env.open_loop(physics, actions)
    return time.perf_counter() - t0


def single_thread_steps_per_s(seconds: float = 1.0, env_name: str = ENV) -> float:
    """One C MuJoCo model of the task (``mj_step`` × frame_skip) on one thread, for context."""
    import gymnasium as gym
    import mujoco

    sim = gym.make(envs.gymnasium_id(env_name)).unwrapped
    sim.reset(seed=0)
    n, t0 = 0, time.perf_counter()
    while time.perf_counter() - t0 < seconds:
        for _ in range(200):
            sim.data.ctrl[:] = np.sin(0.1 * n)
            mujoco.mj_step(sim.model, sim.data, nstep=sim.frame_skip)
            n += 1
    return n / (time.perf_counter() - t0)


def raw_mjx(num_pairs: int, truncation_length: int, windows: int = 3, env_name: str = ENV,
            mjx_impl: str | None = None) -> dict[str, Any]:
    """Raw MJX stepping: the vmapped env and policy in one jitted K-step scan per window.

    Episodes that end inside a window (a Brax task's termination, or the time limit) are
    reset at the window's end; until then their physics keeps stepping, which costs
    the same as stepping a live episode."""
    from pes_rl.policy_io import build_policy

    config = _config("mjx", num_pairs, truncation_length, env=env_name, mjx_impl=mjx_impl)
    P = config.num_particles
    env = envs.make(env_name, "mjx", episode_length=config.horizon, impl=config.mjx_impl)
    policy, flat0, unravel = build_policy(config, env.observation_size, env.action_size, env.action_low, env.action_high)
    normalizer = init_normalizer(env.observation_size)

    def member(theta, state, key):
        def step(state, _):
            action = policy.apply(unravel(theta), normalize(normalizer, state.obs, config.normalize_obs))
            return env.step(state, action), None

        state = jax.lax.scan(step, state, None, length=truncation_length)[0]
        fresh = env.reset(jax.random.fold_in(key, state.steps))
        return select_states(state.done, fresh, state)

    options = envs.compiler_options(env)
    window = jax.jit(jax.vmap(member), donate_argnums=(1,), compiler_options=options)
    keys = jax.random.split(jax.random.PRNGKey(0), P)
    states = jax.jit(jax.vmap(env.reset), compiler_options=options)(keys)
    t0 = time.perf_counter()
    states = jax.block_until_ready(window(_perturbed(flat0, config.sigma, P, 0), states, keys))
    warmup = time.perf_counter() - t0
    t0 = time.perf_counter()
    for w in range(windows):
        states = window(_perturbed(flat0, config.sigma, P, w + 1), states, keys)
    jax.block_until_ready(states)
    elapsed = time.perf_counter() - t0
    return {"num_envs": P, "raw_steps_per_s": P * truncation_length * windows / elapsed, "raw_warmup_s": warmup}


def pes_loop(backend: str, num_pairs: int, truncation_length: int, iterations: int = 4, chunk: int = 1,
             env_name: str = ENV, mjx_impl: str | None = None, limit: bool = False) -> dict[str, Any]:
    """Env steps/s of :func:`pes_rl.train` after its first chunk (compilation), logging on.

    ``limit`` (threaded C MuJoCo only): also ``pes_mujoco_limit_steps_per_s``, the C MuJoCo
    limit on the timed chunks' own transitions, recorded by a second, untimed run of the same
    (deterministic) loop and replayed by :func:`mujoco_limit_seconds`.
    """
    from pes_rl.trainer import train

    extra = {"mjx_impl": mjx_impl} if mjx_impl else {}
    config = _config(backend, num_pairs, truncation_length, env=env_name, log_every=chunk, **extra)
    total = config.steps_per_iteration * chunk * (iterations + 1)

    def timed_rows(log: list | None = None) -> tuple[list[dict], float, np.ndarray]:
        with tempfile.TemporaryDirectory() as run_dir:
            t0 = time.perf_counter()
            with recorded_transitions(log) if log is not None else contextlib.nullcontext():
                result = train(config, total_steps=total, run_dir=os.path.join(run_dir, "run"))
            wall = time.perf_counter() - t0
        rows = result.metrics
        # a last, shorter chunk (where the step budget ran out mid-chunk) compiles a scan of its own length
        if len(rows) > 2 and rows[-1]["iteration"] - rows[-2]["iteration"] != chunk:
            rows = rows[:-1]
        return rows, wall, result.flat_params

    rows, wall, params = timed_rows()
    first, last = rows[0], rows[-1]
    steps = last["env_steps"] - first["env_steps"]
    out = {
        "pes_steps_per_s": steps / (last["wall_time"] - first["wall_time"]),
        "pes_timed_env_steps": steps,
        "warmup_s": first["wall_time"],
        "total_s": wall,
    }
    if limit:
        log: list[tuple[np.ndarray, np.ndarray]] = []
        again, _, params_again = timed_rows(log)
        if [r["env_steps"] for r in again] != [r["env_steps"] for r in rows] or not np.array_equal(params, params_again):
            raise RuntimeError("the PES loop did not repeat itself: its transitions cannot be replayed")
        timed = transitions_between(log, first["env_steps"], last["env_steps"])
        env = envs.make(env_name, "gymnasium", num_envs=1)
        seconds = sum(mujoco_limit_seconds(env, r[:, None], a[:, None]) for r, a in timed)
        env.close()
        out["pes_mujoco_limit_steps_per_s"] = steps / seconds
    return out


@contextlib.contextmanager
def recorded_transitions(log: list):
    """Inside the block, every :meth:`ThreadedMujocoEnv.step` appends ``(env id, rows, actions)`` to
    ``log``: the stepped members' physics rows before the step, (n, nstate), and their actions, (n, nu).
    (The env id tells the training batch, the first to step, from evaluation batches.)"""
    step = ThreadedMujocoEnv.step

    def recording(self, actions, mask=None):
        ids = slice(None) if mask is None else np.flatnonzero(mask)
        log.append((id(self), self.physics[ids].copy(), np.asarray(actions, np.float64)[ids].copy()))
        return step(self, actions, mask)

    ThreadedMujocoEnv.step = recording
    try:
        yield log
    finally:
        ThreadedMujocoEnv.step = step


def transitions_between(log: list, start: int, stop: int, rows_per_call: int = 100_000) -> list:
    """The training batch's recorded transitions after env step ``start`` up to ``stop`` (counted
    over every member stepped, as training counts), regrouped into ``(rows, actions)`` blocks of at
    most ``rows_per_call`` for the replay. The training batch is the first env in ``log``."""
    log = [(rows, actions) for owner, rows, actions in log if owner == log[0][0]]
    counts = np.cumsum([0] + [len(rows) for rows, _ in log])
    if start not in counts or stop not in counts:
        raise ValueError(f"env steps {start}..{stop} do not fall on recorded step boundaries")
    chosen = log[int(np.searchsorted(counts, start)):int(np.searchsorted(counts, stop))]
    blocks, pending, pending_rows = [], [], 0
    for rows, actions in chosen:
        pending.append((rows, actions))
        pending_rows += len(rows)
        if pending_rows >= rows_per_call:
            blocks.append(pending)
            pending, pending_rows = [], 0
    blocks += [pending] if pending else []
    return [(np.concatenate([r for r, _ in b]), np.concatenate([a for _, a in b])) for b in blocks]


def memory_probe(horizon: int, truncation_length: int = 100, num_pairs: int = 16, iterations: int = 5,
                 env_name: str = ENV) -> int:
    """Peak RSS (KiB) of a fresh process that trains ``iterations`` iterations with horizon T."""
    # VmHWM, not ru_maxrss: Linux carries ru_maxrss across exec, so a child of a big parent
    # (this benchmark, after compiling MJX) would report the parent's size.
    code = (
        "import resource, pes_rl\n"
        f"pes_rl.train(env={env_name!r}, num_pairs={num_pairs}, truncation_length={truncation_length}, horizon={horizon}, "
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


def threaded_env_names() -> list[str]:
    """The short names ``--env`` accepts: those the threaded C MuJoCo batch steps."""
    from pes_rl.envs.mujoco_threaded import TASKS

    return [name for name, env_id in envs.GYMNASIUM_IDS.items() if env_id in TASKS]


def run(backends: list[str] | None = None, num_pairs: list[int] | None = None, truncation_length: int = 200,
        memory: bool = True, vector: bool = False, scaling: bool = False, log=print, env: str = ENV,
        mjx_impls: list[str] | None = None, min_timed_steps: int = MIN_TIMED_STEPS) -> dict[str, Any]:
    """Run the benchmark; returns the nested dict ``pes-rl bench --json`` prints.

    ``num_pairs``: batch sizes in pairs (the gymnasium backend takes the first; mjx
    measures each, a batch-size curve). Default: 256 pairs for gymnasium, 32 for mjx on
    a CPU, 512..32768 on a GPU. ``env``: the task (a short name of
    :func:`threaded_env_names`, or a MuJoCo Playground task, mjx only); other than Swimmer,
    the default on a CPU is the gymnasium backend only (compiling a Brax task on the CPU
    takes minutes). ``mjx_impls``: MJX's implementations to measure side by side (default:
    the env's own, :func:`pes_rl.envs.default_impl`); the first is reported as ``mjx``, each
    other as ``mjx_<impl>``, every entry naming its ``impl``. ``min_timed_steps``: on the host,
    raw stepping and the PES loop are each timed over at least this many env steps (at most 100
    iterations).

    Raises:
      ValueError: an unknown ``env`` or implementation.
    """
    playground = env in envs.PLAYGROUND_NAMES
    if env not in threaded_env_names() and not playground:
        raise ValueError(f"env must be one of {', '.join(threaded_env_names() + list(envs.PLAYGROUND_NAMES))}; "
                         f"got {env!r}")
    for impl in mjx_impls or ():
        if impl not in envs.IMPLS:
            raise ValueError(f"mjx_impl must be one of {', '.join(envs.IMPLS)}; got {impl!r}")
    gpu = envs.accelerator_available()
    if playground:
        if backends and backends != ["mjx"]:
            raise ValueError(f"backend: env {env!r} (MuJoCo Playground) runs on mjx only")
        backends = ["mjx"]
    if env != ENV and not gpu:
        backends = backends or ["gymnasium"]
    backends = backends or (["mjx"] if gpu else ["gymnasium", "mjx"])
    report: dict[str, Any] = {"env": env, "machine": machine()}
    if "gymnasium" in backends:
        n = num_pairs[0] if num_pairs else CPU_PAIRS["gymnasium"]
        log(f"gymnasium (threaded C MuJoCo), {env}: {2 * n} envs, raw stepping and the C MuJoCo limit")
        iterations = min(100, max(4, -(-min_timed_steps // (2 * n * truncation_length))))
        raw = raw_host(n, truncation_length, windows=max(2, iterations), env_name=env)
        limit = raw.pop("mujoco_limit_steps_per_s")
        log(f"gymnasium, {env}: PES loop")
        entry = _ratio({**raw, **pes_loop("gymnasium", n, truncation_length, iterations=iterations, env_name=env,
                                          limit=True)})
        entry["pes_over_mujoco_limit"] = entry["pes_steps_per_s"] / entry["pes_mujoco_limit_steps_per_s"]
        report["cpu"] = {"mujoco_limit_steps_per_s": limit,
                         "mujoco_one_thread_steps_per_s": single_thread_steps_per_s(env_name=env),
                         "threads": default_threads(), "gymnasium": entry}
        if vector:
            log(f"gymnasium vector env (SyncVectorEnv), {env}: raw stepping")
            raw = raw_host(n, truncation_length, windows=1, threaded=False, env_name=env)
            report["cpu"]["gymnasium_vector"] = {**raw}
    for i, impl in enumerate(mjx_impls or [envs.default_impl(env)] if "mjx" in backends else []):
        sizes = list(num_pairs) if num_pairs else (list(GPU_PAIRS) if gpu else [CPU_PAIRS["mjx"]])
        curve = []
        for n in sizes:
            log(f"mjx ({impl}), {env}: {2 * n} envs, raw stepping (compiling)")
            raw = raw_mjx(n, truncation_length, windows=2 if gpu else 3, env_name=env, mjx_impl=impl)
            # each figure as soon as it exists: a run stopped at its time limit keeps what it measured
            log(f"mjx ({impl}), {env}: {2 * n} envs, raw {raw['raw_steps_per_s']:,.0f} steps/s "
                f"(compiling {raw['raw_warmup_s']:.1f} s); PES loop (compiling)")
            # One iteration per jitted call on a GPU (an iteration there costs seconds, so the host
            # round-trip is noise and two timed iterations suffice) and where episodes end early:
            # particles idle after their episode ends, so the step budget runs out mid-chunk and a
            # shorter last chunk would compile again.
            chunk = 1 if gpu or env != ENV else 2
            curve.append(_ratio({**raw, **pes_loop("mjx", n, truncation_length, iterations=2, chunk=chunk,
                                                   env_name=env, mjx_impl=impl)}))
            log(f"mjx ({impl}), {env}: {2 * n} envs, PES {curve[-1]['pes_steps_per_s']:,.0f} steps/s "
                f"(first chunk {curve[-1]['warmup_s']:.1f} s), PES/raw {curve[-1]['ratio']:.2f}")
        best = max(curve, key=lambda e: e["pes_steps_per_s"])
        entry = {**best, "curve": curve, "impl": impl} if len(curve) > 1 else {**best, "impl": impl}
        report.setdefault("gpu" if gpu else "cpu", {})["mjx" if i == 0 else f"mjx_{impl}"] = entry
    if scaling:
        from pes_rl.scaling import scaling_table

        report["scaling"] = []
        for backend in backends:
            log(f"scaling: {backend} on 1, 2, 4 devices / 2 processes (a subprocess each)")
            report["scaling"] += scaling_table((1, 2, 4), (2,), {"backend": backend})
    if memory and not playground:  # the probe trains on the gymnasium backend
        log(f"memory, {env}: T = 1,000 vs T = 100,000")
        small, large = memory_probe(1000, env_name=env), memory_probe(100_000, env_name=env)
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
    env = report.get("env", ENV)
    for where in ("cpu", "gpu"):
        for backend, e in report.get(where, {}).items():
            if not isinstance(e, dict):
                continue
            label = f"mjx ({e['impl']})" if "impl" in e else backend
            for point in e.get("curve", [e]):
                rows.append((where, label, str(point["num_envs"]), f"{point['raw_steps_per_s']:,.0f}",
                             f"{point['pes_steps_per_s']:,.0f}" if "pes_steps_per_s" in point else "-",
                             f"{point['ratio']:.2f}" if "ratio" in point else "-",
                             f"{point['warmup_s']:.1f}" if "warmup_s" in point else "-"))
    widths = [max(len(r[i]) for r in rows) for i in range(len(rows[0]))]
    lines = [f"env: {env} (MuJoCo Playground)" if env in envs.PLAYGROUND_NAMES else f"env: {env} ({envs.gymnasium_id(env)})"]
    lines += ["  ".join(c.rjust(w) for c, w in zip(r, widths)) for r in rows]
    cpu = report.get("cpu", {})
    if "mujoco_limit_steps_per_s" in cpu:
        g = cpu["gymnasium"]
        lines.append(f"C MuJoCo limit on {cpu['threads']} threads (replayed transitions, no policy): "
                     f"raw run's {cpu['mujoco_limit_steps_per_s']:,.0f} steps/s, PES loop's "
                     f"{g['pes_mujoco_limit_steps_per_s']:,.0f}; PES/limit {g['pes_over_mujoco_limit']:.2f}; "
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

