"""Pendulum-v1 (gymnasium 1.4 ``PendulumEnv`` + ``TimeLimit(200)``), batched in torch.

State = (θ, θ̇): angle from upright [rad] (unbounded; the cost normalises it to [-π, π)) and
angular velocity [rad/s], clipped to ±8. Observation (cos θ, sin θ, θ̇). Action: a torque
in [-2, 2] (clipped inside the env). Reward −(θ_n² + 0.1·θ̇² + 0.001·u²) of the state
*before* the step, θ_n the normalised angle, u the clipped torque: 0 at best, about −16.3
at worst. Never terminates; truncated after 200 steps. Reset: θ uniform in [-π, π],
θ̇ uniform in [-1, 1].
"""

from __future__ import annotations

import math

import gymnasium as gym
import numpy as np
import torch
from torch import Tensor

from nprl.envs.torch_base import TorchVecEnv, register

MAX_SPEED = 8.0  # [rad/s]
MAX_TORQUE = 2.0
DT = 0.05  # [s], semi-implicit Euler
G = 10.0  # [m/s²], gymnasium's default g
M = 1.0  # [kg]
L = 1.0  # [m]
RESET_THETA, RESET_THETA_DOT = math.pi, 1.0


@register("Pendulum-v1")
class Pendulum(TorchVecEnv):
    """Batched Pendulum-v1; see the module docstring for the task and ``TorchVecEnv`` for
    the constructor and the step/reset contract. ``state`` is [N, 2] (θ, θ̇); actions are
    [N, 1] (or [N]) floats."""

    max_episode_steps = 200
    state_dim = 2

    def _init_buffers(self) -> None:
        self._fresh = torch.empty(2, self.num_envs, **self._factory)
        self._fresh_theta, self._fresh_theta_dot = self._fresh.unbind(0)
        # 0-dim constants: Python scalar operands cost ~1.5 µs more per op on CPU.
        self._pi = self._const(math.pi)
        self._two_pi = self._const(2 * math.pi)
        self._torque_gain = self._const(3.0 / (M * L**2))

    @staticmethod
    def _spaces() -> tuple[gym.Space, gym.Space]:
        high = np.array([1.0, 1.0, MAX_SPEED], dtype=np.float32)
        return (
            gym.spaces.Box(-high, high, dtype=np.float32),
            gym.spaces.Box(-MAX_TORQUE, MAX_TORQUE, (1,), dtype=np.float32),
        )

    def _sample_reset(self) -> Tensor:
        self._fresh_theta.uniform_(-RESET_THETA, RESET_THETA, generator=self.generator)
        self._fresh_theta_dot.uniform_(-RESET_THETA_DOT, RESET_THETA_DOT, generator=self.generator)
        return self._fresh

    def _observe(self, s: Tensor) -> Tensor:
        theta, theta_dot = s.unbind(0)
        return torch.stack((torch.cos(theta), torch.sin(theta), theta_dot), dim=1)

    def _transition(self, s: Tensor, actions: Tensor) -> tuple[Tensor, Tensor, Tensor, Tensor]:
        u = self._continuous(actions).clamp(-MAX_TORQUE, MAX_TORQUE)
        theta, theta_dot = s.unbind(0)
        # angle_normalize(θ) = ((θ + π) mod 2π) − π, with a floor modulo like numpy's %
        theta_n = torch.remainder(theta + self._pi, self._two_pi) - self._pi
        # reward = −(θ_n² + 0.1·θ̇² + 0.001·u²)
        cost = torch.addcmul(theta_n * theta_n, theta_dot, theta_dot, value=0.1)
        reward = torch.addcmul(cost, u, u, value=0.001).neg_()
        # θ̇' = clip(θ̇ + (3g/(2l)·sin θ + 3/(m l²)·u)·dt, ±8);  θ' = θ + θ̇'·dt
        theta_acc = torch.add(u * self._torque_gain, torch.sin(theta), alpha=3 * G / (2 * L))
        new_theta_dot = torch.add(theta_dot, theta_acc, alpha=DT).clamp_(-MAX_SPEED, MAX_SPEED)
        new_theta = torch.add(theta, new_theta_dot, alpha=DT)
        next_s = torch.stack((new_theta, new_theta_dot))
        final_obs = torch.stack((torch.cos(new_theta), torch.sin(new_theta), new_theta_dot), dim=1)
        terminated = torch.zeros(self.num_envs, dtype=torch.bool, device=self.device)
        return next_s, final_obs, reward, terminated
