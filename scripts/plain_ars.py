"""ARS V2-t in plain Python on one gymnasium env: the anchor the task benchmark compares against.

Augmented Random Search (Mania, Guy & Recht 2018, Algorithm 2, V2-t): a linear policy on
observations normalised by the running mean and standard deviation of every state visited
(frozen within an iteration), N antithetic directions δ ~ N(0, I) explored with noise ν, the
b directions with the largest max(r⁺, r⁻) kept, and the step

    M ← M + α / (b σ_R) Σ_k (r⁺_k − r⁻_k) δ_k        (σ_R: std of the 2b kept returns)

with the alive bonus (``--shift``) subtracted from every reward while training only. No
pes_rl code is used, so this measures the algorithm, not our harness. Prints one JSON line per
evaluation (``--eval-episodes`` episodes of the unperturbed policy, true reward):

    python scripts/plain_ars.py --env Hopper-v5 --directions 8 --top 4 --step 0.01 --noise 0.025 --shift 1
    python scripts/plain_ars.py --env HalfCheetah-v5 --directions 32 --top 4 --step 0.02 --noise 0.03
"""

from __future__ import annotations

import argparse
import json
import time

import gymnasium as gym
import numpy as np


class RunningStat:
    """Mean and variance of every observation pushed (Welford); what ARS's MeanStdFilter keeps."""

    def __init__(self, size: int):
        self.n, self.mean, self.m2 = 0, np.zeros(size), np.zeros(size)

    def push(self, x: np.ndarray) -> None:
        self.n += 1
        delta = x - self.mean
        self.mean += delta / self.n
        self.m2 += delta * (x - self.mean)

    def std(self) -> np.ndarray:
        std = np.sqrt(self.m2 / (self.n - 1)) if self.n > 1 else np.ones_like(self.mean)
        return np.where(std < 1e-7, np.inf, std)  # ARS: a constant feature is ignored, not amplified


def rollout(env, M, mean, std, seed, stat=None, shift=0.0):
    """One episode of a = M (o − μ)/σ; returns (shifted return, true return, steps)."""
    obs, _ = env.reset(seed=seed)
    shifted = true = 0.0
    steps, done = 0, False
    while not done:
        if stat is not None:
            stat.push(obs)
        obs, reward, terminated, truncated, _ = env.step(M @ ((obs - mean) / std))
        true += reward
        shifted += reward - shift
        steps += 1
        done = terminated or truncated
    return shifted, true, steps


def main(argv: list[str] | None = None) -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--env", default="Hopper-v5")
    p.add_argument("--directions", type=int, default=8, help="N")
    p.add_argument("--top", type=int, default=4, help="b")
    p.add_argument("--step", type=float, default=0.01, help="α")
    p.add_argument("--noise", type=float, default=0.025, help="ν")
    p.add_argument("--shift", type=float, default=0.0, help="alive bonus subtracted while training")
    p.add_argument("--total-steps", type=int, default=1_000_000)
    p.add_argument("--eval-every-steps", type=int, default=20_000)
    p.add_argument("--eval-episodes", type=int, default=5)
    p.add_argument("--seed", type=int, default=0)
    args = p.parse_args(argv)
    env = gym.make(args.env)
    rng = np.random.default_rng(args.seed)
    n_obs, n_act = env.observation_space.shape[0], env.action_space.shape[0]
    M = np.zeros((n_act, n_obs))
    stat = RunningStat(n_obs)
    mean, std = np.zeros(n_obs), np.ones(n_obs)
    steps, next_eval, episode, t0 = 0, 0, 0, time.time()
    while steps < args.total_steps:
        if steps >= next_eval:
            returns = [rollout(env, M, mean, std, 10**6 + args.seed * 1000 + i)[1] for i in range(args.eval_episodes)]
            print(json.dumps({"env_steps": steps, "eval_return_mean": float(np.mean(returns)),
                              "wall_time": time.time() - t0}), flush=True)
            next_eval += args.eval_every_steps
        deltas = rng.standard_normal((args.directions, n_act, n_obs))
        r = np.zeros((args.directions, 2))
        for k, delta in enumerate(deltas):
            for j, sign in enumerate((1.0, -1.0)):
                r[k, j], _, n = rollout(env, M + sign * args.noise * delta, mean, std, episode, stat, args.shift)
                steps += n
                episode += 1
        keep = np.argsort(-r.max(axis=1))[:args.top]
        sigma_r = r[keep].std()
        M += args.step / (args.top * (sigma_r if sigma_r > 0 else 1.0)) * np.einsum(
            "k,kij->ij", r[keep, 0] - r[keep, 1], deltas[keep])
        mean, std = stat.mean.copy(), stat.std()  # the filter for the next iteration
    returns = [rollout(env, M, mean, std, 10**6 + args.seed * 1000 + i)[1] for i in range(args.eval_episodes)]
    print(json.dumps({"env_steps": steps, "eval_return_mean": float(np.mean(returns)), "wall_time": time.time() - t0}))


if __name__ == "__main__":
    main()
