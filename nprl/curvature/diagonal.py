"""The diagonal of the Fisher: per-parameter scaling, the seeds' simplest approximation."""

from __future__ import annotations

import torch
from torch import Tensor

from nprl.curvature.base import SolveInfo, check_fisher_kind, output_sqrt, sqrt_rows
from nprl.distributed import all_reduce_mean


class DiagonalFisher:
    """diag(F), exact or Monte-Carlo.

    mode: "exact" uses the analytic output Fisher's square root (K rows per sample);
        "mc" samples ``samples`` actions per observation from the policy and averages
        squared per-sample scores (unbiased for diag F; noisy for few samples).
    ``solve`` divides elementwise by diag(F) + λ (zero where that is zero: pseudo-inverse).
    """

    def __init__(
        self,
        policy,
        obs: Tensor,
        *,
        damping: float = 0.0,
        fisher: str = "true",
        actions: Tensor | None = None,
        mode: str = "exact",
        samples: int = 1,
        generator: torch.Generator | None = None,
    ) -> None:
        check_fisher_kind(fisher, actions)
        if mode not in ("exact", "mc"):
            raise ValueError(f"mode={mode!r}: expected 'exact' or 'mc'")
        self.damping = float(damping)
        family = policy.family
        with torch.no_grad():
            params = policy.dist_params(obs)
        if mode == "exact" or fisher == "empirical":
            cot = output_sqrt(family, params, fisher, actions)
            weight = 1.0
        else:
            sampled = torch.stack(
                [self._sample(family, params, generator) for _ in range(samples)], dim=-1
            )
            cot = torch.stack(
                [output_sqrt(family, params, "empirical", sampled[..., s]).squeeze(-1)
                 for s in range(samples)], dim=-1,
            )
            weight = 1.0 / samples
        G = sqrt_rows(policy, obs, cot)
        self.diag = all_reduce_mean(G.pow(2).sum(0) * (weight / obs.shape[0]))
        self.last_solve = SolveInfo()

    @staticmethod
    def _sample(family, params: Tensor, generator: torch.Generator | None) -> Tensor:
        if generator is None:
            return family.dist(params).sample()
        # Reparameterised draws from a dedicated generator (reproducible tests).
        if hasattr(family, "split"):
            mean, log_std = family.split(params)
            noise = torch.randn(mean.shape, generator=generator, dtype=mean.dtype)
            return mean + log_std.exp() * noise
        probs = torch.softmax(params, -1)
        return torch.multinomial(probs, 1, generator=generator).squeeze(-1)

    def mv(self, v: Tensor) -> Tensor:
        return self.diag * v

    def quad(self, v: Tensor) -> Tensor:
        return (self.diag * v * v).sum()

    def solve(self, g: Tensor) -> Tensor:
        d = self.diag + self.damping
        return torch.where(d > 0, g / torch.where(d > 0, d, torch.ones_like(d)), 0.0)

    def to_dense(self) -> Tensor:
        return torch.diag(self.diag)
