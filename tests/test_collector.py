"""The collector against a counting env whose every number is known in advance."""

import gymnasium as gym
import numpy as np
import pytest
import torch

from nprl.collector import Collector, truncation_values
from nprl.envs import make_env
from nprl.policies import ActorCritic


class CounterEnv(gym.Env):
    """obs = [t]; reward = t after the step; terminates at ``term_at`` (if given);
    a TimeLimit of 5 steps truncates otherwise."""

    def __init__(self, term_at: int | None = None):
        self.observation_space = gym.spaces.Box(-100, 100, (1,), np.float32)
        self.action_space = gym.spaces.Discrete(2)
        self.term_at, self.t = term_at, 0

    def reset(self, *, seed=None, options=None):
        super().reset(seed=seed)
        self.t = 0
        return np.array([0.0], np.float32), {}

    def step(self, action):
        self.t += 1
        terminated = self.term_at is not None and self.t == self.term_at
        return np.array([self.t], np.float32), float(self.t), terminated, False, {}


gym.register("nprl-test/Counter-v0", entry_point=CounterEnv, max_episode_steps=5)


def collect(term_at, n_steps=12, n_envs=2):
    env = make_env("nprl-test/Counter-v0", n_envs, backend="gymnasium") if term_at is None \
        else _env_with(term_at, n_envs)
    torch.manual_seed(0)
    policy = ActorCritic(env.single_observation_space, env.single_action_space, (8,))
    col = Collector(env, policy, n_steps, gamma=0.9, gae_lambda=0.95, seed=0)
    return (*col.collect(), policy)


def _env_with(term_at, n_envs):
    from nprl.envs.gym_backend import GymVecEnv

    return GymVecEnv("nprl-test/Counter-v0", n_envs, env_kwargs={"term_at": term_at})


def test_termination_transitions_and_stats():
    batch, stats, _ = collect(term_at=3)
    # Every row is a real transition: observations cycle 0,1,2 and never show the terminal 3.
    assert batch.obs[:, 0, 0].tolist() == [0, 1, 2] * 4
    assert batch.rewards[:, 0].tolist() == [1, 2, 3] * 4
    assert batch.terminated[:, 0].tolist() == [False, False, True] * 4
    assert not batch.truncated.any()
    assert (batch.final_values == 0).all()
    assert stats.returns == [6.0] * 8 and stats.lengths == [3] * 8


def test_truncation_keeps_final_observation_value():
    batch, stats, policy = collect(term_at=None)
    assert batch.obs[:, 1, 0].tolist() == [0, 1, 2, 3, 4] * 2 + [0, 1]
    assert batch.truncated[:, 1].tolist() == ([False] * 4 + [True]) * 2 + [False] * 2
    assert not batch.terminated.any()
    v_final = policy.value(torch.tensor([[5.0]])).item()
    assert batch.final_values[4, 1].item() == pytest.approx(v_final)
    assert batch.final_values[3, 1].item() == 0.0
    assert stats.returns == [15.0] * 4 and stats.lengths == [5] * 4
    # The last value bootstraps from the observation after the rollout (t = 2).
    assert batch.last_values[0].item() == pytest.approx(policy.value(torch.tensor([[2.0]])).item())


@pytest.mark.parametrize("n_truncated", [0, 1, 37])
def test_sparse_truncation_values_equal_the_dense_ones(n_truncated):
    torch.manual_seed(0)
    space = gym.spaces.Box(-1, 1, (3,), np.float32)
    policy = ActorCritic(space, gym.spaces.Discrete(2), (64, 64))
    final_obs = torch.randn(32, 64, 3)
    truncated = torch.zeros(32 * 64, dtype=torch.bool)
    truncated[torch.randperm(32 * 64)[:n_truncated]] = True
    truncated = truncated.reshape(32, 64)
    with torch.no_grad():
        dense = truncation_values(policy.value, final_obs, truncated, sparse=False)
        sparse = truncation_values(policy.value, final_obs, truncated, sparse=True)
    assert int((dense != 0).sum()) == n_truncated  # values where truncated, 0 elsewhere
    # (2,048 rows take nprl's tanh formula, a few rows torch.tanh: round-off apart)
    torch.testing.assert_close(sparse, dense, rtol=1e-5, atol=1e-6)
    assert sparse.dtype == dense.dtype and sparse.shape == (32, 64)


def test_log_probs_and_params_are_the_acting_policys():
    batch, _, policy = collect(term_at=3)
    flat = batch.flat()
    params = policy.dist_params(flat.obs)
    assert torch.allclose(params, flat.dist_params)
    assert torch.allclose(policy.family.log_prob(params, flat.actions), flat.log_probs)


def test_family_samplers_follow_their_distributions():
    """The fast samplers used on every env step draw from the distribution they claim."""
    from nprl.distributions import Categorical, DiagGaussian

    torch.manual_seed(0)
    logits = torch.tensor([[0.0, 1.0, -1.0]]).expand(200_000, 3)
    freq = torch.bincount(Categorical(3).sample(logits), minlength=3).double() / 200_000
    assert torch.allclose(freq, torch.softmax(logits[0].double(), -1), atol=4e-3)
    params = torch.tensor([[1.0, -2.0, 0.5, -0.5]]).expand(200_000, 4)  # mean (1,-2), log σ
    x = DiagGaussian(2).sample(params)
    assert torch.allclose(x.mean(0), torch.tensor([1.0, -2.0]), atol=0.02)
    assert torch.allclose(x.std(0), torch.tensor([0.5, -0.5]).exp(), atol=0.02)


def test_episode_statistics_carry_across_rollouts():
    """An episode that spans rollouts is reported once, whole, when it ends."""
    env = make_env("nprl-test/Counter-v0", 2, backend="gymnasium")
    torch.manual_seed(0)
    policy = ActorCritic(env.single_observation_space, env.single_action_space, (8,))
    col = Collector(env, policy, n_steps=3, gamma=0.9, gae_lambda=0.95, seed=0)
    seen = [col.collect()[1] for _ in range(4)]  # 12 steps: episodes end at steps 5, 10
    assert [s.returns for s in seen] == [[], [15.0, 15.0], [], [15.0, 15.0]]
    assert [s.lengths for s in seen] == [[], [5, 5], [], [5, 5]]


def test_gym_backend_seeds_are_spread_not_consecutive():
    """gymnasium alone seeds sub-env i with seed + i: seeds 3 and 4 would share 7 of 8
    start states. The adapter's are reproducible and share none."""
    env = make_env("Pendulum-v1", 8, backend="gymnasium")

    def starts(seed):
        env.reset(seed=seed)
        return {tuple(e.unwrapped.state.round(12)) for e in env.env.envs}

    assert starts(3) == starts(3)
    assert len(starts(3)) == 8 and not starts(3) & starts(4)
    raw = gym.make_vec("Pendulum-v1", 8, vectorization_mode="sync")
    raw.reset(seed=3)
    a = {tuple(e.unwrapped.state.round(12)) for e in raw.envs}
    raw.reset(seed=4)
    assert len(a & {tuple(e.unwrapped.state.round(12)) for e in raw.envs}) == 7  # gymnasium's
