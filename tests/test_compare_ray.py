"""`nprl compare --backend ray`: the same directory, outcomes and summary as the local
process pool; a crashed run, a dead worker and a bad address. Skipped without Ray
(an optional extra: ``pip install 'nprl[ray]'``)."""

from __future__ import annotations

import csv
import os
import re
import socket
from pathlib import Path

import pytest

ray = pytest.importorskip("ray", reason="Ray is an optional extra: pip install 'nprl[ray]'")

from nprl.board import Board  # noqa: E402
from nprl.cli import main  # noqa: E402
from nprl.ray_pool import run_jobs  # noqa: E402
from nprl.workers import Job, Reporter  # noqa: E402

pytestmark = pytest.mark.slow  # each test starts a local Ray (~3-4 s on 2 cores)

TINY = ["--steps", "512", "--set", "n_envs=2", "--set", "n_steps=64", "--set", "eval_every=256"]
TIMING = re.compile(r"seconds|steps_per_second")  # wall-clock columns differ between runs


def _csv(path: Path) -> list[dict[str, str]]:
    with path.open() as f:
        return list(csv.DictReader(f))


def _files(out: Path) -> list[str]:
    """Relative paths under a comparison, event-file names (host, pid, time) folded."""
    return sorted(re.sub(r"events\.out\.tfevents\..*", "events", str(p.relative_to(out)))
                  for p in out.rglob("*") if p.is_file())


def _untimed(rows: list[dict[str, str]]) -> list[dict[str, str]]:
    return [{k: v for k, v in row.items() if not TIMING.search(k)} for row in rows]


def _compare(tmp_path: Path, backend: str) -> Path:
    logdir = tmp_path / backend
    code = main(["compare", "trpo", "ppo", "npg", "--env", "CartPole-v1", "--seeds", "1",
                 "--workers", "2", "--backend", backend, "--logdir", str(logdir), *TINY])
    assert code == 1, "the injected crash makes the exit code 1"
    (out,) = (logdir / "compare").iterdir()
    return out


def test_ray_backend_writes_what_the_local_pool_writes(tmp_path, monkeypatch):
    """Three tiny runs (npg/seed0 crashes mid-run) on each backend: same files, same
    summary and per-run rows, the same final returns (CPU runs are deterministic)."""
    monkeypatch.setenv("NPRL_COMPARE_FAULT", "npg/seed0")
    local, remote = _compare(tmp_path, "local"), _compare(tmp_path, "ray")
    assert not ray.is_initialized(), "the Ray it started is shut down"

    assert _files(remote) == _files(local)
    assert {"summary.md", "summary.csv", "runs.csv", "curves.png", "compare.json",
            "ppo/seed0/outcome.json", "npg/seed0/error.txt"} <= set(_files(remote))
    summary = _csv(remote / "summary.csv")
    assert list(summary[0]) == list(_csv(local / "summary.csv")[0])
    assert _untimed(summary) == _untimed(_csv(local / "summary.csv"))
    runs = {r["run"]: r for r in _csv(remote / "runs.csv")}
    assert _untimed(runs.values()) == _untimed(_csv(local / "runs.csv"))
    assert [(r["agent"], r["ok"], r["failed"]) for r in summary] == [
        ("npg", "0", "1"), ("ppo", "1", "0"), ("trpo", "1", "0")]
    assert runs["npg/seed0"]["status"] == "failed"
    assert "injected fault" in runs["npg/seed0"]["error"]
    assert all(runs[k]["status"] == "ok" and runs[k]["steps"] == "512"
               and float(runs[k]["final_return"]) > 0 for k in ("ppo/seed0", "trpo/seed0"))
    assert "Traceback" in (remote / "npg" / "seed0" / "error.txt").read_text()


def _dies(job: Job, report: Reporter) -> None:
    """A run whose worker process dies (killed, out of memory) on every attempt."""
    job.run_dir.mkdir(parents=True, exist_ok=True)
    (job.run_dir / f"attempt-{os.getpid()}").touch()
    os._exit(1)


def _dies_once(job: Job, report: Reporter) -> None:
    """Dies on the first attempt; the second finds a cleared directory and succeeds."""
    marker = job.run_dir.parent / f"{job.run_dir.name}.died"
    if not marker.exists():
        marker.parent.mkdir(parents=True, exist_ok=True)
        marker.touch()
        os._exit(1)
    assert not job.run_dir.exists(), "a retry starts from a cleared run directory"
    report(1, None, force=True)


def test_dead_worker_is_retried_once_then_failed(tmp_path, monkeypatch):
    # The runners above live in this module: Ray workers find it through PYTHONPATH,
    # which they inherit from the process that starts Ray.
    here = str(Path(__file__).resolve().parent)
    monkeypatch.setenv("PYTHONPATH", os.pathsep.join(filter(None, [here, os.environ.get(
        "PYTHONPATH")])))
    jobs = [Job("dies/seed0", "dies", "CartPole-v1", 0, str(tmp_path), runner=_dies),
            Job("dies_once/seed0", "dies_once", "CartPole-v1", 0, str(tmp_path),
                runner=_dies_once)]
    board = Board({job.key: 1 for job in jobs}, enabled=False)
    outcomes, interrupted = run_jobs(jobs, 2, board)
    assert not interrupted and not ray.is_initialized()
    assert outcomes["dies_once/seed0"].status == "ok", outcomes
    assert outcomes["dies/seed0"].status == "failed"
    assert "worker process died" in outcomes["dies/seed0"].error
    assert len(list((tmp_path / "dies" / "seed0").glob("attempt-*"))) == 1  # cleared once
    assert board.done == 2 and board.failed == 1


def test_unreachable_address_is_one_line_exit_2_and_creates_nothing(tmp_path, capsys):
    with socket.socket() as s:  # a loopback port nothing listens at
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    logdir = tmp_path / "runs"
    assert main(["compare", "ppo", "--env", "CartPole-v1", "--backend", "ray", "--address",
                 f"127.0.0.1:{port}", "--logdir", str(logdir)]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and f"--address 127.0.0.1:{port}: cannot connect" in err, err
    assert not logdir.exists() and not ray.is_initialized()
