"""K-FAC: the Fisher as a block-diagonal matrix of Kronecker products (Martens & Grosse
2015), one block per ``nn.Linear`` layer, plus an exact dense block for the Gaussian
log-std (2·I for the true Fisher; it is exactly uncoupled from the mean's parameters
because the Gaussian output Fisher has no mean/log-std cross terms).

Layout. For a layer with weight W [out, in] and bias b, let W̄ = [W | b] [out, in+1]. The
per-sample gradient of W̄ is g āᵀ, whose row-major flattening is g ⊗ ā, so the block over
vec_row(W̄) is E[ggᵀ] ⊗ E[āāᵀ] = ``kron(G, A)`` (the "A ⊗ G" of the papers, which
flatten column-major). nprl's flat vector stores W row-major and then b, so ``to_dense``
permutes kron(G, A) into that order; ``mv`` and ``solve`` never form it:

    (G ⊗ A) vec_row(V̄) = vec_row(G V̄ A),
    (G ⊗ A + λI)⁻¹ vec_row(V̄) = vec_row(Q_G [(Q_Gᵀ V̄ Q_A) ⊘ (g aᵀ + λ)] Q_Aᵀ)

with A = Q_A diag(a) Q_Aᵀ, G = Q_G diag(g) Q_Gᵀ: exact Tikhonov damping in the
eigenbasis ("eigen"), or the factored π-split (A + π√λ I)⁻¹ ⊗ (G + √λ/π I)⁻¹ with
π = sqrt((tr A / dim A) / (tr G / dim G)) ("factored", Martens & Grosse §6.3).
Zero denominators (λ = 0 on a singular factor) give 0: a pseudo-inverse, never inf/NaN.
"""

from __future__ import annotations

import math

import torch
from torch import Tensor

from nprl.curvature.base import SolveInfo
from nprl.curvature.eigen import Eigen
from nprl.curvature.kfac_factors import DenseBlock, KFACFactors, LinearBlock

FORMS = ("eigen", "factored")


def _pinv(d: Tensor) -> Tensor:
    """1/d where d is clearly positive, 0 elsewhere (d ≥ 0 elementwise)."""
    tol = float(d.max()) * torch.finfo(d.dtype).eps * max(d.shape) if d.numel() else 0.0
    ok = d > tol
    return torch.where(ok, 1.0 / torch.where(ok, d, torch.ones_like(d)), torch.zeros_like(d))


def _pi(eA: Eigen, eG: Eigen) -> float:
    """π of the factored damping: the ratio of the factors' average eigenvalues (1 when
    either is zero or not finite)."""
    ta, tg = float(eA.values.mean()), float(eG.values.mean())
    ok = ta > 0 and tg > 0 and math.isfinite(ta) and math.isfinite(tg)
    return math.sqrt(ta / tg) if ok else 1.0


class KFAC:
    """K-FAC curvature over ``policy.actor_parameters()`` for the batch ``obs``.

    damping: λ of ``solve`` (K-FAC typically 1e-3–1e-1 with the π-split; the same as the
        CG damping when used as a CG preconditioner).
    fisher: "true" (under the policy) or "empirical" (the taken ``actions``).
    g_mode: "exact" (G from the analytic output Fisher's square root, no noise) or "mc"
        (``samples`` sampled actions per observation, ACKTR's estimator); for the true
        Fisher only (the empirical one always uses the taken actions).
    form: "eigen" (exact (F̂ + λI)⁻¹) or "factored" (π-split).

    Built this way it uses this batch alone; an agent that keeps running averages builds it
    with ``KFACFactors.view`` (or ``KFAC.from_factors``). ``mv``/``quad``/``to_dense`` use
    the current factors, ``solve`` their last eigendecomposition.
    """

    def __init__(self, policy, obs: Tensor, *, damping: float = 0.0, fisher: str = "true",
                 actions: Tensor | None = None, g_mode: str = "exact", samples: int = 1,
                 form: str = "eigen") -> None:
        factors = KFACFactors(policy, decay=0.0, fisher=fisher, g_mode=g_mode,
                              samples=samples)
        factors.update(policy, obs, actions)
        self._bind(factors, damping, form)

    @classmethod
    def from_factors(cls, factors: KFACFactors, damping: float = 0.0,
                     form: str = "eigen") -> KFAC:
        self = cls.__new__(cls)
        self._bind(factors, damping, form)
        return self

    def _bind(self, factors: KFACFactors, damping: float, form: str) -> None:
        if form not in FORMS:
            raise ValueError(f"form={form!r}: expected one of {', '.join(FORMS)}")
        self.factors, self.damping, self.form = factors, float(damping), form
        self.last_solve = SolveInfo()

    # ------------------------------------------------------------------ block plumbing

    def _pieces(self, v: Tensor):
        """(block, its factors' index, the block's part of v as a matrix) for each block:
        [out, in(+1)] for a Linear layer (W̄ = [W | b]), [size, 1] for a dense block."""
        li = di = 0
        for blk in self.factors.blocks:
            x = v[blk.offset : blk.offset + blk.size]
            if isinstance(blk, LinearBlock):
                W = x[: blk.out * blk.fan_in].view(blk.out, blk.fan_in)
                X = torch.cat([W, x[blk.out * blk.fan_in :].view(blk.out, 1)], 1) \
                    if blk.bias else W
                yield blk, li, X
                li += 1
            else:
                yield blk, di, x.view(-1, 1)
                di += 1

    @staticmethod
    def _flat(blk, X: Tensor) -> Tensor:
        if isinstance(blk, LinearBlock) and blk.bias:
            return torch.cat([X[:, : blk.fan_in].reshape(-1), X[:, blk.fan_in]])
        return X.reshape(-1)

    # ------------------------------------------------------------------ the interface

    def mv(self, v: Tensor) -> Tensor:
        """F̂ v, blockwise: G V̄ A per layer, D v per dense block."""
        f, out = self.factors, []
        for blk, i, X in self._pieces(v):
            Y = f.G[i] @ X @ f.A[i] if isinstance(blk, LinearBlock) else f.D[i] @ X
            out.append(self._flat(blk, Y))
        return torch.cat(out)

    def quad(self, v: Tensor) -> Tensor:
        return v @ self.mv(v)

    def solve(self, g: Tensor) -> Tensor:
        """(F̂ + λI)⁻¹ g ("eigen") or the π-split factored inverse ("factored"), through the
        eigenbases; ``last_solve.residual`` = ‖(F̂ + λI)x − g‖/‖g‖ (≈ 0 for "eigen" with
        fresh eigenbases; it measures the π-split's and stale eigenbases' error)."""
        f, lam, out = self.factors, self.damping, []
        for blk, i, X in self._pieces(g):
            if isinstance(blk, LinearBlock):
                eA, eG = f.eig_A[i], f.eig_G[i]
                Xt = eG.vectors.T @ X @ eA.vectors
                if self.form == "eigen":
                    d = eG.values[:, None] * eA.values[None, :] + lam
                else:
                    pi, r = _pi(eA, eG), math.sqrt(lam)
                    d = (eG.values + r / pi)[:, None] * (eA.values + pi * r)[None, :]
                Y = eG.vectors @ (Xt * _pinv(d)) @ eA.vectors.T
            else:
                e = f.eig_D[i]
                Y = e.vectors @ ((e.vectors.T @ X) * _pinv(e.values + lam)[:, None])
            out.append(self._flat(blk, Y))
        x = torch.cat(out)
        g_norm = float(torch.linalg.vector_norm(g))
        res = float(torch.linalg.vector_norm(self.mv(x) + lam * x - g)) / g_norm \
            if g_norm > 0 else 0.0
        self.last_solve = SolveInfo(0, res)
        return x

    def to_dense(self) -> Tensor:
        """The block-diagonal n×n matrix (kron(G, A) permuted into the flat layout)."""
        f, mats = self.factors, []
        li = di = 0
        for blk in f.blocks:
            if isinstance(blk, DenseBlock):
                mats.append(f.D[di])
                di += 1
                continue
            K = torch.kron(f.G[li], f.A[li])
            idx = torch.arange(blk.size, device=K.device).view(blk.out, blk.a_dim)
            perm = torch.cat([idx[:, : blk.fan_in].reshape(-1), idx[:, blk.fan_in :].reshape(-1)])
            mats.append(K[perm][:, perm])
            li += 1
        return torch.block_diag(*mats)
