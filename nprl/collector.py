"""The rollout collector: drives a ``VecEnv`` with the policy and returns a ``Batch``.

Everything stays on the policy's device: actions, rewards and episode statistics are
tensors; the only host synchronisation is one read of the finished episodes per rollout.
The critic is evaluated once per rollout on all observations at once (T·N rows), not per
step, because its parameters do not change within a rollout.
"""

from __future__ import annotations

from dataclasses import dataclass

import gymnasium as gym
import torch
from torch import Tensor

from nprl.batch import Batch, gae
from nprl.envs.base import VecEnv
from nprl.normalize import ObsNormalizer, RewardScaler


@dataclass
class EpisodeStats:
    """Returns and lengths (undiscounted, unscaled) of the episodes that ended in a rollout."""

    returns: list[float]
    lengths: list[int]


class Collector:
    """Collects ``n_steps`` steps from each of ``env.num_envs`` envs per call.

    gamma, gae_lambda: discount (typ. 0.99) and GAE λ (typ. 0.95–0.98).
    obs_normalizer / reward_scaler: optional; their statistics are updated after each
    rollout from that rollout's raw observations / discounted returns.
    """

    def __init__(
        self,
        env: VecEnv,
        policy,
        n_steps: int,
        gamma: float,
        gae_lambda: float,
        obs_normalizer: ObsNormalizer | None = None,
        reward_scaler: RewardScaler | None = None,
        seed: int | None = None,
    ) -> None:
        self.env, self.policy, self.n_steps = env, policy, n_steps
        self.gamma, self.gae_lambda = gamma, gae_lambda
        self.obs_norm, self.reward_scaler = obs_normalizer, reward_scaler
        self.device = env.device
        space = env.single_action_space
        self._box = isinstance(space, gym.spaces.Box)
        if self._box:
            self._low = torch.as_tensor(space.low, dtype=torch.float32, device=self.device)
            self._high = torch.as_tensor(space.high, dtype=torch.float32, device=self.device)
        self.obs = env.reset(seed=seed)
        if self.obs_norm is not None and self.obs_norm.rms.count == 0:
            self.obs_norm.update(self.obs)  # start from the reset distribution, not N(0, 1)
        n = env.num_envs
        self._ep_return = torch.zeros(n, device=self.device)
        self._ep_length = torch.zeros(n, dtype=torch.long, device=self.device)
        self._disc_return = torch.zeros(n, dtype=torch.float64, device=self.device)

    def _normalise(self, obs: Tensor) -> Tensor:
        return self.obs_norm(obs) if self.obs_norm is not None else obs

    @torch.no_grad()
    def collect(self) -> tuple[Batch, EpisodeStats]:
        T, N, dev = self.n_steps, self.env.num_envs, self.device
        obs_shape = self.obs.shape[1:]
        raw_obs = torch.empty((T, N, *obs_shape), device=dev)
        final_obs = torch.empty((T, N, *obs_shape), device=dev)
        rewards = torch.empty((T, N), device=dev)
        terminated = torch.empty((T, N), dtype=torch.bool, device=dev)
        truncated = torch.empty((T, N), dtype=torch.bool, device=dev)
        ep_returns = torch.empty((T, N), device=dev)
        ep_lengths = torch.empty((T, N), dtype=torch.long, device=dev)
        actions, log_probs, params = [], [], []
        for t in range(T):
            raw_obs[t] = self.obs
            action, logp, dist_params = self.policy.act(self._normalise(self.obs))
            env_action = action.clamp(self._low, self._high) if self._box else action
            step = self.env.step(env_action)
            actions.append(action), log_probs.append(logp), params.append(dist_params)
            rewards[t], terminated[t], truncated[t] = step.reward, step.terminated, step.truncated
            final_obs[t] = step.final_obs
            self._ep_return += step.reward
            self._ep_length += 1
            ended = step.terminated | step.truncated
            ep_returns[t], ep_lengths[t] = self._ep_return, self._ep_length
            self._ep_return.masked_fill_(ended, 0.0)
            self._ep_length.masked_fill_(ended, 0)
            self.obs = step.obs
        batch = self._finish(raw_obs, final_obs, rewards, terminated, truncated,
                             torch.stack(actions), torch.stack(log_probs), torch.stack(params))
        done = (terminated | truncated).cpu()
        stats = EpisodeStats(ep_returns.cpu()[done].tolist(), ep_lengths.cpu()[done].tolist())
        return batch, stats

    def _finish(self, raw_obs, final_obs, rewards, terminated, truncated, actions, log_probs,
                params) -> Batch:
        T, N = rewards.shape
        obs = self._normalise(raw_obs)
        if self.reward_scaler is not None:
            # Discounted return per env, continued across rollouts, cut at episode ends.
            disc = torch.empty((T, N), dtype=torch.float64, device=self.device)
            for t in range(T):
                self._disc_return = self._disc_return * self.gamma + rewards[t]
                disc[t] = self._disc_return
                self._disc_return = self._disc_return.masked_fill(
                    terminated[t] | truncated[t], 0.0
                )
            self.reward_scaler.update(disc)
            rewards = self.reward_scaler(rewards)
        value = self.policy.value
        values = value(obs.reshape(T * N, -1)).reshape(T, N)
        last_values = value(self._normalise(self.obs))
        final_values = torch.where(
            truncated, value(self._normalise(final_obs).reshape(T * N, -1)).reshape(T, N), 0.0
        )
        advantages, returns = gae(rewards, values, terminated, truncated, final_values,
                                  last_values, self.gamma, self.gae_lambda)
        if self.obs_norm is not None:
            self.obs_norm.update(raw_obs)
        return Batch(obs, actions, log_probs, params, rewards, values, terminated, truncated,
                     final_values, last_values, advantages, returns)

    def state_dict(self) -> dict:
        """What carries over between rollouts (for exact resume): the observations to act
        on next, per-env episode return/length so far, and the discounted-return tracker."""
        return {"obs": self.obs.cpu(), "ep_return": self._ep_return.cpu(),
                "ep_length": self._ep_length.cpu(), "disc_return": self._disc_return.cpu()}

    def load_state_dict(self, state: dict) -> None:
        if tuple(state["obs"].shape) != tuple(self.obs.shape):
            raise ValueError(f"saved observations have shape {tuple(state['obs'].shape)}, "
                             f"expected {tuple(self.obs.shape)}")
        self.obs = state["obs"].to(self.device)
        self._ep_return = state["ep_return"].to(self.device)
        self._ep_length = state["ep_length"].to(self.device)
        self._disc_return = state["disc_return"].to(self.device)
