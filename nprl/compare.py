"""``nprl compare``: every agent × seed on one task, in parallel, summarised and plotted.

Layout (``tensorboard --logdir`` on the top directory overlays the curves by agent)::

    <logdir>/compare/<env>-<timestamp>/
        compare.json                what was asked, and the machine it ran on
        <agent>/seed<k>/            one nprl run (event files, checkpoints, outcome.json)
        summary.md  summary.csv  runs.csv  curves.png

The runs go to a local process pool (``nprl.pool``, the default) or, with
``backend="ray"``, to Ray tasks (``nprl.ray_pool``); both write the same layout.
Everything is checked before the directory is created (Ray connected too), so bad input
leaves nothing behind. The summary is computed from the run directories alone
(``nprl.rundata``), the same way ``nprl plot`` does, so the two always agree.
"""

from __future__ import annotations

import json
import os
import platform
import sys
from contextlib import AbstractContextManager, nullcontext
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

from nprl.errors import NprlError, did_you_mean
from nprl.pool import Outcome, default_workers, run_jobs
from nprl.summary import AgentSummary
from nprl.workers import Job


@dataclass
class CompareResult:
    """out_dir: the comparison directory; outcomes: status of every run by key;
    summary: one row per agent; interrupted: Ctrl-C stopped it (what finished is kept)."""

    out_dir: Path
    outcomes: dict[str, Outcome]
    summary: list[AgentSummary]
    figures: list[Path]
    interrupted: bool = False


BACKENDS = ("local", "ray")


def validate(agents: list[str], env_id: str, seeds: list[int], steps: int | None = None,
             overrides: dict[str, Any] | None = None, workers: int | None = None,
             backend: str = "local", address: str | None = None) -> dict:
    """Check everything a comparison needs; returns {agent: resolved Config}.

    Raises NprlError (unknown agent with a did-you-mean, unknown env id, no or negative
    or repeated seeds, bad worker count, unknown backend or an address without Ray, any
    config key or value) before anything is written."""
    from nprl.agents import AGENTS
    from nprl.config import resolve
    from nprl.envs import check_env_id

    if not agents:
        raise NprlError("name at least one agent, e.g. nprl compare trpo ppo --env CartPole-v1")
    if len(set(agents)) != len(agents):
        raise NprlError(f"agents repeated: {' '.join(agents)}")
    if not seeds:
        raise NprlError("no seeds: use --seeds N (N ≥ 1) or --seed-list 0,1,2")
    if any(s < 0 for s in seeds) or len(set(seeds)) != len(seeds):
        raise NprlError(f"seeds {seeds}: expected distinct integers ≥ 0")
    if workers is not None and workers < 1:
        raise NprlError(f"--workers {workers}: expected a positive integer")
    if backend not in BACKENDS:
        raise NprlError(f"unknown backend {backend!r}; valid: {', '.join(BACKENDS)}")
    if address is not None and backend != "ray":
        raise NprlError(f"--address {address}: only with --backend ray")
    for agent in agents:  # agents first: a typo there is the likeliest mistake
        if agent not in AGENTS:
            raise NprlError(f"unknown agent {agent!r}{did_you_mean(agent, AGENTS)}; "
                            f"valid: {', '.join(AGENTS)}")
    check_env_id(env_id)
    extra = dict(overrides or {})
    if steps is not None:
        extra["steps"] = steps
    return {agent: resolve(agent, env_id, seeds[0], extra) for agent in agents}


def make_jobs(configs: dict, seeds: list[int], out_dir: Path, steps: int | None,
              overrides: dict[str, Any], prefix: str = "") -> list[Job]:
    """One job per agent × seed, keyed ``[prefix/]<agent>/seed<k>``."""
    return [Job(f"{prefix}{agent}/seed{seed}", agent, cfg.env_id, seed, str(out_dir), steps,
                dict(overrides), cfg.run.steps, cfg.run.solved_threshold)
            for agent, cfg in configs.items() for seed in seeds]


def new_dir(parent: Path, name: str) -> Path:
    """``parent/<name>-<timestamp>``, made fresh (a suffix if two start in one second)."""
    stamp = datetime.now().strftime("%Y%m%d-%H%M%S")
    for i in range(1, 1000):
        path = parent / (f"{name}-{stamp}" + (f"-{i}" if i > 1 else ""))
        try:
            path.mkdir(parents=True)
            return path
        except FileExistsError:
            continue
        except OSError as e:
            raise NprlError(f"cannot create {str(path)!r}: {e.strerror}") from None
    raise NprlError(f"cannot find a free directory name under {str(parent)!r}")


def compare(agents: list[str], env_id: str, seeds: list[int], steps: int | None = None,
            workers: int | None = None, overrides: dict[str, Any] | None = None,
            logdir: str | Path = "runs", progress: bool | None = None,
            backend: str = "local", address: str | None = None) -> CompareResult:
    """Train every agent with every seed on ``env_id`` and summarise; see module doc.
    ``backend``: "local" (a process pool, the default) or "ray" (Ray tasks on a local Ray,
    or on the cluster at ``address``; see ``nprl.ray_pool``)."""
    overrides = dict(overrides or {})
    configs = validate(agents, env_id, seeds, steps, overrides, workers, backend, address)
    with connect(backend, workers, address):  # Ray missing or unreachable: nothing written
        out_dir = new_dir(Path(logdir) / "compare", env_id)
        jobs = make_jobs(configs, seeds, out_dir, steps, overrides)
        manifest = {"agents": agents, "env_id": env_id, "seeds": seeds, "steps": steps,
                    "overrides": overrides}
        return execute(jobs, out_dir, workers, progress, manifest, backend, address)


def connect(backend: str, workers: int | None, address: str | None
            ) -> AbstractContextManager[Any]:
    """For the whole comparison: Ray connected (``nprl.ray_pool.session``), or nothing."""
    if backend != "ray":
        return nullcontext()
    from nprl.ray_pool import session

    return session(workers or default_workers(), address)


def execute(jobs: list[Job], out_dir: Path, workers: int | None = None,
            progress: bool | None = None, manifest: dict[str, Any] | None = None,
            backend: str = "local", address: str | None = None) -> CompareResult:
    """Run ``jobs`` (their run directories under ``out_dir``) on ``backend``, record every
    outcome, then write the summary and curves of whatever finished. Shared with
    ``scripts/``."""
    from nprl.board import Board

    workers = workers or default_workers()
    record = {**(manifest or {}), "command": " ".join(sys.argv), "workers": workers,
              "backend": backend, "address": address,
              "started": datetime.now().isoformat(timespec="seconds"), "machine": machine()}
    (out_dir / "compare.json").write_text(json.dumps(record, indent=2) + "\n")
    board = Board({job.key: job.total_steps for job in jobs}, progress)
    try:
        if backend == "ray":
            from nprl import ray_pool

            outcomes, interrupted = ray_pool.run_jobs(jobs, workers, board, address)
        else:
            outcomes, interrupted = run_jobs(jobs, workers, board)
    finally:
        board.close()
    for job in jobs:
        write_outcome(job, outcomes[job.key])
    summary, figures = summarise_dirs([out_dir], out_dir)
    return CompareResult(out_dir, outcomes, summary, figures, interrupted)


def write_outcome(job: Job, outcome: Outcome) -> None:
    """``outcome.json`` (and ``error.txt`` with the traceback) in the job's run directory,
    so a later ``nprl plot`` knows which runs failed and why."""
    job.run_dir.mkdir(parents=True, exist_ok=True)
    data = {"status": outcome.status, "error": outcome.error, "agent": job.agent,
            "env_id": job.env_id, "seed": job.seed, "threshold": job.threshold}
    (job.run_dir / "outcome.json").write_text(json.dumps(data, indent=2) + "\n")
    if outcome.traceback:
        (job.run_dir / "error.txt").write_text(outcome.traceback)


def summarise_dirs(dirs: list[Path], out_dir: Path) -> tuple[list[AgentSummary], list[Path]]:
    """Read every run under ``dirs``; write summary.md/.csv, runs.csv and curves into
    ``out_dir``. This is all of ``nprl plot``."""
    from nprl.plot import plot_runs
    from nprl.rundata import load_runs
    from nprl.summary import write_summary

    runs = load_runs(dirs)
    envs = sorted({r.env_id for r in runs})
    summary = write_summary(runs, out_dir, f"Comparison on {', '.join(envs)}")
    return summary, plot_runs(runs, out_dir)


def machine() -> dict[str, Any]:
    """What the numbers were measured on: CPU model, usable cores, OS, Python, torch, and
    the load average when it started (wall-clock numbers on a busy machine are slower)."""
    import torch

    cpu = platform.processor() or platform.machine()
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    try:
        load = " ".join(f"{x:.1f}" for x in os.getloadavg())
    except OSError:
        load = None
    return {"cpu": cpu, "cores": default_workers(), "os": platform.platform(),
            "python": platform.python_version(), "torch": torch.__version__,
            "load_average": load}
