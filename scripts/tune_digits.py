"""Hyperparameters of an MLP on scikit-learn's digits, tuned through a non-differentiable objective:
PES against truncated ES (TES), full-unroll ES and random search at the same compute.

The data: ``sklearn.datasets.load_digits`` (1,797 8x8 images, bundled, no download), pixels scaled
to [0, 1], split once 60/20/20 into train/validation/test (stratified, split seed 0).

The unrolled system: a 64-32-32-10 tanh MLP trained by SGD with momentum on minibatches of the
training set for T inner steps; one ``unroll_step`` is one SGD step. Its loss at step t is the
**validation error rate (1 - accuracy) of the weights after step t** — a step function of the
weights, so there is no gradient to backpropagate. PES minimises the sum of the per-step losses,
so the meta-objective is **the mean validation error over the T steps of a training run**
(expected over the weight init and the minibatch order, which change with every run): it rewards
training that is both fast and ends well. Logits that are not finite count as errors, so a
diverging run costs error 1 at every step that it has diverged.

Two experiments, θ a flat vector in a box (``SPACES``):

* ``schedule``: θ = (log initial learning rate, log decay rate), learning rate at step t
  ``exp(θ_0 − exp(θ_1) t / T)``; momentum 0.9, no weight decay, init scale 1 (× 1/√fan-in).
* ``many``: 21 hyperparameters at once: per-tensor log learning rates (6: the three weight
  matrices and three bias vectors), per-tensor momentum (6, through a logit), per-layer log
  weight decay (3, on the weight matrices), per-layer log init scale (3) and per-layer log
  learning-rate decay rate (3).

Methods, every one at the same compute — the same total number of inner SGD steps, over all
particles or trials, burn-in included: PES and TES through :mod:`pes_rl.unroll` (K-step
truncations, N antithetic pairs, Adam on θ, starting from the centre of the box); full-unroll ES
(K = T, fewer updates, same start; the ES family is not confined to the box); random search (θ
uniform in the box, each trained once for T steps, the best by the same meta-objective measured on
that one run). Each method's final θ is
then trained from scratch with ``--eval-seeds`` fresh init/minibatch seeds (the same for every
method) and scored by its final validation and test accuracy and by its meta-objective. Repeated
for ``--seeds`` (the meta-optimisers' and the random search's seeds).

Writes ``OUT/results.json`` (per experiment, seed and method: final θ, its scores, the inner steps
spent and the meta-training curve), ``OUT/summary.md`` (tables: mean ± std and min–max over
seeds) and ``OUT/curves.png`` (evaluated validation accuracy against inner steps spent).

    python scripts/tune_digits.py --out docs/digits                  # the full run (docs/digits.md)
    python scripts/tune_digits.py --smoke --out /tmp/digits          # tiny sizes, < 1 min (CI)
    python scripts/tune_digits.py --from-results --out docs/digits   # redraw the table and figure
"""

from __future__ import annotations

import argparse
import json
import math
import os
import time
from dataclasses import dataclass
from typing import Callable

import jax
import jax.numpy as jnp
import numpy as np
import optax

import pes_rl.unroll as pu
from pes_rl import compile_cache

SIZES = (64, 32, 32, 10)  # the MLP's layer widths: 8x8 pixels in, 10 classes out
LAYERS = len(SIZES) - 1
TENSORS = 2 * LAYERS  # (W, b) per layer
SPLIT_SEED = 0
EVAL_KEY = 10_000  # eval runs use PRNGKey(EVAL_KEY + j): disjoint from the meta-training keys


# ---------------------------------------------------------------- data


@dataclass(frozen=True)
class Digits:
    """The fixed split, as float32 pixels in [0, 1] and int32 labels."""

    x_train: jax.Array
    y_train: jax.Array
    x_val: jax.Array
    y_val: jax.Array
    x_test: jax.Array
    y_test: jax.Array


def load_split() -> Digits:
    """Digits split 60/20/20 into train/validation/test, stratified by class, split seed 0."""
    from sklearn.datasets import load_digits
    from sklearn.model_selection import train_test_split

    x, y = load_digits(return_X_y=True)
    x = (x / 16.0).astype(np.float32)  # pixel values are 0..16
    x_train, x_rest, y_train, y_rest = train_test_split(x, y, train_size=0.6, stratify=y, random_state=SPLIT_SEED)
    x_val, x_test, y_val, y_test = train_test_split(x_rest, y_rest, test_size=0.5, stratify=y_rest,
                                                    random_state=SPLIT_SEED)
    arr = lambda a, dtype: jnp.asarray(a, dtype)  # noqa: E731
    return Digits(arr(x_train, jnp.float32), arr(y_train, jnp.int32), arr(x_val, jnp.float32),
                  arr(y_val, jnp.int32), arr(x_test, jnp.float32), arr(y_test, jnp.int32))


# ---------------------------------------------------------------- hyperparameters


@dataclass(frozen=True)
class Hyper:
    """Decoded hyperparameters, one entry per tensor (W1, b1, W2, b2, W3, b3) or per layer."""

    lr: jax.Array  # (TENSORS,) initial learning rates
    decay: jax.Array  # (TENSORS,) learning-rate decay rates: lr_t = lr exp(-decay t / T)
    momentum: jax.Array  # (TENSORS,)
    weight_decay: jax.Array  # (TENSORS,) zero on the biases
    init_scale: jax.Array  # (LAYERS,) multiplies the 1/sqrt(fan-in) init of each weight matrix


def _per_tensor_from_layers(v: jax.Array) -> jax.Array:
    """(LAYERS,) → (TENSORS,): each layer's value for its W and its b."""
    return jnp.repeat(v, 2)


def decode_schedule(theta: jax.Array) -> Hyper:
    """θ = (log initial lr, log decay rate) → the same schedule on every tensor, momentum 0.9."""
    ones = jnp.ones(TENSORS)
    return Hyper(lr=jnp.exp(theta[0]) * ones, decay=jnp.exp(theta[1]) * ones, momentum=0.9 * ones,
                 weight_decay=jnp.zeros(TENSORS), init_scale=jnp.ones(LAYERS))


def decode_many(theta: jax.Array) -> Hyper:
    """θ (21,) = per-tensor log lr (6), per-tensor logit momentum (6), per-layer log weight decay (3),
    per-layer log init scale (3), per-layer log decay rate (3) → :class:`Hyper`."""
    log_lr, logit_mom = theta[0:6], theta[6:12]
    log_wd, log_scale, log_decay = theta[12:15], theta[15:18], theta[18:21]
    is_weight = jnp.arange(TENSORS) % 2 == 0
    return Hyper(lr=jnp.exp(log_lr), decay=_per_tensor_from_layers(jnp.exp(log_decay)),
                 momentum=jax.nn.sigmoid(logit_mom),
                 weight_decay=jnp.where(is_weight, _per_tensor_from_layers(jnp.exp(log_wd)), 0.0),
                 init_scale=jnp.exp(log_scale))


@dataclass(frozen=True)
class Space:
    """A search space: names and box of θ, and its decoder. Random search samples the box
    uniformly; PES, TES and ES start from its centre (so every method starts from the same prior)."""

    names: tuple[str, ...]
    low: np.ndarray
    high: np.ndarray
    decode: Callable[[jax.Array], Hyper]

    @property
    def centre(self) -> np.ndarray:
        return ((self.low + self.high) / 2).astype(np.float32)


def _many_space() -> Space:
    """The 21-hyperparameter box of the ``many`` experiment (names in ``decode_many``'s order)."""
    tensors = [f"{kind}{layer}" for layer in range(1, LAYERS + 1) for kind in ("W", "b")]
    layers = [str(layer) for layer in range(1, LAYERS + 1)]
    names = ([f"log_lr_{t}" for t in tensors] + [f"logit_momentum_{t}" for t in tensors]
             + [f"log_weight_decay_{n}" for n in layers] + [f"log_init_scale_{n}" for n in layers]
             + [f"log_decay_{n}" for n in layers])
    low = np.r_[[-8.0] * 6, [-2.0] * 6, [-12.0] * 3, [-2.0] * 3, [-3.0] * 3]
    high = np.r_[[0.0] * 6, [4.0] * 6, [-2.0] * 3, [2.0] * 3, [3.0] * 3]
    return Space(tuple(names), low, high, decode_many)


SPACES = {
    "schedule": Space(("log_lr", "log_decay"), np.array([-8.0, -3.0]), np.array([0.0, 3.0]), decode_schedule),
    "many": _many_space(),
}


# ---------------------------------------------------------------- the inner problem


def mlp_logits(params: list, x: jax.Array) -> jax.Array:
    """The MLP's logits: tanh hidden layers, linear output."""
    h = x
    for i in range(LAYERS):
        w, b = params[2 * i], params[2 * i + 1]
        h = h @ w + b
        if i < LAYERS - 1:
            h = jnp.tanh(h)
    return h


def cross_entropy(params: list, x: jax.Array, y: jax.Array) -> jax.Array:
    """The mean softmax cross-entropy of the labels ``y``: what the inner SGD descends."""
    logits = mlp_logits(params, x)
    return jnp.mean(jax.nn.logsumexp(logits, axis=-1) - jnp.take_along_axis(logits, y[:, None], axis=-1)[:, 0])


def error_rate(params: list, x: jax.Array, y: jax.Array) -> jax.Array:
    """1 − accuracy; an example whose logits are not all finite (a diverged run) counts as an error."""
    logits = mlp_logits(params, x)
    ok = jnp.logical_and(jnp.argmax(logits, axis=-1) == y, jnp.all(jnp.isfinite(logits), axis=-1))
    return 1.0 - jnp.mean(ok.astype(jnp.float32))


def init_params(key: jax.Array, init_scale: jax.Array) -> list:
    """Weights N(0, (scale_l / sqrt(fan-in))²), zero biases."""
    # one draw sliced into the matrices: a threefry call per matrix triples the (CPU) compile time
    shapes = list(zip(SIZES[:-1], SIZES[1:]))
    z = jax.random.normal(key, (sum(a * b for a, b in shapes),))
    params, offset = [], 0
    for i, (fan_in, fan_out) in enumerate(shapes):
        w = z[offset:offset + fan_in * fan_out].reshape(fan_in, fan_out)
        params += [w * init_scale[i] / math.sqrt(fan_in), jnp.zeros(fan_out)]
        offset += fan_in * fan_out
    return params


def sgd_momentum_step(params: list, velocity: list, grads: list, hyper: Hyper, t: jax.Array, horizon: int):
    """One step of heavy-ball SGD with L2 weight decay, tensor i at learning rate
    ``lr_i exp(−decay_i t / T)``: ``v ← μ v + g + λ p``, ``p ← p − lr_t v``."""
    lr_t = hyper.lr * jnp.exp(-hyper.decay * t / horizon)
    new_params, new_velocity = [], []
    for i, (p, v, g) in enumerate(zip(params, velocity, grads)):
        v = hyper.momentum[i] * v + g + hyper.weight_decay[i] * p
        new_params.append(p - lr_t[i] * v)
        new_velocity.append(v)
    return new_params, new_velocity


def make_system(data: Digits, space: Space, horizon: int, batch_size: int) -> tuple[Callable, Callable]:
    """``init`` and ``unroll_step`` of one inner training run, for :func:`pes_rl.unroll.optimize`.

    The state is (weights, momentum buffers, step). ``init`` draws fresh weights from its key
    (UnrolledSystem evaluates it at every step under vmap: it is a few thousand normals, cheaper
    than the validation pass). The loss of a step is the validation error after it."""
    n_train = data.x_train.shape[0]

    def init(key, theta):
        params = init_params(key, space.decode(theta).init_scale)
        return params, [jnp.zeros_like(p) for p in params], jnp.zeros((), jnp.int32)

    def unroll_step(state, theta, key):
        params, velocity, t = state
        hyper = space.decode(theta)
        # a minibatch drawn with replacement (floor of uniforms: cheaper to compile than randint)
        idx = jnp.minimum((jax.random.uniform(key, (batch_size,)) * n_train).astype(jnp.int32), n_train - 1)
        grads = jax.grad(cross_entropy)(params, data.x_train[idx], data.y_train[idx])
        params, velocity = sgd_momentum_step(params, velocity, grads, hyper, t, horizon)
        return (params, velocity, t + 1), error_rate(params, data.x_val, data.y_val), False

    return init, unroll_step


def make_trainer(data: Digits, space: Space, horizon: int, batch_size: int) -> Callable:
    """``train(theta, key) -> (mean validation error over the run, final val accuracy, final test
    accuracy)``: one full T-step run from scratch, the same steps PES unrolls."""
    init, unroll_step = make_system(data, space, horizon, batch_size)

    def train(theta, key):
        init_key, run_key = jax.random.split(key)

        def step(state, k):
            state, loss, _ = unroll_step(state, theta, k)
            return state, loss

        (params, _, _), losses = jax.lax.scan(step, init(init_key, theta), jax.random.split(run_key, horizon))
        return (jnp.mean(losses), 1.0 - error_rate(params, data.x_val, data.y_val),
                1.0 - error_rate(params, data.x_test, data.y_test))

    return train


# ---------------------------------------------------------------- methods


def run_es_family(init: Callable, unroll_step: Callable, space: Space, estimator: str, horizon: int, k: int, num_pairs: int, sigma: float,
                  meta_lr: float, iterations: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """θ after each update of PES/TES/ES from the box's centre, and the inner steps spent by then."""
    result = pu.optimize(init, unroll_step, jnp.asarray(space.centre), horizon=horizon, truncation_length=k,
                         num_pairs=num_pairs, sigma=sigma, optimizer=optax.adam(meta_lr), iterations=iterations,
                         estimator=estimator, seed=seed)
    k = horizon if estimator == "es" else k  # full-unroll ES: K = T, no stagger, no burn-in
    steps = result.burn_in_steps + 2 * num_pairs * k * np.arange(1, iterations + 1)
    return result.thetas, steps


def make_batch_trainer(train: Callable, chunk: int) -> Callable:
    """``train_many(thetas (B, D), keys (B, 2)) -> (mean val error, val acc, test acc)``, each (B,):
    one full run per (θ, key) pair. Compiled once for ``chunk`` pairs (padded), so that random search
    and every evaluation share a single program: XLA takes seconds per compile on a CPU."""
    run = jax.jit(jax.vmap(train))

    def train_many(thetas: np.ndarray, keys: jax.Array) -> tuple[np.ndarray, ...]:
        n = len(thetas)
        pad = -n % chunk
        thetas = np.concatenate([np.asarray(thetas, np.float32), np.repeat(np.asarray(thetas[-1:], np.float32), pad, 0)])
        keys = jnp.concatenate([keys, jnp.repeat(keys[-1:], pad, 0)])
        parts = [run(jnp.asarray(thetas[i:i + chunk]), keys[i:i + chunk]) for i in range(0, n + pad, chunk)]
        return tuple(np.concatenate([np.asarray(p[j]) for p in parts])[:n] for j in range(3))

    return train_many


def run_random_search(train_many: Callable, space: Space, trials: int, horizon: int,
                      seed: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """θ uniform in the box, each trained once for T steps; returns the incumbent (best meta-objective
    so far) after each trial, the inner steps spent by then, and every trial's meta-objective."""
    rng = np.random.default_rng([seed, 11])
    thetas = rng.uniform(space.low, space.high, size=(trials, space.low.size)).astype(np.float32)
    keys = jax.random.split(jax.random.fold_in(jax.random.PRNGKey(seed), 11), trials)
    objective = train_many(thetas, keys)[0]
    # index of the best trial so far: a running argmin (ties keep the earlier trial)
    best_so_far = np.array([int(np.argmin(objective[:i + 1])) for i in range(trials)])
    return thetas[best_so_far], horizon * np.arange(1, trials + 1), objective


def make_evaluator(train_many: Callable, eval_seeds: int) -> Callable[[np.ndarray], dict[str, np.ndarray]]:
    """``evaluate(thetas (M, D)) -> dict of (M,) arrays``: each θ trained from scratch with the same
    ``eval_seeds`` keys (for every method), its meta-objective and final accuracies averaged over them."""
    keys = jnp.stack([jax.random.PRNGKey(EVAL_KEY + j) for j in range(eval_seeds)])

    def evaluate(thetas: np.ndarray) -> dict[str, np.ndarray]:
        m = len(thetas)
        mean_err, val, test = train_many(np.repeat(np.asarray(thetas), eval_seeds, 0), jnp.tile(keys, (m, 1)))
        per = lambda v: v.reshape(m, eval_seeds).mean(1)  # noqa: E731
        return {"mean_val_error": per(mean_err), "val_acc": per(val), "test_acc": per(test)}

    return evaluate


def curve_points(steps: np.ndarray, count: int) -> np.ndarray:
    """Indices of ``count`` updates/trials spread evenly over a run, always ending with the last one."""
    return np.unique(np.r_[np.linspace(0, len(steps) - 1, max(count, 1)).round().astype(int), len(steps) - 1])


# ---------------------------------------------------------------- driver


def run_experiment(name: str, data: Digits, args: argparse.Namespace, log: Callable[[str], None]) -> dict:
    """Every method and seed of one experiment: final θ, scores, compute and curves."""
    space = SPACES[name]
    T, K, N = args.horizon, args.truncation_length, args.num_pairs
    init, unroll_step = make_system(data, space, T, args.batch_size)
    train_many = make_batch_trainer(make_trainer(data, space, T, args.batch_size), args.chunk)
    evaluate = make_evaluator(train_many, args.eval_seeds)
    budget = int(pu.stagger_windows(0, T, K, N).sum()) * K + args.iterations * 2 * N * K  # PES's steps at seed 0 set the budget
    trials = max(1, round(budget / T))
    es_iterations = max(1, round(budget / (2 * N * T)))
    start = {key: float(v[0]) for key, v in evaluate(space.centre[None]).items()}
    out = {"theta_names": list(space.names), "low": space.low.tolist(), "high": space.high.tolist(),
           "start": {"theta": space.centre.tolist(), **start}, "budget_inner_steps": budget, "seeds": {}}
    log(f"[{name}] D = {space.low.size}, budget {budget:,} inner steps; start: {start}")
    for seed in args.seeds:
        methods = {}
        for method in args.methods:
            tic = time.perf_counter()
            if method == "random":
                thetas, steps, _ = run_random_search(train_many, space, trials, T, seed)
            else:
                estimator = method.lower()
                iters = es_iterations if estimator == "es" else args.iterations
                thetas, steps = run_es_family(init, unroll_step, space, estimator, T, K, N, args.sigma, args.meta_lr,
                                              iters, seed)
            seconds = time.perf_counter() - tic
            points = curve_points(steps, args.curve_points)  # the last θ is among them
            curve = evaluate(thetas[points])
            final = {key: float(v[-1]) for key, v in curve.items()}
            methods[method] = {"theta": thetas[-1].tolist(), **final, "inner_steps": int(steps[-1]),
                               "updates": len(thetas), "seconds": round(seconds, 2),
                               "curve": {"inner_steps": steps[points].tolist(),
                                         **{key: v.tolist() for key, v in curve.items()}}}
            log(f"[{name}] seed {seed} {method:>6}: val {final['val_acc']:.4f} test {final['test_acc']:.4f} "
                f"mean-val-err {final['mean_val_error']:.4f}, {int(steps[-1]):,} steps, {seconds:.1f} s")
        out["seeds"][str(seed)] = methods
    return out


def summarise(results: dict) -> str:
    """Markdown tables: per experiment and method, mean ± std and [min, max] over seeds."""
    lines = ["# Digits hyperparameter tuning: PES vs TES vs ES vs random search", ""]
    s = results["settings"]
    lines += [f"T = {s['horizon']} inner SGD steps (batch {s['batch_size']}), K = {s['truncation_length']}, "
              f"N = {s['num_pairs']} pairs, σ = {s['sigma']}, Adam {s['meta_lr']} on θ, "
              f"{s['iterations']} PES/TES updates; seeds {s['seeds']}; each final θ scored over "
              f"{s['eval_seeds']} fresh training runs. Meta-objective: mean validation error over the T steps.", ""]
    for name, exp in results["experiments"].items():
        st = exp["start"]
        lines += [f"## {name} (D = {len(exp['theta_names'])}, budget {exp['budget_inner_steps']:,} inner steps)", "",
                  f"Start θ (box centre): val acc {st['val_acc']:.4f}, test acc {st['test_acc']:.4f}, "
                  f"mean val error {st['mean_val_error']:.4f}.", "",
                  "| method | final val acc | final test acc | meta-objective (mean val error) | inner steps | updates/trials |",
                  "|---|---|---|---|---|---|"]
        methods = list(next(iter(exp["seeds"].values())))
        for method in methods:
            rows = [exp["seeds"][seed][method] for seed in exp["seeds"]]

            def stat(key: str) -> str:
                v = np.array([r[key] for r in rows])
                std = v.std(ddof=1) if len(v) > 1 else 0.0
                return f"{v.mean():.4f} ± {std:.4f} [{v.min():.4f}, {v.max():.4f}]"

            steps = sorted({r["inner_steps"] for r in rows})
            spent = f"{steps[0]:,}" + (f"–{steps[-1]:,}" if len(steps) > 1 else "")
            lines.append(f"| {method} | {stat('val_acc')} | {stat('test_acc')} | {stat('mean_val_error')} | "
                         f"{spent} | {rows[0]['updates']} |")
        lines.append("")
    lines.append("mean ± std [min, max] over seeds (sample std, ddof 1). Inner steps: PES/TES vary with each "
                 "seed's burn-in (the pairs' stagger); the budget is PES's at seed 0.")
    return "\n".join(lines) + "\n"


def plot(results: dict, path: str) -> None:
    """Evaluated meta-objective (as accuracy) and final validation accuracy of each method's θ against
    the inner steps spent: mean over seeds, shaded min–max."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    experiments = results["experiments"]
    fig, axes = plt.subplots(2, len(experiments), figsize=(6 * len(experiments), 8), squeeze=False)
    colors = {"PES": "C3", "TES": "C1", "ES": "C2", "random": "C0"}
    for col, (name, exp) in enumerate(experiments.items()):
        for row, (key, label) in enumerate((("mean_val_error", "mean validation accuracy over the run (1 − objective)"),
                                            ("val_acc", "final validation accuracy"))):
            ax = axes[row, col]
            methods = list(next(iter(exp["seeds"].values())))
            for method in methods:
                curves = [exp["seeds"][seed][method]["curve"] for seed in exp["seeds"]]
                if not curves[0].get(key):
                    continue
                x = np.array(curves[0]["inner_steps"]) / 1e3
                y = np.array([c[key] for c in curves])
                if method != "random":  # the ES family's runs start from the box centre at 0 steps
                    x, y = np.r_[0.0, x], np.c_[np.full(len(y), exp["start"][key]), y]
                y = 1.0 - y if key == "mean_val_error" else y
                ax.plot(x, y.mean(0), color=colors.get(method), label=method)
                ax.fill_between(x, y.min(0), y.max(0), color=colors.get(method), alpha=0.2)
            start = exp["start"][key]
            ax.axhline(1.0 - start if key == "mean_val_error" else start, color="grey", ls=":", label="start θ")
            ax.set_title(f"{name} (D = {len(exp['theta_names'])})")
            ax.set_xlabel("inner SGD steps spent (thousands)")
            ax.set_ylabel(label)
            ax.legend(loc="best", fontsize="small")
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)


def _write_reports(results: dict, out: str) -> None:
    """``summary.md`` and ``curves.png`` from the results (also after the fact, ``--from-results``)."""
    with open(os.path.join(out, "summary.md"), "w") as f:
        f.write(summarise(results))
    plot(results, os.path.join(out, "curves.png"))


def main(argv: list[str] | None = None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--experiments", nargs="+", default=["schedule", "many"], choices=list(SPACES))
    parser.add_argument("--methods", nargs="+", default=["PES", "TES", "ES", "random"],
                        choices=["PES", "TES", "ES", "random"])
    parser.add_argument("--horizon", type=int, default=100, help="T, inner SGD steps of one training run")
    parser.add_argument("--truncation-length", type=int, default=10, help="K of PES and TES")
    parser.add_argument("--batch-size", type=int, default=32)
    parser.add_argument("--num-pairs", type=int, default=16, help="N antithetic pairs of PES, TES and ES")
    parser.add_argument("--sigma", type=float, default=0.3)
    parser.add_argument("--meta-lr", type=float, default=0.05, help="Adam's step on θ")
    parser.add_argument("--iterations", type=int, default=300, help="PES/TES updates; sets the compute budget")
    parser.add_argument("--eval-seeds", type=int, default=8, help="fresh training runs scoring each final θ")
    parser.add_argument("--curve-points", type=int, default=11, help="θs evaluated along each meta-training run")
    parser.add_argument("--chunk", type=int, default=64, help="training runs vmapped together (random search, eval)")
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2, 3, 4])
    parser.add_argument("--smoke", action="store_true", help="tiny sizes, one seed (CI)")
    parser.add_argument("--out", default="runs/digits")
    parser.add_argument("--from-results", action="store_true",
                        help="only redraw summary.md and curves.png from OUT/results.json")
    args = parser.parse_args(argv)
    if args.from_results:
        with open(os.path.join(args.out, "results.json")) as f:
            results = json.load(f)
        _write_reports(results, args.out)
        return results
    if args.smoke:
        args.horizon, args.truncation_length, args.num_pairs, args.iterations = 40, 10, 4, 12
        args.eval_seeds, args.curve_points, args.seeds, args.chunk = 2, 3, [0], 8
    if args.horizon % args.truncation_length:
        parser.error("--horizon must be a multiple of --truncation-length (no idle steps at an unroll's end)")
    os.makedirs(args.out, exist_ok=True)
    # optimize() jits a fresh closure per call: without the cache every seed recompiles (~15 s)
    compile_cache.enable()
    data = load_split()
    tic = time.perf_counter()
    results = {"settings": vars(args), "data": {"train": int(data.x_train.shape[0]), "val": int(data.x_val.shape[0]),
                                                "test": int(data.x_test.shape[0])}, "experiments": {}}
    for name in args.experiments:
        results["experiments"][name] = run_experiment(name, data, args, print)
    results["seconds"] = round(time.perf_counter() - tic, 1)
    with open(os.path.join(args.out, "results.json"), "w") as f:
        json.dump(results, f, indent=1)
    _write_reports(results, args.out)
    print(f"wrote {args.out}/results.json, summary.md, curves.png in {results['seconds']} s")
    return results


if __name__ == "__main__":
    main()
