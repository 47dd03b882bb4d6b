"""`nprl compare` / `nprl plot`: statistics against hand-made cases, one end-to-end
comparison (with an injected crash), bad input, and Ctrl-C (slow)."""

from __future__ import annotations

import csv
import math
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

from nprl.cli import main
from nprl.rundata import RunRecord
from nprl.stats import (
    bootstrap_band,
    bootstrap_ci,
    interpolate,
    mean_std,
    median_ratio_ci,
    spread,
    time_to_threshold,
)
from nprl.summary import solve_point, summarise

ROOT = Path(__file__).resolve().parents[1]


# -- statistics ---------------------------------------------------------------------------

def test_bootstrap_ci_of_identical_values_has_zero_width():
    assert bootstrap_ci([475.0] * 5) == (475.0, 475.0)


def test_bootstrap_ci_of_two_values_spans_both():
    # Resampled means of {0, 1}: 0 w.p. 1/4, 0.5 w.p. 1/2, 1 w.p. 1/4, so the 2.5% and
    # 97.5% percentiles are the extremes themselves.
    assert bootstrap_ci([0.0, 1.0]) == (0.0, 1.0)


def test_bootstrap_ci_is_reproducible_and_inside_the_data():
    values = [100.0, 200.0, 300.0, 400.0, 500.0]
    low, high = bootstrap_ci(values)
    assert bootstrap_ci(values) == (low, high)  # fixed RNG: same runs, same summary
    assert 100.0 < low < 300.0 < high < 500.0
    assert math.isclose(300.0 - low, high - 300.0, rel_tol=0.1)  # symmetric data


def test_bootstrap_ci_narrows_with_lower_confidence():
    values = [1.0, 5.0, 2.0, 8.0, 3.0]
    wide, narrow = bootstrap_ci(values, 0.95), bootstrap_ci(values, 0.5)
    assert wide[0] < narrow[0] < narrow[1] < wide[1]


def test_median_ratio_ci_resamples_seeds_in_pairs():
    # Seeds of very different difficulty, the second column exactly twice the first: a
    # paired resample always sees a ratio of 2; resampling the columns apart would not.
    fast = [0.3, 0.5, 0.9, 1.4, 2.2, 3.5, 5.0, 8.0]
    slow = [2 * x for x in fast]
    assert median_ratio_ci(slow, fast) == (2.0, 2.0, 2.0)
    rng = np.random.default_rng(1)
    noisy = [x * 2 * float(rng.uniform(0.8, 1.25)) for x in fast]
    point, low, high = median_ratio_ci(noisy, fast)
    assert point == pytest.approx(np.median(noisy) / np.median(fast))
    assert 1.6 <= low < point < high <= 2.5  # inside the per-seed ratios' range
    assert median_ratio_ci(noisy, fast) == (point, low, high)  # fixed RNG


def test_median_ratio_ci_takes_unsolved_seeds_and_rejects_unpaired_lists():
    point, low, high = median_ratio_ci([1.0, 2.0, math.inf], [1.0, 1.0, 1.0])
    assert point == 2.0 and low == 1.0 and high == math.inf
    with pytest.raises(ValueError, match="3 and 2"):
        median_ratio_ci([1.0, 2.0, 3.0], [1.0, 2.0])


def test_bootstrap_ci_of_nothing_is_nan():
    assert all(math.isnan(x) for x in bootstrap_ci([]))


def test_time_to_threshold_is_the_first_evaluation_at_or_above_it():
    steps, returns = [1000, 2000, 3000, 4000], [10.0, 475.0, 300.0, 500.0]
    assert time_to_threshold(steps, returns, 475.0) == 2000.0  # ≥, and the first one
    assert time_to_threshold(steps, returns, 490.0) == 4000.0  # a dip does not count


def test_time_to_threshold_never_reached_or_no_threshold_is_none():
    assert time_to_threshold([1, 2, 3], [-500.0, -300.0, -201.0], -200.0) is None
    assert time_to_threshold([1, 2], [1.0, 2.0], None) is None
    assert time_to_threshold([], [], 0.0) is None


def test_interpolate_is_linear_inside_nan_before_and_held_after():
    out = interpolate([10, 20], [1.0, 3.0], np.array([0, 10, 15, 20, 30]))
    assert np.isnan(out[0])
    assert out[1:].tolist() == [1.0, 2.0, 3.0, 3.0]


def test_bootstrap_band_of_identical_curves_is_the_curve():
    curve = np.array([[1.0, 2.0, 3.0]] * 4)
    mean, low, high = bootstrap_band(curve)
    assert mean.tolist() == low.tolist() == high.tolist() == [1.0, 2.0, 3.0]


def test_bootstrap_band_averages_available_seeds_and_keeps_empty_columns_nan():
    mean, low, high = bootstrap_band(np.array([[np.nan, 1.0], [np.nan, 3.0]]))
    assert np.isnan(mean[0]) and np.isnan(low[0]) and np.isnan(high[0])
    assert (mean[1], low[1], high[1]) == (2.0, 1.0, 3.0)


def test_spread_and_mean_std():
    assert spread([3.0, 1.0, 2.0, None]) == (2.0, 1.0, 3.0)
    assert spread([]) == (None, None, None)
    assert mean_std([2.0, 4.0]) == (3.0, math.sqrt(2.0))  # sample std (ddof=1)
    assert mean_std([7.0]) == (7.0, 0.0)


def _run(seed: int, evals: list[tuple[int, float, float]], status: str = "ok") -> RunRecord:
    return RunRecord(f"trpo/seed{seed}", "trpo", "CartPole-v1", seed, 475.0, status,
                     None if status == "ok" else "boom", evals, evals[-1][0] if evals else None,
                     evals[-1][1] if evals else None, "trpo")


def test_summary_of_hand_made_runs():
    runs = [_run(0, [(1000, 2.0, 100.0), (2000, 4.0, 480.0)]),
            _run(1, [(1000, 1.0, 200.0), (2000, 2.0, 300.0), (3000, 3.0, 500.0)]),
            _run(2, [(1000, 1.0, 50.0), (2000, 2.0, 60.0)]),
            _run(3, [(1000, 1.0, 9999.0)], status="failed")]
    assert solve_point(runs[1]) == (3000.0, 3.0)
    assert solve_point(runs[2]) == (None, None)
    (s,) = summarise(runs)
    assert (s.runs, s.ok, s.failed, s.solved) == (4, 3, 1, 2)  # failed: counted, not averaged
    assert s.final_mean == pytest.approx((480 + 500 + 60) / 3)
    assert (s.steps_to_threshold_median, s.steps_to_threshold_min,
            s.steps_to_threshold_max) == (2500.0, 2000.0, 3000.0)
    assert (s.seconds_to_threshold_min, s.seconds_to_threshold_max) == (3.0, 4.0)
    assert s.steps_per_second == pytest.approx((500 + 1000 + 1000) / 3)


# -- end to end ---------------------------------------------------------------------------

TINY = ["--steps", "512", "--set", "n_envs=2", "--set", "n_steps=64", "--set", "eval_every=256"]


def _csv(path: Path) -> list[dict[str, str]]:
    with path.open() as f:
        return list(csv.DictReader(f))


def test_compare_then_plot_end_to_end(tmp_path, monkeypatch, capsys):
    """One comparison (2 agents × 2 seeds, 2 workers; trpo/seed1 crashes mid-run through
    the fault-injection variable), then `nprl plot` on its directory. One test, because
    worker processes cost seconds of imports each."""
    import matplotlib.image

    monkeypatch.setenv("NPRL_COMPARE_FAULT", "trpo/seed1")
    code = main(["compare", "ppo", "trpo", "--env", "CartPole-v1", "--seed-list", "0,1",
                 "--workers", "2", "--logdir", str(tmp_path), *TINY])
    assert code == 1, "a failed run makes the exit code 1, the command itself finishes"
    (out,) = (tmp_path / "compare").iterdir()
    assert out.name.startswith("CartPole-v1-")
    for agent in ("ppo", "trpo"):
        for seed in (0, 1):
            run = out / agent / f"seed{seed}"
            assert any(p.name.startswith("events.out.tfevents") for p in run.iterdir()), run
            assert (run / "outcome.json").is_file()

    summary = _csv(out / "summary.csv")
    assert [r["agent"] for r in summary] == ["ppo", "trpo"]
    assert {"final_mean", "final_std", "final_ci_low", "final_ci_high", "solved",
            "steps_to_threshold_median", "seconds_to_threshold_median",
            "steps_per_second"} <= set(summary[0])
    assert [(r["runs"], r["ok"], r["failed"]) for r in summary] == [("2", "2", "0"),
                                                                      ("2", "1", "1")]
    assert all(r["threshold"] == "475" and float(r["steps_per_second"]) > 0 for r in summary)

    runs = {r["run"]: r for r in _csv(out / "runs.csv")}
    assert sorted(runs) == ["ppo/seed0", "ppo/seed1", "trpo/seed0", "trpo/seed1"]
    assert runs["trpo/seed1"]["status"] == "failed"
    assert "injected fault" in runs["trpo/seed1"]["error"]
    assert all(runs[k]["status"] == "ok" and runs[k]["steps"] == "512"
               for k in ("ppo/seed0", "ppo/seed1", "trpo/seed0"))
    assert "injected fault" in (out / "summary.md").read_text()
    assert "Traceback" in (out / "trpo" / "seed1" / "error.txt").read_text()

    png = out / "curves.png"
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    image = matplotlib.image.imread(png)
    assert image.ndim == 3 and image.shape[0] > 100 and image.shape[1] > 100

    capsys.readouterr()
    again = tmp_path / "again"
    assert main(["plot", str(out), "--out", str(again)]) == 0
    assert (again / "summary.csv").read_text() == (out / "summary.csv").read_text()
    assert (again / "runs.csv").read_text() == (out / "runs.csv").read_text()
    assert (again / "curves.png").stat().st_size > 0


def _fake_runs(root: Path, finals: tuple[float, ...] = (10.0, 30.0)) -> None:
    """``root/mine/seed<k>`` with only ``time/elapsed`` and ``eval/mean_reward`` logged."""
    from torch.utils.tensorboard import SummaryWriter

    for seed, final in enumerate(finals):
        with SummaryWriter(str(root / "mine" / f"seed{seed}")) as w:
            for step, (elapsed, value) in enumerate([(1.0, 0.0), (2.0, final)], start=1):
                w.add_scalar("time/elapsed", elapsed, step * 100)
                w.add_scalar("eval/mean_reward", value, step * 100)


def test_plot_infers_agent_and_seed_from_the_layout(tmp_path):
    """Event files with no config text: agent and seed come from `<agent>/seed<k>`."""
    _fake_runs(tmp_path)
    assert main(["plot", str(tmp_path)]) == 0
    (row,) = _csv(tmp_path / "summary.csv")
    assert (row["agent"], row["ok"], row["final_mean"], row["threshold"]) == ("mine", "2",
                                                                             "20", "")
    assert [r["seed"] for r in _csv(tmp_path / "runs.csv")] == ["0", "1"]
    assert (tmp_path / "curves.png").stat().st_size > 0


def test_plot_keeps_the_same_agent_from_two_days_apart(tmp_path):
    _fake_runs(tmp_path / "monday", (10.0, 30.0))
    _fake_runs(tmp_path / "tuesday", (50.0, 70.0))
    out = tmp_path / "both"
    assert main(["plot", str(tmp_path / "monday"), str(tmp_path / "tuesday"), "--out",
                 str(out)]) == 0
    rows = _csv(out / "summary.csv")
    assert [(r["agent"], r["final_mean"]) for r in rows] == [("mine@monday", "20"),
                                                             ("mine@tuesday", "60")]


# -- bad input ----------------------------------------------------------------------------

C = ["compare", "ppo", "--env", "CartPole-v1"]
BAD = [
    (["compare", "ppx", "--env", "CartPole-v1"], "unknown agent 'ppx' (did you mean 'ppo'?)"),
    (["compare", "ppo", "trpx", "--env", "CartPole-v1"], "unknown agent 'trpx'"),
    (["compare", "ppo", "--env", "CartPol-v1"], "unknown env id 'CartPol-v1'"),
    ([*C, "--seeds", "0"], "--seeds 0: expected a positive integer"),
    ([*C, "--seed-list", "0,x"], "--seed-list '0,x': expected integers"),
    ([*C, "--seed-list", "1,1"], "expected distinct integers"),
    ([*C, "--workers", "0"], "--workers 0: expected a positive integer"),
    ([*C, "--steps", "0"], "--steps 0: expected a positive integer"),
    ([*C, "--set", "max_kll=1"], "unknown config key 'max_kll'"),
    ([*C, "--address", "auto"], "--address auto: only with --backend ray"),
]


@pytest.mark.parametrize("argv,message", BAD, ids=[str(i) for i in range(len(BAD))])
def test_bad_compare_input_is_one_line_exit_2_and_creates_nothing(argv, message, tmp_path,
                                                                   capsys):
    logdir = tmp_path / "runs"
    assert main([*argv, "--logdir", str(logdir)]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and message in err, err
    assert not logdir.exists()


def test_ray_backend_without_ray_is_one_line_exit_2_and_creates_nothing(tmp_path, capsys,
                                                                         monkeypatch):
    monkeypatch.setitem(sys.modules, "ray", None)  # `import ray` fails, installed or not
    logdir = tmp_path / "runs"
    assert main([*C, "--backend", "ray", "--logdir", str(logdir)]) == 2
    err = capsys.readouterr().err
    assert err == "nprl: error: --backend ray needs Ray: pip install 'nprl[ray]'\n"
    assert not logdir.exists()


def test_plot_of_a_missing_directory_is_exit_2(tmp_path, capsys):
    assert main(["plot", str(tmp_path / "nothing")]) == 2
    assert "is not a directory" in capsys.readouterr().err


def test_plot_of_an_empty_directory_or_several_without_out_is_exit_2(tmp_path, capsys):
    assert main(["plot", str(tmp_path)]) == 2
    assert "no runs" in capsys.readouterr().err
    assert main(["plot", str(tmp_path), str(tmp_path)]) == 2
    assert "--out" in capsys.readouterr().err
    assert list(tmp_path.iterdir()) == []


# -- Ctrl-C -------------------------------------------------------------------------------

@pytest.mark.slow
def test_ctrl_c_stops_workers_and_still_writes_the_summary(tmp_path):
    """SIGINT to the whole process group, as a terminal's Ctrl-C: exit 130, every worker
    gone, the unfinished runs listed as interrupted in the summary."""
    proc = subprocess.Popen(
        [sys.executable, "-m", "nprl", "compare", "ppo", "--env", "CartPole-v1", "--seeds", "2",
         "--workers", "2", "--steps", "10000000", "--logdir", str(tmp_path)],
        cwd=ROOT, start_new_session=True, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
        text=True)
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:  # wait until both runs are training
        if len(list(tmp_path.glob("compare/*/ppo/seed*/events.out.tfevents.*"))) == 2:
            break
        time.sleep(0.2)
    children = subprocess.run(["pgrep", "-P", str(proc.pid)], capture_output=True,
                              text=True).stdout.split()
    os.killpg(proc.pid, signal.SIGINT)
    _, err = proc.communicate(timeout=60)
    assert proc.returncode == 130, err
    assert "Traceback" not in err
    (out,) = (tmp_path / "compare").iterdir()
    runs = _csv(out / "runs.csv")
    assert [(r["status"], r["error"]) for r in runs] == [("interrupted", "stopped by Ctrl-C")] * 2
    assert _csv(out / "summary.csv")[0]["interrupted"] == "2"
    time.sleep(0.5)
    assert not [pid for pid in children if Path(f"/proc/{pid}").exists()
                and "zombie" not in Path(f"/proc/{pid}/status").read_text().lower()]
