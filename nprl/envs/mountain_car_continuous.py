"""MountainCarContinuous-v0 (gymnasium 1.4 ``Continuous_MountainCarEnv`` +
``TimeLimit(999)``), batched in torch.

State = observation = (position [-1.2, 0.6], velocity [-0.07, 0.07]) as in MountainCar-v0.
Action: a force in [-1, 1] (clipped inside the env), scaled by a power of 0.0015. Reward:
+100 on reaching the goal (position ≥ 0.45 with velocity ≥ 0, which terminates the
episode) minus 0.1·action² every step, where action is the *unclipped* action, as in
gymnasium. Truncated after 999 steps. Reset: position uniform in [-0.6, -0.4], velocity 0.

gymnasium stores this env's state in float32 after the first step; with ``dtype=float64``
this implementation keeps float64 throughout (differences ~1e-7 per step).
"""

from __future__ import annotations

import gymnasium as gym
import numpy as np
import torch
from torch import Tensor

from nprl.envs.mountain_car import MountainCarBase, car_spaces
from nprl.envs.torch_base import register

MIN_ACTION, MAX_ACTION = -1.0, 1.0
POWER = 0.0015
GRAVITY = 0.0025
GOAL_POSITION = 0.45
GOAL_VELOCITY = 0.0
GOAL_REWARD = 100.0


@register("MountainCarContinuous-v0")
class MountainCarContinuous(MountainCarBase):
    """Batched MountainCarContinuous-v0; see the module docstring for the task and
    ``TorchVecEnv`` for the constructor and the step/reset contract. ``state`` is [N, 2];
    actions are [N, 1] (or [N]) floats."""

    max_episode_steps = 999

    def _init_buffers(self) -> None:
        super()._init_buffers()
        # 0-dim constants: Python scalar operands cost ~1.5 µs more per op on CPU.
        self._power = self._const(POWER)
        self._three = self._const(3.0)
        self._goal = self._const([[GOAL_POSITION], [GOAL_VELOCITY]])
        self._goal_reward = self._const(GOAL_REWARD)
        self._zero = self._const(0.0)

    @staticmethod
    def _spaces() -> tuple[gym.Space, gym.Space]:
        return car_spaces(gym.spaces.Box(MIN_ACTION, MAX_ACTION, (1,), dtype=np.float32))

    def _transition(self, s: Tensor, actions: Tensor) -> tuple[Tensor, Tensor, Tensor, Tensor]:
        action = self._continuous(actions)
        force = action.clamp(MIN_ACTION, MAX_ACTION)
        position, velocity = s.unbind(0)
        # velocity += force·power − 0.0025·cos(3·position), as two fused ops (the sum is
        # regrouped, a ~1e-19 difference)
        gravity_pull = torch.cos(position * self._three)
        velocity = torch.add(velocity, gravity_pull, alpha=-GRAVITY).addcmul_(force, self._power)
        next_s = self._move(position, velocity)
        terminated = next_s.ge(self._goal).all(0)
        # reward = 100·[goal reached] − 0.1·action² (the unclipped action, as gymnasium)
        bonus = torch.where(terminated, self._goal_reward, self._zero)
        reward = torch.addcmul(bonus, action, action, value=-0.1)
        return next_s, next_s.t(), reward, terminated
