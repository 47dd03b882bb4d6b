"""The least-squares gradient of a plain MLP critic, written out by hand.

The critic fit is many small Adam steps (typically 15 epochs × 4 minibatches of 256 rows
per update). On a CPU, autograd's per-node bookkeeping costs more than the arithmetic for
a 64×64 network: a forward and backward pass measured ~320 µs, the same matmuls written
out ~90 µs. For a critic that is an ``nn.Sequential`` of Linear layers and elementwise
activations (what ``nprl.policies.mlp`` builds), with one output:

    forward:  a_0 = x,  z_l = a_{l-1} W_lᵀ + b_l,  a_l = σ(z_l),  v = z_L
    loss:     L = mean_b (v_b − y_b)²
    backward: g_L = 2 (v − y) / B,   dW_l = g_lᵀ a_{l-1},   db_l = Σ_b g_l,
              g_{l-1} = (g_l W_l) ⊙ σ'(z_{l-1})

Gradients land in one flat buffer whose slices are the parameters' ``.grad``, so a
finiteness check is one reduction. Any other critic falls back to autograd in
``CriticTrainer``; the two agree to float64 round-off (tests/test_critic.py).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from nprl.curvature.linearise import ACTIVATIONS, activation_and_derivative, is_plain


class MLPRegression:
    """Hand-written ``mean((net(x) − y)²)`` and its gradient for a plain MLP ``net``."""

    def __init__(self, modules: list[nn.Module], params: list[Tensor]) -> None:
        self.modules, self.params = modules, params
        self.linears = [m for m in modules if type(m) is nn.Linear]
        self.flat_grad = torch.zeros(sum(p.numel() for p in params), dtype=params[0].dtype,
                                     device=params[0].device)
        self.grads, offset = [], 0
        for p in params:
            self.grads.append(self.flat_grad[offset:offset + p.numel()].view_as(p))
            offset += p.numel()

    @classmethod
    def build(cls, net: nn.Module, params: list[Tensor]) -> MLPRegression | None:
        """The hand-written path for ``net``, or None when it does not apply: not a
        hook-free Sequential of Linear + supported activations ending in one output,
        or ``params`` not exactly its weights and biases in order."""
        if type(net) is not nn.Sequential or not is_plain(net):
            return None
        modules = list(net)
        expected: list[Tensor] = []
        for m in modules:
            if not is_plain(m) or (type(m) is not nn.Linear and type(m) not in ACTIVATIONS):
                return None
            if type(m) is nn.Linear:
                expected += [m.weight] + ([m.bias] if m.bias is not None else [])
        linears = [m for m in modules if type(m) is nn.Linear]
        if (not linears or linears[-1].out_features != 1 or len(expected) != len(params)
                or any(a is not b for a, b in zip(expected, params))):
            return None
        return cls(modules, params)

    def applies(self) -> bool:
        """False while a hook is registered on the network or a parameter: autograd
        must run them (checked once per fit; hooks are for debugging and guards)."""
        return all(is_plain(m) for m in self.modules) and not any(
            p._backward_hooks or getattr(p, "_post_accumulate_grad_hooks", None)
            for p in self.params)

    @torch.no_grad()
    def loss_and_grad(self, x: Tensor, y: Tensor) -> Tensor:
        """The loss (a 0-d tensor); its gradient is written to every parameter's ``.grad``.
        x: [B, in] inputs, y: [B] targets."""
        inputs: list[Tensor] = []  # a_{l-1}, the input of Linear l
        derivs: list[Tensor | None] = []  # σ'(z_l) after Linear l (None: no activation)
        h = x
        for m in self.modules:
            if type(m) is nn.Linear:
                inputs.append(h)
                derivs.append(None)
                h = F.linear(h, m.weight, m.bias)
            else:
                h, d = activation_and_derivative(m, h)  # type: ignore[misc]
                if d is not None and derivs:  # (before the first Linear: a constant input)
                    derivs[-1] = d if derivs[-1] is None else derivs[-1] * d
        residual = h.squeeze(-1) - y
        loss = residual.pow(2).mean()
        g = (residual * (2.0 / len(y))).unsqueeze(-1)  # ∂L/∂z_L  [B, 1]
        grads = iter(reversed(self.grads))
        for l in range(len(self.linears) - 1, -1, -1):
            lin = self.linears[l]
            if lin.bias is not None:
                torch.sum(g, 0, out=next(grads))
            torch.mm(g.T, inputs[l], out=next(grads))
            if l > 0:
                g = g @ lin.weight
                d = derivs[l - 1]
                if d is not None:
                    g = g.mul_(d)
        for p, grad in zip(self.params, self.grads):
            if p.grad is not grad:
                p.grad = grad
        return loss
