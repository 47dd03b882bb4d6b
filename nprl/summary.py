"""Per-agent summary of a set of runs: ``summary.csv``, ``runs.csv`` and ``summary.md``.

``summary.csv`` has one row per (task, agent): final deterministic evaluation over seeds
(mean, sample std, 95% bootstrap CI of the mean), how many seeds reached the task's
solved threshold, env steps and seconds to it (median, min, max over those seeds) and
env steps per second. ``runs.csv`` has one row per run with its status and error, so a
failed run is listed, not silently dropped. Numbers are written with 6 significant
digits (whole numbers as integers), so re-summarising the same runs gives byte-identical files.
"""

from __future__ import annotations

import csv
import io
from collections.abc import Iterable
from dataclasses import asdict, dataclass
from pathlib import Path

from nprl.rundata import RunRecord
from nprl.stats import bootstrap_ci, mean_std, spread, time_to_threshold


@dataclass
class AgentSummary:
    """One (task, agent) row; time-to-threshold columns are over the seeds that got there."""

    env: str
    agent: str
    runs: int
    ok: int
    failed: int
    interrupted: int
    threshold: float | None
    final_mean: float
    final_std: float
    final_ci_low: float
    final_ci_high: float
    solved: int
    steps_to_threshold_median: float | None
    steps_to_threshold_min: float | None
    steps_to_threshold_max: float | None
    seconds_to_threshold_median: float | None
    seconds_to_threshold_min: float | None
    seconds_to_threshold_max: float | None
    steps_per_second: float | None


RUN_COLUMNS = ["env", "agent", "seed", "run", "status", "final_return", "steps", "seconds",
               "steps_to_threshold", "seconds_to_threshold", "steps_per_second", "error"]


def solve_point(run: RunRecord) -> tuple[float | None, float | None]:
    """(env steps, seconds) of the run's first evaluation ≥ its threshold, or Nones."""
    steps = time_to_threshold([s for s, _, _ in run.evals], [v for _, _, v in run.evals],
                              run.threshold)
    if steps is None:
        return None, None
    return steps, next(t for s, t, _ in run.evals if s == steps)


def group_runs(runs: Iterable[RunRecord]) -> dict[tuple[str, str], list[RunRecord]]:
    """Runs keyed by (task, group), sorted by task, then group, then seed: a fixed order,
    whatever order the directories were found in."""
    def order(r: RunRecord) -> tuple:
        return r.env_id, r.group or r.agent, -1 if r.seed is None else r.seed, r.label

    out: dict[tuple[str, str], list[RunRecord]] = {}
    for run in sorted(runs, key=order):
        out.setdefault((run.env_id, run.group or run.agent), []).append(run)
    return out


def summarise(runs: Iterable[RunRecord]) -> list[AgentSummary]:
    """One ``AgentSummary`` per (task, agent); failed runs are counted, not averaged."""
    rows = []
    for (env, agent), group in group_runs(runs).items():
        ok = [r for r in group if r.status == "ok"]
        finals = [r.final_return for r in ok]
        mean, std = mean_std(finals)
        low, high = bootstrap_ci(finals)
        points = [solve_point(r) for r in ok]
        solved = [p for p in points if p[0] is not None]
        sps = [r.steps_per_second for r in ok if r.steps_per_second]
        thresholds = [r.threshold for r in group if r.threshold is not None]
        rows.append(AgentSummary(
            env, agent, len(group), len(ok), sum(r.status == "failed" for r in group),
            sum(r.status == "interrupted" for r in group),
            thresholds[0] if thresholds else None, mean, std, low, high, len(solved),
            *spread([p[0] for p in solved]), *spread([p[1] for p in solved]),
            sum(sps) / len(sps) if sps else None,
        ))
    return rows


def run_rows(runs: Iterable[RunRecord]) -> list[dict[str, object]]:
    """One dict per run, keys ``RUN_COLUMNS``."""
    rows = []
    for (env, agent), group in group_runs(runs).items():
        for r in group:
            steps, seconds = solve_point(r) if r.status == "ok" else (None, None)
            rows.append(dict(env=env, agent=agent, seed=r.seed, run=r.label, status=r.status,
                             final_return=r.final_return if r.status == "ok" else None,
                             steps=r.steps, seconds=r.seconds, steps_to_threshold=steps,
                             seconds_to_threshold=seconds, steps_per_second=r.steps_per_second,
                             error=r.error))
    return rows


def write_summary(runs: list[RunRecord], out_dir: Path, title: str = "") -> list[AgentSummary]:
    """Write ``summary.csv``, ``runs.csv`` and ``summary.md`` into ``out_dir``."""
    from nprl.summary_md import render_markdown

    out_dir.mkdir(parents=True, exist_ok=True)
    summary = summarise(runs)
    rows = [asdict(s) for s in summary]
    columns = list(AgentSummary.__dataclass_fields__)
    (out_dir / "summary.csv").write_text(to_csv(rows, columns))
    (out_dir / "runs.csv").write_text(to_csv(run_rows(runs), RUN_COLUMNS))
    (out_dir / "summary.md").write_text(render_markdown(summary, run_rows(runs), title))
    return summary


def to_csv(rows: list[dict[str, object]], columns: list[str]) -> str:
    buf = io.StringIO()
    writer = csv.writer(buf, lineterminator="\n")
    writer.writerow(columns)
    for row in rows:
        writer.writerow([fmt(row.get(c)) for c in columns])
    return buf.getvalue()


def fmt(value: object) -> str:
    """CSV cell: empty for None/NaN; whole numbers as integers; else 6 significant digits
    (returns are logged as float32, more digits would only be noise), one decimal at most
    for numbers ≥ 1e5 (env steps) so they never turn into exponents."""
    if value is None:
        return ""
    if isinstance(value, float):
        if value != value:
            return ""
        if value.is_integer() and abs(value) < 1e15:
            return str(int(value))
        return f"{value:.1f}" if abs(value) >= 1e5 else f"{value:.6g}"
    return str(value)
