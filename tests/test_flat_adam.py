"""FlatAdam against torch.optim.Adam: the same trajectory, the same state_dict layout, and
the agents' use of it (the autograd fallback accumulates into its buffer)."""

from __future__ import annotations

import copy

import gymnasium as gym
import numpy as np
import pytest
import torch

from nprl.agents.configs import PPOConfig
from nprl.agents.flat_adam import FlatAdam
from nprl.agents.ppo import PPO
from nprl.policies import ActorCritic

f64 = torch.float64
SHAPES = [(4, 3), (4,), (2, 4), (2,), (1,)]


def params_and_grads(steps: int, seed: int = 0):
    """Fresh parameters (float64) and a sequence of gradients for them, as flat vectors."""
    g = torch.Generator().manual_seed(seed)
    ps = [torch.randn(s, generator=g, dtype=f64, requires_grad=True) for s in SHAPES]
    n = sum(p.numel() for p in ps)
    # gradients of varied scale per coordinate (Adam's per-coordinate normalisation)
    grads = [torch.randn(n, generator=g, dtype=f64) * torch.logspace(-3, 1, n, dtype=f64)
             for _ in range(steps)]
    return ps, grads


def run_torch(ps, grads, lr_at=lambda t: 1e-2, opt=None, **kw):
    opt = opt or torch.optim.Adam(ps, lr=lr_at(0), foreach=False, **kw)
    for t, flat in enumerate(grads):
        opt.param_groups[0]["lr"] = lr_at(t)
        for p, piece in zip(ps, flat.split([p.numel() for p in ps])):
            p.grad = piece.view_as(p).clone()
        opt.step()
    return opt


def run_flat(ps, grads, lr_at=lambda t: 1e-2, opt=None, **kw):
    buf = torch.zeros(sum(p.numel() for p in ps), dtype=f64)
    opt = opt or FlatAdam(ps, buf, lr=lr_at(0), **kw)
    for t, flat in enumerate(grads):
        opt.param_groups[0]["lr"] = lr_at(t)
        opt.flat_grad.copy_(flat)
        for p, g in zip(ps, opt.grads):
            p.grad = g  # what the hand-written backward passes do (attach)
        opt.step()
    return opt


@pytest.mark.parametrize("eps", [1e-8, 1e-5])
def test_trajectory_equals_torch_adam(eps: float) -> None:
    decay = lambda t: 1e-2 * (1 - t / 40)  # noqa: E731 (PPO's linear decay, written per step)
    ps_t, grads = params_and_grads(30)
    ps_f = [p.detach().clone().requires_grad_() for p in ps_t]
    ref, got = run_torch(ps_t, grads, decay, eps=eps), run_flat(ps_f, grads, decay, eps=eps)
    for a, b in zip(ps_f, ps_t):
        torch.testing.assert_close(a, b, rtol=1e-13, atol=1e-15)
    ref_state, got_state = ref.state_dict(), got.state_dict()
    for i in range(len(SHAPES)):
        for key in ("exp_avg", "exp_avg_sq", "step"):
            torch.testing.assert_close(got_state["state"][i][key].to(f64),
                                       ref_state["state"][i][key].to(f64), rtol=1e-13, atol=0)
    assert got_state["param_groups"][0]["params"] == ref_state["param_groups"][0]["params"]
    # and the trajectory moved: a wrong bias correction would still pass a 0-step test
    moved = max(float((a - b).detach().abs().max()) for a, b in zip(ps_f, params_and_grads(0)[0]))
    assert moved > 0.05  # ~lr per step, random signs


def test_state_dicts_load_across_both_ways() -> None:
    ps_t, grads = params_and_grads(20, seed=1)
    ps_f = [p.detach().clone().requires_grad_() for p in ps_t]
    torch_opt = run_torch(ps_t, grads[:10])
    flat_opt = run_flat(ps_f, grads[:10])
    # swap the optimizers' states mid-run: both continue as the uninterrupted run does
    flat2 = FlatAdam(ps_f, torch.zeros_like(flat_opt.flat_grad), lr=1e-2)
    flat2.load_state_dict(copy.deepcopy(torch_opt.state_dict()))
    torch2 = torch.optim.Adam(ps_t, lr=1e-2, foreach=False)
    torch2.load_state_dict(copy.deepcopy(flat_opt.state_dict()))
    run_torch(ps_t, grads[10:], opt=torch2)
    run_flat(ps_f, grads[10:], opt=flat2)
    ps_ref, _ = params_and_grads(0, seed=1)
    run_torch(ps_ref, grads)
    for a, b, r in zip(ps_f, ps_t, ps_ref):
        torch.testing.assert_close(a, r, rtol=1e-13, atol=1e-15)
        torch.testing.assert_close(b, r, rtol=1e-13, atol=1e-15)
    assert flat2.steps == 20
    bad = torch_opt.state_dict()
    bad["param_groups"][0]["params"] = bad["param_groups"][0]["params"][:-1]
    with pytest.raises(ValueError, match="expected 5"):
        flat2.load_state_dict(bad)


def test_a_gradient_autograd_put_elsewhere_is_copied_in() -> None:
    """After ``zero_grad`` autograd accumulates into the buffer's slices; a ``.grad``
    replaced by another tensor is copied in, a missing one counts as zero."""
    ps_t, grads = params_and_grads(1, seed=2)
    ps_f = [p.detach().clone().requires_grad_() for p in ps_t]
    opt = FlatAdam(ps_f, torch.zeros(sum(p.numel() for p in ps_f), dtype=f64), lr=1e-2)
    opt.zero_grad()
    loss = sum((p * g.view_as(p)).sum() for p, g in
               zip(ps_f, grads[0].split([p.numel() for p in ps_f])))
    loss.backward()
    assert all(p.grad is g for p, g in zip(ps_f, opt.grads))  # accumulated in place
    torch.testing.assert_close(opt.flat_grad, grads[0])
    ps_f[0].grad = ps_f[0].grad.clone()  # replaced: copied back in by step
    ps_f[1].grad = None  # missing: zero (torch's Adam would skip the tensor instead)
    before = ps_f[1].detach().clone()
    opt.step()
    torch.testing.assert_close(ps_f[1].detach(), before)  # zero gradient, zero moments
    others = [ps_t[0], *ps_t[2:]]  # torch's Adam on the tensors that had a gradient
    run_torch(others, [torch.cat([grads[0][:12], grads[0][16:]])])
    for a, b in zip([ps_f[0], *ps_f[2:]], others):
        torch.testing.assert_close(a, b, rtol=1e-13, atol=1e-15)


def test_ppo_uses_it_on_the_manual_path_and_its_fallback() -> None:
    space = gym.spaces.Box(-1, 1, (3,), np.float32)
    policy = ActorCritic(space, gym.spaces.Discrete(2)).double()
    agent = PPO(policy, PPOConfig())
    assert isinstance(agent.optimizer, FlatAdam)
    assert agent.optimizer.flat_grad is agent._manual.flat_grad

    class Custom(ActorCritic):
        def value(self, obs):
            return super().value(obs) + 1.0

    assert isinstance(PPO(Custom(space, gym.spaces.Discrete(2)), PPOConfig()).optimizer,
                      torch.optim.Adam)
