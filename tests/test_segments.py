"""The closed-form segment sums against the per-step loops they replace."""

from __future__ import annotations

import pytest
import torch

from nprl.segments import discounted_returns, previous_end


def _loop(rewards, ended, gamma, carry):
    """The reference: D_t = r_t + γ D_{t−1}, restarted after every end."""
    d, out = carry.clone(), []
    for t in range(rewards.shape[0]):
        d = d * gamma + rewards[t]
        out.append(d)
        d = d.masked_fill(ended[t], 0.0)
    return torch.stack(out), d


@pytest.mark.parametrize("gamma,T", [(0.99, 256), (0.9, 300), (0.1, 400), (0.0, 20), (1.0, 50)])
def test_discounted_returns_match_the_loop(gamma, T):
    g = torch.Generator().manual_seed(0)
    rewards = torch.randn(T, 5, generator=g, dtype=torch.float64) * 10
    ended = torch.rand(T, 5, generator=g) < 0.05
    ended[:, 0] = False  # one env whose episode spans the rollout (and, at γ=0.1, 3 chunks)
    ended[-1, 1] = True  # one that ends on the last step: the carry is 0
    carry = torch.randn(5, generator=g, dtype=torch.float64) * 50
    got, got_carry = discounted_returns(rewards.float(), ended, gamma, carry)
    want, want_carry = _loop(rewards.float().double(), ended, gamma, carry)
    assert got.dtype == torch.float64
    torch.testing.assert_close(got, want, rtol=1e-12, atol=1e-9)
    torch.testing.assert_close(got_carry, want_carry, rtol=1e-12, atol=1e-9)
    assert got_carry[1] == 0.0


def test_discounted_returns_by_hand():
    # γ = 0.5, one env: rewards 1, 2, 4 with an end after step 1, carry 8.
    rewards = torch.tensor([[1.0], [2.0], [4.0]])
    ended = torch.tensor([[False], [True], [False]])
    d, carry = discounted_returns(rewards, ended, 0.5, torch.tensor([8.0]))
    assert d.squeeze(1).tolist() == [1 + 4, 2 + 0.5 * 5, 4]
    assert carry.tolist() == [4.0]


def test_previous_end():
    ended = torch.tensor([[False, True], [True, False], [False, False], [True, True]])
    assert previous_end(ended).tolist() == [[-1, -1], [-1, 0], [1, 0], [1, 0]]
