"""The curvature core: one interface, several Fisher representations, and the pieces
every natural-gradient agent shares (CG, the natural step, line search, damping).

Every representation is built as ``Rep(policy, obs, **options)`` over
``policy.actor_parameters()`` and offers ``mv``, ``solve`` (damped), ``quad`` and
``to_dense``.
"""

from nprl.curvature.base import Curvature, SolveInfo, flat, unflat
from nprl.curvature.cg import CGResult, conjugate_gradient
from nprl.curvature.damping import FixedDamping, LevenbergMarquardt, make_damping
from nprl.curvature.dense import DenseFisher
from nprl.curvature.diagonal import DiagonalFisher
from nprl.curvature.implicit import FisherOperator
from nprl.curvature.kfac import KFAC
from nprl.curvature.kfac_factors import KFACFactors
from nprl.curvature.line_search import (
    LineSearchResult,
    kl_line_search,
    restore,
    snapshot,
    take_step,
)
from nprl.curvature.natural import NaturalStep, natural_step

__all__ = [
    "Curvature", "SolveInfo", "flat", "unflat", "CGResult", "conjugate_gradient",
    "FixedDamping", "LevenbergMarquardt", "make_damping", "DenseFisher", "DiagonalFisher",
    "FisherOperator", "KFAC", "KFACFactors", "LineSearchResult", "kl_line_search", "restore",
    "snapshot", "take_step",
    "NaturalStep", "natural_step",
]
