"""Every preset is a valid config and trains an iteration on its task (smoke: learning itself is
measured by scripts/benchmark_tasks.py, not here)."""

import pytest

import pes_rl
from pes_rl.config import PRESETS, ConfigError, make_config, preset


@pytest.mark.parametrize("env", sorted(PRESETS))
def test_preset_trains_an_iteration(env):
    """The preset as given is a valid config; one iteration of it, cut to at most 4 pairs and 100-step
    episodes (Humanoid's 230 pairs take minutes on 2 cores), trains on its task."""
    from pes_rl.envs import PLAYGROUND_NAMES

    if env in PLAYGROUND_NAMES:
        pytest.importorskip("mujoco_playground", reason="the playground extra is not installed")
    backend = "mjx" if env in PLAYGROUND_NAMES else "gymnasium"
    full = make_config(env=env, backend=backend)
    if env in PLAYGROUND_NAMES:  # valid as given; training a Playground task is test_playground.py's (CI time)
        return
    horizon = min(full.horizon, 100)
    config = make_config(env=env, backend=backend, num_pairs=min(full.num_pairs, 4), horizon=horizon,
                         truncation_length=min(full.truncation_length, horizon))
    assert (config.policy, config.sigma, config.lr) == (full.policy, full.sigma, full.lr)
    result = pes_rl.train(config, total_steps=config.steps_per_iteration, eval_episodes=1, run_dir=None,
                          progress_bar=False)
    assert result.env_steps > 0 and result.final_eval_return is not None


def test_env_and_agent_presets_layer_in_order():
    """agent defaults < env preset < the env's settings for that agent < the caller's values."""
    assert "agents" not in preset("hopper", "pes")
    ars = preset("hopper", "ars")
    assert ars["lr"] == PRESETS["hopper"]["agents"]["ars"]["lr"] != PRESETS["hopper"]["lr"]
    assert ars["normalize_obs"] is True and ars["reward_shift"] == 1.0
    assert preset("halfcheetah", "nres")["truncation_length"] == PRESETS["halfcheetah"]["truncation_length"]
    assert make_config(env="hopper", agent="ars", sigma=0.5).sigma == 0.5
    assert make_config(env="hopper", agent="ars").truncation_length == 1000  # ARS: whole episodes
    # a preset's top-b never exceeds the caller's population; the caller's own b is checked, not capped
    assert make_config(env="hopper", num_pairs=3).top_directions == 3
    with pytest.raises(ConfigError, match="top_directions"):
        make_config(env="hopper", num_pairs=3, top_directions=4)
