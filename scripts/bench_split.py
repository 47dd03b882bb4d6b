"""Where a training step's time goes: collecting vs updating, per env step, on each backend.

For one agent and task at its presets (seed 0, one thread), a ``Trainer`` is warmed up by
10 updates, then ``--updates`` rollouts and updates are timed; the median of each is
reported in µs per env step. The two backends run in turn, ``--rounds`` times each, and
the fastest round of each counts (this VM's speed drifts by up to ~40% between runs), then
the ratio gymnasium ÷ torch of the whole step.

    python scripts/bench_split.py --agent trpo --env Pendulum-v1     # ~40 s
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import time

import torch

from nprl.config import resolve
from nprl.trainer import Trainer

BACKENDS = ("torch", "gymnasium")


def split(agent: str, env: str, backend: str, updates: int, logdir: str) -> tuple[float, float]:
    """(collect, update) median µs per env step."""
    cfg = resolve(agent, env, 0, {"backend": backend, "steps": 10**7}, None)
    trainer = Trainer(cfg, logdir, None, progress=False, force=True)
    times: list[tuple[float, float]] = []
    for i in range(10 + updates):
        t0 = time.perf_counter()
        batch, _ = trainer.collector.collect()
        t1 = time.perf_counter()
        trainer.guard.update(batch)
        if i >= 10:
            times.append((t1 - t0, time.perf_counter() - t1))
    return tuple(statistics.median(t[k] for t in times) / batch.size * 1e6 for k in (0, 1))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--agent", default="trpo")
    parser.add_argument("--env", default="Pendulum-v1")
    parser.add_argument("--updates", type=int, default=15)
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args()
    torch.set_num_threads(1)
    best: dict[str, tuple[float, float]] = {}
    with tempfile.TemporaryDirectory() as logdir:
        for _ in range(args.rounds):
            for backend in BACKENDS:
                c, u = split(args.agent, args.env, backend, args.updates, logdir)
                if backend not in best or c + u < sum(best[backend]):
                    best[backend] = (c, u)
    print(f"{args.agent} {args.env} (µs per env step)   collect  update   total")
    for backend, (c, u) in best.items():
        print(f"  {backend:<32}{c:>8.2f}{u:>8.2f}{c + u:>8.2f}")
    ratio = sum(best["gymnasium"]) / sum(best["torch"])
    print(f"  -> torch backend {ratio:.2f}x faster per env step")


if __name__ == "__main__":
    main()
