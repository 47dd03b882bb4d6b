"""``summary.md``: the per-agent table, the per-run table, and failed runs with their errors."""

from __future__ import annotations

from itertools import groupby

from nprl.summary import AgentSummary


def render_markdown(summary: list[AgentSummary], runs: list[dict[str, object]],
                    title: str = "") -> str:
    """Markdown with one section per task (a comparison normally has one)."""
    lines = [f"# {title}", ""] if title else []
    for env, rows in groupby(summary, key=lambda s: s.env):
        rows = list(rows)
        env_runs = [r for r in runs if r["env"] == env]
        lines += task_section(env, rows, env_runs)
    return "\n".join(lines).rstrip() + "\n"


def task_section(env: str, rows: list[AgentSummary], runs: list[dict[str, object]]) -> list[str]:
    threshold = rows[0].threshold if rows else None
    lines = [f"## {env}", ""]
    lines.append(f"Solved threshold: {num(threshold)} (deterministic evaluation, mean return "
                 "over its episodes). Time to threshold: first evaluation at or above it, over "
                 "the seeds that reached it; seconds are wall-clock since the run started.")
    lines += ["", agent_table(rows), ""]
    lines += ["### Runs", "", run_table(runs), ""]
    failed = [r for r in runs if r["status"] != "ok"]
    if failed:
        lines += ["### Failed runs", ""]
        lines += [f"- `{r['run']}` ({r['status']}): {r['error'] or 'no error recorded'}"
                  for r in failed]
        lines.append("")
    return lines


def agent_table(rows: list[AgentSummary]) -> str:
    head = ["agent", "seeds ok", "final return (mean ± std)", "95% CI", "solved",
            "env steps to threshold, median (min–max)", "seconds to threshold, median (min–max)",
            "env steps/s"]
    body = []
    for s in rows:
        failed = ", ".join(f"{n} {what}" for n, what in ((s.failed, "failed"),
                                                         (s.interrupted, "interrupted")) if n)
        failed = f" ({failed})" if failed else ""
        body.append([
            s.agent, f"{s.ok}/{s.runs}{failed}",
            f"{num(s.final_mean)} ± {num(s.final_std)}" if s.ok else "–",
            f"[{num(s.final_ci_low)}, {num(s.final_ci_high)}]" if s.ok else "–",
            f"{s.solved}/{s.ok}",
            _range(s.steps_to_threshold_median, s.steps_to_threshold_min,
                   s.steps_to_threshold_max, 0),
            _range(s.seconds_to_threshold_median, s.seconds_to_threshold_min,
                   s.seconds_to_threshold_max, 1),
            num(s.steps_per_second, 0),
        ])
    return markdown_table(head, body)


def run_table(runs: list[dict[str, object]]) -> str:
    head = ["run", "status", "final return", "env steps", "seconds", "env steps to threshold",
            "seconds to threshold", "env steps/s"]
    body = [[f"`{r['run']}`", str(r["status"]), num(r["final_return"]), num(r["steps"], 0),
             num(r["seconds"], 1), num(r["steps_to_threshold"], 0),
             num(r["seconds_to_threshold"], 1), num(r["steps_per_second"], 0)] for r in runs]
    return markdown_table(head, body)


def markdown_table(head: list[str], body: list[list[str]]) -> str:
    """A GitHub-flavoured Markdown table: the header row, the rule, then ``body``."""
    rows = [head, ["---"] * len(head), *body]
    return "\n".join("| " + " | ".join(row) + " |" for row in rows)


def num(value: object, digits: int = 1) -> str:
    if value is None or (isinstance(value, float) and value != value):
        return "–"
    if isinstance(value, int | float):
        return f"{value:,.{digits}f}"
    return str(value)


def _range(median: float | None, low: float | None, high: float | None, digits: int) -> str:
    if median is None:
        return "not reached"
    return f"{num(median, digits)} ({num(low, digits)}–{num(high, digits)})"
