"""The ``pes-rl`` command, exercised as a real subprocess (and, where a JAX start-up per call
would cost more than the check, in this process through ``cli.main``)."""

import csv
import json
import os
import subprocess
import sys

import pytest

# Once JAX runs in this process, JAX warns at every fork; subprocess.run forks only to exec at once
# (no JAX code runs in the child), so the warning says nothing here.
pytestmark = pytest.mark.filterwarnings("ignore:os.fork\\(\\) was called:RuntimeWarning")

TINY = ["--num-pairs", "2", "-K", "50", "-T", "200", "--eval-episodes", "2", "--no-progress"]


def pes_rl(*args, timeout=600):
    return subprocess.run([sys.executable, "-m", "pes_rl.cli", *args], capture_output=True, text=True, timeout=timeout,
                          env=dict(os.environ, PYTHONWARNINGS="ignore"))


def test_help():
    for args in ([], ["--help"], ["train", "--help"], ["eval", "--help"]):
        out = pes_rl(*args)
        assert out.returncode == 0, out.stderr
        assert "pes-rl" in out.stdout or "usage" in out.stdout


def test_version_is_the_installed_distributions():
    import tomllib
    from importlib.metadata import version
    from pathlib import Path

    script = Path(sys.executable).with_name("pes-rl")  # the console script pip installed beside python
    out = subprocess.run([str(script), "--version"], capture_output=True, text=True, timeout=300)
    assert out.returncode == 0, out.stderr
    assert out.stdout == f"pes-rl {version('pes_rl')}\n"
    pyproject = tomllib.loads((Path(__file__).resolve().parents[1] / "pyproject.toml").read_text())
    assert version("pes_rl") == pyproject["project"]["version"]


def test_python_dash_m_pes_rl_is_the_command():
    """``python -m pes_rl`` (where the console script is not on PATH) is ``pes-rl``."""
    from importlib.metadata import version

    out = subprocess.run([sys.executable, "-m", "pes_rl", "--version"], capture_output=True, text=True, timeout=300)
    assert out.returncode == 0, out.stderr
    assert out.stdout == f"pes-rl {version('pes_rl')}\n"


def test_env_help_lists_every_env_name(capsys):
    """``--env`` help names every short name (from pes_rl.envs.ENV_NAMES, the list the config accepts)
    and says that any registered gymnasium id works."""
    from pes_rl import envs
    from pes_rl import cli

    for command in ("train", "eval", "record"):
        with pytest.raises(SystemExit) as exit_:
            cli.main([command, "--help"])
        assert exit_.value.code == 0
        text = " ".join(capsys.readouterr().out.split())  # argparse wraps lines
        for name in envs.ENV_NAMES:
            assert name in text, (command, name)
        assert "any registered gymnasium id" in text


def test_progress_bar_shows_training_and_evaluation_returns_apart(capsys):
    """The bar keeps the last training-episode return and the last evaluation return in two
    fields (one `return=` field used to alternate between them)."""
    from pes_rl.logger import RunLogger

    logger = RunLogger(None, total_steps=300, initial_steps=0, progress_bar=True)
    row = dict(iteration=1, env_steps=100, steps_per_s=1000.0, train_episode_return=12.0, eval_return_mean=None)
    logger.log(row)
    assert logger.bar.postfix == "sps=1000, train_return=12.0"
    logger.log({**row, "iteration": 2, "env_steps": 200, "train_episode_return": None, "eval_return_mean": 30.5})
    assert logger.bar.postfix == "sps=1000, train_return=12.0, eval_return=30.5"
    logger.log({**row, "iteration": 3, "env_steps": 300, "train_episode_return": 14.0, "eval_return_mean": float("nan")})
    assert logger.bar.postfix == "sps=1000, train_return=14.0, eval_return=30.5"
    logger.close()
    bar = capsys.readouterr().err  # the bar is on stderr
    assert "pes:" in bar and "train_return=14.0, eval_return=30.5" in bar


def test_train_then_eval_on_gymnasium(tmp_path, capsys):
    run = tmp_path / "run"
    out = pes_rl("train", "--env", "swimmer", "--backend", "gymnasium", "--total-steps", "3000", "--seed", "1",
                 "--run-dir", str(run), "--eval-every", "2", "--checkpoint-every", "2", *TINY)
    assert out.returncode == 0, out.stderr
    config = json.loads((run / "config.json").read_text())
    assert config["num_pairs"] == 2 and config["truncation_length"] == 50 and config["seed"] == 1
    rows = list(csv.DictReader((run / "progress.csv").open()))
    assert len(rows) >= 3 and int(rows[-1]["env_steps"]) >= 3000
    assert any(r["eval_return_mean"] for r in rows)
    assert any(f.startswith("events.out.tfevents") for f in os.listdir(run / "tb"))
    assert sorted(os.listdir(run / "checkpoints"))

    evals = [pes_rl("eval", "--run-dir", str(run), "--episodes", "3", "--json") for _ in range(2)]
    for e in evals:
        assert e.returncode == 0, e.stderr
    summary = json.loads(evals[0].stdout)  # --json: stdout is the JSON object and nothing else
    assert {"mean_return", "std_return", "episodes", "env", "backend"} <= set(summary)
    assert summary["episodes"] == 3 and summary["env"] == "swimmer" and summary["backend"] == "gymnasium"
    assert evals[0].stdout == evals[1].stdout
    assert "swimmer on gymnasium: mean return" in evals[0].stderr  # the human line
    from pes_rl import cli

    capsys.readouterr()
    assert cli.main(["eval", "--run-dir", str(run), "--episodes", "3"]) == 0  # without --json: on stdout
    assert capsys.readouterr().out.startswith("swimmer on gymnasium: mean return")

    again = pes_rl("train", "--run-dir", str(run), "--total-steps", "4000", "--no-progress")
    assert again.returncode == 2 and "already exists" in again.stderr
    resumed = pes_rl("train", "--run-dir", str(run), "--resume", "--total-steps", "4000", "--no-progress")
    assert resumed.returncode == 0, resumed.stderr
    rows = list(csv.DictReader((run / "progress.csv").open()))
    assert int(rows[-1]["env_steps"]) >= 4000


@pytest.mark.parametrize(
    "args, field",
    [
        (["--sigma", "0"], "sigma"),
        (["--sigma", "-1"], "sigma"),
        (["--num-pairs", "0"], "num_pairs"),
        (["-K", "0"], "truncation_length"),
        (["-K", "300", "-T", "200"], "truncation_length"),
        (["--total-steps", "0"], "total_steps"),
        (["--env", "nope"], "env"),
        (["--backend", "cuda"], "backend"),
        (["--agent", "ppo"], "agent"),
        (["--policy", "transformer"], "policy"),
        (["--config", "/nonexistent/config.json"], "config"),
        (["--sigma", "abc"], "--sigma"),
        (["--reset-at", "never"], "reset_at"),
    ],
)
def test_bad_input_is_one_line_naming_the_field(tmp_path, args, field):
    out = pes_rl("train", "--run-dir", str(tmp_path / "r"), "--no-progress", *args)
    assert out.returncode == 2
    lines = [line for line in out.stderr.strip().splitlines() if line.strip()]
    assert len(lines) == 1, out.stderr
    assert field in lines[0] and "Traceback" not in out.stderr
    assert not (tmp_path / "r").exists(), "nothing is written before validation passes"


def test_eval_of_a_missing_run_is_one_line(tmp_path):
    out = pes_rl("eval", "--run-dir", str(tmp_path / "missing"), "--episodes", "2")
    assert out.returncode == 2 and "run_dir" in out.stderr and "Traceback" not in out.stderr


@pytest.mark.slow
def test_train_on_mjx_then_eval_on_both_backends(tmp_path):
    """MJX Swimmer training from the CLI (compiles on the CPU: one of the slowest tests). The agent
    is NRES: PES itself runs on mjx through the CLI in test_sharding.py and through the API in
    test_reliability.py, and the particle loop (agents/jax_unroll.py) knows no estimator, so NRES
    covers the baselines' mjx path, its per-episode ε drawn at the resets every T = 40 steps; ES's
    K = T and TES's ξ = ε are backend-free (agents/pes.py) and told apart in
    test_agents_train_through_the_cli_and_differ."""
    run = tmp_path / "mjx"
    out = pes_rl("train", "--env", "swimmer", "--backend", "mjx", "--agent", "nres", "--total-steps", "1200",
                 "--run-dir", str(run), "--num-pairs", "2", "-K", "20", "-T", "40", "--eval-every", "0",
                 "--eval-backend", "gymnasium", "--log-every", "5", "--no-progress")
    assert out.returncode == 0, out.stderr
    rows = list(csv.DictReader((run / "progress.csv").open()))
    assert int(rows[-1]["env_steps"]) >= 1200 and rows[-1]["eval_return_mean"]
    assert float(rows[-1]["param_norm"]) > 0 and sum(float(r["resets"]) for r in rows) > 0
    assert json.loads((run / "config.json").read_text())["agent"] == "nres"
    results = {}
    episodes = 8
    for backend in ("gymnasium", "mjx"):
        e = pes_rl("eval", "--run-dir", str(run), "--backend", backend, "--episodes", str(episodes), "--json")
        assert e.returncode == 0, e.stderr
        results[backend] = json.loads(e.stdout)
        assert results[backend]["backend"] == backend
    # An mjx-trained policy scores the same on C MuJoCo's Swimmer-v5: within max(3 SE, 2%).
    gym_r, mjx_r = results["gymnasium"], results["mjx"]
    se = ((gym_r["std_return"] ** 2 + mjx_r["std_return"] ** 2) / (episodes - 1)) ** 0.5
    diff = abs(gym_r["mean_return"] - mjx_r["mean_return"])
    print(f"cross-backend: gymnasium {gym_r['mean_return']:.3f} ± {gym_r['std_return']:.3f}, "
          f"mjx {mjx_r['mean_return']:.3f} ± {mjx_r['std_return']:.3f}, |diff| {diff:.3f}, 3 SE {3 * se:.3f}")
    assert diff <= max(3 * se, 0.02 * abs(gym_r["mean_return"]))


def test_record_writes_an_mp4_with_every_frame_and_motion(tmp_path):
    import imageio
    import numpy as np

    run = tmp_path / "run"
    out = pes_rl("train", "--env", "swimmer", "--backend", "gymnasium", "--total-steps", "800", "--run-dir", str(run),
                 "--num-pairs", "2", "-K", "40", "-T", "40", "--eval-every", "0", "--no-progress")
    assert out.returncode == 0, out.stderr
    video = tmp_path / "swim.mp4"
    rec = pes_rl("record", "--run-dir", str(run), "--out", str(video), "--episodes", "2", "--width", "160",
                 "--height", "120")
    assert rec.returncode == 0, rec.stderr
    assert rec.stdout.startswith(f"wrote {video}: 82 frames")
    assert "record:" in rec.stderr and "82/82" in rec.stderr, "a progress bar over the frames, on stderr"
    reader = imageio.get_reader(str(video))
    frames = [np.asarray(f, np.float32) for f in reader]
    assert reader.get_meta_data()["fps"] == 25.0  # Swimmer's dt is 0.04 s
    assert len(frames) == 2 * (40 + 1)  # per episode: the initial frame and one per env step
    assert frames[0].shape == (120, 160, 3)
    assert max(np.abs(b - a).mean() for a, b in zip(frames, frames[1:])) > 0.5, "consecutive frames should differ"


def test_fast_rendering_looks_like_full_quality():
    """The default renderer (shadow map sized to the frame, no multisampling) draws what the
    model's own settings draw, up to edges; the model's settings are left as they were."""
    import gymnasium as gym
    import numpy as np

    from pes_rl.video import _FrameRenderer, shadow_map_size

    assert [shadow_map_size(w, h, 4096) for w, h in ((480, 360), (160, 120), (1920, 1080), (512, 512))] == [
        1024, 512, 4096, 1024]
    env = gym.make("Swimmer-v5")
    env.reset(seed=0)
    env.action_space.seed(0)
    for _ in range(20):
        env.step(env.action_space.sample())
    sim = env.unwrapped
    frames = []
    for full_quality in (False, True):
        render = _FrameRenderer(sim.model, 160, 120, full_quality)
        frames.append(render(sim.data).astype(np.float32))
        render.close()
        assert (sim.model.vis.quality.shadowsize, sim.model.vis.quality.offsamples) == (4096, 4)
    env.close()
    diff = np.abs(frames[0] - frames[1])
    assert frames[1].std() > 20, "a real picture, not a blank frame"
    assert diff.mean() < 2.0 and (diff.max(-1) > 32).mean() < 0.02, (diff.mean(), (diff.max(-1) > 32).mean())


def test_render_speed_script_runs():
    import pathlib

    script = pathlib.Path(__file__).resolve().parents[1] / "scripts" / "render_speed.py"
    out = subprocess.run([sys.executable, str(script), "--frames", "4", "--rounds", "1", "--width", "64", "--height",
                          "48"], capture_output=True, text=True, timeout=300)
    assert out.returncode == 0, out.stderr
    report = json.loads(out.stdout.strip().splitlines()[-1])
    assert report["frames"] == 4 and set(report["s_per_frame"]) == {"fast (default)", "full (--full-quality)"}
    assert all(v > 0 for q in report["s_per_frame"].values() for v in q.values())


def test_capture_video_records_at_each_evaluation(tmp_path):
    run = tmp_path / "run"
    out = pes_rl("train", "--env", "swimmer", "--backend", "gymnasium", "--total-steps", "400", "--run-dir", str(run),
                 "--num-pairs", "2", "-K", "20", "-T", "20", "--eval-every", "3", "--eval-episodes", "1",
                 "--capture-video", "--no-progress")
    assert out.returncode == 0, out.stderr
    videos = sorted(os.listdir(run / "videos"))
    assert videos == ["iteration_000003.mp4", "iteration_000005.mp4"]  # 80 steps per iteration; the last at the end


def test_eval_on_an_env_that_does_not_fit_the_policy_is_one_line(tmp_path):
    run = tmp_path / "run"
    assert pes_rl("train", "--env", "swimmer", "--backend", "gymnasium", "--total-steps", "200", "--run-dir", str(run),
                  "--num-pairs", "1", "-K", "20", "-T", "20", "--eval-every", "0", "--no-progress").returncode == 0
    out = pes_rl("eval", "--run-dir", str(run), "--env", "hopper", "--episodes", "1")
    assert out.returncode == 2 and "Traceback" not in out.stderr
    assert "does not match the run's policy" in out.stderr and len(out.stderr.strip().splitlines()) == 1


def test_record_a_brax_task_on_mjx(tmp_path):
    """Brax's inverted pendulum (same sizes as gymnasium's) rendered from an MJX rollout."""
    import imageio

    run = tmp_path / "run"
    assert pes_rl("train", "--env", "inverted_pendulum", "--backend", "gymnasium", "--total-steps", "400",
                  "--run-dir", str(run), "--num-pairs", "1", "-K", "20", "-T", "30", "--eval-every", "0",
                  "--no-progress").returncode == 0
    video = tmp_path / "ip.mp4"
    rec = pes_rl("record", "--run-dir", str(run), "--backend", "mjx", "--out", str(video), "--width", "96",
                 "--height", "64")
    assert rec.returncode == 0, rec.stderr
    frames = [f for f in imageio.get_reader(str(video))]
    assert 2 <= len(frames) <= 31 and frames[0].shape == (64, 96, 3)
    assert f"{len(frames)}/{len(frames)}" in rec.stderr, rec.stderr  # the bar ends at the frames rendered


def test_record_progress_bar_counts_the_frames_of_episodes_that_end_early(capsys):
    """Its total starts at episodes x (T + 1) frames and drops by what an episode that ends early
    (a fall) does not render."""
    from pes_rl.video import _Output

    class Writer:
        frames = 0

        def append_data(self, frame):
            self.frames += 1

    writer = Writer()
    out = _Output(writer, episodes=3, horizon=9, progress=True)
    assert out.bar.total == 30
    for frames, episode_return in ((10, 1.0), (4, 2.0), (10, 3.0)):  # the second episode ends after 3 steps
        for _ in range(frames):
            out.frame(None)
        out.episode_done(episode_return)
    assert out.bar.total == out.bar.n == out.frames == writer.frames == 24 and out.returns == [1.0, 2.0, 3.0]
    out.close()
    bar = capsys.readouterr().err
    assert "record: 100%" in bar and "24/24" in bar and "episode=3/3" in bar


def test_agents_train_through_the_cli_and_differ(tmp_path):
    """Each agent trains through the CLI (same seed, a few iterations of Swimmer) into
    parameters that tell the agents apart: PES, TES and NRES weight the same windows' returns
    by different noise (ξ + ε, ε, the episode's ε), so their parameters differ; ES is PES with
    K = T, bit for bit (full-episode windows are drawn, simulated and told the same way)."""
    import numpy as np

    from pes_rl import cli, load_run

    def train(name, agent, *extra):
        run = tmp_path / name
        # in this process (cli.main, the `pes-rl` entry point): five JAX start-ups would take longer than the runs
        assert cli.main(["train", "--env", "swimmer", "--backend", "gymnasium", "--agent", agent, "--total-steps", "800",
                         "--run-dir", str(run), "--num-pairs", "2", "-T", "40", "--eval-every", "0",
                         "--eval-episodes", "1", "--no-progress", *extra]) == 0
        config, theta, _ = load_run(str(run))
        assert config.agent == agent
        return config, np.asarray(theta)

    params = {}
    for agent in ("pes", "tes", "nres"):
        config, params[agent] = train(agent, agent, "-K", "20")
        assert config.truncation_length == 20
        assert np.linalg.norm(params[agent]) > 1e-3, f"{agent} moved the policy from its zero init"
    config, params["es"] = train("es", "es", "-K", "20")  # es ignores K: one window per episode
    assert config.truncation_length == 40
    _, params["pes_K=T"] = train("pes_K=T", "pes", "-K", "40")

    for a, b in (("pes", "tes"), ("pes", "nres"), ("tes", "nres")):
        gap = np.linalg.norm(params[a] - params[b])
        assert gap > 0.05 * np.linalg.norm(params[a]), f"{a} and {b} trained the same parameters"
    np.testing.assert_array_equal(params["es"], params["pes_K=T"])
    assert np.linalg.norm(params["pes"] - params["es"]) > 0.05 * np.linalg.norm(params["pes"])


def test_train_flags_are_generated_from_the_config_fields(tmp_path):
    """Every Config field but progress_bar is a ``pes-rl train`` flag of its own type, and each
    parsed value lands in its field; a field added to Config without a flag fails here."""
    import dataclasses

    from pes_rl.cli import build_parser, config_from_args
    from pes_rl.config import Config

    sample = {
        "env": "hopper", "backend": "gymnasium", "agent": "nres", "total_steps": 123_456, "seed": 7,
        "run_dir": str(tmp_path / "r"), "num_pairs": 3, "sigma": 0.2, "lr": 0.3, "lr_end": 0.01,
        "truncation_length": 50, "horizon": 500, "policy": "mlp", "hidden": (8, 8), "optimizer": "adam",
        "return_std_scaling": False, "normalize_obs": True, "stagger": "burn-in", "reset_at": "window",
        "eval_every": 3, "eval_episodes": 2, "eval_backend": "gymnasium", "checkpoint_every": 4,
        "capture_video": True, "log_every": 2, "reward_shift": 0.5, "preset": "default", "top_directions": 2,
        "mjx_impl": "jax",
    }
    assert set(sample) == {f.name for f in dataclasses.fields(Config)} - {"progress_bar"}
    argv = ["train"]
    for name, value in sample.items():
        flag = "--" + name.replace("_", "-")
        if isinstance(value, bool):
            argv.append(flag if value else "--no-" + flag[2:])
        else:
            argv += [flag, ",".join(map(str, value)) if name == "hidden" else str(value)]
    config = config_from_args(build_parser().parse_args(argv))
    assert {name: getattr(config, name) for name in sample} == sample


def test_train_help_lists_each_fields_allowed_values():
    from pes_rl.cli import build_parser
    from pes_rl.config import Config

    import dataclasses

    train = next(a for a in build_parser()._subparsers._group_actions[0].choices.items() if a[0] == "train")[1]
    helps = {action.dest: action.help for action in train._actions}
    for f in dataclasses.fields(Config):
        if f.metadata["choices"]:
            assert f"(one of: {', '.join(f.metadata['choices'])})" in helps[f.name], f.name
