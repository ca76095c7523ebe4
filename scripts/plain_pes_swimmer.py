"""A plain Python PES on Swimmer: the official settings, one gymnasium env per particle.

The baseline that ``scripts/swimmer_sample_efficiency.py --compare-plain`` times
pes_rl against: what a researcher writes in an afternoon (numpy, a Python loop
over particles and steps, no JAX, no pes_rl). Official settings (docs/estimator.md):
N = 10 pairs, K = 100, σ = 0.3, SGD lr = 0.1, gradient divided by the std of the
pair returns, linear policy ``a = clip(W o)`` with W = 0 at the start, T = 1000.
Pairs start at staggered offsets (b_i·K steps into their first episode, like
pes_rl's default) so the particles do not all truncate together.

    python scripts/plain_pes_swimmer.py --seed 0 --stop-at 350
"""

from __future__ import annotations

import argparse
import json
import time

import gymnasium as gym
import numpy as np


def evaluate(W: np.ndarray, episodes: int, seed: int) -> float:
    """Mean return of the deterministic policy over full Swimmer-v5 episodes."""
    env = gym.make("Swimmer-v5")
    total = 0.0
    for e in range(episodes):
        obs, _ = env.reset(seed=1_000_003 + seed * 1000 + e)
        done = False
        while not done:
            obs, reward, terminated, truncated, _ = env.step(np.clip(W @ obs, -1.0, 1.0))
            total += reward
            done = terminated or truncated
    return total / episodes


def train(seed: int, total_steps: int, eval_every_steps: int, eval_episodes: int, stop_at: float | None,
          num_pairs: int = 10, K: int = 100, sigma: float = 0.3, lr: float = 0.1, T: int = 1000) -> list[dict]:
    rng = np.random.default_rng(seed)
    probe = gym.make("Swimmer-v5")
    obs_size, act_size = probe.observation_space.shape[0], probe.action_space.shape[0]
    W = np.zeros((act_size, obs_size))
    P = 2 * num_pairs
    env_list = [gym.make("Swimmer-v5", max_episode_steps=T) for _ in range(P)]
    obs = np.stack([env.reset(seed=int(rng.integers(2**31)))[0] for env in env_list])
    offset = rng.integers(0, T // K, num_pairs) * K  # staggered starts, shared by a pair
    elapsed = np.concatenate([offset, offset])
    xi = np.zeros((num_pairs, act_size, obs_size))  # perturbations since each pair's episode began
    steps, rows, next_eval, t0 = 0, [], eval_every_steps, time.perf_counter()
    while steps < total_steps:
        eps = rng.standard_normal((num_pairs, act_size, obs_size)) * sigma
        xi += eps
        returns = np.zeros(P)
        for p, env in enumerate(env_list):
            Wp = W + (eps[p] if p < num_pairs else -eps[p - num_pairs])
            for _ in range(K):
                obs[p], reward, _, _, _ = env.step(np.clip(Wp @ obs[p], -1.0, 1.0))
                returns[p] += reward
                elapsed[p] += 1
            steps += K
        diff = returns[:num_pairs] - returns[num_pairs:]
        std = returns.std()
        grad = np.einsum("i,ijk->jk", diff, xi) / (2 * num_pairs * sigma * (std if std > 0 else sigma))
        W += lr * grad
        ended = elapsed[:num_pairs] >= T  # K divides T: a pair's episode ends at a window's end
        for i in np.flatnonzero(ended):
            seed_i = int(rng.integers(2**31))
            for p in (i, i + num_pairs):
                obs[p] = env_list[p].reset(seed=seed_i)[0]
                elapsed[p] = 0
            xi[i] = 0.0
        if steps >= next_eval:
            next_eval += eval_every_steps
            rows.append({"env_steps": steps, "wall_time": time.perf_counter() - t0,
                         "eval_return_mean": evaluate(W, eval_episodes, seed)})
            if stop_at is not None and rows[-1]["eval_return_mean"] >= stop_at:
                break
    return rows


def main(argv: list[str] | None = None) -> list[dict]:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--total-steps", type=int, default=300_000)
    parser.add_argument("--eval-every-steps", type=int, default=20_000)
    parser.add_argument("--eval-episodes", type=int, default=5)
    parser.add_argument("--stop-at", type=float, default=None)
    args = parser.parse_args(argv)
    rows = train(args.seed, args.total_steps, args.eval_every_steps, args.eval_episodes, args.stop_at)
    for row in rows:
        print(json.dumps(row), flush=True)
    return rows


if __name__ == "__main__":
    main()
