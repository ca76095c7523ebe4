"""Learning-rate schedule meta-optimisation on a toy 2-D regression (the PES paper's first
hyperparameter experiment): PES against truncated ES, truncated backprop and full-unroll ES.

The inner problem: a 2-16-1 tanh MLP fitted by full-batch gradient descent, T inner steps, to
``y = sin(2 x_1) cos(x_2)`` on 100 fixed points of [-2, 2]². Its learning rate at step t is
``exp(θ_0 − exp(θ_1) t / T)``: θ = (log initial learning rate, log decay rate). The meta-loss L(θ)
is the mean training loss over the T steps (each step's loss capped at 10, so diverging runs stay
finite). Every unroll starts from the same initial weights, so L is a deterministic function of θ
and its surface is computed exactly on a grid; large learning rates make it chaotic.

Methods, from the same θ start, each with Adam on θ, at the same compute (inner steps per
particle), all through :mod:`pes_rl.unroll`: PES and truncated ES (TES) with K-step truncations;
truncated backprop (TBPTT, ``jax.grad`` through K inner steps from the running state, online);
full-unroll ES (K = T, fewer updates). Writes ``OUT/surface.png`` (the surface with the four
trajectories), ``OUT/trajectories.csv`` and ``OUT/summary.json`` (each method's final θ and its
exact meta-loss against the grid's best).

    python scripts/reproduce_lr_schedule.py --out docs/lr_schedule
    python scripts/reproduce_lr_schedule.py --smoke --out /tmp/lr   # seconds (CI)
"""

from __future__ import annotations

import argparse
import csv
import json
import os

import jax
import jax.numpy as jnp
import numpy as np
import optax

import pes_rl.unroll as pu

HIDDEN = 16
LOSS_CAP = 10.0
POINTS = 100


def dataset() -> tuple[jax.Array, jax.Array]:
    """100 fixed points of [-2, 2]² and their targets ``sin(2 x_1) cos(x_2)``."""
    x = jax.random.uniform(jax.random.PRNGKey(0), (POINTS, 2), minval=-2.0, maxval=2.0)
    return x, jnp.sin(2.0 * x[:, 0]) * jnp.cos(x[:, 1])


def init_weights() -> dict:
    k1, k2 = jax.random.split(jax.random.PRNGKey(1))
    return {"w1": jax.random.normal(k1, (2, HIDDEN)) / jnp.sqrt(2.0), "b1": jnp.zeros(HIDDEN),
            "w2": jax.random.normal(k2, (HIDDEN, 1)) / jnp.sqrt(HIDDEN), "b2": jnp.zeros(1)}


X, Y = dataset()
W0 = init_weights()


def mse(w: dict) -> jax.Array:
    h = jnp.tanh(X @ w["w1"] + w["b1"])
    return jnp.mean(((h @ w["w2"] + w["b2"])[:, 0] - Y) ** 2)


def learning_rate(theta: jax.Array, t: jax.Array, horizon: int) -> jax.Array:
    """``exp(θ_0 − exp(θ_1) t / T)``: θ_0 the log initial rate, θ_1 the log decay rate."""
    return jnp.exp(theta[0] - jnp.exp(theta[1]) * t / horizon)


def make_system(horizon: int):
    """``init`` and ``unroll_step`` of the inner training run, for :func:`pes_rl.unroll.optimize`."""

    def init(key, theta):
        return W0, jnp.zeros((), jnp.int32)

    def unroll_step(state, theta, key):
        w, t = state
        grad = jax.grad(mse)(w)
        w = jax.tree_util.tree_map(lambda p, g: p - learning_rate(theta, t, horizon) * g, w, grad)
        loss = jnp.minimum(mse(w), LOSS_CAP)
        loss = jnp.where(jnp.isfinite(loss), loss, LOSS_CAP)
        return (w, t + 1), loss, False

    return init, unroll_step


def meta_loss(theta: jax.Array, horizon: int) -> jax.Array:
    """L(θ): the mean capped training loss over one whole T-step run."""
    init, unroll_step = make_system(horizon)

    def step(state, _):
        state, loss, _ = unroll_step(state, theta, None)
        return state, loss

    return jnp.mean(jax.lax.scan(step, init(None, theta), None, length=horizon)[1])


def main(argv: list[str] | None = None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--horizon", type=int, default=100, help="T, inner steps of one training run")
    parser.add_argument("--truncation-length", type=int, default=10, help="K of PES, TES and TBPTT")
    parser.add_argument("--num-pairs", type=int, default=32)
    parser.add_argument("--sigma", type=float, default=0.1)
    parser.add_argument("--meta-lr", type=float, default=0.02, help="Adam's step on θ, every method")
    parser.add_argument("--iterations", type=int, default=1500, help="updates of the truncated methods")
    parser.add_argument("--theta0", type=float, nargs=2, default=[-5.0, 1.5], help="start: log lr, log decay")
    parser.add_argument("--grid", type=int, default=60, help="grid points per axis of the surface")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--smoke", action="store_true", help="a small grid and few iterations (CI)")
    parser.add_argument("--out", default="runs/lr_schedule")
    args = parser.parse_args(argv)
    if args.smoke:
        args.grid, args.iterations, args.num_pairs = 12, 60, 8
    os.makedirs(args.out, exist_ok=True)
    T, K = args.horizon, args.truncation_length
    theta0 = jnp.asarray(args.theta0, jnp.float32)
    init, unroll_step = make_system(T)

    lr_axis = np.linspace(-7.0, 2.0, args.grid)
    decay_axis = np.linspace(-3.0, 3.0, args.grid)
    grid = jnp.asarray(np.stack(np.meshgrid(lr_axis, decay_axis), -1).reshape(-1, 2), jnp.float32)
    surface = np.asarray(jax.jit(jax.vmap(lambda th: meta_loss(th, T)))(grid)).reshape(args.grid, args.grid)
    best = np.unravel_index(np.argmin(surface), surface.shape)

    common = dict(horizon=T, num_pairs=args.num_pairs, sigma=args.sigma, seed=args.seed)
    trajectories = {}
    for name, estimator, k, iterations in (("PES", "pes", K, args.iterations), ("TES", "tes", K, args.iterations),
                                           ("ES", "es", T, max(1, args.iterations * K // T))):
        result = pu.optimize(init, unroll_step, theta0, truncation_length=k, iterations=iterations,
                             estimator=estimator, optimizer=optax.adam(args.meta_lr), **common)
        trajectories[name] = result.thetas
    # one deterministic system, online: TBPTT through the same API (K steps of backprop per update)
    trajectories[f"TBPTT K={K}"] = pu.optimize(init, unroll_step, theta0, horizon=T, truncation_length=K, num_pairs=1,
                                               stagger=False, iterations=args.iterations, estimator="tbptt",
                                               optimizer=optax.adam(args.meta_lr)).thetas

    exact = jax.jit(lambda th: meta_loss(th, T))
    summary = {
        "grid_best": {"theta": [float(lr_axis[best[1]]), float(decay_axis[best[0]])], "meta_loss": float(surface[best])},
        "start": {"theta": args.theta0, "meta_loss": float(exact(theta0))},
        "methods": {name: {"theta": th[-1].tolist(), "meta_loss": float(exact(jnp.asarray(th[-1]))), "updates": len(th)}
                    for name, th in trajectories.items()},
        "settings": vars(args),
    }
    with open(os.path.join(args.out, "trajectories.csv"), "w", newline="") as f:
        writer = csv.writer(f)
        writer.writerow(["method", "update", "log_lr", "log_decay"])
        for name, th in trajectories.items():
            writer.writerows([name, i + 1, float(a), float(b)] for i, (a, b) in enumerate(th))
    with open(os.path.join(args.out, "summary.json"), "w") as f:
        json.dump(summary, f, indent=2)
    _plot(lr_axis, decay_axis, surface, trajectories, os.path.join(args.out, "surface.png"))
    for name, m in summary["methods"].items():
        print(f"{name:>10}: θ = ({m['theta'][0]:+.2f}, {m['theta'][1]:+.2f}), meta-loss {m['meta_loss']:.4f}")
    print(f"{'grid best':>10}: θ = ({summary['grid_best']['theta'][0]:+.2f}, {summary['grid_best']['theta'][1]:+.2f}), "
          f"meta-loss {summary['grid_best']['meta_loss']:.4f}; start {summary['start']['meta_loss']:.4f}")
    return summary


def _plot(lr_axis, decay_axis, surface, trajectories, path: str) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(7, 5.5))
    mesh = ax.pcolormesh(lr_axis, decay_axis, np.log10(surface), shading="auto", cmap="viridis")
    fig.colorbar(mesh, ax=ax, label="log10 meta-loss (mean training loss over the run)")
    for (name, th), color in zip(trajectories.items(), ("white", "orange", "red", "cyan")):
        ax.plot(th[:, 0], th[:, 1], color=color, lw=1.5, label=name)
        ax.plot(th[-1, 0], th[-1, 1], "o", color=color)
    ax.set_xlabel("θ_0: log initial learning rate")
    ax.set_ylabel("θ_1: log decay rate")
    ax.set_xlim(lr_axis[0], lr_axis[-1])
    ax.set_ylim(decay_axis[0], decay_axis[-1])
    ax.legend(loc="lower left")
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


if __name__ == "__main__":
    main()
