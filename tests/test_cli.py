"""Bad input: one clear line on stderr, exit code 2, no traceback, no half-made run."""

import subprocess
import sys

import pytest

from nprl.cli import main

T = ["train", "trpo", "CartPole-v1"]
BAD = [
    (["train", "trpx", "CartPole-v1"], "unknown agent 'trpx' (did you mean 'trpo'?)"),
    (["train", "trpo", "CartPol-v1"], "unknown env id 'CartPol-v1' (did you mean 'CartPole-v1'?)"),
    ([*T, "--set", "max_kll=0.1"],
     "unknown config key 'max_kll' in --set (did you mean 'max_kl'?)"),
    ([*T, "--set", "max_kl=abc"], "max_kl='abc': expected a number"),
    ([*T, "--set", "n_envs=1.5"], "n_envs=1.5: expected an integer"),
    ([*T, "--steps", "0"], "steps=0: expected a positive integer"),
    ([*T, "--set", "max_kl=nan"], "max_kl=nan: expected a positive"),
    ([*T, "--set", "gamma=1.5"], "gamma=1.5: expected a number in (0, 1]"),
    ([*T, "--set", "n_envs=0"], "n_envs=0: expected a positive integer"),
    ([*T, "--set", "max_kl"], "expected key=value"),
    ([*T, "--config", "/nonexistent.toml"], "does not exist"),
    (["eval", "/nonexistent/ckpt.pt"], "does not exist"),
]


@pytest.mark.parametrize("argv,message", BAD, ids=[" ".join(a[1:3]) + str(i) for i, (a, _) in
                                                   enumerate(BAD)])
def test_bad_input_is_one_line_and_exit_2(argv, message, tmp_path, capsys):
    code = main([*argv, "--logdir", str(tmp_path)] if argv[0] == "train" else argv)
    err = capsys.readouterr().err
    assert code == 2
    assert err.count("\n") == 1 and message in err, err
    assert list(tmp_path.iterdir()) == []  # no half-made run directory


def test_cuda_without_cuda(tmp_path, capsys):
    import torch

    if torch.cuda.is_available():
        pytest.skip("this machine has CUDA")
    assert main([*T, "--device", "cuda", "--logdir",
                 str(tmp_path)]) == 2
    assert "CUDA is not available" in capsys.readouterr().err
    assert list(tmp_path.iterdir()) == []


def test_unwritable_logdir(tmp_path, capsys):
    blocker = tmp_path / "file"
    blocker.write_text("not a directory")
    assert main([*T, "--logdir", str(blocker / "runs")]) == 2
    assert "cannot create run directory" in capsys.readouterr().err


def test_malformed_config_file(tmp_path, capsys):
    bad = tmp_path / "bad.toml"
    bad.write_text("max_kl = = 0.1\n")
    logdir = tmp_path / "runs"
    assert main([*T, "--config", str(bad), "--logdir",
                 str(logdir)]) == 2
    err = capsys.readouterr().err
    assert "malformed TOML" in err and err.count("\n") == 1
    assert not logdir.exists()


def test_usage_error_is_one_line(capsys):
    with pytest.raises(SystemExit) as exc:
        main([*T, "--steps", "many"])
    assert exc.value.code == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "invalid int value: 'many'" in err


def test_real_process_prints_no_traceback(tmp_path):
    proc = subprocess.run([sys.executable, "-m", "nprl", "train", "ppo", "Pendulum-v9",
                           "--logdir", str(tmp_path)], capture_output=True, text=True)
    assert proc.returncode == 2
    assert "Traceback" not in proc.stderr
    assert proc.stderr.strip().splitlines() == [
        "nprl: error: unknown env id 'Pendulum-v9' (did you mean 'Pendulum-v1'?); "
        "any registered gymnasium id works"]
