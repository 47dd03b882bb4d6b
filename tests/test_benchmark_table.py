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
