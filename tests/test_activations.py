"""nprl's tanh (2·σ(2z) − 1 on the CPU) against float64 torch.tanh, its derivatives against
1 − tanh², and every path that computes it against the others, bit for bit. The formula
applies from ``SMALL`` elements up, so the tensors here are at least that large."""

from __future__ import annotations

import gymnasium as gym
import numpy as np
import torch
from torch import nn

from nprl.activations import SMALL, Tanh, tanh, tanh_
from nprl.curvature.linearise import activation_and_derivative
from nprl.policies import ActorCritic

Z = torch.cat([torch.linspace(-30, 30, 600_001), torch.logspace(-30, 1, 200)])


def test_values_match_float64_tanh():
    ref = torch.tanh(Z.double())
    err = (tanh(Z).double() - ref).abs()
    assert err.max() <= 2.5e-7, float(err.max())
    assert torch.equal(tanh(Z.double()), ref)  # float64: torch.tanh itself
    # A wrong formula (σ(z)·2 − 1 = tanh(z/2)) is off by up to ~0.4.
    assert (torch.sigmoid(Z).mul(2).sub(1).double() - ref).abs().max() > 0.3
    special = torch.tensor([0.0, float("inf"), -float("inf"), float("nan"), 1e-30, -1e-30])
    got = tanh(special)
    assert got[:3].tolist() == [0.0, 1.0, -1.0] and got[3].isnan()
    assert got[4:].abs().max() <= 1e-7  # tiny inputs: tiny outputs, absolute error only
    assert tanh(Z).abs().max() == 1.0  # never outside [−1, 1]
    small = Z[::200][: SMALL - 1]  # under SMALL elements: torch.tanh itself, bit for bit
    assert torch.equal(tanh(small), torch.tanh(small))
    assert not torch.equal(tanh(Z), torch.tanh(Z))  # the formula is in use above SMALL


def wide(f):
    """z [n] ↦ f applied to z repeated over SMALL rows, averaged back to [n]: a small
    input for jacrev that still takes the formula's path."""
    return lambda z: f(z.expand(SMALL, *z.shape)).mean(0)


def test_in_place_grad_and_no_grad_paths_agree_bit_for_bit():
    z = torch.randn(SMALL // 7 + 1, 7) * 3
    with torch.no_grad():
        plain = tanh(z)
    leaf = z.clone().requires_grad_()
    assert torch.equal(tanh(leaf).detach(), plain)  # the autograd branch
    assert torch.equal(tanh_(z.clone()), plain)
    assert torch.equal(Tanh()(z), plain) and isinstance(Tanh(), nn.Tanh)
    y, d = activation_and_derivative(Tanh(), z)
    assert torch.equal(y, plain) and torch.allclose(d, 1 - plain * plain, rtol=0, atol=2.5e-7)


def test_derivatives():
    z = (torch.randn(SMALL) * 2).requires_grad_()
    (g,) = torch.autograd.grad(tanh(z).sum(), z, create_graph=True)
    t = torch.tanh(z.detach().double())
    assert torch.allclose(g.double(), 1 - t**2, rtol=0, atol=1e-6)
    (h,) = torch.autograd.grad(g.sum(), z)  # d²/dz² tanh = −2 tanh (1 − tanh²)
    assert torch.allclose(h.double(), -2 * t * (1 - t * t), rtol=0, atol=2e-6)
    # torch.func: per-sample jacobians under vmap (what the dense Fisher references use)
    x = torch.randn(6, 3)
    jac = torch.func.vmap(torch.func.jacrev(wide(tanh)))(x)
    want = torch.diag_embed(1 - torch.tanh(x.double()) ** 2)
    assert torch.allclose(jac.double(), want, rtol=0, atol=1e-6)


def test_policy_networks_use_it_and_match_nn_tanh():
    torch.manual_seed(0)
    space = gym.spaces.Box(-1, 1, (4,), np.float32)
    policy = ActorCritic(space, gym.spaces.Discrete(3), (32, 32))
    assert sum(type(m) is Tanh for m in policy.actor) == 2
    ref = nn.Sequential(*[nn.Tanh() if type(m) is Tanh else m for m in policy.actor])
    obs = torch.randn(500, 4)
    with torch.no_grad():
        diff = (policy.dist_params(obs) - ref(obs)).abs().max()
    assert diff <= 1e-6, float(diff)  # float32 round-off, the same network
