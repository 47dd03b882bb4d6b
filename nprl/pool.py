"""Run many jobs in a process pool, surviving crashed runs, dead workers and Ctrl-C.

- An exception inside a run comes back as a "failed" outcome (``nprl.workers.run_job``).
- A worker process that dies (killed, out of memory, segfault) breaks the whole
  ``ProcessPoolExecutor``: every job it held is put in a fresh pool again, once; a job
  caught in two broken pools is "failed" with "worker process died".
- Ctrl-C: workers ignore SIGINT, the parent terminates them and marks every unfinished
  job "interrupted"; what finished is kept, and the caller still writes its summary.

``nprl.ray_pool`` (``--backend ray``) keeps the same contract with the helpers below.
"""

from __future__ import annotations

import multiprocessing as mp
import os
import queue as queue_module
import shutil
from collections import Counter
from concurrent.futures import FIRST_COMPLETED, ProcessPoolExecutor, wait
from concurrent.futures.process import BrokenProcessPool
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

from nprl.board import Board
from nprl.workers import THREAD_ENV, Job, init_worker, run_job

MAX_ATTEMPTS = 2


@dataclass
class Outcome:
    status: str  # "ok" | "failed" | "interrupted"
    error: str | None = None
    traceback: str | None = None


def default_workers() -> int:
    """One worker per core this process may use."""
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # macOS, Windows
        return os.cpu_count() or 1


def run_jobs(jobs: list[Job], workers: int, board: Board) -> tuple[dict[str, Outcome], bool]:
    """Run ``jobs`` on ``workers`` processes; returns ({key: outcome}, interrupted)."""
    ctx = mp.get_context("spawn")  # no fork: torch and tqdm threads do not survive a fork
    progress = ctx.Queue()
    outcomes: dict[str, Outcome] = {}
    attempts: Counter[str] = Counter()
    pending, pool, started = list(jobs), None, set()
    try:
        with _thread_env():
            while pending:
                pool = ProcessPoolExecutor(min(workers, len(pending)), mp_context=ctx,
                                           initializer=init_worker, initargs=(progress,))
                futures = {pool.submit(run_job, job): job for job in pending}
                pending = []
                not_done = set(futures)
                while not_done:
                    done, not_done = wait(not_done, timeout=0.2, return_when=FIRST_COMPLETED)
                    drain(progress, board, started)
                    for future in done:
                        job = futures[future]
                        try:
                            outcome: Outcome | None = Outcome(*future.result())
                        except BrokenProcessPool:
                            outcome = retry_or_fail(job, attempts)
                        if outcome is None:
                            pending.append(job)
                        else:
                            finish(job, outcome, outcomes, board)
                pool.shutdown(wait=True)
                pool = None
    except KeyboardInterrupt:
        _terminate(pool)
        mark_interrupted(jobs, outcomes, started)
        return outcomes, True
    finally:
        progress.close()
        progress.cancel_join_thread()
    return outcomes, False


def retry_or_fail(job: Job, attempts: Counter[str]) -> Outcome | None:
    """The worker running ``job`` died: None = run it again from a cleared run directory
    (the first time), else its "failed" outcome."""
    attempts[job.key] += 1
    if attempts[job.key] < MAX_ATTEMPTS:
        shutil.rmtree(job.run_dir, ignore_errors=True)
        return None
    return Outcome("failed", "worker process died (killed, out of memory or crashed) in "
                   "two attempts")


def finish(job: Job, outcome: Outcome, outcomes: dict[str, Outcome], board: Board) -> None:
    """Record ``job``'s final outcome and show it."""
    outcomes[job.key] = outcome
    board.finish(job.key, outcome.status, outcome.error)


def mark_interrupted(jobs: list[Job], outcomes: dict[str, Outcome], started: set[str]) -> None:
    """After Ctrl-C: every job without an outcome is "interrupted" (running or queued)."""
    for job in jobs:
        if job.key not in outcomes:
            outcomes[job.key] = Outcome("interrupted", "stopped by Ctrl-C" if job.key in
                                        started else "not started (Ctrl-C)")


def drain(progress: Any, board: Board, started: set[str]) -> None:
    """Forward every queued worker message to the display; note which jobs started.
    ``progress`` is any queue whose ``get_nowait`` raises ``queue.Empty`` when empty."""
    while True:
        try:
            msg = progress.get_nowait()
        except (queue_module.Empty, OSError, ValueError):
            return
        if msg[0] == "start":
            started.add(msg[1])
            board.start(msg[1], msg[2], msg[3])
        elif msg[0] == "progress":
            board.update(msg[1], msg[2], msg[3])


def _terminate(pool: ProcessPoolExecutor | None) -> None:
    """Stop every worker now (they ignore SIGINT) and drop queued jobs."""
    if pool is None:
        return
    # ProcessPoolExecutor has no public "kill the workers": its process table is the
    # only handle on them.
    processes = list((getattr(pool, "_processes", None) or {}).values())
    for process in processes:
        process.terminate()
    for process in processes:
        process.join(timeout=5)
    pool.shutdown(wait=False, cancel_futures=True)


@contextmanager
def _thread_env():
    """Worker processes inherit one-thread settings for OpenMP/MKL/OpenBLAS, which must be
    in the environment before torch is imported there; the parent's are restored after."""
    saved = {k: os.environ.get(k) for k in THREAD_ENV}
    os.environ.update(THREAD_ENV)
    try:
        yield
    finally:
        for key, value in saved.items():
            if value is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = value
