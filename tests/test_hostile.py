"""Hostile input through the CLI and the Python API: exit code 2 and one clear line (or
NprlError), no traceback, nothing half-written, no code run from a checkpoint."""

import os
import pickle
import shutil

import gymnasium as gym
import numpy as np
import pytest
import torch

import nprl
from nprl.checkpoint import FORMAT, VERSION, find_checkpoint, save_checkpoint
from nprl.cli import main
from nprl.errors import NprlError

T = ["train", "trpo", "CartPole-v1"]


def run_cli(argv, capsys):
    code = main(argv)
    err = capsys.readouterr().err
    assert code == 2, err
    assert err.count("\n") == 1 and err.startswith("nprl") and "Traceback" not in err, err
    return err


@pytest.fixture(scope="module")
def run_dir(tmp_path_factory):
    """A finished 2-update CartPole run with two checkpoints."""
    root = tmp_path_factory.mktemp("runs")
    return nprl.train("trpo", "CartPole-v1", steps=256, n_envs=2, n_steps=64, logdir=root,
                      run_name="ok", eval_every=0, eval_episodes=2, checkpoint_every=1).run_dir


@pytest.fixture
def copy_run(run_dir, tmp_path):
    dst = tmp_path / "copy"
    shutil.copytree(run_dir, dst)
    return dst


@pytest.mark.parametrize("setting,message", [
    ("max_kl=-0.1", "max_kl=-0.1: expected a positive finite number"),
    ("max_kl=inf", "max_kl=inf: expected a positive finite number"),
    ("gamma=0", "gamma=0.0: expected a number in (0, 1]"),
    ("gamma=nan", "gamma=nan: expected a number in (0, 1]"),
    ("gae_lambda=1.5", "gae_lambda=1.5: expected a number in [0, 1]"),
    ("n_steps=-3", "n_steps=-3: expected a positive integer"),
    ("cg_iters=0", "cg_iters=0: expected a positive integer"),
    ("eval_every=-1", "eval_every=-1: expected an integer ≥ 0"),
    ("backtrack_coef=1", "backtrack_coef=1.0: expected a number in (0, 1)"),
    ("hidden_sizes=[64, 0]", "hidden_sizes=(64, 0): expected positive layer widths"),
    ("max_consecutive_skips=0", "max_consecutive_skips=0: expected a positive integer"),
    ("cg_damping=-1e-3", "cg_damping=-0.001: expected a finite number ≥ 0"),
    ("line_search=yes", "line_search='yes': expected true or false"),
])
def test_bad_set_values(setting, message, tmp_path, capsys):
    err = run_cli([*T, "--set", setting, "--logdir", str(tmp_path)], capsys)
    assert message in err
    assert list(tmp_path.iterdir()) == []


@pytest.mark.parametrize("kwargs,message", [
    ({"max_kl": float("nan")}, "max_kl=nan"), ({"gamma": 1.01}, "gamma=1.01"),
    ({"n_envs": 0}, "n_envs=0"), ({"max_kll": 0.1}, "did you mean 'max_kl'"),
    ({"steps": "many"}, "steps='many': expected an integer"), ({"seed": -1}, "seed=-1"),
])
def test_python_api_raises_nprl_error(kwargs, message, tmp_path):
    with pytest.raises(NprlError, match=message.replace("(", r"\(")):
        nprl.train("trpo", "CartPole-v1", logdir=tmp_path, **kwargs)
    assert list(tmp_path.iterdir()) == []


def test_malformed_preset_through_the_cli(tmp_path, monkeypatch, capsys):
    import nprl.presets as presets

    for kind in ("agents", "envs"):
        (tmp_path / kind).mkdir()
    (tmp_path / "envs" / "CartPole-v1.toml").write_text("n_envs = [8\n")
    monkeypatch.setattr(presets, "preset_dir", lambda kind: tmp_path / kind)
    err = run_cli([*T, "--logdir", str(tmp_path / "runs")], capsys)
    assert "malformed TOML in preset" in err and "CartPole-v1.toml" in err
    assert not (tmp_path / "runs").exists()


def test_config_file_with_an_unknown_key(tmp_path, capsys):
    cfg = tmp_path / "c.toml"
    cfg.write_text("max_kl = 0.02\nlearning_rate = 3\n")
    err = run_cli([*T, "--config", str(cfg), "--logdir", str(tmp_path / "runs")], capsys)
    assert f"unknown config key 'learning_rate' in {cfg}" in err


def test_existing_run_name_needs_force_but_resume_does_not(copy_run, capsys):
    run_dir = copy_run
    argv = [*T, "--logdir", str(run_dir.parent), "--run-name", run_dir.name, "--steps", "128"]
    err = run_cli(argv, capsys)
    assert "already exists; pass --force to reuse it" in err
    before = sorted(p.name for p in (run_dir / "checkpoints").iterdir())
    assert sorted(p.name for p in (run_dir / "checkpoints").iterdir()) == before
    assert main(["train", "--resume", str(run_dir), "--steps", "384", "--no-progress"]) == 0
    assert find_checkpoint(run_dir).name == "step_000000000384.pt"


def _corrupt(path, how):
    data = path.read_bytes()
    if how == "truncated":
        path.write_bytes(data[: len(data) // 2])
    elif how == "empty":
        path.write_bytes(b"")
    elif how == "garbage":
        path.write_bytes(np.random.default_rng(0).bytes(4096))
    elif how == "flipped":  # a byte flipped inside the zip's tensor data
        blob = bytearray(data)
        blob[len(blob) // 2] ^= 0xFF
        path.write_bytes(bytes(blob))
    elif how == "not-nprl":
        torch.save({"weights": torch.zeros(3)}, path)
    elif how == "wrong-version":
        torch.save({"format": FORMAT, "version": VERSION + 1}, path)


@pytest.mark.parametrize("how,message", [
    ("truncated", "is truncated or corrupted"), ("empty", "is truncated or corrupted"),
    ("garbage", "is truncated or corrupted"), ("not-nprl", "is not an nprl checkpoint"),
    ("wrong-version", f"has checkpoint version {VERSION + 1}"),
])
def test_corrupted_checkpoint_for_eval_and_resume(how, message, copy_run, capsys):
    newest = find_checkpoint(copy_run)
    _corrupt(newest, how)
    assert message in run_cli(["eval", str(newest)], capsys)
    err = run_cli(["train", "--resume", str(copy_run), "--steps", "512"], capsys)
    assert message in err
    older = sorted((copy_run / "checkpoints").glob("step_*.pt"))[-2]
    assert f"an older checkpoint is '{older}'" in err  # and how to use it


def test_flipped_byte_is_caught_or_harmless(copy_run, capsys):
    """A flipped byte in tensor data may still unpickle (zip CRCs are not checked on
    read); then the checkpoint must still load as plain data and eval must not crash."""
    newest = find_checkpoint(copy_run)
    _corrupt(newest, "flipped")
    code = main(["eval", str(newest), "--episodes", "2"])
    err = capsys.readouterr().err
    assert code in (0, 2) and "Traceback" not in err


class Exploit:
    def __init__(self, marker):
        self.marker = marker

    def __reduce__(self):
        return (os.system, (f"touch {self.marker}",))


@pytest.mark.parametrize("container", ["torch-zip", "raw-pickle"])
def test_malicious_pickle_is_refused_and_never_run(container, copy_run, tmp_path, capsys):
    marker = tmp_path / "pwned"
    path = copy_run / "checkpoints" / "step_000000999999.pt"
    payload = {"format": FORMAT, "version": VERSION, "config": Exploit(marker)}
    if container == "torch-zip":
        torch.save(payload, path)
    else:
        path.write_bytes(pickle.dumps(payload, protocol=2))  # torch.load's own protocol
    for argv in (["eval", str(path)], ["train", "--resume", str(copy_run)]):
        err = run_cli(argv, capsys)
        assert "holds more than plain data (Trying to load unsupported GLOBAL posix.system" \
            in err, err
    assert not marker.exists()


def test_checkpoint_for_another_env_or_observation_shape(copy_run, capsys):
    path = find_checkpoint(copy_run)
    state = torch.load(path, weights_only=True)
    state["config"]["env_id"] = "Acrobot-v1"  # 6 observations, 3 actions; CartPole: 4, 2
    torch.save(state, path)
    expected = "made for observations of shape [4], but Acrobot-v1 gives [6]"
    assert expected in run_cli(["eval", str(path)], capsys)
    assert expected in run_cli(["train", "--resume", str(path), "--steps", "512"], capsys)


def test_resume_without_a_checkpoint_or_with_identity_args(tmp_path, run_dir, capsys):
    assert "does not exist" in run_cli(["train", "--resume", str(tmp_path / "nope")], capsys)
    (tmp_path / "empty").mkdir()
    assert "no checkpoint in" in run_cli(["train", "--resume", str(tmp_path / "empty")], capsys)
    err = run_cli(["train", "trpo", "CartPole-v1", "--resume", str(run_dir), "--seed", "3"],
                  capsys)
    assert "drop AGENT/ENV, --seed" in err
    err = run_cli(["train", "--resume", str(run_dir), "--set", "gamma=0.9"], capsys)
    assert "--resume cannot change 'gamma'" in err


def test_saving_non_plain_data_is_refused_before_writing(tmp_path):
    with pytest.raises(TypeError, match=r"checkpoint\['env'\]\['state'\]: ndarray"):
        save_checkpoint({"env": {"state": np.zeros(3)}}, tmp_path, 1, keep=1)
    assert list(tmp_path.iterdir()) == []


class WrongShape(gym.Env):
    """Declares 4 observations; returns 3 from ``reset`` or (``at_step``) from ``step``."""

    def __init__(self, at_step=False):
        self.observation_space = gym.spaces.Box(-1, 1, (4,), np.float32)
        self.action_space = gym.spaces.Discrete(2)
        self.at_step = at_step

    def reset(self, *, seed=None, options=None):
        super().reset(seed=seed)
        return np.zeros(4 if self.at_step else 3, np.float32), {}

    def step(self, action):
        return np.zeros(3, np.float32), 1.0, False, False, {}


gym.register("nprl-test/WrongShape-v0", entry_point=WrongShape, max_episode_steps=50)
gym.register("nprl-test/WrongShapeStep-v0", entry_point=lambda: WrongShape(at_step=True),
             max_episode_steps=50)


@pytest.mark.parametrize("env_id", ["nprl-test/WrongShape-v0", "nprl-test/WrongShapeStep-v0"])
def test_env_with_wrong_observation_shape(env_id, tmp_path, capsys):
    err = run_cli(["train", "ppo", env_id, "--set", "backend=gymnasium", "--logdir",
                   str(tmp_path), "--no-progress"], capsys)
    assert f"{env_id} returned an observation of shape (3,), but its observation space " \
           "declares (4,)" in err
    if env_id.endswith("WrongShape-v0"):  # found at reset: before any run directory
        assert list(tmp_path.iterdir()) == []


def test_disk_full_while_checkpointing_keeps_the_older_checkpoints(copy_run, monkeypatch,
                                                                    capsys):
    import errno

    before = sorted(p.name for p in (copy_run / "checkpoints").iterdir())

    def full_disk(obj, f, *args, **kwargs):
        f.write(b"partial")
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(torch, "save", full_disk)
    err = run_cli(["train", "--resume", str(copy_run), "--steps", "512", "--no-progress"],
                  capsys)
    assert "cannot write checkpoint" in err and "No space left on device" in err
    # No temporary file left behind, the older checkpoints as they were and loadable.
    assert sorted(p.name for p in (copy_run / "checkpoints").iterdir()) == before
    monkeypatch.undo()
    assert main(["eval", str(copy_run), "--episodes", "2"]) == 0
