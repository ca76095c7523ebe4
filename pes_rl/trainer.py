"""``pes_rl.train(config) -> TrainResult``: the Python API the CLI is a thin layer over."""

from __future__ import annotations

import collections
import concurrent.futures
import math
import os
import sys
import time
from dataclasses import dataclass, field, replace
from typing import Any, Callable, Sequence

import jax
import jax.numpy as jnp
import numpy as np
import optax

from pes_rl import checkpoint, distributed, envs, resources, rundir
from pes_rl.backend_choice import resolve as resolve_backend
from pes_rl.agents import sharding
from pes_rl.agents.normalization import NormalizerState, init_normalizer
from pes_rl.agents.pes import PES, PESConfig
from pes_rl.agents.policies import Policy
from pes_rl.config import Config, ConfigError, load_config_file, make_config
from pes_rl.evaluation import EVAL_SEED_OFFSET, evaluate_gymnasium, make_mjx_evaluator
from pes_rl.logger import RunLogger
from pes_rl.policy_io import apply_flat, build_policy, make_batched_act, policy_callable
from pes_rl.runners import HostRunner, JaxRunner, Runner

# Fields that may change on --resume (they do not alter the trajectory so far).
RESUMABLE_CHANGES = (
    "total_steps", "progress_bar", "run_dir", "checkpoint_every", "eval_every", "eval_episodes", "capture_video",
)


class TrainingDiverged(RuntimeError):
    """A return, gradient or parameter became NaN/inf; the last good checkpoint is kept."""


@dataclass
class TrainResult:
    """What a run returns: parameters, a ready numpy policy, the logged rows."""

    config: Config
    params: Any  # the policy's parameter pytree
    flat_params: np.ndarray
    normalizer: NormalizerState
    policy: Callable[[np.ndarray], np.ndarray]  # obs (or batch) -> action (or batch)
    metrics: list[dict] = field(default_factory=list)
    env_steps: int = 0
    run_dir: str | None = None

    @property
    def final_eval_return(self) -> float | None:
        evals = [m["eval_return_mean"] for m in self.metrics if m.get("eval_return_mean") is not None]
        return evals[-1] if evals else None


def _raise_if_diverged(rows: list[dict], first_iteration: int) -> None:
    """The NaN/inf guard: raised before anything of these iterations is saved."""
    for at, r in enumerate(rows, start=first_iteration):
        if r["nonfinite_particle"] >= 0:
            raise TrainingDiverged(
                f"non-finite return at iteration {at}, particle {int(r['nonfinite_particle'])}; "
                "stopped, the last checkpoint is intact"
            )
        if not (math.isfinite(r["grad_norm"]) and math.isfinite(r["param_norm"])):
            raise TrainingDiverged(
                f"non-finite gradient or parameters at iteration {at}; stopped, the last checkpoint is intact"
            )


def _nanmean_columns(rows: list[list[float]]) -> list[float]:
    """Column means ignoring NaN (an empty column stays NaN), without numpy's warning."""
    values = np.array(rows, float)
    counts = np.isfinite(values).sum(axis=0)
    sums = np.where(np.isfinite(values), values, 0.0).sum(axis=0)
    return np.where(counts > 0, sums / np.maximum(counts, 1), np.nan).tolist()


def planned_iterations(config: Config) -> int:
    """Iterations a run of ``total_steps`` will take, burn-in ignored (for schedules)."""
    return max(1, math.ceil(config.total_steps / config.steps_per_iteration))


def make_optimizer(config: Config) -> optax.GradientTransformation:
    """Plain SGD (the paper's choice) or Adam; the learning rate is ``lr`` throughout or,
    with ``lr_end`` set, decays linearly from ``lr`` to ``lr_end`` over the planned run."""
    lr = config.lr
    if config.lr_end is not None:
        lr = optax.linear_schedule(config.lr, config.lr_end, planned_iterations(config))
    return optax.sgd(lr) if config.optimizer == "sgd" else optax.adam(lr)


def _env_for(config: Config, backend: str, env_fn=None, num_envs: int | None = None):
    if backend == "mjx":
        return envs.make(config.env, "mjx", episode_length=config.horizon, impl=config.mjx_impl)
    # in a multi-process job each process steps its own share of the pairs
    num_envs = config.num_particles // jax.process_count() if num_envs is None else num_envs
    return envs.make(config.env, "gymnasium", num_envs=num_envs, episode_length=config.horizon, env_fn=env_fn)


class _Evaluator:
    """Deterministic-policy evaluation on the configured backend, compiled once."""

    def __init__(self, config: Config, backend: str, train_env, policy: Policy, unravel, env_fn=None):
        self.config, self.backend, self.env_fn = config, backend, env_fn
        self.batched_act = make_batched_act(policy, unravel, config.normalize_obs)
        if backend == "mjx":
            env = train_env if train_env.backend == "mjx" else envs.make(config.env, "mjx", episode_length=config.horizon,
                                                                                 impl=config.mjx_impl)
            self._mjx = make_mjx_evaluator(env, apply_flat(policy, unravel), config.normalize_obs, config.eval_episodes)

    @property
    def in_background(self) -> bool:
        """Whether evaluations run on a thread of their own while training goes on: on the host
        (C MuJoCo or gymnasium) in a single-process run without videos. An evaluation steps
        its episodes in sequence (5 x 1,000 steps for Swimmer's preset, against 20,000 training
        steps between evaluations), so in line it would cost a fifth of the run's time; mjx
        evaluations share the device with training and stay in line."""
        return self.backend != "mjx" and jax.process_count() == 1 and not self.config.capture_video

    def __call__(self, theta, normalizer, seed: int | None = None) -> np.ndarray:
        """Returns of ``eval_episodes`` episodes of the policy ``theta``; ``seed`` (default the
        run's) picks the episodes: the same ones at every evaluation of a run."""
        seed = self.config.seed if seed is None else seed
        if self.backend == "mjx":
            return np.asarray(self._mjx(theta, normalizer, jax.random.PRNGKey(seed + EVAL_SEED_OFFSET)))
        act = policy_callable(self.batched_act, theta, normalizer)
        # in the background one C thread, so that training keeps the others (the returns are the same)
        return evaluate_gymnasium(self.config.env, act, self.config.eval_episodes, seed, self.config.horizon,
                                  self.env_fn, num_threads=1 if self.in_background else None)


def initial_policy_returns(config: Config | dict, seeds: Sequence[int]) -> dict[int, np.ndarray]:
    """Per seed, the evaluation returns of the policy a run with that seed starts from (θ₀, before
    any update, with a fresh observation normaliser) on that run's own evaluation episodes: where
    its learning curve starts. With a zero-initialised last layer (every built-in policy) θ₀ is
    the zero-action policy. One env and one compiled evaluator serve every seed."""
    config = _resolve_config(config, {})
    backend, _ = resolve_backend(config.backend, config.num_particles, config.env, None)
    eval_backend = envs.resolve_backend(config.eval_backend or backend, config.env)
    env = _env_for(config, eval_backend, num_envs=1)  # its sizes, and the mjx evaluator's env
    try:
        evaluator, returns = None, {}
        for seed in seeds:
            seeded = replace(config, seed=seed)
            policy, flat0, unravel = build_policy(seeded, env.observation_size, env.action_size, env.action_low,
                                                  env.action_high)
            evaluator = evaluator or _Evaluator(seeded, eval_backend, env, policy, unravel)
            returns[seed] = evaluator(np.asarray(flat0), init_normalizer(env.observation_size), seed)
        return returns
    finally:
        if env.backend != "mjx":
            env.close()


def _resolve_config(config: Any, overrides: dict) -> Config:
    """``train``'s ``config`` argument (a Config, a dict of fields or None) plus ``overrides``, validated."""
    if isinstance(config, Config):
        return make_config(**{**config.to_dict(), **overrides})
    if config is None or isinstance(config, dict):
        return make_config(**{**(config or {}), **overrides})
    raise ConfigError(f"config must be a pes_rl.Config, a dict of its fields, or None; got {type(config).__name__}")


def _check_resume_config(config: Config) -> None:
    """A resumed run must keep every field that shapes its trajectory (all but RESUMABLE_CHANGES)."""
    path = os.path.join(config.run_dir, "config.json")
    saved = load_config_file(path, what="resume")
    ours = config.to_dict()
    # a field newer than the run's config.json compares as its default (what that run used)
    saved = {**Config().to_dict(), **saved}
    free = set(RESUMABLE_CHANGES) - ({"total_steps"} if config.lr_end is not None else set())  # the lr schedule spans total_steps
    differing = sorted(k for k in ours if k not in free and saved.get(k) != ours[k])
    if differing:
        detail = ", ".join(f"{k} (checkpoint {saved.get(k)!r}, now {ours[k]!r})" for k in differing)
        raise ConfigError(f"resume: config differs from the run's config.json in {detail}")
    if checkpoint.latest_step(config.run_dir) is None:
        raise ConfigError(f"resume: {config.run_dir!r} has no checkpoint under checkpoints/")


def _make_envs(config: Config, backend: str, eval_backend: str, env_fn=None):
    """The training env, built only once a one-member probe has shown that the run fits in memory
    (a 100,000-member gymnasium batch would otherwise eat the machine before any check) and that
    the evaluation backend's env has the same sizes."""
    probe = _env_for(config, backend, env_fn, num_envs=1)
    eval_probe = None
    try:
        if eval_backend != backend:
            eval_probe = _env_for(config, eval_backend, env_fn, num_envs=1)
            if (eval_probe.observation_size, eval_probe.action_size) != (probe.observation_size, probe.action_size):
                raise ConfigError(
                    f"eval_backend {eval_backend} has env {config.env!r} with observation {eval_probe.observation_size}, "
                    f"action {eval_probe.action_size}; training on {backend} has {probe.observation_size}, "
                    f"{probe.action_size} (only swimmer matches across backends)"
                )
        resources.check_memory(config, probe, eval_probe)
    finally:
        for env in (probe, eval_probe):
            if env is not None and env.backend != "mjx":
                env.close()
    return probe if backend == "mjx" else _env_for(config, backend, env_fn)


def _iterations_left(config: Config, env_steps: int) -> int:
    """Iterations still needed to reach ``total_steps`` (an iteration takes at most P·K env steps)."""
    return max(1, math.ceil((config.total_steps - env_steps) / config.steps_per_iteration))


def _due(every: int, iteration: int, ran: int) -> bool:
    """Whether a multiple of ``every`` fell among the ``ran`` iterations that ended at ``iteration``."""
    return bool(every) and iteration % every < ran


def train(
    config: Config | dict | None = None,
    *,
    env_fn=None,
    resume: bool = False,
    overwrite: bool = False,
    stop_at_eval_return: float | None = None,
    progress_fn: Callable[[int, dict], None] | None = None,
    **overrides,
) -> TrainResult:
    """Train a policy with PES.

    Everything that can be checked is checked before the first env step: the config (strictly
    typed), the run dir (never a directory pes-rl did not create; one writer at a time, see
    :mod:`pes_rl.rundir`), the memory the run needs, and whether videos can be rendered. The
    final checkpoint is written before the final evaluation and video, so nothing that fails
    there loses the trained state.

    Args:
      config: a :class:`Config`, a dict of its fields, or None (defaults and the
        env's preset); ``overrides`` are applied on top.
      env_fn (Callable[[], gymnasium.Env] | None): gymnasium backend only: a factory
        ``() -> gym.Env`` with your own wrappers.
      resume: continue ``config.run_dir`` from its newest readable checkpoint.
      overwrite: replace an existing ``config.run_dir`` that pes-rl created.
      stop_at_eval_return: end the run early once an evaluation reaches this return. Host
        evaluations run in the background while training goes on, so the run may end a few
        iterations after the one whose evaluation reached it (its row says which).
      progress_fn: called as ``progress_fn(env_steps, row)`` with each logged row (the columns of
        progress.csv; ``eval_return_mean`` is None between evaluations), after it is written, on
        process 0 only: Brax's ``progress_fn`` shape, for live plots or your own logger.
    Returns:
      a :class:`TrainResult` with the final parameters and a numpy policy callable.
    Raises:
      ConfigError: a bad config, run dir or size, in one line naming the field.
      TrainingDiverged: a non-finite return, gradient or parameter.
    """
    config = _resolve_config(config, overrides)
    if env_fn is not None and not callable(env_fn):
        raise ConfigError(f"env_fn must be a callable returning a gymnasium.Env; got {type(env_fn).__name__}")
    main = distributed.is_main_process()
    backend, why = resolve_backend(config.backend, config.num_particles // jax.process_count(), config.env, env_fn)
    if config.backend == "auto" and main:
        print(f"pes_rl: backend auto -> {backend}: {why}", file=sys.stderr)
    eval_backend = envs.resolve_backend(config.eval_backend or backend, config.env)
    if resume and config.run_dir is None:
        raise ConfigError("run_dir: resume needs run_dir")
    mesh = None
    if backend == "mjx":  # the population over every device of every process
        mesh = sharding.particle_mesh()
        try:
            sharding.check_divisible(config.num_pairs, mesh)
        except ValueError as e:
            raise ConfigError(str(e)) from None
    elif config.num_pairs % jax.process_count():
        raise ConfigError(
            f"num_pairs must be a multiple of the {jax.process_count()} processes (each steps an equal share of "
            f"the pairs on the gymnasium backend); got {config.num_pairs}"
        )
    if config.capture_video:
        from pes_rl.video import check_renderable

        check_renderable(config.env, eval_backend)
    if config.run_dir is not None:  # read-only checks now; the dir is written only once the env works
        rundir.check_run_dir(config.run_dir, resume, overwrite)
        if resume:
            _check_resume_config(config)
    env = _make_envs(config, backend, eval_backend, env_fn)
    lock = None
    try:
        if config.run_dir is not None:
            # every process has checked (so all refuse alike); process 0 alone writes, under the lock
            distributed.barrier("pes_rl: run_dir checked")
            if main:
                lock = rundir.open_run_dir(config.run_dir, resume, overwrite)
                if resume:
                    _check_resume_config(config)  # again, under the lock
        return _train_locked(config, env, backend, eval_backend, mesh, env_fn, resume, stop_at_eval_return,
                             progress_fn)
    finally:
        close = getattr(env, "close", None)
        if close is not None:
            close()
        if lock is not None:
            lock.release()


@dataclass
class _Run:
    """A run between setup and the end of its loop: what the loop and its hooks read and advance."""

    config: Config
    runner: Runner
    evaluator: _Evaluator
    eval_backend: str
    state: Any  # the agent state (AgentState), placed where the runner computes
    iteration: int
    env_steps: int
    main: bool  # process 0, which writes the run dir and evaluates


def _initial_state(agent: PES, flat0: jax.Array, key: jax.Array, observation_size: int):
    """``(agent state, particle key)`` from the run's key, in one jitted program (as eager JAX
    operations the split and the zero-filled state cost a compilation or cache load each, ~20 ms
    apiece at start-up)."""

    def initial(flat0, key):
        agent_key, particle_key = jax.random.split(key)
        return agent.init(flat0, agent_key, observation_size), particle_key

    return jax.jit(initial)(flat0, key)


def _setup_run(config: Config, env, backend: str, eval_backend: str, mesh, env_fn, resume: bool):
    """Policy, agent, runner and evaluator; the agent state and particles new or restored from the
    newest checkpoint; the run's config.json written. Returns the run and the policy's pieces."""
    main = distributed.is_main_process()
    policy, flat0, unravel = build_policy(config, env.observation_size, env.action_size, env.action_low, env.action_high)
    agent = PES(
        PESConfig(
            config.num_pairs, config.sigma, config.truncation_length, config.return_std_scaling, config.normalize_obs,
            estimator="pes" if config.agent == "es" else config.agent, top_directions=config.top_directions,
        ),
        make_optimizer(config),
    )
    state, particle_key = _initial_state(agent, flat0, jax.random.PRNGKey(config.seed), env.observation_size)
    runner: Runner
    if backend == "mjx":
        runner = JaxRunner(config, agent, apply_flat(policy, unravel), env, chunk=config.log_every, mesh=mesh)
    else:
        runner = HostRunner(config, agent, apply_flat(policy, unravel), env, chunk=config.log_every)
    state = runner.place_state(state)
    evaluator = _Evaluator(config, eval_backend, env, policy, unravel, env_fn)

    iteration, env_steps = 0, 0
    if resume:
        # unreadable newer steps would shadow the ones this run writes next: process 0 moves them aside
        payload = checkpoint.restore(config.run_dir, set_aside_damaged=main)
        state = runner.place_state(jax.tree_util.tree_map(jnp.asarray, checkpoint.from_leaves(state, payload["agent"])))
        if not runner.restore_particles(state, particle_key, payload["particles"]):
            # the env's state could not be saved: particles start new episodes, so their ξ restart too
            state = state._replace(accumulator=jnp.zeros_like(state.accumulator))
        iteration, env_steps = int(payload["iteration"]), int(payload["env_steps"])
    else:
        env_steps = runner.start(state, particle_key)
    if config.run_dir is not None and main:  # a resume writes its config only once its checkpoint has loaded
        rundir.write_json(os.path.join(config.run_dir, "config.json"), config.to_dict())
    return _Run(config, runner, evaluator, eval_backend, state, iteration, env_steps, main), policy, unravel


def _checkpoint_hook(run: _Run) -> None:
    """Save the agent state and every particle at ``run.iteration`` (a no-op without a run dir)."""
    if run.config.run_dir is None:
        return
    # gathering the sharded arrays is a collective: every process takes part, process 0 writes
    agent_leaves, particles = checkpoint.to_leaves(sharding.to_host(run.state)), run.runner.particles_payload()
    if not run.main:
        return
    state = run.state
    checkpoint.save(run.config.run_dir, run.iteration, {
        "agent": agent_leaves,
        "particles": particles,
        "iteration": np.int64(run.iteration),
        "env_steps": np.int64(run.env_steps),
        "policy": {
            "params": np.asarray(state.params),
            "obs_mean": np.asarray(state.normalizer.mean),
            "obs_var": np.asarray(state.normalizer.var),
            "obs_count": np.asarray(state.normalizer.count),
        },
    })


def _evaluation_hook(run: _Run) -> tuple[float, float]:
    """Mean and std of the evaluation returns; process 0 evaluates, the others take its figures
    (so all stop alike)."""
    stats = np.zeros(2)
    if run.main:
        returns = run.evaluator(np.asarray(run.state.params), jax.device_get(run.state.normalizer))
        stats = np.array([np.mean(returns), np.std(returns)], np.float64)  # the placeholder's shape and dtype
    stats = distributed.from_main(stats)
    return float(stats[0]), float(stats[1])


def _submit_evaluation(run: _Run, pool: concurrent.futures.Executor) -> concurrent.futures.Future:
    """An evaluation of the current θ and normaliser on ``pool``'s thread, from host copies taken
    now (training goes on and replaces them); its result is the returns' (mean, std)."""
    theta, normalizer = np.array(run.state.params), jax.device_get(run.state.normalizer)

    def evaluate() -> tuple[float, float]:
        returns = run.evaluator(theta, normalizer)
        return float(np.mean(returns)), float(np.std(returns))

    return pool.submit(evaluate)


def _video_hook(run: _Run) -> None:
    """One evaluation episode to RUN_DIR/videos/iteration_NNNNNN.mp4 (process 0)."""
    if run.config.run_dir is None or not run.main:
        return
    from pes_rl.video import record_policy

    path = os.path.join(run.config.run_dir, "videos", f"iteration_{run.iteration:06d}.mp4")
    record_policy(run.config, np.asarray(run.state.params), jax.device_get(run.state.normalizer), path,
                  backend=run.eval_backend, width=320, height=240)


def _row(rows: list[dict], run: _Run, window_steps: int, elapsed: float, wall_time: float) -> dict:
    """The logged row (progress.csv's columns) of one chunk of iterations; evaluation columns unset."""
    finished = sum(r["finished_return_sum"] for r in rows)
    count = sum(r["finished_count"] for r in rows)
    last = rows[-1]
    return {
        "iteration": run.iteration,
        "env_steps": run.env_steps,
        "wall_time": wall_time,
        "steps_per_s": window_steps / max(elapsed, 1e-9),
        "window_return_mean": last["window_return_mean"],
        "window_return_std": last["window_return_std"],
        "train_episode_return": finished / count if count else None,
        "eval_return_mean": None,
        "eval_return_std": None,
        "grad_norm": last["grad_norm"],
        "grad_spread": float(np.nanmean([r["grad_spread"] for r in rows])),
        "grad_sq_norm_by_truncation": _nanmean_columns([r["grad_sq_norm_by_truncation"] for r in rows]),
        "param_norm": last["param_norm"],
        "resets": sum(r["resets"] for r in rows),
    }


def _train_locked(config: Config, env, backend: str, eval_backend: str, mesh, env_fn, resume: bool,
                  stop_at_eval_return: float | None, progress_fn: Callable[[int, dict], None] | None) -> TrainResult:
    """The run itself, once the env exists and the run dir (if any) is held: setup, then a plain
    loop of chunks with the checkpoint, evaluation and video hooks."""
    run, policy, unravel = _setup_run(config, env, backend, eval_backend, mesh, env_fn, resume)
    logger = RunLogger(config.run_dir if run.main else None, config.total_steps, run.env_steps,
                       config.progress_bar and run.main, resume_iteration=run.iteration if resume else None)
    metrics: list[dict] = []
    # rows wait here, in order, until their evaluation (if any) is in: (row, Future | None)
    pending: collections.deque = collections.deque()
    pool = (concurrent.futures.ThreadPoolExecutor(1, thread_name_prefix="pes_rl-eval")
            if run.main and run.evaluator.in_background else None)
    reached = False  # an evaluation reached stop_at_eval_return

    def settle(block: bool) -> None:
        """Log the rows whose evaluations are in (all of them, waiting, with ``block``)."""
        nonlocal reached
        while pending:
            row, future = pending[0]
            if future is not None:
                if not block and not future.done():
                    return
                row["eval_return_mean"], row["eval_return_std"] = future.result()
            if stop_at_eval_return is not None and row["eval_return_mean"] is not None:
                reached = reached or row["eval_return_mean"] >= stop_at_eval_return
            pending.popleft()
            metrics.append(row)
            logger.log(row)
            if progress_fn is not None and run.main:
                progress_fn(row["env_steps"], dict(row))

    t_start = time.perf_counter()
    try:
        while True:  # at least one iteration, even when the burn-in used the whole budget
            t0 = time.perf_counter()
            # never past the step budget: a chunk (log_every) ends where total_steps is reached
            run.state, rows = run.runner.run(run.state, min(config.log_every, _iterations_left(config, run.env_steps)))
            elapsed = time.perf_counter() - t0
            window_steps = int(sum(r["env_steps"] for r in rows))
            run.iteration += len(rows)
            run.env_steps += window_steps
            _raise_if_diverged(rows, first_iteration=run.iteration - len(rows) + 1)
            row = _row(rows, run, window_steps, elapsed, logger.wall_time_offset + time.perf_counter() - t_start)
            done = run.env_steps >= config.total_steps
            # the trained state is saved before an evaluation or video can fail
            saved = _due(config.checkpoint_every, run.iteration, len(rows)) or done
            if saved:
                _checkpoint_hook(run)
            future = None
            if _due(config.eval_every, run.iteration, len(rows)) or done:
                if pool is not None:
                    future = _submit_evaluation(run, pool)
                else:
                    row["eval_return_mean"], row["eval_return_std"] = _evaluation_hook(run)
                    if config.capture_video:
                        _video_hook(run)
            pending.append((row, future))
            settle(block=done)
            if reached:  # this iteration's state or a later one's: training went on while it evaluated
                if not saved:
                    _checkpoint_hook(run)
                done = True
            if done:
                settle(block=True)
                break
    finally:
        if pool is not None:
            pool.shutdown(wait=False, cancel_futures=True)
        logger.close()

    state, env_steps = run.state, run.env_steps
    theta, normalizer = np.asarray(state.params), jax.device_get(state.normalizer)  # replicated: readable everywhere
    act = policy_callable(make_batched_act(policy, unravel, config.normalize_obs), theta, normalizer)
    return TrainResult(
        config=config,
        params=jax.device_get(jax.jit(unravel)(theta)),  # one program, not three eager operations
        flat_params=theta,
        normalizer=normalizer,
        policy=act,
        metrics=metrics,
        env_steps=env_steps,
        run_dir=config.run_dir,
    )
