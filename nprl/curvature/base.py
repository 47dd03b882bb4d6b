"""What every curvature representation shares: the interface, flat-vector helpers and
the output-space Fisher (true or empirical) that all of them pull back through the actor.

The Fisher of a policy π_θ(a|s) averaged over a batch of B observations is

    F = (1/B) Σ_b J_bᵀ M_b J_b,

with J_b = ∂params_b/∂θ the Jacobian of the distribution parameters (network outputs)
and M_b the Fisher of the action distribution in its own parameters: analytic for the
true Fisher (expectation under the policy), e_b e_bᵀ with e_b = ∂log π(a_b)/∂params_b
for the empirical Fisher (the batch's taken actions).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Protocol, runtime_checkable

import torch
from torch import Tensor

FISHER_KINDS = ("true", "empirical")


@runtime_checkable
class Curvature(Protocol):
    """A symmetric PSD matrix over the actor's flat parameters, and a damped solver."""

    damping: float

    def mv(self, v: Tensor) -> Tensor:
        """F v."""
        ...

    def solve(self, g: Tensor) -> Tensor:
        """≈ (F + λI)⁻¹ g, λ = ``self.damping``."""
        ...

    def quad(self, v: Tensor) -> Tensor:
        """vᵀ F v (a 0-dim tensor)."""
        ...

    def to_dense(self) -> Tensor:
        """The n×n matrix this representation stands for."""
        ...


@dataclass
class SolveInfo:
    """What the last ``solve`` did: CG iterations (0 for direct solvers) and the relative
    residual ‖(F + λI)x − g‖ / ‖g‖."""

    iters: int = 0
    residual: float = 0.0


def flat(tensors: Sequence[Tensor | None], like: Sequence[Tensor]) -> Tensor:
    """Concatenate tensors into one flat vector (None → zeros shaped like ``like``)."""
    return torch.cat(
        [(t if t is not None else torch.zeros_like(p)).reshape(-1) for t, p in zip(tensors, like)]
    )


def unflat(v: Tensor, like: Sequence[Tensor]) -> list[Tensor]:
    """Split a flat vector into tensors shaped like ``like``."""
    out, offset = [], 0
    for p in like:
        out.append(v[offset : offset + p.numel()].view_as(p))
        offset += p.numel()
    return out


def check_fisher_kind(fisher: str, actions: Tensor | None) -> None:
    if fisher not in FISHER_KINDS:
        raise ValueError(f"fisher={fisher!r}: expected one of {', '.join(FISHER_KINDS)}")
    if fisher == "empirical" and actions is None:
        raise ValueError("fisher='empirical' needs the batch's actions (actions=...)")


def empirical_scores(family, params: Tensor, actions: Tensor) -> Tensor:
    """e_b = ∂ log π(a_b | params_b) / ∂params_b, [B, P] (per sample, no θ involved)."""
    p = params.detach().requires_grad_(True)
    with torch.enable_grad():
        (e,) = torch.autograd.grad(family.log_prob(p, actions).sum(), p)
    return e


def output_metric(
    family, params: Tensor, fisher: str, actions: Tensor | None
) -> Callable[[Tensor], Tensor]:
    """u ↦ M_b u_b per row, for the true (analytic) or empirical output Fisher."""
    params = params.detach()
    if fisher == "true":
        return lambda u: family.fisher_mv(params, u)
    e = empirical_scores(family, params, actions)
    return lambda u: e * (e * u).sum(-1, keepdim=True)


def output_sqrt(family, params: Tensor, fisher: str, actions: Tensor | None) -> Tensor:
    """L [B, P, K] with L_b L_bᵀ = M_b (K = P for the true Fisher, 1 for the empirical)."""
    params = params.detach()
    if fisher == "true":
        return family.fisher_sqrt(params)
    return empirical_scores(family, params, actions).unsqueeze(-1)


def actor_param_dict(policy) -> dict[str, Tensor]:
    """``{name: parameter}`` for ``policy.actor_parameters()`` in their order, matched by
    identity (for ``torch.func.functional_call``; no selection by name)."""
    names = {id(p): n for n, p in policy.named_parameters()}
    return {names[id(p)]: p for p in policy.actor_parameters()}


def sqrt_rows(policy, obs: Tensor, cot: Tensor, chunk: int | None = 1024) -> Tensor:
    """Per-sample pulled-back rows G [B·K, n]: row (b, k) = J_bᵀ cot[b, :, k].

    ``cot`` [B, P, K]. Then (1/B) GᵀG is the Fisher and (1/B) Σ G² its diagonal.
    Per-sample vector-Jacobian products with ``torch.func`` (cost O(B·K) backward rows,
    ``chunk`` samples at a time to bound memory).
    """
    params = actor_param_dict(policy)
    detached = {k: v.detach() for k, v in params.items()}

    def rows_of(o: Tensor, c: Tensor) -> Tensor:
        def f(p: dict[str, Tensor]) -> Tensor:
            return torch.func.functional_call(policy, p, (o.unsqueeze(0),))[0]

        _, vjp_fn = torch.func.vjp(f, detached)
        (g,) = torch.func.vmap(vjp_fn)(c.T)  # one dict, each value [K, *shape]
        return torch.cat([g[k].reshape(c.shape[1], -1) for k in detached], dim=1)

    G = torch.func.vmap(rows_of, chunk_size=chunk)(obs, cot)  # [B, K, n]
    return G.reshape(-1, G.shape[-1])
