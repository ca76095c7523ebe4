"""Particles on a host-side batch of environments (the gymnasium CPU fallback).

The same semantics as :mod:`pes_rl.agents.jax_unroll` — persistent states, immediate
resets with a seed shared by both members of a pair — driven from numpy. The
estimator math is not repeated here: the caller feeds the window's rewards and
dones to the same :class:`pes_rl.agents.pes.PES` ``ask``/``tell``.
"""

from __future__ import annotations

from typing import Callable

import jax
import numpy as np

from pes_rl.agents.estimators import shift_rewards
from pes_rl.agents.normalization import NormalizerState, normalize
from pes_rl.envs.base import BatchedEnv


def episode_seed(pair_seed: int, episode: int) -> int:
    """The gymnasium reset seed of a pair's ``episode``-th episode (same for both members)."""
    return int(np.random.SeedSequence([int(pair_seed), int(episode)]).generate_state(1)[0])


class HostParticles:
    """``2N`` persistent particles, one per member of ``env`` (``env.num_envs == 2N``).

    ``reward_shift``: subtracted from every simulated step's reward in the window's
    ``rewards`` (what the estimator sees; :func:`pes_rl.agents.estimators.shift_rewards`), never
    from idle steps nor from the episode returns reported in ``finished_return_sum``.
    """

    def __init__(
        self,
        env: BatchedEnv,
        apply_flat: Callable[[jax.Array, jax.Array], jax.Array],
        normalize_obs: bool,
        pair_seeds: np.ndarray,
        reward_shift: float = 0.0,
    ):
        self.env = env
        self.reward_shift = float(reward_shift)
        self.num_particles = env.num_envs
        pair_seeds = np.asarray(pair_seeds, dtype=np.int64)
        if 2 * len(pair_seeds) != self.num_particles:
            raise ValueError("env.num_envs must be twice the number of pairs")
        self.pair_seed = np.concatenate([pair_seeds, pair_seeds])
        self.episode = np.zeros(self.num_particles, np.int64)
        self.episode_return = np.zeros(self.num_particles)

        def act(theta, normalizer, obs):
            return apply_flat(theta, normalize(normalizer, obs, normalize_obs))

        self._act = jax.jit(jax.vmap(act, in_axes=(0, None, 0)))
        self.obs = env.reset(self._seeds(np.ones(self.num_particles, bool)))

    def _seeds(self, mask: np.ndarray) -> np.ndarray:
        return np.array(
            [episode_seed(s, e) if m else 0 for s, e, m in zip(self.pair_seed, self.episode, mask)], dtype=np.int64
        )

    def window(
        self,
        thetas: jax.Array,
        normalizer: NormalizerState,
        num_steps: int,
        active: np.ndarray | None = None,
        reset_at_window_end: bool = False,
    ) -> dict:
        """Run ``num_steps`` steps, particle p with ``thetas[p]``; only ``active`` particles move.

        An episode that ends inside the window is reset at once (``reset_at_window_end``
        False: later steps belong to a new episode) or the particle idles until the
        window's end and resets then (True: it is reported done at the last step).
        Returns numpy ``rewards``/``dones`` ``(P, K)``, the number of env steps taken and
        episode/observation sums, shaped like :func:`pes_rl.agents.jax_unroll.make_window`'s.
        """
        P = self.num_particles
        rewards = np.zeros((P, num_steps))
        dones = np.zeros((P, num_steps), bool)
        finished = np.zeros(P)
        finished_count = np.zeros(P)
        obs_sum = np.zeros((P, self.env.observation_size))
        obs_sq_sum = np.zeros_like(obs_sum)
        moving = np.ones(P, bool) if active is None else np.asarray(active, bool)
        waiting = np.zeros(P, bool)
        steps = 0
        for t in range(num_steps):
            stepping = moving & ~waiting
            # every member steps on most steps: skip the masking then (the same numbers, fewer
            # numpy calls on a path that costs Python time per env step)
            everyone = bool(stepping.all())
            actions = np.asarray(self._act(thetas, normalizer, self.obs.astype(np.float32)))
            if everyone:
                obs_sum += self.obs
                obs_sq_sum += np.square(self.obs)
            else:
                obs_sum += self.obs * stepping[:, None]
                obs_sq_sum += np.square(self.obs) * stepping[:, None]
            obs, reward, terminated, truncated = self.env.step(actions, None if everyone else stepping)
            steps += P if everyone else int(stepping.sum())
            done = terminated | truncated if everyone else (terminated | truncated) & stepping
            rewards[:, t] = shift_rewards(reward, stepping, self.reward_shift)
            self.episode_return += reward if everyone else reward * stepping
            if done.any():
                finished += np.where(done, self.episode_return, 0.0)
                finished_count += done
                self.episode_return[done] = 0.0
            self.obs = obs
            if reset_at_window_end:
                waiting |= done
            else:
                dones[:, t] = done
                self._reset(done)
        if reset_at_window_end:
            dones[:, -1] = waiting
            self._reset(waiting)
        return {
            "rewards": rewards.astype(np.float32),
            "dones": dones,
            "steps": steps,
            "finished_return_sum": finished,
            "finished_count": finished_count,
            "obs_sum": obs_sum.astype(np.float32),
            "obs_sq_sum": obs_sq_sum.astype(np.float32),
        }

    def _reset(self, mask: np.ndarray) -> None:
        if mask.any():
            self.episode[mask] += 1
            self.obs = self.env.reset(self._seeds(mask), mask=mask)

    def burn_in(
        self, theta: jax.Array, normalizer: NormalizerState, num_steps: int, windows: np.ndarray,
        reset_at_window_end: bool = False,
    ) -> int:
        """Stagger pairs: pair i runs ``windows[i]`` windows with the unperturbed θ; returns
        the env steps taken. Both members would run identically, so where the env's state
        can be copied only the + member runs and the − member becomes its copy.
        """
        half = self.num_particles // 2
        thetas = jax.numpy.broadcast_to(theta, (self.num_particles, theta.shape[0]))
        windows = np.asarray(windows)
        share = bool(getattr(self.env, "supports_state", False))
        runs = np.arange(self.num_particles) < half if share else np.ones(self.num_particles, bool)
        steps = 0
        for w in range(int(windows.max(initial=0))):
            active = (w < windows) & runs
            steps += self.window(thetas, normalizer, num_steps, active=active, reset_at_window_end=reset_at_window_end)["steps"]
        if share:
            plus, minus = np.arange(half), np.arange(half, self.num_particles)
            self.obs = self.env.copy_members(plus, minus)
            self.episode[minus] = self.episode[plus]
            self.episode_return[minus] = self.episode_return[plus]
        return steps
