"""The hand-written PPO gradient against autograd on the same loss (float64).

The minibatch mixes ratios of exactly 1 (the first epoch: min's tie), ratios inside the
clip range and ratios beyond it on both sides, with advantages of both signs, so every
branch of min/clamp (and of the clipped value loss) is taken.
"""

from __future__ import annotations

import gymnasium as gym
import numpy as np
import pytest
import torch

from nprl.agents.configs import PPOConfig
from nprl.agents.ppo import PPO
from nprl.batch import Samples
from nprl.policies import ActorCritic

OBS = gym.spaces.Box(-1, 1, (5,), np.float32)
SPACES = {"categorical": gym.spaces.Discrete(3),
          "gaussian": gym.spaces.Box(-1, 1, (2,), np.float32)}


def _setup(action: str, cfg: PPOConfig, B: int = 64):
    torch.manual_seed(0)
    policy = ActorCritic(OBS, SPACES[action], (16, 8), init_log_std=-0.4).double()
    for p in policy.parameters():
        p.data.add_(torch.randn_like(p) * 0.2)
    obs = torch.randn(B, 5, dtype=torch.float64)
    with torch.no_grad():
        params = policy.dist_params(obs)
        actions = policy.family.sample(params)
        logp = policy.family.log_prob(params, actions)
        values = policy.value(obs)
    shift = torch.zeros(B, dtype=torch.float64)
    shift[B // 4:] = torch.linspace(-0.6, 0.6, B - B // 4, dtype=torch.float64)  # ratios e^±0.6
    mb = Samples(obs, actions, logp + shift, params, torch.randn(B, dtype=torch.float64),
                 values + torch.randn(B, dtype=torch.float64),
                 values + 0.3 * torch.randn(B, dtype=torch.float64))
    return policy, PPO(policy, cfg), mb


def _grads(agent, mb, manual: bool):
    saved = agent._manual
    if not manual:
        agent._manual = None
    loss, stats, norm = agent._loss_and_grad(mb, agent.policy.family, None)
    agent._manual = saved
    stats = {**{k: float(v) for k, v in stats.items()}, "grad_norm": float(norm)}
    return float(loss), stats, [p.grad.clone() for p in agent.params]


@pytest.mark.parametrize("action", SPACES)
@pytest.mark.parametrize("clip_range_vf,ent_coef", [(None, 0.0), (0.2, 0.01), (0.05, 0.1)])
def test_manual_gradient_matches_autograd(action, clip_range_vf, ent_coef):
    # max_grad_norm 0.05 (below the gradient's norm): the clipping is compared too
    cfg = PPOConfig(clip_range=0.2, clip_range_vf=clip_range_vf, ent_coef=ent_coef,
                    normalize_advantage=False, max_grad_norm=0.05)
    _, agent, mb = _setup(action, cfg)
    assert agent._manual is not None and agent._manual.applies(mb.obs)
    ratio = torch.exp(agent.policy.family.log_prob(mb.dist_params, mb.actions) - mb.log_probs)
    assert (ratio == 1).sum() >= 8 and (ratio > 1.2).any() and (ratio < 0.8).any()
    loss_m, stats_m, grads_m = _grads(agent, mb, manual=True)
    loss_a, stats_a, grads_a = _grads(agent, mb, manual=False)
    assert loss_m == pytest.approx(loss_a, rel=1e-12)
    assert stats_m == pytest.approx(stats_a, rel=1e-12, abs=1e-15)
    for gm, ga in zip(grads_m, grads_a):
        torch.testing.assert_close(gm, ga, rtol=1e-10, atol=1e-13)
    assert stats_m["grad_norm"] > 0.05
    assert float(torch.cat([g.flatten() for g in grads_m]).norm()) == pytest.approx(0.05, rel=1e-4)


def test_custom_policy_uses_autograd():
    class Scaled(ActorCritic):
        def value(self, obs):
            return 2 * super().value(obs)

    policy = Scaled(OBS, SPACES["categorical"])
    assert PPO(policy, PPOConfig())._manual is None


def test_a_hook_on_the_log_std_sends_the_step_through_autograd():
    policy, agent, mb = _setup("gaussian", PPOConfig())
    seen = []
    handle = policy.log_std.register_hook(lambda g: seen.append(g.clone()))
    assert not agent._manual.applies(mb.obs)
    agent._loss_and_grad(mb, policy.family, None)
    assert len(seen) == 1  # autograd ran the hook
    handle.remove()
    assert agent._manual.applies(mb.obs)
