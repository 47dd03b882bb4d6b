"""Data-parallel scaling: wall-clock per update, env steps/s and communication under torchrun.

    python scripts/bench_distributed.py                      # TRPO and PPO, 1/2/4 processes
    python scripts/bench_distributed.py --agents trpo --procs 1 2 --batch 16384 4096

For each (agent, processes, total batch) it launches ``torch.distributed.run`` with this
file as the worker. Each rank builds the real ``Trainer`` (process group, seeds,
broadcast), then times ``collect`` and ``agent.update`` for a few updates after a warm-up.
The reduction hook counts every collective of the update (calls, bytes, seconds inside it),
so the table shows what is communicated — the policy gradient, every Fisher-vector
product, line-search and logging scalars, critic / PPO gradients — and what it would cost
over a network: per all-reduce ``latency + 2(W−1)/W · bytes / bandwidth`` (ring).

Every rank gets total_batch / W steps per update (n_steps = min(256, total/W),
n_envs = total/W/n_steps).
"""

from __future__ import annotations

import argparse
import json
import os
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
N_STEPS = 256
OVERRIDES = {
    "trpo": {},  # the preset: 10 CG iterations, line search, critic 5 epochs × 4 minibatches
    # PPO as usually run on big batches: 10 epochs × 32 minibatches, Adam on actor + critic
    "ppo": {"n_epochs": 10, "n_minibatches": 32, "lr_decay": False},
}


def worker(agent: str, env_id: str, total: int, warmup: int, updates: int,
           extra: dict) -> None:
    import torch
    import torch.distributed as dist

    from nprl.config import resolve
    from nprl.distributed import comm_stats, world_size
    from nprl.trainer import Trainer

    world = int(os.environ.get("WORLD_SIZE", "1"))
    n_steps = min(N_STEPS, total // world)
    n_envs = total // world // n_steps
    cfg = resolve(agent, env_id, 0, {**OVERRIDES[agent], "n_envs": n_envs, "n_steps": n_steps,
                                     "device": "cpu", "eval_every": 0, **extra})
    with tempfile.TemporaryDirectory() as tmp:
        trainer = Trainer(cfg, logdir=tmp, progress=False)
        n_actor = sum(p.numel() for p in trainer.policy.actor_parameters())
        n_critic = sum(p.numel() for p in trainer.policy.critic_parameters())
        rows = []
        for i in range(warmup + updates):
            if world_size() > 1:
                dist.barrier()  # start every update together: hook time = comm + imbalance
            t0 = time.perf_counter()
            batch, _ = trainer.collector.collect()
            t1 = time.perf_counter()
            comm_stats.reset()
            trainer.agent.update(batch)
            t2 = time.perf_counter()
            if i >= warmup:
                rows.append({"collect": t1 - t0, "update": t2 - t1, "hook_s": comm_stats.seconds,
                             "calls": comm_stats.calls, "bytes": comm_stats.bytes,
                             "kinds": _kinds(comm_stats.by_size, n_actor, n_critic)})
        micro = _micro(n_actor) if world_size() > 1 else {}
        if trainer.parallel.is_main:
            print("RESULT " + json.dumps({"agent": agent, "world": world, "total": total,
                                          "threads": torch.get_num_threads(), "rows": rows,
                                          "micro": micro}))


def _micro(n_actor: int, reps: int = 50) -> dict[str, float]:
    """Seconds per all-reduce on this machine when all ranks are already waiting (pure
    communication, no load imbalance): a scalar, and an actor-sized vector."""
    import torch
    import torch.distributed as dist

    from nprl.distributed import all_reduce_mean

    out = {}
    for name, n in (("scalar", 1), ("vector", n_actor)):
        x = torch.ones(n)
        dist.barrier()
        t0 = time.perf_counter()
        for _ in range(reps):
            all_reduce_mean(x)
        out[name] = (time.perf_counter() - t0) / reps
    return out


def _kinds(by_size, n_actor: int, n_critic: int) -> dict[str, list[float]]:
    """Collectives grouped by what they carry (recognised by their size)."""
    out: dict[str, list[float]] = {}
    for (op, numel), (calls, nbytes, secs) in by_size.items():
        if numel == n_actor:
            kind = "actor vectors (gradient, Fisher products)"
        elif numel == n_critic:
            kind = "critic gradients"
        elif numel == n_actor + n_critic:
            kind = "actor+critic gradients (PPO)"
        elif numel <= 16:
            kind = "scalars (surrogate, KL, moments, logging)"
        else:
            kind = f"other ({op}, {numel})"
        acc = out.setdefault(kind, [0, 0, 0.0])
        acc[0], acc[1], acc[2] = acc[0] + calls, acc[1] + nbytes, acc[2] + secs
    return out


def launch(agent: str, env_id: str, world: int, total: int, warmup: int, updates: int,
           sets: list[str]) -> dict:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    env = {**os.environ, "PYTHONPATH": str(ROOT), "OMP_NUM_THREADS": "1"}
    cmd = [sys.executable, "-m", "torch.distributed.run", "--nproc-per-node", str(world),
           "--master-port", str(port), __file__, "--worker", "--agents", agent, "--env", env_id,
           "--batch", str(total), "--warmup", str(warmup), "--updates", str(updates),
           *[a for kv in sets for a in ("--set", kv)]]
    proc = subprocess.run(cmd, env=env, capture_output=True, text=True, cwd=ROOT)
    for line in proc.stdout.splitlines():
        if line.startswith("RESULT "):
            return json.loads(line[7:])
    raise SystemExit(f"worker failed ({proc.returncode}):\n{proc.stderr[-3000:]}")


def network_seconds(calls: float, nbytes: float, world: int, gbit: float,
                    latency: float = 50e-6) -> float:
    """Ring all-reduce model: each call pays ``latency``, and every rank sends and
    receives 2(W−1)/W of the payload."""
    if world == 1:
        return 0.0
    return calls * latency + 2 * (world - 1) / world * nbytes * 8 / (gbit * 1e9)


def summarise(res: dict, base: dict | None) -> dict:
    rows = res["rows"]
    med = {k: statistics.median(r[k] for r in rows)
           for k in ("collect", "update", "hook_s", "calls", "bytes")}
    wall = med["collect"] + med["update"]
    out = {**med, "wall": wall, "sps": res["total"] / wall, "world": res["world"],
           "agent": res["agent"], "total": res["total"], "kinds": rows[-1]["kinds"],
           "micro": res.get("micro", {})}
    if base is not None:
        out["speedup"] = base["wall"] / wall
        out["efficiency"] = out["speedup"] / res["world"]
    for gbit in (1, 10):
        out[f"net{gbit}"] = network_seconds(med["calls"], med["bytes"], res["world"], gbit)
    return out


def report(results: list[dict]) -> None:
    print("\n| agent | procs | batch | per update (s) | collect | update | in hook (s) | "
          "hook % of update | env steps/s | speed-up | efficiency | all-reduces | KB reduced | "
          "net 1 Gbit/s (ms) | net 10 Gbit/s (ms) |")
    print("|" + "---|" * 15)
    for r in results:
        sp = f"{r['speedup']:.2f}×" if "speedup" in r else "–"
        eff = f"{r['efficiency']:.0%}" if "efficiency" in r else "–"
        print(f"| {r['agent']} | {r['world']} | {r['total']} | {r['wall']:.3f} | "
              f"{r['collect']:.3f} | {r['update']:.3f} | {r['hook_s']:.3f} | "
              f"{r['hook_s'] / r['update']:.0%} | {r['sps']:,.0f} | {sp} | {eff} | "
              f"{r['calls']:.0f} | {r['bytes'] / 1024:,.0f} | {r['net1'] * 1e3:.1f} | "
              f"{r['net10'] * 1e3:.1f} |")
    print("\nLoopback all-reduce when every rank is already waiting (pure communication):")
    for r in results:
        if r["micro"]:
            print(f"  {r['agent']} W={r['world']} batch {r['total']}: scalar "
                  f"{r['micro']['scalar'] * 1e6:.0f} µs, actor vector "
                  f"{r['micro']['vector'] * 1e6:.0f} µs; hook time per update if pure: "
                  f"{r['calls'] * r['micro']['vector'] * 1e3:.1f} ms or less")
    print("\nPer update, by what is reduced (first multi-process run of each agent):")
    seen = set()
    for r in results:
        if r["world"] == 1 or r["agent"] in seen:
            continue
        seen.add(r["agent"])
        for kind, (calls, nbytes, secs) in sorted(r["kinds"].items()):
            print(f"  {r['agent']} W={r['world']}: {kind}: {calls} calls, "
                  f"{nbytes / 1024:,.1f} KB, {secs * 1e3:.1f} ms in the hook")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--agents", nargs="+", default=["trpo", "ppo"])
    ap.add_argument("--env", default="CartPole-v1")
    ap.add_argument("--procs", nargs="+", type=int, default=[1, 2, 4])
    ap.add_argument("--batch", nargs="+", type=int, default=[16384],
                    help="total env steps per update across ranks")
    ap.add_argument("--warmup", type=int, default=1)
    ap.add_argument("--updates", type=int, default=4)
    ap.add_argument("--set", action="append", default=[], metavar="KEY=VALUE",
                    help="config override, e.g. --set backend=gymnasium")
    ap.add_argument("--json", help="also write the raw results here")
    ap.add_argument("--worker", action="store_true", help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.worker:
        from nprl.cli import parse_sets

        worker(args.agents[0], args.env, args.batch[0], args.warmup, args.updates,
               parse_sets(args.set))
        return
    print(f"{os.cpu_count()} CPUs; 1 torch thread per process; {args.env}, n_steps {N_STEPS}; "
          f"median of {args.updates} updates after {args.warmup} warm-up; {args.set or ''}")
    results, raw = [], []
    for agent in args.agents:
        for total in args.batch:
            base = None
            for world in args.procs:
                res = launch(agent, args.env, world, total, args.warmup, args.updates,
                             args.set)
                raw.append(res)
                row = summarise(res, base)
                base = base or (row if world == 1 else None)
                results.append(row)
                print(f"  {agent} W={world} batch {total}: {row['wall']:.3f} s/update",
                      flush=True)
    report(results)
    if args.json:
        Path(args.json).write_text(json.dumps(raw, indent=1))


if __name__ == "__main__":
    main()
