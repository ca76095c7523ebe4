"""Headless rollout videos: MuJoCo's renderer (EGL) + imageio-ffmpeg, no moviepy.

Frames come at the environment's real rate (one per env step, ``fps = 1/dt``);
each episode contributes its initial frame and one per step.
"""

from __future__ import annotations

import os

os.environ.setdefault("MUJOCO_GL", "egl")

import imageio  # noqa: E402
import jax  # noqa: E402
import jax.numpy as jnp  # noqa: E402
import mujoco  # noqa: E402
import numpy as np  # noqa: E402

import envs  # noqa: E402
from agents.normalization import NormalizerState, normalize  # noqa: E402
from pes_rl.config import Config  # noqa: E402


def _camera(model: mujoco.MjModel) -> mujoco.MjvCamera | str:
    """The model's ``track`` camera if it has one, else a camera following the first body."""
    if mujoco.mj_name2id(model, mujoco.mjtObj.mjOBJ_CAMERA, "track") >= 0:
        return "track"
    camera = mujoco.MjvCamera()
    camera.type = mujoco.mjtCamera.mjCAMERA_TRACKING
    camera.trackbodyid = 1
    camera.distance = 4.0 * max(float(model.stat.extent), 0.5)
    camera.elevation = -20.0
    return camera


class _FrameRenderer:
    def __init__(self, model: mujoco.MjModel, width: int, height: int):
        model.vis.global_.offwidth = max(model.vis.global_.offwidth, width)
        model.vis.global_.offheight = max(model.vis.global_.offheight, height)
        if model.nlight == 0:  # some Brax models carry no light: brighten the headlight instead
            model.vis.headlight.ambient[:] = 0.5
            model.vis.headlight.diffuse[:] = 0.6
        self.model = model
        self.renderer = mujoco.Renderer(model, height=height, width=width)
        self.camera = _camera(model)

    def __call__(self, data: mujoco.MjData) -> np.ndarray:
        self.renderer.update_scene(data, camera=self.camera)
        return self.renderer.render().copy()

    def close(self) -> None:
        self.renderer.close()


def _gymnasium_frames(config: Config, act, env_name: str, episodes: int, seed: int, width: int, height: int):
    import gymnasium as gym

    env = gym.make(envs.gymnasium_id(env_name), max_episode_steps=config.horizon)
    sim = env.unwrapped
    if not hasattr(sim, "model"):
        raise ValueError(f"env {env_name!r} is not a MuJoCo env; pes-rl record renders MuJoCo envs only")
    render = _FrameRenderer(sim.model, width, height)
    frames, returns = [], []
    try:
        for episode in range(episodes):
            obs, _ = env.reset(seed=seed + episode)
            frames.append(render(sim.data))
            total, done = 0.0, False
            while not done:
                obs, reward, terminated, truncated, _ = env.step(act(obs))
                frames.append(render(sim.data))
                total += float(reward)
                done = terminated or truncated
            returns.append(total)
    finally:
        render.close()
        env.close()
    return frames, returns, float(sim.dt)


def _mjx_frames(config: Config, apply_flat, theta, normalizer: NormalizerState, env_name: str, episodes: int,
                seed: int, width: int, height: int):
    env = envs.make(env_name, "mjx", episode_length=config.horizon)

    @jax.jit
    def rollout(key):
        def step(carry, _):
            state, running = carry
            action = apply_flat(theta, normalize(normalizer, state.obs, config.normalize_obs))
            state = env.step(state, action)
            out = (_qpos(state.physics), _qvel(state.physics), state.reward * running, running)
            return (state, jnp.logical_and(running, ~state.done)), out

        state = env.reset(key)
        first = (_qpos(state.physics), _qvel(state.physics))
        _, steps = jax.lax.scan(step, (state, jnp.ones((), bool)), None, length=env.episode_length)
        return first, steps

    render = _FrameRenderer(env.mj_model, width, height)
    data = mujoco.MjData(env.mj_model)
    frames, returns = [], []
    try:
        for episode in range(episodes):
            (q0, v0), (qpos, qvel, rewards, running) = jax.device_get(rollout(jax.random.PRNGKey(seed + episode)))
            for q, v in [(q0, v0)] + [(qpos[t], qvel[t]) for t in range(int(running.sum()))]:
                data.qpos[:], data.qvel[:] = q, v
                mujoco.mj_forward(env.mj_model, data)
                frames.append(render(data))
            returns.append(float(rewards.sum()))
    finally:
        render.close()
    return frames, returns, float(env.dt)


def _qpos(physics):
    return physics.qpos if hasattr(physics, "qpos") else physics.pipeline_state.qpos


def _qvel(physics):
    return physics.qvel if hasattr(physics, "qvel") else physics.pipeline_state.qvel


def write_mp4(path: str, frames: list[np.ndarray], fps: float) -> None:
    """H.264 mp4 through imageio-ffmpeg's bundled ffmpeg."""
    os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
    with imageio.get_writer(path, fps=fps, codec="libx264", quality=6, macro_block_size=8,
                            ffmpeg_log_level="error") as writer:
        for frame in frames:
            writer.append_data(frame)


def record_policy(config: Config, theta, normalizer: NormalizerState, out: str, *, env_name: str | None = None,
                  backend: str | None = None, episodes: int = 1, seed: int = 0, width: int = 480,
                  height: int = 360) -> dict:
    """Render the deterministic policy θ for ``episodes`` episodes into ``out`` (mp4)."""
    from pes_rl.loading import env_for_policy, policy_for_env
    from pes_rl.policy_io import make_batched_act, policy_callable

    env_name = env_name or config.env
    backend = envs.resolve_backend(backend or config.backend)
    policy, unravel = policy_for_env(config, theta, env_for_policy(env_name, backend, config.horizon))
    if backend == "mjx":
        apply_flat = lambda th, o: policy.apply(unravel(th), o)  # noqa: E731
        frames, returns, dt = _mjx_frames(config, apply_flat, theta, normalizer, env_name, episodes, seed, width, height)
    else:
        act = policy_callable(make_batched_act(policy, unravel, config.normalize_obs), theta, normalizer)
        frames, returns, dt = _gymnasium_frames(config, act, env_name, episodes, seed, width, height)
    fps = 1.0 / dt
    write_mp4(out, frames, fps)
    return {"path": out, "frames": len(frames), "fps": fps, "returns": returns, "env": env_name, "backend": backend}


def record(run_dir: str, out: str | None = None, **kwargs) -> dict:
    """Render a trained run's policy; default output ``videos/<run name>.mp4``."""
    from pes_rl.loading import load_run

    config, theta, normalizer = load_run(run_dir)
    if out is None:
        out = os.path.join("videos", os.path.basename(os.path.normpath(run_dir)) + ".mp4")
    return record_policy(config, theta, normalizer, out, **kwargs)
