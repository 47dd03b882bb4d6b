"""GAE against hand calculations, and truncation bootstrapping against its fixed point."""

import pytest
import torch

from nprl.batch import gae


def run(terminated=(False, False, False), truncated=(False, False, False), final=0.0):
    col = lambda xs, dt=torch.float64: torch.tensor(xs, dtype=dt).unsqueeze(1)  # noqa: E731
    final_values = col([0.0, final if truncated[1] else 0.0, 0.0])
    return gae(col([1.0, 2.0, 3.0]), col([0.5, 1.0, 1.5]), col(terminated, torch.bool),
               col(truncated, torch.bool), final_values, torch.tensor([2.0], dtype=torch.float64),
               gamma=0.9, lam=0.8)


def test_no_episode_end_matches_hand_calculation():
    # δ = r + γV' − V: 1.4, 2.35, 3.3; A_t = δ_t + γλ A_{t+1}, γλ = 0.72.
    adv, ret = run()
    assert adv[:, 0].tolist() == pytest.approx([1.4 + 0.72 * (2.35 + 0.72 * 3.3),
                                                2.35 + 0.72 * 3.3, 3.3])
    assert ret[:, 0].tolist() == pytest.approx((adv[:, 0] + torch.tensor([0.5, 1.0, 1.5],
                                                dtype=torch.float64)).tolist())


def test_termination_stops_bootstrap_and_recursion():
    adv, _ = run(terminated=(False, True, False))
    # δ1 = 2 − 1.0 (no bootstrap); A0 = 1.4 + 0.72·1.0; A2 unaffected.
    assert adv[:, 0].tolist() == pytest.approx([2.12, 1.0, 3.3])


def test_truncation_bootstraps_from_final_observation_value():
    adv, _ = run(truncated=(False, True, False), final=4.0)
    # δ1 = 2 + 0.9·4.0 − 1.0 = 4.6 (the final obs's value, not V(s2) of the next episode)
    assert adv[:, 0].tolist() == pytest.approx([1.4 + 0.72 * 4.6, 4.6, 3.3])


@pytest.mark.parametrize("bootstrap", [True, False])
def test_time_limit_with_unit_reward_has_value_one_over_one_minus_gamma(bootstrap):
    """Reward 1 forever, episodes cut by a time limit every 7 steps. A critic fitted to
    its own GAE returns converges to 1/(1−γ) only if truncation bootstraps."""
    gamma, T, N = 0.9, 70, 3
    truncated = torch.zeros(T, N, dtype=torch.bool)
    truncated[6::7] = True
    v = 0.0
    for _ in range(300):
        values = torch.full((T, N), v, dtype=torch.float64)
        final_values = torch.where(truncated, v, 0.0) if bootstrap else torch.zeros(T, N)
        _, ret = gae(torch.ones(T, N, dtype=torch.float64), values,
                     torch.zeros(T, N, dtype=torch.bool) if bootstrap else truncated,
                     torch.zeros(T, N, dtype=torch.bool) if not bootstrap else truncated,
                     final_values.double(), torch.full((N,), v, dtype=torch.float64),
                     gamma, 0.95)
        v = float(ret.mean())
    if bootstrap:
        assert v == pytest.approx(1 / (1 - gamma), rel=1e-6)
    else:
        assert v < 0.7 / (1 - gamma)  # treating the cut as terminal underestimates
