"""The curvature core against references built independently of nprl's code paths.

References: per-sample Jacobians of the actor by ``torch.autograd.functional.jacobian``
with the analytic output Fisher written out here, the score outer product by exact
enumeration of categorical actions, per-sample scores of ``torch.distributions``
log-probabilities (empirical Fisher), and the Hessian of the batch-mean
KL(π_old ‖ π_θ) (``torch.distributions.kl_divergence``) by double backprop. All in
float64, so "equal" means a relative error below 1e-8.
"""

from __future__ import annotations

import math
from collections.abc import Callable

import gymnasium as gym
import numpy as np
import pytest
import torch
from torch import Tensor, nn
from torch.distributions import Categorical as TorchCategorical
from torch.distributions import Distribution, Independent, Normal, kl_divergence

import nprl.curvature.linearise as linearise
from nprl.curvature import (
    DenseFisher,
    DiagonalFisher,
    FisherOperator,
    FixedDamping,
    LevenbergMarquardt,
    conjugate_gradient,
    kl_line_search,
    make_damping,
    natural_step,
    snapshot,
)
from nprl.policies import ActorCritic

f64 = torch.float64
OBS_DIM = 3
N_ACTIONS = 3  # categorical head
ACT_DIM = 2  # Gaussian head


# ---------------------------------------------------------------- policies and references


def make_policy(head: str, hidden: tuple[int, ...] = (5,), activation: str = "tanh",
                obs_shape: tuple[int, ...] = (OBS_DIM,)) -> ActorCritic:
    """A float64 policy at a generic point (random weights, distinct σ per dimension)."""
    if head == "cat":
        space: gym.Space = gym.spaces.Discrete(N_ACTIONS)
    else:
        space = gym.spaces.Box(-1.0, 1.0, (ACT_DIM,), dtype=np.float32)
    obs_space = gym.spaces.Box(-np.inf, np.inf, obs_shape, dtype=np.float64)
    policy = ActorCritic(obs_space, space, hidden_sizes=hidden, activation=activation).double()
    with torch.no_grad():
        for p in policy.actor_parameters():
            p.copy_(0.7 * torch.randn_like(p))
    return policy


def torch_dist(head: str, out: Tensor) -> Distribution:
    """The action distribution for network outputs, built by torch.distributions."""
    if head == "cat":
        return TorchCategorical(logits=out)
    return Independent(Normal(out[..., :ACT_DIM], out[..., ACT_DIM:].exp()), 1)


def as_function_of_theta(policy: ActorCritic, obs: Tensor) -> tuple[Callable, Tensor]:
    """(θ ↦ the policy's outputs [B, P], θ₀) with θ flat over actor_parameters()."""
    params = policy.actor_parameters()
    names = {id(p): n for n, p in policy.named_parameters()}
    keys = [names[id(p)] for p in params]
    theta0 = torch.cat([p.detach().reshape(-1) for p in params])

    def f(theta: Tensor) -> Tensor:
        chunks = theta.split([p.numel() for p in params])
        values = {k: c.view_as(p) for k, c, p in zip(keys, chunks, params)}
        return torch.func.functional_call(policy, values, (obs,))

    return f, theta0


def reference_jacobian(policy: ActorCritic, obs: Tensor) -> Tensor:
    """Per-sample Jacobians J [B, P, n] of the outputs in θ."""
    f, theta0 = as_function_of_theta(policy, obs)
    return torch.autograd.functional.jacobian(f, theta0)


def analytic_output_fisher(head: str, out: Tensor) -> Tensor:
    """M_b [B, P, P]: diag(p) − ppᵀ on logits; diag(1/σ², 2) on [mean, log_std]."""
    if head == "cat":
        p = torch.softmax(out, -1)
        return torch.diag_embed(p) - p.unsqueeze(-1) * p.unsqueeze(-2)
    inv_var = torch.exp(-2 * out[:, ACT_DIM:])
    return torch.diag_embed(torch.cat([inv_var, torch.full_like(inv_var, 2.0)], -1))


def reference_fisher(policy: ActorCritic, obs: Tensor, head: str, fisher: str = "true",
                     actions: Tensor | None = None) -> Tensor:
    """The Fisher n×n, built without nprl's curvature code."""
    if fisher == "true":
        J = reference_jacobian(policy, obs)
        with torch.no_grad():
            M = analytic_output_fisher(head, policy(obs))
        return torch.einsum("bpi,bpq,bqj->ij", J, M, J) / obs.shape[0]
    f, theta0 = as_function_of_theta(policy, obs)
    S = torch.autograd.functional.jacobian(lambda t: torch_dist(head, f(t)).log_prob(actions),
                                           theta0)  # [B, n] per-sample scores
    return S.T @ S / obs.shape[0]


def rel_err(a: Tensor, b: Tensor) -> float:
    return float(torch.linalg.norm(a - b) / torch.linalg.norm(b))


def sample_actions(policy: ActorCritic, head: str, obs: Tensor) -> Tensor:
    with torch.no_grad():
        return torch_dist(head, policy(obs)).sample()


IMPLS = ["mlp-cut", "mlp", "autograd"]


def operator(policy: ActorCritic, obs: Tensor, impl: str, monkeypatch: pytest.MonkeyPatch,
             **kw) -> FisherOperator:
    """FisherOperator through one code path: the MLP backend with per-sample output
    Jacobians cached at every hidden layer ("mlp-cut"), without ("mlp"), or autograd."""
    if impl == "mlp-cut":
        monkeypatch.setattr(linearise, "_CUT_RATIO", 1)
    elif impl == "mlp":
        monkeypatch.setattr(linearise, "_CUT_RATIO", 10**9)
    op = FisherOperator(policy, obs, backend="autograd" if impl == "autograd" else "mlp", **kw)
    assert op.backend == ("autograd" if impl == "autograd" else "mlp")
    if impl == "mlp-cut":
        assert op._lin.jacs, "no layer was cut"
    return op


# ---------------------------------------------------------------- FVP = the Fisher


@pytest.mark.parametrize("impl", IMPLS)
@pytest.mark.parametrize("fisher", ["true", "empirical"])
@pytest.mark.parametrize("hidden", [(5,), (8, 6)], ids=["small", "two-layer"])
@pytest.mark.parametrize("head", ["cat", "gauss"])
def test_fvp_equals_independent_dense_fisher(head: str, hidden: tuple[int, ...], fisher: str,
                                             impl: str, monkeypatch: pytest.MonkeyPatch) -> None:
    policy = make_policy(head, hidden)
    obs = torch.randn(24, OBS_DIM, dtype=f64)
    actions = sample_actions(policy, head, obs) if fisher == "empirical" else None
    ref = reference_fisher(policy, obs, head, fisher, actions)
    op = operator(policy, obs, impl, monkeypatch, fisher=fisher, actions=actions)
    for _ in range(3):
        v = torch.randn(ref.shape[0], dtype=f64)
        assert rel_err(op.mv(v), ref @ v) < 1e-8
        assert abs(float(op.quad(v)) - float(v @ ref @ v)) < 1e-8 * abs(float(v @ ref @ v))
    assert rel_err(op.to_dense(), ref) < 1e-8
    dense = DenseFisher(policy, obs, fisher=fisher, actions=actions)
    assert rel_err(dense.to_dense(), ref) < 1e-8


@pytest.mark.parametrize("activation", ["relu", "elu"])
@pytest.mark.parametrize("head", ["cat", "gauss"])
def test_mlp_backend_other_activations(head: str, activation: str,
                                       monkeypatch: pytest.MonkeyPatch) -> None:
    policy = make_policy(head, (6, 5), activation)
    obs = torch.randn(20, OBS_DIM, dtype=f64)
    ref = reference_fisher(policy, obs, head)
    for impl in ("mlp-cut", "mlp"):
        assert rel_err(operator(policy, obs, impl, monkeypatch).to_dense(), ref) < 1e-8


@pytest.mark.parametrize("act", [nn.LeakyReLU(0.1), nn.Sigmoid(), nn.Identity()],
                         ids=["leaky", "sigmoid", "identity"])
def test_mlp_backend_other_activation_modules(act: nn.Module,
                                              monkeypatch: pytest.MonkeyPatch) -> None:
    policy = make_policy("cat", (6, 5))
    policy.actor[1] = act
    policy.actor[3] = nn.Tanh()
    obs = torch.randn(20, OBS_DIM, dtype=f64)
    ref = reference_fisher(policy, obs, "cat")
    for impl in ("mlp-cut", "mlp"):
        assert rel_err(operator(policy, obs, impl, monkeypatch).to_dense(), ref) < 1e-8


@pytest.mark.parametrize("impl", IMPLS)
@pytest.mark.parametrize("head", ["cat", "gauss"])
def test_jvp_vjp_are_the_jacobian_and_its_adjoint(head: str, impl: str,
                                                  monkeypatch: pytest.MonkeyPatch) -> None:
    policy = make_policy(head, (7, 4))
    obs = torch.randn(10, OBS_DIM, dtype=f64)
    J = reference_jacobian(policy, obs)  # [B, P, n]
    op = operator(policy, obs, impl, monkeypatch)
    v = torch.randn(J.shape[-1], dtype=f64)
    w = torch.randn(J.shape[0], J.shape[1], dtype=f64)
    assert rel_err(op.jvp(v), J @ v) < 1e-10
    assert rel_err(op.vjp(w), torch.einsum("bp,bpn->n", w, J)) < 1e-10


def test_categorical_fisher_equals_enumerated_score_outer_product() -> None:
    """F = (1/B) Σ_b Σ_a π(a|s_b) s_ba s_baᵀ with s_ba = ∇θ log π(a|s_b), all actions."""
    policy = make_policy("cat", (6, 5))
    obs = torch.randn(16, OBS_DIM, dtype=f64)
    f, theta0 = as_function_of_theta(policy, obs)
    S = torch.autograd.functional.jacobian(lambda t: torch.log_softmax(f(t), -1), theta0)
    with torch.no_grad():
        p = torch.softmax(policy(obs), -1)
    ref = torch.einsum("ba,bai,baj->ij", p, S, S) / obs.shape[0]
    assert rel_err(FisherOperator(policy, obs).to_dense(), ref) < 1e-8
    assert rel_err(DenseFisher(policy, obs).to_dense(), ref) < 1e-8


@pytest.mark.parametrize("impl", IMPLS)
@pytest.mark.parametrize("head", ["cat", "gauss"])
def test_fvp_equals_hessian_of_kl(head: str, impl: str, monkeypatch: pytest.MonkeyPatch) -> None:
    """F = ∇²θ mean_b KL(π_old(·|s_b) ‖ π_θ(·|s_b)) at θ = old (double backprop)."""
    policy = make_policy(head, (6, 4))
    obs = torch.randn(20, OBS_DIM, dtype=f64)
    f, theta0 = as_function_of_theta(policy, obs)
    with torch.no_grad():
        old = policy(obs)

    def mean_kl(theta: Tensor) -> Tensor:
        return kl_divergence(torch_dist(head, old), torch_dist(head, f(theta))).mean()

    H = torch.autograd.functional.hessian(mean_kl, theta0)
    op = operator(policy, obs, impl, monkeypatch)
    v = torch.randn(len(theta0), dtype=f64)
    assert rel_err(op.mv(v), H @ v) < 1e-8
    assert rel_err(op.to_dense(), H) < 1e-8


@pytest.mark.parametrize("fisher", ["true", "empirical"])
@pytest.mark.parametrize("impl", IMPLS)
@pytest.mark.parametrize("head", ["cat", "gauss"])
def test_fvp_is_psd_and_symmetric(head: str, impl: str, fisher: str,
                                  monkeypatch: pytest.MonkeyPatch) -> None:
    policy = make_policy(head, (8, 6))
    obs = torch.randn(32, OBS_DIM, dtype=f64)
    actions = sample_actions(policy, head, obs) if fisher == "empirical" else None
    op = operator(policy, obs, impl, monkeypatch, fisher=fisher, actions=actions)
    n = sum(p.numel() for p in policy.actor_parameters())
    for _ in range(10):
        u, v = torch.randn(n, dtype=f64), torch.randn(n, dtype=f64)
        assert float(op.quad(v)) >= 0.0
        assert float(v @ op.mv(v)) >= 0.0
        uFv, vFu = float(u @ op.mv(v)), float(v @ op.mv(u))
        assert abs(uFv - vFu) <= 1e-12 * max(1.0, abs(uFv))


def test_auto_backend_falls_back_for_other_actors() -> None:
    """A non-Sequential actor (a skip connection) and an unsupported activation (GELU)
    take the autograd path, and are still exact."""

    class Skip(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.a, self.b = nn.Linear(OBS_DIM, 6), nn.Linear(6, N_ACTIONS)
            self.c = nn.Linear(OBS_DIM, N_ACTIONS)

        def forward(self, x: Tensor) -> Tensor:
            return self.b(torch.tanh(self.a(x))) + self.c(x)

    obs = torch.randn(16, OBS_DIM, dtype=f64)
    skip = make_policy("cat")
    skip.actor = Skip().double()
    gelu = make_policy("gauss", (5,))
    gelu.actor[1] = nn.GELU()
    for policy, head in ((skip, "cat"), (gelu, "gauss")):
        op = FisherOperator(policy, obs)
        assert op.backend == "autograd"
        assert rel_err(op.to_dense(), reference_fisher(policy, obs, head)) < 1e-8
        with pytest.raises(ValueError, match="backend='mlp'"):
            FisherOperator(policy, obs, backend="mlp")
    with pytest.raises(ValueError, match="backend="):
        FisherOperator(skip, obs, backend="jax")


def test_mlp_backend_flattens_image_like_observations() -> None:
    policy = make_policy("gauss", (5,), obs_shape=(2, 3))
    obs = torch.randn(12, 2, 3, dtype=f64)
    fast = FisherOperator(policy, obs)
    assert fast.backend == "mlp"
    slow = FisherOperator(policy, obs, backend="autograd")
    assert rel_err(fast.to_dense(), slow.to_dense()) < 1e-10


@pytest.mark.parametrize("action_dim, cut", [(1, True), (2, True), (3, False)])
def test_default_cut_rule_on_a_64_wide_actor(action_dim: int, cut: bool) -> None:
    """At the default ratios a 64 × 64 actor is cut (A_0 cached) for 1 or 2 outputs (e.g.
    Pendulum's 1-D Gaussian mean) and not for 3; either way the products equal autograd's."""
    space = gym.spaces.Box(-1.0, 1.0, (action_dim,), dtype=np.float32)
    obs_space = gym.spaces.Box(-np.inf, np.inf, (OBS_DIM,), dtype=np.float64)
    policy = ActorCritic(obs_space, space, hidden_sizes=(64, 64)).double()
    obs = torch.randn(40, OBS_DIM, dtype=f64)
    fast = FisherOperator(policy, obs)
    assert sorted(fast._lin.jacs) == ([0] if cut else [])
    slow = FisherOperator(policy, obs, backend="autograd")
    for _ in range(3):
        v = torch.randn(fast._lin.n, dtype=f64)
        assert rel_err(fast.mv(v), slow.mv(v)) < 1e-10
        w = torch.randn(40, 2 * action_dim, dtype=f64)
        assert rel_err(fast.vjp(w), slow.vjp(w)) < 1e-10


def test_float32_operator_matches_float64() -> None:
    policy = make_policy("cat", (16, 16))
    obs = torch.randn(64, OBS_DIM, dtype=f64)
    v = torch.randn(sum(p.numel() for p in policy.actor_parameters()), dtype=f64)
    ref = FisherOperator(policy, obs).mv(v)
    policy.float()
    got = FisherOperator(policy, obs.float()).mv(v.float())
    assert got.dtype == torch.float32
    assert rel_err(got.double(), ref) < 1e-5


# ---------------------------------------------------------------- every representation


REPS = ["operator-mlp", "operator-autograd", "dense", "diagonal"]


def build(rep: str, policy: ActorCritic, obs: Tensor, **kw):
    if rep == "operator-mlp":
        return FisherOperator(policy, obs, backend="mlp", cg_iters=500, cg_tol=1e-14, **kw)
    if rep == "operator-autograd":
        return FisherOperator(policy, obs, backend="autograd", cg_iters=500, cg_tol=1e-14, **kw)
    if rep == "dense":
        return DenseFisher(policy, obs, **kw)
    return DiagonalFisher(policy, obs, **kw)


@pytest.mark.parametrize("rep", REPS)
@pytest.mark.parametrize("head", ["cat", "gauss"])
def test_representation_agrees_with_its_own_dense_matrix(head: str, rep: str) -> None:
    policy = make_policy(head, (6, 5))
    obs = torch.randn(24, OBS_DIM, dtype=f64)
    lam = 0.1
    F = build(rep, policy, obs, damping=lam)
    D = F.to_dense()
    n = D.shape[0]
    assert torch.allclose(D, D.T, rtol=0, atol=1e-14)
    for _ in range(3):
        v, g = torch.randn(n, dtype=f64), torch.randn(n, dtype=f64)
        assert rel_err(F.mv(v), D @ v) < 1e-12
        assert abs(float(F.quad(v)) - float(v @ D @ v)) < 1e-10 * abs(float(v @ D @ v))
        ref = torch.linalg.solve(D + lam * torch.eye(n, dtype=f64), g)
        assert rel_err(F.solve(g), ref) < 1e-8


@pytest.mark.parametrize("fisher", ["true", "empirical"])
@pytest.mark.parametrize("head", ["cat", "gauss"])
def test_diagonal_is_the_diagonal_of_the_fisher(head: str, fisher: str) -> None:
    policy = make_policy(head, (6, 5))
    obs = torch.randn(24, OBS_DIM, dtype=f64)
    actions = sample_actions(policy, head, obs) if fisher == "empirical" else None
    ref = reference_fisher(policy, obs, head, fisher, actions)
    diag = DiagonalFisher(policy, obs, fisher=fisher, actions=actions)
    assert rel_err(diag.diag, torch.diagonal(ref)) < 1e-10


@pytest.mark.parametrize("head", ["cat", "gauss"])
def test_monte_carlo_diagonal_converges_to_the_exact_one(head: str) -> None:
    policy = make_policy(head, (4,))
    obs = torch.randn(8, OBS_DIM, dtype=f64)
    exact = DiagonalFisher(policy, obs).diag
    errs = {}
    for samples in (4, 64, 1024):
        gen = torch.Generator().manual_seed(1)
        mc = DiagonalFisher(policy, obs, mode="mc", samples=samples, generator=gen)
        errs[samples] = rel_err(mc.diag, exact)
    assert errs[1024] < errs[64] < errs[4]
    assert errs[1024] < 0.08  # ~1/√1024 relative noise


@pytest.mark.parametrize("rep", ["reference", "operator", "dense"])
def test_gaussian_log_std_block_is_two_identity(rep: str) -> None:
    policy = make_policy("gauss", (6,))
    obs = torch.randn(16, OBS_DIM, dtype=f64)
    if rep == "reference":
        F = reference_fisher(policy, obs, "gauss")
    else:
        F = (FisherOperator if rep == "operator" else DenseFisher)(policy, obs).to_dense()
    D = ACT_DIM
    torch.testing.assert_close(F[-D:, -D:], 2.0 * torch.eye(D, dtype=f64), rtol=0, atol=1e-12)
    assert float(F[:-D, -D:].abs().max()) < 1e-12  # mean and log-std decouple


# ---------------------------------------------------------------- conjugate gradient


def spd(n: int, eigenvalues: Tensor) -> Tensor:
    Q, _ = torch.linalg.qr(torch.randn(n, n, dtype=f64))
    return Q @ torch.diag(eigenvalues) @ Q.T


def test_cg_solves_a_known_spd_system() -> None:
    A = spd(12, torch.logspace(0, 2, 12, dtype=f64))
    b = torch.randn(12, dtype=f64)
    res = conjugate_gradient(lambda v: A @ v, b, iters=100, tol=1e-12)
    assert res.reason == "converged"
    assert rel_err(res.x, torch.linalg.solve(A, b)) < 1e-9
    assert res.residuals[0] == 1.0 and res.residuals[-1] <= 1e-12
    assert len(res.residuals) == res.iters + 1


def test_cg_terminates_in_at_most_n_iterations() -> None:
    """Exact-arithmetic CG stops after as many steps as A has distinct eigenvalues (≤ n)."""
    n = 10
    A = spd(n, torch.linspace(1.0, 5.0, n, dtype=f64))
    b = torch.randn(n, dtype=f64)
    res = conjugate_gradient(lambda v: A @ v, b, iters=5 * n, tol=1e-10)
    assert res.reason == "converged" and res.iters <= n
    three = spd(n, torch.tensor([1.0, 2.0, 7.0], dtype=f64).repeat_interleave(
        torch.tensor([3, 3, 4])))
    res = conjugate_gradient(lambda v: three @ v, b, iters=5 * n, tol=1e-10)
    assert res.reason == "converged" and res.iters <= 3


def test_cg_error_in_a_norm_decreases_monotonically() -> None:
    n = 12
    A = spd(n, torch.logspace(0, 2, n, dtype=f64))
    b = torch.randn(n, dtype=f64)
    x_star = torch.linalg.solve(A, b)
    errors = []
    for k in range(1, n + 1):
        e = conjugate_gradient(lambda v: A @ v, b, iters=k, tol=0.0).x - x_star
        errors.append(float(e @ A @ e))
    assert all(later <= earlier * (1 + 1e-9) for earlier, later in zip(errors, errors[1:]))
    assert errors[-1] < 1e-10 * errors[0]


def test_cg_zero_rhs_returns_zeros_without_products() -> None:
    calls = []

    def mv(v: Tensor) -> Tensor:
        calls.append(v)
        return v

    res = conjugate_gradient(mv, torch.zeros(5, dtype=f64))
    assert torch.equal(res.x, torch.zeros(5, dtype=f64))
    assert res.iters == 0 and res.reason == "zero_rhs" and not calls


def test_cg_stops_cleanly_on_nonpositive_curvature() -> None:
    # pᵀAp = 0 on the first direction: x stays 0.
    res = conjugate_gradient(lambda v: torch.tensor([1.0, -1.0], dtype=f64) * v,
                             torch.ones(2, dtype=f64))
    assert res.reason == "nonpositive_curvature" and torch.equal(res.x, torch.zeros(2, dtype=f64))
    # Negative definite.
    res = conjugate_gradient(lambda v: -v, torch.ones(3, dtype=f64))
    assert res.reason == "nonpositive_curvature" and torch.isfinite(res.x).all()
    # Indefinite: one good step to x = (2, 2), then the direction (6, 12) has pᵀAp = -72.
    res = conjugate_gradient(lambda v: torch.tensor([2.0, -1.0], dtype=f64) * v,
                             torch.ones(2, dtype=f64))
    assert res.reason == "nonpositive_curvature"
    torch.testing.assert_close(res.x, torch.tensor([2.0, 2.0], dtype=f64))


def test_jacobi_preconditioner_cuts_iterations_on_a_badly_scaled_system() -> None:
    n = 30
    S = spd(n, torch.linspace(1.0, 4.0, n, dtype=f64))
    d = torch.logspace(0, 3, n, dtype=f64)
    A = d[:, None] * S * d[None, :]
    b = torch.randn(n, dtype=f64)
    plain = conjugate_gradient(lambda v: A @ v, b, iters=500, tol=1e-8)
    jacobi = conjugate_gradient(lambda v: A @ v, b, iters=500, tol=1e-8,
                                precond=lambda r: r / torch.diagonal(A))
    assert jacobi.reason == "converged"
    assert jacobi.iters < plain.iters / 2
    x_star = torch.linalg.solve(A, b)
    assert rel_err(jacobi.x, x_star) < 1e-5


def test_cg_solves_a_damped_policy_fisher() -> None:
    policy = make_policy("gauss", (8, 6))
    obs = torch.randn(40, OBS_DIM, dtype=f64)
    F = reference_fisher(policy, obs, "gauss")
    g = torch.randn(F.shape[0], dtype=f64)
    x_star = torch.linalg.solve(F + 0.1 * torch.eye(F.shape[0], dtype=f64), g)
    op = FisherOperator(policy, obs, damping=0.1, cg_iters=300, cg_tol=1e-12)
    assert rel_err(op.solve(g), x_star) < 1e-8
    assert op.last_cg is not None and op.last_cg.reason == "converged"
    assert op.last_solve.residual <= 1e-12
    # Preconditioning changes the path, not the answer. The diagonal Fisher is a poor
    # preconditioner for a network's Fisher (measured: it *adds* iterations here, its
    # off-diagonal mass is large); the exact damped Fisher converges in one step.
    diag = DiagonalFisher(policy, obs, damping=0.1).solve
    exact = DenseFisher(policy, obs, damping=0.1).solve
    for pre in (diag, exact):
        op_pre = FisherOperator(policy, obs, damping=0.1, cg_iters=300, cg_tol=1e-12,
                                preconditioner=pre)
        assert rel_err(op_pre.solve(g), x_star) < 1e-8
    assert op_pre.last_solve.iters <= 2 < op.last_solve.iters


# ---------------------------------------------------------------- line search


class Problem:
    """A categorical policy, a batch, the TRPO surrogate and KL(π_old ‖ π_θ)."""

    def __init__(self, max_kl: float = 0.01) -> None:
        self.policy = make_policy("cat", (6,))
        self.params = self.policy.actor_parameters()
        self.obs = torch.randn(64, OBS_DIM, dtype=f64)
        with torch.no_grad():
            self.old = self.policy(self.obs)
        self.actions = TorchCategorical(logits=self.old).sample()
        self.logp_old = TorchCategorical(logits=self.old).log_prob(self.actions)
        self.adv = torch.randn(64, dtype=f64)
        self.max_kl = max_kl

    def surrogate(self) -> Tensor:
        logp = TorchCategorical(logits=self.policy(self.obs)).log_prob(self.actions)
        return (torch.exp(logp - self.logp_old) * self.adv).mean()

    def evaluate(self) -> tuple[Tensor, Tensor]:
        new = self.policy(self.obs)
        return self.surrogate(), self.policy.family.kl(self.old, new).mean()

    def independent_kl(self) -> float:
        with torch.no_grad():
            new = TorchCategorical(logits=self.policy(self.obs))
            return float(kl_divergence(TorchCategorical(logits=self.old), new).mean())

    def natural(self):
        g = torch.cat([t.reshape(-1) for t in torch.autograd.grad(self.surrogate(), self.params)])
        return g, natural_step(FisherOperator(self.policy, self.obs, damping=1e-3, cg_iters=50),
                               g, self.max_kl)


def test_line_search_accepts_within_the_kl_budget() -> None:
    pb = Problem()
    _, ns = pb.natural()
    res = kl_line_search(pb.params, ns.step, ns.expected_improve, pb.evaluate, pb.max_kl)
    assert res.accepted and res.actual_improve > 0
    kl = pb.independent_kl()
    assert 0 < kl <= pb.max_kl
    assert math.isclose(res.kl, kl, rel_tol=1e-9)


def test_line_search_backtracks_when_the_full_step_violates_the_kl() -> None:
    pb = Problem()
    _, ns = pb.natural()
    before = snapshot(pb.params)
    big = 4.0 * ns.step  # quadratic KL model: 16 δ
    res = kl_line_search(pb.params, big, 4.0 * ns.expected_improve, pb.evaluate, pb.max_kl)
    assert res.accepted and res.backtracks > 0
    assert res.step_frac == pytest.approx(0.8**res.backtracks) and res.step_frac < 1
    assert pb.independent_kl() <= pb.max_kl
    moved = torch.cat([(p.detach() - b).reshape(-1) for p, b in zip(pb.params, before)])
    assert rel_err(moved, res.step_frac * big) < 1e-12


def test_line_search_failure_restores_parameters_bit_for_bit() -> None:
    pb = Problem()
    _, ns = pb.natural()
    before = snapshot(pb.params)
    res = kl_line_search(pb.params, 1e3 * ns.step, 1e3 * ns.expected_improve, pb.evaluate,
                         pb.max_kl, max_backtracks=3)
    assert not res.accepted and res.step_frac == 0.0
    assert all(torch.equal(p.detach(), b) for p, b in zip(pb.params, before))
    # A step that does not improve the surrogate is rejected too.
    res = kl_line_search(pb.params, -ns.step, ns.expected_improve, pb.evaluate, pb.max_kl)
    assert not res.accepted
    assert all(torch.equal(p.detach(), b) for p, b in zip(pb.params, before))


def test_line_search_rejects_a_nan_step() -> None:
    pb = Problem()
    _, ns = pb.natural()
    before = snapshot(pb.params)
    step = ns.step.clone()
    step[3] = float("nan")
    res = kl_line_search(pb.params, step, ns.expected_improve, pb.evaluate, pb.max_kl)
    assert not res.accepted
    assert all(torch.equal(p.detach(), b) for p, b in zip(pb.params, before))


# ---------------------------------------------------------------- damping and natural step


def test_levenberg_marquardt_adapts_within_bounds() -> None:
    lm = LevenbergMarquardt(value=1.0, lower=0.25, upper=0.75, factor=2.0,
                            min_value=0.1, max_value=8.0)
    assert lm.update(0.1) == 2.0  # model over-promised → more damping
    assert lm.update(float("nan")) == 4.0  # failed step → more damping
    assert lm.update(0.5) == 4.0  # in between → unchanged
    assert lm.update(0.9) == 2.0  # model was right → less damping
    for _ in range(20):
        lm.update(-1.0)
    assert lm.value == 8.0
    for _ in range(20):
        lm.update(1.0)
    assert lm.value == 0.1


def test_fixed_damping_is_constant() -> None:
    fd = FixedDamping(0.1)
    assert [fd.update(r) for r in (-1.0, 0.0, 0.5, 2.0, float("nan"))] == [0.1] * 5
    assert isinstance(make_damping("fixed", 0.3), FixedDamping)
    assert isinstance(make_damping("adaptive", 0.3), LevenbergMarquardt)
    with pytest.raises(ValueError):
        make_damping("magic", 0.3)


def test_natural_step_meets_the_kl_budget_and_predicts_gTs() -> None:
    policy = make_policy("gauss", (3,))
    obs = torch.randn(200, OBS_DIM, dtype=f64)
    dense = DenseFisher(policy, obs, damping=0.0)
    F = dense.to_dense()
    assert float(torch.linalg.eigvalsh(F)[0]) > 1e-8  # full rank: the exact solve exists
    g = torch.randn(F.shape[0], dtype=f64)
    delta = 0.01
    ns = natural_step(dense, g, delta)
    assert 0.5 * float(ns.step @ F @ ns.step) == pytest.approx(delta, rel=1e-8)
    gFg = float(g @ torch.linalg.solve(F, g))
    assert ns.expected_improve == pytest.approx(float(g @ ns.step), rel=1e-12)
    assert ns.expected_improve == pytest.approx(math.sqrt(2 * delta * gFg), rel=1e-8)
    # The implicit operator with a converged CG gives the same step.
    op = FisherOperator(policy, obs, cg_iters=500, cg_tol=1e-13)
    assert rel_err(natural_step(op, g, delta).step, ns.step) < 1e-7
