"""The policy objectives every natural-gradient agent evaluates on a batch (NPG, TRPO and
ACKTR share them): the importance-sampled surrogate and the mean KL to the acting policy."""

from __future__ import annotations

import torch
from torch import Tensor

from nprl.agents.mlp_grad import ManualActor
from nprl.batch import Samples
from nprl.curvature import flat
from nprl.distributed import all_reduce_mean, global_mean_std


def normalize(x: Tensor, moments: tuple[Tensor, Tensor] | None = None) -> Tensor:
    """Standardise with the mean and std over all ranks' samples (``moments``: those,
    when already known)."""
    mean, std = moments if moments is not None else global_mean_std(x)
    return (x - mean) / (std + 1e-8)


class BatchObjective:
    """L(θ) = E[r(θ) Â], r = π_θ(a|s) / π_old(a|s), and KL(π_old ‖ π_θ) on one batch.

    Every evaluation is one forward pass of the actor: the surrogate and the KL read the
    same distribution parameters (a TRPO update evaluates ~3 points of its line search;
    two passes each, the cost of 2,048 Pendulum rows, were ~15% of the update).

    ``gradient()``  g = ∇θ L at θ_old, flat over ``policy.actor_parameters()``; keeps
                    L(θ_old) as ``surr0`` for the line search, which then need not
                    evaluate θ_old again. By hand for a plain-MLP ``ActorCritic``
                    (``ManualActor``: ∂L/∂params = r Â ∂log π/∂params / B, then the MLP's
                    reverse pass; ~2× cheaper than autograd), autograd otherwise.
    ``evaluate()``  (L, KL) at the current parameters, as the line search calls it.
    ``entropy(moved)`` the mean entropy at the current parameters: the last evaluated
                    point's when the update moved θ there (an accepted step), else one pass.
    """

    def __init__(self, policy, s: Samples, adv: Tensor) -> None:
        self.policy, self.s, self.adv = policy, s, adv
        self.family = policy.family
        self.surr0: Tensor | None = None
        self._last: Tensor | None = None  # the distribution parameters of the last evaluate

    def gradient(self) -> Tensor:
        s, manual = self.s, ManualActor.build(self.policy)
        if manual is not None and manual.applies(s.obs):
            with torch.no_grad():
                logp, dlogp = self.family.log_prob_and_grad(manual.forward(s.obs), s.actions)
                w = torch.exp(logp - s.log_probs) * self.adv  # r Â per row
                self.surr0 = all_reduce_mean(w.mean())
                manual.backward(dlogp * (w / len(w)).unsqueeze(-1), attach=False)
            return all_reduce_mean(manual.flat_grad)
        params = self.policy.actor_parameters()
        logp = self.family.log_prob(self.policy.dist_params(s.obs), s.actions)
        surr = all_reduce_mean((torch.exp(logp - s.log_probs) * self.adv).mean())
        g = flat(torch.autograd.grad(surr, params), params)
        self.surr0 = surr.detach()
        return all_reduce_mean(g)

    @torch.no_grad()
    def evaluate(self) -> tuple[Tensor, Tensor]:
        s = self.s
        self._last = params = self.policy.dist_params(s.obs)
        ratio = torch.exp(self.family.log_prob(params, s.actions) - s.log_probs)
        surr, kl = all_reduce_mean(torch.stack(  # one collective for both
            [(ratio * self.adv).mean(), self.family.kl(s.dist_params, params).mean()]))
        return surr, kl

    @torch.no_grad()
    def entropy(self, moved: bool) -> float:
        params = self._last if moved and self._last is not None \
            else self.policy.dist_params(self.s.obs)
        return float(all_reduce_mean(self.family.entropy(params).mean()))
