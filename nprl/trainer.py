"""The training loop: collect → update → log → evaluate → checkpoint."""

from __future__ import annotations

import math
import os
import random
import time
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path

import numpy as np
import torch

from nprl.agents import AGENTS
from nprl.checkpoint import checkpoint_path, save_checkpoint
from nprl.collector import Collector
from nprl.config import Config
from nprl.envs import make_env
from nprl.errors import NprlError
from nprl.evaluation import EvalResult, evaluate
from nprl.guard import UpdateGuard
from nprl.interrupt import DeferredInterrupt
from nprl.logger import Logger
from nprl.normalize import ObsNormalizer, RewardScaler
from nprl.parallel import NullLogger, Parallel
from nprl.policies import ActorCritic
from nprl.rng import capture_rng


def resolve_device(name: str) -> torch.device:
    """"auto" → CUDA when present, else CPU; "cuda" without CUDA is an error."""
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if name == "cuda" and not torch.cuda.is_available():
        raise NprlError("device='cuda' but CUDA is not available here; use --device cpu or auto")
    return torch.device(name)


def make_run_dir(logdir: str | Path, cfg: Config, run_name: str | None, force: bool) -> Path:
    """``<logdir>/<env-id>/<agent>-s<seed>-<timestamp>/`` (or ``<logdir>/<run_name>``)."""
    stamp = datetime.now().strftime("%Y%m%d-%H%M%S-%f")
    name = run_name or f"{cfg.agent_name}-s{cfg.seed}-{stamp}"
    run_dir = Path(logdir) / (name if run_name else cfg.env_id) / ("" if run_name else name)
    if run_dir.exists() and any(run_dir.iterdir()) and not force:
        raise NprlError(f"run directory {str(run_dir)!r} already exists; pass --force to reuse it")
    try:
        run_dir.mkdir(parents=True, exist_ok=True)
    except OSError as e:
        raise NprlError(f"cannot create run directory {str(run_dir)!r}: {e.strerror}") from None
    if not os.access(run_dir, os.W_OK):
        raise NprlError(f"run directory {str(run_dir)!r} is not writable")
    return run_dir


def seed_everything(seed: int) -> None:
    random.seed(seed)
    np.random.seed(seed)
    torch.manual_seed(seed)


@dataclass
class TrainResult:
    """run_dir: where logs and checkpoints are; final_eval: deterministic evaluation at the
    end; solved_step / solved_seconds: first evaluation ≥ solved_threshold (None if never);
    evals: (env steps, seconds, deterministic mean) of every evaluation."""

    run_dir: Path
    config: Config
    steps: int
    seconds: float
    final_eval: EvalResult | None
    solved_step: int | None = None
    solved_seconds: float | None = None
    solved_train_seconds: float | None = None  # solved_seconds minus time spent evaluating
    eval_seconds: float = 0.0
    evals: list[tuple[int, float, float]] = field(default_factory=list)

    def state_dict(self) -> dict:
        """The history a resumed run continues (plain data for checkpoints)."""
        ev = self.final_eval
        return {"evals": [list(e) for e in self.evals], "solved_step": self.solved_step,
                "solved_seconds": self.solved_seconds,
                "solved_train_seconds": self.solved_train_seconds,
                "eval_seconds": self.eval_seconds,
                "final_eval": None if ev is None else [ev.mean, ev.std, ev.returns, ev.lengths]}

    def load_state_dict(self, state: dict) -> None:
        self.evals = [(int(s), float(t), float(m)) for s, t, m in state["evals"]]
        self.solved_step, self.solved_seconds = state["solved_step"], state["solved_seconds"]
        self.solved_train_seconds = state["solved_train_seconds"]
        self.eval_seconds = float(state["eval_seconds"])
        ev = state["final_eval"]
        self.final_eval = None if ev is None else EvalResult(*ev)


class Trainer:
    """Wires env, policy, collector, agent and logger for one ``Config``.

    Nothing is written to disk until everything has been checked and built, so a bad
    config or env never leaves a half-made run directory. ``run_dir`` continues an
    existing run (``nprl.resume``) instead of making a new directory.
    """

    def __init__(self, cfg: Config, logdir: str | Path = "runs", run_name: str | None = None,
                 progress: bool = True, force: bool = False,
                 run_dir: Path | None = None) -> None:
        self.cfg, run = cfg, cfg.run
        torch.set_num_threads(run.torch_threads)
        # Under torchrun: join the process group; each rank its own seed stream.
        self.parallel, self.device = Parallel.setup(run, resolve_device(run.device))
        self.parallel.check_config(cfg.to_dict(), resume=run_dir is not None)
        seed_everything(self.parallel.seed(cfg.seed))
        self.env = make_env(cfg.env_id, run.n_envs, self.device, run.backend, run.vectorization)
        self.eval_env = make_env(cfg.env_id, run.eval_episodes, self.device, run.backend,
                                 run.vectorization)
        p = cfg.policy
        self.policy = ActorCritic(self.env.single_observation_space,
                                  self.env.single_action_space, p.hidden_sizes, p.activation,
                                  p.critic_hidden_sizes, p.init_log_std).to(self.device)
        self.parallel.broadcast(self.policy)
        obs_shape = self.env.single_observation_space.shape
        self.obs_norm = ObsNormalizer(obs_shape, run.obs_clip, self.device) \
            if run.normalize_obs else None
        self.reward_scaler = RewardScaler(run.gamma, device=self.device) \
            if run.normalize_reward else None
        self.batch_size = run.n_envs * run.n_steps * self.parallel.world  # across ranks
        self.total_updates = max(1, run.steps // self.batch_size)
        self.agent = AGENTS[cfg.agent_name].build(self.policy, cfg.agent, self.total_updates)
        self.collector = Collector(self.env, self.policy, run.n_steps, run.gamma, run.gae_lambda,
                                   self.obs_norm, self.reward_scaler,
                                   seed=self.parallel.env_seed(cfg.seed, run.n_envs),
                                   stagger=run.stagger_episodes)
        self.guard = UpdateGuard(self.policy, self.agent)
        self.steps, self.updates, self.evals_done = 0, 0, 0
        self.next_eval = run.eval_every
        self.elapsed = 0.0  # seconds trained before this process started (resume)
        self.run_dir = run_dir if run_dir is not None or not self.parallel.is_main \
            else make_run_dir(logdir, cfg, run_name, force)  # only rank 0 writes
        self.result = TrainResult(self.run_dir, cfg, 0, 0.0, None)
        self.progress = progress
        self.last_checkpoint: Path | None = None
        self._logger: Logger | None = None
        self._start: float | None = None

    def evaluate(self, deterministic: bool = True) -> EvalResult:
        # Own RNG stream: evaluation never changes the training trajectory.
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(self.cfg.seed + 7919 * (self.evals_done + 1))
            seed = self.cfg.seed * 100_003 + 10_000 + self.evals_done
            return evaluate(self.eval_env, self.policy, self.obs_norm, deterministic, seed)

    def state(self) -> dict:
        """Everything a checkpoint holds, as plain data: enough to continue the run
        bit for bit (``nprl.resume``), taken between two updates."""
        elapsed = self.elapsed if self._start is None else time.perf_counter() - self._start
        return {
            "config": self.cfg.to_dict(),
            "device": self.device.type,
            "policy": self.policy.state_dict(),
            "agent": self.agent.state_dict(),
            "obs_norm": self.obs_norm.state_dict() if self.obs_norm else None,
            "reward_scaler": self.reward_scaler.state_dict() if self.reward_scaler else None,
            "obs_shape": list(self.env.single_observation_space.shape),
            "counters": {"steps": self.steps, "updates": self.updates, "evals": self.evals_done,
                         "next_eval": self.next_eval, "elapsed": elapsed},
            "guard": self.guard.state_dict(),
            "collector": self.collector.state_dict(),
            "env": self.env.state_dict() if hasattr(self.env, "state_dict") else None,
            "rng": capture_rng(),
            "result": self.result.state_dict(),
        }

    def checkpoint(self) -> Path | None:
        if not self.parallel.is_main:
            return None
        if self._logger is not None:
            # Events up to this step reach the file before the checkpoint that claims them;
            # a resume purges only later steps, so none is lost or duplicated.
            self._logger.writer.flush()
        self.last_checkpoint = save_checkpoint(self.state(), self.run_dir / "checkpoints",
                                               self.steps, self.cfg.run.keep_checkpoints)
        return self.last_checkpoint

    def run(self) -> TrainResult:
        """Train until ``steps``; a resumed trainer continues its counters and logs.

        Ctrl-C finishes the current update, writes a checkpoint and raises
        KeyboardInterrupt; too many skipped updates in a row raise NprlError (the last
        checkpoint stays as it was).
        """
        run, cfg = self.cfg.run, self.cfg
        resumed = self.steps > 0
        # A resumed run appends to the same event files; purge_step drops whatever the
        # interrupted process logged after its last checkpoint.
        logger = Logger(self.run_dir, run.steps, self.progress, initial_steps=self.steps,
                        purge_step=self.steps + 1 if resumed else None) \
            if self.parallel.is_main else NullLogger()
        if not resumed:
            logger.config(cfg.to_dict())
        self._logger, result = logger, self.result
        self._start = start = time.perf_counter() - self.elapsed
        try:
            with DeferredInterrupt() as interrupt:
                self._loop(logger, start, interrupt)
            if not result.evals or result.evals[-1][0] != self.steps:
                self._evaluate(logger, result, start)
            self.checkpoint()
        finally:
            logger.close()
            self.env.close()
            self.eval_env.close()
            self._logger = None
        result.steps, result.seconds = self.steps, time.perf_counter() - start
        return result

    def _loop(self, logger: Logger, start: float, interrupt: DeferredInterrupt) -> None:
        run, result, last_return = self.cfg.run, self.result, None
        while self.steps < run.steps:
            t0 = time.perf_counter()
            batch, episodes = self.collector.collect()
            episodes = self.parallel.gather_episodes(episodes)
            metrics = self.guard.update(batch)
            self.steps += batch.size * self.parallel.world
            self.updates += 1
            self.parallel.check_sync(self.policy, self.updates)
            fps = batch.size * self.parallel.world / (time.perf_counter() - t0)
            if episodes.returns:
                last_return = float(np.mean(episodes.returns))
                logger.scalars("rollout", {"ep_rew_mean": last_return,
                                           "ep_len_mean": float(np.mean(episodes.lengths))},
                               self.steps)
            logger.scalars("train", metrics, self.steps)
            logger.scalars("time", {"fps": fps, "elapsed": time.perf_counter() - start},
                           self.steps)
            if self.guard.consecutive >= run.max_consecutive_skips:
                raise self.guard.stop_error(self.last_checkpoint)
            if run.eval_every and self.steps >= self.next_eval:
                self.next_eval += run.eval_every
                if self._evaluate(logger, result, start) and run.stop_when_solved:
                    break
            # Not after a skipped update: the last checkpoints stay the last good states
            # (a streak of skips would otherwise rotate them all out).
            if run.checkpoint_every and self.updates % run.checkpoint_every == 0 \
                    and self.guard.consecutive == 0:
                self.checkpoint()
            logger.progress(self.steps, fps, last_return)
            if self.parallel.any(interrupt.requested):  # all ranks stop at the same update
                if self.parallel.is_main and self.last_checkpoint != checkpoint_path(
                        self.run_dir / "checkpoints", self.steps):
                    self.checkpoint()
                raise KeyboardInterrupt(f"checkpoint at step {self.steps}; continue with "
                                        f"`nprl train --resume {self.run_dir}`")

    def _evaluate(self, logger: Logger, result: TrainResult, start: float) -> bool:
        """Deterministic evaluation (and stochastic, with ``eval_stochastic``); True once
        the threshold is reached."""
        if not self.parallel.is_main:  # rank 0 evaluates; the others take its verdict
            result.evals.append((self.steps, time.perf_counter() - start, math.nan))
            return self.parallel.agree(False)
        t0 = time.perf_counter()
        det = self.evaluate(deterministic=True)
        scalars = {"mean_reward": det.mean, "std_reward": det.std,
                   "mean_ep_length": float(np.mean(det.lengths))}
        if self.cfg.run.eval_stochastic:
            scalars["mean_reward_stochastic"] = self.evaluate(deterministic=False).mean
        self.evals_done += 1
        seconds = time.perf_counter() - start
        result.eval_seconds += time.perf_counter() - t0
        logger.scalars("eval", scalars, self.steps)
        result.final_eval = det
        result.evals.append((self.steps, seconds, det.mean))
        threshold = self.cfg.run.solved_threshold
        solved = threshold is not None and det.mean >= threshold
        if solved and result.solved_step is None:
            result.solved_step, result.solved_seconds = self.steps, seconds
            result.solved_train_seconds = seconds - result.eval_seconds
        return self.parallel.agree(solved)
