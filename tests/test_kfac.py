"""K-FAC against the exact Fisher and against its own definitions (float64).

The facts: for a batch repeating ONE observation, K-FAC's Kronecker blocks are exactly the
Fisher's per-layer diagonal blocks (the only K-FAC assumption, E[āāᵀ ⊗ ggᵀ] =
E[āāᵀ] ⊗ E[ggᵀ], holds when ā is constant), so any error in the hooks, the scaling of G,
the homogeneous coordinate or the flat layout shows up at 1e-10; the linear algebra
(mv / solve / quad / to_dense, both damping forms) agrees with dense matrices; degenerate
and failing eigendecompositions stay finite.
"""

from __future__ import annotations

import math

import gymnasium as gym
import numpy as np
import pytest
import torch
from torch import Tensor

from nprl.curvature import KFAC, DenseFisher, FisherOperator, KFACFactors, conjugate_gradient
from nprl.curvature import eigen as eigen_module
from nprl.policies import ActorCritic

f64 = torch.float64
OBS_DIM, N_ACTIONS, ACT_DIM = 3, 3, 2


def make_policy(head: str, hidden: tuple[int, ...] = (5, 4), activation: str = "tanh"):
    space: gym.Space = gym.spaces.Discrete(N_ACTIONS) if head == "cat" else \
        gym.spaces.Box(-1.0, 1.0, (ACT_DIM,), dtype=np.float32)
    obs_space = gym.spaces.Box(-np.inf, np.inf, (OBS_DIM,), dtype=np.float64)
    policy = ActorCritic(obs_space, space, hidden_sizes=hidden, activation=activation).double()
    with torch.no_grad():
        for p in policy.parameters():
            p.copy_(0.7 * torch.randn_like(p))
    return policy


def rel_err(a: Tensor, b: Tensor) -> float:
    return float(torch.linalg.norm(a - b) / torch.linalg.norm(b))


def blocks_of(kfac: KFAC, M: Tensor) -> list[Tensor]:
    return [M[b.offset : b.offset + b.size, b.offset : b.offset + b.size]
            for b in kfac.factors.blocks]


def repeated_obs(n: int = 6) -> Tensor:
    return torch.randn(1, OBS_DIM, dtype=f64).repeat(n, 1)


# ---------------------------------------------------------------- K-FAC = the Fisher's blocks


@pytest.mark.parametrize("activation", ["tanh", "relu"])
@pytest.mark.parametrize("head", ["cat", "gauss"])
def test_exact_g_equals_fisher_blocks_for_one_repeated_observation(head, activation) -> None:
    policy = make_policy(head, (5, 4), activation)
    obs = repeated_obs()
    kfac = KFAC(policy, obs)
    exact = DenseFisher(policy, obs).to_dense()
    assert len(kfac.factors.blocks) == 3 + (head == "gauss")  # every layer (+ log-std)
    for mine, ref in zip(blocks_of(kfac, kfac.to_dense()), blocks_of(kfac, exact)):
        assert rel_err(mine, ref) < 1e-10


@pytest.mark.parametrize("head", ["cat", "gauss"])
def test_empirical_kfac_equals_empirical_fisher_blocks_for_one_observation(head) -> None:
    policy = make_policy(head)
    obs = repeated_obs(8)
    with torch.no_grad():
        actions = policy.family.sample(policy.dist_params(obs))  # different actions
    kfac = KFAC(policy, obs, fisher="empirical", actions=actions)
    exact = DenseFisher(policy, obs, fisher="empirical", actions=actions).to_dense()
    for mine, ref in zip(blocks_of(kfac, kfac.to_dense()), blocks_of(kfac, exact)):
        assert rel_err(mine, ref) < 1e-10


@pytest.mark.parametrize("head", ["cat", "gauss"])
def test_monte_carlo_g_converges_to_the_exact_blocks(head) -> None:
    policy = make_policy(head)
    obs = repeated_obs(8)
    kfac = KFAC(policy, obs)
    exact = blocks_of(kfac, DenseFisher(policy, obs).to_dense())
    errs = []
    for samples in (2, 32, 2048):
        torch.manual_seed(1)
        mc = KFAC(policy, obs, g_mode="mc", samples=samples)
        errs.append(max(rel_err(m, r) for m, r in zip(blocks_of(mc, mc.to_dense()), exact)))
    assert errs[2] < errs[1] < errs[0]
    assert errs[2] < 0.06  # ~1/√(8·2048) relative noise, times a few


@pytest.mark.parametrize("head", ["cat", "gauss"])
def test_factors_follow_their_definitions_on_varied_observations(head) -> None:
    """A of the first layer = E[[s;1][s;1]ᵀ]; G of the output layer = E[M_b] (its output
    gradients are the output Fisher's square-root columns themselves)."""
    policy = make_policy(head)
    obs = torch.randn(20, OBS_DIM, dtype=f64)
    f = KFAC(policy, obs).factors
    a = torch.cat([obs, torch.ones(20, 1, dtype=f64)], 1)
    assert rel_err(f.A[0], a.T @ a / 20) < 1e-12
    with torch.no_grad():
        out = policy(obs)
    if head == "cat":
        p = torch.softmax(out, -1)
        M = (torch.diag_embed(p) - p.unsqueeze(-1) * p.unsqueeze(-2)).mean(0)
    else:
        M = torch.diag(torch.exp(-2 * policy.log_std.detach()))
    assert rel_err(f.G[-1], M) < 1e-12


def test_log_std_block_is_two_identity_and_uncoupled() -> None:
    policy = make_policy("gauss")
    F = KFAC(policy, torch.randn(16, OBS_DIM, dtype=f64)).to_dense()
    D = ACT_DIM
    torch.testing.assert_close(F[-D:, -D:], 2.0 * torch.eye(D, dtype=f64), rtol=0, atol=1e-14)
    assert float(F[:-D, -D:].abs().max()) == 0.0


# ---------------------------------------------------------------- linear algebra


def factored_reference(kfac: KFAC, lam: float) -> Tensor:
    """The π-split damped matrix, written out densely from the factors."""
    f, mats = kfac.factors, []
    for i, blk in enumerate(b for b in f.blocks if hasattr(b, "fan_in")):
        A, G = f.A[i], f.G[i]
        pi = math.sqrt((A.trace() / A.shape[0]) / (G.trace() / G.shape[0]))
        K = torch.kron(G + math.sqrt(lam) / pi * torch.eye(G.shape[0], dtype=f64),
                       A + pi * math.sqrt(lam) * torch.eye(A.shape[0], dtype=f64))
        idx = torch.arange(blk.size).view(blk.out, blk.a_dim)
        perm = torch.cat([idx[:, : blk.fan_in].reshape(-1), idx[:, blk.fan_in]])
        mats.append(K[perm][:, perm])
    mats += [D + lam * torch.eye(D.shape[0], dtype=f64) for D in f.D]
    return torch.block_diag(*mats)


@pytest.mark.parametrize("form", ["eigen", "factored"])
@pytest.mark.parametrize("head", ["cat", "gauss"])
def test_mv_solve_quad_agree_with_to_dense(head, form) -> None:
    policy = make_policy(head)
    lam = 0.05
    kfac = KFAC(policy, torch.randn(24, OBS_DIM, dtype=f64), damping=lam, form=form)
    D = kfac.to_dense()
    n = D.shape[0]
    assert torch.allclose(D, D.T, rtol=0, atol=1e-14)
    damped = D + lam * torch.eye(n, dtype=f64) if form == "eigen" else \
        factored_reference(kfac, lam)
    for _ in range(3):
        v = torch.randn(n, dtype=f64)
        assert rel_err(kfac.mv(v), D @ v) < 1e-12
        assert abs(float(kfac.quad(v) - v @ D @ v)) < 1e-12 * float(v @ D @ v)
        assert rel_err(kfac.solve(v), torch.linalg.solve(damped, v)) < 1e-9
    assert (kfac.last_solve.residual < 1e-10) == (form == "eigen")


def test_solve_inverts_mv_without_damping() -> None:
    policy = make_policy("gauss")  # a Gaussian head: every factor has full rank here
    kfac = KFAC(policy, torch.randn(64, OBS_DIM, dtype=f64), damping=0.0)
    v = torch.randn(kfac.to_dense().shape[0], dtype=f64)
    assert rel_err(kfac.solve(kfac.mv(v)), v) < 1e-8


def test_degenerate_factors_give_a_finite_pseudo_inverse() -> None:
    """Constant (zero) inputs: the first layer's A = e eᵀ has rank 1 and a repeated
    zero eigenvalue; the softmax G has rank K−1. With λ = 0 the solve is finite and a
    pseudo-inverse (F̂ x = F̂ F̂⁺ b is the projection of b onto the range)."""
    policy = make_policy("cat")
    kfac = KFAC(policy, torch.zeros(8, OBS_DIM, dtype=f64), damping=0.0)
    assert int((kfac.factors.eig_A[0].values > 1e-12).sum()) == 1
    b = kfac.mv(torch.randn(kfac.to_dense().shape[0], dtype=f64))  # b in the range
    x = kfac.solve(b)
    assert bool(torch.isfinite(x).all())
    assert rel_err(kfac.mv(x), b) < 1e-8
    kfac.damping = 1e-3
    assert bool(torch.isfinite(kfac.solve(torch.randn_like(b))).all())


# ---------------------------------------------------------------- robustness


def test_eigh_failure_is_retried_with_jitter(monkeypatch) -> None:
    real, calls = torch.linalg.eigh, []

    def flaky(M):
        calls.append(1)
        if len(calls) == 1:
            raise torch.linalg.LinAlgError("forced failure")
        return real(M)

    monkeypatch.setattr(torch.linalg, "eigh", flaky)
    policy = make_policy("cat")
    kfac = KFAC(policy, torch.randn(16, OBS_DIM, dtype=f64), damping=1e-3)
    assert kfac.factors.eig_A[0].tries == 2 and kfac.factors.fallbacks == 0
    g = torch.randn(kfac.to_dense().shape[0], dtype=f64)
    exact = torch.linalg.solve(kfac.to_dense() + 1e-3 * torch.eye(len(g), dtype=f64), g)
    assert rel_err(kfac.solve(g), exact) < 1e-5  # the jitter (1e-8 relative) is harmless


def test_eigh_returning_nan_falls_back_to_the_diagonal(monkeypatch) -> None:
    monkeypatch.setattr(torch.linalg, "eigh",
                        lambda M: (torch.full(M.shape[:1], math.nan, dtype=M.dtype), M))
    policy = make_policy("gauss")
    kfac = KFAC(policy, torch.randn(16, OBS_DIM, dtype=f64), damping=1e-2)
    f = kfac.factors
    assert f.fallbacks == len(f.A) + len(f.G) + len(f.D)
    assert torch.equal(f.eig_A[0].values, torch.diagonal(f.A[0]))
    x = kfac.solve(torch.randn(kfac.to_dense().shape[0], dtype=f64))
    assert bool(torch.isfinite(x).all())
    assert all(math.isfinite(v) for v in f.diagnostics().values())


def test_non_finite_batch_is_skipped_and_nan_factor_falls_back() -> None:
    policy = make_policy("cat")
    f = KFACFactors(policy, decay=0.5)
    obs = torch.randn(16, OBS_DIM, dtype=f64)
    f.update(policy, obs)
    before = [A.clone() for A in f.A]
    bad = obs.clone()
    bad[3, 0] = math.nan
    assert not f.update(policy, bad) and f.skipped == 1 and f.updates == 1
    assert all(torch.equal(a, b) for a, b in zip(f.A, before))
    e = eigen_module.safe_eigh(torch.full((3, 3), math.nan, dtype=f64))
    assert e.fallback and bool(torch.isfinite(e.values).all()) and float(e.values.min()) >= 0


# ---------------------------------------------------------------- running averages, state


def test_running_average_and_inverse_schedule() -> None:
    policy = make_policy("cat")
    obs = [torch.randn(16, OBS_DIM, dtype=f64) for _ in range(4)]
    batch_A = [KFAC(policy, o).factors.A[1] for o in obs]
    f = KFACFactors(policy, decay=0.9, inverse_every=3)
    f.update(policy, obs[0])
    f.update(policy, obs[1])  # w = max(0.1, 1/2): the plain mean of the first two
    assert rel_err(f.A[1], (batch_A[0] + batch_A[1]) / 2) < 1e-12
    stale = f.eig_A[1].values.clone()  # computed at update 1, next refresh at update 4
    f.update(policy, obs[2])
    assert rel_err(f.A[1], (batch_A[0] + batch_A[1] + batch_A[2]) / 3) < 1e-12
    assert torch.equal(f.eig_A[1].values, stale)
    f.update(policy, obs[3])  # w = max(0.1, 1/4)
    assert not torch.equal(f.eig_A[1].values, stale)
    ref = torch.linalg.eigvalsh(f.A[1]).clamp_min(0)
    assert rel_err(f.eig_A[1].values, ref) < 1e-10


def test_state_dict_round_trip_with_weights_only(tmp_path) -> None:
    policy = make_policy("gauss")
    f = KFACFactors(policy, decay=0.9, inverse_every=2)
    for _ in range(3):
        f.update(policy, torch.randn(16, OBS_DIM, dtype=f64))
    torch.save(f.state_dict(), tmp_path / "k.pt")
    g = KFACFactors(policy, decay=0.9, inverse_every=2)
    g.load_state_dict(torch.load(tmp_path / "k.pt", weights_only=True))
    v = torch.randn(f.view(0.1).to_dense().shape[0], dtype=f64)
    assert torch.equal(f.view(0.1).solve(v), g.view(0.1).solve(v))
    assert torch.equal(f.view(0.0).mv(v), g.view(0.0).mv(v)) and g.updates == 3


# ---------------------------------------------------------------- preconditioning CG


def test_kfac_preconditioner_cuts_cg_iterations_on_a_fresh_cartpole_batch() -> None:
    """A real CartPole rollout of a freshly initialised policy (K-FAC is accurate there: the
    small output layer dominates the Fisher). After training has coupled the layers, K-FAC
    is a worse preconditioner than none on these tasks (scripts/bench_kfac.py)."""
    from nprl.collector import Collector
    from nprl.envs import make_env

    env = make_env("CartPole-v1", 8)
    policy = ActorCritic(env.single_observation_space, env.single_action_space)
    batch, _ = Collector(env, policy, 64, 0.99, 0.95, seed=0).collect()
    policy.double()
    s = batch.flat()
    obs, adv = s.obs.double(), s.advantages.double()
    params = policy.actor_parameters()
    logp = policy.family.log_prob(policy.dist_params(obs), s.actions)
    g = torch.cat([t.reshape(-1) for t in torch.autograd.grad((logp * adv).mean(), params)])
    iters = {}
    for name in ("none", "kfac"):
        pre = KFAC(policy, obs, damping=0.01).solve if name == "kfac" else None
        op = FisherOperator(policy, obs, damping=0.01, cg_iters=100, cg_tol=1e-3,
                            preconditioner=pre)
        res = conjugate_gradient(op.damped_mv, g, iters=100, tol=1e-3, precond=pre)
        assert res.reason == "converged"
        iters[name] = res.iters
    assert iters["kfac"] <= 3 < iters["none"], iters
