"""Numerical guards: every injected fault skips the update, restores the parameters and
the agent's state bit for bit, is counted and warned about once; too many in a row stop
the run with a clear error and an intact last checkpoint. Parameters never end NaN."""

import dataclasses
import warnings

import gymnasium as gym
import numpy as np
import pytest
import torch

from nprl.agents import AGENTS
from nprl.checkpoint import find_checkpoint, load_checkpoint
from nprl.cli import main
from nprl.config import resolve
from nprl.guard import NumericalWarning, batch_fault, first_nonfinite
from nprl.normalize import RunningMeanStd
from nprl.tb import read_scalars
from nprl.trainer import Trainer

NAN = float("nan")
SMALL = dict(steps=512, n_envs=2, n_steps=32, eval_every=0, eval_episodes=2)


class NaNObsCartPole(gym.Wrapper):
    """CartPole whose observation is NaN on this instance's steps [nan_from, nan_until)."""

    def __init__(self, nan_from: int = 40, nan_until: int = 41):
        super().__init__(gym.make("CartPole-v1").unwrapped)
        self.nan_from, self.nan_until, self.count = nan_from, nan_until, 0

    def step(self, action):
        obs, reward, terminated, truncated, info = self.env.step(action)
        self.count += 1
        if self.nan_from <= self.count < self.nan_until:
            obs = np.full_like(obs, np.nan)
        return obs, reward, terminated, truncated, info


gym.register("nprl-test/NaNCartPole-v0", entry_point=NaNObsCartPole, max_episode_steps=500)


def trainer_for(agent, tmp_path, env="CartPole-v1", **extra):
    cfg = resolve(agent, env, 0, {**SMALL, **extra})
    return Trainer(cfg, tmp_path, progress=False)


def snapshot(trainer):
    params = {k: v.clone() for k, v in trainer.policy.state_dict().items()}
    return params, _flat(trainer.agent.state_dict())


def _flat(tree, prefix=""):
    if isinstance(tree, torch.Tensor):
        return {prefix: tree.clone()}
    if isinstance(tree, dict | list | tuple):
        items = tree.items() if isinstance(tree, dict) else enumerate(tree)
        return {k2: v2 for k, v in items for k2, v2 in _flat(v, f"{prefix}/{k}").items()}
    return {prefix: tree}


def same(a, b):
    return a.keys() == b.keys() and all(
        torch.equal(a[k], b[k]) if isinstance(a[k], torch.Tensor) else a[k] == b[k] for k in a)


def all_finite(trainer):
    return all(bool(torch.isfinite(p).all()) for p in trainer.policy.parameters())


def assert_skipped_and_restored(trainer, batch):
    before = snapshot(trainer)
    with pytest.warns(NumericalWarning, match="update skipped: non-finite"):
        metrics = trainer.guard.update(batch)
    after = snapshot(trainer)
    assert metrics["skipped"] == 1.0 and metrics["skipped_updates"] == 1.0
    assert same(before[0], after[0]), "parameters not restored"
    assert same(before[1], after[1]), "agent state (optimiser, damping, ...) not restored"
    assert all_finite(trainer)


def nan_grad_hook(grad):
    return grad * NAN


@pytest.mark.parametrize("which", ["actor", "critic"])
@pytest.mark.parametrize("agent", list(AGENTS))
def test_nan_gradient_skips_and_restores(agent, which, tmp_path):
    trainer = trainer_for(agent, tmp_path)
    trainer.guard.update(trainer.collector.collect()[0])  # optimiser state exists now
    params = getattr(trainer.policy, f"{which}_parameters")()
    handle = params[0].register_hook(nan_grad_hook)
    assert_skipped_and_restored(trainer, trainer.collector.collect()[0])
    handle.remove()
    before = snapshot(trainer)[0]
    metrics = trainer.guard.update(trainer.collector.collect()[0])
    assert metrics["skipped"] == 0.0 and trainer.guard.consecutive == 0
    assert not same(before, snapshot(trainer)[0])  # a healthy update does move


@pytest.mark.parametrize("agent", list(AGENTS))
@pytest.mark.parametrize("field", ["obs", "rewards", "advantages", "returns"])
def test_nan_in_the_batch_skips_before_the_agent_runs(agent, field, tmp_path):
    trainer = trainer_for(agent, tmp_path)
    batch = trainer.collector.collect()[0]
    bad = getattr(batch, field).clone()
    bad.view(-1)[7] = NAN
    poisoned = dataclasses.replace(batch, **{field: bad})
    assert batch_fault(poisoned) == field and batch_fault(batch) is None
    assert_skipped_and_restored(trainer, poisoned)


def test_first_nonfinite_names_the_first_culprit_across_dtypes():
    # one concatenated test (float32 and float64 promote together); the name by a loop
    ok = [("a", torch.ones(3)), ("b", torch.zeros(2, 2, dtype=torch.float64))]
    assert first_nonfinite(ok) is None and first_nonfinite([]) is None
    for bad in (NAN, float("inf"), -float("inf")):
        c = torch.tensor([[1.0, bad]], dtype=torch.float64)
        assert first_nonfinite(ok + [("c", c), ("d", torch.full((1,), NAN))]) == "c"


@pytest.mark.parametrize("agent", [a for a in AGENTS if AGENTS[a].natural])
@pytest.mark.parametrize("fault", ["direction", "kl"])
def test_nan_natural_direction_or_kl_skips(agent, fault, tmp_path, monkeypatch):
    trainer = trainer_for(agent, tmp_path)
    batch = trainer.collector.collect()[0]
    if fault == "kl":
        monkeypatch.setattr(trainer.policy.family, "kl",
                            lambda old, new: torch.full(old.shape[:1], NAN))
    else:
        real = trainer.agent.curvature

        def curvature(s):
            op = real(s)
            op.solve = lambda g: torch.full_like(g, NAN)
            return op

        monkeypatch.setattr(trainer.agent, "curvature", curvature)
    assert_skipped_and_restored(trainer, batch)


def test_nan_ppo_loss_skips(tmp_path, monkeypatch):
    trainer = trainer_for("ppo", tmp_path)
    batch = trainer.collector.collect()[0]
    family = trainer.policy.family
    # ent_coef 0 · NaN entropy is NaN: a non-finite loss with an otherwise sane batch.
    monkeypatch.setattr(family, "entropy", lambda p: torch.full(p.shape[:1], NAN))
    monkeypatch.setattr(family, "entropy_and_grad",  # the hand-written gradient's path
                        lambda p: (torch.full(p.shape[:1], NAN), torch.zeros_like(p)))
    assert_skipped_and_restored(trainer, batch)


@pytest.mark.parametrize("agent", ["trpo", "ppo"])
def test_a_nan_parameter_no_agent_check_caught_is_found_and_named(agent, tmp_path,
                                                                 monkeypatch):
    trainer = trainer_for(agent, tmp_path)
    real = trainer.agent.update

    def update(batch):  # a healthy-looking update that leaves one weight NaN
        metrics = real(batch)
        with torch.no_grad():
            trainer.policy.critic[2].weight[0, 3] = NAN
        return metrics

    monkeypatch.setattr(trainer.agent, "update", update)
    assert_skipped_and_restored(trainer, trainer.collector.collect()[0])
    assert trainer.guard.last_reason == "parameter 'critic.2.weight' after the update"


@pytest.mark.parametrize("agent", list(AGENTS))
@pytest.mark.parametrize("case", ["zero_advantages", "constant_obs"])
def test_singular_fisher_leaves_finite_parameters(agent, case, tmp_path):
    extra = {"cg_damping": 0.0} if AGENTS[agent].natural and "cg_damping" in \
        resolve(agent, "CartPole-v1").flat() else {}
    trainer = trainer_for(agent, tmp_path, **extra)
    batch = trainer.collector.collect()[0]
    if case == "zero_advantages":
        batch = dataclasses.replace(batch, advantages=torch.zeros_like(batch.advantages))
    else:  # every row the same observation: the Fisher has rank ≤ the action count − 1
        batch = dataclasses.replace(batch, obs=batch.obs[:1, :1].expand_as(batch.obs).clone())
    actor = [p.clone() for p in trainer.policy.actor_parameters()]
    with warnings.catch_warnings():
        warnings.simplefilter("error", NumericalWarning)  # singular is not a fault
        metrics = trainer.guard.update(batch)
    assert metrics["skipped"] == 0.0 and all_finite(trainer)
    if case == "zero_advantages" and agent != "ppo":  # no gradient, so no natural step
        assert all(torch.equal(a, p) for a, p in zip(actor, trainer.policy.actor_parameters()))


def test_nan_observations_from_an_env_are_skipped_once_and_counted(tmp_path):
    # Each env's 40th step is NaN: both envs hit it in the second rollout (steps 32–63).
    trainer = trainer_for("trpo", tmp_path, "nprl-test/NaNCartPole-v0", backend="gymnasium",
                          normalize_obs=True)
    with pytest.warns(NumericalWarning) as caught:
        result = trainer.run()
    assert len([w for w in caught if w.category is NumericalWarning]) == 1
    skipped = dict(read_scalars(result.run_dir)["train/skipped_updates"])
    assert skipped[64] == 0.0 and skipped[128] == 1.0 and skipped[512] == 1.0
    assert dict(read_scalars(result.run_dir)["train/skipped"])[128] == 1.0
    assert all_finite(trainer)
    assert torch.isfinite(trainer.obs_norm.rms.mean).all()  # the NaN rows were left out


def test_consecutive_skips_stop_the_run_with_an_intact_checkpoint(tmp_path, capsys):
    # NaN from each env's 100th step on: updates 4, 5, ... are all skipped.
    gym.register("nprl-test/NaNForever-v0", max_episode_steps=500,
                 entry_point=lambda: NaNObsCartPole(nan_from=100, nan_until=10**9))
    with pytest.warns(NumericalWarning, match="non-finite obs in the batch") as caught:
        code = main(["train", "ppo", "nprl-test/NaNForever-v0", "--steps", "4096",
                     "--n-envs", "2", "--set", "n_steps=32", "--set", "backend=gymnasium",
                     "--set", "checkpoint_every=1", "--set", "max_consecutive_skips=3",
                     "--set", "eval_every=0", "--logdir", str(tmp_path), "--run-name", "r",
                     "--no-progress"])
    assert len(caught) == 1
    err = capsys.readouterr().err.strip().splitlines()
    assert code == 2 and len(err) == 1
    assert err[0].startswith("nprl: error: stopped after 3 consecutive skipped updates "
                             "(non-finite obs in the batch); the last checkpoint, ")
    state = load_checkpoint(tmp_path / "r")
    assert state["counters"]["updates"] == 3  # the last good update, not a skipped one
    assert all(bool(torch.isfinite(v).all()) for v in state["policy"].values())
    assert find_checkpoint(tmp_path / "r").name == "step_000000000192.pt"


def test_cli_prints_nprl_warnings_on_one_line():
    from nprl.cli import _format_warning

    line = _format_warning("x happened", NumericalWarning, "f.py", 3)
    assert line == "nprl: warning: x happened\n"
    assert "f.py:3" in _format_warning("y", DeprecationWarning, "f.py", 3)


def test_normaliser_ignores_non_finite_rows():
    rms = RunningMeanStd((2,))
    rms.update(torch.tensor([[1.0, 2.0], [NAN, 0.0], [3.0, float("inf")], [3.0, 4.0]]))
    assert rms.count == 2
    assert torch.allclose(rms.mean, torch.tensor([2.0, 3.0], dtype=torch.float64))
    rms.update(torch.full((3, 2), NAN))
    assert rms.count == 2 and torch.isfinite(rms.var).all()


@pytest.mark.skipif("acktr" not in AGENTS, reason="ACKTR (K-FAC) is not in this build")
def test_kfac_decomposition_failure_is_retried(tmp_path, monkeypatch):
    """A failing eigendecomposition of a K-FAC factor is retried (with jitter) inside
    K-FAC; the update goes on and leaves finite parameters."""
    trainer = trainer_for("acktr", tmp_path)
    batch = trainer.collector.collect()[0]
    real, calls = torch.linalg.eigh, [0]

    def flaky(matrix, *args, **kwargs):
        calls[0] += 1
        if calls[0] == 1:
            raise torch.linalg.LinAlgError("simulated: the algorithm failed to converge")
        return real(matrix, *args, **kwargs)

    monkeypatch.setattr(torch.linalg, "eigh", flaky)
    metrics = trainer.guard.update(batch)
    if calls[0] == 0:
        pytest.skip("this K-FAC does not decompose with torch.linalg.eigh")
    assert calls[0] > 1 and all_finite(trainer)
    assert metrics["skipped"] in (0.0, 1.0)
