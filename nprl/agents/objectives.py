"""The policy objectives every natural-gradient agent evaluates on a batch (NPG, TRPO and
ACKTR share them): the importance-sampled surrogate and the mean KL to the acting policy."""

from __future__ import annotations

import torch
from torch import Tensor

from nprl.batch import Samples
from nprl.curvature import flat
from nprl.distributed import all_reduce_mean, global_mean_std


def normalize(x: Tensor, moments: tuple[Tensor, Tensor] | None = None) -> Tensor:
    """Standardise with the mean and std over all ranks' samples (``moments``: those,
    when already known)."""
    mean, std = moments if moments is not None else global_mean_std(x)
    return (x - mean) / (std + 1e-8)


def surrogate(policy, s: Samples, adv: Tensor) -> Tensor:
    """E[r(θ) Â], r = π_θ(a|s) / π_old(a|s); its gradient at θ_old is the policy gradient."""
    logp = policy.family.log_prob(policy.dist_params(s.obs), s.actions)
    return all_reduce_mean((torch.exp(logp - s.log_probs) * adv).mean())


def mean_kl(policy, s: Samples) -> Tensor:
    """E_s KL(π_old(·|s) ‖ π_θ(·|s)) over the batch's observations."""
    return all_reduce_mean(policy.family.kl(s.dist_params, policy.dist_params(s.obs)).mean())


def policy_gradient(policy, s: Samples, adv: Tensor) -> Tensor:
    """g = ∇θ surrogate at θ_old, flat over ``policy.actor_parameters()``."""
    params = policy.actor_parameters()
    return all_reduce_mean(flat(torch.autograd.grad(surrogate(policy, s, adv), params), params))
