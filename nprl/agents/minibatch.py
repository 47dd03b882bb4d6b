"""Minibatch index patterns that do not depend on how many processes share the batch.

A rollout is T steps × N envs, flattened time-major (row t·N + n). Each epoch draws, for
every env column, a random permutation of its T steps, and minibatch k takes the k-th
slice of every column's permutation: every minibatch holds T/K steps of every env
(stratified by env, otherwise uniformly random).

Under ``torchrun`` rank r holds env columns [r·N, (r+1)·N) of a T × (W·N) rollout. All
ranks seed the generator identically (``shared_seed``) and draw the keys of the whole
T × (W·N) table, each keeping its own columns. So minibatch k of the union of the ranks is
exactly minibatch k a single process would take on the concatenated batch, every rank
holds the same number of rows of it, and the mean of the ranks' minibatch gradients is
that single process's minibatch gradient.
"""

from __future__ import annotations

import torch
from torch import Tensor

from nprl.distributed import rank, shared_seed, world_size


class MinibatchSampler:
    """Index patterns for a [T, N] local batch, flat time-major.

    shape: (T, N) of this rank's batch (every rank must have the same shape).
    count: minibatches per epoch K; at most T slices are possible (K > T gives T).
    A new sampler per update: it draws one shared seed (one tiny broadcast under
    torchrun) from the global torch RNG, so runs stay reproducible from ``--seed``.
    """

    def __init__(self, shape: tuple[int, ...], count: int, device: torch.device) -> None:
        self.T, self.N = int(shape[0]), int(shape[1]) if len(shape) > 1 else 1
        self.count, self.device = count, device
        self.generator = torch.Generator().manual_seed(shared_seed())
        self._offset, self._columns = rank() * self.N, world_size() * self.N

    def epoch(self) -> list[Tensor]:
        """One partition of range(T·N) into ``count`` index tensors (global pattern)."""
        keys = torch.rand((self.T, self._columns), generator=self.generator, dtype=torch.float64)
        mine = keys[:, self._offset : self._offset + self.N]
        steps = mine.argsort(dim=0)  # [T, N]: column n's steps in a random order
        rows = steps * self.N + torch.arange(self.N)  # flat time-major row of (t, n)
        return [c.reshape(-1).to(self.device) for c in rows.chunk(self.count, dim=0)]
