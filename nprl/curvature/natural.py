"""The natural step shared by NPG, TRPO and ACKTR.

Maximise gᵀs subject to ½ sᵀFs ≤ δ (the quadratic model of KL(π_old ‖ π_new)):
    d = F⁻¹g,   s = sqrt(2δ / dᵀFd) · d,
so that ½ sᵀFs = δ exactly and the predicted improvement is gᵀs = sqrt(2δ · gᵀF⁻¹g).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from torch import Tensor

from nprl.curvature.base import Curvature


@dataclass
class NaturalStep:
    """step: the scaled step; direction: d ≈ (F + λI)⁻¹g; sFs: dᵀFd (undamped);
    scale: sqrt(2δ/dᵀFd); expected_improve: gᵀ step; cg_iters / cg_residual: the solve."""

    step: Tensor
    direction: Tensor
    sFs: float
    scale: float
    expected_improve: float
    cg_iters: int
    cg_residual: float
    damping: float

    @property
    def finite(self) -> bool:
        return math.isfinite(self.sFs) and math.isfinite(self.expected_improve)


def natural_step(curvature: Curvature, g: Tensor, max_kl: float) -> NaturalStep:
    """The trust-region-scaled natural step for gradient ``g`` (ascent direction).

    max_kl: δ, the KL budget per update (TRPO typically 0.01; small tasks up to 0.05).
    A direction with no curvature (dᵀFd ≤ 0) or a non-finite one gives a zero or
    non-finite step that ``finite`` reports, for the caller to skip.
    """
    d = curvature.solve(g)
    dFd = float(curvature.quad(d))
    scale = math.sqrt(2.0 * max_kl / dFd) if dFd > 0 else (0.0 if dFd == 0 else math.nan)
    step = d * scale
    info = curvature.last_solve
    return NaturalStep(
        step=step,
        direction=d,
        sFs=dFd,
        scale=scale,
        expected_improve=float(g @ step),
        cg_iters=info.iters,
        cg_residual=info.residual,
        damping=curvature.damping,
    )
