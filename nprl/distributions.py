"""Action-distribution families: how a flat parameter vector per observation becomes a
``torch.distributions`` object, its analytic output Fisher, and KL(old ‖ new).

Every family packs its distribution parameters into one tensor ``params`` of shape
[B, P], so a rollout batch stores the acting policy's parameters as one array and the
curvature core sees the network's output as one tensor.

- ``Categorical(K)``: P = K logits. Output Fisher on logits: ``diag(p) − ppᵀ`` (rank K−1).
- ``DiagGaussian(D)``: P = 2D, ``[mean, log_std]``. Output Fisher: ``1/σ²`` on the mean,
  ``2`` on the log-std (both diagonal).
"""

from __future__ import annotations

import math

import gymnasium as gym
import torch
from torch import Tensor
from torch.distributions import Categorical as TorchCategorical
from torch.distributions import Distribution, Independent, Normal


class Categorical:
    """Softmax over ``n`` discrete actions; ``params`` are unnormalised logits [B, n]."""

    def __init__(self, n: int) -> None:
        self.n = n
        self.param_dim = n

    def dist(self, params: Tensor) -> Distribution:
        return TorchCategorical(logits=params)

    def log_prob(self, params: Tensor, actions: Tensor) -> Tensor:
        logp = torch.log_softmax(params, dim=-1)
        return logp.gather(-1, actions.long().unsqueeze(-1)).squeeze(-1)

    def log_prob_and_grad(self, params: Tensor, actions: Tensor) -> tuple[Tensor, Tensor]:
        """(log π(a) [B], ∂ log π(a)/∂params [B, n] = onehot(a) − softmax(params))."""
        logp = torch.log_softmax(params, dim=-1)
        idx = actions.long().unsqueeze(-1)
        grad = torch.exp(logp).neg_().scatter_add_(-1, idx, torch.ones_like(idx, dtype=logp.dtype))
        return logp.gather(-1, idx).squeeze(-1), grad

    def entropy_and_grad(self, params: Tensor) -> tuple[Tensor, Tensor]:
        """(H [B], ∂H/∂params [B, n] = −p ⊙ (log p + H))."""
        logp = torch.log_softmax(params, dim=-1)
        p = torch.exp(logp)
        entropy = -(p * logp).sum(-1)
        return entropy, -p * (logp + entropy.unsqueeze(-1))

    def mode(self, params: Tensor) -> Tensor:
        return params.argmax(dim=-1)

    def sample(self, params: Tensor) -> Tensor:
        """Gumbel-max draw: argmax(logits + Gumbel noise) ~ softmax(logits). A few fused
        ops instead of building a torch.distributions object on every env step."""
        u = torch.rand_like(params).clamp_(min=torch.finfo(params.dtype).tiny)
        return (params - torch.log(-torch.log(u))).argmax(dim=-1)

    def fisher_mv(self, params: Tensor, u: Tensor) -> Tensor:
        """(diag(p) − ppᵀ) u per row, without forming the K×K matrix."""
        p = torch.softmax(params, dim=-1)
        pu = p * u
        return pu - p * pu.sum(dim=-1, keepdim=True)

    def fisher_sqrt(self, params: Tensor) -> Tensor:
        """L [B, K, K] with L Lᵀ = diag(p) − ppᵀ: L = diag(√p) − p √pᵀ (uses Σp = 1)."""
        p = torch.softmax(params, dim=-1)
        sp = p.sqrt()
        return torch.diag_embed(sp) - p.unsqueeze(-1) * sp.unsqueeze(-2)

    def kl(self, old: Tensor, new: Tensor) -> Tensor:
        """KL(old ‖ new) per row, Σ p_old (log p_old − log p_new)."""
        lo, ln = torch.log_softmax(old, -1), torch.log_softmax(new, -1)
        return (lo.exp() * (lo - ln)).sum(-1)

    def entropy(self, params: Tensor) -> Tensor:
        logp = torch.log_softmax(params, dim=-1)
        return -(logp.exp() * logp).sum(-1)


class DiagGaussian:
    """Independent Normal over ``dim`` action dimensions; params = [mean, log_std] [B, 2D]."""

    def __init__(self, dim: int) -> None:
        self.dim = dim
        self.param_dim = 2 * dim

    def split(self, params: Tensor) -> tuple[Tensor, Tensor]:
        return params[..., : self.dim], params[..., self.dim :]

    def dist(self, params: Tensor) -> Distribution:
        mean, log_std = self.split(params)
        return Independent(Normal(mean, log_std.exp()), 1)

    def log_prob(self, params: Tensor, actions: Tensor) -> Tensor:
        mean, log_std = self.split(params)
        z = (actions - mean) * torch.exp(-log_std)
        return (-0.5 * z.pow(2) - log_std).sum(-1) - 0.5 * self.dim * math.log(2 * math.pi)

    def log_prob_and_grad(self, params: Tensor, actions: Tensor) -> tuple[Tensor, Tensor]:
        """(log π(a) [B], ∂ log π(a)/∂params [B, 2D]): with z = (a − μ)/σ, the mean part
        is z/σ and the log-std part z² − 1."""
        mean, log_std = self.split(params)
        inv_std = torch.exp(-log_std)
        z = (actions - mean) * inv_std
        z2 = z * z
        logp = (-0.5 * z2 - log_std).sum(-1) - 0.5 * self.dim * math.log(2 * math.pi)
        return logp, torch.cat([z * inv_std, z2 - 1.0], dim=-1)

    def entropy_and_grad(self, params: Tensor) -> tuple[Tensor, Tensor]:
        """(H [B], ∂H/∂params [B, 2D]): H depends on the log-std alone, with slope 1."""
        mean, log_std = self.split(params)
        grad = torch.cat([torch.zeros_like(mean), torch.ones_like(log_std)], dim=-1)
        return self.entropy(params), grad

    def mode(self, params: Tensor) -> Tensor:
        return self.split(params)[0]

    def sample(self, params: Tensor) -> Tensor:
        mean, log_std = self.split(params)
        return mean + log_std.exp() * torch.randn_like(mean)

    def fisher_mv(self, params: Tensor, u: Tensor) -> Tensor:
        _, log_std = self.split(params)
        um, us = self.split(u)
        return torch.cat([um * torch.exp(-2 * log_std), 2.0 * us], dim=-1)

    def fisher_sqrt(self, params: Tensor) -> Tensor:
        _, log_std = self.split(params)
        diag = torch.cat([torch.exp(-log_std), torch.full_like(log_std, math.sqrt(2.0))], -1)
        return torch.diag_embed(diag)

    def kl(self, old: Tensor, new: Tensor) -> Tensor:
        """Σ_i log σn/σo + (σo² + (μo − μn)²) / (2σn²) − ½ per row."""
        mo, lo = self.split(old)
        mn, ln = self.split(new)
        var_ratio = torch.exp(2 * (lo - ln))
        return (ln - lo + 0.5 * (var_ratio + ((mo - mn) * torch.exp(-ln)).pow(2)) - 0.5).sum(-1)

    def entropy(self, params: Tensor) -> Tensor:
        _, log_std = self.split(params)
        return (log_std + 0.5 * math.log(2 * math.pi * math.e)).sum(-1)


Family = Categorical | DiagGaussian


def family_for(action_space: gym.Space) -> Family:
    """The distribution family for a gymnasium action space (Discrete or 1-D Box)."""
    if isinstance(action_space, gym.spaces.Discrete):
        return Categorical(int(action_space.n))
    if isinstance(action_space, gym.spaces.Box) and len(action_space.shape) == 1:
        return DiagGaussian(int(action_space.shape[0]))
    raise ValueError(
        f"unsupported action space {action_space!r}: nprl supports Discrete "
        "(categorical policy) and 1-D Box (diagonal Gaussian policy)"
    )
