"""What runs inside a ``nprl compare`` worker process: one job = one (agent, task, seed) run.

Workers are started with the "spawn" method, pinned to one thread each (torch and the
BLAS/OpenMP pools: with one small MLP per process, more threads only contend for the
cores the other workers use), and ignore Ctrl-C so that the parent alone decides how to
stop them. A job never raises: its exception comes back as a "failed" outcome with the
traceback, and the other runs carry on.
"""

from __future__ import annotations

import math
import os
import signal
import time
import traceback
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

THREAD_ENV = {"OMP_NUM_THREADS": "1", "MKL_NUM_THREADS": "1", "OPENBLAS_NUM_THREADS": "1"}
# Fault injection for tests and drills: a job whose key equals this variable raises inside
# its training loop after the first update, like a run that crashes half-way.
FAULT_ENV = "NPRL_COMPARE_FAULT"

_queue: Any = None  # the parent's progress queue, set by ``init_worker``


@dataclass(frozen=True)
class Job:
    """One run. ``key`` is its path under the comparison directory (``ppo/seed0``) and its
    name on the progress display; ``runner`` (a module-level function, so it pickles)
    trains it, ``train_nprl`` by default; ``total_steps`` and ``threshold`` come from the
    resolved config (progress display; ``outcome.json`` of a run that never logged)."""

    key: str
    agent: str
    env_id: str
    seed: int
    logdir: str
    steps: int | None = None
    overrides: dict[str, Any] = field(default_factory=dict)
    total_steps: int = 0
    threshold: float | None = None
    runner: Callable[[Job, Reporter], None] | None = None

    @property
    def run_dir(self) -> Path:
        return Path(self.logdir) / self.key


class Reporter:
    """Sends a job's progress to the parent (at most every 0.2 s), and raises the
    injected fault if ``FAULT_ENV`` names this job."""

    def __init__(self, key: str, queue: Any) -> None:
        self.key, self.queue, self.last = key, queue, 0.0
        self.fault = os.environ.get(FAULT_ENV) == key

    def __call__(self, steps: int, last_return: float | None = None, force: bool = False) -> None:
        if self.fault:
            raise RuntimeError(f"injected fault ({FAULT_ENV}={self.key})")
        now = time.monotonic()
        if self.queue is not None and (force or now - self.last > 0.2):
            self.last = now
            self.queue.put(("progress", self.key, steps, last_return))


def init_worker(queue: Any) -> None:
    """Process initializer: ignore Ctrl-C, one thread, remember the progress queue."""
    global _queue
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    os.environ.update(THREAD_ENV)
    import torch

    torch.set_num_threads(1)
    _queue = queue


def run_job(job: Job) -> tuple[str, str | None, str | None]:
    """Run ``job``; returns (status "ok" | "failed", one-line error, traceback)."""
    if _queue is not None:
        _queue.put(("start", job.key, os.getpid(), job.total_steps))
    report = Reporter(job.key, _queue)
    try:
        (job.runner or train_nprl)(job, report)
        return "ok", None, None
    except Exception as e:  # any failure of one run is data for the summary, not a crash
        message = " ".join(f"{type(e).__name__}: {e}".split())
        return "failed", message[:500], traceback.format_exc()


def train_nprl(job: Job, report: Reporter) -> None:
    """Train with ``nprl.train`` into ``<logdir>/<key>``, reporting every update.

    The progress hook is a ``Logger`` subclass installed in this worker process only (the
    trainer calls ``logger.progress`` once per update). A final evaluation that is NaN
    or missing is a failure: the numbers of such a run mean nothing.
    """
    import nprl.trainer as trainer_module
    from nprl.api import train
    from nprl.logger import Logger

    class ReportingLogger(Logger):
        def progress(self, steps: int, fps: float, last_return: float | None) -> None:
            super().progress(steps, fps, last_return)
            report(steps, last_return)

    overrides = {"torch_threads": 1, **job.overrides}
    saved = trainer_module.Logger
    trainer_module.Logger = ReportingLogger
    try:
        result = train(job.agent, job.env_id, seed=job.seed, steps=job.steps,
                       logdir=job.logdir, run_name=job.key, progress=False, force=True,
                       **overrides)
    finally:
        trainer_module.Logger = saved
    report(result.steps, None, force=True)
    final = result.final_eval
    if final is None or not math.isfinite(final.mean):
        raise FloatingPointError(f"final evaluation is {final.mean if final else 'missing'}")
