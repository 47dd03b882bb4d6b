"""Staggered time limits: offsets, truncation times on both backends (gymnasium's own
TimeLimit is the reference), the episode statistics that leave the shortened first
episodes out, and the config switch."""

import gymnasium as gym
import numpy as np
import pytest
import torch

from nprl.collector import Collector
from nprl.config import resolve
from nprl.envs import make_env
from nprl.envs.stagger import stagger_offsets, stagger_time_limits
from nprl.errors import NprlError
from nprl.policies import ActorCritic
from nprl.trainer import Trainer


def test_offsets_are_uniform_reproducible_and_seed_dependent():
    a, b = stagger_offsets(20_000, 200, seed=3), stagger_offsets(20_000, 200, seed=3)
    assert torch.equal(a, b) and not torch.equal(a, stagger_offsets(20_000, 200, seed=4))
    assert int(a.min()) == 0 and int(a.max()) == 199
    counts = torch.bincount(a, minlength=200).double()
    # χ² with 199 degrees of freedom: mean 199, sd 20; 320 is beyond 6 sd.
    chi2 = float(((counts - 100) ** 2 / 100).sum())
    assert chi2 < 320, chi2


def first_truncations(env, steps, act):
    """Per env, the 0-based step index of its first truncation."""
    first = torch.full((env.num_envs,), -1)
    for t in range(steps):
        trunc = env.step(act).truncated.cpu()
        first = torch.where((first < 0) & trunc, t, first)
    return first


@pytest.mark.parametrize("env_id", ["Pendulum-v1", "CartPole-v1"])
def test_both_backends_truncate_after_limit_minus_offset(env_id):
    """Pendulum never terminates: env i first truncates at step limit − k_i − 1, on nprl's
    env and on gymnasium's TimeLimit alike. CartPole: the same offsets on both."""
    n = 6
    envs = {b: make_env(env_id, n, backend=b) for b in ("torch", "gymnasium")}
    offsets = {}
    for b, env in envs.items():
        env.reset(seed=11)
        offsets[b] = stagger_time_limits(env, seed=11)
    assert torch.equal(offsets["torch"], offsets["gymnasium"])
    if env_id == "Pendulum-v1":
        act = torch.zeros(n, 1)
        limit = 200
        expected = limit - offsets["torch"] - 1
        for env in envs.values():
            assert torch.equal(first_truncations(env, limit, act), expected)
    else:
        assert envs["torch"].max_episode_steps == envs["gymnasium"].max_episode_steps == 500


def test_an_env_without_a_time_limit_is_a_clear_error():
    gym.register("nprl-test/NoLimit-v0", entry_point="gymnasium.envs.classic_control:"
                 "PendulumEnv", max_episode_steps=None)
    env = make_env("nprl-test/NoLimit-v0", 2, backend="gymnasium")
    env.reset(seed=0)
    with pytest.raises(NprlError, match="stagger_episodes=true: .*no time limit"):
        stagger_time_limits(env, seed=0)


def test_statistics_hold_whole_episodes_only():
    """Pendulum's episodes last exactly 200 steps: with staggering every reported episode
    is 200 steps long, its return the sum of those 200 rewards, and the count is exactly
    the number of whole episodes that ended."""
    n, T, rollouts = 5, 90, 7  # 630 steps: 2–4 episode ends per env
    env = make_env("Pendulum-v1", n, backend="torch")
    torch.manual_seed(0)
    policy = ActorCritic(env.single_observation_space, env.single_action_space, (8,))
    col = Collector(env, policy, T, gamma=0.9, gae_lambda=0.95, seed=2, stagger=True)
    offsets = stagger_offsets(n, 200, seed=2)
    assert (offsets > 0).all()  # (this seed: every env starts mid-clock)
    returns, lengths, rewards = [], [], []
    for _ in range(rollouts):
        batch, stats = col.collect()
        returns += stats.returns
        lengths += stats.lengths
        rewards.append(batch.rewards)
    rewards = torch.cat(rewards)  # [630, n]
    expected = []
    for i in range(n):
        ends = np.arange(200 - int(offsets[i]) - 1, T * rollouts, 200)
        expected += [(float(rewards[e - 199:e + 1, i].sum()), e) for e in ends[1:]]
    assert lengths == [200] * len(expected)
    got = sorted(returns)
    want = sorted(r for r, _ in expected)
    assert np.allclose(got, want, rtol=1e-4)
    assert not col._partial.any()


def test_trainer_staggers_only_on_request_and_never_the_evaluation(tmp_path):
    def trainer(stagger):
        cfg = resolve("trpo", "Pendulum-v1", 7, {"steps": 512, "n_envs": 16, "n_steps": 32,
                                                  "stagger_episodes": stagger})
        return Trainer(cfg, tmp_path, progress=False)
    assert not trainer(False).env.elapsed_steps.any()
    t = trainer(True)
    staggered = t.env.elapsed_steps
    assert staggered.unique().numel() > 8 and int(staggered.max()) < 200
    t.evaluate()
    assert not t.eval_env.elapsed_steps.any()  # whole evaluation episodes (200 steps)
