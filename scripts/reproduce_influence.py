"""Influence balancing (PES paper, Fig. 3): PES and NRES find the long-unroll optimum; truncated methods don't.

The task (docs/estimator.md): s ∈ R^23, s_0 = 1, s_{t+1} = A s_t + θ b, loss ½(s[0] − 1)² after every
step, online (never reset). Methods, each one iteration per K-step window from the running state,
all through :mod:`pes_rl.unroll` (the task is an ``init``/``unroll_step`` pair): PES, truncated ES
(TES) and NRES with K = 1, and truncated backprop (TBPTT, ``jax.grad`` through the window) with
K = 1, 10, 100.

The exact optimum: with θ fixed the state converges to s* = (I − A)^{-1} b θ, so the long-run
loss is 0 at θ* = 1 / ((I − A)^{-1} b)[0] = 1 / (2 Σ b) = −1/6; the 500-step unroll from s_0
(the "true objective") has its optimum printed beside it.

    python scripts/reproduce_influence.py            # published settings (N = 1000, 3000 iterations)
    python scripts/reproduce_influence.py --smoke    # < 1 minute on a CPU
"""

from __future__ import annotations

import argparse
import csv
import json
import os

import jax
import jax.numpy as jnp
import numpy as np

import pes_rl.unroll as pu
from pes_rl.envs.influence import influence_matrices, unrolled_system

LONG_UNROLL = 500
ONLINE = 2**30  # the unroll's horizon: never reached, so the systems never restart


def long_unroll_loss(theta: jax.Array) -> jax.Array:
    """½(s_500[0] − 1)² from s_0 = 1 with θ fixed: the objective the methods should minimise."""
    a, b = influence_matrices()
    s = jax.lax.fori_loop(0, LONG_UNROLL, lambda _, s: a @ s + theta * b, jnp.ones(a.shape[0]))
    return 0.5 * (s[0] - 1.0) ** 2


def optima() -> tuple[float, float]:
    """(steady-state optimum −1/6, optimum of the 500-step unroll); the latter is quadratic in θ."""
    a, b = influence_matrices()
    steady = 1.0 / float(jnp.linalg.solve(jnp.eye(a.shape[0]) - a, b)[0])
    # s_500[0] = c + d θ  ->  minimiser θ = (1 − c) / d
    s0 = jax.lax.fori_loop(0, LONG_UNROLL, lambda _, s: a @ s, jnp.ones(a.shape[0]))[0]
    d = jax.lax.fori_loop(0, LONG_UNROLL, lambda _, s: a @ s + b, jnp.zeros(a.shape[0]))[0]
    return steady, float((1.0 - s0) / d)


def run_es_family(estimator: str, pairs: int, sigma: float, lr: float, iterations: int, theta0: float, seed: int):
    """θ per iteration and the per-iteration spread of the per-particle estimates (K = 1, online)."""
    result = pu.optimize(*unrolled_system(), jnp.array([theta0]), horizon=ONLINE, truncation_length=1, num_pairs=pairs,
                         sigma=sigma, lr=lr, iterations=iterations, estimator=estimator, stagger=False, seed=seed)
    return result.thetas[:, 0], result.metrics["grad_spread"]


def run_tbptt(k: int, lr: float, iterations: int, theta0: float):
    """Online truncated backprop: each iteration unrolls K steps from the running state and
    follows ``jax.grad`` of their loss through those K steps only. The API differentiates the
    window's sum; ``lr / K`` makes it the step on their mean, so one learning rate is meaningful
    across K (with K = 1 it equals the ES methods' per-window sum)."""
    result = pu.optimize(*unrolled_system(), jnp.array([theta0]), horizon=ONLINE, truncation_length=k, num_pairs=1,
                         lr=lr / k, iterations=iterations, estimator="tbptt", stagger=False)
    return result.thetas[:, 0]


def main(argv: list[str] | None = None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--smoke", action="store_true", help="fewer particles and iterations (CI)")
    parser.add_argument("--particles", type=int, default=1000, help="total particles (N pairs = half)")
    parser.add_argument("--iterations", type=int, default=3000)
    parser.add_argument("--sigma", type=float, default=0.1)
    parser.add_argument("--lr", type=float, default=1e-4)
    parser.add_argument("--theta0", type=float, default=0.5)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--out", default="runs/influence")
    args = parser.parse_args(argv)
    if args.smoke:
        args.particles, args.iterations = 200, 600
    os.makedirs(args.out, exist_ok=True)
    pairs = args.particles // 2

    curves, spreads = {}, {}
    for name in ("pes", "tes", "nres"):
        curves[name.upper()], spreads[name.upper()] = run_es_family(
            name, pairs, args.sigma, args.lr, args.iterations, args.theta0, args.seed
        )
    for k in (1, 10, 100):
        curves[f"TBPTT K={k}"] = run_tbptt(k, args.lr, args.iterations, args.theta0)
    loss = jax.jit(jax.vmap(long_unroll_loss))
    losses = {name: np.asarray(loss(jnp.asarray(th))) for name, th in curves.items()}
    steady, unroll_opt = optima()

    with open(os.path.join(args.out, "influence.csv"), "w", newline="") as f:
        writer = csv.writer(f)
        writer.writerow(["iteration", "method", "theta", "long_unroll_loss", "relative_spread"])
        for name, thetas in curves.items():
            for i, (th, lo) in enumerate(zip(thetas, losses[name])):
                writer.writerow([i + 1, name, float(th), float(lo), float(spreads[name][i]) if name in spreads else ""])
    summary = {
        "optimum_steady_state": steady,
        "optimum_500_step_unroll": unroll_opt,
        "final_theta": {name: float(th[-1]) for name, th in curves.items()},
        "final_long_unroll_loss": {name: float(lo[-1]) for name, lo in losses.items()},
        "settings": vars(args),
    }
    with open(os.path.join(args.out, "summary.json"), "w") as f:
        json.dump(summary, f, indent=2)
    _plot(curves, losses, spreads, steady, os.path.join(args.out, "influence.png"))
    print(f"optimum θ*: steady state {steady:.5f}, 500-step unroll {unroll_opt:.5f}")
    for name, th in curves.items():
        print(f"{name:>12}: final θ {th[-1]: .5f}   long-unroll loss {losses[name][-1]:.3e}")
    return summary


def _plot(curves, losses, spreads, optimum, path):
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, 3, figsize=(14, 4))
    for name, th in curves.items():
        axes[0].plot(np.arange(1, len(th) + 1), th, label=name)
        axes[1].semilogy(np.arange(1, len(th) + 1), np.maximum(losses[name], 1e-12), label=name)
    for name, sp in spreads.items():
        axes[2].semilogy(np.arange(1, len(sp) + 1), sp, label=name)
    axes[0].axhline(optimum, color="k", ls="--", lw=0.8, label="optimum")
    axes[0].set_ylabel("θ (clipped view; diverging runs leave it)")
    axes[0].set_ylim(-1.0, 4.0)
    axes[1].set_ylabel("loss of the 500-step unroll")
    axes[2].set_ylabel("tr Cov(g_p) / ||mean g||² (per-particle estimates)")
    for ax in axes:
        ax.set_xlabel("iteration")
        ax.legend(fontsize=7)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


if __name__ == "__main__":
    main()
