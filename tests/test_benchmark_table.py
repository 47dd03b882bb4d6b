"""scripts/benchmark.py's target table against a hand-made runs.csv."""

from __future__ import annotations

import importlib.util
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def _benchmark_module():
    spec = importlib.util.spec_from_file_location("benchmark", ROOT / "scripts" / "benchmark.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_target_table_medians_ticks_and_counts(tmp_path):
    csv = tmp_path / "runs.csv"
    rows = ["env,agent,seed,run,status,final_return,steps,seconds,steps_to_threshold,"
            "seconds_to_threshold,steps_per_second,error"]
    # Pendulum, target −200: TRPO finals −150, −190, −260 → median −190 (met), 2 of 3 seeds;
    # PPO −210, −230 and a failed run (left out) → median −220 (not met), 0 of 2.
    for agent, seed, status, final in [("trpo", 0, "ok", -150), ("trpo", 1, "ok", -260),
                                       ("trpo", 2, "ok", -190), ("ppo", 0, "ok", -210),
                                       ("ppo", 1, "ok", -230), ("ppo", 2, "failed", "")]:
        rows.append(f"Pendulum-v1,{agent},{seed},x,{status},{final},1,1,,,1,")
    csv.write_text("\n".join(rows) + "\n")
    table = _benchmark_module().target_table(csv, ["ppo", "trpo"]).splitlines()
    assert len(table) == 3  # header, rule, and only the task that has runs
    assert table[2].startswith("| Pendulum-v1, ≥ −200 @100k")
    assert table[2].endswith("| -220.0 (0/2) | -190.0 ✓ (2/3) |")


def test_zoo_comparison_budgets_and_verdicts(tmp_path):
    csv = tmp_path / "runs.csv"
    rows = ["env,agent,seed,run,status,final_return,steps,seconds,steps_to_threshold,"
            "seconds_to_threshold,steps_per_second,error"]
    # Pendulum (zoo: TRPO −174.6, PPO −172.2, both at 100k, gSDE): TRPO median −170
    # (at or above), PPO −180 (7.8 below). Acrobot PPO −80 at 100k vs −73.5 at 1M.
    for env, agent, final, steps in [("Pendulum-v1", "trpo", -170, 100352),
                                     ("Pendulum-v1", "trpo", -160, 100352),
                                     ("Pendulum-v1", "trpo", -190, 100352),
                                     ("Pendulum-v1", "ppo", -180, 100352),
                                     ("Acrobot-v1", "ppo", -80, 99840)]:
        rows.append(f"{env},{agent},0,x,ok,{final},{steps},1,,,1,")
    csv.write_text("\n".join(rows) + "\n")
    lines = _benchmark_module().zoo_comparison(csv)
    assert lines == [
        "- Acrobot-v1: PPO -80.0 at 100k vs the zoo's -73.5 at 1M (6.5 below it).",
        "- Pendulum-v1 (the zoo with gSDE, nprl without): TRPO -170.0 at 100k vs the zoo's "
        "-174.6 at 100k (at or above it); PPO -180.0 at 100k vs the zoo's -172.2 at 100k "
        "(7.8 below it).",
    ]
