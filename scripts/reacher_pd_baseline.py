"""A hand-written reference controller for Reacher-v5: what a simple non-learned policy scores.

Jacobian-transpose PD control toward the target, ``a = clip(-k_p Jᵀ(q) d - k_d q̇, -1, 1)``, with
``d`` the fingertip-minus-target vector of the observation and ``J`` the two-link arm's Jacobian
(link lengths 0.1 and 0.11 from reacher.xml). It needs the joint angles nonlinearly, which a linear
policy cannot express. Prints the best mean return over a small gain grid (``--episodes`` per gain
pair, reset seeds 0..episodes-1) and, for scale, the return of doing nothing:

    python scripts/reacher_pd_baseline.py --episodes 40
"""

from __future__ import annotations

import argparse
import json

import gymnasium as gym
import numpy as np

LINKS = (0.1, 0.11)  # reacher.xml: body1 at 0.1 from the root, the fingertip 0.11 from body1


def pd_action(obs: np.ndarray, kp: float, kd: float) -> np.ndarray:
    """``clip(-k_p Jᵀ d - k_d q̇)`` from a Reacher-v5 observation (cos q, sin q, target, q̇, d)."""
    q = np.arctan2(obs[2:4], obs[0:2])
    qd, d = obs[6:8], obs[8:10]
    l1, l2 = LINKS
    s1, s12, c1, c12 = np.sin(q[0]), np.sin(q[0] + q[1]), np.cos(q[0]), np.cos(q[0] + q[1])
    jac = np.array([[-l1 * s1 - l2 * s12, -l2 * s12], [l1 * c1 + l2 * c12, l2 * c12]])
    return np.clip(-kp * jac.T @ d - kd * qd, -1.0, 1.0)


def mean_return(env: gym.Env, policy, episodes: int) -> tuple[float, float]:
    """Mean and standard error of the return over reset seeds ``0 .. episodes - 1``."""
    returns = []
    for seed in range(episodes):
        obs, _ = env.reset(seed=seed)
        total, done = 0.0, False
        while not done:
            obs, reward, terminated, truncated, _ = env.step(policy(obs))
            total += reward
            done = terminated or truncated
        returns.append(total)
    return float(np.mean(returns)), float(np.std(returns) / np.sqrt(episodes))


def main(argv: list[str] | None = None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--episodes", type=int, default=40)
    args = parser.parse_args(argv)
    env = gym.make("Reacher-v5")
    results = [(kp, kd, *mean_return(env, lambda o, kp=kp, kd=kd: pd_action(o, kp, kd), args.episodes))
               for kp in (5, 10, 20, 40, 80) for kd in (0.02, 0.05, 0.1, 0.2)]
    kp, kd, mean, se = max(results, key=lambda r: r[2])
    zero, zero_se = mean_return(env, lambda o: np.zeros(2), args.episodes)
    out = {"best": {"kp": kp, "kd": kd, "return": mean, "se": se}, "zero_action": {"return": zero, "se": zero_se},
           "episodes": args.episodes}
    print(json.dumps(out))
    return out


if __name__ == "__main__":
    main()
