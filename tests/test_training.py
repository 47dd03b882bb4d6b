"""End-to-end training: determinism, TensorBoard tags, checkpoints, and (slow) solving."""

import pytest
import torch

import nprl
from nprl.checkpoint import find_checkpoint
from nprl.cli import main
from nprl.tb import read_scalars

SHORT = dict(steps=1024, n_envs=4, n_steps=128, eval_every=512, eval_episodes=3)
NATURAL_TAGS = {"train/cg_residual", "train/cg_iters", "train/sFs", "train/expected_improve",
                "train/actual_improve", "train/backtracks", "train/step_accepted",
                "train/damping"}
COMMON_TAGS = {"rollout/ep_rew_mean", "rollout/ep_len_mean", "eval/mean_reward", "train/kl",
               "train/entropy", "train/value_loss", "train/explained_variance", "time/fps"}


@pytest.mark.parametrize("agent", ["trpo", "npg", "ppo"])
def test_same_command_twice_gives_identical_curves(agent, tmp_path):
    runs = [nprl.train(agent, "CartPole-v1", seed=3, logdir=tmp_path / str(i), **SHORT)
            for i in range(2)]
    a, b = (read_scalars(r.run_dir) for r in runs)
    for tag in ("rollout/ep_rew_mean", "eval/mean_reward", "train/kl", "train/value_loss"):
        assert a[tag] == b[tag], tag
    pa, pb = (torch.load(find_checkpoint(r.run_dir), weights_only=True)["policy"] for r in runs)
    assert all(torch.equal(pa[k], pb[k]) for k in pa)
    other = nprl.train(agent, "CartPole-v1", seed=4, logdir=tmp_path / "o", **SHORT)
    assert read_scalars(other.run_dir)["train/kl"] != a["train/kl"]


@pytest.mark.parametrize("agent,env", [("trpo", "CartPole-v1"), ("npg", "Pendulum-v1"),
                                       ("ppo", "Pendulum-v1")])
def test_tags_and_checkpoint(agent, env, tmp_path, capsys):
    res = nprl.train(agent, env, seed=0, logdir=tmp_path, normalize_obs=True,
                     normalize_reward=True, **SHORT)
    assert res.run_dir.parent == tmp_path / env and res.run_dir.name.startswith(f"{agent}-s0-")
    tags = set(read_scalars(res.run_dir))
    expected = COMMON_TAGS | (NATURAL_TAGS if agent != "ppo" else set())
    if env == "Pendulum-v1":
        expected -= {"rollout/ep_rew_mean", "rollout/ep_len_mean"}  # 200-step episodes
    assert expected <= tags, expected - tags
    state = torch.load(find_checkpoint(res.run_dir), weights_only=True)
    assert state["counters"]["steps"] == 1024 and state["config"]["env_id"] == env
    assert state["obs_norm"]["rms"]["count"] > 0
    # `nprl eval` reproduces a deterministic evaluation from the checkpoint alone.
    assert main(["eval", str(res.run_dir), "--episodes", "3"]) == 0
    assert "deterministic eval:" in capsys.readouterr().out


def test_stochastic_evaluation_only_on_request(tmp_path):
    plain = nprl.train("trpo", "CartPole-v1", seed=0, logdir=tmp_path / "a", **SHORT)
    both = nprl.train("trpo", "CartPole-v1", seed=0, logdir=tmp_path / "b",
                      eval_stochastic=True, **SHORT)
    a, b = read_scalars(plain.run_dir), read_scalars(both.run_dir)
    assert "eval/mean_reward_stochastic" not in a
    steps = [s for s, _ in b["eval/mean_reward"]]
    assert [s for s, _ in b["eval/mean_reward_stochastic"]] == steps == [512, 1024]
    # greedy and sampled actions give different returns
    assert b["eval/mean_reward_stochastic"] != b["eval/mean_reward"]
    # the deterministic evaluation before any stochastic one is the same in both runs
    assert a["eval/mean_reward"][0] == b["eval/mean_reward"][0]


@pytest.mark.slow
@pytest.mark.parametrize("agent,backend", [("trpo", "torch"), ("trpo", "gymnasium"),
                                           ("npg", "torch"), ("ppo", "torch")])
def test_solves_cartpole_with_preset(agent, backend, tmp_path):
    """Within the preset budget, on nprl's torch-native CartPole as on gymnasium's."""
    res = nprl.train(agent, "CartPole-v1", seed=0, logdir=tmp_path, stop_when_solved=True,
                     backend=backend)
    assert res.solved_step is not None and res.solved_step <= 100_000, res.evals
    assert res.final_eval.mean >= 475
