"""Seconds per frame of ``pes-rl record``'s rendering: the fast default vs ``--full-quality``, in one run.

    python scripts/render_speed.py                      # 100 frames of Swimmer at 480 x 360, 3 rounds
    python scripts/render_speed.py --env hopper --frames 50 --width 320 --height 240

Two measurements per quality, alternated round by round so that both see the same machine load:

* ``render``: the renderer alone (``update_scene`` + ``render`` into the reused frame) over the
  states of a ``--frames``-step rollout, after 3 warm-up frames; a new renderer each round.
* ``record``: :func:`pes_rl.video.record_policy` end to end (env steps, policy, rendering,
  H.264 encoding, the mp4 written) for one episode of ``--frames - 1`` steps, a fixed random
  linear policy.

Prints a table and one JSON object (the median s/frame of each, and the speed-ups).
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import tempfile
import time

os.environ.setdefault("MUJOCO_GL", "egl")

import gymnasium as gym  # noqa: E402
import jax  # noqa: E402
import numpy as np  # noqa: E402

from pes_rl import envs  # noqa: E402
from pes_rl.agents.normalization import init_normalizer  # noqa: E402
from pes_rl.config import make_config  # noqa: E402
from pes_rl.policy_io import build_policy  # noqa: E402
from pes_rl.video import _FrameRenderer, record_policy  # noqa: E402

QUALITIES = {"fast (default)": False, "full (--full-quality)": True}


def rollout_states(env_name: str, frames: int, seed: int = 0) -> tuple[gym.Env, list[tuple[np.ndarray, np.ndarray]]]:
    env = gym.make(envs.gymnasium_id(env_name))
    env.reset(seed=seed)
    env.action_space.seed(seed)
    sim = env.unwrapped
    states = []
    for _ in range(frames):
        states.append((sim.data.qpos.copy(), sim.data.qvel.copy()))
        env.step(env.action_space.sample())
    return env, states


def time_render(env: gym.Env, states, width: int, height: int, full_quality: bool) -> float:
    import mujoco

    sim = env.unwrapped
    render = _FrameRenderer(sim.model, width, height, full_quality)
    try:
        for q, v in states[:3]:  # warm-up: the GL context's first frames
            sim.data.qpos[:], sim.data.qvel[:] = q, v
            mujoco.mj_forward(sim.model, sim.data)
            render(sim.data)
        elapsed = 0.0
        for q, v in states:
            sim.data.qpos[:], sim.data.qvel[:] = q, v
            mujoco.mj_forward(sim.model, sim.data)
            t0 = time.perf_counter()
            render(sim.data)
            elapsed += time.perf_counter() - t0
    finally:
        render.close()
    return elapsed / len(states)


def time_record(env_name: str, frames: int, width: int, height: int, full_quality: bool, out_dir: str) -> float:
    config = make_config(env=env_name, backend="gymnasium", horizon=frames - 1, truncation_length=frames - 1)
    probe = envs.make(env_name, "gymnasium", num_envs=1, episode_length=config.horizon)
    _, flat0, _ = build_policy(config, probe.observation_size, probe.action_size, probe.action_low, probe.action_high)
    probe.close()
    theta = np.asarray(flat0) + 0.5 * np.asarray(jax.random.normal(jax.random.PRNGKey(1), flat0.shape))
    t0 = time.perf_counter()
    info = record_policy(config, theta, init_normalizer(probe.observation_size), os.path.join(out_dir, "v.mp4"),
                         backend="gymnasium", width=width, height=height, full_quality=full_quality)
    return (time.perf_counter() - t0) / info["frames"]


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--env", default="swimmer")
    parser.add_argument("--frames", type=int, default=100)
    parser.add_argument("--width", type=int, default=480)
    parser.add_argument("--height", type=int, default=360)
    parser.add_argument("--rounds", type=int, default=3, help="alternations of the two qualities")
    args = parser.parse_args(argv)
    env, states = rollout_states(args.env, args.frames)
    times: dict[str, dict[str, list[float]]] = {q: {"render": [], "record": []} for q in QUALITIES}
    with tempfile.TemporaryDirectory() as out_dir:
        time_record(args.env, args.frames, args.width, args.height, False, out_dir)  # compile the policy, start ffmpeg once
        for _ in range(args.rounds):
            for name, full in QUALITIES.items():
                times[name]["render"].append(time_render(env, states, args.width, args.height, full))
                times[name]["record"].append(time_record(args.env, args.frames, args.width, args.height, full, out_dir))
    env.close()
    median = {q: {k: statistics.median(v) for k, v in t.items()} for q, t in times.items()}
    fast, full = (median[q] for q in QUALITIES)
    print(f"{args.env}, {args.frames} frames at {args.width} x {args.height}, median of {args.rounds} rounds "
          f"(s/frame; every round in brackets)")
    for name, t in times.items():
        print(f"  {name:22s} render {median[name]['render']:.4f} {[round(x, 4) for x in t['render']]}   "
              f"record {median[name]['record']:.4f} {[round(x, 4) for x in t['record']]}")
    speedup = {k: full[k] / fast[k] for k in ("render", "record")}
    print(f"  speed-up of the default: render {speedup['render']:.1f}x, record {speedup['record']:.1f}x")
    print(json.dumps({"env": args.env, "frames": args.frames, "width": args.width, "height": args.height,
                      "rounds": args.rounds, "s_per_frame": median, "speedup": speedup, "all": times}))


if __name__ == "__main__":
    main()
