"""Soak test (not CI): long runs of every agent, watching memory and skipped updates.

    python scripts/soak.py                       # 1M steps of each agent on CartPole-v1
    python scripts/soak.py --steps 200000 --agents trpo ppo --every 50000

Each agent trains in its own fresh process (so its peak memory is its own) with
evaluation only at the end. Every ``--every`` env steps the child records its resident
set size (VmRSS) and peak (VmHWM) from /proc/self/status; the parent prints a table:
RSS at each sample, the growth from the first sample to the last (a leak shows as steady
growth), the peak, skipped updates, throughput and the final evaluation.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def memory_mb() -> tuple[float, float]:
    """(VmRSS, VmHWM) of this process in MiB (Linux)."""
    fields = {}
    for line in Path("/proc/self/status").read_text().splitlines():
        key, _, value = line.partition(":")
        if key in ("VmRSS", "VmHWM"):
            fields[key] = int(value.split()[0]) / 1024  # kB
    return fields["VmRSS"], fields["VmHWM"]


def child(agent: str, env: str, steps: int, every: int, seed: int) -> None:
    """Train one agent, printing one JSON line per memory sample and one at the end."""
    sys.path.insert(0, str(ROOT))
    from nprl.config import resolve
    from nprl.trainer import Trainer

    with tempfile.TemporaryDirectory() as logdir:
        cfg = resolve(agent, env, seed, {"steps": steps, "eval_every": 0,
                                         "checkpoint_every": 0})
        trainer = Trainer(cfg, logdir, progress=False)
        update, next_sample = trainer.guard.update, every

        def sampled_update(batch):
            nonlocal next_sample
            metrics = update(batch)
            done = trainer.steps + batch.size
            if done >= next_sample:
                next_sample += every
                rss, hwm = memory_mb()
                print(json.dumps({"steps": done, "rss": rss, "hwm": hwm}), flush=True)
            return metrics

        trainer.guard.update = sampled_update
        start = time.perf_counter()
        result = trainer.run()
        rss, hwm = memory_mb()
        print(json.dumps({"done": True, "steps": result.steps, "rss": rss, "hwm": hwm,
                          "seconds": time.perf_counter() - start,
                          "skipped": trainer.guard.skipped_updates,
                          "eval": result.final_eval.mean if result.final_eval else None}),
              flush=True)


def run_agent(agent: str, args: argparse.Namespace) -> dict:
    proc = subprocess.run([sys.executable, __file__, "--child", agent, "--env", args.env,
                           "--steps", str(args.steps), "--every", str(args.every),
                           "--seed", str(args.seed)], capture_output=True, text=True)
    if proc.returncode != 0:
        return {"agent": agent, "error": proc.stderr.strip().splitlines()[-1:]}
    lines = [json.loads(x) for x in proc.stdout.splitlines() if x.startswith("{")]
    return {"agent": agent, "samples": [x for x in lines if "done" not in x],
            "final": next(x for x in lines if "done" in x)}


def table(results: list[dict], every: int) -> str:
    rows = [f"| agent | RSS MiB every {every:,} steps | growth first→last | peak (VmHWM) "
            "| skipped updates | steps/s | final eval |",
            "|---|---|---|---|---|---|---|"]
    for r in results:
        if "error" in r:
            rows.append(f"| {r['agent']} | error: {r['error']} | | | | | |")
            continue
        rss = [s["rss"] for s in r["samples"]]
        f = r["final"]
        growth = f"{rss[-1] - rss[0]:+.1f}" if rss else "n/a"
        ev = "n/a" if f["eval"] is None else f"{f['eval']:.1f}"
        rows.append(f"| {r['agent']} | {' '.join(f'{x:.0f}' for x in rss)} | {growth} | "
                    f"{f['hwm']:.0f} | {f['skipped']} | {f['steps'] / f['seconds']:,.0f} | "
                    f"{ev} |")
    return "\n".join(rows)


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--agents", nargs="+", help="default: every agent in nprl.agents.AGENTS")
    p.add_argument("--env", default="CartPole-v1")
    p.add_argument("--steps", type=int, default=1_000_000)
    p.add_argument("--every", type=int, default=100_000, help="env steps between samples")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--child", help=argparse.SUPPRESS)
    args = p.parse_args()
    if args.child:
        child(args.child, args.env, args.steps, args.every, args.seed)
        return
    sys.path.insert(0, str(ROOT))
    from nprl.agents import AGENTS

    results = []
    for agent in args.agents or list(AGENTS):
        results.append(run_agent(agent, args))
        print(f"{agent}: done", file=sys.stderr, flush=True)
    print(f"{args.env}, {args.steps:,} steps per agent, seed {args.seed}")
    print(table(results, args.every))


if __name__ == "__main__":
    main()
