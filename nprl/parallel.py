"""Data-parallel training under ``torchrun``: what the trainer needs beyond the reductions.

``torchrun --nproc-per-node W -m nprl train AGENT ENV`` starts W copies of the same
command with ``WORLD_SIZE``, ``RANK``, ``LOCAL_RANK`` (and ``MASTER_ADDR``/``PORT``) set.
Each copy builds a ``Trainer``, whose ``Parallel`` object then

- initialises the process group (gloo on CPU, NCCL on CUDA with one GPU per local rank)
  with a timeout (``dist_timeout`` seconds) after which a silent peer is an error;
- checks that every rank was started with the same config (equal-sized batches);
- gives every rank its own seed stream: rank 0 keeps ``seed`` (so one process under
  torchrun is a plain run), rank r > 0 seeds torch/NumPy/random from (seed, r); env resets
  are seeded with seed + r·n_envs, which makes the ranks' gymnasium envs exactly the
  sub-envs of one W·n_envs vector env;
- broadcasts rank 0's initial parameters, and every ``dist_check_every`` updates checks
  that all ranks still hold bit-identical parameters (one 4-float all-reduce);
- gathers the finished episodes of every rank (for logging on rank 0).

Rank 0 alone writes: run directory, TensorBoard, checkpoints, evaluations (their verdict,
e.g. "solved", is broadcast so every rank stops at the same update). Everything else is
identity in a single process.
"""

from __future__ import annotations

import atexit
import json
import os
import zlib
from datetime import timedelta

import numpy as np
import torch
import torch.distributed as dist

from nprl import distributed as D
from nprl.collector import EpisodeStats
from nprl.distributed import DistributedError
from nprl.errors import first_line


class Parallel:
    """This process's place in a data-parallel run (world 1: a plain run).

    check_every: updates between parameter-sync checks (0: never).
    """

    def __init__(self, world: int = 1, rank: int = 0, check_every: int = 0) -> None:
        self.world, self.rank, self.check_every = world, rank, check_every

    @property
    def is_main(self) -> bool:
        """Rank 0: the one process that logs, evaluates and checkpoints."""
        return self.rank == 0

    @classmethod
    def setup(cls, run, device: torch.device) -> tuple[Parallel, torch.device]:
        """Join the process group torchrun describes (if any); returns the context and the
        device this rank trains on (``cuda:LOCAL_RANK`` under NCCL)."""
        if not (dist.is_available() and dist.is_initialized()):
            if int(os.environ.get("WORLD_SIZE", "1")) <= 1:
                return cls(), device
            device = _init_group(device, run.dist_timeout)
        elif device.type == "cuda":
            device = torch.device("cuda", torch.cuda.current_device())
        return cls(dist.get_world_size(), dist.get_rank(), run.dist_check_every), device

    def seed(self, seed: int) -> int:
        """This rank's seed for torch/NumPy/random (actions, minibatches, inits)."""
        if self.rank == 0:
            return seed
        return int(np.random.SeedSequence([seed, self.rank]).generate_state(1)[0])

    def env_seed(self, seed: int, n_envs: int) -> int:
        """This rank's env reset seed: seed + rank·n_envs (disjoint sub-env seeds)."""
        return seed + self.rank * n_envs

    def check_config(self, config: dict, resume: bool = False) -> None:
        """Raise unless every rank was started with the same config (and not resuming:
        a checkpoint holds rank 0's RNG and env states only)."""
        if self.world == 1:
            return
        if resume:
            raise DistributedError("--resume is not supported under torchrun yet (checkpoints "
                                   "hold rank 0's RNG and env states only)")
        digest = zlib.crc32(json.dumps(config, sort_keys=True, default=str).encode())
        if float(D.spread(torch.tensor([float(digest)], dtype=torch.float64))) != 0:
            raise DistributedError(
                f"rank {self.rank}: the ranks were started with different configs; every "
                "rank must run the same command (equal-sized batches)")

    def broadcast(self, module: torch.nn.Module) -> None:
        """Start every rank from rank 0's parameters and buffers."""
        D.broadcast_([*module.parameters(), *module.buffers()])

    def check_sync(self, module: torch.nn.Module, updates: int) -> None:
        """Every ``check_every`` updates: raise if the ranks' parameters differ at all.

        They cannot unless some statistic bypassed the reduction hook (or hardware
        misbehaves): every rank applies the same reduced update. Two float64 checksums
        (a sum and an index-weighted sum, which also sees swapped entries)."""
        if self.world == 1 or not self.check_every or updates % self.check_every:
            return
        with torch.no_grad():
            flat = torch.cat([p.detach().reshape(-1).double() for p in module.parameters()])
            weights = torch.arange(1, flat.numel() + 1, dtype=torch.float64,
                                   device=flat.device) / flat.numel()
            sums = torch.stack([flat.sum(), (flat * weights).sum()])
        gap = float(D.spread(sums).abs().max())
        if gap != 0:
            raise DistributedError(
                f"rank {self.rank}: parameters out of sync across ranks after update "
                f"{updates} (checksum spread {gap:.3g}); a batch statistic is not going "
                "through nprl.distributed")

    def gather_episodes(self, episodes: EpisodeStats) -> EpisodeStats:
        """Every rank's finished episodes (rank order), on every rank."""
        if self.world == 1:
            return episodes
        pairs = torch.tensor([episodes.returns, [float(n) for n in episodes.lengths]],
                             dtype=torch.float64).T.reshape(-1)
        every = D.gather_values(pairs).reshape(-1, 2)
        return EpisodeStats(every[:, 0].tolist(), [int(n) for n in every[:, 1].tolist()])

    def agree(self, flag: bool) -> bool:
        """Rank 0's verdict (e.g. "solved") on every rank."""
        return D.agree(flag)

    def any(self, flag: bool) -> bool:
        """True on every rank if ``flag`` is on any (e.g. Ctrl-C reached one rank first)."""
        return D.any_rank(flag)


def _init_group(device: torch.device, timeout: float) -> torch.device:
    """init_process_group from torchrun's environment; errors as one line."""
    local_rank = int(os.environ.get("LOCAL_RANK", "0"))
    backend = "gloo"
    if device.type == "cuda":
        if local_rank >= torch.cuda.device_count():
            raise DistributedError(
                f"LOCAL_RANK {local_rank} but only {torch.cuda.device_count()} CUDA devices; "
                "start at most one process per GPU (or --device cpu)")
        torch.cuda.set_device(local_rank)
        device, backend = torch.device("cuda", local_rank), "nccl"
    try:
        dist.init_process_group(backend, timeout=timedelta(seconds=timeout))
    except (ValueError, RuntimeError) as e:  # missing env vars, rendezvous timeout
        first = first_line(e)
        raise DistributedError(
            f"cannot join the process group (WORLD_SIZE={os.environ.get('WORLD_SIZE')}, "
            f"RANK={os.environ.get('RANK')}; start with torchrun): {first}") from None
    atexit.register(_shutdown)
    return device


def _shutdown() -> None:
    if dist.is_initialized():
        dist.destroy_process_group()


class NullLogger:
    """The logger of ranks other than 0: they write nothing."""

    writer = None

    def config(self, config: dict) -> None: ...

    def scalars(self, prefix: str, values: dict[str, float], step: int) -> None: ...

    def progress(self, steps: int, fps: float, last_return: float | None) -> None: ...

    def close(self) -> None: ...
