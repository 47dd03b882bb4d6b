"""BatchObjective (the surrogate, its gradient, the KL and the entropy of one batch, one
forward pass per evaluation) against torch.distributions, and the line search's surr0."""

from __future__ import annotations

import gymnasium as gym
import numpy as np
import pytest
import torch
from torch.distributions import Categorical, Normal, kl_divergence

from nprl.agents.objectives import BatchObjective
from nprl.batch import Samples
from nprl.curvature import kl_line_search
from nprl.policies import ActorCritic

OBS = gym.spaces.Box(-1, 1, (3,), np.float32)
SPACES = {"categorical": gym.spaces.Discrete(3),
          "gaussian": gym.spaces.Box(-1, 1, (2,), np.float32)}


def reference(policy, s: Samples, adv):
    """(surrogate, mean KL(old ‖ new), mean entropy) with torch.distributions."""
    out = policy.actor(s.obs)
    if policy.log_std is None:
        old, new = Categorical(logits=s.dist_params), Categorical(logits=out)
        logp, logp_old = new.log_prob(s.actions), old.log_prob(s.actions)
        kl, ent = kl_divergence(old, new), new.entropy()
    else:
        d = out.shape[-1]
        old = Normal(s.dist_params[:, :d], s.dist_params[:, d:].exp())
        new = Normal(out, policy.log_std.exp().expand_as(out))
        logp, logp_old = new.log_prob(s.actions).sum(-1), old.log_prob(s.actions).sum(-1)
        kl, ent = kl_divergence(old, new).sum(-1), new.entropy().sum(-1)
    return (torch.exp(logp - logp_old) * adv).mean(), kl.mean(), ent.mean()


def problem(kind: str, B: int = 64):
    torch.manual_seed(1)
    policy = ActorCritic(OBS, SPACES[kind], (8, 8), init_log_std=-0.5).double()
    obs = torch.randn(B, 3, dtype=torch.float64)
    with torch.no_grad():
        actions, log_probs, params = policy.act(obs)
    z = torch.zeros(B, dtype=torch.float64)
    s = Samples(obs, actions, log_probs, params, z, z, z)
    return policy, s, torch.randn(B, dtype=torch.float64)


@pytest.mark.parametrize("kind", SPACES)
@pytest.mark.parametrize("path", ["by hand", "autograd"])
def test_against_torch_distributions(kind, path):
    policy, s, adv = problem(kind)
    if path == "autograd":  # a hook the hand-written pass would skip: autograd runs
        policy.actor[0].register_forward_hook(lambda *a: None)
    obj = BatchObjective(policy, s, adv)
    g = obj.gradient()
    params = policy.actor_parameters()
    assert all(p.grad is None for p in params)  # g is returned, never left in .grad
    surr_ref = reference(policy, s, adv)[0]
    g_ref = torch.cat([t.reshape(-1) for t in torch.autograd.grad(surr_ref, params)])
    torch.testing.assert_close(g, g_ref, rtol=1e-12, atol=1e-14)
    assert float(obj.surr0) == pytest.approx(float(adv.mean()), abs=1e-12)  # r(θ_old) = 1
    with torch.no_grad():  # a step away from θ_old: the surrogate moves, the KL is positive
        for p in params:
            p.add_(0.2 * torch.randn_like(p))
    surr, kl = obj.evaluate()
    want = reference(policy, s, adv)
    assert float(kl) > 1e-4
    torch.testing.assert_close(torch.stack([surr, kl]), torch.stack(want[:2]).detach(),
                               rtol=1e-12, atol=1e-14)
    assert obj.entropy(moved=True) == pytest.approx(float(want[2].detach()), rel=1e-12)
    with torch.no_grad():  # not moved there (a refused step): the current θ's entropy
        for p in params:
            p.mul_(0.5)
    assert obj.entropy(moved=False) == pytest.approx(
        float(reference(policy, s, adv)[2].detach()), rel=1e-12)


def test_line_search_takes_surr0_and_evaluates_once_less():
    results, calls = [], []
    for given in (False, True):
        policy, s, adv = problem("categorical")
        obj = BatchObjective(policy, s, adv)
        g = obj.gradient()

        def evaluate(obj=obj, given=given):
            calls.append(given)
            return obj.evaluate()

        res = kl_line_search(policy.actor_parameters(), 2 * g, float(g @ (2 * g)), evaluate,
                             0.01, surr0=obj.surr0 if given else None)
        assert res.accepted and res.backtracks > 0  # a search that backtracked
        results.append((res, [p.detach().clone() for p in policy.actor_parameters()]))
    (r0, p0), (r1, p1) = results
    assert r0 == r1 and all(torch.equal(a, b) for a, b in zip(p0, p1))
    assert calls.count(False) == calls.count(True) + 1
