"""tanh as 2·sigmoid(2z) − 1 on the CPU: the same function, 2–6× cheaper there.

PyTorch's CPU ``tanh`` kernel is far slower than its ``sigmoid`` kernel: on a 2,048 × 64
float32 tensor (a TRPO batch through a 64-unit layer), one thread, torch 2.13 on an AMD
EPYC VM (AVX-512), measured ~300 µs for ``torch.tanh`` against ~35 µs for
``torch.sigmoid`` and ~50 µs for the three passes below (``python scripts/bench_tanh.py``
prints the ratio on the machine at hand; 2.3× at 64 × 64).
A tanh MLP spends most of its elementwise time there: on Pendulum-v1 (TRPO, 64 × 32
envs) a quarter of a training run was ``torch.tanh``.

    tanh(z) = 2·σ(2z) − 1,   computed as   s = σ(z·2);   −1 + 2·s   (one fused add)

is exact in real arithmetic, and multiplying by 2 is exact in floating point, so the only
rounding is σ's and the final addition's: at most ~2e-7 from float32 ``tanh`` in
absolute terms (it loses tanh's relative accuracy for |z| ≲ 1e-3, where the absolute error
is the same ~1e-7 and nothing a network computes can tell). The constants are 0-dim
float32 tensors: a Python-number operand costs ~1.5 µs more per op on a CPU (it is
wrapped and converted every call), which at acting sizes was a third of the formula's
time. Every path of nprl (the ``Tanh`` module's forward and backward, the collector's
acting, the hand-written linearisation and critic gradient) makes the same choice for the
same tensor, so they agree bit for bit with each other. The formula is for float32 on the
CPU, from ``SMALL`` elements up; everywhere else it is ``torch.tanh`` itself: off the CPU
(one fused kernel there), under ``SMALL`` elements (acting on 16 envs with 64 units: three
kernel launches of ~1 µs each tie with tanh), and in float64, the dtype of reference
computations, so that a float64 result does not depend on how a batch is split (a rank's
half batch may fall under ``SMALL`` where the whole batch does not).
"""

from __future__ import annotations

import torch
from torch import Tensor, nn

SMALL = 2048  # elements; 16 × 64 measured a tie, 64 × 64 ~2× and 512 × 64 ~4× for the formula
_TWO = torch.tensor(2.0, dtype=torch.float32)
_MINUS_ONE = torch.tensor(-1.0, dtype=torch.float32)


def _fused(z: Tensor) -> bool:
    """Whether to use ``torch.tanh`` itself (see the module doc)."""
    # (is_cpu, not device.type: a torch.device per call cost ~0.5 µs, twice per env step)
    return not z.is_cpu or z.dtype is not torch.float32 or z.numel() < SMALL


def tanh(z: Tensor) -> Tensor:
    """tanh(z) as a new tensor; differentiable (plain autograd ops, so ``torch.func``
    transforms and double backward work through it)."""
    if _fused(z):
        return torch.tanh(z)
    if torch.is_grad_enabled() and z.requires_grad:
        # sigmoid's backward reads its output: the in-place chain would clobber it
        return torch.add(_MINUS_ONE, torch.sigmoid(z * _TWO), alpha=2)
    s = torch.mul(z, _TWO).sigmoid_()
    return torch.add(_MINUS_ONE, s, alpha=2, out=s)


def tanh_(z: Tensor) -> Tensor:
    """tanh in place (a fresh activation nobody else holds, outside autograd)."""
    if _fused(z):
        return z.tanh_()
    s = z.mul_(_TWO).sigmoid_()
    return torch.add(_MINUS_ONE, s, alpha=2, out=s)


class Tanh(nn.Tanh):
    """``nn.Tanh`` computed by ``tanh`` above; what ``nprl.policies.mlp`` builds for
    activation "tanh". A subclass, so code testing ``isinstance(m, nn.Tanh)`` still
    recognises it; it has no state, so checkpoints are unchanged."""

    def forward(self, input: Tensor) -> Tensor:
        return tanh(input)
