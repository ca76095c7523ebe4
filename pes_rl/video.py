"""Headless rollout videos: MuJoCo's renderer (EGL) + imageio-ffmpeg, no moviepy.

Frames come at the environment's real rate (one per env step, ``fps = 1/dt``);
each episode contributes its initial frame and one per step.

Rendering cost. Without a GPU, EGL renders in software (Mesa llvmpipe), where two of the
model's visual settings dominate: the shadow map (MuJoCo's default 4096 x 4096, which every model
here keeps; drawn every frame) and 4x multisampling. By default frames are rendered with a shadow
map sized to the frame (:func:`shadow_map_size`: 1024 at 480 x 360) and no multisampling;
shadows, reflections, skybox and haze stay on. ``full_quality=True`` (``pes-rl record
--full-quality``) renders with the model's own settings, as every video was rendered before
this default. Measured with ``scripts/render_speed.py`` (100 frames of Swimmer at 480 x 360,
median of 3 alternating rounds; a 2-core AMD EPYC VM, Mesa 22.3 llvmpipe, other jobs loading it):
rendering alone 0.087 s a frame at full quality, 0.025 s by default (3.5x); ``pes-rl record``
end to end (env steps, policy, rendering, H.264 encoding) 0.102 and 0.036 s a frame (2.8x).
"""

from __future__ import annotations

import functools
import os

from pes_rl import envs  # first: it sets MUJOCO_GL=egl where libEGL exists, before mujoco is imported

import imageio  # noqa: E402
import jax  # noqa: E402
import jax.numpy as jnp  # noqa: E402
import mujoco  # noqa: E402
import numpy as np  # noqa: E402

from pes_rl.agents.normalization import NormalizerState, normalize  # noqa: E402
from pes_rl.config import Config, ConfigError  # noqa: E402
from pes_rl.loading import env_for_policy, load_run, policy_for_env  # noqa: E402
from pes_rl.policy_io import apply_flat, make_batched_act, policy_callable  # noqa: E402


def check_renderable(env_name: str, backend: str) -> None:
    """Refuse (one line) an env that cannot be rendered, before any training or rendering."""
    if backend == "mjx":
        return  # every mjx task is a MuJoCo model
    import gymnasium as gym

    from pes_rl.envs.gymnasium_backend import checked_factory

    env_id = envs.gymnasium_id(env_name)
    env = checked_factory(env_id, lambda: gym.make(env_id))()
    try:
        if not hasattr(env.unwrapped, "model"):
            raise ConfigError(f"env {env_name!r} is not a MuJoCo env; videos (capture_video, pes-rl record) render "
                              "MuJoCo envs only")
    finally:
        env.close()


def check_writable(out: str) -> None:
    """Refuse (one line) an mp4 path that cannot be written, before anything is rendered."""
    parent = os.path.dirname(os.path.abspath(out))
    try:
        os.makedirs(parent, exist_ok=True)
    except OSError as e:
        raise ConfigError(f"out {out!r} cannot be written: its directory cannot be created ({e.strerror})") from None
    if os.path.isdir(out):
        raise ConfigError(f"out {out!r} is a directory; give a file path ending in .mp4")
    if not os.access(parent, os.W_OK | os.X_OK) or (os.path.exists(out) and not os.access(out, os.W_OK)):
        raise ConfigError(f"out {out!r} cannot be written (permission denied)")


def _camera(model: mujoco.MjModel) -> mujoco.MjvCamera:
    """The model's ``track`` camera if it has one, else a camera following the first body
    (made once: naming the camera would look it up and make an MjvCamera every frame)."""
    camera = mujoco.MjvCamera()
    track = mujoco.mj_name2id(model, mujoco.mjtObj.mjOBJ_CAMERA, "track")
    if track >= 0:
        camera.type = mujoco.mjtCamera.mjCAMERA_FIXED
        camera.fixedcamid = track
        return camera
    camera.type = mujoco.mjtCamera.mjCAMERA_TRACKING
    camera.trackbodyid = 1
    camera.distance = 4.0 * max(float(model.stat.extent), 0.5)
    camera.elevation = -20.0
    return camera


def shadow_map_size(width: int, height: int, model_size: int) -> int:
    """The fast default's shadow map side: the smallest power of two >= 2 x the frame's longer
    side, never above the model's own ``model_size``."""
    return min(model_size, 1 << (2 * max(width, height) - 1).bit_length())


class _FrameRenderer:
    """Renders ``data`` into one reused frame buffer (``__call__`` returns the same array each
    time: consume it before the next call, as the mp4 writer does).

    ``full_quality=False``: a shadow map sized to the frame (:func:`shadow_map_size`) and no
    multisampling (see the module docstring for the cost); ``True``: the model's own settings."""

    def __init__(self, model: mujoco.MjModel, width: int, height: int, full_quality: bool = False):
        model.vis.global_.offwidth = max(model.vis.global_.offwidth, width)
        model.vis.global_.offheight = max(model.vis.global_.offheight, height)
        if model.nlight == 0:  # some Brax models carry no light: brighten the headlight instead
            model.vis.headlight.ambient[:] = 0.5
            model.vis.headlight.diffuse[:] = 0.6
        self.model = model
        quality = model.vis.quality
        saved = int(quality.shadowsize), int(quality.offsamples)
        if not full_quality:  # read when the GL context is made, then restored
            quality.shadowsize = shadow_map_size(width, height, saved[0])
            quality.offsamples = 0
        try:
            self.renderer = mujoco.Renderer(model, height=height, width=width)
        finally:
            quality.shadowsize, quality.offsamples = saved
        self.camera = _camera(model)
        self.frame = np.empty((height, width, 3), np.uint8)

    def __call__(self, data: mujoco.MjData) -> np.ndarray:
        self.renderer.update_scene(data, camera=self.camera)
        return self.renderer.render(out=self.frame)

    def close(self) -> None:
        self.renderer.close()


class _Output:
    """Where frames go: the mp4 writer, and a progress bar over the frames (stderr; total
    ``episodes x (T + 1)``, lowered when an episode ends before its time limit)."""

    def __init__(self, writer, episodes: int, horizon: int, progress: bool):
        from pes_rl.logger import make_progress_bar

        self.writer, self.episodes, self.per_episode = writer, episodes, horizon + 1
        self.frames, self.episode_frames, self.returns = 0, 0, []
        self.bar = make_progress_bar(episodes * self.per_episode, unit="frame", desc="record", enabled=progress,
                                     unit_scale=False)
        self.bar.set_postfix(episode=f"1/{episodes}", refresh=False)

    def frame(self, image: np.ndarray) -> None:
        self.writer.append_data(image)
        self.frames += 1
        self.episode_frames += 1
        self.bar.update()

    def episode_done(self, episode_return: float) -> None:
        self.returns.append(episode_return)
        if self.episode_frames < self.per_episode:  # ended early (a fall): fewer frames to come
            self.bar.total -= self.per_episode - self.episode_frames
        self.episode_frames = 0
        if len(self.returns) < self.episodes:
            self.bar.set_postfix(episode=f"{len(self.returns) + 1}/{self.episodes}", refresh=False)
        self.bar.refresh()

    def close(self) -> None:
        self.bar.close()


def _gymnasium_frames(config: Config, act, env_name: str, episodes: int, seed: int, width: int, height: int,
                      out: _Output, full_quality: bool = False) -> None:
    import gymnasium as gym

    env = gym.make(envs.gymnasium_id(env_name), max_episode_steps=config.horizon)
    sim = env.unwrapped
    render = _FrameRenderer(sim.model, width, height, full_quality)
    try:
        for episode in range(episodes):
            obs, _ = env.reset(seed=seed + episode)
            out.frame(render(sim.data))
            total, done = 0.0, False
            while not done:
                obs, reward, terminated, truncated, _ = env.step(act(obs))
                out.frame(render(sim.data))
                total += float(reward)
                done = terminated or truncated
            out.episode_done(total)
    finally:
        render.close()
        env.close()


def _mjx_frames(config: Config, apply_flat, theta, normalizer: NormalizerState, env_name: str, episodes: int,
                seed: int, width: int, height: int, out: _Output, full_quality: bool = False) -> None:
    env = envs.make(env_name, "mjx", episode_length=config.horizon, impl=config.mjx_impl)

    @functools.partial(jax.jit, compiler_options=envs.compiler_options(env))
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

    render = _FrameRenderer(env.mj_model, width, height, full_quality)
    data = mujoco.MjData(env.mj_model)
    try:
        for episode in range(episodes):
            (q0, v0), (qpos, qvel, rewards, running) = jax.device_get(rollout(jax.random.PRNGKey(seed + episode)))
            for q, v in [(q0, v0)] + [(qpos[t], qvel[t]) for t in range(int(running.sum()))]:
                data.qpos[:], data.qvel[:] = q, v
                mujoco.mj_forward(env.mj_model, data)
                out.frame(render(data))
            out.episode_done(float(rewards.sum()))
    finally:
        render.close()


def _mjx_data(physics):
    """The ``mjx.Data`` inside an mjx env's physics: itself (the gymnasium ports), a Brax state's
    ``pipeline_state`` or a Playground state's ``data``."""
    if hasattr(physics, "qpos"):
        return physics
    return physics.pipeline_state if hasattr(physics, "pipeline_state") else physics.data


def _qpos(physics):
    return _mjx_data(physics).qpos


def _qvel(physics):
    return _mjx_data(physics).qvel


def mp4_writer(path: str, fps: float):
    """An H.264 mp4 writer through imageio-ffmpeg's bundled ffmpeg (``append_data(frame)``, ``close()``)."""
    os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
    return imageio.get_writer(path, fps=fps, codec="libx264", quality=6, macro_block_size=8, ffmpeg_log_level="error")


def write_mp4(path: str, frames: list[np.ndarray], fps: float) -> None:
    with mp4_writer(path, fps) as writer:
        for frame in frames:
            writer.append_data(frame)


def record_policy(config: Config, theta, normalizer: NormalizerState, out: str, *, env_name: str | None = None,
                  backend: str | None = None, episodes: int = 1, seed: int = 0, width: int = 480,
                  height: int = 360, full_quality: bool = False, progress: bool = False) -> dict:
    """Render the deterministic policy θ for ``episodes`` episodes into ``out`` (mp4).

    Frames go to the encoder as they are rendered (memory stays flat in the episode count);
    the mp4 is written beside ``out`` and renamed over it once complete, so a failure never
    leaves a half-written video at ``out``. ``full_quality``: the model's own shadow map and
    multisampling instead of the fast default (module docstring); ``progress``: a progress bar
    over the frames on stderr.
    """
    env_name = env_name or config.env
    backend = envs.resolve_backend(backend or config.backend, env_name)
    check_writable(out)
    check_renderable(env_name, backend)
    env = env_for_policy(env_name, backend, config.horizon, config.mjx_impl)
    policy, unravel = policy_for_env(config, theta, env)
    partial = os.path.join(os.path.dirname(os.path.abspath(out)), "." + os.path.basename(out) + ".partial.mp4")
    writer = mp4_writer(partial, 1.0 / env.dt)
    output = _Output(writer, episodes, config.horizon, progress)
    try:
        if backend == "mjx":
            _mjx_frames(config, apply_flat(policy, unravel), theta, normalizer, env_name, episodes, seed, width, height,
                        output, full_quality)
        else:
            act = policy_callable(make_batched_act(policy, unravel, config.normalize_obs), theta, normalizer)
            _gymnasium_frames(config, act, env_name, episodes, seed, width, height, output, full_quality)
        output.close()
        writer.close()
        os.replace(partial, out)
    except BaseException:
        output.close()
        writer.close()
        if os.path.exists(partial):
            os.unlink(partial)
        raise
    return {"path": out, "frames": output.frames, "fps": 1.0 / env.dt, "returns": output.returns, "env": env_name,
            "backend": backend}


def default_video_path(run_dir: str) -> str:
    return os.path.join("videos", os.path.basename(os.path.normpath(run_dir)) + ".mp4")


def record(run_dir: str, out: str | None = None, **kwargs) -> dict:
    """Render a trained run's policy; default output ``videos/<run name>.mp4``."""
    out = default_video_path(run_dir) if out is None else out
    check_writable(out)  # before the checkpoint is even read
    config, theta, normalizer = load_run(run_dir)
    return record_policy(config, theta, normalizer, out, **kwargs)
