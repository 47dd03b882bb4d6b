"""Env steps per second of ACKTR against NPG on the same task and batch size.

    python scripts/bench_acktr.py                          # CartPole-v1 and Pendulum-v1
    python scripts/bench_acktr.py --env Acrobot-v1 --updates 60

Both agents use their presets for the task except the rollout shape, which is forced
to be the same (``--n-envs`` × ``--n-steps``, default: ACKTR's preset). The training loop
is the trainer's (collect → update), without evaluations or logging. The two agents are
run in alternating rounds so that a change of machine load hits both alike; after a
warm-up (imports, first-call costs) each round times ``--updates-per-round`` updates.
Printed: steps/s of each (whole loop), the share of the update in the loop, and the
ratio ACKTR / NPG (≥ 1 means ACKTR is faster).
"""

from __future__ import annotations

import argparse
import tempfile
import time

import torch

from nprl.config import resolve
from nprl.trainer import Trainer


def make(agent: str, env_id: str, seed: int, shape: dict, tmp: str) -> Trainer:
    cfg = resolve(agent, env_id, seed, {"device": "cpu", "eval_every": 0, **shape})
    return Trainer(cfg, logdir=f"{tmp}/{agent}", progress=False)


def timed_updates(tr: Trainer, n: int) -> tuple[float, float, int]:
    """(loop seconds, update seconds, env steps) of n collect → update iterations."""
    loop = upd = 0.0
    steps = 0
    for _ in range(n):
        t0 = time.perf_counter()
        batch, _ = tr.collector.collect()
        t1 = time.perf_counter()
        tr.agent.update(batch)
        t2 = time.perf_counter()
        loop, upd, steps = loop + t2 - t0, upd + t2 - t1, steps + batch.size
    return loop, upd, steps


def bench(env_id: str, args: argparse.Namespace) -> None:
    base = resolve("acktr", env_id, args.seed).run
    shape = {"n_envs": args.n_envs or base.n_envs, "n_steps": args.n_steps or base.n_steps}
    with tempfile.TemporaryDirectory() as tmp:
        trainers = {a: make(a, env_id, args.seed, shape, tmp) for a in ("npg", "acktr")}
        totals = {a: [0.0, 0.0, 0] for a in trainers}
        for tr in trainers.values():
            timed_updates(tr, args.warmup)
        for _ in range(args.rounds):
            for a, tr in trainers.items():
                loop, upd, steps = timed_updates(tr, args.updates_per_round)
                totals[a][0] += loop
                totals[a][1] += upd
                totals[a][2] += steps
        for tr in trainers.values():
            tr.env.close()
            tr.eval_env.close()
    batch = shape["n_envs"] * shape["n_steps"]
    print(f"{env_id}: batch {shape['n_envs']}×{shape['n_steps']} = {batch}, "
          f"{args.rounds}×{args.updates_per_round} timed updates per agent")
    sps = {}
    for a, (loop, upd, steps) in totals.items():
        sps[a] = steps / loop
        print(f"  {a:>5}: {sps[a]:8.0f} env steps/s, update {1e3 * upd / (steps / batch):6.1f} ms "
              f"({100 * upd / loop:4.1f}% of the loop)")
    print(f"  ACKTR / NPG steps/s = {sps['acktr'] / sps['npg']:.2f}")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--env", nargs="+", default=["CartPole-v1", "Pendulum-v1"])
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--n-envs", type=int, default=None)
    ap.add_argument("--n-steps", type=int, default=None)
    ap.add_argument("--warmup", type=int, default=3)
    ap.add_argument("--rounds", type=int, default=6)
    ap.add_argument("--updates-per-round", type=int, default=5)
    args = ap.parse_args()
    torch.set_num_threads(1)
    for env_id in args.env:
        bench(env_id, args)


if __name__ == "__main__":
    main()
