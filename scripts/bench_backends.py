"""End to end, torch-native envs vs gymnasium's: time to a return threshold.

Same agent, preset, seeds and evaluation schedule; only ``backend`` differs. Reported:
median env steps and training seconds (evaluation excluded) to the first deterministic
evaluation at or above the threshold, and the ratio gymnasium / torch measured in this run.

    python scripts/bench_backends.py                       # CartPole, Acrobot, Pendulum
    python scripts/bench_backends.py --tasks CartPole-v1:475 --seeds 0 1 2 3 4
"""

from __future__ import annotations

import argparse
import statistics

import torch

import nprl

TASKS = ["CartPole-v1:475", "Acrobot-v1:-100", "Pendulum-v1:-200"]


def time_to(agent: str, env: str, threshold: float, seed: int, backend: str,
            eval_every: int | None) -> tuple[float, float]:
    extra = {"eval_every": eval_every} if eval_every else {}
    res = nprl.train(agent, env, seed=seed, logdir="/tmp/nprl-bench-backends", backend=backend,
                     stop_when_solved=True, solved_threshold=threshold, **extra)
    if res.solved_step is None:
        return float("inf"), float("inf")
    return float(res.solved_step), float(res.solved_train_seconds)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--tasks", nargs="+", default=TASKS, help="ENV:THRESHOLD")
    parser.add_argument("--agents", nargs="+", default=["trpo", "ppo"])
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    parser.add_argument("--eval-every", type=int, default=None, help="(preset)")
    args = parser.parse_args()
    torch.set_num_threads(1)
    print(f"{'task':<14}{'agent':<6}{'backend':<11}{'med steps':>10}{'med s':>8}  per seed (s)")
    for task in args.tasks:
        env, thr = task.rsplit(":", 1)
        for agent in args.agents:
            medians = {}
            for backend in ("torch", "gymnasium"):
                rows = [time_to(agent, env, float(thr), s, backend, args.eval_every)
                        for s in args.seeds]
                medians[backend] = (statistics.median(r[0] for r in rows),
                                    statistics.median(r[1] for r in rows))
                print(f"{env:<14}{agent:<6}{backend:<11}{medians[backend][0]:>10.0f}"
                      f"{medians[backend][1]:>8.2f}  " + " ".join(f"{r[1]:.2f}" for r in rows),
                      flush=True)
            ratio = medians["gymnasium"][1] / medians["torch"][1]
            print(f"  -> {env} {agent}: torch backend {ratio:.2f}x faster (wall-clock)")


if __name__ == "__main__":
    main()
