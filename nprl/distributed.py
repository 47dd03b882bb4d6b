"""The one reduction hook for batch statistics.

Every batch mean the curvature core and the agents compute (policy gradient, each
Fisher-vector product, line-search KL and surrogate, K-FAC factors, normaliser moments)
goes through ``all_reduce_mean``. In a single process it is the identity; under
``torchrun`` with an initialised process group it averages across ranks, so the update is
the one a single process would make on the union of the ranks' (equal-sized) batches.
"""

from __future__ import annotations

import torch
import torch.distributed as dist
from torch import Tensor


def world_size() -> int:
    if dist.is_available() and dist.is_initialized():
        return dist.get_world_size()
    return 1


def rank() -> int:
    if dist.is_available() and dist.is_initialized():
        return dist.get_rank()
    return 0


def all_reduce_mean(t: Tensor) -> Tensor:
    """Mean of ``t`` over processes (a new tensor when reduced; ``t`` itself otherwise)."""
    n = world_size()
    if n == 1:
        return t
    out = t.detach().clone() if t.requires_grad else t.clone()
    dist.all_reduce(out)
    return out / n


def all_reduce_mean_(tensors: list[Tensor]) -> None:
    """In-place mean over processes of several tensors (e.g. parameter gradients)."""
    n = world_size()
    if n == 1:
        return
    flat = torch.cat([t.reshape(-1) for t in tensors])
    dist.all_reduce(flat)
    flat /= n
    offset = 0
    for t in tensors:
        t.copy_(flat[offset : offset + t.numel()].view_as(t))
        offset += t.numel()
