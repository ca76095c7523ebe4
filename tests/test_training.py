"""Training end to end through the Python API on the CPU fallback (real gymnasium MuJoCo)."""

import numpy as np
import pytest

import pes_rl
from pes_rl.config import ConfigError, make_config


def test_inverted_pendulum_learns_to_balance():
    """Early terminations (done masking) on the gymnasium backend: the preset balances
    the pole for the whole 1000-step episode within 100k env steps (seed 0). From a
    zero policy the pole falls within ~5 steps."""
    result = pes_rl.train(env="inverted_pendulum", backend="gymnasium", seed=0, progress_bar=False)
    evals = [m["eval_return_mean"] for m in result.metrics if m["eval_return_mean"] is not None]
    print("inverted_pendulum evaluation returns:", [round(e) for e in evals])
    from pes_rl.evaluation import evaluate_gymnasium

    untrained = evaluate_gymnasium("inverted_pendulum", lambda o: 0 * o[:, :1], 5, seed=0, horizon=1000)
    assert result.config.reset_at == "window"
    assert untrained.mean() < 50
    assert max(evals) >= 900


def test_swimmer_preset_learns_to_swim():
    """The default Swimmer preset (truncated PES, K = 200 < T = 1000) from a zero policy (return ~0)."""
    result = pes_rl.train(env="swimmer", backend="gymnasium", seed=0, total_steps=80_000, eval_every=0,
                          progress_bar=False)
    assert result.config.truncation_length < result.config.horizon
    print("swimmer after 80k steps:", result.final_eval_return)
    assert result.final_eval_return > 150, result.final_eval_return  # zero policy ~0; the local optimum ~40
    assert result.env_steps >= 80_000
    obs = np.zeros(8)
    assert result.policy(obs).shape == (2,)
    assert result.policy(np.zeros((3, 8))).shape == (3, 2)


def test_resume_is_bit_identical(tmp_path):
    """Stopping after a checkpoint and resuming gives exactly the uninterrupted run's parameters."""
    common = dict(env="swimmer", backend="gymnasium", seed=3, num_pairs=2, truncation_length=50, horizon=200,
                  eval_every=0, progress_bar=False)
    full = pes_rl.train(total_steps=4000, run_dir=str(tmp_path / "full"), checkpoint_every=0, **common)
    pes_rl.train(total_steps=2000, run_dir=str(tmp_path / "part"), checkpoint_every=1, **common)
    resumed = pes_rl.train(total_steps=4000, run_dir=str(tmp_path / "part"), checkpoint_every=1, resume=True, **common)
    assert resumed.env_steps == full.env_steps
    np.testing.assert_array_equal(resumed.flat_params, full.flat_params)
    rows = (tmp_path / "part" / "progress.csv").read_text().strip().splitlines()
    assert [int(r.split(",")[0]) for r in rows[1:]] == list(range(1, len(rows)))


def test_background_evaluations_score_their_own_iterations_policy():
    """Host evaluations run on a thread while training goes on: each row's evaluation is of the
    θ its iteration ended with, not a later one. A 6-iteration run evaluating every iteration
    scores iteration 3 as a run that ends there does, and a run stopped at a return it reaches
    keeps every row in order up to where it ended."""
    common = dict(env="swimmer", backend="gymnasium", seed=2, num_pairs=2, truncation_length=100, horizon=200,
                  sigma=0.3, lr=0.5, eval_episodes=2, progress_bar=False)
    every = pes_rl.train(total_steps=2400, eval_every=1, **common)  # 400 env steps an iteration
    short = pes_rl.train(total_steps=1200, eval_every=0, **common)  # ends (and evaluates) at iteration 3
    evals = [m["eval_return_mean"] for m in every.metrics]
    assert [m["iteration"] for m in every.metrics] == [1, 2, 3, 4, 5, 6] and None not in evals
    assert len(set(evals)) > 1, "θ changed between evaluations"
    assert evals[2] == short.metrics[-1]["eval_return_mean"]
    stopped = pes_rl.train(total_steps=2400, eval_every=1, stop_at_eval_return=evals[2], **common)
    rows = stopped.metrics
    assert [m["iteration"] for m in rows] == list(range(1, len(rows) + 1)) and len(rows) >= 3
    assert [m["eval_return_mean"] for m in rows] == evals[:len(rows)]
    assert max(evals[:len(rows)]) >= evals[2] and stopped.env_steps == rows[-1]["env_steps"]


def test_in_line_evaluations_stop_the_run_too(monkeypatch):
    """mjx, multi-process and video runs evaluate in line: an evaluation there that reaches
    stop_at_eval_return ends the run at its own iteration."""
    from pes_rl.trainer import _Evaluator

    monkeypatch.setattr(_Evaluator, "in_background", property(lambda self: False))
    result = pes_rl.train(env="swimmer", backend="gymnasium", seed=2, num_pairs=2, truncation_length=100, horizon=200,
                          sigma=0.3, lr=0.5, eval_episodes=2, progress_bar=False, total_steps=2400, eval_every=1,
                          stop_at_eval_return=-1e9)
    assert [m["iteration"] for m in result.metrics] == [1]


def test_resume_refuses_a_changed_config(tmp_path):
    common = dict(env="swimmer", backend="gymnasium", num_pairs=2, truncation_length=50, horizon=200, sigma=0.3,
                  eval_every=0, progress_bar=False, total_steps=600, run_dir=str(tmp_path / "r"))
    pes_rl.train(**common)
    with pytest.raises(ConfigError, match=r"sigma \(checkpoint 0.3, now 0.2\)"):
        pes_rl.train(**{**common, "sigma": 0.2}, resume=True)


@pytest.mark.parametrize(
    "field, value, message",
    [
        ("sigma", 0.0, "sigma must be a finite number >= 1e-18"),
        ("num_pairs", 0, "num_pairs must be an integer between 1 and"),
        ("truncation_length", 0, "truncation_length must be an integer between 1 and"),
        ("truncation_length", 2000, "truncation_length must be between 1 and horizon"),
        ("total_steps", -5, "total_steps must be an integer between 1 and"),
        ("env", "swimer", "env must be one of swimmer"),
        ("backend", "tpu", "backend must be one of auto, mjx, gymnasium"),
        ("agent", "ppo", "agent must be one of pes, es, tes, nres"),
        ("policy", "cnn", "policy must be one of linear, mlp"),
        ("reset_at", "never", "reset_at must be one of window, step"),
        ("hidden", "64,x", "hidden must be comma-separated positive integers"),
    ],
)
def test_bad_config_names_the_field(field, value, message):
    with pytest.raises(ConfigError, match=message):
        make_config(**{field: value})


def test_mlp_policy_trains_and_its_actions_respect_the_bounds():
    result = pes_rl.train(env="Pendulum-v1", backend="gymnasium", policy="mlp", hidden=(16, 16), num_pairs=2,
                          truncation_length=50, horizon=100, total_steps=1200, eval_every=0, eval_episodes=2,
                          normalize_obs=True, progress_bar=False)
    sizes = [(layer["w"].shape, layer["b"].shape) for layer in result.params["layers"]]
    assert sizes == [((16, 3), (16,)), ((16, 16), (16,)), ((1, 16), (1,))]
    assert float(result.normalizer.count) > 0, "observation statistics were collected"
    actions = result.policy(np.random.default_rng(0).normal(0, 100, (64, 3)))
    assert np.all(np.abs(actions) <= 2.0) and np.any(actions != 0)



def test_progress_fn_sees_every_logged_row():
    """``progress_fn(env_steps, row)``: once per logged row, in order, the rows train() returns."""
    seen = []
    result = pes_rl.train(env="swimmer", backend="gymnasium", seed=1, num_pairs=2, truncation_length=50, horizon=100,
                          total_steps=1000, eval_every=2, eval_episodes=1, checkpoint_every=0, progress_bar=False,
                          progress_fn=lambda steps, row: seen.append((steps, row)))
    assert len(seen) == len(result.metrics) == 5
    assert [steps for steps, _ in seen] == [row["env_steps"] for row in result.metrics]
    assert [row for _, row in seen] == result.metrics
    assert [row["eval_return_mean"] is not None for _, row in seen] == [False, True, False, True, True]


def test_initial_policy_returns_are_where_each_seeds_run_starts():
    """``initial_policy_returns`` scores each seed's θ₀ on that seed's own evaluation episodes: a
    run whose step is too small to move θ (SGD, lr 1e-30) ends with the same evaluation, seed by
    seed, and the seeds' episodes differ."""
    from pes_rl.trainer import initial_policy_returns

    common = dict(env="swimmer", backend="gymnasium", num_pairs=2, truncation_length=100, horizon=200, sigma=0.3,
                  optimizer="sgd", eval_episodes=3, progress_bar=False)
    initial = initial_policy_returns(make_config(seed=0, **common), [3, 4])
    for seed in (3, 4):
        run = pes_rl.train(seed=seed, lr=1e-30, total_steps=400, eval_every=0, **common)
        assert float(np.mean(initial[seed])) == pytest.approx(run.final_eval_return, rel=1e-9, abs=1e-9)
    assert float(np.mean(initial[3])) != pytest.approx(float(np.mean(initial[4])), abs=1e-3)
