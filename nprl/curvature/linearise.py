"""Linearising the actor once per batch: J v and Jᵀ w for the implicit Fisher.

``"mlp"`` (used automatically when it applies): an ``ActorCritic``-style policy whose
    actor is an ``nn.Sequential`` of ``nn.Linear`` layers and elementwise activations
    (Tanh, ReLU, ELU, LeakyReLU, Sigmoid, Identity). The linearisation runs the forward
    pass once without autograd, keeping each Linear layer's input a_{l-1} and the
    derivative D_l of the activations after it. A product is then hand-written
    forward mode and reverse mode over these caches (z_l = the layer's pre-activation,
    t = the tangent of the current hidden layer):

        J v : t_l = D_l ⊙ (a_{l-1} dW_lᵀ + db_l + t_{l-1} W_lᵀ)
        Jᵀw : g_l = D_l ⊙ (g_{l+1} W_{l+1}),  dW_l = g_lᵀ a_{l-1},  db_l = Σ_b g_l

    with no graph bookkeeping, no recomputation of activations and no second
    differentiation: about the matmuls of one gradient plus one. Where the next layer
    is much wider than the few (P ≤ _MAX_CUT_P) network outputs (P·_CUT_RATIO ≤ H_{l+1},
    e.g. 64 units for a 1- or 2-output head), the linearisation also back-propagates
    the P output directions once, caching A_l = ∂out/∂z_l [B, P, H_l]; products then
    jump from z_l to the outputs by a contraction with A_l (O(B·P·H_l)) instead of the
    B×H_l×H_{l+1} matmuls with W_{l+1}, in both directions. Exact: no approximation
    beyond floating point; the derivatives follow autograd's conventions at kinks.

``"autograd"`` (the fallback for any other actor): one forward pass builds the outputs
    and one ``create_graph`` backward builds the graph of u ↦ Jᵀu (linear in a dummy u).
    J v is a reverse pass through that graph (the double-vjp trick), Jᵀ w a reverse pass
    through the forward graph.

Measured with ``scripts/bench_fvp.py`` (tanh MLPs 64×64 and 256×256, categorical and
Gaussian heads, batches 512–8192, float32, one CPU thread), in units of one surrogate
gradient: a product costs ~0.6 (median; 0.4–1.2) with "mlp" (2026-12-07, after the cut
at 64 units for 1–2 outputs; ~0.8 before), ~1.2–1.8 with "autograd", and 1.5–2.6 by
double backprop of the KL. ``torch.func.jvp`` + ``vjp`` measured
1.3–2.1, ``torch.func.linearize`` + ``vjp`` 1.1–1.4 per product but needs an FX trace of
the actor for every batch.
"""

from __future__ import annotations

from typing import Any

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from nprl.activations import Tanh, tanh
from nprl.curvature.base import flat, unflat

BACKENDS = ("auto", "mlp", "autograd")
# Cut at layer l (cache A_l) when the network has at most _MAX_CUT_P outputs and the next
# layer has ≥ _CUT_RATIO × P units. Measured per update (build + 10 CG products + sᵀFs,
# one CPU thread): at 64 units and B = 1,024, P = 1 gains ~20%, P = 2 ~7%, P = 3 loses ~4%
# (at B = 8,192: P = 1 12%, P = 2 a tie); at 256 units and B = 8,192, P = 2 gains 28%,
# P = 3 19%, P = 4 loses 10% and P = 6 37% (A_l is then [B, P, 256], memory-bound).
_CUT_RATIO = 32
_MAX_CUT_P = 3


ACTIVATIONS = (Tanh, nn.Tanh, nn.Sigmoid, nn.ReLU, nn.LeakyReLU, nn.ELU, nn.Identity)


def activation_and_derivative(m: nn.Module, z: Tensor) -> tuple[Tensor, Tensor | None] | None:
    """(activation(z), d activation/dz) for a supported elementwise module, else None.

    The derivative is None for the identity. Conventions at kinks match autograd's
    (ReLU'(0) = 0, LeakyReLU'(0) = slope, ELU'(0) = α).
    """
    kind = type(m)
    # (The derivatives as one fused multiply-add each: 1 − y·y was two passes, ~2.3× the
    # time at 512–2,048 × 64.)
    if kind is Tanh or kind is nn.Tanh:  # (nn.Tanh's function, by the cheaper formula)
        y = tanh(z)
        return y, torch.addcmul(y.new_ones(()), y, y, value=-1.0)
    if kind is nn.Sigmoid:
        y = torch.sigmoid(z)
        return y, torch.addcmul(y, y, y, value=-1.0)  # y − y² = y (1 − y)
    if kind is nn.ReLU:
        pos = z > 0
        return z * pos, pos.to(z.dtype)
    if kind is nn.LeakyReLU:
        slope = float(m.negative_slope)
        pos = z > 0
        # (not torch.where(pos, 1.0, slope): scalars make float32, rounding the slope)
        return F.leaky_relu(z, slope), torch.full_like(z, slope).masked_fill_(pos, 1.0)
    if kind is nn.ELU:
        alpha = float(m.alpha)
        y = F.elu(z, alpha)
        return y, torch.where(z > 0, torch.ones_like(z), y + alpha)
    if kind is nn.Identity:
        return z, None
    return None


def is_plain(m: nn.Module) -> bool:
    """No hooks that a hand-written forward pass would skip."""
    return not (m._forward_hooks or m._forward_pre_hooks or m._backward_hooks)


def mlp_parameters(net: nn.Module) -> list[Tensor] | None:
    """The weights and biases, in order, of a hook-free ``nn.Sequential`` of Linear layers
    and supported activations with at least one Linear; None for any other network."""
    if type(net) is not nn.Sequential or not is_plain(net):
        return None
    params: list[Tensor] = []
    for m in net:
        if not is_plain(m) or (type(m) is not nn.Linear and type(m) not in ACTIVATIONS):
            return None
        if type(m) is nn.Linear:
            params += [m.weight] + ([m.bias] if m.bias is not None else [])
    return params or None


@torch.no_grad()
def cached_forward(modules: list[nn.Module], x: Tensor
                   ) -> tuple[Tensor, list[Tensor], list[Tensor | None]]:
    """(output, inputs, derivs) of a network ``mlp_parameters`` accepts, without autograd:
    inputs[l] = a_{l-1}, the input of Linear l; derivs[l] = D_l, the derivative of the
    activations after Linear l (None where there are none)."""
    h = x
    inputs: list[Tensor] = []
    derivs: list[Tensor | None] = []
    for m in modules:
        if type(m) is nn.Linear:
            inputs.append(h)
            derivs.append(None)
            h = F.linear(h, m.weight, m.bias)
        else:
            h, d = activation_and_derivative(m, h)  # type: ignore[misc]
            # (an activation before the first Linear acts on the constant input)
            if d is not None and derivs:
                derivs[-1] = d if derivs[-1] is None else derivs[-1] * d
    return h, inputs, derivs


class AutogradLinearisation:
    """J and Jᵀ of any ``policy.dist_params`` through a cached autograd graph."""

    name = "autograd"

    def __init__(self, policy: Any, obs: Tensor, params: list[Tensor]) -> None:
        self.params = params
        with torch.enable_grad():
            self.out = policy.dist_params(obs)
            self._u = torch.zeros_like(self.out, requires_grad=True)
            # Jᵀu as a differentiable function of u: the linearisation, built once.
            self._jtu = torch.autograd.grad(
                self.out, params, self._u, create_graph=True, allow_unused=True,
                materialize_grads=True,
            )

    def jvp(self, v: Tensor) -> Tensor:
        (jv,) = torch.autograd.grad(self._jtu, self._u, unflat(v, self.params), retain_graph=True)
        return jv

    def vjp(self, w: Tensor) -> Tensor:
        g = torch.autograd.grad(self.out, self.params, w, retain_graph=True, allow_unused=True)
        return flat(g, self.params)


def weight_grad(g: Tensor, a: Tensor, out: Tensor) -> Tensor:
    """gᵀa [H_out, H_in] into ``out``: a Linear layer's weight gradient from its output
    cotangent g [B, H_out] and input a [B, H_in]. As (aᵀg)ᵀ when the layer has many more
    outputs than inputs: for a 3 → 64 first layer at B = 1,024, gᵀa took 63 µs and aᵀg
    15 µs (one CPU thread; the BLAS kernel for a 3-column result is slow)."""
    if g.shape[1] > 2 * a.shape[1]:
        return out.copy_((a.T @ g).T)
    return torch.mm(g.T, a, out=out)


def _contract_outputs(w: Tensor, A: Tensor) -> Tensor:
    """Σ_p w[b, p] A[b, p, :] → [B, H]: one multiply(-add) per output (P ≤ _MAX_CUT_P);
    ``bmm`` of B tiny [1, P] × [P, H] products was ~5× slower at P = 1, H = 64."""
    g = A[:, 0] * w[:, :1]
    for p in range(1, A.shape[1]):
        g.addcmul_(A[:, p], w[:, p:p + 1])
    return g


class MLPLinearisation:
    """J and Jᵀ of an ``ActorCritic`` with a Linear/activation ``nn.Sequential`` actor:
    forward- and reverse-mode passes over cached layer inputs and activation
    derivatives, with per-sample output Jacobians A_l at the "cut" layers to skip the
    wide hidden-to-hidden matmuls (see the module doc)."""

    name = "mlp"

    def __init__(self, linears: list[nn.Linear], inputs: list[Tensor],
                 derivs: list[Tensor | None], jacs: dict[int, Tensor], out: Tensor,
                 n_mlp_out: int, log_std: Tensor | None, params: list[Tensor]) -> None:
        self.linears, self.inputs, self.derivs, self.jacs = linears, inputs, derivs, jacs
        self.out, self.n_mlp_out, self.log_std, self.params = out, n_mlp_out, log_std, params
        self._layout()

    @classmethod
    def build(cls, policy: Any, obs: Tensor, params: list[Tensor]) -> MLPLinearisation | None:
        """The linearisation, or None when ``policy`` is not of the supported shape."""
        from nprl.policies import ActorCritic  # local: policies must not need curvature

        if not isinstance(policy, ActorCritic):
            return None
        if type(policy).dist_params is not ActorCritic.dist_params:
            return None
        actor = policy.actor
        expected = mlp_parameters(actor)
        if expected is None or not is_plain(policy):
            return None
        log_std = policy.log_std
        if log_std is not None:
            expected.append(log_std)
        if len(expected) != len(params) or any(a is not b for a, b in zip(expected, params)):
            return None
        modules = list(actor)
        linears = [m for m in modules if type(m) is nn.Linear]
        with torch.no_grad():
            h, inputs, derivs = cached_forward(
                modules, (obs.flatten(1) if obs.dim() > 2 else obs).detach())
            n_mlp_out = h.shape[-1]
            out = h if log_std is None else torch.cat(
                [h, log_std.detach().expand_as(h)], dim=-1
            )
            jacs = cls._output_jacobians(linears, derivs, n_mlp_out, h.shape[0])
        return cls(linears, inputs, derivs, jacs, out, n_mlp_out, log_std, params)

    @staticmethod
    def _output_jacobians(linears: list[nn.Linear], derivs: list[Tensor | None], P: int,
                          B: int) -> dict[int, Tensor]:
        """A_l = ∂out/∂z_l [B, P, H_l] at the cut layers l.

        Cutting at l replaces the matmuls with W_{l+1} in every J- and Jᵀ-product (cost
        ∝ B·H_l·H_{l+1}, compute-bound) by contractions with A_l (cost ∝ B·P·H_l,
        memory-bound): worth it when the next layer is much wider than the P outputs.
        Building A_l costs P backward passes, once per linearisation.
        """
        L = len(linears)
        cuts = [l for l in range(L - 1) if linears[l + 1].out_features >= P * _CUT_RATIO] \
            if P <= _MAX_CUT_P else []
        jacs: dict[int, Tensor] = {}
        if not cuts:
            return jacs
        A: Tensor | None = None  # ∂out/∂(current tensor); None stands for the identity
        for l in range(L - 1, cuts[0] - 1, -1):
            d = derivs[l]
            if d is not None:
                A = torch.diag_embed(d) if A is None else A * d.unsqueeze(1)
            if l in cuts:
                assert A is not None
                jacs[l] = A
            if l > cuts[0]:
                W = linears[l].weight
                A = W.expand(B, *W.shape) if A is None else torch.matmul(A, W)
        return jacs

    def _layout(self) -> None:
        """Offsets of every parameter in the flat vector."""
        self.n = sum(p.numel() for p in self.params)
        self.slots: list[tuple[int, int, int, int]] = []  # weight start/end, bias start/end
        offset = 0
        for lin in self.linears:
            w_end = offset + lin.weight.numel()
            b_end = w_end + (lin.bias.numel() if lin.bias is not None else 0)
            self.slots.append((offset, w_end, w_end, b_end))
            offset = b_end
        self.log_std_slot = (offset, self.n)

    @torch.no_grad()
    def jvp(self, v: Tensor) -> Tensor:
        out: Tensor | None = None  # Σ over cut layers of A_l · (tangent of z_l)
        t: Tensor | None = None  # tangent of the current hidden layer's output
        for l, (lin, a) in enumerate(zip(self.linears, self.inputs)):
            ws, we, bs, be = self.slots[l]
            dW = v[ws:we].view(lin.out_features, lin.in_features)
            # tangent of z_l = a_{l-1} dW_lᵀ + db_l + t W_lᵀ
            u = torch.addmm(v[bs:be], a, dW.T) if be > bs else a @ dW.T
            if t is not None:
                u.addmm_(t, lin.weight.T)
            A = self.jacs.get(l)
            if A is not None:
                # [B, P, H]·[B, H] → [B, P]; broadcast-multiply-sum (bmm of B tiny
                # products is slower for P ≤ _MAX_CUT_P)
                c = (A * u.unsqueeze(1)).sum(-1)
                out = c if out is None else out.add_(c)
                t = None
            else:
                d = self.derivs[l]
                t = u if d is None else u.mul_(d)
        assert t is not None  # the last layer is never cut
        out = t if out is None else out.add_(t)
        if self.log_std is not None:
            s, e = self.log_std_slot
            out = torch.cat([out, v[s:e].expand_as(out)], dim=-1)
        return out

    @torch.no_grad()
    def vjp(self, w: Tensor) -> Tensor:
        P = self.n_mlp_out
        wm = w if w.shape[1] == P else w[:, :P].contiguous()
        res = torch.empty(self.n, dtype=w.dtype, device=w.device)
        g: Tensor | None = None  # cotangent of z_l
        for l in range(len(self.linears) - 1, -1, -1):
            lin, a = self.linears[l], self.inputs[l]
            A = self.jacs.get(l)
            if A is not None:
                g = _contract_outputs(wm, A)
            else:
                g = wm if g is None else g @ self.linears[l + 1].weight
                d = self.derivs[l]
                if d is not None:
                    g = g * d
            ws, we, bs, be = self.slots[l]
            dW = res[ws:we].view(lin.out_features, lin.in_features)
            weight_grad(g, a, out=dW)
            if be > bs:
                torch.sum(g, 0, out=res[bs:be])
        if self.log_std is not None:
            s, e = self.log_std_slot
            torch.sum(w[:, P:], 0, out=res[s:e])
        return res


