"""Critic regression shared by the natural-gradient agents: Adam epochs of minibatch
least squares on the GAE returns."""

from __future__ import annotations

import torch
from torch import Tensor

from nprl.agents.flat_adam import FlatAdam
from nprl.agents.minibatch import MinibatchSampler
from nprl.agents.mlp_grad import ManualMLP
from nprl.distributed import all_reduce_mean, all_reduce_mean_, global_moments
from nprl.policies import ActorCritic


def adam(params: list[Tensor], lr: float, **kwargs) -> torch.optim.Adam:
    """torch's Adam (for gradients autograd computes; ``FlatAdam`` for the hand-written
    ones), with the fused kernel where torch has it: on a CPU with small MLPs the
    per-parameter Python loop of the default implementation costs ~4× more per step."""
    try:
        return torch.optim.Adam(params, lr=lr, fused=True, **kwargs)
    except (RuntimeError, TypeError):
        return torch.optim.Adam(params, lr=lr, **kwargs)


def explained_variance(values: Tensor, returns: Tensor) -> float:
    """1 − Var(returns − values) / Var(returns): 1 is a perfect critic, ≤ 0 is useless.
    Variances over all ranks' samples."""
    var_r, var_e = global_moments(torch.stack([returns, returns - values], dim=1))[1]
    return float("nan") if float(var_r) == 0 else float(1 - var_e / var_r)


class CriticTrainer:
    """lr: Adam step (typ. 1e-3); epochs: passes over the batch (typ. 5–10);
    minibatches: splits per epoch (typ. 4–32); max_grad_norm: clip (None: off)."""

    def __init__(self, policy, lr: float, epochs: int, minibatches: int,
                 max_grad_norm: float | None = None) -> None:
        self.policy = policy
        self.params = policy.critic_parameters()
        self.epochs, self.minibatches, self.max_grad_norm = epochs, minibatches, max_grad_norm
        self.skipped = 0  # minibatches of the last ``fit`` whose gradient was not finite
        # The hand-written gradient when the critic is a plain MLP reading obs as they
        # come (~3× cheaper per step on a CPU), with Adam on its flat gradient buffer;
        # autograd and torch's Adam otherwise.
        critic = getattr(policy, "critic", None)
        plain_value = getattr(type(policy), "value", None) is ActorCritic.value
        self._mlp = ManualMLP.build(critic, self.params) if plain_value else None
        self.optimizer = adam(self.params, lr) if self._mlp is None \
            else FlatAdam(self.params, self._mlp.flat_grad, lr)

    def _loss_and_grad(self, obs: Tensor, returns: Tensor, by_hand: bool) -> tuple[Tensor, Tensor]:
        """(loss, finite): the minibatch loss, its gradient in ``.grad`` (mean over ranks)."""
        if by_hand:
            loss = self._mlp.mse_and_grad(obs, returns)
            all_reduce_mean_([self._mlp.flat_grad])
            # One sum instead of an elementwise test: a NaN or ±inf anywhere makes it
            # non-finite (so does a sum overflowing float range: skipped too).
            return loss, torch.isfinite(self._mlp.flat_grad.sum().add_(loss))
        loss = (self.policy.value(obs) - returns).pow(2).mean()
        self.optimizer.zero_grad(set_to_none=False)
        loss.backward()
        grads = [p.grad for p in self.params]
        all_reduce_mean_(grads)
        finite = torch.stack([torch.isfinite(g).all() for g in grads]).all()
        return loss.detach(), finite & torch.isfinite(loss)

    def fit(self, obs: Tensor, returns: Tensor, shape: tuple[int, ...] | None = None) -> float:
        """Regress V(obs) on returns; the mean squared error of the last epoch.
        shape: the batch's (T, N) before flattening (minibatches stratified by env)."""
        losses, self.skipped = [], 0
        sampler = MinibatchSampler(shape or (len(obs),), self.minibatches, obs.device)
        by_hand = self._mlp is not None and obs.dim() == 2 and self._mlp.applies()
        for _ in range(self.epochs):
            losses.clear()
            for idx in sampler.epoch():
                loss, finite = self._loss_and_grad(obs[idx], returns[idx], by_hand)
                if not bool(finite):
                    self.skipped += 1
                    continue  # a non-finite gradient is skipped, never applied
                if self.max_grad_norm is not None:
                    torch.nn.utils.clip_grad_norm_(self.params, self.max_grad_norm)
                self.optimizer.step()
                losses.append(loss)
        return float(all_reduce_mean(torch.stack(losses).mean())) if losses else float("nan")

    def state_dict(self) -> dict:
        return {"optimizer": self.optimizer.state_dict()}

    def load_state_dict(self, state: dict) -> None:
        self.optimizer.load_state_dict(state["optimizer"])
