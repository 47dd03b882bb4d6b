"""Damping λ in (F + λI)⁻¹g: fixed, or Levenberg–Marquardt adaptive.

Damping interpolates between the natural gradient (λ → 0) and a scaled ordinary
gradient (λ → ∞); in trust-region terms it says how far the quadratic model is trusted.
"""

from __future__ import annotations

import math
from dataclasses import dataclass


@dataclass
class FixedDamping:
    """A constant λ (TRPO's usual ``cg_damping`` = 0.1)."""

    value: float = 0.1

    def update(self, rho: float) -> float:
        return self.value


@dataclass
class LevenbergMarquardt:
    """Adapt λ from ρ = actual / predicted improvement of the last step (Martens 2010):
    ρ < ``lower`` (the model over-promised, or the step failed) → λ ×= ``factor``;
    ρ > ``upper`` (the model was right) → λ ÷= ``factor``; λ stays in [min_value, max_value].
    Typical: lower 0.25, upper 0.75, factor 1.5.
    """

    value: float = 0.1
    lower: float = 0.25
    upper: float = 0.75
    factor: float = 1.5
    min_value: float = 1e-4
    max_value: float = 1e2

    def update(self, rho: float) -> float:
        if not math.isfinite(rho) or rho < self.lower:
            self.value *= self.factor
        elif rho > self.upper:
            self.value /= self.factor
        self.value = min(max(self.value, self.min_value), self.max_value)
        return self.value


Damping = FixedDamping | LevenbergMarquardt


def make_damping(kind: str, value: float) -> Damping:
    """``kind`` "fixed" or "adaptive" (Levenberg–Marquardt), starting at ``value``."""
    if kind == "fixed":
        return FixedDamping(value)
    if kind == "adaptive":
        return LevenbergMarquardt(value)
    raise ValueError(f"damping={kind!r}: expected 'fixed' or 'adaptive'")
