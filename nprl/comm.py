"""Every collective nprl makes goes through ``collective``: counted and timed in
``comm_stats`` (the benchmark reads it), and a failure (a peer died, or did not answer
within the process group's timeout) raised as ``DistributedError``, a one-line
``NprlError``, instead of a gloo/NCCL traceback. The reductions themselves are in
``nprl.distributed``.
"""

from __future__ import annotations

import time
from collections import defaultdict
from collections.abc import Callable
from dataclasses import dataclass, field

import torch
import torch.distributed as dist
from torch import Tensor

from nprl.errors import NprlError, first_line


class DistributedError(NprlError):
    """A collective failed: another rank died, hung past the timeout, or disagreed."""


def world_size() -> int:
    if dist.is_available() and dist.is_initialized():
        return dist.get_world_size()
    return 1


def rank() -> int:
    if dist.is_available() and dist.is_initialized():
        return dist.get_rank()
    return 0


@dataclass
class CommStats:
    """Collectives since the last ``reset``: calls, payload bytes (what each rank
    contributes) and wall seconds inside them, in total and per (op, numel) — the numel
    tells which statistic it was (actor-sized vectors: gradient and Fisher products)."""

    calls: int = 0
    bytes: int = 0
    seconds: float = 0.0
    by_size: dict[tuple[str, int], list[float]] = field(
        default_factory=lambda: defaultdict(lambda: [0, 0, 0.0]))

    def reset(self) -> None:
        self.calls, self.bytes, self.seconds = 0, 0, 0.0
        self.by_size.clear()


comm_stats = CommStats()


def collective(op: str, t: Tensor, fn: Callable[[], object]) -> None:
    """Run ``fn`` (a collective on ``t``), counting it and naming failures."""
    t0 = time.perf_counter()
    try:
        fn()
    except RuntimeError as e:  # gloo/NCCL errors and DistBackendError are RuntimeErrors
        first = first_line(e)
        raise DistributedError(
            f"rank {rank()} of {world_size()}: {op} failed — another rank died or did not "
            f"answer within the timeout (--set dist_timeout=SECONDS): {first}") from None
    dt = time.perf_counter() - t0
    nbytes = t.numel() * t.element_size()
    comm_stats.calls += 1
    comm_stats.bytes += nbytes
    comm_stats.seconds += dt
    entry = comm_stats.by_size[(op, t.numel())]
    entry[0] += 1
    entry[1] += nbytes
    entry[2] += dt


def comm_device() -> torch.device:
    """Where tensors of our own making must live for the backend (NCCL: this GPU)."""
    if dist.get_backend() == "nccl":
        return torch.device("cuda", torch.cuda.current_device())
    return torch.device("cpu")
