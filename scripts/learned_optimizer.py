"""A small learned optimizer meta-trained with PES (the PES paper's learned-optimizer experiment, CPU-sized):
PES against full-unroll ES (and truncated ES) at the same compute, and against Adam with a tuned step.

The learned optimizer (θ): a per-parameter MLP, the same for every weight of the inner network. For
each inner parameter p with gradient g it keeps two momenta ``m_β ← β m_β + (1 − β) g`` (β = 0.9,
0.99) and a running mean square ``v ← 0.999 v + 0.001 g²``, and feeds the MLP four features, each
already of unit scale: ``g/√v̂``, ``m̂_0.9/√v̂``, ``m̂_0.99/√v̂`` (bias-corrected as in Adam, so that
they are O(1) whatever the gradient's scale) and ``p / rms(p over its tensor)``. The MLP is
``out = f·a + W₂ᵀ relu(W₁ᵀ f + b₁) + b₂`` (a linear path plus HIDDEN relu units), and the step is
``p ← p − STEP_MULT · out``. θ = (W₁, b₁, W₂, b₂, a), 53 numbers. θ₀ has W₁ random and the rest zero:
the optimizer starts by not moving at all, a stable start from which the meta-gradient is informative.

The inner task: a 64-32-10 tanh MLP classifying scikit-learn's digits (``load_digits``, bundled, no
download; pixels / 16; split 80/20 train/test, stratified, split seed 0), trained for T steps on
minibatches of 32 drawn (with replacement) from the step's key. Every unroll starts from fresh
weights ``N(0, 1/fan-in)`` drawn from its key, so the meta-objective is an expectation over inits
and minibatches. The loss of step t is the minibatch's cross-entropy before the step (capped at
LOSS_CAP, non-finite counted as the cap, so a diverging unroll stays finite); PES minimises the
sum, i.e. **the meta-loss is the mean training loss over the T steps**.

Methods, all meta-training θ from the same θ₀ with Adam through :func:`pes_rl.unroll.optimize`, at
the same compute (inner steps over all particles, PES's burn-in included): PES and truncated ES (TES)
with K-step truncations, full-unroll ES (K = T, fewer updates). Baseline: Adam on the inner task,
its step tuned on a log-spaced grid by the same meta-loss on tuning seeds disjoint from the
evaluation seeds. Evaluation: each final θ (and tuned Adam, and θ₀) trains the inner MLP from
``--eval-seeds`` fresh inits for 2T steps (twice what meta-training saw), scored over the first T steps
and over all 2T by the mean training loss and by the test accuracy at the end (mean ± std over the
runs; the same runs, init for init and minibatch for minibatch, for every optimizer). Repeated for
``--seeds`` (the meta-training seeds).

Writes ``OUT/summary.json``, ``OUT/meta_training.csv`` (per method, seed and update: inner steps spent,
the particles' mean loss per step, and the evaluated meta-loss at the curve points) and
``OUT/learned_optimizer.png`` (meta-training curves; inner training curves over 2T steps).

    python scripts/learned_optimizer.py --out docs/learned_optimizer   # the full run (docs/learned_optimizer.md)
    python scripts/learned_optimizer.py --smoke --out /tmp/lopt        # tiny sizes, seconds (CI)
"""

from __future__ import annotations

import argparse
import csv
import json
import math
import os
import time
from dataclasses import dataclass
from typing import Callable, NamedTuple

import jax
import jax.numpy as jnp
import numpy as np
import optax

import pes_rl.unroll as pu
from pes_rl import compile_cache

SIZES = (64, 32, 10)  # the inner MLP's widths: 8x8 pixels in, 10 classes out
FEATURES = 4  # per inner parameter: g/√v̂, m̂_0.9/√v̂, m̂_0.99/√v̂, p/rms(p)
HIDDEN = 8
THETA_SIZE = FEATURES * HIDDEN + HIDDEN + HIDDEN + 1 + FEATURES
BETAS = (0.9, 0.99)  # the two momentum timescales
BETA_RMS = 0.999
STEP_MULT = 0.01  # out ~ O(1) per unit of θ, so this is the step of an Adam-like θ with unit weight
EPS = 1e-8
LOSS_CAP = 10.0  # well above ln 10 = 2.30, the loss of a uniform guess
SPLIT_SEED = 0
EVAL_KEY = 10_000  # eval runs use PRNGKey(EVAL_KEY + j), tuning runs PRNGKey(TUNE_KEY + j): disjoint
TUNE_KEY = 20_000


# ---------------------------------------------------------------- data and the inner network


@dataclass(frozen=True)
class Digits:
    """The fixed split as float32 pixels in [0, 1] and int32 labels."""

    x_train: jax.Array
    y_train: jax.Array
    x_test: jax.Array
    y_test: jax.Array


def load_split() -> Digits:
    """Digits split 80/20 into train/test, stratified by class, split seed 0."""
    from sklearn.datasets import load_digits
    from sklearn.model_selection import train_test_split

    x, y = load_digits(return_X_y=True)
    x = (x / 16.0).astype(np.float32)  # pixel values are 0..16
    x_train, x_test, y_train, y_test = train_test_split(x, y, train_size=0.8, stratify=y, random_state=SPLIT_SEED)
    return Digits(jnp.asarray(x_train), jnp.asarray(y_train, jnp.int32), jnp.asarray(x_test),
                  jnp.asarray(y_test, jnp.int32))


def init_params(key: jax.Array) -> list[jax.Array]:
    """Inner weights ``W ~ N(0, 1/fan-in)``, zero biases: ``[W1, b1, W2, b2]``."""
    shapes = list(zip(SIZES[:-1], SIZES[1:]))
    # one draw sliced into the matrices: init runs at every step under vmap (pes_rl.unroll.UnrolledSystem)
    z = jax.random.normal(key, (sum(a * b for a, b in shapes),))
    params, offset = [], 0
    for fan_in, fan_out in shapes:
        params += [z[offset:offset + fan_in * fan_out].reshape(fan_in, fan_out) / math.sqrt(fan_in),
                   jnp.zeros(fan_out)]
        offset += fan_in * fan_out
    return params


def logits(params: list[jax.Array], x: jax.Array) -> jax.Array:
    """The inner MLP: tanh hidden layer, linear output."""
    return jnp.tanh(x @ params[0] + params[1]) @ params[2] + params[3]


def cross_entropy(params: list[jax.Array], x: jax.Array, y: jax.Array) -> jax.Array:
    """Mean softmax cross-entropy ``logsumexp(z) − z_y``."""
    z = logits(params, x)
    return jnp.mean(jax.nn.logsumexp(z, axis=-1) - jnp.take_along_axis(z, y[:, None], axis=-1)[:, 0])


def accuracy(params: list[jax.Array], x: jax.Array, y: jax.Array) -> jax.Array:
    """Fraction classified right; non-finite logits (a diverged run) count as wrong."""
    z = logits(params, x)
    ok = jnp.logical_and(jnp.argmax(z, axis=-1) == y, jnp.all(jnp.isfinite(z), axis=-1))
    return jnp.mean(ok.astype(jnp.float32))


def capped(loss: jax.Array) -> jax.Array:
    """``min(loss, LOSS_CAP)``, with non-finite losses counted as the cap."""
    return jnp.where(jnp.isfinite(loss), jnp.minimum(loss, LOSS_CAP), LOSS_CAP)


def minibatch(data: Digits, key: jax.Array, batch_size: int) -> tuple[jax.Array, jax.Array]:
    """``batch_size`` training examples drawn with replacement from ``key``."""
    n = data.x_train.shape[0]
    # floor of uniforms: cheaper to compile than randint
    idx = jnp.minimum((jax.random.uniform(key, (batch_size,)) * n).astype(jnp.int32), n - 1)
    return data.x_train[idx], data.y_train[idx]


# ---------------------------------------------------------------- the learned optimizer


class OptState(NamedTuple):
    """Per inner parameter: the two momenta and the running mean square; and the steps taken."""

    m_fast: list[jax.Array]
    m_slow: list[jax.Array]
    v: list[jax.Array]
    t: jax.Array


def unpack(theta: jax.Array) -> dict[str, jax.Array]:
    """θ (THETA_SIZE,) → ``w1 (F, H), b1 (H,), w2 (H,), b2 (), a (F,)``."""
    sizes = {"w1": FEATURES * HIDDEN, "b1": HIDDEN, "w2": HIDDEN, "b2": 1, "a": FEATURES}
    out, offset = {}, 0
    for name, size in sizes.items():
        out[name] = theta[offset:offset + size]
        offset += size
    out["w1"] = out["w1"].reshape(FEATURES, HIDDEN)
    out["b2"] = out["b2"][0]
    return out


def theta_init(seed: int = 0) -> np.ndarray:
    """θ₀: W₁ ~ N(0, 1/F) so the hidden units respond to the features, everything else zero, so the
    initial optimizer makes no step at all."""
    theta = np.zeros(THETA_SIZE, np.float32)
    theta[:FEATURES * HIDDEN] = np.random.default_rng(seed).normal(size=FEATURES * HIDDEN) / math.sqrt(FEATURES)
    return theta


def opt_init(params: list[jax.Array]) -> OptState:
    zeros = [jnp.zeros_like(p) for p in params]
    return OptState(zeros, zeros, zeros, jnp.zeros((), jnp.int32))


def features(p: jax.Array, g: jax.Array, m_fast: jax.Array, m_slow: jax.Array, v: jax.Array,
             t: jax.Array) -> jax.Array:
    """The MLP's inputs for one tensor, shape ``p.shape + (F,)``: ``g/√v̂``, ``m̂_0.9/√v̂``, ``m̂_0.99/√v̂``
    and ``p / √mean(p²)``, where ``x̂ = x / (1 − β^t)`` is Adam's bias correction (t ≥ 1)."""
    t = t.astype(jnp.float32)
    rms = jnp.sqrt(v / (1.0 - BETA_RMS ** t)) + EPS
    p_rms = jnp.sqrt(jnp.mean(p ** 2)) + EPS
    return jnp.stack([g / rms, m_fast / (1.0 - BETAS[0] ** t) / rms, m_slow / (1.0 - BETAS[1] ** t) / rms, p / p_rms],
                     axis=-1)


def mlp_output(theta: jax.Array, f: jax.Array) -> jax.Array:
    """``out = f·a + W₂ᵀ relu(W₁ᵀ f + b₁) + b₂`` over the last axis of ``f`` (…, F) → (…)."""
    w = unpack(theta)
    return f @ w["a"] + jax.nn.relu(f @ w["w1"] + w["b1"]) @ w["w2"] + w["b2"]


def lopt_step(theta: jax.Array, params: list[jax.Array], grads: list[jax.Array],
              state: OptState) -> tuple[list[jax.Array], OptState]:
    """One step of the learned optimizer: ``m_β ← β m_β + (1 − β) g``, ``v ← β_v v + (1 − β_v) g²``,
    then ``p ← p − STEP_MULT · out(θ, features)`` for every inner parameter. A pure function."""
    t = state.t + 1
    new_params, m_fast, m_slow, v = [], [], [], []
    for p, g, mf, ms, vv in zip(params, grads, state.m_fast, state.m_slow, state.v):
        mf = BETAS[0] * mf + (1 - BETAS[0]) * g
        ms = BETAS[1] * ms + (1 - BETAS[1]) * g
        vv = BETA_RMS * vv + (1 - BETA_RMS) * g ** 2
        new_params.append(p - STEP_MULT * mlp_output(theta, features(p, g, mf, ms, vv, t)))
        m_fast.append(mf)
        m_slow.append(ms)
        v.append(vv)
    return new_params, OptState(m_fast, m_slow, v, t)


# ---------------------------------------------------------------- the unrolled system


def make_system(data: Digits, batch_size: int) -> tuple[Callable, Callable]:
    """``init`` and ``unroll_step`` of one inner training run under the learned optimizer θ, for
    :func:`pes_rl.unroll.optimize`. The loss of a step is the capped minibatch cross-entropy before it."""

    def init(key, theta):
        params = init_params(key)
        return params, opt_init(params)

    def unroll_step(state, theta, key):
        params, opt_state = state
        x, y = minibatch(data, key, batch_size)
        loss, grads = jax.value_and_grad(cross_entropy)(params, x, y)
        params, opt_state = lopt_step(theta, params, grads, opt_state)
        return (params, opt_state), capped(loss), False

    return init, unroll_step


def make_runner(data: Digits, batch_size: int, horizon: int, rule: str) -> Callable:
    """``run(h, keys (S, 2)) -> (losses (S, 2T), train loss (S, 2), test acc (S, 2))``: S inner runs of 2T
    steps from the keys' inits, with the learned optimizer (``rule="lopt"``, h = θ) or Adam (``rule="adam"``,
    h = its step), the steps PES unrolls; losses are the meta-loss's terms, and the full training set's
    loss and the test accuracy are taken after T and after 2T steps. One program serves both lengths:
    each XLA compile takes seconds on a CPU."""

    def one(h, key):
        init_key, run_key = jax.random.split(key)
        params = init_params(init_key)
        adam = optax.adam(h) if rule == "adam" else None
        opt_state = adam.init(params) if rule == "adam" else opt_init(params)

        def step(carry, k):
            params, opt_state = carry
            x, y = minibatch(data, k, batch_size)
            loss, grads = jax.value_and_grad(cross_entropy)(params, x, y)
            if rule == "adam":
                updates, opt_state = adam.update(grads, opt_state, params)
                params = optax.apply_updates(params, updates)
            else:
                params, opt_state = lopt_step(h, params, grads, opt_state)
            return (params, opt_state), capped(loss)

        keys = jax.random.split(run_key, 2 * horizon)
        carry, losses, train_loss, test_acc = (params, opt_state), [], [], []
        for half in (keys[:horizon], keys[horizon:]):
            carry, part = jax.lax.scan(step, carry, half)
            losses.append(part)
            train_loss.append(capped(cross_entropy(carry[0], data.x_train, data.y_train)))
            test_acc.append(accuracy(carry[0], data.x_test, data.y_test))
        return jnp.concatenate(losses), jnp.stack(train_loss), jnp.stack(test_acc)

    return jax.jit(jax.vmap(one, in_axes=(None, 0)))


def run_keys(base: int, count: int) -> jax.Array:
    return jnp.stack([jax.random.PRNGKey(base + j) for j in range(count)])


def scores(run: Callable, h, keys: jax.Array) -> dict[str, dict]:
    """For the first T steps (``eval_T``) and all 2T (``eval_2T``) of each run: mean ± std over the runs of
    the meta-loss (mean training loss over those steps), of the test accuracy and the training loss at their
    end, each run's meta-loss, and the mean per-step loss curve."""
    losses, train_loss, test_acc = (np.asarray(a) for a in run(jnp.asarray(h, jnp.float32), keys))
    T = losses.shape[1] // 2
    out = {}
    for i, window in enumerate(("eval_T", "eval_2T")):
        part = losses[:, :(i + 1) * T]
        meta = part.mean(1)
        out[window] = {"meta_loss": float(meta.mean()), "meta_loss_std": float(meta.std()),
                       "meta_loss_runs": meta.tolist(), "test_acc": float(test_acc[:, i].mean()),
                       "test_acc_std": float(test_acc[:, i].std()), "final_train_loss": float(train_loss[:, i].mean()),
                       "final_train_loss_std": float(train_loss[:, i].std()), "curve": part.mean(0).tolist()}
    return out


# ---------------------------------------------------------------- driver


def curve_points(count: int, total: int) -> np.ndarray:
    """``count`` update indices spread evenly over ``total`` updates, ending with the last."""
    return np.unique(np.r_[np.linspace(0, total - 1, max(count, 1)).round().astype(int), total - 1])


def main(argv: list[str] | None = None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--methods", nargs="+", default=["PES", "ES", "TES"], choices=["PES", "ES", "TES"])
    parser.add_argument("--horizon", type=int, default=100, help="T, inner steps of one meta-training unroll")
    parser.add_argument("--truncation-length", type=int, default=10, help="K of PES and TES")
    parser.add_argument("--batch-size", type=int, default=32)
    parser.add_argument("--num-pairs", type=int, default=16, help="N antithetic pairs")
    parser.add_argument("--sigma", type=float, default=0.1)
    parser.add_argument("--meta-lr", type=float, default=0.03, help="Adam's step on θ, every method")
    parser.add_argument("--iterations", type=int, default=1000, help="PES/TES updates; sets the compute budget")
    parser.add_argument("--eval-seeds", type=int, default=32, help="held-out inner runs scoring each optimizer")
    parser.add_argument("--tune-seeds", type=int, default=16, help="inner runs scoring each Adam step of the grid")
    parser.add_argument("--adam-grid", type=float, nargs=3, default=[-4.0, 0.0, 17],
                        help="log10 of the smallest and largest Adam step, and the grid's size")
    parser.add_argument("--curve-points", type=int, default=11, help="θs evaluated along each meta-training run")
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2],
                        help="meta-training seeds (noise, stagger, systems' keys)")
    parser.add_argument("--smoke", action="store_true", help="tiny sizes (CI)")
    parser.add_argument("--out", default="runs/learned_optimizer")
    args = parser.parse_args(argv)
    if args.smoke:
        args.horizon, args.truncation_length, args.num_pairs, args.iterations = 20, 5, 4, 40
        args.eval_seeds, args.tune_seeds, args.curve_points, args.adam_grid = 4, 4, 3, [-3.0, -1.0, 3]
        args.seeds = args.seeds[:1]
    if args.horizon % args.truncation_length:
        parser.error("--horizon must be a multiple of --truncation-length (no idle steps at an unroll's end)")
    os.makedirs(args.out, exist_ok=True)
    # optimize() jits a fresh closure per call: without the cache every seed recompiles
    compile_cache.enable()
    tic = time.perf_counter()
    data = load_split()
    T, K, N = args.horizon, args.truncation_length, args.num_pairs
    init, unroll_step = make_system(data, args.batch_size)
    theta0 = theta_init()
    eval_keys, tune_keys = run_keys(EVAL_KEY, args.eval_seeds), run_keys(TUNE_KEY, args.tune_seeds)
    lopt, adam = (make_runner(data, args.batch_size, T, rule) for rule in ("lopt", "adam"))

    # Adam's step, tuned on the tuning seeds by the same meta-loss
    grid = np.logspace(args.adam_grid[0], args.adam_grid[1], int(args.adam_grid[2]))
    grid_loss = [scores(adam, lr, tune_keys)["eval_T"]["meta_loss"] for lr in grid]
    best_lr = float(grid[int(np.argmin(grid_loss))])
    print(f"Adam grid: best step {best_lr:.2e}, tuning meta-loss {min(grid_loss):.4f}")

    budget = int(pu.stagger_windows(args.seeds[0], T, K, N).sum()) * K + args.iterations * 2 * N * K
    adam_scores = scores(adam, best_lr, eval_keys)
    methods, rows = {method: {} for method in args.methods}, []
    for seed in args.seeds:
        for method in args.methods:
            estimator = method.lower()
            k = T if estimator == "es" else K
            iterations = max(1, round(budget / (2 * N * T))) if estimator == "es" else args.iterations
            t0 = time.perf_counter()
            result = pu.optimize(init, unroll_step, jnp.asarray(theta0), horizon=T, truncation_length=k,
                                 num_pairs=N, sigma=args.sigma, optimizer=optax.adam(args.meta_lr),
                                 iterations=iterations, estimator=estimator, seed=seed)
            seconds = time.perf_counter() - t0
            steps = result.burn_in_steps + 2 * N * k * np.arange(1, iterations + 1)
            points = curve_points(args.curve_points, iterations)
            evaluated = {int(i): scores(lopt, result.thetas[i], eval_keys)["eval_T"]["meta_loss"] for i in points}
            final = result.thetas[-1]
            r = {"theta": final.tolist(), "updates": iterations, "inner_steps": int(steps[-1]),
                 "meta_train_seconds": round(seconds, 1), **scores(lopt, final, eval_keys),
                 "curve": {"inner_steps": steps[points].tolist(), "meta_loss": list(evaluated.values())}}
            # paired with Adam: the same held-out inits and minibatches
            diff = np.array(r["eval_T"]["meta_loss_runs"]) - np.array(adam_scores["eval_T"]["meta_loss_runs"])
            r["vs_adam_T"] = {"mean_difference": float(diff.mean()), "wins": int((diff < 0).sum()), "runs": len(diff)}
            methods[method][str(seed)] = r
            rows += [[method, seed, i + 1, int(steps[i]), float(result.losses[i]), evaluated.get(i, "")]
                     for i in range(iterations)]
            e = r["eval_T"]
            print(f"seed {seed} {method:>4}: {iterations} updates, {int(steps[-1]):,} inner steps, {seconds:.1f} s; "
                  f"held-out meta-loss {e['meta_loss']:.4f} ± {e['meta_loss_std']:.4f}, test acc {e['test_acc']:.4f}")

    summary = {
        "settings": vars(args) | {"theta_size": THETA_SIZE, "hidden": HIDDEN, "step_mult": STEP_MULT},
        "data": {"train": int(data.x_train.shape[0]), "test": int(data.x_test.shape[0])},
        "budget_inner_steps": budget,
        "theta0": scores(lopt, theta0, eval_keys),
        "adam": {"grid": grid.tolist(), "grid_meta_loss": grid_loss, "lr": best_lr,
                 **adam_scores},
        "methods": methods,
    }
    summary["seconds"] = round(time.perf_counter() - tic, 1)
    with open(os.path.join(args.out, "meta_training.csv"), "w", newline="") as f:
        writer = csv.writer(f)
        writer.writerow(["method", "seed", "update", "inner_steps", "particle_loss", "eval_meta_loss"])
        writer.writerows(rows)
    with open(os.path.join(args.out, "summary.json"), "w") as f:
        json.dump(summary, f, indent=1)
    plot(summary, os.path.join(args.out, "learned_optimizer.png"))
    print(table(summary))
    print(f"wrote {args.out}/summary.json, meta_training.csv, learned_optimizer.png in {summary['seconds']} s")
    return summary


def table(summary: dict) -> str:
    """A markdown table of the held-out evaluation, for T and 2T steps: per meta-seed values (each the mean
    over the eval runs) for the learned optimizers, mean ± std over the eval runs for tuned Adam and θ₀."""
    T = summary["settings"]["horizon"]
    seeds = summary["settings"]["seeds"]
    lines = [f"| optimizer | meta-loss over T = {T} | test acc at T | meta-loss over 2T = {2 * T} | test acc at 2T "
             f"| runs better than Adam (T) |", "|---|---|---|---|---|---|"]
    for name, per_seed in summary["methods"].items():
        rs = [per_seed[str(s)] for s in seeds]
        cells = [" / ".join(f"{r[w][key]:.4f}" for r in rs) for w in ("eval_T", "eval_2T")
                 for key in ("meta_loss", "test_acc")]
        wins = " / ".join(f"{r['vs_adam_T']['wins']}/{r['vs_adam_T']['runs']}" for r in rs)
        lines.append(f"| learned, {name} ({rs[0]['updates']} updates) | {' | '.join(cells)} | {wins} |")
    baselines = ((f"Adam, tuned step {summary['adam']['lr']:.3g}", summary["adam"]), ("θ₀ (no step)", summary["theta0"]))
    for name, e in baselines:
        cells = [f"{e[w][key]:.4f} ± {e[w][key + '_std']:.4f}" for w in ("eval_T", "eval_2T")
                 for key in ("meta_loss", "test_acc")]
        lines.append(f"| {name} | {' | '.join(cells)} | |")
    return "\n".join(lines)


def plot(summary: dict, path: str) -> None:
    """Left: held-out meta-loss of θ against the inner steps spent meta-training it (mean over meta-seeds,
    band min–max). Right: mean training loss per step over 2T steps on the held-out runs, the learned
    optimizers (mean over meta-seeds) against tuned Adam."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    colors = {"PES": "C3", "ES": "C2", "TES": "C1"}
    T = summary["settings"]["horizon"]
    fig, (left, right) = plt.subplots(1, 2, figsize=(12, 4.5))
    start = summary["theta0"]["eval_T"]["meta_loss"]
    for name, per_seed in summary["methods"].items():
        rs = list(per_seed.values())
        x = np.r_[0, rs[0]["curve"]["inner_steps"]] / 1e6
        y = np.array([np.r_[start, r["curve"]["meta_loss"]] for r in rs])
        left.plot(x, y.mean(0), "o-", color=colors[name], label=f"{name} ({rs[0]['updates']} updates)")
        left.fill_between(x, y.min(0), y.max(0), color=colors[name], alpha=0.2)
        right.plot(np.arange(1, 2 * T + 1), np.mean([r["eval_2T"]["curve"] for r in rs], 0), color=colors[name],
                   label=f"learned ({name})")
    left.axhline(summary["adam"]["eval_T"]["meta_loss"], color="k", ls="--", label="tuned Adam")
    left.set_xlabel("inner steps spent in meta-training (millions)")
    left.set_ylabel(f"held-out meta-loss (mean training loss over T = {T})")
    left.set_yscale("log")
    left.legend()
    right.plot(np.arange(1, 2 * T + 1), summary["adam"]["eval_2T"]["curve"], "k--",
               label=f"Adam, tuned step {summary['adam']['lr']:.2g}")
    right.axvline(T, color="grey", ls=":", label="meta-training horizon T")
    right.set_xlabel("inner step")
    right.set_ylabel("minibatch training loss (mean over held-out runs)")
    right.set_yscale("log")
    right.legend()
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)


if __name__ == "__main__":
    main()
