"""Action-distribution families against torch.distributions and hand-written formulas."""

from __future__ import annotations

import math

import gymnasium as gym
import numpy as np
import pytest
import torch
from torch.distributions import Categorical as TorchCategorical
from torch.distributions import Independent, Normal, kl_divergence

from nprl.distributions import Categorical, DiagGaussian, family_for

f64 = torch.float64


def test_categorical_output_fisher_is_diag_p_minus_ppT() -> None:
    fam = Categorical(4)
    logits = torch.randn(5, 4, dtype=f64)
    u = torch.randn(5, 4, dtype=f64)
    p = torch.softmax(logits, -1)
    for b in range(5):
        M = torch.diag(p[b]) - torch.outer(p[b], p[b])
        torch.testing.assert_close(fam.fisher_mv(logits, u)[b], M @ u[b], rtol=1e-12, atol=1e-14)


def test_categorical_output_fisher_equals_enumerated_score_covariance() -> None:
    """Σ_a p_a s_a s_aᵀ with s_a = ∂ log softmax(z)_a / ∂z, by exact enumeration."""
    fam = Categorical(3)
    z = torch.randn(3, dtype=f64, requires_grad=True)
    scores = [torch.autograd.grad(torch.log_softmax(z, -1)[a], z)[0] for a in range(3)]
    p = torch.softmax(z, -1).detach()
    M = sum(p[a] * torch.outer(scores[a], scores[a]) for a in range(3))
    got = torch.stack([fam.fisher_mv(z.detach()[None], torch.eye(3, dtype=f64)[i][None])[0]
                       for i in range(3)], dim=1)
    torch.testing.assert_close(got, M, rtol=1e-12, atol=1e-14)


@pytest.mark.parametrize("family", [Categorical(4), DiagGaussian(3)], ids=["cat", "gauss"])
def test_fisher_sqrt_squares_to_the_output_fisher(family: Categorical | DiagGaussian) -> None:
    params = torch.randn(6, family.param_dim, dtype=f64)
    L = family.fisher_sqrt(params)
    eye = torch.eye(family.param_dim, dtype=f64)
    for b in range(6):
        M = torch.stack([family.fisher_mv(params[b : b + 1], eye[i : i + 1])[0]
                         for i in range(family.param_dim)], dim=1)
        torch.testing.assert_close(L[b] @ L[b].T, M, rtol=1e-12, atol=1e-14)


def test_gaussian_output_fisher_is_inverse_variance_and_two() -> None:
    fam = DiagGaussian(2)
    params = torch.tensor([[0.3, -1.0, math.log(0.5), math.log(2.0)]], dtype=f64)
    u = torch.ones(1, 4, dtype=f64)
    torch.testing.assert_close(fam.fisher_mv(params, u)[0],
                               torch.tensor([4.0, 0.25, 2.0, 2.0], dtype=f64))


def test_gaussian_output_fisher_is_the_kl_hessian() -> None:
    """Hessian of KL(N(old) ‖ N(new)) in the new [mean, log_std] at new = old, taken by
    autograd through torch.distributions (independent of nprl's formulas)."""
    fam = DiagGaussian(2)
    old = torch.tensor([0.2, -0.4, -0.3, 0.5], dtype=f64)

    def kl(new: torch.Tensor) -> torch.Tensor:
        p = Independent(Normal(old[:2], old[2:].exp()), 1)
        q = Independent(Normal(new[:2], new[2:].exp()), 1)
        return kl_divergence(p, q)

    H = torch.autograd.functional.hessian(kl, old.clone())
    eye = torch.eye(4, dtype=f64)
    M = torch.stack([fam.fisher_mv(old[None], eye[i][None])[0] for i in range(4)], dim=1)
    torch.testing.assert_close(M, H, rtol=1e-10, atol=1e-12)


def test_categorical_kl_matches_torch() -> None:
    fam = Categorical(5)
    old, new = torch.randn(7, 5, dtype=f64), torch.randn(7, 5, dtype=f64)
    ref = kl_divergence(TorchCategorical(logits=old), TorchCategorical(logits=new))
    torch.testing.assert_close(fam.kl(old, new), ref, rtol=1e-12, atol=1e-14)
    assert torch.all(fam.kl(old, old).abs() < 1e-15)


def test_gaussian_kl_matches_torch() -> None:
    fam = DiagGaussian(3)
    old, new = torch.randn(7, 6, dtype=f64), torch.randn(7, 6, dtype=f64)
    ref = kl_divergence(fam.dist(old), Independent(Normal(new[:, :3], new[:, 3:].exp()), 1))
    torch.testing.assert_close(fam.kl(old, new), ref, rtol=1e-12, atol=1e-14)
    assert torch.all(fam.kl(old, old).abs() < 1e-14)


@pytest.mark.parametrize("family", [Categorical(4), DiagGaussian(3)], ids=["cat", "gauss"])
def test_log_prob_and_entropy_match_torch(family: Categorical | DiagGaussian) -> None:
    params = torch.randn(8, family.param_dim, dtype=f64)
    dist = family.dist(params)
    actions = dist.sample()
    torch.testing.assert_close(family.log_prob(params, actions), dist.log_prob(actions),
                               rtol=1e-12, atol=1e-12)
    torch.testing.assert_close(family.entropy(params), dist.entropy(), rtol=1e-12, atol=1e-12)


def test_family_for_spaces() -> None:
    assert isinstance(family_for(gym.spaces.Discrete(3)), Categorical)
    fam = family_for(gym.spaces.Box(-1, 1, (2,), dtype=np.float32))
    assert isinstance(fam, DiagGaussian) and fam.param_dim == 4
    with pytest.raises(ValueError, match="unsupported action space"):
        family_for(gym.spaces.Box(-1, 1, (2, 2), dtype=np.float32))
