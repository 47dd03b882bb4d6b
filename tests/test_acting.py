"""acting_fn: bit-identical to dist_params where it applies, dist_params itself elsewhere."""

from __future__ import annotations

import gymnasium as gym
import numpy as np
import pytest
import torch
from torch import nn

from nprl.acting import acting_fn
from nprl.policies import ActorCritic

OBS = gym.spaces.Box(-1, 1, (5,), np.float32)
SPACES = {"categorical": gym.spaces.Discrete(4),
          "gaussian": gym.spaces.Box(-1, 1, (2,), np.float32)}


@pytest.mark.parametrize("action", SPACES)
@pytest.mark.parametrize("activation", ["tanh", "relu", "elu"])
@pytest.mark.parametrize("rows", [7, 1024])  # tanh: torch.tanh, then nprl's formula
def test_bit_identical_to_dist_params(action, activation, rows):
    torch.manual_seed(0)
    policy = ActorCritic(OBS, SPACES[action], (16, 8), activation, init_log_std=-0.3)
    for p in policy.parameters():  # non-trivial biases and log-std
        p.data.add_(torch.randn_like(p) * 0.3)
    fast = acting_fn(policy)
    assert fast is not policy.dist_params  # the direct path applies
    obs = torch.randn(rows, 5)
    obs_before = obs.clone()
    with torch.inference_mode():
        want, got = policy.dist_params(obs), fast(obs)
    assert torch.equal(got, want)
    # It reads the parameters in place: an optimiser step is seen by the same function.
    with torch.no_grad():
        policy.actor[0].weight.mul_(2.0)
        assert torch.equal(fast(obs), policy.dist_params(obs))
    assert torch.equal(obs, obs_before)  # in-place activations never touch the input


def test_falls_back_where_it_would_differ():
    torch.manual_seed(0)
    policy = ActorCritic(OBS, SPACES["categorical"])
    calls = []
    handle = policy.actor[0].register_forward_hook(lambda *a: calls.append(1))
    assert acting_fn(policy) == policy.dist_params  # a hook must run: module path
    handle.remove()
    policy.actor = nn.Sequential(nn.Tanh(), *policy.actor)  # acts on the input first
    assert acting_fn(policy) == policy.dist_params

    class Custom(ActorCritic):
        def dist_params(self, obs):
            return super().dist_params(obs) * 2

    custom = Custom(OBS, SPACES["categorical"])
    assert acting_fn(custom) == custom.dist_params
