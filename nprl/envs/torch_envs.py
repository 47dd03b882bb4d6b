"""Import the torch-native env modules so that each registers itself in ``TORCH_ENVS``."""

from __future__ import annotations

from nprl.envs.cartpole import CartPole
from nprl.envs.torch_base import TorchVecEnv

__all__ = ["TorchVecEnv", "CartPole"]
