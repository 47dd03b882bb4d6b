"""Acrobot-v1 (gymnasium 1.4 ``AcrobotEnv`` + ``TimeLimit(500)``), batched in torch.

Two links hang from a fixed joint; only the joint between them is actuated. State
(θ1, θ2, θ̇1, θ̇2): the first link's angle from hanging down, the second link's angle
relative to the first [rad, wrapped to [-π, π]], and their angular velocities [rad/s,
clipped to ±4π and ±9π]. Observation (cos θ1, sin θ1, cos θ2, sin θ2, θ̇1, θ̇2). Actions
0, 1, 2 apply a torque of −1, 0, +1. Reward −1 per step, 0 on the terminating step. The
episode terminates when the free end is more than one link length above the fixed joint,
−cos θ1 − cos(θ1 + θ2) > 1, and is truncated after 500 steps. Reset: all four state
components uniform in [-0.1, 0.1].

Dynamics: gymnasium's "book" equations of motion (Sutton & Barto), integrated over
dt = 0.2 s with one classical RK4 step, then the angles wrapped and velocities clipped.
"""

from __future__ import annotations

import math

import gymnasium as gym
import numpy as np
import torch
from torch import Tensor

from nprl.envs.torch_base import TorchVecEnv, register

DT = 0.2  # [s]
LINK_LENGTH_1 = 1.0  # [m]
LINK_MASS_1 = LINK_MASS_2 = 1.0  # [kg]
LINK_COM_POS_1 = LINK_COM_POS_2 = 0.5  # [m] centre of mass along each link
LINK_MOI = 1.0  # moment of inertia of each link
G = 9.8
MAX_VEL_1 = 4 * math.pi
MAX_VEL_2 = 9 * math.pi
RESET_BOUND = 0.1

m1, m2, l1 = LINK_MASS_1, LINK_MASS_2, LINK_LENGTH_1
lc1, lc2, I1, I2 = LINK_COM_POS_1, LINK_COM_POS_2, LINK_MOI, LINK_MOI
# d1 = D1_0 + D1_C·cos θ2 ;  d2 = D2_0 + D2_C·cos θ2 (gymnasium's _dsdt, constants folded)
D1_0 = m1 * lc1**2 + m2 * (l1**2 + lc2**2) + I1 + I2
D1_C = 2 * m2 * l1 * lc2
D2_0 = m2 * lc2**2 + I2
D2_C = m2 * l1 * lc2
K = m2 * l1 * lc2  # coefficient of the Coriolis / centrifugal terms
PHI1_G = (m1 * lc1 + m2 * l1) * G
PHI2_G = m2 * lc2 * G


@register("Acrobot-v1")
class Acrobot(TorchVecEnv):
    """Batched Acrobot-v1; see the module docstring for the task and ``TorchVecEnv`` for
    the constructor and the step/reset contract. ``state`` is [N, 4] (θ1, θ2, θ̇1, θ̇2)."""

    max_episode_steps = 500
    state_dim = 4

    def _init_buffers(self) -> None:
        self._torque = self._const([-1.0, 0.0, 1.0])  # AVAIL_TORQUE, looked up by action
        self._max_vel = self._const([[MAX_VEL_1], [MAX_VEL_2]])
        self._fresh = torch.empty(4, self.num_envs, **self._factory)
        # 0-dim constants: a Python scalar operand costs ~1.5 µs more per op on CPU, and
        # the dynamics take ~100 elementwise ops per step.
        self._d1_0, self._d2_0 = self._const(D1_0), self._const(D2_0)
        self._phi1_g, self._phi2_g = self._const(PHI1_G), self._const(PHI2_G)
        self._pi, self._two_pi = self._const(math.pi), self._const(2 * math.pi)
        self._minus_one, self._zero = self._const(-1.0), self._const(0.0)

    @staticmethod
    def _spaces() -> tuple[gym.Space, gym.Space]:
        high = np.array([1.0, 1.0, 1.0, 1.0, MAX_VEL_1, MAX_VEL_2], dtype=np.float32)
        return gym.spaces.Box(-high, high, dtype=np.float32), gym.spaces.Discrete(3)

    def _sample_reset(self) -> Tensor:
        return self._fresh.uniform_(-RESET_BOUND, RESET_BOUND, generator=self.generator)

    def _observe(self, s: Tensor) -> Tensor:
        theta1, theta2, dtheta1, dtheta2 = s.unbind(0)
        return torch.stack(
            (theta1.cos(), theta1.sin(), theta2.cos(), theta2.sin(), dtheta1, dtheta2), dim=1
        )

    def _dsdt(self, s: Tensor, torque: Tensor) -> Tensor:
        """Time derivative [4, N] of the state [4, N] under ``torque`` [N]: gymnasium's
        ``_dsdt`` with ``book_or_nips = "book"``, each line one or two fused kernels.

        gymnasium's cos(θ1 − π/2) and cos(θ1 + θ2 − π/2) are written sin θ1 and
        sin(θ1 + θ2), and d2²/d1 as d2·(d2/d1): equal up to rounding (~1e-16)."""
        theta1, theta2, dtheta1, dtheta2 = s.unbind(0)
        cos2, sin2 = theta2.cos(), theta2.sin()
        d1 = torch.add(self._d1_0, cos2, alpha=D1_C)  # D1_0 + D1_C·cos θ2
        d2 = torch.add(self._d2_0, cos2, alpha=D2_C)  # D2_0 + D2_C·cos θ2
        phi2 = torch.sin(theta1 + theta2).mul_(self._phi2_g)  # m2·lc2·g·sin(θ1 + θ2)
        # φ1 = −K·sin θ2·θ̇2·(θ̇2 + 2·θ̇1) + (m1·lc1 + m2·l1)·g·sin θ1 + φ2
        phi1 = torch.addcmul(phi2, theta1.sin(), self._phi1_g).addcmul_(
            sin2 * dtheta2, torch.add(dtheta2, dtheta1, alpha=2.0), value=-K
        )
        # θ̈2 = (a + d2/d1·φ1 − K·θ̇1²·sin θ2 − φ2) / (m2·lc2² + I2 − d2²/d1)
        ratio = d2 / d1
        numerator = torch.addcmul(torque - phi2, ratio, phi1).addcmul_(
            dtheta1 * dtheta1, sin2, value=-K
        )
        ddtheta2 = numerator / torch.addcmul(self._d2_0, ratio, d2, value=-1.0)
        # θ̈1 = −(d2·θ̈2 + φ1) / d1
        ddtheta1 = torch.addcmul(phi1, d2, ddtheta2).div_(d1).neg_()
        return torch.stack((dtheta1, dtheta2, ddtheta1, ddtheta2))

    def _wrap(self, angle: Tensor) -> Tensor:
        """gymnasium's ``wrap(x, -π, π)`` (``while x > π: x -= 2π``; ``while x < -π:
        x += 2π``) without a loop: subtract 2π·k with k = ⌈(x − π) / 2π⌉, which is 0 for x
        in (−π, π], so in-range angles stay bit-identical."""
        turns = torch.sub(angle, self._pi).div_(self._two_pi).ceil_()
        return torch.add(angle, turns, alpha=-2 * math.pi)

    def _transition(self, s: Tensor, actions: Tensor) -> tuple[Tensor, Tensor, Tensor, Tensor]:
        torque = self._torque.index_select(0, self._discrete(actions))
        # One classical RK4 step over dt (gymnasium's rk4 with t = [0, dt]); the torque is
        # held constant, as gymnasium's augmented state with d(torque)/dt = 0 does.
        k1 = self._dsdt(s, torque)
        k2 = self._dsdt(torch.add(s, k1, alpha=DT / 2), torque)
        k3 = self._dsdt(torch.add(s, k2, alpha=DT / 2), torque)
        k4 = self._dsdt(torch.add(s, k3, alpha=DT), torque)
        increment = (k1 + k4).add_(k2, alpha=2.0).add_(k3, alpha=2.0)
        s_new = torch.add(s, increment, alpha=DT / 6)
        # wrap the angles into [-π, π], clip the velocities
        velocities = torch.clamp(s_new[2:], -self._max_vel, self._max_vel)
        next_s = torch.cat((self._wrap(s_new[:2]), velocities))
        theta1, theta2, _, _ = next_s.unbind(0)
        final_obs = self._observe(next_s)
        # −cos θ1 − cos(θ1 + θ2) > 1, written cos θ1 + cos(θ1 + θ2) < −1 (same rounding)
        terminated = torch.add(final_obs[:, 0], torch.cos(theta1 + theta2)).lt(self._minus_one)
        reward = torch.where(terminated, self._zero, self._minus_one)  # 0 on the last step
        return next_s, final_obs, reward, terminated
