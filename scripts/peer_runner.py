"""Worker side of ``scripts/bench_peers.py``: one sb3-contrib TRPO or SB3 PPO run,
evaluated and logged the way nprl's trainer does it.

- Evaluation: deterministic, ``eval_episodes`` episodes at once (one per env of a vector
  env, as nprl does), every ``eval_every`` env steps right after an update, and once at
  the end; a different seed for each evaluation. With VecNormalize the evaluation env
  uses the training statistics and raw rewards (the Monitor's episode returns).
- TensorBoard tags as nprl's: ``eval/mean_reward``, ``eval/std_reward``,
  ``time/elapsed`` (seconds since learning started, after every update),
  ``rollout/ep_rew_mean``, and the ``config`` text naming agent, task, seed, threshold.
"""

from __future__ import annotations

import json
import math
import time
from typing import Any


def linear(start: float):
    """rl-baselines3-zoo's ``lin_<x>``: from x at the start to 0 at the end."""
    return lambda progress_remaining: progress_remaining * start


def sb3_kwargs(zoo: dict[str, Any]) -> tuple[int, bool, dict[str, Any]]:
    """(n_envs, normalize, constructor kwargs) from a zoo entry."""
    hp = dict(zoo)
    n_envs, normalize = int(hp.pop("n_envs", 1)), bool(hp.pop("normalize", False))
    hp.pop("n_timesteps", None)
    hp.pop("policy", None)
    for key in ("learning_rate", "clip_range"):
        if isinstance(hp.get(key), str) and hp[key].startswith("lin_"):
            hp[key] = linear(float(hp[key][4:]))
    return n_envs, normalize, hp


def train_sb3(job, report, zoo: dict[str, Any]) -> None:
    """Train ``job`` (agent "sb3-trpo" or "sb3-ppo") into ``job.run_dir``."""
    import numpy as np
    from sb3_contrib import TRPO
    from stable_baselines3 import PPO
    from stable_baselines3.common.callbacks import BaseCallback
    from stable_baselines3.common.env_util import make_vec_env
    from stable_baselines3.common.evaluation import evaluate_policy
    from stable_baselines3.common.vec_env import VecNormalize, sync_envs_normalization
    from torch.utils.tensorboard import SummaryWriter

    every, episodes = job.overrides["eval_every"], job.overrides["eval_episodes"]
    n_envs, normalize, kwargs = sb3_kwargs(zoo)
    env = make_vec_env(job.env_id, n_envs=n_envs, seed=job.seed)
    eval_env = make_vec_env(job.env_id, n_envs=episodes, seed=job.seed)
    if normalize:
        gamma = kwargs.get("gamma", 0.99)
        env = VecNormalize(env, gamma=gamma)
        eval_env = VecNormalize(eval_env, training=False, norm_reward=False, gamma=gamma)
    algo = TRPO if job.agent == "sb3-trpo" else PPO
    model = algo("MlpPolicy", env, seed=job.seed, device="cpu", verbose=0, **kwargs)

    job.run_dir.mkdir(parents=True, exist_ok=True)
    writer = SummaryWriter(str(job.run_dir))
    config = {"agent_name": job.agent, "env_id": job.env_id, "seed": job.seed,
              "run": {"steps": job.steps, "n_envs": n_envs, "eval_every": every,
                      "eval_episodes": episodes, "solved_threshold": job.threshold},
              "zoo": {k: str(v) for k, v in zoo.items()}}
    writer.add_text("config", "```\n" + json.dumps(config, indent=2) + "\n```", 0)

    class Evaluate(BaseCallback):
        def _on_training_start(self) -> None:
            self.start, self.next_eval, self.evals, self.last_eval = time.perf_counter(), \
                every, 0, -1
            self.final = float("nan")

        def _on_rollout_start(self) -> None:  # right after an update (or at the start)
            if self.num_timesteps > 0:
                self.after_update()

        def _on_step(self) -> bool:
            return True

        def _on_training_end(self) -> None:
            self.after_update(final=True)

        def after_update(self, final: bool = False) -> None:
            steps = self.num_timesteps
            writer.add_scalar("time/elapsed", time.perf_counter() - self.start, steps)
            rewards = [ep["r"] for ep in self.model.ep_info_buffer]
            if rewards:
                writer.add_scalar("rollout/ep_rew_mean", float(np.mean(rewards)), steps)
            if (steps >= self.next_eval or final) and self.last_eval != steps:
                while self.next_eval <= steps:
                    self.next_eval += every
                self.evaluate(steps)
            report(steps, float(np.mean(rewards)) if rewards else None)

        def evaluate(self, steps: int) -> None:
            if normalize:
                sync_envs_normalization(env, eval_env)
            eval_env.seed(job.seed * 100_003 + 10_000 + self.evals)
            returns, _ = evaluate_policy(self.model, eval_env, n_eval_episodes=episodes,
                                         deterministic=True, return_episode_rewards=True)
            self.evals, self.last_eval = self.evals + 1, steps
            self.final = float(np.mean(returns))
            writer.add_scalar("eval/mean_reward", self.final, steps)
            writer.add_scalar("eval/std_reward", float(np.std(returns)), steps)

    callback = Evaluate()
    try:
        model.learn(job.steps, callback=callback)
    finally:
        writer.close()
        env.close()
        eval_env.close()
    if not math.isfinite(callback.final):
        raise FloatingPointError(f"final evaluation is {callback.final}")
