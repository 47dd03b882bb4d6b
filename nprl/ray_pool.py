"""Run ``nprl compare`` jobs as Ray tasks: the ``--backend ray`` of ``nprl.pool``.

Same contract as ``nprl.pool.run_jobs`` (same ``Outcome``s, run directories, progress
board), so ``nprl.compare.execute`` just picks a backend:

- one task per job, ``num_cpus=1``, torch/BLAS pinned to one thread (``THREAD_ENV`` in the
  task's ``runtime_env`` before torch is imported, and ``init_worker`` in the task);
- an exception in a run is a "failed" outcome (``run_job``); a task Ray reports as failed
  is "failed" with Ray's message; a worker that died (crash, kill, Ray's out-of-memory
  killer, lost node) is run once more from a cleared run directory, then "failed";
- progress: workers put start/progress messages on a ``ray.util.queue.Queue`` (a small
  actor), drained into the board while ``ray.wait`` collects finished tasks;
- Ctrl-C cancels every outstanding task (``ray.cancel(force=True)``) and marks it
  "interrupted"; what finished is returned, so the summary is still written.

Without ``address`` a private local Ray is started with ``num_cpus=workers`` (and shut
down after); with ``address`` an existing cluster is joined and its CPUs decide how many
runs go at once. Tasks write into ``job.logdir`` (made absolute here): on a remote
cluster it must be a path on a filesystem shared by every node, and nprl must be
installed there. Locally the workers import the same nprl as the caller (Ray starts them
in the caller's working directory with its environment, PYTHONPATH included).
"""

from __future__ import annotations

import logging
import os
import socket
from collections import Counter
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import replace
from pathlib import Path
from typing import Any

from nprl.board import Board
from nprl.errors import NprlError, first_line
from nprl.pool import Outcome, drain, finish, mark_interrupted, retry_or_fail
from nprl.workers import FAULT_ENV, THREAD_ENV, Job, init_worker, run_job

INSTALL_HINT = "--backend ray needs Ray: pip install 'nprl[ray]'"


def import_ray() -> Any:
    """The ``ray`` module, or NprlError with the install hint (Ray is an optional extra)."""
    try:
        import ray
    except ImportError:
        raise NprlError(INSTALL_HINT) from None
    return ray


@contextmanager
def session(workers: int, address: str | None = None) -> Iterator[Any]:
    """Ray connected for the duration: a local instance of ``workers`` CPUs, or the cluster
    at ``address``; a Ray already connected in this process is used as it is, and Ray is
    shut down at the end only if started here. Raises NprlError, before
    anything is written, when Ray is missing or the cluster cannot be reached."""
    ray = import_ray()
    if ray.is_initialized():
        yield ray
        return
    if address is not None:
        check_reachable(address)
    try:
        ray.init(address=address or "local", num_cpus=None if address else workers,
                 include_dashboard=False, logging_level=logging.ERROR)
    except (ConnectionError, RuntimeError, ValueError, TimeoutError) as e:
        first = first_line(e, limit=None)
        raise NprlError(f"--address {address}: cannot connect to Ray: {first}"
                        if address else f"cannot start a local Ray: {first}") from None
    try:
        yield ray
    finally:
        ray.shutdown()


def check_reachable(address: str, timeout: float = 5.0) -> None:
    """Fail fast on an address nothing listens at (``ray.init`` would retry for minutes).
    ``auto`` is left to Ray; ``ray://host[:port]`` is Ray Client (default port 10001),
    ``host[:port]`` a cluster's GCS (default port 6379)."""
    if address in ("auto", "local"):
        return
    target = address.removeprefix("ray://")
    host, sep, port = target.rpartition(":")
    if not sep:
        host, port = target, ""
    default_port = 10001 if address.startswith("ray://") else 6379
    try:
        with socket.create_connection((host, int(port or default_port)), timeout=timeout):
            pass
    except (OSError, ValueError) as e:
        reason = e.strerror if isinstance(e, OSError) and e.strerror else str(e) or "timed out"
        raise NprlError(f"--address {address}: cannot connect to Ray: {reason}") from None


def run_jobs(jobs: list[Job], workers: int, board: Board, address: str | None = None
             ) -> tuple[dict[str, Outcome], bool]:
    """Run ``jobs`` as Ray tasks; returns ({key: outcome}, interrupted). See module doc."""
    with session(workers, address) as ray:
        from ray import exceptions as rx
        from ray.util.queue import Queue

        # one thread before torch loads; the fault-injection drill reaches cluster workers too
        env = {**THREAD_ENV, **{k: os.environ[k] for k in (FAULT_ENV,) if k in os.environ}}
        remote = ray.remote(_task).options(num_cpus=1, max_retries=0,
                                           runtime_env={"env_vars": env})
        progress = Queue(actor_options={"num_cpus": 0})
        outcomes: dict[str, Outcome] = {}
        attempts: Counter[str] = Counter()
        started: set[str] = set()
        refs = {remote.remote(_absolute(job), progress): job for job in jobs}
        try:
            while refs:
                done, _ = ray.wait(list(refs), num_returns=1, timeout=0.2)
                drain(progress, board, started)
                for ref in done:
                    job = refs.pop(ref)
                    try:
                        outcome: Outcome | None = Outcome(*ray.get(ref))
                    except (rx.WorkerCrashedError, rx.OutOfMemoryError, rx.NodeDiedError):
                        outcome = retry_or_fail(job, attempts)
                    except rx.RayError as e:
                        outcome = Outcome("failed", _message(e, rx.RayTaskError), str(e))
                    if outcome is None:
                        refs[remote.remote(_absolute(job), progress)] = job
                    else:
                        finish(job, outcome, outcomes, board)
        except KeyboardInterrupt:
            for ref in refs:
                ray.cancel(ref, force=True)
            mark_interrupted(jobs, outcomes, started)
            return outcomes, True
        finally:
            progress.shutdown()
    return outcomes, False


def _task(job: Job, progress: Any) -> tuple[str, str | None, str | None]:
    """One job inside a Ray worker: one thread, Ctrl-C ignored (the driver cancels)."""
    init_worker(progress)
    return run_job(job)


def _absolute(job: Job) -> Job:
    """``job`` with its logdir absolute: Ray workers need not share the caller's cwd."""
    return replace(job, logdir=str(Path(job.logdir).resolve()))


def _message(error: Exception, task_error: type) -> str:
    """One line for the summary: the run's own exception when Ray wraps one."""
    cause = getattr(error, "cause", None) if isinstance(error, task_error) else None
    text = f"{type(cause).__name__}: {cause}" if cause is not None else str(error)
    lines = [line for line in text.splitlines() if line.strip()] or [type(error).__name__]
    return " ".join(lines[0].split())[:500]
