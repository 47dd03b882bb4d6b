"""The benchmark table: every nprl agent × the five classic-control tasks × 5 seeds.

Each run uses the presets of this checkout (``agents/*.toml``, ``envs/*.toml``: budget,
evaluation schedule, solved threshold) and is evaluated the usual way (deterministic,
``eval_episodes`` episodes every ``eval_every`` env steps). All runs share one process
pool (``nprl.compare``), longest budgets first; the summary, one figure per task, and
``docs/benchmarks.md`` (the table, the command, the machine) are written at the end.

    python scripts/benchmark.py                      # the full table (hours on 2 cores)
    python scripts/benchmark.py --steps 2048 --seeds 2 --no-docs     # a smoke test
    python scripts/benchmark.py --from runs/benchmark/bench-<stamp>  # docs from old runs
"""

from __future__ import annotations

import argparse
import shutil
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))  # this checkout's nprl and presets, whatever is installed

from nprl.agents import AGENTS  # noqa: E402
from nprl.cli import parse_sets  # noqa: E402
from nprl.compare import execute, make_jobs, new_dir, summarise_dirs, validate  # noqa: E402
from nprl.errors import NprlError  # noqa: E402
from nprl.summary_md import agent_table, markdown_table  # noqa: E402

TASKS = ["CartPole-v1", "Acrobot-v1", "MountainCar-v0", "MountainCarContinuous-v0",
         "Pendulum-v1"]

# The zoo's figures: (final return, env-step budget) of sb3-contrib TRPO and of SB3 PPO;
# the zoo used gSDE exploration on the tasks in GSDE (nprl never does).
ZOO = {
    "CartPole-v1": ((500.0, 100_000), (500.0, 100_000)),
    "Acrobot-v1": ((-83.1, 100_000), (-73.5, 1_000_000)),
    "MountainCar-v0": ((-107.3, 100_000), (-110.4, 1_000_000)),
    "MountainCarContinuous-v0": ((92.5, 50_000), (88.3, 20_000)),
    "Pendulum-v1": ((-174.6, 100_000), (-172.2, 100_000)),
}
GSDE = {"MountainCarContinuous-v0", "Pendulum-v1"}

# The targets of the benchmark issue: median final return over seeds, at or below the
# rl-baselines3-zoo budgets.
TARGETS = {
    "CartPole-v1": (500.0, "500 @100k"),
    "Acrobot-v1": (-85.0, "≥ −85 @100k"),
    "MountainCar-v0": (-110.0, "≥ −110 @100k"),
    "MountainCarContinuous-v0": (90.0, "≥ 90 @50k"),
    "Pendulum-v1": (-200.0, "≥ −200 @100k"),
}


def _zoo_text(env: str) -> str:
    """The zoo's TRPO / PPO figures for the target table, e.g. "−83.1 / −73.5 @1M": PPO's
    budget where it differs from TRPO's, and whether the zoo used gSDE."""
    (trpo, trpo_budget), (ppo, ppo_budget) = ZOO[env]
    text = f"{trpo:g} / {ppo:g}".replace("-", "−")
    if ppo_budget != trpo_budget:
        text += f" @{_steps(ppo_budget)}"
    return text + (", gSDE" if env in GSDE else "")


def _finals(runs_csv: Path) -> tuple[dict[tuple[str, str], list[float]], dict[str, int]]:
    """Final returns of the successful runs per (task, agent), and each task's budget
    (its runs' largest env-step count)."""
    import csv

    finals: dict[tuple[str, str], list[float]] = {}
    budgets: dict[str, int] = {}
    with runs_csv.open() as f:
        for row in csv.DictReader(f):
            if row["status"] == "ok":
                finals.setdefault((row["env"], row["agent"]), []).append(
                    float(row["final_return"]))
                budgets[row["env"]] = max(budgets.get(row["env"], 0), int(row["steps"]))
    return finals, budgets


def target_table(runs_csv: Path, agents: list[str]) -> str:
    """Median final return per task and agent against ``TARGETS`` (✓ where met), with the
    number of seeds whose final return meets the target."""
    import statistics

    finals, _ = _finals(runs_csv)
    body = []
    for env, (target, text) in TARGETS.items():
        cells = []
        for agent in agents:
            got = finals.get((env, agent))
            if not got:
                cells.append("–")
                continue
            med, ok = statistics.median(got), sum(x >= target for x in got)
            cells.append(f"{med:.1f}{' ✓' if med >= target else ''} ({ok}/{len(got)})")
        if any(c != "–" for c in cells):
            body.append([f"{env}, {text} ({_zoo_text(env)})", *cells])
    return markdown_table(["task, target (zoo: sb3-contrib TRPO / SB3 PPO)", *agents], body)


def zoo_comparison(runs_csv: Path) -> list[str]:
    """One line per task: nprl TRPO's and PPO's median final return next to the zoo's
    figure for the same algorithm, with both budgets, and whether nprl is at or above it."""
    import statistics

    finals, budgets = _finals(runs_csv)
    lines = []
    for env, zoo_pair in ZOO.items():
        parts = []
        for agent, (zoo, zoo_budget) in zip(("trpo", "ppo"), zoo_pair):
            got = finals.get((env, agent))
            if not got:
                continue
            med, budget = statistics.median(got), budgets[env]
            verdict = "at or above it" if med >= zoo else f"{zoo - med:.1f} below it"
            parts.append(f"{agent.upper()} {med:.1f} at {_steps(budget)} vs the zoo's "
                         f"{zoo:g} at {_steps(zoo_budget)} ({verdict})")
        if parts:
            how = " (the zoo with gSDE, nprl without)" if env in GSDE else ""
            lines.append(f"- {env}{how}: " + "; ".join(parts) + ".")
    return lines


def build_jobs(envs: list[str], agents: list[str], seeds: list[int], steps: int | None,
               overrides: dict, out: Path) -> list:
    """Jobs keyed ``<env>/<agent>/seed<k>``, longest budget first (so the pool's tail is
    short runs, not one long run on one core while the others idle)."""
    jobs = []
    for env in envs:
        configs = validate(agents, env, seeds, steps, overrides)
        jobs += make_jobs(configs, seeds, out, steps, overrides, prefix=f"{env}/")
    return sorted(jobs, key=lambda j: -j.total_steps)


def git_commit() -> str:
    try:
        out = subprocess.run(["git", "-C", str(ROOT), "rev-parse", "--short", "HEAD"],
                             capture_output=True, text=True, check=True).stdout.strip()
        dirty = subprocess.run(["git", "-C", str(ROOT), "status", "--porcelain", "agents",
                                "envs", "nprl"], capture_output=True, text=True).stdout
        return out + (" (with uncommitted changes)" if dirty.strip() else "")
    except (OSError, subprocess.CalledProcessError):
        return "unknown"


def write_docs(bench_dir: Path, docs: Path, command: str, info: dict) -> Path:
    """``docs/benchmarks.md`` and ``docs/benchmarks/<task>.png`` from a benchmark dir."""
    import json

    summary, figures = summarise_dirs([bench_dir], bench_dir)
    figdir = docs / "benchmarks"
    figdir.mkdir(parents=True, exist_ok=True)
    for fig in figures:
        env = fig.stem.removeprefix("curves-") if fig.stem != "curves" else summary[0].env
        shutil.copyfile(fig, figdir / f"{env}.png")
    manifest = json.loads((bench_dir / "compare.json").read_text())
    m = manifest.get("machine", {})
    ran = manifest.get("command", "")  # how these runs were made, not how docs were redone
    if ran.startswith("scripts/benchmark.py") and "--from" not in ran:
        command = "python " + ran
    shutil.copyfile(bench_dir / "runs.csv", figdir / "runs.csv")
    lines = [
        "# Benchmarks", "",
        "Every nprl agent on the five classic-control tasks, "
        f"{len(manifest.get('seeds', []))} seeds each, with the presets of commit "
        f"`{manifest.get('commit') or info.get('commit', '?')}` (`agents/*.toml`, `envs/*.toml`: "
        "budget, evaluation schedule and solved threshold per task). Return is the "
        "deterministic evaluation (mean over the preset's `eval_episodes` episodes, every "
        "`eval_every` env steps); the final return is the last evaluation. Seconds are "
        "wall-clock from the start of the run, evaluations included, with the runs sharing "
        "the machine (one single-threaded run per core). Time to threshold is over the "
        "seeds that reached it; 95% CIs are percentile bootstraps over seeds.", "",
        "Reproduce:", "", "```bash", command, "```", "",
        f"Machine: {m.get('cpu', '?')}, {m.get('cores', '?')} cores used, "
        f"{m.get('os', '?')}, Python {m.get('python', '?')}, torch {m.get('torch', '?')}; "
        f"started {manifest.get('started', '?')}"
        + (f"; load average {m['load_average']} at the start" if m.get("load_average") else "")
        + (f"; {_duration(info['hours'])} in total" if "hours" in info else "") + ".", "",
    ]
    if info.get("note"):
        lines += [info["note"], ""]
    lines += ["Against the targets: median final return over the seeds, ✓ where it meets the "
              "target, and in brackets the seeds whose final return meets it. Budgets are the "
              "env presets' (Pendulum-v1 and MountainCarContinuous-v0 without the zoo's gSDE "
              "exploration).", "",
              target_table(bench_dir / "runs.csv", sorted({s.agent for s in summary})), "",
              "Against the zoo's own figures (median final return; the budget in env steps):",
              "", *zoo_comparison(bench_dir / "runs.csv"), ""]
    order = manifest.get("envs") or []
    for env in sorted(dict.fromkeys(s.env for s in summary),
                      key=lambda e: (order.index(e) if e in order else len(order), e)):
        rows = [s for s in summary if s.env == env]
        lines += [f"## {env}", "", f"Solved threshold: {rows[0].threshold:g}." if
                  rows[0].threshold is not None else "No solved threshold.", "",
                  agent_table(rows), "", f"![{env}](benchmarks/{env}.png)", ""]
    if (docs / "peers.md").exists():
        lines += ["Against sb3-contrib TRPO and SB3 PPO with the rl-baselines3-zoo "
                  "hyperparameters (`scripts/bench_peers.py`): [peers.md](peers.md).", ""]
    lines += ["Per-run numbers: [benchmarks/runs.csv](benchmarks/runs.csv) (one row per run); "
              f"`nprl plot {bench_dir.name}` on the run directory redraws everything.", ""]
    path = docs / "benchmarks.md"
    path.write_text("\n".join(lines))
    return path


def _steps(n: int) -> str:
    return f"{n / 1e6:g}M" if n >= 1_000_000 else f"{n / 1000:.0f}k"


def _duration(hours: float) -> str:
    return f"{hours:.1f} h" if hours >= 1 else f"{hours * 60:.0f} min"


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--envs", nargs="+", default=TASKS)
    parser.add_argument("--agents", nargs="+", default=list(AGENTS))
    parser.add_argument("--seeds", type=int, default=5)
    parser.add_argument("--steps", type=int, help="override every preset budget (smoke tests)")
    parser.add_argument("--workers", type=int, help="default: one per core")
    parser.add_argument("--set", action="append", default=[], metavar="KEY=VALUE")
    parser.add_argument("--logdir", default=str(ROOT / "runs"))
    parser.add_argument("--docs", default=str(ROOT / "docs"))
    parser.add_argument("--no-docs", action="store_true", help="leave docs/ alone")
    parser.add_argument("--from", dest="from_dir", help="write docs from this benchmark dir")
    parser.add_argument("--note", help="a sentence for docs/benchmarks.md (e.g. what was cut)")
    args = parser.parse_args()
    command = " ".join(["python scripts/benchmark.py", *sys.argv[1:]])
    try:
        if args.from_dir:
            path = write_docs(Path(args.from_dir), Path(args.docs), command,
                              {"commit": git_commit(), "note": args.note})
            print(f"wrote {path}")
            return 0
        overrides = parse_sets(args.set)
        seeds = list(range(args.seeds))
        if args.seeds < 1:
            raise NprlError(f"--seeds {args.seeds}: expected a positive integer")
        out = new_dir(Path(args.logdir) / "benchmark", "bench")
        jobs = build_jobs(args.envs, args.agents, seeds, args.steps, overrides, out)
    except NprlError as e:
        print(f"benchmark: error: {e}", file=sys.stderr)
        return 2
    start = time.time()
    result = execute(jobs, out, args.workers, None, {
        "agents": args.agents, "envs": args.envs, "seeds": seeds, "steps": args.steps,
        "overrides": overrides, "commit": git_commit()})
    hours = (time.time() - start) / 3600
    print(f"{len(jobs)} runs in {_duration(hours)}: {result.out_dir}/summary.md")
    if not args.no_docs and not result.interrupted:
        path = write_docs(result.out_dir, Path(args.docs), command,
                          {"commit": git_commit(), "hours": hours, "note": args.note})
        print(f"wrote {path}")
    return 130 if result.interrupted else 0


if __name__ == "__main__":
    sys.exit(main())
