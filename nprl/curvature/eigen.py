"""A symmetric eigendecomposition that never fails and never returns NaN.

K-FAC inverts its Kronecker factors through ``torch.linalg.eigh``. LAPACK's eigensolver
can fail to converge (``LinAlgError``) on badly scaled or nearly defective inputs, and a
factor can hold non-finite values if a batch did. Neither may stop a training run, so
``safe_eigh`` retries with a growing diagonal jitter and finally falls back to the
diagonal of the matrix (eigenvectors = identity), i.e. a Jacobi-style inverse.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import Tensor


@dataclass
class Eigen:
    """M ≈ Q diag(values) Qᵀ with values ≥ 0; ``fallback``: the diagonal fallback was used;
    ``tries``: eigh attempts made (1 = the first one succeeded)."""

    values: Tensor
    vectors: Tensor
    fallback: bool = False
    tries: int = 1


def _finite(*ts: Tensor) -> bool:
    return all(bool(torch.isfinite(t).all()) for t in ts)


def diagonal_eigen(M: Tensor, tries: int = 0) -> Eigen:
    """The diagonal fallback: Q = I, values = diag(M) clamped to ≥ 0, non-finite entries
    replaced by the mean finite diagonal (1 if there is none): a finite, PSD stand-in."""
    d = torch.diagonal(M).clone()
    ok = torch.isfinite(d)
    fill = d[ok].clamp_min(0).mean() if bool(ok.any()) else d.new_tensor(1.0)
    if not bool(torch.isfinite(fill)) or float(fill) <= 0:
        fill = d.new_tensor(1.0)
    d = torch.where(ok, d, fill).clamp_min(0)
    eye = torch.eye(M.shape[0], dtype=M.dtype, device=M.device)
    return Eigen(d, eye, fallback=True, tries=tries)


def safe_eigh(M: Tensor, max_tries: int = 4, jitter: float = 1e-8) -> Eigen:
    """Eigendecomposition of the symmetric PSD matrix ``M`` (a K-FAC factor).

    Try ``eigh(M)``; on an exception or a non-finite result retry on M + εI with
    ε = jitter · 100^k · mean|diag M| (k = 0, 1, ...; the shift is subtracted back from the
    eigenvalues), then fall back to ``diagonal_eigen``. Eigenvalues are clamped at 0
    (round-off makes the zero eigenvalues of a rank-deficient factor slightly negative).
    """
    sym = 0.5 * (M + M.T)
    if not _finite(sym):
        return diagonal_eigen(sym, tries=0)
    scale = float(torch.diagonal(sym).abs().mean())
    scale = scale if scale > 0 else 1.0
    eye = torch.eye(sym.shape[0], dtype=sym.dtype, device=sym.device)
    for k in range(max_tries):
        shift = 0.0 if k == 0 else jitter * 100.0 ** (k - 1) * scale
        try:
            values, vectors = torch.linalg.eigh(sym + shift * eye if shift else sym)
        except RuntimeError:  # torch.linalg.LinAlgError is a RuntimeError
            continue
        if _finite(values, vectors):
            return Eigen((values - shift).clamp_min(0), vectors, tries=k + 1)
    return diagonal_eigen(sym, tries=max_tries)
