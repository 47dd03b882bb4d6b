"""Running statistics and the normalisers built on them, against numpy."""

from __future__ import annotations

import numpy as np
import torch

from nprl.normalize import ObsNormalizer, RewardScaler, RunningMeanStd


def test_running_moments_match_numpy_over_all_batches():
    rng = np.random.default_rng(0)
    batches = [rng.normal(3.0, 2.0, size=(n, 2)) for n in (5, 17, 1, 40)]
    rms = RunningMeanStd((2,))
    for b in batches:
        rms.update(torch.as_tensor(b))
    allx = np.concatenate(batches)
    np.testing.assert_allclose(rms.mean.numpy(), allx.mean(0), rtol=1e-12)
    np.testing.assert_allclose(rms.var.numpy(), allx.var(0), rtol=1e-12)
    assert rms.count == len(allx)


def test_obs_normalizer_by_hand_and_frozen_snapshot():
    norm = ObsNormalizer((2,), clip=3.0)
    obs = torch.tensor([[0.0, 10.0], [4.0, 30.0]])
    assert torch.equal(norm(obs), obs)  # no statistics yet: identity
    norm.update(obs)  # mean (2, 20), var (4, 100)
    x = torch.tensor([[2.0, 20.0], [6.0, 70.0]])
    want = torch.tensor([[0.0, 0.0], [4.0 / float(np.sqrt(4 + 1e-8)), 3.0]])  # 50/10 → 3
    torch.testing.assert_close(norm(x), want)
    frozen = norm.frozen(torch.float32)
    assert torch.equal(frozen(x), norm(x))
    norm.update(torch.full((4, 2), 100.0))  # later statistics do not leak into the snapshot
    assert torch.equal(frozen(x), want) and not torch.equal(norm(x), want)


def test_reward_scaler_divides_by_the_return_std():
    scaler = RewardScaler(gamma=0.99, clip=10.0)
    scaler.update(torch.tensor([1.0, 3.0, 5.0, 7.0], dtype=torch.float64))  # var 5
    torch.testing.assert_close(scaler(torch.tensor([2.0, 100.0])),
                               torch.tensor([2.0 / float(np.sqrt(5 + 1e-8)), 10.0]))
