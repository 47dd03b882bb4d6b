"""Read finished (or failed) runs back from their directories, for summaries and plots.

A run directory holds TensorBoard event files (``eval/mean_reward``, ``time/elapsed``, the
``config`` text) and, when ``nprl compare`` ran it, ``outcome.json`` (status and error).
Everything the summary needs comes from there, so ``nprl plot`` on old directories gives
the same numbers as the ``nprl compare`` that wrote them.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from nprl.errors import NprlError

OUTCOME = "outcome.json"
_EVENTS = "events.out.tfevents."
_SEED_DIR = re.compile(r"^seed(\d+)$")


@dataclass
class RunRecord:
    """One run as read from disk.

    label: its path under the directory it was found in (``ppo/seed0``); status: "ok",
    "failed" or "interrupted"; evals: (env steps, seconds since start, deterministic
    mean return) of every evaluation, where seconds is ``time/elapsed`` logged at that
    step (wall-clock from the start of training up to that update, earlier evaluations
    included); steps / seconds: the last update's env steps and ``time/elapsed``.
    """

    label: str
    agent: str
    env_id: str
    seed: int | None
    threshold: float | None = None
    status: str = "ok"
    error: str | None = None
    evals: list[tuple[int, float, float]] = field(default_factory=list)
    steps: int | None = None
    seconds: float | None = None
    group: str = ""  # what the summary groups by: the agent, or agent@dir when ambiguous

    @property
    def final_return(self) -> float | None:
        return self.evals[-1][2] if self.evals else None

    @property
    def steps_per_second(self) -> float | None:
        if self.steps and self.seconds:
            return self.steps / self.seconds
        return None


def find_run_dirs(root: Path) -> list[Path]:
    """Directories under ``root`` (itself included) that hold a run: TensorBoard event
    files or an ``outcome.json``. Checkpoint folders are skipped."""
    if not root.is_dir():
        raise NprlError(f"{str(root)!r} is not a directory")
    found = set()
    for path in root.rglob("*"):
        if "checkpoints" in path.relative_to(root).parts:
            continue
        if path.is_file() and (path.name.startswith(_EVENTS) or path.name == OUTCOME):
            found.add(path.parent)
    return sorted(found)


def load_run(run_dir: Path, root: Path) -> RunRecord:
    """Read one run directory; ``root`` only names it (``label`` is relative to it)."""
    label = run_dir.relative_to(root).as_posix() if run_dir != root else run_dir.name
    outcome = _read_json(run_dir / OUTCOME)
    config = read_config(run_dir) or {}
    agent = config.get("agent_name") or outcome.get("agent") or _layout_agent(run_dir)
    env_id = config.get("env_id") or outcome.get("env_id") or "unknown-env"
    seed = config.get("seed", outcome.get("seed", _layout_seed(run_dir)))
    threshold = config.get("run", {}).get("solved_threshold", outcome.get("threshold"))
    rec = RunRecord(label, agent, env_id, None if seed is None else int(seed), threshold,
                    outcome.get("status", "ok"), outcome.get("error"), group=agent)
    scalars = _read_scalars(run_dir)
    evals = scalars.get("eval/mean_reward", [])
    elapsed = scalars.get("time/elapsed", [])
    if elapsed:
        rec.steps, rec.seconds = int(elapsed[-1][0]), float(elapsed[-1][1])
    rec.evals = [(int(s), _seconds_at(s, elapsed), float(v)) for s, v in evals]
    if rec.status == "ok" and not rec.evals:
        rec.status, rec.error = "failed", rec.error or "no evaluation was logged"
    return rec


def load_runs(roots: list[Path]) -> list[RunRecord]:
    """Every run under each of ``roots``, in directory order.

    When the same agent on the same task appears under two roots (runs from different
    days), its groups are named ``agent@<root name>`` so their curves stay apart."""
    runs, source = [], {}
    for root in roots:
        dirs = find_run_dirs(root)
        if not dirs:
            raise NprlError(f"no runs (TensorBoard event files) under {str(root)!r}")
        for d in dirs:
            rec = load_run(d, root)
            runs.append(rec)
            source[id(rec)] = root.resolve().name
    roots_of: dict[tuple[str, str], set[str]] = {}
    for rec in runs:
        roots_of.setdefault((rec.env_id, rec.agent), set()).add(source[id(rec)])
    for rec in runs:
        if len(roots_of[(rec.env_id, rec.agent)]) > 1:
            rec.group = f"{rec.agent}@{source[id(rec)]}"
    return runs


def read_config(run_dir: Path) -> dict[str, Any] | None:
    """The run's config as logged by the trainer (the ``config`` text in TensorBoard),
    else from its newest checkpoint, else None."""
    text = _read_config_text(run_dir)
    if text is not None:
        try:
            return json.loads(text.strip().strip("`").strip())
        except json.JSONDecodeError:
            pass
    from nprl.checkpoint import list_checkpoints, load_checkpoint

    ckpts = list_checkpoints(run_dir / "checkpoints")
    if ckpts:
        try:
            return load_checkpoint(ckpts[-1]).get("config")
        except NprlError:
            return None
    return None


def _read_scalars(run_dir: Path) -> dict[str, list[tuple[int, float]]]:
    if not any(p.name.startswith(_EVENTS) for p in run_dir.iterdir()):
        return {}
    from nprl.tb import read_scalars

    return read_scalars(run_dir)


def _read_config_text(run_dir: Path) -> str | None:
    if not any(p.name.startswith(_EVENTS) for p in run_dir.iterdir()):
        return None
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    acc = EventAccumulator(str(run_dir), size_guidance={"tensors": 0, "scalars": 1})
    acc.Reload()
    if "config/text_summary" not in acc.Tags().get("tensors", []):
        return None
    events = acc.Tensors("config/text_summary")
    values = events[-1].tensor_proto.string_val if events else []
    return values[0].decode() if values else None


def _seconds_at(step: int, elapsed: list[tuple[int, float]]) -> float:
    """``time/elapsed`` at ``step`` (logged at every update, evaluations happen right
    after one); interpolated when that exact step is missing."""
    if not elapsed:
        return float("nan")
    steps = np.array([s for s, _ in elapsed], dtype=float)
    return float(np.interp(step, steps, [v for _, v in elapsed]))


def _read_json(path: Path) -> dict[str, Any]:
    try:
        return json.loads(path.read_text())
    except (OSError, json.JSONDecodeError):
        return {}


def _layout_agent(run_dir: Path) -> str:
    """``<agent>/seed<k>`` layout: the agent is the parent directory's name."""
    return run_dir.parent.name if _SEED_DIR.match(run_dir.name) else run_dir.name


def _layout_seed(run_dir: Path) -> int | None:
    m = _SEED_DIR.match(run_dir.name)
    return int(m.group(1)) if m else None
