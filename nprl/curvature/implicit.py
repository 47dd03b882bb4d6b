"""The implicit Fisher: F v = (1/B) Σ_b J_bᵀ M_b J_b v without forming F.

The actor is linearised once per batch: one forward pass builds the outputs, and one
``create_graph`` backward builds the graph of u ↦ Jᵀu (linear in a dummy u). Each
product then costs one reverse pass through that graph (giving J v, the double-vjp
trick for a forward-mode product) and one reverse pass through the forward graph
(giving Jᵀ M J v). The output Fisher M is analytic, so the operator is exactly the
Gauss–Newton form of the Fisher: symmetric and PSD by construction, and equal to the
Hessian of KL(π_old ‖ π_θ) at θ = old.
"""

from __future__ import annotations

from collections.abc import Callable

import torch
from torch import Tensor

from nprl.curvature.base import SolveInfo, check_fisher_kind, flat, output_metric, unflat
from nprl.curvature.cg import CGResult, conjugate_gradient
from nprl.distributed import all_reduce_mean


class FisherOperator:
    """Implicit Fisher of ``policy``'s action distribution over ``obs`` [B, obs_dim].

    damping: λ in ``solve`` ((F + λI)⁻¹g); TRPO's usual 0.1 relative to F's scale.
    fisher: "true" (analytic expectation under the policy, default) or "empirical"
        (outer products of the scores of ``actions``, the batch's taken actions).
    cg_iters, cg_tol: the conjugate-gradient budget of ``solve`` (typ. 10, 1e-10).
    preconditioner: any v ↦ M⁻¹v (e.g. ``DiagonalFisher(...).solve`` or ``KFAC(...).solve``).
    """

    def __init__(
        self,
        policy,
        obs: Tensor,
        *,
        damping: float = 0.0,
        fisher: str = "true",
        actions: Tensor | None = None,
        cg_iters: int = 10,
        cg_tol: float = 1e-10,
        preconditioner: Callable[[Tensor], Tensor] | None = None,
    ) -> None:
        check_fisher_kind(fisher, actions)
        self.params = policy.actor_parameters()
        self.damping = float(damping)
        self.cg_iters, self.cg_tol, self.preconditioner = cg_iters, cg_tol, preconditioner
        with torch.enable_grad():
            self.out = policy.dist_params(obs)
            self._u = torch.zeros_like(self.out, requires_grad=True)
            # Jᵀu as a differentiable function of u: the linearisation, built once.
            self._jtu = torch.autograd.grad(
                self.out, self.params, self._u, create_graph=True, allow_unused=True,
                materialize_grads=True,
            )
        self._metric = output_metric(policy.family, self.out, fisher, actions)
        self._scale = 1.0 / self.out.shape[0]
        self.last_solve = SolveInfo()
        self.last_cg: CGResult | None = None

    def jvp(self, v: Tensor) -> Tensor:
        """J v, the change of every output row [B, P] along parameter direction v."""
        (jv,) = torch.autograd.grad(
            self._jtu, self._u, unflat(v, self.params), retain_graph=True
        )
        return jv

    def vjp(self, w: Tensor) -> Tensor:
        """Jᵀ w, flat over the actor's parameters."""
        g = torch.autograd.grad(self.out, self.params, w, retain_graph=True, allow_unused=True)
        return flat(g, self.params)

    def mv(self, v: Tensor) -> Tensor:
        return all_reduce_mean(self.vjp(self._metric(self.jvp(v))) * self._scale)

    def quad(self, v: Tensor) -> Tensor:
        # vᵀJᵀMJv = (Jv)ᵀ M (Jv): one product with J, no reverse pass.
        u = self.jvp(v)
        return all_reduce_mean((u * self._metric(u)).sum() * self._scale)

    def damped_mv(self, v: Tensor) -> Tensor:
        return self.mv(v) + self.damping * v

    def solve(self, g: Tensor) -> Tensor:
        res = conjugate_gradient(
            self.damped_mv, g, iters=self.cg_iters, tol=self.cg_tol, precond=self.preconditioner
        )
        self.last_cg = res
        self.last_solve = SolveInfo(res.iters, res.residual)
        return res.x

    def to_dense(self) -> Tensor:
        n = sum(p.numel() for p in self.params)
        eye = torch.eye(n, dtype=self.out.dtype, device=self.out.device)
        return torch.stack([self.mv(eye[i]) for i in range(n)], dim=1)
