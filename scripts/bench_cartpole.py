"""Time to solve CartPole-v1: nprl TRPO and PPO vs sb3-contrib TRPO and SB3 PPO.

For each seed, training runs until the deterministic evaluation (10 episodes, every
``--eval-every`` env steps, the same schedule for every library) first reaches 475.
Reported: env steps and training seconds to that point (evaluation time excluded for
every library, since SB3 evaluates episodes one after another), median over seeds, and
the ratio peer / nprl measured in the same run. Peers need ``pip install -e ".[peers]"``;
without them only nprl is measured.

    python scripts/bench_cartpole.py --seeds 0 1 2
"""

from __future__ import annotations

import argparse
import statistics
import time

import numpy as np
import torch

import nprl

THRESHOLD = 475.0

# rl-baselines3-zoo, hyperparams/trpo.yml and ppo.yml, CartPole-v1 (tuned entries).
ZOO = {
    "trpo": dict(n_envs=2, kwargs=dict(n_steps=512, batch_size=512, cg_damping=1e-3,
                                       gae_lambda=0.98, gamma=0.99, learning_rate=1e-3,
                                       n_critic_updates=20)),
    "ppo": dict(n_envs=8, kwargs=dict(n_steps=32, batch_size=256, gae_lambda=0.8, gamma=0.98,
                                      n_epochs=20, ent_coef=0.0, learning_rate="lin_0.001",
                                      clip_range="lin_0.2")),
}


def run_nprl(agent: str, seed: int, budget: int, eval_every: int) -> tuple[int | None, float]:
    res = nprl.train(agent, "CartPole-v1", seed=seed, steps=budget, logdir="/tmp/nprl-bench",
                     stop_when_solved=True, eval_every=eval_every)
    return res.solved_step, (res.solved_train_seconds or float("nan"))


def run_peer(agent: str, seed: int, budget: int, eval_every: int) -> tuple[int | None, float]:
    import gymnasium as gym
    from sb3_contrib import TRPO
    from stable_baselines3 import PPO
    from stable_baselines3.common.callbacks import BaseCallback
    from stable_baselines3.common.env_util import make_vec_env
    from stable_baselines3.common.evaluation import evaluate_policy

    zoo = ZOO[agent]
    kwargs = dict(zoo["kwargs"])
    for key in ("learning_rate", "clip_range"):
        if isinstance(kwargs.get(key), str):  # "lin_x": linear schedule from x to 0
            start = float(kwargs[key].split("_")[1])
            kwargs[key] = lambda progress, s=start: progress * s
    env = make_vec_env("CartPole-v1", n_envs=zoo["n_envs"], seed=seed)
    eval_env = gym.make("CartPole-v1")
    eval_env.reset(seed=seed)  # evaluation episodes reproducible from the seed, as nprl's

    class SolveCallback(BaseCallback):
        def __init__(self) -> None:
            super().__init__()
            self.next_eval, self.eval_time, self.solved = eval_every, 0.0, None
            self.start = time.perf_counter()

        def _on_step(self) -> bool:
            if self.num_timesteps < self.next_eval:
                return True
            self.next_eval += eval_every
            t0 = time.perf_counter()
            mean, _ = evaluate_policy(self.model, eval_env, n_eval_episodes=10,
                                      deterministic=True)
            self.eval_time += time.perf_counter() - t0
            if mean >= THRESHOLD:
                self.solved = (self.num_timesteps,
                               time.perf_counter() - self.start - self.eval_time)
                return False
            return True

    cls = TRPO if agent == "trpo" else PPO
    model = cls("MlpPolicy", env, seed=seed, device="cpu", **kwargs)
    cb = SolveCallback()
    model.learn(budget, callback=cb)
    return cb.solved if cb.solved else (None, float("nan"))


def summarise(name: str, rows: list[tuple[int | None, float]]) -> tuple[float, float]:
    steps = [r[0] if r[0] is not None else float("inf") for r in rows]
    secs = [r[1] if r[0] is not None else float("inf") for r in rows]
    med_steps, med_secs = statistics.median(steps), statistics.median(secs)
    print(f"{name:<22} median steps {med_steps:>9.0f}  median s {med_secs:>7.2f}   per seed: "
          + ", ".join(f"{s if s is not None else 'unsolved'}/{t:.2f}s" for s, t in rows))
    return med_steps, med_secs


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    parser.add_argument("--budget", type=int, default=100_000)
    parser.add_argument("--eval-every", type=int, default=1024)
    parser.add_argument("--agents", nargs="+", default=["trpo", "ppo"])
    parser.add_argument("--no-peers", action="store_true")
    args = parser.parse_args()
    torch.set_num_threads(1)
    try:
        import sb3_contrib  # noqa: F401
        peers = not args.no_peers
    except ImportError:
        peers = False
        print("stable-baselines3 / sb3-contrib not installed: measuring nprl only")
    for agent in args.agents:
        ours = summarise(f"nprl {agent}", [run_nprl(agent, s, args.budget, args.eval_every)
                                           for s in args.seeds])
        if peers:
            np.random.seed(0)
            label = "sb3-contrib trpo" if agent == "trpo" else "sb3 ppo"
            theirs = summarise(label, [run_peer(agent, s, args.budget, args.eval_every)
                                       for s in args.seeds])
            print(f"  -> {agent}: peer/nprl steps {theirs[0] / ours[0]:.2f}x, "
                  f"wall-clock {theirs[1] / ours[1]:.2f}x")


if __name__ == "__main__":
    main()
