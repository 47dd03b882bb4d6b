"""Adapter from a gymnasium vector env to nprl's tensor ``VecEnv`` protocol."""

from __future__ import annotations

import gymnasium as gym
import numpy as np
import torch
from gymnasium.vector import AutoresetMode
from torch import Tensor

from nprl.envs.base import StepResult


class GymVecEnv:
    """Runs ``gymnasium.make_vec(env_id, num_envs, vectorization_mode=...)`` in SAME_STEP
    autoreset mode and moves its arrays to ``device`` as float32 observations.

    ``vectorization`` is ``"sync"`` (one process, default) or ``"async"`` (one subprocess
    per env, worth it only when a single env step is expensive).
    """

    def __init__(
        self,
        env_id: str,
        num_envs: int,
        device: torch.device | str = "cpu",
        vectorization: str = "sync",
        env_kwargs: dict | None = None,
    ) -> None:
        if vectorization not in ("sync", "async"):
            raise ValueError(f"vectorization={vectorization!r}: expected 'sync' or 'async'")
        self.env = gym.make_vec(
            env_id,
            num_envs=num_envs,
            vectorization_mode=vectorization,
            vector_kwargs={"autoreset_mode": AutoresetMode.SAME_STEP},
            **(env_kwargs or {}),
        )
        self.num_envs = num_envs
        self.device = torch.device(device)
        self.single_observation_space = self.env.single_observation_space
        self.single_action_space = self.env.single_action_space
        self._discrete = isinstance(self.single_action_space, gym.spaces.Discrete)

    def _obs(self, obs: np.ndarray) -> Tensor:
        return torch.as_tensor(np.asarray(obs), dtype=torch.float32).to(self.device)

    def reset(self, seed: int | None = None) -> Tensor:
        obs, _ = self.env.reset(seed=seed)
        return self._obs(obs)

    def step(self, actions: Tensor) -> StepResult:
        act = actions.detach().cpu().numpy()
        if self._discrete:
            act = act.astype(np.int64)
        obs, reward, terminated, truncated, info = self.env.step(act)
        final_obs = np.array(obs, copy=True)
        if "_final_obs" in info:
            for i in np.flatnonzero(info["_final_obs"]):
                final_obs[i] = info["final_obs"][i]
        return StepResult(
            obs=self._obs(obs),
            reward=torch.as_tensor(reward, dtype=torch.float32).to(self.device),
            terminated=torch.as_tensor(terminated, dtype=torch.bool).to(self.device),
            truncated=torch.as_tensor(truncated, dtype=torch.bool).to(self.device),
            final_obs=self._obs(final_obs),
        )

    def close(self) -> None:
        self.env.close()
