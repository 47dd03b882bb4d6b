"""Exact resume in-process: a run that crashes after a checkpoint and is resumed ends
bit-identical to one that never stopped; logs hold each step once; checkpoints are
plain data; only safe overrides pass. (Real processes killed mid-run: test_resume_process.)
"""

import random

import numpy as np
import pytest
import torch
from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

from nprl.agents import AGENTS
from nprl.checkpoint import find_checkpoint, list_checkpoints, load_checkpoint
from nprl.config import resolve
from nprl.envs import TORCH_ENVS
from nprl.errors import NprlError
from nprl.resume import resume_trainer
from nprl.rng import capture_rng, restore_rng
from nprl.trainer import Trainer

SHORT = dict(steps=640, n_envs=4, n_steps=32, eval_every=256, eval_episodes=2,
             checkpoint_every=1, keep_checkpoints=2)
# nprl's torch-native CartPole (the default backend) and gymnasium's (env state saved
# through nprl.envs.gym_state).
CASES = [(a, "torch") for a in ("trpo", "ppo", "acktr") if a in AGENTS] + [("npg", "gymnasium")]


def build(agent, tmp_path, name, env="CartPole-v1", **extra):
    cfg = resolve(agent, env, 5, {**SHORT, **extra})
    return Trainer(cfg, tmp_path, run_name=name, progress=False)


def crash_after(trainer, n_updates):
    """Make ``trainer.run()`` die (as a crash would) after update ``n_updates + 1`` has
    been applied and logged, but before its checkpoint."""
    real, count = trainer.checkpoint, [0]

    def checkpoint():
        count[0] += 1
        if count[0] > n_updates:
            raise RuntimeError("simulated crash")
        return real()

    trainer.checkpoint = checkpoint
    with pytest.raises(RuntimeError, match="simulated crash"):
        trainer.run()


def final_state(run_dir):
    return torch.load(find_checkpoint(run_dir), weights_only=True)


def raw_steps(run_dir, tag):
    """Every logged step of ``tag``, duplicates included (read_scalars would hide them)."""
    acc = EventAccumulator(str(run_dir), size_guidance={"scalars": 0})
    acc.Reload()
    return [e.step for e in acc.Scalars(tag)]


@pytest.mark.parametrize("agent,backend", CASES)
def test_crash_then_resume_is_bit_identical(agent, backend, tmp_path):
    # Observation and reward normalisation and staggering on: their state must carry over.
    extra = dict(normalize_obs=True, normalize_reward=True, stagger_episodes=True,
                 backend=backend)
    straight = build(agent, tmp_path, "straight", **extra).run()
    broken = build(agent, tmp_path, "broken", **extra)
    crash_after(broken, 3)
    assert load_checkpoint(broken.run_dir)["counters"]["updates"] == 3
    resumed = resume_trainer(broken.run_dir, progress=False).run()
    a, b = final_state(straight.run_dir), final_state(resumed.run_dir)
    for part in ("policy", "obs_norm", "reward_scaler", "collector"):
        flat_a, flat_b = _tensors(a[part]), _tensors(b[part])
        assert flat_a.keys() == flat_b.keys()
        assert all(torch.equal(flat_a[k], flat_b[k]) for k in flat_a), part
    assert [e[::2] for e in straight.evals] == [e[::2] for e in resumed.evals]
    # The crashed process logged update 4; the resumed one redid it: still once each.
    for tag in ("train/kl", "rollout/ep_rew_mean", "eval/mean_reward", "time/fps"):
        assert raw_steps(resumed.run_dir, tag) == raw_steps(straight.run_dir, tag), tag


def _tensors(tree, prefix=""):
    if isinstance(tree, torch.Tensor):
        return {prefix: tree}
    if isinstance(tree, dict):
        return {k2: v2 for k, v in tree.items() for k2, v2 in _tensors(v, f"{prefix}/{k}").items()}
    return {prefix: torch.tensor(float(tree))} if isinstance(tree, int | float) else {}


@pytest.mark.parametrize("backend", ["torch", "gymnasium"])
def test_checkpoint_holds_everything_as_plain_data(backend, tmp_path):
    trainer = build("ppo", tmp_path, "r", steps=128, backend=backend)
    trainer.run()
    path = find_checkpoint(trainer.run_dir)
    state = torch.load(path, weights_only=True)  # plain data only, or this raises
    assert {"config", "policy", "agent", "rng", "collector", "env", "counters", "guard",
            "result"} <= set(state)
    assert state["counters"] == {**state["counters"], "steps": 128, "updates": 1}
    assert state["agent"]["optimizer"]["state"]  # Adam moments are saved
    if backend == "gymnasium":  # each env's state and generator
        assert len(state["env"]["envs"]) == 4
    else:  # one batched state [N, 4] and one generator
        assert state["env"]["state"].shape == (4, 4) and state["env"]["generator"].numel() > 0
    assert state["collector"]["obs"].shape == (4, 4)
    assert len(list_checkpoints(path.parent)) == 1


def test_keeps_only_the_last_k_checkpoints(tmp_path):
    trainer = build("trpo", tmp_path, "r", steps=640)
    trainer.run()
    steps = [int(p.stem.split("_")[1]) for p in list_checkpoints(trainer.run_dir / "checkpoints")]
    assert steps == [512, 640]


def test_resume_from_a_checkpoint_file_and_extend_steps(tmp_path):
    trainer = build("trpo", tmp_path, "r", steps=256)
    trainer.run()
    ckpt = find_checkpoint(trainer.run_dir)
    result = resume_trainer(ckpt, {"steps": 384}, progress=False).run()
    assert result.run_dir == trainer.run_dir and result.steps == 384
    assert load_checkpoint(trainer.run_dir)["counters"]["steps"] == 384
    assert raw_steps(trainer.run_dir, "train/kl") == [128, 256, 384]


@pytest.mark.parametrize("overrides,message", [
    ({"n_envs": 2}, "--resume cannot change 'n_envs'"),
    ({"max_kl": 0.1}, "--resume cannot change 'max_kl'"),
    ({"steps": 256}, "nothing to resume: .* has done 256 of its 256 steps"),
    ({"steps": -1}, "steps=-1: expected a positive integer"),
])
def test_resume_refuses_unsafe_or_useless_overrides(overrides, message, tmp_path):
    trainer = build("trpo", tmp_path, "r", steps=256)
    trainer.run()
    with pytest.raises(NprlError, match=message):
        resume_trainer(trainer.run_dir, overrides)


def test_new_eval_schedule_starts_from_the_resumed_step(tmp_path):
    trainer = build("trpo", tmp_path, "r", steps=256, eval_every=0)
    trainer.run()
    resumed = resume_trainer(trainer.run_dir, {"steps": 768, "eval_every": 384})
    assert resumed.next_eval == 384
    assert [e[0] for e in resumed.run().evals] == [256, 384, 768]


def test_rng_round_trip_through_a_checkpoint(tmp_path):
    from nprl.checkpoint import atomic_save

    torch.manual_seed(1), np.random.seed(2), random.seed(3)
    np.random.standard_normal()  # leaves a cached Gaussian in NumPy's state
    atomic_save(capture_rng(), tmp_path / "rng.pt")
    expected = (torch.rand(3), np.random.standard_normal(3), random.random())
    restore_rng(torch.load(tmp_path / "rng.pt", weights_only=True))
    again = (torch.rand(3), np.random.standard_normal(3), random.random())
    assert torch.equal(expected[0], again[0])
    assert np.array_equal(expected[1], again[1]) and expected[2] == again[2]


@pytest.mark.parametrize("env_id", ["CartPole-v1", "Pendulum-v1", "Acrobot-v1"])
def test_gymnasium_env_state_round_trip(env_id):
    from nprl.envs import make_env

    env, twin = (make_env(env_id, 3, backend="gymnasium") for _ in range(2))
    env.reset(seed=0), twin.reset(seed=99)
    act = lambda: torch.as_tensor(np.stack([env.single_action_space.sample()  # noqa: E731
                                            for _ in range(3)]))
    for _ in range(40):
        env.step(act())
    twin.load_state_dict(env.state_dict())
    for _ in range(300):  # long enough for time limits and random resets to happen
        a = act()
        x, y = env.step(a), twin.step(a)
        assert all(torch.equal(u, v) for u, v in zip(x, y))


@pytest.mark.parametrize("env_id", sorted(TORCH_ENVS))
def test_torch_native_env_state_round_trip(env_id):
    env, twin = TORCH_ENVS[env_id](5), TORCH_ENVS[env_id](5)
    env.reset(seed=0), twin.reset(seed=1)
    space = env.single_action_space
    act = lambda: torch.as_tensor(np.stack([space.sample() for _ in range(5)]))  # noqa: E731
    for _ in range(30):
        env.step(act())
    twin.load_state_dict(torch.load(_saved(env.state_dict()), weights_only=True))
    for _ in range(600):  # past the time limits: resets draw from the restored generator
        a = act()
        assert all(torch.equal(u, v) for u, v in zip(env.step(a), twin.step(a)))


def _saved(obj):
    import io

    buf = io.BytesIO()
    torch.save(obj, buf)
    buf.seek(0)
    return buf


def test_ctrl_c_finishes_the_update_checkpoints_and_raises(tmp_path):
    import os
    import signal

    trainer = build("trpo", tmp_path, "r", checkpoint_every=0)
    collect, calls = trainer.collector.collect, [0]

    def collect_then_ctrl_c():
        calls[0] += 1
        if calls[0] == 2:  # Ctrl-C in the middle of the second rollout
            os.kill(os.getpid(), signal.SIGINT)
        return collect()

    trainer.collector.collect = collect_then_ctrl_c
    with pytest.raises(KeyboardInterrupt, match="checkpoint at step 256"):
        trainer.run()
    assert calls[0] == 2  # the second update was finished, no third one started
    state = load_checkpoint(trainer.run_dir)
    assert state["counters"]["steps"] == 256 and state["counters"]["updates"] == 2
    assert signal.getsignal(signal.SIGINT) is signal.default_int_handler  # handed back
    resumed = resume_trainer(trainer.run_dir, progress=False).run()
    assert resumed.steps == SHORT["steps"]


def test_resumed_log_purges_even_when_its_file_name_sorts_first(tmp_path, monkeypatch):
    # Event files made in the same second order by their counter as strings ("10" < "9"):
    # the resumed file must still be read after the one it purges.
    from tensorboard.summary.writer import event_file_writer

    from nprl.logger import Logger

    monkeypatch.setattr(event_file_writer, "_global_uid", event_file_writer.AtomicCounter(9))
    first = Logger(tmp_path, 100, progress=False)
    for step in (1, 2, 3, 4):
        first.scalars("train", {"kl": float(step)}, step)
    first.close()
    second = Logger(tmp_path, 100, progress=False, initial_steps=2, purge_step=3)
    for step in (3, 4, 5):
        second.scalars("train", {"kl": 10.0 * step}, step)
    second.close()
    acc = EventAccumulator(str(tmp_path), size_guidance={"scalars": 0})
    acc.Reload()
    assert [(e.step, e.value) for e in acc.Scalars("train/kl")] == [
        (1, 1.0), (2, 2.0), (3, 30.0), (4, 40.0), (5, 50.0)]
