"""The worked examples of the two seed texts (shared/seeds), checked with nprl's
machinery where it fits: a tiny "policy" whose parameters ARE the distribution's
parameters (logits, log-odds, mean), fed to DenseFisher / FisherOperator / CG.

One correction to the lesson text: it claims the finite η = 1 natural step lands on
the same distribution in the log-odds and the probability parameterisations. That holds
only to first order (the natural *directions* map through the Jacobian); the finite steps
end at p = σ(2) ≈ 0.881 and at p = 1.0 respectively, which is what is tested here.
"""

from __future__ import annotations

import math
from collections.abc import Callable

import pytest
import torch
from torch import Tensor, nn
from torch.distributions import MultivariateNormal, kl_divergence

from nprl.curvature import DenseFisher, FisherOperator, conjugate_gradient
from nprl.distributions import Categorical, DiagGaussian

f64 = torch.float64
OBS = torch.zeros(1, 1, dtype=f64)  # the "observation" of an unconditional model


class ParamPolicy(nn.Module):
    """A policy-like module: distribution parameters = ``to_params(theta)`` for every
    observation; ``theta`` is the only parameter the Fisher is taken over."""

    def __init__(self, family: Categorical | DiagGaussian, theta: list[float],
                 to_params: Callable[[Tensor], Tensor]) -> None:
        super().__init__()
        self.family = family
        self.theta = nn.Parameter(torch.tensor(theta, dtype=f64))
        self.to_params = to_params

    def actor_parameters(self) -> list[nn.Parameter]:
        return [self.theta]

    def dist_params(self, obs: Tensor) -> Tensor:
        return self.to_params(self.theta).expand(obs.shape[0], -1)

    def forward(self, obs: Tensor) -> Tensor:
        return self.dist_params(obs)


def zero_first(theta: Tensor) -> Tensor:
    """Logits [0, θ...]: the last K−1 logits are the free natural parameters."""
    return torch.cat([torch.zeros(1, dtype=theta.dtype), theta])


def bernoulli_log_odds(theta: float) -> ParamPolicy:
    """p(y=1) = σ(θ) as a 2-way softmax over logits [0, θ]."""
    return ParamPolicy(Categorical(2), [theta], zero_first)


def bernoulli_probability(p: float) -> ParamPolicy:
    """The same model parameterised by p = σ(θ) itself."""
    return ParamPolicy(Categorical(2), [p], lambda t: zero_first(torch.logit(t)))


def grad(fn: Callable[[Tensor], Tensor], theta: Tensor) -> Tensor:
    x = theta.detach().clone().requires_grad_(True)
    (g,) = torch.autograd.grad(fn(x), x)
    return g


def nll_y1_log_odds(t: Tensor) -> Tensor:
    """L(θ) = −log σ(θ): one observation y = 1."""
    return -torch.nn.functional.logsigmoid(t).sum()


# ---------------------------------------------------------------- Example 1: Bernoulli


def test_bernoulli_natural_step_from_zero_goes_to_two() -> None:
    policy = bernoulli_log_odds(0.0)
    F = DenseFisher(policy, OBS)
    assert float(F.matrix) == pytest.approx(0.25, abs=1e-15)  # σ(0)(1 − σ(0))
    g = grad(nll_y1_log_odds, policy.theta)
    assert float(g) == pytest.approx(-0.5, abs=1e-15)  # σ(0) − 1
    eta = 1.0
    natural = F.solve(g)
    assert float(natural) == pytest.approx(-2.0, abs=1e-12)
    op = FisherOperator(policy, OBS)
    assert float(op.solve(g)) == pytest.approx(-2.0, abs=1e-12)

    theta_ng = 0.0 - eta * float(natural)
    theta_sgd = 0.0 - eta * float(g)
    assert theta_ng == pytest.approx(2.0) and theta_sgd == pytest.approx(0.5)
    assert 1 / (1 + math.exp(-theta_ng)) == pytest.approx(0.881, abs=5e-4)
    assert 1 / (1 + math.exp(-theta_sgd)) == pytest.approx(0.622, abs=5e-4)


@pytest.mark.parametrize("theta", [-2.0, -0.3, 0.0, 1.5])
@pytest.mark.parametrize("y", [0.0, 1.0])
def test_bernoulli_natural_gradient_formula(theta: float, y: float) -> None:
    """∇̃L = (σ(θ) − y) / (σ(θ)(1 − σ(θ))) for the cross-entropy loss."""
    policy = bernoulli_log_odds(theta)

    def loss(t: Tensor) -> Tensor:
        return torch.nn.functional.binary_cross_entropy_with_logits(
            t, torch.tensor([y], dtype=f64), reduction="sum")

    s = 1 / (1 + math.exp(-theta))
    got = DenseFisher(policy, OBS).solve(grad(loss, policy.theta))
    assert float(got) == pytest.approx((s - y) / (s * (1 - s)), rel=1e-10)


# ---------------------------------------------------------------- Example 2: Gaussian


def test_bivariate_gaussian_natural_direction_is_sigma_times_gradient() -> None:
    """Σ = [[2, 1], [1, 2]] (full covariance: beyond nprl's diagonal family, so the
    Fisher in μ is taken as the Hessian of KL(N(μ₀, Σ) ‖ N(μ, Σ)) by autograd, and the
    system solved with nprl's conjugate gradient)."""
    Sigma = torch.tensor([[2.0, 1.0], [1.0, 2.0]], dtype=f64)
    mu0, y = torch.zeros(2, dtype=f64), torch.tensor([1.0, 2.0], dtype=f64)

    def kl(mu: Tensor) -> Tensor:
        return kl_divergence(MultivariateNormal(mu0, Sigma), MultivariateNormal(mu, Sigma))

    F = torch.autograd.functional.hessian(kl, mu0.clone())
    torch.testing.assert_close(F, torch.tensor([[2.0, -1.0], [-1.0, 2.0]], dtype=f64) / 3)
    g = grad(lambda m: 0.5 * (m - y).pow(2).sum(), mu0)
    torch.testing.assert_close(g, torch.tensor([-1.0, -2.0], dtype=f64))
    res = conjugate_gradient(lambda v: F @ v, g, iters=10, tol=1e-14)
    assert res.iters <= 2
    torch.testing.assert_close(res.x, torch.tensor([-4.0, -5.0], dtype=f64))


def test_mean_field_gaussian_natural_gradient_scales_by_variance() -> None:
    """Diagonal Gaussian, Fisher in μ = diag(1/σ²) (nprl's DiagGaussian output Fisher):
    the natural gradient in μ is σ² ∇μ L."""
    log_std = torch.tensor([math.log(0.5), math.log(3.0)], dtype=f64)
    policy = ParamPolicy(DiagGaussian(2), [0.0, 0.0], lambda m: torch.cat([m, log_std]))
    F = DenseFisher(policy, OBS)
    torch.testing.assert_close(F.matrix, torch.diag(torch.tensor([4.0, 1 / 9], dtype=f64)))
    g = torch.tensor([1.0, -2.0], dtype=f64)
    torch.testing.assert_close(F.solve(g), torch.exp(2 * log_std) * g)


def test_gaussian_fisher_in_sigma_is_two_over_sigma_squared() -> None:
    """The seed's I(μ, σ) = diag(1/σ², 2/σ²): nprl's log-std Fisher 2, pulled back
    through log σ ↦ σ (Jacobian 1/σ)."""
    sigma = 0.7
    policy = ParamPolicy(DiagGaussian(1), [0.3, sigma],
                         lambda t: torch.stack([t[0], torch.log(t[1])]))
    torch.testing.assert_close(
        DenseFisher(policy, OBS).matrix,
        torch.diag(torch.tensor([1 / sigma**2, 2 / sigma**2], dtype=f64)))


# ---------------------------------------------------------------- softmax Fisher


def test_softmax_fisher_has_rank_k_minus_one_and_damped_solve_is_finite() -> None:
    logits = [0.3, -1.2, 0.8, 0.0]
    K = len(logits)
    policy = ParamPolicy(Categorical(K), logits, lambda t: t)
    F = DenseFisher(policy, OBS).matrix
    p = torch.softmax(torch.tensor(logits, dtype=f64), 0)
    torch.testing.assert_close(F, torch.diag(p) - torch.outer(p, p))
    assert int(torch.linalg.matrix_rank(F, hermitian=True)) == K - 1
    assert float((F @ torch.ones(K, dtype=f64)).abs().max()) < 1e-15  # shifting all logits

    g = torch.tensor([1.0, -0.5, 0.25, 2.0], dtype=f64)
    lam = 0.1
    A = F + lam * torch.eye(K, dtype=f64)
    for x in (DenseFisher(policy, OBS, damping=lam).solve(g),
              FisherOperator(policy, OBS, damping=lam, cg_iters=50, cg_tol=1e-14).solve(g)):
        assert torch.isfinite(x).all()
        torch.testing.assert_close(A @ x, g, rtol=1e-10, atol=1e-12)
    # Undamped: the pseudo-inverse (finite), which solves F x = g projected on range(F).
    x = DenseFisher(policy, OBS, damping=0.0).solve(g)
    assert torch.isfinite(x).all()
    torch.testing.assert_close(F @ x, g - g.mean(), rtol=1e-8, atol=1e-10)


# ---------------------------------------------------------------- exponential family


@pytest.mark.parametrize("theta", [-1.5, 0.0, 0.7])
def test_bernoulli_natural_gradient_in_natural_params_is_gradient_in_mean_params(
        theta: float) -> None:
    """F(λ)⁻¹ ∇λ L = ∇μ L with λ the log-odds and μ = σ(λ), for any smooth L(μ)."""

    def L_of_mu(mu: Tensor) -> Tensor:
        return ((mu - 0.9) ** 2 + mu**3).sum()

    policy = bernoulli_log_odds(theta)
    natural = DenseFisher(policy, OBS).solve(grad(lambda t: L_of_mu(torch.sigmoid(t)),
                                                  policy.theta))
    mu = torch.sigmoid(policy.theta.detach())
    torch.testing.assert_close(natural, grad(L_of_mu, mu), rtol=1e-10, atol=1e-12)


def test_categorical_natural_gradient_in_logits_is_gradient_in_probabilities() -> None:
    """K = 3 with logits [0, λ₁, λ₂] (λ natural), μ = (p₁, p₂) mean parameters."""

    def L_of_mu(mu: Tensor) -> Tensor:
        return 0.7 * mu[0] ** 2 - 1.3 * mu[1] + mu[0] * mu[1]

    policy = ParamPolicy(Categorical(3), [0.4, -0.9], zero_first)
    g = grad(lambda t: L_of_mu(torch.softmax(zero_first(t), 0)[1:]), policy.theta)
    natural = DenseFisher(policy, OBS).solve(g)
    mu = torch.softmax(zero_first(policy.theta.detach()), 0)[1:]
    torch.testing.assert_close(natural, grad(L_of_mu, mu), rtol=1e-10, atol=1e-12)


# ---------------------------------------------------------------- reparameterisation


def test_natural_direction_is_invariant_under_reparameterisation() -> None:
    """θ (log-odds) ↦ p = σ(θ): natural directions map through dp/dθ = σ′(θ);
    ordinary gradient directions do not; the Fisher length dᵀFd is the same."""
    theta = 0.3
    s = 1 / (1 + math.exp(-theta))
    dp_dtheta = s * (1 - s)
    log_odds, prob = bernoulli_log_odds(theta), bernoulli_probability(s)
    F_theta, F_p = DenseFisher(log_odds, OBS), DenseFisher(prob, OBS)
    assert float(F_theta.matrix) == pytest.approx(dp_dtheta, rel=1e-12)
    assert float(F_p.matrix) == pytest.approx(1 / dp_dtheta, rel=1e-12)  # 1/(p(1−p))

    g_theta = grad(nll_y1_log_odds, log_odds.theta)
    g_p = grad(lambda p: -torch.log(p).sum(), prob.theta)  # the same loss, −log p
    d_theta, d_p = F_theta.solve(g_theta), F_p.solve(g_p)
    assert float(d_p) == pytest.approx(dp_dtheta * float(d_theta), rel=1e-10)
    assert float(d_theta * F_theta.matrix * d_theta) == pytest.approx(
        float(d_p * F_p.matrix * d_p), rel=1e-10)
    # Ordinary gradients transform covariantly (g_p = g_θ / σ′), not like directions.
    assert float(g_p) == pytest.approx(float(g_theta) / dp_dtheta, rel=1e-12)
    assert abs(float(g_p) - dp_dtheta * float(g_theta)) > 1.0


def test_finite_natural_steps_agree_only_to_first_order() -> None:
    """From θ = 0 (p = 0.5), L = −log p: the η = 1 natural step gives θ = 2, p = σ(2)
    ≈ 0.881 in log-odds but p = 0.5 + 0.5 = 1.0 in p. The gap vanishes faster than η."""
    log_odds, prob = bernoulli_log_odds(0.0), bernoulli_probability(0.5)
    d_theta = float(DenseFisher(log_odds, OBS).solve(grad(nll_y1_log_odds, log_odds.theta)))
    d_p = float(DenseFisher(prob, OBS).solve(grad(lambda p: -torch.log(p).sum(), prob.theta)))
    assert d_theta == pytest.approx(-2.0) and d_p == pytest.approx(-0.5)

    def sigma(x: float) -> float:
        return 1 / (1 + math.exp(-x))

    assert sigma(0.0 - 1.0 * d_theta) == pytest.approx(0.8808, abs=1e-4)
    assert 0.5 - 1.0 * d_p == pytest.approx(1.0)
    gaps = {eta: abs(sigma(-eta * d_theta) - (0.5 - eta * d_p)) for eta in (1e-1, 1e-2, 1e-3)}
    # First-order agreement: gap/η → 0. (At θ = 0, σ'' = 0, so the gap is even cubic:
    # σ(2η) − (0.5 + 0.5η) ≈ σ'''(0)(2η)³/6 = −η³/6.)
    assert gaps[1e-2] / 1e-2 < 0.02 * gaps[1e-1] / 1e-1
    assert gaps[1e-3] / 1e-3 < 0.02 * gaps[1e-2] / 1e-2
    assert gaps[1e-3] == pytest.approx(1e-9 / 6, rel=1e-3)
    # Ordinary steps are not even first-order equivalent: in p the step is −η g_p = 2η,
    # in θ it moves p by σ′(0)·0.5η = 0.125η.
    assert sigma(0.5) == pytest.approx(0.622, abs=5e-4)
