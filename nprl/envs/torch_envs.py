"""nprl's torch-native classic-control envs; importing this module registers each of them
in ``nprl.envs.registry.TORCH_ENVS`` (``make_env`` picks them for ``backend="auto"``)."""

from __future__ import annotations

from nprl.envs.acrobot import Acrobot
from nprl.envs.cartpole import CartPole
from nprl.envs.mountain_car import MountainCar
from nprl.envs.mountain_car_continuous import MountainCarContinuous
from nprl.envs.pendulum import Pendulum
from nprl.envs.torch_base import TorchVecEnv

__all__ = [
    "TorchVecEnv",
    "CartPole",
    "Acrobot",
    "MountainCar",
    "MountainCarContinuous",
    "Pendulum",
]
