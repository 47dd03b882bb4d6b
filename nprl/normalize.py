"""Running observation normalisation and reward scaling (state saved in checkpoints)."""

from __future__ import annotations

from collections.abc import Callable

import torch
from torch import Tensor

from nprl.distributed import all_reduce_mean


class RunningMeanStd:
    """Mean and variance of a stream of [.., *shape] samples (Chan et al.'s parallel merge).

    Batch moments go through the reduction hook, so ranks under torchrun agree.
    """

    def __init__(self, shape: tuple[int, ...] = (), device: torch.device | str = "cpu") -> None:
        self.mean = torch.zeros(shape, dtype=torch.float64, device=device)
        self.var = torch.ones(shape, dtype=torch.float64, device=device)
        self.count = 0.0

    def update(self, x: Tensor) -> None:
        x = x.reshape(-1, *self.mean.shape).to(torch.float64)
        finite = torch.isfinite(x).reshape(x.shape[0], -1).all(1)
        if not bool(finite.all()):
            # One NaN observation must not poison the statistics for the rest of the run
            # (every later normalised observation would be NaN): drop such rows.
            x = x[finite]
        n = x.shape[0]
        if n == 0:
            return
        moments = all_reduce_mean(torch.stack([x.mean(0), x.pow(2).mean(0)]))
        b_mean, b_var = moments[0], (moments[1] - moments[0].pow(2)).clamp_min(0.0)
        total = self.count + n
        delta = b_mean - self.mean
        self.mean = self.mean + delta * (n / total)
        m2 = self.var * self.count + b_var * n + delta.pow(2) * (self.count * n / total)
        self.var = m2 / total
        self.count = total

    def state_dict(self) -> dict:
        return {"mean": self.mean.cpu(), "var": self.var.cpu(), "count": self.count}

    def load_state_dict(self, state: dict) -> None:
        self.mean = state["mean"].to(self.mean.device, torch.float64)
        self.var = state["var"].to(self.var.device, torch.float64)
        self.count = float(state["count"])


class ObsNormalizer:
    """(obs − mean) / sqrt(var + ε), clipped to ±clip (typ. 10). Statistics are updated
    once per rollout, so every observation of a rollout is normalised the same way."""

    def __init__(self, shape: tuple[int, ...], clip: float = 10.0, device="cpu") -> None:
        self.rms = RunningMeanStd(shape, device)
        self.clip = clip

    def __call__(self, obs: Tensor) -> Tensor:
        return self.frozen(obs.dtype)(obs)

    def frozen(self, dtype: torch.dtype) -> Callable[[Tensor], Tensor]:
        """This normaliser with its current statistics cast to ``dtype`` once, for a
        rollout (statistics change only between rollouts): 3 ops per env step instead of
        7, the same values."""
        if self.rms.count == 0:
            return lambda obs: obs
        mean, std = self.rms.mean.to(dtype), (self.rms.var + 1e-8).sqrt().to(dtype)
        clip = self.clip
        return lambda obs: ((obs - mean) / std).clamp(-clip, clip)

    def update(self, obs: Tensor) -> None:
        self.rms.update(obs)

    def state_dict(self) -> dict:
        return {"rms": self.rms.state_dict(), "clip": self.clip}

    def load_state_dict(self, state: dict) -> None:
        self.rms.load_state_dict(state["rms"])
        self.clip = float(state["clip"])


def frozen_or_identity(normalizer: ObsNormalizer | None,
                       dtype: torch.dtype) -> Callable[[Tensor], Tensor]:
    """``normalizer.frozen(dtype)``, or the identity when there is no normaliser."""
    return normalizer.frozen(dtype) if normalizer is not None else (lambda obs: obs)


class RewardScaler:
    """Divide rewards by the std of the discounted return (as SB3's VecNormalize), clipped
    to ±clip. ``update`` takes the per-step discounted returns of a rollout [T, N]."""

    def __init__(self, gamma: float, clip: float = 10.0, device="cpu") -> None:
        self.rms = RunningMeanStd((), device)
        self.gamma, self.clip = gamma, clip

    def __call__(self, rewards: Tensor) -> Tensor:
        std = (self.rms.var + 1e-8).sqrt().to(rewards.dtype)
        return (rewards / std).clamp(-self.clip, self.clip)

    def update(self, returns: Tensor) -> None:
        self.rms.update(returns)

    def state_dict(self) -> dict:
        return {"rms": self.rms.state_dict(), "clip": self.clip}

    def load_state_dict(self, state: dict) -> None:
        self.rms.load_state_dict(state["rms"])
        self.clip = float(state["clip"])
