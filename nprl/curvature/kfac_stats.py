"""One batch's K-FAC statistics, captured with module hooks (the user's modules are not
rewritten or re-implemented).

For an ``nn.Linear`` layer z = W a + b inside a network whose output distribution has
the output Fisher M_b = L_b L_bᵀ, the Fisher block of W̄ = [W | b] is

    F_W̄ = (1/B) Σ_b Σ_k (ā_b ā_bᵀ) ⊗ (g_bk g_bkᵀ),   ā = [a; 1],  g_bk = ∂(L_b[:, k]ᵀ out_b)/∂z_b,

and K-FAC replaces the average of Kronecker products by the Kronecker product of averages,
A = (1/B) Σ_b ā_b ā_bᵀ and G = (1/B) Σ_b Σ_k g_bk g_bkᵀ (Martens & Grosse 2015). One
forward pass over the observations repeated once per column k, with ``L[:, :, k]`` as the
cotangent of one backward pass, yields every g_bk: a forward hook records each layer's
input a, a full backward hook its output gradient g. The backward pass differentiates
with respect to the *input* only, so the parameters' ``.grad`` are never touched.

Columns L[:, :, k] (the default, "exact"): the analytic output Fisher's square root, so
G is an exact expectation under the policy, no sampling noise. Monte-Carlo ("mc", ACKTR's
choice): the scores of S actions sampled from the policy, each weighted 1/S. The empirical
Fisher: the score of the batch's taken action (one column).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import torch
from torch import Tensor, nn

from nprl.curvature.base import empirical_scores, output_sqrt
from nprl.distributed import all_reduce_mean

G_MODES = ("exact", "mc")


@dataclass
class BatchStats:
    """Per Linear layer (A, G), and per dense block (the Gaussian log-std) its Fisher."""

    linear: list[tuple[Tensor, Tensor]]
    dense: list[Tensor]

    def finite(self) -> bool:
        ts = [t for pair in self.linear for t in pair] + self.dense
        return all(bool(torch.isfinite(t).all()) for t in ts)


def _repeat(x: Tensor, k: int) -> Tensor:
    """k stacked copies of x along the batch dimension (copy j = rows j·B .. (j+1)·B)."""
    return x.repeat(k, *([1] * (x.dim() - 1)))


def linear_statistics(
    linears: list[nn.Linear],
    forward: Callable[[Tensor], Tensor],
    x: Tensor,
    cot: Tensor,
    n: int,
    weight: float = 1.0,
) -> list[tuple[Tensor, Tensor]]:
    """(A, G) per layer of ``linears`` for the rows of ``x`` (the first ``n`` rows are the
    distinct observations, the rest copies of them) and output cotangents ``cot``
    (same rows as ``forward(x)``): A = (1/n) Σ ā āᵀ over the n rows, G = (weight/n) Σ g gᵀ
    over all rows. Each layer must run exactly once in ``forward``."""
    inputs: list[list[Tensor]] = [[] for _ in linears]
    grads: list[list[Tensor]] = [[] for _ in linears]
    handles = []
    for m, a_store, g_store in zip(linears, inputs, grads):
        handles.append(m.register_forward_hook(
            lambda mod, inp, out, s=a_store: s.append(inp[0].detach())))
        handles.append(m.register_full_backward_hook(
            lambda mod, g_in, g_out, s=g_store: s.append(g_out[0].detach())))
    try:
        with torch.enable_grad():
            xi = x.detach().requires_grad_(True)  # a leaf to differentiate: hooks fire
            torch.autograd.grad(forward(xi), xi, cot)
    finally:
        for h in handles:
            h.remove()
    stats = []
    for m, a_store, g_store in zip(linears, inputs, grads):
        if len(a_store) != 1 or len(g_store) != 1:
            raise ValueError("K-FAC needs every nn.Linear of the network to run exactly once "
                             f"per forward pass (a layer ran {len(a_store)} times)")
        a = a_store[0][:n].reshape(n, -1)
        if m.bias is not None:  # the homogeneous coordinate: W̄ ā = W a + b
            a = torch.cat([a, torch.ones_like(a[:, :1])], dim=1)
        g = g_store[0].reshape(-1, m.out_features)
        stats.append((all_reduce_mean(a.T @ a / n), all_reduce_mean(g.T @ g * (weight / n))))
    return stats


def actor_statistics(policy, linears: list[nn.Linear], obs: Tensor, fisher: str,
                     actions: Tensor | None, g_mode: str, samples: int) -> BatchStats:
    """K-FAC statistics of the policy's action distribution over ``obs`` [B, ...].

    The Gaussian log-std (state-independent, the last ``D`` outputs of ``dist_params``)
    gets its exact block (1/B) Σ_b (L_b L_bᵀ)[ls, ls]: 2·I for the true Fisher, the
    empirical scores' second moment for the empirical one.
    """
    family, B = policy.family, obs.shape[0]
    with torch.no_grad():
        params = policy.dist_params(obs)
    L = output_sqrt(family, params, fisher, actions)  # [B, P, K]
    n_std = policy.log_std.numel() if getattr(policy, "log_std", None) is not None else 0
    n_mlp = L.shape[1] - n_std
    dense = []
    if n_std:
        Ls = L[:, n_mlp:, :]
        dense.append(all_reduce_mean(torch.einsum("bik,bjk->ij", Ls, Ls) / B))
    forward = policy.dist_params
    if fisher == "true" and g_mode == "mc":
        rep = _repeat(params, samples)
        with torch.no_grad():
            sampled = family.sample(rep)
        cot = empirical_scores(family, rep, sampled)  # ∂log π(ã)/∂params, E[eeᵀ] = M
        linear = linear_statistics(linears, forward, _repeat(obs, samples), cot, B,
                                   1.0 / samples)
        return BatchStats(linear, dense)
    # Columns whose MLP part is zero (the log-std columns of a Gaussian) add nothing to G
    # (NaN columns are kept, so that a non-finite batch is seen and skipped).
    keep = L[:, :n_mlp, :].abs().amax(dim=(0, 1)) != 0
    keep[0] = True
    Lk = L[:, :, keep]
    cot = Lk.permute(2, 0, 1).reshape(-1, L.shape[1])  # row j·B + b = L[b, :, k_j]
    linear = linear_statistics(linears, forward, _repeat(obs, Lk.shape[2]), cot, B)
    return BatchStats(linear, dense)


def critic_statistics(policy, linears: list[nn.Linear], obs: Tensor, g_mode: str,
                      samples: int) -> BatchStats:
    """Gauss–Newton statistics of the value regression: the Fisher of N(V(s), 1), i.e.
    output Fisher 1 (cotangent 1, "exact") or N(0, 1) noise ("mc", as ACKTR)."""
    B = obs.shape[0]

    def forward(x: Tensor) -> Tensor:
        return policy.value(x)

    if g_mode == "mc":
        noise = torch.randn(B * samples, dtype=obs.dtype, device=obs.device)
        linear = linear_statistics(linears, forward, _repeat(obs, samples), noise, B,
                                   1.0 / samples)
    else:
        ones = torch.ones(B, dtype=obs.dtype, device=obs.device)
        linear = linear_statistics(linears, forward, obs, ones, B)
    return BatchStats(linear, [])
