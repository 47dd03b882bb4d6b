"""Preconditioned conjugate gradient for A x = b with A symmetric positive (semi)definite,
given only the product v ↦ A v (Nocedal & Wright, Algorithm 5.3)."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

import torch
from torch import Tensor


@dataclass
class CGResult:
    """x: the solution; iters: products A p used; residuals: ‖b − A x_k‖ / ‖b‖ for
    k = 0..iters; reason: "converged", "max_iters", "nonpositive_curvature" or "zero_rhs"."""

    x: Tensor
    iters: int
    residuals: list[float] = field(default_factory=list)
    reason: str = "max_iters"

    @property
    def residual(self) -> float:
        return self.residuals[-1] if self.residuals else 0.0


def conjugate_gradient(
    mv: Callable[[Tensor], Tensor],
    b: Tensor,
    iters: int = 10,
    tol: float = 1e-10,
    precond: Callable[[Tensor], Tensor] | None = None,
) -> CGResult:
    """Solve A x = b from x₀ = 0.

    iters: cap on products with A (10 is TRPO's usual choice, enough for a good direction).
    tol: stop when the relative residual ‖r‖/‖b‖ ≤ tol.
    precond: v ↦ M⁻¹ v for an SPD M ≈ A (e.g. another Curvature's ``solve``).

    Never divides by zero: a zero right-hand side returns x = 0; a direction with
    pᵀAp ≤ 0 (or non-finite) stops and returns the last iterate (x = 0 at the start).
    """
    x = torch.zeros_like(b)
    b_norm = float(torch.linalg.vector_norm(b))
    if b_norm == 0.0 or not torch.isfinite(torch.tensor(b_norm)):
        reason = "zero_rhs" if b_norm == 0.0 else "nonfinite_rhs"
        return CGResult(x, 0, [0.0 if b_norm == 0.0 else float("nan")], reason)
    r = b.clone()
    z = precond(r) if precond is not None else r
    p = z.clone()
    rz = torch.dot(r, z)
    residuals = [1.0]
    for i in range(iters):
        Ap = mv(p)
        pAp = torch.dot(p, Ap)
        if not (float(pAp) > 0.0 and float(rz) > 0.0):
            return CGResult(x, i + 1, residuals, "nonpositive_curvature")
        alpha = rz / pAp
        x.add_(alpha * p)
        r.sub_(alpha * Ap)
        residuals.append(float(torch.linalg.vector_norm(r)) / b_norm)
        if residuals[-1] <= tol:
            return CGResult(x, i + 1, residuals, "converged")
        z = precond(r) if precond is not None else r
        rz_new = torch.dot(r, z)
        p = z + (rz_new / rz) * p
        rz = rz_new
    return CGResult(x, iters, residuals, "max_iters")
