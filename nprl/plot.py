"""Learning curves of several agents: evaluation return vs env steps and vs wall-clock.

One colour per agent; the line is the mean over seeds, the shaded band its 95% bootstrap
interval, each seed's curve is drawn faintly underneath, and the solved threshold is a
dashed line. Curves are put on a common grid first (``nprl.stats.interpolate``): linear
between evaluations, drawn from the point where every seed has been evaluated once, a
seed's last value held after it ended.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from nprl.rundata import RunRecord
from nprl.stats import bootstrap_band, interpolate

GRID_POINTS = 200
AXES = (("env steps", 0), ("wall-clock seconds", 1))


def agent_curves(runs: list[RunRecord], axis: int, grid: np.ndarray) -> np.ndarray:
    """[seeds, grid] deterministic eval returns of ``runs`` against column ``axis`` of
    their evaluations (0: env steps, 1: seconds); NaN wherever some seed has not been
    evaluated yet, so the mean never jumps when a late seed joins."""
    curves = np.stack([interpolate([e[axis] for e in r.evals], [e[2] for e in r.evals], grid)
                       for r in runs])
    curves[:, np.isnan(curves).any(axis=0)] = np.nan
    return curves


def plot_task(groups: dict[str, list[RunRecord]], threshold: float | None, title: str,
              path: Path) -> Path:
    """Draw one task's curves (``groups``: agent → its successful runs) into ``path``."""
    import matplotlib

    matplotlib.use("Agg")  # files only: no display needed, works in worker processes and CI
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, 2, figsize=(12, 4.5), constrained_layout=True)
    colours = plt.rcParams["axes.prop_cycle"].by_key()["color"]
    for ax, (xlabel, axis) in zip(axes, AXES):
        ends = [r.evals[-1][axis] for runs in groups.values() for r in runs if r.evals]
        if not ends:
            ax.text(0.5, 0.5, "no evaluations", ha="center", transform=ax.transAxes)
            continue
        for i, (name, runs) in enumerate(groups.items()):
            runs = [r for r in runs if r.evals]
            if not runs:
                continue
            colour = colours[i % len(colours)]
            # Each agent's grid ends where its longest seed ended: no extrapolation.
            grid = np.linspace(0.0, max(r.evals[-1][axis] for r in runs), GRID_POINTS)
            curves = agent_curves(runs, axis, grid)
            mean, low, high = bootstrap_band(curves)
            for r in runs:
                ax.plot([e[axis] for e in r.evals], [e[2] for e in r.evals], color=colour,
                        alpha=0.15, linewidth=0.8)
            ax.plot(grid, mean, color=colour, linewidth=2,
                    label=f"{name} (n={len(runs)})")
            ax.fill_between(grid, low, high, color=colour, alpha=0.25, linewidth=0)
        if threshold is not None:
            ax.axhline(threshold, color="black", linestyle="--", linewidth=1,
                       label=f"solved ≥ {threshold:g}")
        ax.set_xlabel(xlabel)
        ax.set_ylabel("deterministic eval return")
        ax.grid(alpha=0.3)
        ax.legend(loc="best", fontsize="small")
    fig.suptitle(f"{title}: mean over seeds, 95% bootstrap band")
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path


def plot_runs(runs: list[RunRecord], out_dir: Path) -> list[Path]:
    """``curves.png`` for a single task, else ``curves-<task>.png`` per task."""
    by_env: dict[str, dict[str, list[RunRecord]]] = {}
    thresholds: dict[str, float | None] = {}
    for r in sorted(runs, key=lambda r: (r.env_id, r.group or r.agent)):
        groups = by_env.setdefault(r.env_id, {})
        groups.setdefault(r.group or r.agent, [])
        if r.status == "ok":
            groups[r.group or r.agent].append(r)
        if thresholds.get(r.env_id) is None:
            thresholds[r.env_id] = r.threshold
    single = len(by_env) == 1
    return [plot_task(groups, thresholds[env], env,
                      out_dir / ("curves.png" if single else f"curves-{env}.png"))
            for env, groups in by_env.items()]
