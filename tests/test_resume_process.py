"""Real processes: `nprl train` killed (SIGKILL) or interrupted (SIGINT) mid-run, then
`nprl train --resume`, ends bit-identical to a run that was never stopped."""

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch
from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

import nprl
from nprl.agents import AGENTS
from nprl.checkpoint import find_checkpoint, list_checkpoints, load_checkpoint
from nprl.cli import main

ROOT = Path(__file__).resolve().parents[1]
# 40 updates of 8 × 64 steps; evaluation rare so the run is mostly updates.
SETS = {"n_envs": 8, "n_steps": 64, "checkpoint_every": 1, "eval_every": 8192,
        "eval_episodes": 2, "keep_checkpoints": 2}
STEPS = 40 * 512
NO_ACKTR = pytest.mark.skipif("acktr" not in AGENTS, reason="ACKTR is not in this build")
CASES = [pytest.param(agent, sig, id=f"{agent}-{sig.name}", marks=marks)
         for agent, sig, marks in [("trpo", signal.SIGKILL, ()), ("ppo", signal.SIGKILL, ()),
                                   ("trpo", signal.SIGINT, ()),
                                   ("acktr", signal.SIGKILL, NO_ACKTR)]]


def nprl_process(*args: str) -> subprocess.Popen:
    # cwd = the repository, so `python -m nprl` imports this checkout's nprl.
    return subprocess.Popen([sys.executable, "-m", "nprl", *args], cwd=ROOT, text=True,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE)


def wait_for_checkpoints(proc: subprocess.Popen, ckpt_dir: Path, count: int) -> None:
    deadline = time.monotonic() + 120
    while len(list_checkpoints(ckpt_dir)) < count:
        assert proc.poll() is None, proc.communicate()
        assert time.monotonic() < deadline, "no checkpoint appeared"
        time.sleep(0.02)


def steps_of(run_dir: Path, tag: str) -> list[int]:
    acc = EventAccumulator(str(run_dir), size_guidance={"scalars": 0})
    acc.Reload()
    return [e.step for e in acc.Scalars(tag)]


@pytest.mark.slow
@pytest.mark.parametrize("agent,sig", CASES)
def test_stopped_process_resumes_bit_identical(agent, sig, tmp_path):
    sets = [x for k, v in SETS.items() for x in ("--set", f"{k}={v}")]
    run_dir = tmp_path / "stopped"
    proc = nprl_process("train", agent, "CartPole-v1", "--seed", "2", "--steps", str(STEPS),
                        *sets, "--logdir", str(tmp_path), "--run-name", "stopped",
                        "--no-progress")
    wait_for_checkpoints(proc, run_dir / "checkpoints", 2)
    proc.send_signal(sig)
    _, err = proc.communicate(timeout=60)
    done = load_checkpoint(run_dir)["counters"]["steps"]
    assert 0 < done < STEPS, "the run must be stopped mid-way"
    if sig == signal.SIGKILL:
        assert proc.returncode == -signal.SIGKILL
    else:  # Ctrl-C: finish the update, checkpoint it, exit 130 with one line
        assert proc.returncode == 130, err
        assert err.strip().splitlines() == [
            f"nprl: interrupted (checkpoint at step {done}; continue with "
            f"`nprl train --resume {run_dir}`)"]
    assert main(["eval", str(run_dir), "--episodes", "2"]) == 0  # the run dir is intact

    resumed = nprl_process("train", "--resume", str(run_dir), "--no-progress")
    out, err = resumed.communicate(timeout=300)
    assert resumed.returncode == 0, err
    assert f"after {STEPS} steps" in out

    straight = nprl.train(agent, "CartPole-v1", seed=2, steps=STEPS, logdir=tmp_path,
                          run_name="straight", **SETS)
    a = torch.load(find_checkpoint(straight.run_dir), weights_only=True)
    b = torch.load(find_checkpoint(run_dir), weights_only=True)
    assert a["counters"]["steps"] == b["counters"]["steps"] == STEPS
    assert a["policy"].keys() == b["policy"].keys()
    assert all(torch.equal(a["policy"][k], b["policy"][k]) for k in a["policy"])
    for tag in ("train/kl", "train/value_loss", "rollout/ep_rew_mean"):
        assert steps_of(run_dir, tag) == steps_of(straight.run_dir, tag), tag
    assert not [p for p in os.listdir(run_dir / "checkpoints") if p.endswith(".tmp")]
