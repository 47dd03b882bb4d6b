"""Shared machinery of nprl's torch-native batched classic-control envs.

Each env keeps ``num_envs`` copies of gymnasium's own state vector on ``device`` and
advances them all with a few fused tensor ops. The state is stored variable-major,
``[state_dim, N]`` (one contiguous row per state variable, e.g. CartPole's x, ẋ, θ, θ̇),
because the physics works on whole rows: ``unbind(0)`` gives contiguous vectors, and
stacking rows back or masking whole columns by env is cheaper than in the ``[N, state_dim]``
layout (measured ~10% per step at 256 envs on CPU). ``env.state`` shows it in gymnasium's
``[N, state_dim]`` layout.

A subclass supplies four pure pieces:

- ``_spaces()``: gymnasium's single observation and action spaces;
- ``_sample_reset() -> fresh [state_dim, N]``: a reset state for *every* env, drawn from
  ``self.generator`` with gymnasium's reset distribution;
- ``_observe(s) -> obs [N, obs_dim]``: gymnasium's observation function (a new tensor);
- ``_transition(s, actions) -> (next_s, next_obs, reward, terminated)``: the physics,
  reward and termination rule of the gymnasium env, batched.

``step`` then applies gymnasium's ``TimeLimit`` (a per-env elapsed-steps counter that
lives on the device) and auto-resets in gymnasium's ``SAME_STEP`` mode with
``torch.where``: no Python branch on data, no ``.item()``, no host synchronisation, so
on a GPU the step is queued as fast as Python issues the kernels.

Randomness: one ``torch.Generator`` on the env's device. Because the step cannot know
(without a host sync) which envs ended, it draws a candidate reset state for every env on
every step and keeps only those of the envs that ended. A trajectory is therefore a
function of (seed, num_envs, device, the actions): the same seed reproduces it exactly,
and envs ``i`` ≠ ``j`` follow different episodes. CPU and CUDA generators produce
different streams, so one seed does not give the same episodes on both devices.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import ClassVar

import gymnasium as gym
import torch
from torch import Tensor

from nprl.envs.base import StepResult
from nprl.envs.registry import TORCH_ENVS
from nprl.errors import NprlError

_INDEX_DTYPES = (torch.int64, torch.int32)


def register(env_id: str) -> Callable[[type[TorchVecEnv]], type[TorchVecEnv]]:
    """Class decorator: make ``make_env(env_id, backend="auto"|"torch")`` pick the class."""

    def deco(cls: type[TorchVecEnv]) -> type[TorchVecEnv]:
        cls.env_id = env_id
        TORCH_ENVS[env_id] = cls
        return cls

    return deco


class TorchVecEnv:
    """Base class: ``num_envs`` copies of one classic-control task as tensors on a device.

    num_envs: batch size N (1 to ~10⁵). On CPU a step costs a few dozen tensor ops of a
        few µs each, so up to ~1,000 envs a step costs about the same as one env's.
    device: where the state, the step counters and the generator live ("cpu", "cuda").
    dtype: floating dtype of state, observations and rewards. float32 (default) matches
        gymnasium's observation spaces; float64 agrees with gymnasium's float64 states to
        ~1e-15 per step (used by the parity tests; gymnasium itself rounds some quantities
        to float32, e.g. MountainCarContinuous' state and Pendulum's torque term).

    ``reset`` and ``step`` return observations [N, obs_dim] of ``dtype`` on ``device``;
    rewards [N] of ``dtype``; ``terminated``/``truncated`` [N] bool. ``final_obs`` may be a
    non-contiguous view (it is never shared with the env's state). Discrete actions are
    integer [N]; continuous ones [N, act_dim] (or [N] when act_dim is 1), clipped to the
    action bounds inside the env exactly where gymnasium clips them.
    """

    env_id: ClassVar[str] = ""
    #: gymnasium's ``TimeLimit`` for the registered id (``spec.max_episode_steps``).
    max_episode_steps: ClassVar[int]
    #: length of gymnasium's ``env.unwrapped.state`` vector.
    state_dim: ClassVar[int]

    def __init__(
        self,
        num_envs: int,
        device: torch.device | str = "cpu",
        dtype: torch.dtype = torch.float32,
    ) -> None:
        if int(num_envs) < 1:
            raise NprlError(f"num_envs={num_envs}: expected a positive integer")
        if not dtype.is_floating_point:
            raise NprlError(f"dtype={dtype}: expected a floating dtype")
        self.num_envs = int(num_envs)
        self._batch_shape = torch.Size([self.num_envs])
        self.device = torch.device(device)
        self.dtype = dtype
        self.single_observation_space, self.single_action_space = self._spaces()
        self.generator = torch.Generator(device=self.device)
        self.generator.seed()  # fresh entropy until reset(seed=...) says otherwise
        self._factory = {"device": self.device, "dtype": dtype}
        # variable-major state [state_dim, N]; see the module docstring.
        self._s = torch.zeros(self.state_dim, self.num_envs, **self._factory)
        self.elapsed_steps = torch.zeros(self.num_envs, dtype=torch.int32, device=self.device)
        # 0-dim tensor operands: a Python scalar operand costs ~1.5 µs more per op on CPU.
        self._one = torch.ones((), dtype=torch.int32, device=self.device)
        self._limit = torch.full((), self.max_episode_steps, dtype=torch.int32, device=self.device)
        self._needs_reset = True
        self._init_buffers()

    # ----------------------------------------------------------------- subclass API
    def _init_buffers(self) -> None:
        """Allocate the env's constants and reusable buffers (called by ``__init__``)."""

    @staticmethod
    def _spaces() -> tuple[gym.Space, gym.Space]:
        """(single observation space, single action space), identical to gymnasium's."""
        raise NotImplementedError

    def _sample_reset(self) -> Tensor:
        """A reset state [state_dim, N] for every env (gymnasium's reset distribution).
        May return a reused buffer: callers must copy it (``torch.where`` does)."""
        raise NotImplementedError

    def _observe(self, s: Tensor) -> Tensor:
        """gymnasium's observation [N, obs_dim] of ``s`` [state_dim, N]; a new tensor."""
        raise NotImplementedError

    def _transition(self, s: Tensor, actions: Tensor) -> tuple[Tensor, Tensor, Tensor, Tensor]:
        """One step of every env from ``s`` [state_dim, N]:
        (next_s [state_dim, N], next_obs [N, obs_dim], reward [N], terminated [N])."""
        raise NotImplementedError

    # ------------------------------------------------------------------ public API
    @property
    def state(self) -> Tensor:
        """The state [N, state_dim] in gymnasium's ``env.unwrapped.state`` layout (a
        read-only view; change it with ``set_state``)."""
        return self._s.t()

    def reset(self, seed: int | None = None) -> Tensor:
        """Draw a fresh start state for every env and zero the step counters.

        seed: reseeds the env's generator (same seed ⇒ same trajectories for the same
        actions); ``None`` continues the current random stream.
        """
        if seed is not None:
            self.generator.manual_seed(int(seed))
        self._s = self._sample_reset().clone()
        self.elapsed_steps.zero_()
        self._needs_reset = False
        return self._observe(self._s)

    def step(self, actions: Tensor) -> StepResult:
        """Advance every env one step; envs whose episode ended restart in the same step."""
        if self._needs_reset:
            raise NprlError(f"{type(self).__name__}: call reset() before step()")
        next_s, final_obs, reward, terminated = self._transition(self._s, actions)
        # gymnasium's TimeLimit: truncated once the episode has lasted max_episode_steps,
        # whether or not it also terminated in that step.
        elapsed = self.elapsed_steps
        truncated = elapsed.add_(self._one).ge(self._limit)
        done = terminated | truncated
        # SAME_STEP auto-reset, branch-free: every env draws a candidate reset state and
        # the ones that ended keep it (done [N] broadcasts over the state's rows).
        self._s = s = torch.where(done, self._sample_reset(), next_s)
        elapsed.masked_fill_(done, 0)
        return StepResult(self._observe(s), reward, terminated, truncated, final_obs)

    def set_state(self, state: Tensor, elapsed_steps: Tensor | int | None = None) -> Tensor:
        """Overwrite the state with ``state`` [N, state_dim] (gymnasium's
        ``env.unwrapped.state`` layout; copied to the env's device and dtype) and optionally
        the elapsed-step counters; returns the observation of the new state. For tests and
        for starting envs from chosen states."""
        state = torch.as_tensor(state)
        if state.shape != (self.num_envs, self.state_dim):
            raise NprlError(
                f"set_state: expected shape ({self.num_envs}, {self.state_dim}), "
                f"got {tuple(state.shape)}"
            )
        self._s = state.to(**self._factory).t().contiguous()
        if elapsed_steps is not None:
            self.set_elapsed_steps(elapsed_steps)
        self._needs_reset = False
        return self._observe(self._s)

    def set_elapsed_steps(self, elapsed_steps: Tensor | int) -> None:
        """Set the time-limit counters ([N] or one int): an env truncates after
        ``max_episode_steps − elapsed`` more steps (``nprl.envs.stagger``)."""
        steps = torch.as_tensor(elapsed_steps, device=self.device)
        self.elapsed_steps.copy_(steps.expand(self.num_envs))

    def state_dict(self) -> dict:
        """Everything ``step`` depends on, as CPU tensors (checkpoints, exact resume):
        the state, the elapsed-step counters and the generator's state."""
        return {"state": self.state.contiguous().cpu(),
                "elapsed_steps": self.elapsed_steps.cpu(),
                "generator": self.generator.get_state(), "needs_reset": self._needs_reset}

    def load_state_dict(self, state: dict) -> None:
        """Continue exactly where ``state_dict`` was taken (same env, num_envs, device)."""
        self.set_state(state["state"], state["elapsed_steps"])  # checks the shape
        self.generator.set_state(state["generator"])
        self._needs_reset = bool(state["needs_reset"])

    def close(self) -> None:
        """Nothing to release (no subprocesses, no windows)."""

    def __repr__(self) -> str:
        return (
            f"{type(self).__name__}({self.env_id}, num_envs={self.num_envs}, "
            f"device={self.device}, dtype={self.dtype})"
        )

    # ------------------------------------------------------------------- helpers
    def _const(self, values: float | list[float] | list[list[float]]) -> Tensor:
        """A constant tensor of the env's dtype on its device (allocated once, reused)."""
        return torch.tensor(values, **self._factory)

    def _continuous(self, actions: Tensor) -> Tensor:
        """Continuous actions as [N] of the env's dtype (all five tasks have act_dim 1)."""
        actions = torch.as_tensor(actions, device=self.device)
        if actions.dim() == 2:
            actions = actions.squeeze(1)
        if actions.shape != self._batch_shape:
            raise NprlError(
                f"{self.env_id}: expected actions of shape ({self.num_envs}, 1), "
                f"got {tuple(actions.shape)}"
            )
        return actions.to(self.dtype)

    def _discrete(self, actions: Tensor) -> Tensor:
        """Discrete actions as an integer tensor [N] on the env's device."""
        if not (type(actions) is Tensor and actions.dtype in _INDEX_DTYPES
                and actions.device == self.device):  # (the common case costs one test)
            actions = torch.as_tensor(actions, device=self.device)
            if actions.dtype.is_floating_point or actions.dtype == torch.bool:
                actions = actions.long()  # a bool tensor would index as a mask
        if actions.shape != self._batch_shape:
            raise NprlError(
                f"{self.env_id}: expected actions of shape ({self.num_envs},), "
                f"got {tuple(actions.shape)}"
            )
        return actions
