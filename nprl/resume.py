"""``nprl train --resume RUN_DIR``: continue a run from its newest checkpoint, exactly.

A checkpoint is taken between two updates and holds everything the next update depends
on (``Trainer.state``): parameters, optimiser and curvature state, normaliser
statistics, the collector's carried observations and episode accumulators, each env's
state and generator, the global RNGs, and the counters and evaluation history. Resuming
rebuilds the trainer from the checkpoint's own config, loads all of that back (the RNGs
last, because building the trainer draws from them), and continues in the same run
directory and TensorBoard log. On CPU the result is bit-identical to a run that was
never interrupted.
"""

from __future__ import annotations

import os
import warnings
from pathlib import Path
from typing import Any

from nprl.checkpoint import find_checkpoint, list_checkpoints, load_checkpoint
from nprl.config import Config, build
from nprl.errors import NprlError, NprlWarning
from nprl.rng import restore_rng
from nprl.trainer import Trainer

# Keys --resume may change: none alters what the next update computes. ``steps`` extends
# (or shortens) the budget; the others only change what is evaluated, saved or tolerated.
SAFE_OVERRIDES = ("steps", "checkpoint_every", "keep_checkpoints", "eval_every",
                  "eval_episodes", "stop_when_solved", "solved_threshold",
                  "max_consecutive_skips")
REQUIRED = ("config", "device", "policy", "agent", "obs_shape", "counters", "guard",
            "collector", "env", "rng", "result")


def run_dir_of(checkpoint: Path) -> Path:
    """``RUN_DIR`` for ``RUN_DIR/checkpoints/step_*.pt`` (else the file's directory)."""
    parent = checkpoint.parent
    return parent.parent if parent.name == "checkpoints" else parent


def _load(path: str | Path) -> tuple[Path, dict[str, Any]]:
    ckpt = find_checkpoint(path)
    try:
        return ckpt, load_checkpoint(ckpt)
    except NprlError as e:
        older = [p for p in list_checkpoints(ckpt.parent) if p != ckpt]
        hint = f"; an older checkpoint is {str(older[-1])!r} (pass it to --resume)" \
            if older else ""
        raise NprlError(f"{e}{hint}") from None


def resume_trainer(path: str | Path, overrides: dict[str, Any] | None = None,
                   progress: bool = True) -> Trainer:
    """A ``Trainer`` that continues the run of ``path`` (a run directory or a checkpoint
    file) when ``run()`` is called. ``overrides`` may hold only ``SAFE_OVERRIDES``."""
    ckpt, state = _load(path)
    missing = [k for k in REQUIRED if k not in state]
    if missing:
        raise NprlError(f"checkpoint {str(ckpt)!r} cannot be resumed: it lacks "
                        f"{', '.join(missing)} (written by an older nprl?)")
    for key in overrides or {}:
        if key not in SAFE_OVERRIDES:
            raise NprlError(f"--resume cannot change {key!r}: the run would no longer be the "
                            f"same one; allowed: {', '.join(SAFE_OVERRIDES)}")
    try:
        cfg = Config.from_dict(state["config"])
    except (KeyError, TypeError, AttributeError) as e:
        raise NprlError(f"checkpoint {str(ckpt)!r} has no valid config ({e!r})") from None
    # The device the run was on, not "auto" again: generator states belong to a device.
    cfg = build(cfg.agent_name, cfg.env_id, cfg.seed,
                {**cfg.flat(), **(overrides or {}), "device": str(state["device"])})
    done = int(state["counters"]["steps"])
    run_dir = run_dir_of(ckpt)
    if cfg.run.steps <= done:
        raise NprlError(f"nothing to resume: {str(run_dir)!r} has done {done} of its "
                        f"{cfg.run.steps} steps; extend it with --steps N (N > {done})")
    if not os.access(run_dir, os.W_OK):
        raise NprlError(f"run directory {str(run_dir)!r} is not writable")
    trainer = Trainer(cfg, run_dir=run_dir, progress=progress)
    try:
        load_state(trainer, state)
    except NprlError as e:
        trainer.env.close(), trainer.eval_env.close()
        raise NprlError(f"cannot resume from {str(ckpt)!r}: {e}") from None
    except (KeyError, TypeError, ValueError, RuntimeError, IndexError) as e:
        trainer.env.close(), trainer.eval_env.close()
        first = str(e).strip().splitlines()[0] if str(e).strip() else type(e).__name__
        raise NprlError(f"checkpoint {str(ckpt)!r} does not fit its own config: {first}") \
            from None
    every = cfg.run.eval_every
    if "eval_every" in (overrides or {}) and every:  # a new schedule, from here on
        trainer.next_eval = (trainer.steps // every + 1) * every
    for stray in ckpt.parent.glob(".step_*.tmp"):  # left by a kill during a save
        stray.unlink(missing_ok=True)
    return trainer


def load_state(trainer: Trainer, state: dict[str, Any]) -> None:
    """Put a checkpoint's state into a freshly built ``trainer`` of the same config."""
    shape = list(trainer.env.single_observation_space.shape)
    if list(state["obs_shape"]) != shape:
        raise NprlError(f"it was made for observations of shape {list(state['obs_shape'])}, "
                        f"but {trainer.cfg.env_id} gives {shape}")
    trainer.policy.load_state_dict(state["policy"])
    trainer.agent.load_state_dict(state["agent"])
    for name in ("obs_norm", "reward_scaler"):
        if getattr(trainer, name) is not None:
            getattr(trainer, name).load_state_dict(state[name])
    if state["env"] is not None and hasattr(trainer.env, "load_state_dict"):
        trainer.env.load_state_dict(state["env"])
        trainer.collector.load_state_dict(state["collector"])
    else:  # the envs restarted their episodes: the saved observations no longer apply
        warnings.warn(f"the state of {trainer.cfg.env_id} was not saved (async or "
                      "simulator-backed envs); the resumed run restarts its episodes and "
                      "will not match an uninterrupted one exactly", NprlWarning,
                      stacklevel=3)
    trainer.guard.load_state_dict(state["guard"])
    c = state["counters"]
    trainer.steps, trainer.updates, trainer.evals_done = c["steps"], c["updates"], c["evals"]
    trainer.next_eval, trainer.elapsed = c["next_eval"], float(c["elapsed"])
    trainer.result.load_state_dict(state["result"])
    restore_rng(state["rng"])  # last: building the trainer drew from the generators
