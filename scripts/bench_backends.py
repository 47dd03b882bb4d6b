"""End to end, torch-native envs vs gymnasium's: time to a return threshold.

Same agent, preset, seeds and evaluation schedule; only ``backend`` differs. Reported:
median env steps and training seconds (evaluation excluded) to the first deterministic
evaluation at or above the threshold, and the ratio gymnasium / torch measured in this run.
The two backends draw different random episodes from the same seed, so the time to
threshold carries the seeds' sample-efficiency noise (an unsolved seed counts as inf): on
CartPole-v1, 5 seeds put the torch backend at 0.92× and 0.57× (TRPO, PPO), 16 seeds at
0.89× and 0.80×, 64 seeds at 1.26× and 1.01×, for one per-step speed. The training
throughput (env steps per training second, evaluation excluded, up to the stop) isolates
the backend's cost and is reported beside it. Each ratio comes with a 95% percentile-
bootstrap interval over the seeds, resampled in pairs (``nprl.stats.median_ratio_ci``):
how far the seeds' noise alone could move it.

    python scripts/bench_backends.py                       # 16 seeds each: ~5 min, one core
    python scripts/bench_backends.py --tasks CartPole-v1:475 --seeds $(seq 0 63)
"""

from __future__ import annotations

import argparse
import statistics

import torch

import nprl
from nprl.stats import median_ratio_ci

TASKS = ["CartPole-v1:475", "Acrobot-v1:-100", "Pendulum-v1:-200"]


def time_to(agent: str, env: str, threshold: float, seed: int, backend: str,
            eval_every: int | None) -> tuple[float, float, float]:
    """(env steps, training seconds) to the threshold (inf if never), and the training
    throughput in env steps/s up to where the run stopped."""
    extra = {"eval_every": eval_every} if eval_every else {}
    res = nprl.train(agent, env, seed=seed, logdir="/tmp/nprl-bench-backends", backend=backend,
                     stop_when_solved=True, solved_threshold=threshold, **extra)
    steps, seconds, _ = res.evals[-1]
    throughput = steps / (seconds - res.eval_seconds)
    if res.solved_step is None:
        return float("inf"), float("inf"), throughput
    return float(res.solved_step), float(res.solved_train_seconds), throughput


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--tasks", nargs="+", default=TASKS, help="ENV:THRESHOLD")
    parser.add_argument("--agents", nargs="+", default=["trpo", "ppo"])
    parser.add_argument("--seeds", type=int, nargs="+", default=list(range(16)))
    parser.add_argument("--eval-every", type=int, default=None, help="(preset)")
    args = parser.parse_args()
    torch.set_num_threads(1)
    print(f"{'task':<14}{'agent':<6}{'backend':<11}{'med steps':>10}{'med s':>8}"
          f"{'steps/s':>9}  per seed (s)")
    for task in args.tasks:
        env, thr = task.rsplit(":", 1)
        for agent in args.agents:
            # Seed by seed, the two backends in turn: drift in the machine's speed (other
            # tenants, clocks) then hits both alike.
            runs: dict[str, list] = {"torch": [], "gymnasium": []}
            for s in args.seeds:
                for backend, rows in runs.items():
                    rows.append(time_to(agent, env, float(thr), s, backend, args.eval_every))
            med = {}
            for backend, rows in runs.items():
                med[backend] = [statistics.median(r[i] for r in rows) for i in range(3)]
                print(f"{env:<14}{agent:<6}{backend:<11}{med[backend][0]:>10.0f}"
                      f"{med[backend][1]:>8.2f}{med[backend][2]:>9.0f}  "
                      + " ".join(f"{r[1]:.2f}" for r in rows), flush=True)
            # Seeds resampled in pairs: the interval is what the seeds' noise allows.
            column = {(b, i): [r[i] for r in rows] for b, rows in runs.items() for i in (1, 2)}
            ratio, r_lo, r_hi = median_ratio_ci(column["gymnasium", 1], column["torch", 1])
            speed, s_lo, s_hi = median_ratio_ci(column["torch", 2], column["gymnasium", 2])
            print(f"  -> {env} {agent}: torch backend {ratio:.2f}x faster to the threshold "
                  f"(95% CI {r_lo:.2f}-{r_hi:.2f}), {speed:.2f}x the training env steps/s "
                  f"({s_lo:.2f}-{s_hi:.2f})")

if __name__ == "__main__":
    main()
