"""The Python API: ``nprl.train("trpo", "CartPole-v1", seed=0, steps=100_000, max_kl=0.02)``."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from nprl.config import resolve
from nprl.trainer import Trainer, TrainResult


def train(agent: str, env_id: str, seed: int = 0, steps: int | None = None,
          logdir: str | Path = "runs", config_file: str | Path | None = None,
          run_name: str | None = None, progress: bool = False, force: bool = False,
          **overrides: Any) -> TrainResult:
    """Train ``agent`` ("trpo", "npg", "ppo", ...) on a gymnasium ``env_id``.

    Presets (``agents/<agent>.toml``, ``envs/<env_id>.toml``) give the defaults; any
    config key can be overridden as a keyword (``max_kl=0.02``, ``n_envs=16``). Returns a
    ``TrainResult`` with the run directory and the final deterministic evaluation.
    Raises ``nprl.errors.NprlError`` for bad input.
    """
    if steps is not None:
        overrides["steps"] = steps
    cfg = resolve(agent, env_id, seed, overrides, config_file)
    return Trainer(cfg, logdir, run_name, progress=progress, force=force).run()
