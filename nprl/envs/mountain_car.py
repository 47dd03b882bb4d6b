"""MountainCar-v0 (gymnasium 1.4 ``MountainCarEnv`` + ``TimeLimit(200)``), batched in torch.

State = observation = (position [-1.2, 0.6], velocity [-0.07, 0.07]) of a car in a valley
shaped like sin(3x). Actions: 0 accelerate left, 1 coast, 2 accelerate right (±0.001 per
step, against gravity's 0.0025·cos(3x)). Reward −1 every step. The episode terminates when
the car reaches position ≥ 0.5 with velocity ≥ 0 and is truncated after 200 steps. The
left edge is an inelastic wall: at position −1.2 a negative velocity becomes 0. Reset:
position uniform in [-0.6, -0.4], velocity 0.
"""

from __future__ import annotations

import gymnasium as gym
import numpy as np
import torch
from torch import Tensor

from nprl.envs.torch_base import TorchVecEnv, register

MIN_POSITION = -1.2
MAX_POSITION = 0.6
MAX_SPEED = 0.07
GOAL_POSITION = 0.5
GOAL_VELOCITY = 0.0
FORCE = 0.001
GRAVITY = 0.0025
RESET_LOW, RESET_HIGH = -0.6, -0.4


def car_spaces(action_space: gym.Space) -> tuple[gym.Space, gym.Space]:
    """The (position, velocity) observation space shared by both mountain-car tasks."""
    low = np.array([MIN_POSITION, -MAX_SPEED], dtype=np.float32)
    high = np.array([MAX_POSITION, MAX_SPEED], dtype=np.float32)
    return gym.spaces.Box(low, high, dtype=np.float32), action_space


class MountainCarBase(TorchVecEnv):
    """What MountainCar-v0 and MountainCarContinuous-v0 share: state (position, velocity),
    reset distribution, observation = state, and the clipped car update."""

    state_dim = 2

    def _init_buffers(self) -> None:
        self._fresh = torch.zeros(2, self.num_envs, **self._factory)  # velocity row stays 0
        self._fresh_position = self._fresh[0]
        # 0-dim constant: a Python scalar operand costs ~1.5 µs more per op on CPU.
        self._min_position = self._const(MIN_POSITION)

    def _sample_reset(self) -> Tensor:
        self._fresh_position.uniform_(RESET_LOW, RESET_HIGH, generator=self.generator)
        return self._fresh

    def _observe(self, s: Tensor) -> Tensor:
        return s.t().contiguous()  # a copy, so callers may modify observations in place

    def _move(self, position: Tensor, velocity: Tensor) -> Tensor:
        """From the position and the updated (unclipped) velocity: clip the velocity,
        integrate and clip the position, apply the left wall. Returns next_s [2, N]."""
        velocity = velocity.clamp(-MAX_SPEED, MAX_SPEED)
        position = torch.add(position, velocity).clamp_(MIN_POSITION, MAX_POSITION)
        # "if position == min_position and velocity < 0: velocity = 0"
        velocity = torch.where(position == self._min_position, velocity.clamp(min=0.0), velocity)
        return torch.stack((position, velocity))


@register("MountainCar-v0")
class MountainCar(MountainCarBase):
    """Batched MountainCar-v0; see the module docstring for the task and ``TorchVecEnv``
    for the constructor and the step/reset contract. ``state`` is [N, 2]."""

    max_episode_steps = 200

    def _init_buffers(self) -> None:
        super()._init_buffers()
        # (action − 1)·force, looked up by action (one gather op).
        self._push = self._const([-FORCE, 0.0, FORCE])
        self._three = self._const(3.0)
        self._goal = self._const([[GOAL_POSITION], [GOAL_VELOCITY]])

    @staticmethod
    def _spaces() -> tuple[gym.Space, gym.Space]:
        return car_spaces(gym.spaces.Discrete(3))

    def _transition(self, s: Tensor, actions: Tensor) -> tuple[Tensor, Tensor, Tensor, Tensor]:
        position, velocity = s.unbind(0)
        # velocity += (action − 1)·force + cos(3·position)·(−gravity)
        push = self._push.index_select(0, self._discrete(actions))
        velocity = velocity + torch.add(push, torch.cos(position * self._three), alpha=-GRAVITY)
        next_s = self._move(position, velocity)
        # position ≥ goal and velocity ≥ goal velocity, both rows compared at once
        terminated = next_s.ge(self._goal).all(0)
        reward = torch.full((self.num_envs,), -1.0, **self._factory)
        return next_s, next_s.t(), reward, terminated
