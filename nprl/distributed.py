"""The one reduction hook for batch statistics, and the few other collectives nprl uses.

Every batch mean the curvature core and the agents compute (policy gradient, each
Fisher-vector product, line-search KL and surrogate, K-FAC factors, normaliser moments,
advantage normalisation, logged statistics) goes through this module. In a single process
every function is the identity (or the plain local statistic, bit for bit); under
``torchrun`` with an initialised process group it combines the ranks, so the update is the
one a single process would make on the union of the ranks' (equal-sized) batches.

Every collective is counted and timed in ``comm_stats``, and a failed one raises
``DistributedError`` (``nprl.comm``).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

import torch
import torch.distributed as dist
from torch import Tensor

from nprl.comm import (  # noqa: F401  (DistributedError, comm_stats: part of this API)
    DistributedError,
    collective,
    comm_device,
    comm_stats,
    rank,
    world_size,
)


def _reduce_sum_(t: Tensor, op: str = "all_reduce") -> Tensor:
    collective(op, t, lambda: dist.all_reduce(t))
    return t


class _MeanAcrossRanks(torch.autograd.Function):
    """Value: the mean over ranks. Gradient: passed through unchanged (local).

    So ``autograd.grad(all_reduce_mean(local_mean), θ)`` is the gradient of the local
    mean, and ``all_reduce_mean`` of that gradient is the gradient of the global mean —
    every rank differentiates its own batch and the gradients are reduced once, as a
    single process's gradient of the mean over the union would be.
    """

    @staticmethod
    def forward(ctx, t: Tensor) -> Tensor:  # type: ignore[override]
        return _reduce_sum_(t.detach().clone()).div_(world_size())

    @staticmethod
    def backward(ctx, grad: Tensor) -> Tensor:  # type: ignore[override]
        return grad


def all_reduce_mean(t: Tensor) -> Tensor:
    """Mean of ``t`` over processes (``t`` itself in a single process).

    The result is bit-identical on every rank, so decisions taken on it (line search,
    early stopping, CG) agree. Differentiable: the gradient flows to the local ``t``.
    """
    if world_size() == 1:
        return t
    if t.requires_grad:
        return _MeanAcrossRanks.apply(t)
    return _reduce_sum_(t.clone()).div_(world_size())


def all_reduce_mean_(tensors: Sequence[Tensor]) -> None:
    """In-place mean over processes of several tensors (e.g. parameter gradients), in one
    collective."""
    n = world_size()
    if n == 1:
        return
    _through_flat_(tensors, lambda flat: _reduce_sum_(flat).div_(n))


def global_moments(x: Tensor) -> tuple[Tensor, Tensor]:
    """Mean and unbiased variance over dim 0 of ``x`` [B, ...] across all ranks' rows.

    One collective: every rank's (count, mean, M2) is gathered and merged exactly (Chan
    et al.), which stays accurate where Σx² − n·mean² would cancel. Ranks may hold
    different row counts. In a single process: ``x.mean(0), x.var(0)``.
    """
    if world_size() == 1:
        return x.mean(0), x.var(0)
    return _merge(_gather(_local_moments(x)))


def global_mean_std_each(xs: Sequence[Tensor]) -> list[tuple[Tensor, Tensor]]:
    """``global_mean_std`` of each of ``xs`` (e.g. the advantages of every minibatch of an
    epoch), in one collective instead of one each."""
    if world_size() == 1:
        return [(x.mean(), x.std()) for x in xs]
    local = torch.stack([_local_moments(x.reshape(-1, 1))[:, 0] for x in xs], dim=1)  # [3, K]
    mean, var = _merge(_gather(local))
    return list(zip(mean, var.sqrt()))


def _local_moments(x: Tensor) -> Tensor:
    """[3, ...]: row count, mean and sum of squared deviations over dim 0."""
    mean = x.mean(0, keepdim=True)
    return torch.cat([torch.full_like(mean, x.shape[0]), mean,
                      (x - mean).pow(2).sum(0, keepdim=True)])


def _gather(mine: Tensor) -> Tensor:
    parts = [torch.empty_like(mine) for _ in range(world_size())]
    collective("all_gather", mine, lambda: dist.all_gather(parts, mine))
    return torch.stack(parts)  # [W, 3, ...]


def _merge(every: Tensor) -> tuple[Tensor, Tensor]:
    """Chan et al.'s exact merge of per-rank (count, mean, M2): mean, unbiased variance."""
    counts, means, m2s = every[:, 0], every[:, 1], every[:, 2]
    total = counts.sum(0)
    g_mean = (counts * means).sum(0) / total
    g_m2 = m2s.sum(0) + (counts * (means - g_mean).pow(2)).sum(0)
    return g_mean, g_m2 / (total - 1)


def global_mean_std(x: Tensor) -> tuple[Tensor, Tensor]:
    """Mean and unbiased standard deviation of all elements of ``x`` over all ranks
    (``x.mean(), x.std()`` in a single process)."""
    if world_size() == 1:
        return x.mean(), x.std()
    mean, var = global_moments(x.reshape(-1, 1))
    return mean[0], var[0].sqrt()


def shared_seed() -> int:
    """A fresh seed drawn from the global torch RNG, rank 0's on every rank.

    Ranks sample actions from different RNG streams; things that must be identical
    everywhere (the minibatch pattern) draw from a generator seeded with this.
    """
    seed = torch.randint(0, 2**62, (1,), dtype=torch.int64)
    if world_size() > 1:
        seed = seed.to(comm_device())
        collective("broadcast", seed, lambda: dist.broadcast(seed, src=0))
    return int(seed)


def broadcast_(tensors: Sequence[Tensor]) -> None:
    """Overwrite ``tensors`` with rank 0's values (parameters at the start of a run)."""
    if world_size() == 1 or not tensors:
        return
    with torch.no_grad():
        _through_flat_(tensors, lambda flat: collective(
            "broadcast", flat, lambda: dist.broadcast(flat, src=0)))


def _through_flat_(tensors: Sequence[Tensor], fn: Callable[[Tensor], object]) -> None:
    """Apply the in-place collective ``fn`` to all ``tensors`` at once: concatenated into
    one flat tensor (one message, not one per tensor), then copied back."""
    flat = torch.cat([t.detach().reshape(-1) for t in tensors])
    fn(flat)
    offset = 0
    for t in tensors:
        t.copy_(flat[offset : offset + t.numel()].view_as(t))
        offset += t.numel()


def spread(values: Tensor) -> Tensor:
    """max − min over ranks of each element of ``values`` (zeros in a single process)."""
    if world_size() == 1:
        return torch.zeros_like(values)
    both = torch.cat([values, -values]).to(comm_device())
    collective("all_reduce_max", both,
                lambda: dist.all_reduce(both, op=dist.ReduceOp.MAX))
    k = values.numel()
    return (both[:k] + both[k:]).to(values.device)


def agree(flag: bool) -> bool:
    """Rank 0's ``flag`` on every rank (a decision only rank 0 can take, e.g. "solved")."""
    if world_size() == 1:
        return flag
    t = torch.tensor([1.0 if flag else 0.0], device=comm_device())
    collective("broadcast", t, lambda: dist.broadcast(t, src=0))
    return bool(t.item() > 0)


def any_rank(flag: bool) -> bool:
    """True on every rank if ``flag`` is true on any (e.g. "my batch holds a NaN": a rank
    must not skip an update alone, or the others wait for it in the next collective)."""
    if world_size() == 1:
        return flag
    t = torch.tensor([1.0 if flag else 0.0], device=comm_device())
    collective("all_reduce_max", t, lambda: dist.all_reduce(t, op=dist.ReduceOp.MAX))
    return bool(t.item() > 0)


def gather_values(values: Tensor) -> Tensor:
    """All ranks' 1-d ``values`` (possibly of different lengths) concatenated in rank
    order, on every rank. Two small collectives: the lengths, then padded values."""
    if world_size() == 1:
        return values
    dev = comm_device()
    n = torch.tensor([values.numel()], device=dev)
    counts = [torch.empty_like(n) for _ in range(world_size())]
    collective("all_gather", n, lambda: dist.all_gather(counts, n))
    longest = max(1, *(int(c) for c in counts))  # never a 0-element collective
    padded = torch.zeros(longest, dtype=values.dtype, device=dev)
    padded[: values.numel()] = values.to(dev)
    parts = [torch.empty_like(padded) for _ in counts]
    collective("all_gather", padded, lambda: dist.all_gather(parts, padded))
    return torch.cat([p[: int(c)] for p, c in zip(parts, counts)]).to(values.device)
