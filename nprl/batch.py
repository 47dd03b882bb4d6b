"""The rollout batch (time-major, typed, documented shapes) and GAE as a pure function."""

from __future__ import annotations

from dataclasses import dataclass, fields

import torch
from torch import Tensor


@dataclass(frozen=True)
class Batch:
    """One rollout of T = n_steps steps from N = n_envs envs, on the training device.

    obs:          [T, N, obs_dim] observations the policy acted on (normalised if enabled)
    actions:      [T, N] int64 (discrete) or [T, N, act_dim] float (continuous, unclipped)
    log_probs:    [T, N] log π_old(a|s) of the acting policy
    dist_params:  [T, N, P] the acting policy's distribution parameters (for KL(old ‖ new))
    rewards:      [T, N] rewards (scaled if reward scaling is on)
    values:       [T, N] V_old(s_t)
    terminated:   [T, N] bool, true terminal states (no bootstrap)
    truncated:    [T, N] bool, time-limit cuts (bootstrap from ``final_values``)
    final_values: [T, N] V_old(final observation) where truncated, 0 elsewhere
    last_values:  [N] V_old of the observation after the last step
    advantages:   [T, N] GAE(γ, λ) advantages
    returns:      [T, N] advantages + values, the critic's regression targets
    """

    obs: Tensor
    actions: Tensor
    log_probs: Tensor
    dist_params: Tensor
    rewards: Tensor
    values: Tensor
    terminated: Tensor
    truncated: Tensor
    final_values: Tensor
    last_values: Tensor
    advantages: Tensor
    returns: Tensor

    @property
    def size(self) -> int:
        return self.rewards.numel()

    def flat(self) -> Samples:
        """The T·N transitions as one batch dimension (time-major order kept)."""
        def f(x: Tensor) -> Tensor:
            return x.reshape(-1, *x.shape[2:])

        return Samples(
            obs=f(self.obs), actions=f(self.actions), log_probs=f(self.log_probs),
            dist_params=f(self.dist_params), advantages=f(self.advantages),
            returns=f(self.returns), values=f(self.values),
        )


@dataclass(frozen=True)
class Samples:
    """Flat transitions, B = T·N: obs [B, obs_dim], actions [B] or [B, act_dim],
    log_probs [B], dist_params [B, P], advantages [B], returns [B], values [B]."""

    obs: Tensor
    actions: Tensor
    log_probs: Tensor
    dist_params: Tensor
    advantages: Tensor
    returns: Tensor
    values: Tensor

    def __len__(self) -> int:
        return self.obs.shape[0]

    def index(self, idx: Tensor) -> Samples:
        return Samples(**{f.name: getattr(self, f.name)[idx] for f in fields(self)})

    def split(self, sizes: list[int]) -> list[Samples]:
        """Consecutive row blocks of these sizes (views, no copies)."""
        cols = [getattr(self, f.name).split(sizes) for f in fields(self)]
        return [Samples(*block) for block in zip(*cols)]


def gae(
    rewards: Tensor,
    values: Tensor,
    terminated: Tensor,
    truncated: Tensor,
    final_values: Tensor,
    last_values: Tensor,
    gamma: float,
    lam: float,
) -> tuple[Tensor, Tensor]:
    """Generalised advantage estimation (Schulman et al. 2016), time-major [T, N].

    The one-step target of step t bootstraps from
      0                      if the episode terminated at t (a true terminal state),
      final_values[t]        if it was truncated at t (time limit: the state has a future),
      values[t + 1]          otherwise (last_values at t = T − 1),
    and the recursion A_t = δ_t + γλ A_{t+1} is cut wherever the episode ended.
    Returns (advantages, returns = advantages + values).
    """
    T = rewards.shape[0]
    ended = (terminated | truncated).to(rewards.dtype)
    next_values = torch.cat([values[1:], last_values.unsqueeze(0)], dim=0)
    bootstrap = torch.where(truncated, final_values, next_values)
    bootstrap = torch.where(terminated, torch.zeros_like(bootstrap), bootstrap)
    deltas = rewards + gamma * bootstrap - values
    carry = gamma * lam * (1.0 - ended)
    advantages = torch.empty_like(rewards)
    running = torch.zeros_like(last_values)
    for t in range(T - 1, -1, -1):
        running = deltas[t] + carry[t] * running
        advantages[t] = running
    return advantages, advantages + values
