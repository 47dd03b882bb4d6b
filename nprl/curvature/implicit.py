"""The implicit Fisher: F v = (1/B) Σ_b J_bᵀ M_b J_b v without forming F.

J_b = ∂params_b/∂θ is the Jacobian of the distribution parameters (the actor's outputs)
for observation b, M_b the analytic output Fisher (or the empirical one). The operator is
exactly the Gauss–Newton form of the Fisher: symmetric and PSD by construction, and
equal to the Hessian of KL(π_old ‖ π_θ) at θ = old. The actor is linearised once per
batch; every product is then one J-product and one Jᵀ-product, by one of two backends
(``nprl.curvature.linearise``): "mlp", forward/reverse passes over cached layer inputs
for Linear/activation MLP actors (about 0.6–1 gradient per product), or "autograd", the
double-vjp trick through a cached graph for any other actor.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import torch
from torch import Tensor

from nprl.curvature.base import SolveInfo, check_fisher_kind, output_metric
from nprl.curvature.cg import CGResult, conjugate_gradient
from nprl.curvature.linearise import BACKENDS, AutogradLinearisation, MLPLinearisation
from nprl.distributed import all_reduce_mean


def _output_metric(family: Any, out: Tensor, fisher: str, actions: Tensor | None
                   ) -> Callable[[Tensor], Tensor]:
    """u ↦ M_b u_b per row; the analytic true Fisher of nprl's two families with the
    per-batch quantities (softmax, 1/σ²) computed once, else ``base.output_metric``."""
    from nprl.distributions import Categorical, DiagGaussian

    out = out.detach()
    if fisher == "true" and type(family) is Categorical:
        p = torch.softmax(out, dim=-1)

        def categorical(u: Tensor) -> Tensor:  # (diag(p) − ppᵀ) u
            pu = p * u
            return pu.sub_(p * pu.sum(-1, keepdim=True))

        return categorical
    if fisher == "true" and type(family) is DiagGaussian:
        D = family.dim
        scale = torch.cat([torch.exp(-2 * out[:, D:]), torch.full_like(out[:, D:], 2.0)], -1)
        return lambda u: u * scale  # 1/σ² on the mean, 2 on the log-std
    return output_metric(family, out, fisher, actions)


class FisherOperator:
    """Implicit Fisher of ``policy``'s action distribution over ``obs`` [B, obs_dim].

    damping: λ in ``solve`` ((F + λI)⁻¹g); TRPO's usual 0.1 relative to F's scale.
    fisher: "true" (analytic expectation under the policy, default) or "empirical"
        (outer products of the scores of ``actions``, the batch's taken actions).
    cg_iters, cg_tol: the conjugate-gradient budget of ``solve`` (typ. 10, 1e-10).
    preconditioner: any v ↦ M⁻¹v (e.g. ``DiagonalFisher(...).solve`` or ``KFAC(...).solve``).
    backend: "auto" (the fast "mlp" path when the actor is a Linear/activation
        ``nn.Sequential``, otherwise "autograd"), or force one; see the module doc.
        ``self.backend`` tells which one is in use.

    The operator is a snapshot: it is linearised at the parameters of construction time.
    """

    def __init__(
        self,
        policy: Any,
        obs: Tensor,
        *,
        damping: float = 0.0,
        fisher: str = "true",
        actions: Tensor | None = None,
        cg_iters: int = 10,
        cg_tol: float = 1e-10,
        preconditioner: Callable[[Tensor], Tensor] | None = None,
        backend: str = "auto",
    ) -> None:
        check_fisher_kind(fisher, actions)
        if backend not in BACKENDS:
            raise ValueError(f"backend={backend!r}: expected one of {', '.join(BACKENDS)}")
        self.params = list(policy.actor_parameters())
        self.damping = float(damping)
        self.cg_iters, self.cg_tol, self.preconditioner = cg_iters, cg_tol, preconditioner
        lin: MLPLinearisation | AutogradLinearisation | None = None
        if backend in ("auto", "mlp"):
            lin = MLPLinearisation.build(policy, obs, self.params)
            if lin is None and backend == "mlp":
                raise ValueError(
                    "backend='mlp' needs an ActorCritic whose actor is an nn.Sequential of "
                    "nn.Linear and Tanh/ReLU/ELU/LeakyReLU/Sigmoid/Identity modules"
                )
        if lin is None:
            lin = AutogradLinearisation(policy, obs, self.params)
        self._lin = lin
        self.backend = lin.name
        self.out = lin.out
        self._metric = _output_metric(policy.family, self.out, fisher, actions)
        self._scale = 1.0 / self.out.shape[0]
        self.last_solve = SolveInfo()
        self.last_cg: CGResult | None = None

    def jvp(self, v: Tensor) -> Tensor:
        """J v, the change of every output row [B, P] along parameter direction v."""
        return self._lin.jvp(v)

    def vjp(self, w: Tensor) -> Tensor:
        """Jᵀ w, flat over the actor's parameters (w [B, P])."""
        return self._lin.vjp(w)

    def mv(self, v: Tensor) -> Tensor:
        """F v = (1/B) Jᵀ M J v."""
        w = self._metric(self.jvp(v))
        return all_reduce_mean(self.vjp(w.mul_(self._scale)))

    def quad(self, v: Tensor) -> Tensor:
        """vᵀ F v = (1/B) (Jv)ᵀ M (Jv): one J-product, no Jᵀ-product."""
        u = self.jvp(v)
        return all_reduce_mean((u * self._metric(u)).sum() * self._scale)

    def damped_mv(self, v: Tensor) -> Tensor:
        """(F + λI) v."""
        return torch.add(self.mv(v), v, alpha=self.damping) if self.damping else self.mv(v)

    def solve(self, g: Tensor) -> Tensor:
        """≈ (F + λI)⁻¹ g by (preconditioned) conjugate gradient; see ``last_cg``."""
        res = conjugate_gradient(
            self.damped_mv, g, iters=self.cg_iters, tol=self.cg_tol, precond=self.preconditioner
        )
        self.last_cg = res
        self.last_solve = SolveInfo(res.iters, res.residual)
        return res.x

    def to_dense(self) -> Tensor:
        """The n×n matrix, one product per column (small models only)."""
        n = sum(p.numel() for p in self.params)
        eye = torch.eye(n, dtype=self.out.dtype, device=self.out.device)
        return torch.stack([self.mv(eye[i]) for i in range(n)], dim=1)
