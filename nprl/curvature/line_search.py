"""KL-constrained backtracking line search (TRPO, Schulman et al. 2015, Appendix C)."""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import torch
from torch import Tensor, nn

from nprl.curvature.base import unflat


@dataclass
class LineSearchResult:
    """accepted: a step was taken; backtracks: shrinkings tried before acceptance (or all
    of them on failure); step_frac: the accepted fraction of the full step (0 if none);
    kl: KL(old ‖ new) at the accepted (or last tried) point; actual/expected improvement
    of the surrogate at that point."""

    accepted: bool
    backtracks: int
    step_frac: float
    kl: float
    actual_improve: float
    expected_improve: float


def snapshot(params: Sequence[nn.Parameter]) -> list[Tensor]:
    return [p.detach().clone() for p in params]


@torch.no_grad()
def restore(params: Sequence[nn.Parameter], saved: Sequence[Tensor]) -> None:
    for p, s in zip(params, saved):
        p.copy_(s)


@torch.no_grad()
def kl_line_search(
    params: Sequence[nn.Parameter],
    full_step: Tensor,
    expected_improve: float,
    evaluate: Callable[[], tuple[Tensor, Tensor]],
    max_kl: float,
    backtrack_coef: float = 0.8,
    max_backtracks: int = 10,
    accept_ratio: float = 0.0,
    surr0: Tensor | None = None,
) -> LineSearchResult:
    """Try θ_old + c^k · step for k = 0..max_backtracks.

    evaluate: () ↦ (surrogate, kl) at the current parameters; the surrogate is to be
        maximised, kl is KL(π_old ‖ π_θ) averaged over the batch.
    expected_improve: gᵀ step, the first-order prediction for the full step.
    Accepts the first point where everything is finite, kl ≤ max_kl, the surrogate
    improves, and improvement / (c^k · expected) ≥ accept_ratio. Otherwise the parameters
    are restored bit for bit. surr0: the surrogate at the current parameters when the
    caller has it already (one evaluation fewer).
    """
    saved = snapshot(params)
    if surr0 is None:
        surr0, _ = evaluate()
    last = LineSearchResult(False, 0, 0.0, float("nan"), float("nan"), expected_improve)
    if not (bool(torch.isfinite(full_step).all()) and math.isfinite(float(surr0))):
        return last
    steps = unflat(full_step, saved)
    for k in range(max_backtracks + 1):
        frac = backtrack_coef**k
        for p, s, d in zip(params, saved, steps):
            torch.add(s, d, alpha=frac, out=p)
        surr, kl = evaluate()
        improve, kl_value = float(surr - surr0), float(kl)
        expected = frac * expected_improve
        last = LineSearchResult(False, k + 1, 0.0, kl_value, improve, expected)
        finite = math.isfinite(improve) and math.isfinite(kl_value)
        ratio_ok = expected <= 0 or improve / expected >= accept_ratio
        if finite and kl_value <= max_kl and improve > 0 and ratio_ok:
            return LineSearchResult(True, k, frac, kl_value, improve, expected)
    restore(params, saved)
    return last


@torch.no_grad()
def take_step(
    params: Sequence[nn.Parameter],
    step: Tensor,
    expected_improve: float,
    evaluate: Callable[[], tuple[Tensor, Tensor]],
    surr0: Tensor | None = None,
) -> LineSearchResult:
    """Apply the full step without a search (NPG, ACKTR), but never leave the parameters
    non-finite: a step whose surrogate or KL is not finite is undone bit for bit.
    surr0: as in ``kl_line_search``."""
    saved = snapshot(params)
    if surr0 is None:
        surr0, _ = evaluate()
    if not bool(torch.isfinite(step).all()):
        return LineSearchResult(False, 0, 0.0, float("nan"), float("nan"), expected_improve)
    for p, s, d in zip(params, saved, unflat(step, saved)):
        torch.add(s, d, out=p)
    surr, kl = evaluate()
    improve, kl_value = float(surr - surr0), float(kl)
    if math.isfinite(improve) and math.isfinite(kl_value):
        return LineSearchResult(True, 0, 1.0, kl_value, improve, expected_improve)
    restore(params, saved)
    return LineSearchResult(False, 0, 0.0, kl_value, improve, expected_improve)
