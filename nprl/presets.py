"""Preset TOML files: ``agents/<agent>.toml`` and ``envs/<env-id>.toml``.

In a wheel they live in ``nprl/presets/``; in a source checkout, at the repository top
level (one source of truth, copied into the wheel by hatchling's force-include).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import tomllib

from nprl.errors import NprlError

_PACKAGE = Path(__file__).resolve().parent


def preset_dir(kind: str) -> Path:
    """The directory of ``kind`` ("agents" or "envs") presets."""
    installed = _PACKAGE / "presets" / kind
    return installed if installed.is_dir() else _PACKAGE.parent / kind


def _load(path: Path) -> tuple[dict[str, Any], str]:
    if not path.is_file():
        return {}, str(path)
    try:
        return tomllib.loads(path.read_text()), str(path)
    except (tomllib.TOMLDecodeError, UnicodeDecodeError) as e:
        raise NprlError(f"malformed TOML in preset {str(path)!r}: {e}") from None


def load_agent_preset(agent: str) -> tuple[dict[str, Any], str]:
    return _load(preset_dir("agents") / f"{agent}.toml")


def load_env_preset(env_id: str) -> tuple[dict[str, Any], str]:
    return _load(preset_dir("envs") / f"{env_id}.toml")


def env_presets() -> list[str]:
    return sorted(p.stem for p in preset_dir("envs").glob("*.toml"))
