"""The critic's hand-written least-squares gradient against autograd, and the fit that
uses it against the same fit through autograd."""

import copy

import pytest
import torch
from torch import nn

from nprl.agents.critic import CriticTrainer
from nprl.agents.mlp_grad import ManualMLP
from nprl.policies import ActorCritic

ACTS = [nn.Tanh, nn.ReLU, nn.ELU, nn.Sigmoid, lambda: nn.LeakyReLU(0.1), nn.Identity]


def net(sizes, act, bias=True):
    layers = []
    for i, (a, b) in enumerate(zip(sizes[:-1], sizes[1:])):
        layers.append(nn.Linear(a, b, bias=bias))
        if i < len(sizes) - 2:
            layers.append(act())
    return nn.Sequential(*layers).double()


@pytest.mark.parametrize("act", ACTS)
@pytest.mark.parametrize("sizes", [(3, 1), (4, 16, 1), (5, 32, 8, 1)])
@pytest.mark.parametrize("bias", [True, False])
def test_gradient_matches_autograd(act, sizes, bias):
    torch.manual_seed(0)
    model = net(sizes, act, bias)
    params = list(model.parameters())
    x, y = torch.randn(37, sizes[0], dtype=torch.float64), torch.randn(37, dtype=torch.float64)
    reference = (model(x).squeeze(-1) - y).pow(2).mean()
    expected = torch.autograd.grad(reference, params)
    mlp = ManualMLP.build(model, params)
    assert mlp is not None and mlp.applies()
    loss = mlp.mse_and_grad(x, y)
    torch.testing.assert_close(loss, reference.detach(), rtol=1e-12, atol=1e-14)
    for p, g in zip(params, expected):
        torch.testing.assert_close(p.grad, g, rtol=1e-10, atol=1e-12)


def test_declines_what_it_cannot_do():
    model = net((4, 8, 1), nn.Tanh)
    params = list(model.parameters())
    assert ManualMLP.build(nn.Sequential(nn.Linear(4, 8), nn.GELU(), nn.Linear(8, 1)),
                               None) is None  # unsupported activation
    assert ManualMLP.build(model, params[::-1]) is None  # parameters in another order
    mlp = ManualMLP.build(model, params)
    handle = params[0].register_hook(lambda g: g)
    assert not mlp.applies()  # a hook must run: autograd's turn
    handle.remove()
    assert mlp.applies()


def policy_and_data():
    import gymnasium as gym

    torch.manual_seed(1)
    space = gym.spaces.Box(-1.0, 1.0, (4,))
    policy = ActorCritic(space, gym.spaces.Discrete(2)).double()
    obs = torch.randn(64 * 4, 4, dtype=torch.float64)
    returns = obs.sum(1).sin() * 10
    return policy, obs, returns


def test_fit_by_hand_equals_fit_through_autograd():
    policy, obs, returns = policy_and_data()
    twin = copy.deepcopy(policy)
    fast = CriticTrainer(policy, 3e-3, epochs=5, minibatches=4)
    slow = CriticTrainer(twin, 3e-3, epochs=5, minibatches=4)
    assert fast._mlp is not None
    slow._mlp = None  # the autograd path
    torch.manual_seed(7)
    loss_fast = fast.fit(obs, returns, (64, 4))
    torch.manual_seed(7)
    loss_slow = slow.fit(obs, returns, (64, 4))
    assert loss_fast == pytest.approx(loss_slow, rel=1e-10)
    for a, b in zip(policy.critic_parameters(), twin.critic_parameters()):
        torch.testing.assert_close(a, b, rtol=1e-9, atol=1e-11)
    assert loss_fast < (returns - returns.mean()).pow(2).mean()  # it did regress


def test_non_finite_minibatch_is_skipped_by_hand_too():
    policy, obs, returns = policy_and_data()
    returns[5] = float("nan")
    critic = CriticTrainer(policy, 3e-3, epochs=2, minibatches=4)
    critic.fit(obs, returns, (64, 4))
    assert critic.skipped == 2  # the minibatch holding row 5, in each epoch
    assert all(bool(torch.isfinite(p).all()) for p in policy.critic_parameters())

