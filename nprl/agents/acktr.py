"""ACKTR (Wu et al. 2017): the natural policy gradient with K-FAC curvature and a
KL-clipped step, and a K-FAC Gauss–Newton critic.

    g  = ∇θ E[π_θ(a|s)/π_old(a|s) · Â]             policy gradient of the surrogate
    g̃  = g + μ g̃                                   optional heavy-ball momentum
    A, G ← running averages of this batch's K-FAC factors (eigh every k updates)
    d  = (F̂ + λI)⁻¹ g̃                              K-FAC solve in the factors' eigenbases
    η  = min(lr, sqrt(2·kl_clip / dᵀFd))            F = F̂ (the paper) or the exact Fisher
    θ ← θ + η d                                     undone if the KL/surrogate is not finite
    λ ← LM(actual / expected improvement)           when damping is adaptive
    V  ← K-FAC Gauss–Newton steps on ½E[(V − R)²]   (``KFACCritic``)

The step rule is the paper's trust-region form of K-FAC: with η = sqrt(2δ/dᵀFd) the
quadratic model of the KL, ½ηdᵀFdη, equals δ = kl_clip exactly; the ``lr`` cap only ever
shrinks the step.
"""

from __future__ import annotations

import math

import torch
from torch import Tensor

from nprl.agents.configs import ACKTRConfig
from nprl.agents.critic import explained_variance
from nprl.agents.kfac_critic import KFACCritic
from nprl.agents.objectives import BatchObjective, normalize
from nprl.batch import Batch, Samples
from nprl.curvature import (
    KFAC,
    FisherOperator,
    KFACFactors,
    make_damping,
    natural_step,
    take_step,
)


class ACKTR:
    """The ACKTR agent; ``update(batch)`` follows the module doc line by line."""

    def __init__(self, policy, cfg: ACKTRConfig) -> None:
        self.policy, self.cfg = policy, cfg
        self.params = policy.actor_parameters()
        self.factors = KFACFactors(policy, decay=cfg.kfac_decay, inverse_every=cfg.inverse_every,
                                   fisher=cfg.fisher, g_mode=cfg.g_mode, samples=cfg.g_samples)
        self.damping = make_damping(cfg.damping, cfg.kfac_damping)
        self.critic = KFACCritic(policy, lr=cfg.vf_lr, iters=cfg.vf_iters, damping=cfg.vf_damping,
                                 decay=cfg.kfac_decay, inverse_every=cfg.inverse_every,
                                 form=cfg.kfac_damping_form, g_mode=cfg.g_mode,
                                 samples=cfg.g_samples)
        self.g_momentum = torch.zeros(sum(p.numel() for p in self.params),
                                      dtype=self.params[0].dtype, device=self.params[0].device)

    def curvature(self, s: Samples) -> KFAC:
        """Fold this batch into the running K-FAC factors; the damped view of them."""
        self.factors.update(self.policy, s.obs, s.actions)
        return self.factors.view(self.damping.value, self.cfg.kfac_damping_form)

    def with_momentum(self, g: Tensor) -> Tensor:
        """g̃ = g + μ g̃_prev (a non-finite gradient resets the buffer instead)."""
        if self.cfg.momentum == 0.0 or not bool(torch.isfinite(g).all()):
            self.g_momentum.zero_()
            return g
        self.g_momentum.mul_(self.cfg.momentum).add_(g)
        return self.g_momentum.clone()

    def trust_scale(self, d: Tensor, dFd_kfac: float, s: Samples) -> tuple[float, float]:
        """(sqrt(2·kl_clip / dᵀFd), dᵀFd) with F = F̂ or the exact Fisher of the batch."""
        dFd = dFd_kfac
        if self.cfg.kl_curvature == "exact":
            op = FisherOperator(self.policy, s.obs, fisher=self.cfg.fisher, actions=s.actions)
            dFd = float(op.quad(d))
        if dFd > 0:
            return math.sqrt(2 * self.cfg.kl_clip / dFd), dFd
        return (0.0 if dFd == 0 else math.nan), dFd

    def update(self, batch: Batch) -> dict[str, float]:
        cfg, s = self.cfg, batch.flat()
        adv = normalize(s.advantages) if cfg.normalize_advantage else s.advantages
        objective = BatchObjective(self.policy, s, adv)
        g = objective.gradient()
        ns = natural_step(self.curvature(s), self.with_momentum(g), cfg.kl_clip)
        scale, dFd = self.trust_scale(ns.direction, ns.sFs, s)
        eta = min(cfg.lr, scale) if math.isfinite(scale) else math.nan  # NaN: step skipped
        step = eta * ns.direction
        ls = take_step(self.params, step, float(g @ step), objective.evaluate,
                       surr0=objective.surr0)
        rho = ls.actual_improve / ls.expected_improve \
            if ls.accepted and ls.expected_improve != 0 else -math.inf
        self.damping.update(rho if math.isfinite(rho) else -math.inf)
        value_loss = self.critic.fit(s.obs, s.returns)
        # A fault for the trainer's guard (as in NaturalGradient): a non-finite gradient,
        # direction or step, or a critic step refused for a non-finite value.
        fault = (not bool(torch.isfinite(g).all()) or not ns.finite or not ls.accepted
                 or self.critic.skipped > 0)
        return {
            "kl": ls.kl, "entropy": objective.entropy(moved=ls.accepted),
            "value_loss": value_loss,
            "explained_variance": explained_variance(s.values, s.returns),
            "cg_residual": ns.cg_residual, "cg_iters": ns.cg_iters, "sFs": dFd,
            "sFs_kfac": ns.sFs,
            "expected_improve": ls.expected_improve, "actual_improve": ls.actual_improve,
            "backtracks": ls.backtracks, "step_accepted": float(ls.accepted),
            "step_frac": ls.step_frac, "damping": ns.damping, "kfac_damping": ns.damping,
            "step_scale": eta, "grad_norm": float(g.norm()), "kl_clip": cfg.kl_clip,
            "skipped": float(fault), "vf_step_scale": self.critic.last_scale,
            **self.factors.diagnostics(),
        }

    def state_dict(self) -> dict:
        return {"factors": self.factors.state_dict(), "critic": self.critic.state_dict(),
                "damping": self.damping.value, "g_momentum": self.g_momentum.clone()}

    def load_state_dict(self, state: dict) -> None:
        self.factors.load_state_dict(state["factors"])
        self.critic.load_state_dict(state["critic"])
        self.damping.value = float(state["damping"])
        self.g_momentum.copy_(state["g_momentum"])
