"""ACKTR: the KL-clipped K-FAC step on a fixed batch, the Gauss–Newton critic, skipping of
non-finite steps, state round trips, config keys, and end-to-end runs (tags, checkpoint)."""

from __future__ import annotations

import dataclasses
import math

import gymnasium as gym
import numpy as np
import pytest
import torch
from torch.distributions import Categorical, kl_divergence

import nprl
from nprl.agents import ACKTR, ACKTRConfig
from nprl.agents.kfac_critic import KFACCritic
from nprl.batch import Batch
from nprl.checkpoint import find_checkpoint
from nprl.config import PolicyConfig, RunConfig, resolve
from nprl.errors import NprlError
from nprl.policies import ActorCritic
from nprl.tb import read_scalars

f64 = torch.float64
OBS_DIM, T, N = 4, 16, 4


def make_policy(critic_hidden: tuple[int, ...] | None = None) -> ActorCritic:
    obs_space = gym.spaces.Box(-np.inf, np.inf, (OBS_DIM,), dtype=np.float64)
    return ActorCritic(obs_space, gym.spaces.Discrete(3), hidden_sizes=(8, 8),
                       critic_hidden_sizes=critic_hidden).double()


def fixed_batch(policy: ActorCritic, adv_scale: float = 1.0) -> Batch:
    """A T×N rollout-shaped batch: random observations, actions from the policy."""
    obs = torch.randn(T, N, OBS_DIM, dtype=f64)
    with torch.no_grad():
        params = policy.dist_params(obs.reshape(-1, OBS_DIM)).reshape(T, N, -1)
    actions = Categorical(logits=params).sample()
    zeros, false = torch.zeros(T, N, dtype=f64), torch.zeros(T, N, dtype=torch.bool)
    values = torch.randn(T, N, dtype=f64)
    adv = adv_scale * torch.randn(T, N, dtype=f64)
    return Batch(obs, actions, Categorical(logits=params).log_prob(actions), params, zeros,
                 values, false, false, zeros, torch.zeros(N, dtype=f64), adv, adv + values)


def snapshot(policy: ActorCritic) -> list[torch.Tensor]:
    return [p.detach().clone() for p in policy.parameters()]


def independent_kl(batch: Batch, policy: ActorCritic) -> float:
    with torch.no_grad():
        new = policy.dist_params(batch.obs.reshape(-1, OBS_DIM))
    old = batch.dist_params.reshape(-1, new.shape[-1])
    return float(kl_divergence(Categorical(logits=old), Categorical(logits=new)).mean())


# ---------------------------------------------------------------- the actor's step


def test_step_kl_stays_within_kl_clip() -> None:
    """kl_curvature="exact": η = sqrt(2δ/dᵀFd) puts the quadratic KL model at δ, so the
    true KL is δ up to third-order terms (a wrong Fisher, scale or layout misses it)."""
    policy = make_policy()
    batch = fixed_batch(policy)
    cfg = ACKTRConfig(kl_clip=0.01, lr=1e3, kfac_decay=0.0, vf_iters=1)
    m = ACKTR(policy, cfg).update(batch)
    kl = independent_kl(batch, policy)
    assert m["step_accepted"] == 1.0 and m["step_scale"] < cfg.lr  # the clip binds
    assert 0.8 * cfg.kl_clip <= kl <= 1.1 * cfg.kl_clip
    assert m["kl"] == pytest.approx(kl, rel=1e-9)
    assert m["actual_improve"] > 0
    assert 0.5 * m["step_scale"] ** 2 * m["sFs"] == pytest.approx(cfg.kl_clip, rel=1e-9)


def test_paper_rule_uses_the_kfac_quadratic_form_and_lr_caps_it() -> None:
    policy = make_policy()
    batch = fixed_batch(policy)
    m = ACKTR(policy, ACKTRConfig(kl_clip=0.01, lr=1e3, kl_curvature="kfac",
                                  kfac_decay=0.0, vf_iters=1)).update(batch)
    assert 0.5 * m["step_scale"] ** 2 * m["sFs_kfac"] == pytest.approx(0.01, rel=1e-9)
    assert m["sFs"] == m["sFs_kfac"]
    capped = make_policy()
    m = ACKTR(capped, ACKTRConfig(lr=1e-4, vf_iters=1)).update(fixed_batch(capped))
    assert m["step_scale"] == 1e-4 and m["kl"] < 1e-6


def test_non_finite_step_is_skipped_with_parameters_restored() -> None:
    policy = make_policy()
    batch = fixed_batch(policy, adv_scale=math.nan)  # NaN gradient → NaN direction
    agent = ACKTR(policy, ACKTRConfig(momentum=0.9, vf_iters=1))
    before = [p.detach().clone() for p in policy.actor_parameters()]
    m = agent.update(batch)
    assert m["skipped"] == 1.0 and m["step_accepted"] == 0.0
    assert all(torch.equal(a, p) for a, p in zip(before, policy.actor_parameters()))
    assert not bool(agent.g_momentum.any())  # the buffer was reset, not poisoned
    assert all(math.isfinite(v) for k, v in m.items() if k.startswith("kfac_"))


def test_resuming_from_state_dict_gives_the_identical_next_update(tmp_path) -> None:
    torch.manual_seed(1)
    policy = make_policy()
    cfg = ACKTRConfig(momentum=0.5, inverse_every=2, damping="adaptive", vf_iters=2)
    agent = ACKTR(policy, cfg)
    for _ in range(3):
        agent.update(fixed_batch(policy))
    torch.save({"agent": agent.state_dict(), "policy": policy.state_dict()}, tmp_path / "s.pt")
    batch = fixed_batch(policy)
    expected = agent.update(batch)
    state = torch.load(tmp_path / "s.pt", weights_only=True)
    policy2 = make_policy()
    policy2.load_state_dict(state["policy"])
    agent2 = ACKTR(policy2, cfg)
    agent2.load_state_dict(state["agent"])
    assert agent2.update(batch) == expected
    assert all(torch.equal(a, b) for a, b in zip(policy.parameters(), policy2.parameters()))


def test_npg_kfac_preconditioner_changes_the_cg_path_not_the_step() -> None:
    """``precondition="kfac"`` wires K-FAC into NPG's CG: a converged solve is the same."""
    from nprl.agents import NaturalGradient, NPGConfig

    steps, iters = [], []
    for pre in ("none", "kfac"):
        torch.manual_seed(5)
        policy = make_policy()
        before = torch.cat([p.detach().reshape(-1) for p in policy.actor_parameters()])
        cfg = NPGConfig(precondition=pre, cg_iters=200, cg_tol=1e-12, vf_epochs=1)
        m = NaturalGradient(policy, cfg).update(fixed_batch(policy))
        after = torch.cat([p.detach().reshape(-1) for p in policy.actor_parameters()])
        steps.append(after - before)
        iters.append(m["cg_iters"])
    assert torch.allclose(steps[0], steps[1], rtol=0, atol=1e-8 * float(steps[0].abs().max()))
    assert iters[0] != iters[1]


# ---------------------------------------------------------------- the critic


def test_linear_critic_step_is_the_exact_least_squares_solution() -> None:
    """One Linear layer: K-FAC of the Gauss–Newton matrix is exact (G = 1), so one full
    step (lr 1, λ 0) lands on the least-squares fit of the returns."""
    policy = make_policy(critic_hidden=())
    obs, returns = torch.randn(64, OBS_DIM, dtype=f64), torch.randn(64, dtype=f64)
    critic = KFACCritic(policy, lr=1.0, iters=1, damping=0.0, decay=0.0, inverse_every=1,
                        form="eigen", g_mode="exact", samples=1)
    critic.fit(obs, returns)
    X = torch.cat([obs, torch.ones(64, 1, dtype=f64)], 1)
    best = X @ torch.linalg.lstsq(X, returns.unsqueeze(-1)).solution.squeeze(-1)
    with torch.no_grad():
        assert torch.allclose(policy.value(obs), best, rtol=0, atol=1e-9)


def test_critic_steps_reduce_the_error_of_a_deep_critic() -> None:
    policy = make_policy()
    obs = torch.randn(128, OBS_DIM, dtype=f64)
    returns = obs[:, 0].sin() * 3 + obs[:, 1] ** 2
    critic = KFACCritic(policy, lr=0.5, iters=5, damping=0.01, decay=0.0, inverse_every=1,
                        form="eigen", g_mode="exact", samples=1)
    mse = [critic.fit(obs, returns) for _ in range(5)]
    assert mse[-1] < 0.3 * mse[0]


# ---------------------------------------------------------------- config


def test_config_keys_are_unique_checked_and_typo_safe() -> None:
    run_keys = {f.name for c in (RunConfig, PolicyConfig) for f in dataclasses.fields(c)}
    assert not run_keys & {f.name for f in dataclasses.fields(ACKTRConfig)}
    with pytest.raises(NprlError, match="kl_clip"):  # did-you-mean
        resolve("acktr", "CartPole-v1", overrides={"kl_clp": 0.01})
    for bad in ({"g_mode": "sampled"}, {"kfac_decay": 1.0}, {"kl_clip": 0.0},
                {"inverse_every": 0}, {"kfac_damping_form": "pi"}, {"momentum": -0.1}):
        with pytest.raises(NprlError, match=next(iter(bad))):
            resolve("acktr", "CartPole-v1", overrides=bad)


# ---------------------------------------------------------------- end to end

SHORT = dict(steps=1024, n_envs=4, n_steps=128, eval_every=512, eval_episodes=3)
KFAC_TAGS = {"train/kfac_damping", "train/kfac_eig_min_A", "train/kfac_eig_max_A",
             "train/kfac_eig_min_G", "train/kfac_eig_max_G", "train/kfac_cond_A",
             "train/kfac_cond_G", "train/step_scale", "train/kl", "train/entropy",
             "train/value_loss", "train/explained_variance", "train/cg_residual",
             "train/cg_iters", "train/sFs", "train/expected_improve", "train/actual_improve",
             "train/backtracks", "train/step_accepted", "train/damping", "eval/mean_reward"}


@pytest.mark.parametrize("env", ["CartPole-v1", "Pendulum-v1"])
def test_short_run_writes_kfac_tags_and_a_weights_only_checkpoint(env, tmp_path) -> None:
    res = nprl.train("acktr", env, seed=0, logdir=tmp_path, **SHORT)
    scalars = read_scalars(res.run_dir)
    assert set(scalars) >= KFAC_TAGS, KFAC_TAGS - set(scalars)
    assert all(math.isfinite(v) for tag in KFAC_TAGS for _, v in scalars[tag])
    state = torch.load(find_checkpoint(res.run_dir), weights_only=True)
    factors = state["agent"]["factors"]
    assert factors["updates"] == 2 and len(factors["A"]) == 3
    assert len(factors["D"]) == (1 if env == "Pendulum-v1" else 0)  # the log-std block


def test_same_command_twice_gives_identical_curves(tmp_path) -> None:
    runs = [nprl.train("acktr", "CartPole-v1", seed=3, logdir=tmp_path / str(i), **SHORT)
            for i in range(2)]
    a, b = (read_scalars(r.run_dir) for r in runs)
    for tag in ("eval/mean_reward", "train/kl", "train/value_loss", "train/kfac_eig_max_A"):
        assert a[tag] == b[tag], tag


@pytest.mark.slow
def test_solves_cartpole_with_preset(tmp_path) -> None:
    res = nprl.train("acktr", "CartPole-v1", seed=0, logdir=tmp_path, stop_when_solved=True)
    assert res.solved_step is not None and res.solved_step <= 50_000, res.evals
    assert res.final_eval.mean >= 475
