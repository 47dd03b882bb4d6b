"""The critic's least-squares gradient, written out by hand for plain MLPs.

The critic fit of the natural-gradient agents is many small Adam steps (e.g. 15 epochs ×
4 minibatches of 256 rows per update). On a CPU, autograd's per-node bookkeeping costs
more than the arithmetic of a 64×64 network: a forward and backward pass measured
~320 µs, the same matmuls written out ~90 µs. For a network that is an ``nn.Sequential``
of Linear layers and elementwise activations (what ``nprl.policies.mlp`` builds):

    forward:  a_0 = x,   z_l = a_{l-1} W_lᵀ + b_l,   a_l = σ(z_l),   out = z_L
    backward: given g_L = ∂L/∂out,   dW_l = g_lᵀ a_{l-1},   db_l = Σ_b g_l,
              g_{l-1} = (g_l W_l) ⊙ σ'(z_{l-1})

and for the mean squared error g_L = 2 (out − y) / B needs no autograd at all. Gradients
land in one flat buffer whose slices are the parameters' ``.grad`` (a finiteness check is
one reduction). Any other network, or one with hooks, falls back to autograd in
``CriticTrainer``; the two agree to float64 round-off (tests/test_mlp_grad.py).

``ManualActor`` wraps it for an ``ActorCritic``'s actor (the MLP plus the state-independent
log-std): PPO's minibatch gradient (``nprl.agents.ppo_grad``) and the natural-gradient
agents' policy gradient (``nprl.agents.objectives``) run through it, with the loss's
gradient on the distribution parameters also written out: the reverse pass alone, with
autograd still differentiating the loss, saved nothing measurable.
"""

from __future__ import annotations

import torch
from torch import Tensor, nn

from nprl.curvature.linearise import cached_forward, is_plain, mlp_parameters, weight_grad
from nprl.policies import ActorCritic


def has_grad_hook(p: Tensor) -> bool:
    """A hook on ``p``'s gradient (``register_hook`` or a post-accumulate hook): only
    autograd runs it, so the hand-written gradient must not be used."""
    return bool(p._backward_hooks or getattr(p, "_post_accumulate_grad_hooks", None))


class ManualMLP:
    """A plain MLP's forward pass with cached activations, and its reverse pass by hand."""

    def __init__(self, modules: list[nn.Module], params: list[Tensor],
                 flat_grad: Tensor | None = None) -> None:
        self.modules, self.params = modules, params
        self.linears = [m for m in modules if type(m) is nn.Linear]
        # flat_grad: a caller's buffer (a slice of a larger one) to write the gradients in
        self.flat_grad = flat_grad if flat_grad is not None else torch.zeros(
            sum(p.numel() for p in params), dtype=params[0].dtype, device=params[0].device)
        self.grads, offset = [], 0
        for p in params:
            self.grads.append(self.flat_grad[offset:offset + p.numel()].view_as(p))
            offset += p.numel()
        self._inputs: list[Tensor] = []  # a_{l-1}, the input of Linear l
        self._derivs: list[Tensor | None] = []  # σ'(z_l) after Linear l (None: identity)

    @classmethod
    def build(cls, net: nn.Module | None, params: list[Tensor],
              flat_grad: Tensor | None = None) -> ManualMLP | None:
        """The hand-written path for ``net``, or None when it does not apply: not a
        hook-free Sequential of Linear + supported activations, or ``params`` not
        exactly its weights and biases in order."""
        expected = mlp_parameters(net) if net is not None else None
        if expected is None or len(expected) != len(params) or any(
                a is not b for a, b in zip(expected, params)):
            return None
        return cls(list(net), params, flat_grad)  # type: ignore[arg-type]

    def applies(self) -> bool:
        """False while a hook is registered on the network or a parameter: autograd
        must run it (checked once per update; hooks are for debugging and guards)."""
        return all(is_plain(m) for m in self.modules) and not any(
            has_grad_hook(p) for p in self.params)

    def forward(self, x: Tensor) -> Tensor:
        """The network's output [B, out] for inputs [B, in], keeping what ``backward``
        needs. A tensor outside autograd: make it a leaf to differentiate a loss in it."""
        out, self._inputs, self._derivs = cached_forward(self.modules, x)
        return out

    @torch.no_grad()
    def backward(self, cotangent: Tensor, attach: bool = True) -> None:
        """Set every parameter's ``.grad`` to ∂L/∂θ given ``cotangent`` = ∂L/∂out [B, out]
        of the last ``forward`` (overwrites, does not accumulate). attach=False: only
        ``flat_grad`` is written, the parameters' ``.grad`` are left alone."""
        g = cotangent
        grads = iter(reversed(self.grads))
        for l in range(len(self.linears) - 1, -1, -1):
            lin = self.linears[l]
            if lin.bias is not None:
                torch.sum(g, 0, out=next(grads))
            weight_grad(g, self._inputs[l], out=next(grads))
            if l > 0:
                g = g @ lin.weight
                d = self._derivs[l - 1]
                if d is not None:
                    g = g.mul_(d)
        if attach:
            for p, grad in zip(self.params, self.grads):
                if p.grad is not grad:
                    p.grad = grad

    def mse_and_grad(self, x: Tensor, y: Tensor) -> Tensor:
        """mean_b (net(x)_b − y_b)² for a one-output net, with its gradient in ``.grad``.
        x: [B, in], y: [B]; returns the loss as a 0-d tensor."""
        residual = self.forward(x).squeeze(-1) - y
        self.backward((residual * (2.0 / len(y))).unsqueeze(-1))
        return residual.pow(2).mean()


def own_methods(policy, *names: str) -> bool:
    """``policy`` is an ``ActorCritic`` that does not override these methods (what the
    hand-written passes compute in their place)."""
    return isinstance(policy, ActorCritic) and all(
        getattr(type(policy), m) is getattr(ActorCritic, m) for m in names)


class ManualActor:
    """``ActorCritic.dist_params`` by hand for a plain-MLP actor: the forward pass with its
    caches, and the reverse pass from ∂L/∂params [B, P] to the gradient over
    ``actor_parameters()`` (the MLP's weights and biases, then the log-std) in one flat
    buffer, ``flat_grad``."""

    def __init__(self, policy: ActorCritic, mlp: list[Tensor],
                 flat_grad: Tensor | None = None) -> None:
        self.log_std = policy.log_std
        sizes = [sum(p.numel() for p in mlp), 0 if self.log_std is None
                 else self.log_std.numel()]
        self.flat_grad = flat_grad if flat_grad is not None else torch.zeros(
            sum(sizes), dtype=mlp[0].dtype, device=mlp[0].device)
        g_mlp, self.log_std_grad = self.flat_grad.split(sizes)
        self.mlp = ManualMLP(list(policy.actor), mlp, g_mlp)
        self.width = self.mlp.linears[-1].out_features

    @classmethod
    def build(cls, policy, flat_grad: Tensor | None = None) -> ManualActor | None:
        """The hand-written path when ``policy`` is an ``ActorCritic`` whose ``dist_params``
        and ``actor_parameters`` are its own and whose actor is a plain MLP; else None."""
        if not own_methods(policy, "dist_params", "actor_parameters"):
            return None
        mlp = mlp_parameters(policy.actor)
        return None if mlp is None else cls(policy, mlp, flat_grad)

    def applies(self, obs: Tensor) -> bool:
        """False for observations that are not [B, features], or while a hook is set."""
        hooked = self.log_std is not None and has_grad_hook(self.log_std)
        return obs.dim() == 2 and self.mlp.applies() and not hooked

    def forward(self, obs: Tensor) -> Tensor:
        """The distribution parameters [B, P] (outside autograd), caching for ``backward``."""
        out = self.mlp.forward(obs)
        if self.log_std is None:
            return out
        return torch.cat([out, self.log_std.detach().expand_as(out)], dim=-1)

    @torch.no_grad()
    def backward(self, g_params: Tensor, attach: bool = True) -> None:
        """``flat_grad`` (and with ``attach`` every actor parameter's ``.grad``) set to
        ∂L/∂θ given ``g_params`` = ∂L/∂params [B, P] of the last ``forward``."""
        self.mlp.backward(g_params[:, :self.width], attach)
        if self.log_std is not None:
            torch.sum(g_params[:, self.width:], 0, out=self.log_std_grad)
            if attach and self.log_std.grad is not self.log_std_grad:
                self.log_std.grad = self.log_std_grad
