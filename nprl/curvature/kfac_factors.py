"""K-FAC's state across updates: the layout of the flat parameter vector, running averages
of the Kronecker factors, and their (periodically refreshed) eigendecompositions.

An agent owns one ``KFACFactors`` per network (actor, critic), calls ``update`` once per
batch and builds a ``KFAC`` view (``view``) for the solves of that update. Everything
persistent is plain tensors and numbers (``state_dict``), so checkpoints load with
``torch.load(weights_only=True)``.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

import torch
from torch import Tensor, nn

from nprl.curvature.base import FISHER_KINDS, check_fisher_kind
from nprl.curvature.eigen import Eigen, safe_eigh
from nprl.curvature.kfac_stats import G_MODES, BatchStats, actor_statistics, critic_statistics

if TYPE_CHECKING:
    from nprl.curvature.kfac import KFAC

TARGETS = ("actor", "critic")


@dataclass
class LinearBlock:
    """An ``nn.Linear`` layer's slice of the flat vector: weight [out, fan_in] row-major at
    ``offset``, then the bias [out] if there is one. Its K-FAC block is G ⊗ A over
    vec_row([W | b]), re-ordered to this layout."""

    module: nn.Linear
    offset: int
    out: int
    fan_in: int
    bias: bool

    @property
    def a_dim(self) -> int:
        return self.fan_in + int(self.bias)

    @property
    def size(self) -> int:
        return self.out * self.a_dim


@dataclass
class DenseBlock:
    """A small parameter with an explicit Fisher block (the Gaussian log-std)."""

    offset: int
    size: int


Block = LinearBlock | DenseBlock


def layout(params: list[Tensor], network: nn.Module, dense: list[Tensor]) -> list[Block]:
    """Blocks covering ``params`` in order: each Linear of ``network`` as weight then bias,
    each tensor of ``dense`` as one dense block. Anything else is an error."""
    owner = {}
    for m in network.modules():
        if isinstance(m, nn.Linear):
            owner[id(m.weight)] = m
    dense_ids = {id(p) for p in dense}
    blocks: list[Block] = []
    i, offset = 0, 0
    while i < len(params):
        p = params[i]
        if id(p) in owner:
            m = owner[id(p)]
            has_bias = m.bias is not None
            if has_bias and (i + 1 >= len(params) or params[i + 1] is not m.bias):
                raise ValueError("K-FAC needs each nn.Linear's bias right after its weight")
            blk = LinearBlock(m, offset, m.out_features, m.in_features, has_bias)
            i += 2 if has_bias else 1
        elif id(p) in dense_ids:
            blk = DenseBlock(offset, p.numel())
            i += 1
        else:
            raise ValueError(f"K-FAC covers nn.Linear layers and the Gaussian log-std; a "
                             f"parameter of shape {tuple(p.shape)} is neither")
        blocks.append(blk)
        offset += blk.size
    return blocks


class KFACFactors:
    """Running K-FAC factors of ``policy``'s actor (the action distribution's Fisher over
    ``actor_parameters()``) or critic (the Gauss–Newton matrix of the value regression
    over ``critic_parameters()``).

    decay: running-average decay of A and G, F ← (1−w)F + w·F_batch with
        w = max(1 − decay, 1/t) at the t-th update (a plain mean over the first batches,
        then an exponential average); 0 keeps the last batch only. Typical 0.95–0.99.
    inverse_every: eigendecompositions recomputed every k updates (1–10; K-FAC's cost
        saving: in between, solves use the last eigenbases).
    fisher / g_mode / samples: see ``nprl.curvature.kfac_stats`` ("true"/"empirical";
        "exact"/"mc"; sampled actions per observation for "mc").
    """

    def __init__(self, policy, *, target: str = "actor", decay: float = 0.95,
                 inverse_every: int = 1, fisher: str = "true", g_mode: str = "exact",
                 samples: int = 1) -> None:
        if target not in TARGETS:
            raise ValueError(f"target={target!r}: expected 'actor' or 'critic'")
        if g_mode not in G_MODES:
            raise ValueError(f"g_mode={g_mode!r}: expected one of {', '.join(G_MODES)}")
        if fisher not in FISHER_KINDS:  # (the actions are checked at update time)
            raise ValueError(f"fisher={fisher!r}: expected one of {', '.join(FISHER_KINDS)}")
        if not 0.0 <= decay < 1.0 or inverse_every < 1 or samples < 1:
            raise ValueError("need 0 ≤ decay < 1, inverse_every ≥ 1, samples ≥ 1")
        self.target, self.decay, self.inverse_every = target, decay, inverse_every
        self.fisher, self.g_mode, self.samples = fisher, g_mode, samples
        actor = target == "actor"
        self.params = policy.actor_parameters() if actor else policy.critic_parameters()
        std = getattr(policy, "log_std", None)
        dense = [std] if actor and std is not None else []
        self.blocks = layout(self.params, policy.actor if actor else policy.critic, dense)
        self.linears = [b.module for b in self.blocks if isinstance(b, LinearBlock)]
        like = self.params[0]

        def eye(n: int) -> Tensor:
            return torch.eye(n, dtype=like.dtype, device=like.device)

        # Identity until the first finite batch replaces them (w = 1 at t = 1).
        self.A = [eye(b.a_dim) for b in self.blocks if isinstance(b, LinearBlock)]
        self.G = [eye(b.out) for b in self.blocks if isinstance(b, LinearBlock)]
        self.D = [eye(b.size) for b in self.blocks if isinstance(b, DenseBlock)]
        self.eig_A = [Eigen(torch.diagonal(m).clone(), m.clone()) for m in self.A]
        self.eig_G = [Eigen(torch.diagonal(m).clone(), m.clone()) for m in self.G]
        self.eig_D = [Eigen(torch.diagonal(m).clone(), m.clone()) for m in self.D]
        self.updates, self.skipped, self.fallbacks = 0, 0, 0

    def statistics(self, policy, obs: Tensor, actions: Tensor | None = None) -> BatchStats:
        """This batch's factors (not yet averaged in)."""
        if self.target == "critic":
            return critic_statistics(policy, self.linears, obs, self.g_mode, self.samples)
        check_fisher_kind(self.fisher, actions)
        return actor_statistics(policy, self.linears, obs, self.fisher, actions, self.g_mode,
                                self.samples)

    @torch.no_grad()
    def update(self, policy, obs: Tensor, actions: Tensor | None = None) -> bool:
        """Average this batch's factors in; refresh the eigenbases when due. A batch with
        non-finite statistics is skipped whole (``skipped`` counts them). True if used."""
        stats = self.statistics(policy, obs, actions)
        if not stats.finite():
            self.skipped += 1
            return False
        self.updates += 1
        w = max(1.0 - self.decay, 1.0 / self.updates)
        for i, (A, G) in enumerate(stats.linear):
            self.A[i].mul_(1 - w).add_(A, alpha=w)
            self.G[i].mul_(1 - w).add_(G, alpha=w)
        for i, D in enumerate(stats.dense):
            self.D[i].mul_(1 - w).add_(D, alpha=w)
        if (self.updates - 1) % self.inverse_every == 0:
            self.refresh()
        return True

    def refresh(self) -> None:
        """Eigendecompose every factor (in float64; ``safe_eigh`` never fails)."""
        def eig(M: Tensor) -> Eigen:
            e = safe_eigh(M.double())
            self.fallbacks += int(e.fallback)
            return Eigen(e.values.to(M.dtype), e.vectors.to(M.dtype), e.fallback, e.tries)

        self.eig_A = [eig(M) for M in self.A]
        self.eig_G = [eig(M) for M in self.G]
        self.eig_D = [eig(M) for M in self.D]

    def view(self, damping: float, form: str = "eigen") -> KFAC:
        """The ``KFAC`` curvature of the current factors with damping λ (see ``KFAC``)."""
        from nprl.curvature.kfac import KFAC

        return KFAC.from_factors(self, damping, form)

    def diagnostics(self) -> dict[str, float]:
        """Extreme eigenvalues and condition numbers of the A and G factors (over layers;
        a zero eigenvalue counts as eps·max, so a softmax output layer's G, which always has
        one, reads ≈ 1/eps), and counters: ``kfac_fallbacks`` (diagonal fallbacks of
        eigh), ``kfac_skipped`` (non-finite batches)."""
        out: dict[str, float] = {}
        for name, eigs in (("A", self.eig_A), ("G", self.eig_G)):
            lo = min(float(e.values.min()) for e in eigs)
            hi = max(float(e.values.max()) for e in eigs)
            tiny = torch.finfo(eigs[0].values.dtype).eps
            cond = max(float(e.values.max() / e.values.min().clamp_min(
                tiny * float(e.values.max()) + 1e-30)) for e in eigs)
            out |= {f"kfac_eig_min_{name}": lo, f"kfac_eig_max_{name}": hi,
                    f"kfac_cond_{name}": cond}
        return out | {"kfac_fallbacks": float(self.fallbacks), "kfac_skipped": float(self.skipped)}

    def state_dict(self) -> dict:
        def eigs(es: list[Eigen]) -> list[list[Tensor]]:
            return [[e.values.clone(), e.vectors.clone()] for e in es]

        return {"A": [m.clone() for m in self.A], "G": [m.clone() for m in self.G],
                "D": [m.clone() for m in self.D], "eig_A": eigs(self.eig_A),
                "eig_G": eigs(self.eig_G), "eig_D": eigs(self.eig_D),
                "updates": self.updates, "skipped": self.skipped, "fallbacks": self.fallbacks}

    def load_state_dict(self, state: dict) -> None:
        for mine, theirs in ((self.A, state["A"]), (self.G, state["G"]), (self.D, state["D"])):
            if len(mine) != len(theirs):
                raise ValueError("K-FAC state does not match this network's layers")
            for m, t in zip(mine, theirs):
                m.copy_(t)
        like = self.params[0]

        def eigs(saved: list) -> list[Eigen]:
            return [Eigen(v.to(like.device, like.dtype), q.to(like.device, like.dtype))
                    for v, q in saved]

        self.eig_A, self.eig_G = eigs(state["eig_A"]), eigs(state["eig_G"])
        self.eig_D = eigs(state["eig_D"])
        self.updates, self.skipped = int(state["updates"]), int(state["skipped"])
        self.fallbacks = int(state["fallbacks"])
