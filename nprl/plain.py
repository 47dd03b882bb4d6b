"""Plain data: what a checkpoint may hold, so ``torch.load(weights_only=True)`` reads it.

Plain data is None, bool, int (any size), float, str, a torch tensor, and lists, tuples
and str-keyed dicts of plain data. NumPy values (environment state, NumPy's RNG state)
are converted to tensors on the way in and back on the way out, tagged so the round
trip restores the exact NumPy type and dtype.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import torch

_ARRAY, _SCALAR = "__ndarray__", "__npscalar__"
_ATOMS = (type(None), bool, int, float, str, torch.Tensor)


def to_plain(obj: Any) -> Any:
    """``obj`` with every NumPy array or scalar replaced by a tagged tensor.

    Raises TypeError for anything that is not plain data after that conversion.
    """
    if isinstance(obj, np.ndarray):
        return {_ARRAY: torch.from_numpy(np.array(obj, copy=True))}
    if isinstance(obj, np.generic):  # before the atoms: np.float64 is a float subclass
        return {_SCALAR: torch.from_numpy(np.array([obj]))}
    if isinstance(obj, _ATOMS):
        return obj
    if isinstance(obj, list | tuple):
        return type(obj)(to_plain(v) for v in obj)
    if isinstance(obj, dict):
        return {_key(k): to_plain(v) for k, v in obj.items()}
    raise TypeError(f"{type(obj).__name__} is not plain data")


def from_plain(obj: Any) -> Any:
    """The inverse of ``to_plain``: tagged tensors become NumPy arrays / scalars again."""
    if isinstance(obj, dict):
        if set(obj) == {_ARRAY}:
            return obj[_ARRAY].numpy().copy()
        if set(obj) == {_SCALAR}:
            return obj[_SCALAR].numpy()[0]
        return {k: from_plain(v) for k, v in obj.items()}
    if isinstance(obj, list | tuple):
        return type(obj)(from_plain(v) for v in obj)
    return obj


def check_plain(obj: Any, where: str = "checkpoint") -> None:
    """Raise TypeError naming the first value under ``obj`` that is not plain data
    (e.g. ``checkpoint['env']['state']: ndarray``), before it reaches the disk."""
    if isinstance(obj, np.generic | np.ndarray) or not isinstance(obj, _ATOMS + (list, tuple,
                                                                             dict)):
        raise TypeError(f"{where}: {type(obj).__name__} is not plain data")
    if isinstance(obj, list | tuple):
        for i, v in enumerate(obj):
            check_plain(v, f"{where}[{i}]")
    elif isinstance(obj, dict):
        for k, v in obj.items():
            if not isinstance(k, str | int):
                raise TypeError(f"{where}: key {k!r} is not a str or int")
            check_plain(v, f"{where}[{k!r}]")


def _key(k: Any) -> str | int:
    if isinstance(k, str | int) and not isinstance(k, bool):
        return k
    raise TypeError(f"dict key {k!r} is not a str or int")
