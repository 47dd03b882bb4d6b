"""Capture and restore every global random stream a run draws from, as plain data.

A run draws actions and minibatch permutations from torch's global generator (CPU, and
CUDA's when on a GPU); NumPy's and Python's global generators are captured too because
user code, wrappers and third-party envs may draw from them. The environments' own
generators are part of each env's ``state_dict`` (see ``nprl.envs``).
"""

from __future__ import annotations

import random
from typing import Any

import numpy as np
import torch


def capture_rng() -> dict[str, Any]:
    """The state of torch (CPU and every CUDA device), NumPy and ``random``."""
    np_name, np_keys, np_pos, np_has_gauss, np_gauss = np.random.get_state()
    py_version, py_internal, py_gauss = random.getstate()
    return {
        "torch": torch.get_rng_state(),
        "cuda": torch.cuda.get_rng_state_all() if torch.cuda.is_available() else [],
        "numpy": {"name": str(np_name), "keys": torch.from_numpy(np_keys.astype(np.int64)),
                  "pos": int(np_pos), "has_gauss": int(np_has_gauss), "gauss": float(np_gauss)},
        "python": {"version": int(py_version), "internal": torch.tensor(py_internal,
                                                                         dtype=torch.int64),
                   "gauss": py_gauss},
    }


def restore_rng(state: dict[str, Any]) -> None:
    """Put back what ``capture_rng`` returned.

    CUDA states are restored when this machine has as many CUDA devices as the one that
    captured them; otherwise they are ignored (a CPU run has none to restore).
    """
    torch.set_rng_state(state["torch"])
    cuda = state.get("cuda") or []
    if cuda and torch.cuda.is_available() and torch.cuda.device_count() == len(cuda):
        torch.cuda.set_rng_state_all(cuda)
    n = state["numpy"]
    np.random.set_state((n["name"], n["keys"].numpy().astype(np.uint32), n["pos"],
                         n["has_gauss"], n["gauss"]))
    p = state["python"]
    random.setstate((p["version"], tuple(int(x) for x in p["internal"].tolist()), p["gauss"]))
