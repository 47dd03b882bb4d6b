"""Config resolution: precedence of the layers, typing, round trips, errors naming keys."""

import dataclasses

import pytest

from nprl.agents import PPOConfig, TRPOConfig
from nprl.config import Config, parse_value, resolve
from nprl.errors import NprlError


def test_layers_in_order(tmp_path):
    # agents/trpo.toml's [env."CartPole-v1"] max_kl overrides its [defaults] one
    import tomllib

    from nprl.presets import env_presets, preset_dir

    table = tomllib.loads((preset_dir("agents") / "trpo.toml").read_text())
    tuned, default = table["env"]["CartPole-v1"]["max_kl"], table["defaults"]["max_kl"]
    assert tuned != default
    base = resolve("trpo", "CartPole-v1")
    assert base.agent.max_kl == tuned and base.run.solved_threshold == 475.0
    # a task without a TRPO table of its own falls back to [defaults]
    untuned = next((e for e in env_presets() if e not in table["env"]), "LunarLander-v3")
    assert resolve("trpo", untuned).agent.max_kl == default
    cfg_file = tmp_path / "c.toml"
    cfg_file.write_text("max_kl = 0.02\nn_envs = 4\n")
    with_file = resolve("trpo", "CartPole-v1", config_file=cfg_file)
    assert (with_file.agent.max_kl, with_file.run.n_envs) == (0.02, 4)
    with_set = resolve("trpo", "CartPole-v1", overrides={"max_kl": 0.03}, config_file=cfg_file)
    assert (with_set.agent.max_kl, with_set.run.n_envs) == (0.03, 4)


def test_any_gymnasium_id_gets_defaults():
    cfg = resolve("ppo", "LunarLander-v3")
    assert cfg.agent == PPOConfig(**{k: getattr(cfg.agent, k) for k in
                                     ("lr", "n_epochs", "n_minibatches")})
    assert cfg.run.solved_threshold is None


def test_types_are_checked_and_coerced():
    cfg = resolve("trpo", "CartPole-v1", overrides={"max_kl": 1, "hidden_sizes": [32, 32],
                                                    "steps": 2e4})
    assert cfg.agent.max_kl == 1.0 and isinstance(cfg.agent.max_kl, float)
    assert cfg.policy.hidden_sizes == (32, 32) and cfg.run.steps == 20000
    for bad in ({"hidden_sizes": [32, "x"]}, {"line_search": 1}, {"fisher": 3},
                {"steps": 1.5}, {"activation": "sigmoid"}, {"damping": "lm"}):
        with pytest.raises(NprlError, match=next(iter(bad))):
            resolve("trpo", "CartPole-v1", overrides=bad)


def test_agent_keys_are_per_agent():
    with pytest.raises(NprlError, match="unknown config key 'max_kl'"):
        resolve("ppo", "CartPole-v1", overrides={"max_kl": 0.01})
    with pytest.raises(NprlError, match="unknown config key 'clip_range'"):
        resolve("trpo", "CartPole-v1", overrides={"clip_range": 0.2})


def test_round_trip_through_plain_data():
    cfg = resolve("trpo", "Pendulum-v1", seed=3, overrides={"hidden_sizes": [16], "cg_iters": 7})
    again = Config.from_dict(cfg.to_dict())
    assert again == cfg and isinstance(again.agent, TRPOConfig)


def test_configs_are_frozen():
    cfg = resolve("npg", "CartPole-v1")
    with pytest.raises(dataclasses.FrozenInstanceError):
        cfg.agent.max_kl = 1.0  # type: ignore[misc]


def test_parse_value():
    assert parse_value("0.02") == 0.02 and parse_value("true") is True
    assert parse_value("[64, 64]") == [64, 64] and parse_value("relu") == "relu"
    assert parse_value("none") is None and parse_value('"x y"') == "x y"


def test_malformed_preset_names_the_file(tmp_path, monkeypatch):
    import nprl.presets as presets

    (tmp_path / "agents").mkdir()
    (tmp_path / "envs").mkdir()
    (tmp_path / "agents" / "trpo.toml").write_text("[defaults\nmax_kl = 0.1\n")
    monkeypatch.setattr(presets, "preset_dir", lambda kind: tmp_path / kind)
    with pytest.raises(NprlError, match=r"malformed TOML in preset .*trpo\.toml"):
        resolve("trpo", "CartPole-v1")
    (tmp_path / "agents" / "trpo.toml").write_text("[defaults]\nmax_kll = 0.1\n")
    with pytest.raises(NprlError, match=r"unknown config key 'max_kll' in .*trpo\.toml"):
        resolve("trpo", "CartPole-v1")
