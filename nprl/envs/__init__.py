"""Environments: one tensor ``VecEnv`` protocol over gymnasium and torch-native backends."""

from __future__ import annotations

import gymnasium as gym
import torch

from nprl.envs import torch_envs  # noqa: F401  (registers the torch-native envs in TORCH_ENVS)
from nprl.envs.base import StepResult, VecEnv
from nprl.envs.gym_api import TorchVectorEnv, make_vec
from nprl.envs.gym_backend import GymVecEnv
from nprl.envs.registry import TORCH_ENVS
from nprl.envs.torch_base import TorchVecEnv
from nprl.errors import NprlError, did_you_mean

__all__ = [
    "StepResult",
    "VecEnv",
    "GymVecEnv",
    "TorchVecEnv",
    "TorchVectorEnv",
    "TORCH_ENVS",
    "make_env",
    "make_vec",
    "check_env_id",
]

BACKENDS = ("auto", "torch", "gymnasium")


def check_env_id(env_id: str) -> None:
    """Raise NprlError naming ``env_id`` if gymnasium does not know it."""
    if env_id not in gym.registry and env_id not in TORCH_ENVS:
        raise NprlError(
            f"unknown env id {env_id!r}{did_you_mean(env_id, gym.registry.keys())}; "
            "any registered gymnasium id works"
        )


def make_env(
    env_id: str,
    num_envs: int,
    device: torch.device | str = "cpu",
    backend: str = "auto",
    vectorization: str = "sync",
) -> VecEnv:
    """Build ``num_envs`` copies of ``env_id`` behind the ``VecEnv`` protocol.

    backend: ``"torch"`` (nprl's batched implementation, state on ``device``),
    ``"gymnasium"`` (gymnasium's envs, ``vectorization`` "sync" or "async"), or ``"auto"``
    (torch where nprl has the env, gymnasium otherwise).
    """
    check_env_id(env_id)
    if backend not in BACKENDS:
        raise NprlError(f"backend={backend!r}: expected one of {', '.join(BACKENDS)}")
    if num_envs < 1:
        raise NprlError(f"n_envs={num_envs}: expected a positive integer")
    if backend == "torch" and env_id not in TORCH_ENVS:
        raise NprlError(
            f"backend='torch' is not available for {env_id!r}; torch-native envs: "
            f"{', '.join(sorted(TORCH_ENVS)) or 'none'} (use backend='gymnasium')"
        )
    if backend in ("torch", "auto") and env_id in TORCH_ENVS:
        return TORCH_ENVS[env_id](num_envs, device=device)
    return GymVecEnv(env_id, num_envs, device=device, vectorization=vectorization)
