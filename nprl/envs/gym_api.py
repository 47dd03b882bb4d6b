"""``nprl.envs.make_vec``: a gymnasium ``VectorEnv`` for any task id, torch-native where
nprl has the task.

For the ids in ``TORCH_ENVS`` (CartPole-v1, Acrobot-v1, MountainCar-v0,
MountainCarContinuous-v0, Pendulum-v1) the env is ``TorchVectorEnv``: gymnasium's vector
API over nprl's batched torch env, whose arrays are **torch tensors on ``device``**
(observations and rewards float32, terminations/truncations bool), and which accepts
actions as tensors or numpy arrays. For every other id it is gymnasium's own
``SyncVectorEnv`` (numpy arrays). Both auto-reset in gymnasium's ``SAME_STEP`` mode: the
observation returned for an env whose episode just ended is already the first one of its
next episode, and ``infos["final_obs"]`` holds the observation that ended it.
"""

from __future__ import annotations

from typing import Any

import gymnasium as gym
import numpy as np
import torch
from gymnasium.vector import AutoresetMode
from gymnasium.vector.utils import batch_space
from torch import Tensor

from nprl.envs.registry import TORCH_ENVS
from nprl.envs.torch_base import TorchVecEnv
from nprl.errors import NprlError


class TorchVectorEnv(gym.vector.VectorEnv):
    """gymnasium's ``VectorEnv`` interface over an nprl ``TorchVecEnv``.

    ``reset(seed=...)`` returns ``(obs, {})`` and ``step(actions)`` returns
    ``(obs, rewards, terminations, truncations, infos)``, all torch tensors on ``device``.
    Unlike gymnasium's ``SyncVectorEnv`` (which adds ``final_obs`` as a numpy object array
    only on steps where some episode ended), ``infos`` always holds
    ``"final_obs"`` [N, obs_dim], the observation each env reached in this step (equal to
    ``obs`` where the episode goes on), and ``"_final_obs"`` [N] bool, which envs ended:
    that keeps the step free of host synchronisation.
    """

    metadata: dict[str, Any] = {"autoreset_mode": AutoresetMode.SAME_STEP, "render_modes": []}

    def __init__(self, env: TorchVecEnv) -> None:
        self.env = env
        self.num_envs = env.num_envs
        self.device = env.device
        self.single_observation_space = env.single_observation_space
        self.single_action_space = env.single_action_space
        self.observation_space = batch_space(self.single_observation_space, self.num_envs)
        self.action_space = batch_space(self.single_action_space, self.num_envs)
        self.spec = gym.spec(env.env_id) if env.env_id in gym.registry else None

    def reset(
        self, *, seed: int | None = None, options: dict[str, Any] | None = None
    ) -> tuple[Tensor, dict[str, Any]]:
        """Reset every env. seed: an int (one random stream for the batch; per-env seed
        lists are not supported). options: not supported (must be None)."""
        if options:
            raise NprlError(f"{self.env.env_id}: reset options are not supported ({options})")
        if seed is not None and not isinstance(seed, (int, np.integer)):
            raise NprlError(f"seed={seed!r}: expected one int for the whole batch")
        super().reset(seed=seed)  # seeds self.np_random, as gymnasium's vector envs do
        return self.env.reset(seed=seed), {}

    def step(
        self, actions: Tensor | np.ndarray
    ) -> tuple[Tensor, Tensor, Tensor, Tensor, dict[str, Any]]:
        """Advance every env; actions [N] (discrete) or [N, act_dim], tensor or array."""
        result = self.env.step(torch.as_tensor(actions, device=self.device))
        infos = {
            "final_obs": result.final_obs,
            "_final_obs": result.terminated | result.truncated,
        }
        return result.obs, result.reward, result.terminated, result.truncated, infos

    def close_extras(self, **kwargs: Any) -> None:
        self.env.close()

    def __repr__(self) -> str:
        return f"TorchVectorEnv({self.env!r})"


def make_vec(
    env_id: str,
    num_envs: int,
    device: torch.device | str = "cpu",
    seed: int | None = None,
) -> gym.vector.VectorEnv:
    """``num_envs`` copies of ``env_id`` as a gymnasium ``VectorEnv`` in SAME_STEP mode.

    Torch-native (``TorchVectorEnv``: torch tensors on ``device``) when nprl implements the
    id, else ``gymnasium.make_vec(env_id, num_envs, vectorization_mode="sync")`` (numpy
    arrays; ``device`` is then unused).

    seed: if given, seeds the envs' random stream and ``action_space`` now, so that the
    episodes after ``reset()`` (with or without a seed) and ``action_space.sample()`` are
    reproducible. Typical use::

        envs = make_vec("CartPole-v1", 256, seed=0)
        obs, _ = envs.reset()
        obs, reward, terminated, truncated, infos = envs.step(envs.action_space.sample())
    """
    from nprl.envs import check_env_id  # here to avoid an import cycle

    check_env_id(env_id)
    if num_envs < 1:
        raise NprlError(f"num_envs={num_envs}: expected a positive integer")
    if env_id in TORCH_ENVS:
        envs: gym.vector.VectorEnv = TorchVectorEnv(TORCH_ENVS[env_id](num_envs, device=device))
    else:
        envs = gym.make_vec(
            env_id,
            num_envs=num_envs,
            vectorization_mode="sync",
            vector_kwargs={"autoreset_mode": AutoresetMode.SAME_STEP},
        )
    if seed is not None:
        envs.reset(seed=seed)
        envs.action_space.seed(seed)
    return envs
