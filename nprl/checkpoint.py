"""Checkpoints: written atomically (temporary file, fsync, rename), plain data only, and
loaded with ``torch.load(weights_only=True)`` so a checkpoint can never execute code."""

from __future__ import annotations

import os
import pickle
import re
import tempfile
import warnings
import zipfile
from pathlib import Path
from typing import Any

import torch

from nprl.errors import NprlError
from nprl.plain import check_plain

FORMAT = "nprl-checkpoint"
VERSION = 1
_STEP_FILE = re.compile(r"^step_(\d+)\.pt$")


def atomic_save(obj: dict[str, Any], path: Path) -> None:
    """Write ``obj`` to ``path`` so that ``path`` is either the old file or the new one,
    never a partial write (a kill mid-save leaves at most a stray temporary file)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "wb") as f:
            torch.save(obj, f)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
        dir_fd = os.open(path.parent, os.O_RDONLY)
        try:
            os.fsync(dir_fd)
        finally:
            os.close(dir_fd)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def save_checkpoint(state: dict[str, Any], ckpt_dir: Path, step: int, keep: int) -> Path:
    """Save as ``ckpt_dir/step_<step>.pt`` and delete all but the newest ``keep``.

    Anything that is not plain data is a TypeError here, not an unloadable file later.
    """
    path = checkpoint_path(ckpt_dir, step)
    obj = {"format": FORMAT, "version": VERSION, **state}
    check_plain(obj)
    try:
        atomic_save(obj, path)
    except OSError as e:  # disk full, permissions: the older checkpoints are untouched
        raise NprlError(f"cannot write checkpoint {str(path)!r}: "
                        f"{e.strerror or type(e).__name__}") from None
    for old in list_checkpoints(ckpt_dir)[:-keep]:
        old.unlink(missing_ok=True)
    return path


def checkpoint_path(ckpt_dir: Path, step: int) -> Path:
    """Where the checkpoint of env step ``step`` lives."""
    return ckpt_dir / f"step_{step:012d}.pt"


def list_checkpoints(ckpt_dir: Path) -> list[Path]:
    """Checkpoint files in ``ckpt_dir``, oldest first."""
    if not ckpt_dir.is_dir():
        return []
    found = [(int(m.group(1)), p) for p in ckpt_dir.iterdir() if (m := _STEP_FILE.match(p.name))]
    return [p for _, p in sorted(found)]


def find_checkpoint(path: str | Path) -> Path:
    """A checkpoint file, or the newest one of a run directory."""
    p = Path(path)
    if p.is_file():
        return p
    if p.is_dir():
        ckpts = list_checkpoints(p / "checkpoints") or list_checkpoints(p)
        if ckpts:
            return ckpts[-1]
        raise NprlError(f"no checkpoint in {str(p)!r} (expected checkpoints/step_*.pt)")
    raise NprlError(f"checkpoint {str(p)!r} does not exist")


def load_checkpoint(path: str | Path, map_location: str | torch.device = "cpu") -> dict[str, Any]:
    """Load with ``weights_only=True``; refuse anything that is not an nprl checkpoint."""
    p = find_checkpoint(path)
    try:
        with warnings.catch_warnings():  # torch warns about foreign pickles; we refuse them
            warnings.filterwarnings("ignore", message="Detected pickle protocol")
            obj = torch.load(p, map_location=map_location, weights_only=True)
    except pickle.UnpicklingError as e:
        # torch's message is a paragraph; the line naming the refused global is the news.
        # Random bytes also fail here ("Unsupported operand"): only a refused global
        # means the file holds objects.
        lines = [ln.strip() for ln in str(e).splitlines() if ln.strip()]
        named = [ln for ln in lines if "GLOBAL" in ln]
        if named:
            raise NprlError(f"refusing checkpoint {str(p)!r}: it holds more than plain data "
                            f"({named[0]})") from None
        detail = [ln for ln in lines if "Unsupported" in ln] or lines or [type(e).__name__]
        raise NprlError(f"checkpoint {str(p)!r} is truncated or corrupted, or not written by "
                        f"nprl ({detail[0]})") from None
    except (RuntimeError, EOFError, zipfile.BadZipFile, OSError, ValueError) as e:
        raise NprlError(f"checkpoint {str(p)!r} is truncated or corrupted "
                        f"({type(e).__name__})") from None
    if not isinstance(obj, dict) or obj.get("format") != FORMAT:
        raise NprlError(f"{str(p)!r} is not an nprl checkpoint")
    if obj.get("version") != VERSION:
        raise NprlError(f"{str(p)!r} has checkpoint version {obj.get('version')!r}; "
                        f"this nprl reads version {VERSION}")
    return obj
