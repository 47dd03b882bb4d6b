"""The batched environment interface the collector drives.

Every backend (gymnasium's vector envs through an adapter, or nprl's torch-native
classic-control envs) exposes the same small protocol: tensors in, tensors out, on one
device, with the episode auto-reset *inside* ``step`` (gymnasium's ``SAME_STEP`` mode).
So every row a ``step`` returns is a real transition, and the collector needs no special
case for the step after an episode ends.

Optionally a backend also has ``state_dict() -> dict | None`` (its full state, env
generators included, as tensors and plain Python data) and ``load_state_dict(state)``:
checkpoints save it so that a resumed run continues the same episodes exactly. None, or
no such method, means the state cannot be saved; a resumed run then restarts episodes.
"""

from __future__ import annotations

from typing import NamedTuple, Protocol, runtime_checkable

import gymnasium as gym
import torch
from torch import Tensor


class StepResult(NamedTuple):
    """One batched transition; N = number of envs.

    obs:        [N, *obs_shape] observation to act on next (already the reset observation
                for envs whose episode ended in this step).
    reward:     [N] float.
    terminated: [N] bool, the MDP reached a terminal state (no bootstrapping).
    truncated:  [N] bool, a time limit cut the episode (bootstrap from ``final_obs``).
    final_obs:  [N, *obs_shape] the observation the step actually reached (before the
                auto-reset); equal to ``obs`` where the episode did not end.
    """

    obs: Tensor
    reward: Tensor
    terminated: Tensor
    truncated: Tensor
    final_obs: Tensor


@runtime_checkable
class VecEnv(Protocol):
    """A batch of ``num_envs`` copies of one task living on ``device``."""

    num_envs: int
    device: torch.device
    single_observation_space: gym.Space
    single_action_space: gym.Space

    def reset(self, seed: int | None = None) -> Tensor:
        """Reset every env; returns obs [N, *obs_shape]. A seed makes it reproducible."""
        ...

    def step(self, actions: Tensor) -> StepResult:
        """Advance every env by one step with ``actions`` ([N] int64 or [N, act_dim])."""
        ...

    def close(self) -> None: ...
