"""CartPole-v1 (gymnasium 1.4 ``CartPoleEnv`` + ``TimeLimit(500)``), batched in torch.

State = observation = (x, ẋ, θ, θ̇): cart position [m], cart velocity [m/s], pole angle
from upright [rad], pole angular velocity [rad/s]. Action 0 pushes the cart left with
10 N, 1 pushes it right. Reward +1 on every step, including the terminating one. The
episode terminates when |x| > 2.4 or |θ| > 12° and is truncated after 500 steps. Reset
draws every state component uniformly from [-0.05, 0.05].
"""

from __future__ import annotations

import math

import gymnasium as gym
import numpy as np
import torch
from torch import Tensor

from nprl.envs.torch_base import TorchVecEnv, register

GRAVITY = 9.8  # [m/s²]
MASS_CART = 1.0  # [kg]
MASS_POLE = 0.1  # [kg]
TOTAL_MASS = MASS_POLE + MASS_CART
LENGTH = 0.5  # [m] half the pole's length
POLEMASS_LENGTH = MASS_POLE * LENGTH
FORCE_MAG = 10.0  # [N]
TAU = 0.02  # [s] between state updates (explicit Euler)
THETA_THRESHOLD = 12 * 2 * math.pi / 360  # [rad] ≈ 0.2095
X_THRESHOLD = 2.4  # [m]
RESET_BOUND = 0.05


@register("CartPole-v1")
class CartPole(TorchVecEnv):
    """Batched CartPole-v1; see the module docstring for the task and ``TorchVecEnv``
    for the constructor and the step/reset contract. ``state`` is [N, 4] (x, ẋ, θ, θ̇)."""

    max_episode_steps = 500
    state_dim = 4

    def __init__(
        self,
        num_envs: int,
        device: torch.device | str = "cpu",
        dtype: torch.dtype = torch.float32,
    ) -> None:
        super().__init__(num_envs, device, dtype)
        # The force divided by the total mass, looked up by action (one gather op).
        self._force_over_mass = self._const([-FORCE_MAG / TOTAL_MASS, FORCE_MAG / TOTAL_MASS])
        # 0-dim tensors: a Python scalar operand costs ~1.5 µs more per op on CPU, and
        # l·4/3 as a tensor makes the denominator a single addcmul.
        self._four_thirds_l = self._const(LENGTH * 4.0 / 3.0)
        self._gravity = self._const(GRAVITY)
        # |x| and |θ| limits; the velocities are never out of bounds.
        self._limits = self._const([X_THRESHOLD, math.inf, THETA_THRESHOLD, math.inf])
        self._fresh = torch.empty(self.num_envs, 4, **self._factory)

    @staticmethod
    def _spaces() -> tuple[gym.Space, gym.Space]:
        high = np.array([X_THRESHOLD * 2, np.inf, THETA_THRESHOLD * 2, np.inf], dtype=np.float32)
        return gym.spaces.Box(-high, high, dtype=np.float32), gym.spaces.Discrete(2)

    def _sample_reset(self) -> Tensor:
        return self._fresh.uniform_(-RESET_BOUND, RESET_BOUND, generator=self.generator)

    def _observe(self, state: Tensor) -> Tensor:
        return state.clone()  # a copy, so callers may modify observations in place

    def _transition(self, state: Tensor, actions: Tensor) -> tuple[Tensor, Tensor, Tensor, Tensor]:
        # The equations of gymnasium's CartPoleEnv.step (Florian 2007, "Correct equations
        # for the dynamics of the cart-pole system"), regrouped so that each line is one
        # fused kernel: constants are folded (F/M, m_p·l/M, l·m_p/M), a·b + c is addcmul.
        # In float64 this agrees with gymnasium to ~1e-15 per step.
        _, x_dot, theta, theta_dot = state.unbind(1)
        cos, sin = torch.cos(theta), torch.sin(theta)
        force_over_mass = self._force_over_mass.index_select(0, self._discrete(actions))
        # temp = (F + m_p·l·θ̇²·sinθ) / M
        temp = torch.addcmul(
            force_over_mass, theta_dot * theta_dot, sin, value=POLEMASS_LENGTH / TOTAL_MASS
        )
        # θ̈ = (g·sinθ − cosθ·temp) / (l·(4/3 − m_p·cos²θ / M))
        numerator = torch.addcmul(sin * self._gravity, cos, temp, value=-1.0)
        denominator = torch.addcmul(
            self._four_thirds_l, cos, cos, value=-LENGTH * MASS_POLE / TOTAL_MASS
        )
        theta_acc = numerator / denominator
        # ẍ = temp − m_p·l·θ̈·cosθ / M
        x_acc = torch.addcmul(temp, theta_acc, cos, value=-POLEMASS_LENGTH / TOTAL_MASS)
        # Explicit Euler on all four components at once: s' = s + τ·ṡ.
        derivative = torch.stack((x_dot, x_acc, theta_dot, theta_acc), dim=1)
        next_state = torch.add(state, derivative, alpha=TAU)
        # |x| > 2.4 or |θ| > 12°: the same test as gymnasium's four comparisons.
        terminated = (next_state.abs() > self._limits).any(dim=1)
        reward = torch.ones(self.num_envs, **self._factory)
        return next_state, next_state, reward, terminated  # where() copies the state
