"""Where a training step's time goes: collecting vs updating, per env step, on each backend.

For one agent and task at its presets (seed 0, one thread), one ``Trainer`` per backend is
built in this process and warmed up by 10 updates; then the two take turns, rollout by
rollout, for ``--updates`` rounds, so that drift in the machine's speed (this VM's drifts
by up to ~40% within minutes) hits both alike. Reported: the median collect and update
time of each in µs per env step, and the ratio gymnasium ÷ torch of the whole step.

    python scripts/bench_split.py --agent trpo --env Pendulum-v1     # ~5 s
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


def trainer(agent: str, env: str, backend: str, logdir: str) -> Trainer:
    cfg = resolve(agent, env, 0, {"backend": backend, "steps": 10**7}, None)
    return Trainer(cfg, f"{logdir}/{backend}", None, progress=False, force=True)


def step(tr: Trainer) -> tuple[float, float, int]:
    """(collect seconds, update seconds, env steps) of one rollout and update."""
    t0 = time.perf_counter()
    batch, _ = tr.collector.collect()
    t1 = time.perf_counter()
    tr.guard.update(batch)
    return t1 - t0, time.perf_counter() - t1, batch.size


def split(agent: str, env: str, updates: int, logdir: str) -> dict[str, tuple[float, float]]:
    """{backend: (collect, update) median µs per env step}, the backends in turn."""
    trainers = {b: trainer(agent, env, b, logdir) for b in BACKENDS}
    for tr in trainers.values():
        for _ in range(10):
            step(tr)
    times: dict[str, list[tuple[float, float, int]]] = {b: [] for b in BACKENDS}
    for _ in range(updates):
        for b, tr in trainers.items():
            times[b].append(step(tr))
    return {b: tuple(statistics.median(t[k] / t[2] for t in ts) * 1e6 for k in (0, 1))
            for b, ts in times.items()}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--agent", default="trpo")
    parser.add_argument("--env", default="Pendulum-v1")
    parser.add_argument("--updates", type=int, default=40)
    args = parser.parse_args()
    torch.set_num_threads(1)
    with tempfile.TemporaryDirectory() as logdir:
        med = split(args.agent, args.env, args.updates, logdir)
    print(f"{args.agent} {args.env} (µs per env step)   collect  update   total")
    for backend, (c, u) in med.items():
        print(f"  {backend:<32}{c:>8.2f}{u:>8.2f}{c + u:>8.2f}")
    ratio = sum(med["gymnasium"]) / sum(med["torch"])
    print(f"  -> torch backend {ratio:.2f}x faster per env step")


if __name__ == "__main__":
    main()
