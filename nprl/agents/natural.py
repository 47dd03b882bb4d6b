"""NPG and TRPO: one natural-gradient update; TRPO adds the KL line search.

    g  = ∇θ E[π_θ(a|s)/π_old(a|s) · Â]          policy gradient of the surrogate
    d  = (F + λI)⁻¹ g                            conjugate gradient on Fisher products
    s  = sqrt(2δ / dᵀFd) · d                     the step to the KL trust-region boundary
    θ ← θ + s            (NPG)                   or the largest c^k·s with KL ≤ δ and an
                                                 improving surrogate (TRPO)
    λ ← LM(actual / expected improvement)        when damping is adaptive
    V  ← Adam regression on the returns
"""

from __future__ import annotations

import math

import torch

from nprl.agents.configs import NPGConfig
from nprl.agents.critic import CriticTrainer, explained_variance
from nprl.agents.objectives import BatchObjective, normalize
from nprl.batch import Batch, Samples
from nprl.curvature import (
    KFAC,
    DiagonalFisher,
    FisherOperator,
    kl_line_search,
    make_damping,
    natural_step,
    take_step,
)


class NaturalGradient:
    """The natural-gradient agent; ``cfg.line_search`` makes it TRPO."""

    def __init__(self, policy, cfg: NPGConfig, total_updates: int = 1) -> None:
        self.policy, self.cfg = policy, cfg
        self.total_updates, self.updates = max(1, total_updates), 0
        self.params = policy.actor_parameters()
        self.damping = make_damping(cfg.damping, cfg.cg_damping)
        self.critic = CriticTrainer(policy, cfg.vf_lr, cfg.vf_epochs, cfg.vf_minibatches)

    def curvature(self, s: Samples) -> FisherOperator:
        """The Fisher operator on (a fraction of) the batch, optionally preconditioned."""
        cfg = self.cfg
        if cfg.fisher_fraction < 1.0:
            n = max(1, int(len(s) * cfg.fisher_fraction))
            s = s.index(torch.randperm(len(s), device=s.obs.device)[:n])
        precond, lam = None, self.damping.value
        if cfg.precondition == "diagonal":
            precond = DiagonalFisher(self.policy, s.obs, damping=lam, fisher=cfg.fisher,
                                     actions=s.actions).solve
        elif cfg.precondition == "kfac":  # (F̂_KFAC + λI)⁻¹ ≈ (F + λI)⁻¹, this batch only
            precond = KFAC(self.policy, s.obs, damping=lam, fisher=cfg.fisher,
                           actions=s.actions).solve
        return FisherOperator(self.policy, s.obs, damping=self.damping.value,
                              fisher=cfg.fisher, actions=s.actions, cg_iters=cfg.cg_iters,
                              cg_tol=cfg.cg_tol, preconditioner=precond)

    def update(self, batch: Batch) -> dict[str, float]:
        cfg, s = self.cfg, batch.flat()
        adv = normalize(s.advantages) if cfg.normalize_advantage else s.advantages
        objective = BatchObjective(self.policy, s, adv)
        g = objective.gradient()
        max_kl = self.max_kl()
        ns = natural_step(self.curvature(s), g, max_kl)
        if cfg.line_search:
            ls = kl_line_search(self.params, ns.step, ns.expected_improve, objective.evaluate,
                                max_kl, cfg.backtrack_coef, cfg.max_backtracks,
                                cfg.accept_ratio, surr0=objective.surr0)
        else:
            ls = take_step(self.params, ns.step, ns.expected_improve, objective.evaluate,
                           surr0=objective.surr0)
        # ρ = actual / predicted; a zero step (zero gradient) predicts nothing: ρ undefined.
        rho = ls.actual_improve / ls.expected_improve \
            if ls.accepted and ls.expected_improve != 0 else -math.inf
        self.damping.update(rho if math.isfinite(rho) else -math.inf)
        value_loss = self.critic.fit(s.obs, s.returns, batch.rewards.shape)
        # A fault (reported as "skipped"; the trainer's guard then undoes the whole update):
        # a non-finite gradient, direction or step, a step refused for a non-finite KL or
        # surrogate (a finite refusal is the line search at work), or a critic fault.
        refused_finite = math.isfinite(ls.kl) and math.isfinite(ls.actual_improve)
        fault = (not bool(torch.isfinite(g).all()) or not ns.finite
                 or not (ls.accepted or refused_finite) or self.critic.skipped > 0)
        self.updates += 1
        return {
            "kl": ls.kl, "entropy": objective.entropy(moved=ls.accepted),
            "value_loss": value_loss,
            "explained_variance": explained_variance(s.values, s.returns),
            "cg_residual": ns.cg_residual, "cg_iters": ns.cg_iters, "sFs": ns.sFs,
            "expected_improve": ls.expected_improve, "actual_improve": ls.actual_improve,
            "backtracks": ls.backtracks, "step_accepted": float(ls.accepted),
            "step_frac": ls.step_frac, "damping": ns.damping, "max_kl": max_kl,
            "grad_norm": float(g.norm()), "skipped": float(fault),
        }

    def max_kl(self) -> float:
        """δ for this update: ``max_kl``, or annealed linearly towards ``max_kl_end``."""
        end = self.cfg.max_kl_end
        if end is None:
            return self.cfg.max_kl
        frac = min(1.0, self.updates / self.total_updates)
        return self.cfg.max_kl + frac * (end - self.cfg.max_kl)

    def state_dict(self) -> dict:
        return {"critic": self.critic.state_dict(), "damping": self.damping.value,
                "updates": self.updates}

    def load_state_dict(self, state: dict) -> None:
        self.critic.load_state_dict(state["critic"])
        self.damping.value = float(state["damping"])
        self.updates = int(state["updates"])
