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

from nprl.acting import acting_fn
from nprl.batch import Batch, gae
from nprl.envs.base import VecEnv
from nprl.envs.stagger import stagger_time_limits
from nprl.normalize import ObsNormalizer, RewardScaler, frozen_or_identity
from nprl.segments import discounted_returns, previous_end


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
    stagger: start the envs' time limits at random offsets (``nprl.envs.stagger``); the
    shortened first episodes are left out of the episode statistics.
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
        stagger: bool = False,
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
        # Envs whose running episode began mid-clock (staggered): not a whole episode.
        self._partial = torch.zeros(n, dtype=torch.bool, device=self.device)
        if stagger:
            self._partial = stagger_time_limits(env, seed).to(self.device) > 0
        self._ep_return = torch.zeros(n, device=self.device)
        self._ep_length = torch.zeros(n, dtype=torch.long, device=self.device)
        self._disc_return = torch.zeros(n, dtype=torch.float64, device=self.device)

    def _normalise(self, obs: Tensor) -> Tensor:
        return self.obs_norm(obs) if self.obs_norm is not None else obs

    @torch.no_grad()
    def collect(self) -> tuple[Batch, EpisodeStats]:
        # The per-step loop only acts and steps: every per-step tensor is appended to a
        # list and stacked once, and episode statistics are computed after the rollout
        # (each avoided op is ~2–5 µs on a CPU, as much as the env step itself).
        policy, env = self.policy, self.env
        norm = frozen_or_identity(self.obs_norm, self.obs.dtype)  # fixed for the rollout
        act = acting_fn(policy)  # policy.dist_params without nn.Module dispatch
        raw_obs, final_obs, rewards, terminated, truncated, actions, params = (
            [], [], [], [], [], [], [])
        obs = self.obs
        # Inference mode skips autograd's per-op bookkeeping (~15% of a CPU env step).
        # Its tensors are read-only outside it; the stacks below are ordinary tensors.
        with torch.inference_mode():
            for _ in range(self.n_steps):
                dist_params = act(norm(obs))
                action = policy.family.sample(dist_params)
                step = env.step(action.clamp(self._low, self._high) if self._box else action)
                raw_obs.append(obs), actions.append(action), params.append(dist_params)
                rewards.append(step.reward), final_obs.append(step.final_obs)
                terminated.append(step.terminated), truncated.append(step.truncated)
                obs = step.obs
        self.obs = obs
        stack = torch.stack
        rewards_t, term_t, trunc_t = stack(rewards), stack(terminated), stack(truncated)
        stats = self._episode_stats(rewards_t, term_t | trunc_t)
        actions_t, params_t = stack(actions), stack(params)
        log_probs = policy.family.log_prob(params_t, actions_t)
        batch = self._finish(stack(raw_obs), stack(final_obs), rewards_t, term_t, trunc_t,
                             actions_t, log_probs, params_t)
        return batch, stats

    def _episode_stats(self, rewards: Tensor, ended: Tensor) -> EpisodeStats:
        """Undiscounted returns and lengths of the episodes that ended in this rollout,
        continuing the partial episodes carried over from the previous one (except the
        shortened first episodes of staggered envs).

        With C_t = Σ_{s≤t} r_s and e(t) the last end strictly before t (−1 if none), an
        episode ending at t has return C_t − C_{e(t)} (plus the carried partial return
        when e(t) = −1) and length t − e(t) (plus the carried length).
        """
        T = rewards.shape[0]
        prev_end = previous_end(ended)
        steps = torch.arange(T, device=self.device).unsqueeze(1)
        cum = rewards.cumsum(0)
        before = torch.where(prev_end >= 0, cum.gather(0, prev_end.clamp(min=0)),
                             -self._ep_return)
        ep_returns = cum - before
        ep_lengths = torch.where(prev_end >= 0, steps - prev_end, steps + 1 + self._ep_length)
        tail = torch.where(ended[-1], T - 1, prev_end[-1])  # last end in the rollout
        self._ep_return = torch.where(tail >= 0, cum[-1] - cum.gather(0, tail.clamp(min=0)
                                                                      .unsqueeze(0))[0],
                                      self._ep_return + cum[-1])
        self._ep_length = torch.where(tail >= 0, T - 1 - tail, self._ep_length + T)
        # prev_end < 0: the episode that was running when the rollout began
        keep = (ended & ~((prev_end < 0) & self._partial)).cpu()
        self._partial &= ~ended.any(0)
        return EpisodeStats(ep_returns.cpu()[keep].tolist(), ep_lengths.cpu()[keep].tolist())

    def _finish(self, raw_obs, final_obs, rewards, terminated, truncated, actions, log_probs,
                params) -> Batch:
        T, N = rewards.shape
        obs = self._normalise(raw_obs)
        if self.reward_scaler is not None:
            # Discounted return per env, continued across rollouts, cut at episode ends.
            disc, self._disc_return = discounted_returns(rewards, terminated | truncated,
                                                         self.gamma, self._disc_return)
            self.reward_scaler.update(disc)
            rewards = self.reward_scaler(rewards)
        value = self.policy.value
        values = value(obs.reshape(T * N, -1)).reshape(T, N)
        last_values = value(self._normalise(self.obs))
        final_values = truncation_values(value, self._normalise(final_obs), truncated,
                                         sparse=truncated.is_cpu)
        advantages, returns = gae(rewards, values, terminated, truncated, final_values,
                                  last_values, self.gamma, self.gae_lambda)
        if self.obs_norm is not None:
            self.obs_norm.update(raw_obs)
        return Batch(obs, actions, log_probs, params, rewards, values, terminated, truncated,
                     final_values, last_values, advantages, returns)

    def state_dict(self) -> dict:
        """What carries over between rollouts (for exact resume): the observations to act
        on next, per-env episode return/length so far, the discounted-return tracker, and
        which envs still run a staggered first episode."""
        return {"obs": self.obs.cpu(), "ep_return": self._ep_return.cpu(),
                "ep_length": self._ep_length.cpu(), "disc_return": self._disc_return.cpu(),
                "partial": self._partial.cpu()}

    def load_state_dict(self, state: dict) -> None:
        if tuple(state["obs"].shape) != tuple(self.obs.shape):
            raise ValueError(f"saved observations have shape {tuple(state['obs'].shape)}, "
                             f"expected {tuple(self.obs.shape)}")
        self.obs = state["obs"].to(self.device)
        self._ep_return = state["ep_return"].to(self.device)
        self._ep_length = state["ep_length"].to(self.device)
        self._disc_return = state["disc_return"].to(self.device)
        if "partial" in state:  # (absent from checkpoints written before staggering)
            self._partial = state["partial"].to(self.device)


def truncation_values(value, final_obs: Tensor, truncated: Tensor, sparse: bool) -> Tensor:
    """V(final observation) where an episode was truncated, 0 elsewhere [T, N].

    final_obs [T, N, obs_dim] (normalised). Truncations are rare (Pendulum: one in 200
    steps per env), so on a CPU (``sparse``) the critic sees only the truncated rows: their
    count is read for free there, and the 2,048-row pass it saves was ~6% of a Pendulum
    rollout. Off the CPU every row is evaluated, which needs no host synchronisation.
    """
    T, N = truncated.shape
    flat_obs = final_obs.reshape(T * N, -1)
    if not sparse:
        return torch.where(truncated, value(flat_obs).reshape(T, N), 0.0)
    rows = truncated.reshape(-1).nonzero().squeeze(1)
    v = value(flat_obs[rows])  # (no rows: an empty batch, which the critic takes)
    return v.new_zeros(T * N).index_put_((rows,), v).reshape(T, N)
