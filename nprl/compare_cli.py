"""``nprl compare`` and ``nprl plot`` (registered by ``nprl.cli`` when this module exists).

Exit codes: 0 all runs finished, 1 some runs failed (they are in the summary), 2 bad input
(one line, nothing created), 130 interrupted (the summary of what finished is written).
"""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

from nprl.errors import NprlError


def register(subparsers: Any) -> None:
    """Add the ``compare`` and ``plot`` subcommands to the ``nprl`` parser."""
    from nprl.agents import AGENTS
    from nprl.cli import EPILOG
    from nprl.compare import BACKENDS

    c = subparsers.add_parser(
        "compare", help="train several agents × seeds in parallel; summary table and curves",
        description="Train every AGENT with every seed on ENV in parallel worker processes "
                    "or Ray tasks (one thread each), then write summary.md/.csv, runs.csv "
                    "and curves.png under <logdir>/compare/<env>-<timestamp>/. Exit code 1 "
                    "if a run failed.",
        epilog=EPILOG)
    c.add_argument("agents", nargs="+", metavar="AGENT", help=f"algorithms: {', '.join(AGENTS)}")
    c.add_argument("--env", required=True, help="gymnasium id, e.g. CartPole-v1")
    seeds = c.add_mutually_exclusive_group()
    seeds.add_argument("--seeds", type=int, default=5, metavar="N", help="seeds 0..N-1 (5)")
    seeds.add_argument("--seed-list", metavar="S,S,...", help="explicit seeds, e.g. 0,1,2")
    c.add_argument("--steps", type=int, help="env-step budget per run (preset)")
    c.add_argument("--workers", type=int, help="worker processes (default: one per core)")
    c.add_argument("--backend", choices=BACKENDS, default="local",
                   help="where runs go: local process pool (default) or Ray tasks "
                        "(pip install 'nprl[ray]')")
    c.add_argument("--address", metavar="ADDR",
                   help="with --backend ray: join the Ray cluster at ADDR (host:port, "
                        "ray://host:port or auto) instead of starting a local Ray; "
                        "--logdir must then be on a filesystem every node shares")
    c.add_argument("--set", action="append", default=[], metavar="KEY=VALUE",
                   help="override a config key for every run, e.g. --set n_envs=4")
    c.add_argument("--logdir", default="runs", help="root directory (runs)")
    c.add_argument("--no-progress", action="store_true", help="no live display")
    c.set_defaults(func=cmd_compare)

    p = subparsers.add_parser(
        "plot", help="redraw the summary and curves from existing run directories",
        description="Read the TensorBoard logs of every run under each DIR (a compare "
                    "directory, a logdir, or single runs, from any day) and write "
                    "summary.md/.csv, runs.csv and curves.png into --out.")
    p.add_argument("dirs", nargs="+", metavar="DIR", help="directories holding runs")
    p.add_argument("--out", help="output directory (default: DIR, when only one is given)")
    p.set_defaults(func=cmd_plot)


def parse_seeds(args: argparse.Namespace) -> list[int]:
    if args.seed_list is not None:
        try:
            seeds = [int(s) for s in args.seed_list.split(",") if s.strip()]
        except ValueError:
            raise NprlError(f"--seed-list {args.seed_list!r}: expected integers like 0,1,2")\
                from None
        if not seeds:
            raise NprlError("--seed-list is empty: expected integers like 0,1,2")
        return seeds
    if args.seeds < 1:
        raise NprlError(f"--seeds {args.seeds}: expected a positive integer")
    return list(range(args.seeds))


def cmd_compare(args: argparse.Namespace) -> int:
    from nprl.cli import parse_sets
    from nprl.compare import compare

    seeds = parse_seeds(args)
    if args.steps is not None and args.steps < 1:
        raise NprlError(f"--steps {args.steps}: expected a positive integer")
    result = compare(args.agents, args.env, seeds, args.steps, args.workers,
                     parse_sets(args.set), args.logdir, False if args.no_progress else None,
                     args.backend, args.address)
    print_summary(result.summary, result.out_dir)
    if result.interrupted:
        raise KeyboardInterrupt
    return 1 if any(o.status != "ok" for o in result.outcomes.values()) else 0


def cmd_plot(args: argparse.Namespace) -> int:
    from nprl.compare import summarise_dirs

    dirs = [Path(d) for d in args.dirs]
    if args.out is None and len(dirs) > 1:
        raise NprlError("several directories: say where to write with --out DIR")
    out = Path(args.out) if args.out else dirs[0]
    summary, figures = summarise_dirs(dirs, out)
    print_summary(summary, out)
    return 0


def print_summary(summary: list, out_dir: Path) -> None:
    """A few lines on stdout; the full tables are in summary.md."""
    for s in summary:
        failed = "".join(f", {n} {what}" for n, what in ((s.failed, "failed"),
                                                         (s.interrupted, "interrupted")) if n)
        final = f"{s.final_mean:.1f} ± {s.final_std:.1f}" if s.ok else "–"
        when = (f", median {s.steps_to_threshold_median:.0f} steps / "
                f"{s.seconds_to_threshold_median:.1f} s to threshold"
                if s.steps_to_threshold_median is not None else "")
        print(f"{s.env} {s.agent}: final {final} over {s.ok} seeds{failed}; "
              f"solved {s.solved}/{s.ok}{when}")
    print(f"summary: {out_dir / 'summary.md'}")
