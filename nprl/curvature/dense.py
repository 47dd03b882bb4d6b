"""The explicit Fisher matrix, from per-sample pulled-back square roots (tests, tiny models)."""

from __future__ import annotations

import torch
from torch import Tensor

from nprl.curvature.base import SolveInfo, check_fisher_kind, output_sqrt, sqrt_rows
from nprl.distributed import all_reduce_mean


class DenseFisher:
    """F = (1/B) GᵀG with G's rows J_bᵀ L_b[:, k] (L_b L_bᵀ = M_b, the output Fisher).

    O(n²) memory: for models up to a few thousand parameters. ``solve`` is a Cholesky
    solve of F + λI, falling back to the pseudo-inverse when that is not positive definite
    (λ = 0 on a singular Fisher, e.g. the rank-(K−1) softmax Fisher).
    """

    def __init__(
        self,
        policy,
        obs: Tensor,
        *,
        damping: float = 0.0,
        fisher: str = "true",
        actions: Tensor | None = None,
    ) -> None:
        check_fisher_kind(fisher, actions)
        self.damping = float(damping)
        with torch.no_grad():
            params = policy.dist_params(obs)
        G = sqrt_rows(policy, obs, output_sqrt(policy.family, params, fisher, actions))
        self.matrix = all_reduce_mean(G.T @ G / obs.shape[0])
        self.last_solve = SolveInfo()

    def mv(self, v: Tensor) -> Tensor:
        return self.matrix @ v

    def quad(self, v: Tensor) -> Tensor:
        return v @ self.matrix @ v

    def solve(self, g: Tensor) -> Tensor:
        A = self.matrix + self.damping * torch.eye(
            len(g), dtype=g.dtype, device=g.device
        )
        L, info = torch.linalg.cholesky_ex(A)
        if int(info) == 0:
            x = torch.cholesky_solve(g.unsqueeze(-1), L).squeeze(-1)
        else:
            x = torch.linalg.pinv(A, hermitian=True) @ g
        g_norm = float(torch.linalg.vector_norm(g))
        res = float(torch.linalg.vector_norm(A @ x - g)) / g_norm if g_norm > 0 else 0.0
        self.last_solve = SolveInfo(0, res)
        return x

    def to_dense(self) -> Tensor:
        return self.matrix
