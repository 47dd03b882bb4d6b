"""Adapter from a gymnasium vector env to nprl's tensor ``VecEnv`` protocol."""

from __future__ import annotations

import gymnasium as gym
import numpy as np
import torch
from gymnasium.vector import AutoresetMode
from torch import Tensor

from nprl.envs import gym_state
from nprl.envs.base import StepResult
from nprl.errors import NprlError


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
        self.env_id, self.env_kwargs = env_id, dict(env_kwargs or {})
        self.num_envs = num_envs
        self.device = torch.device(device)
        self.single_observation_space = self.env.single_observation_space
        self.single_action_space = self.env.single_action_space
        self._discrete = isinstance(self.single_action_space, gym.spaces.Discrete)
        self._obs_shape = (num_envs, *self.single_observation_space.shape)

    def _obs(self, obs: np.ndarray) -> Tensor:
        obs = np.asarray(obs)
        if obs.shape != self._obs_shape:  # a tuple comparison: free next to the copy
            raise NprlError(f"{self.env_id}: the vector env returned observations of shape "
                            f"{obs.shape}, expected {self._obs_shape}")
        return torch.as_tensor(obs, dtype=torch.float32).to(self.device)

    def reset(self, seed: int | None = None) -> Tensor:
        """Reset every env. gymnasium seeds sub-env i with ``seed + i``, so seeds s and
        s + 1 would share all but one env's random stream: runs with neighbouring
        ``--seed`` values would replay each other's start states, and consecutive
        evaluations (seeds s, s + 1, ...) would reuse 9 of 10 start states. One seed is
        spread into independent per-env seeds instead (``numpy.random.SeedSequence``)."""
        seeds = None if seed is None else [
            int(s) for s in np.random.SeedSequence(seed).generate_state(self.num_envs)]
        try:
            obs, _ = self.env.reset(seed=seeds)
        except ValueError as e:
            raise self._diagnose(e) from None
        return self._obs(obs)

    def step(self, actions: Tensor) -> StepResult:
        act = actions.detach().cpu().numpy()
        if self._discrete:
            act = act.astype(np.int64)
        try:
            obs, reward, terminated, truncated, info = self.env.step(act)
        except ValueError as e:
            raise self._diagnose(e) from None
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

    def _diagnose(self, error: ValueError) -> Exception:
        """gymnasium reports an observation of the wrong shape only as a failed array copy
        ("Output array is the wrong shape"). Find the culprit on a fresh single env, off
        the hot path, and name the declared and the actual shape."""
        expected = self.single_observation_space.shape
        probe = gym.make(self.env_id, **self.env_kwargs)
        try:
            obs, _ = probe.reset(seed=0)
            for _ in range(1000):
                if np.shape(obs) != expected:
                    return NprlError(f"{self.env_id} returned an observation of shape "
                                     f"{np.shape(obs)}, but its observation space declares "
                                     f"{expected}")
                obs, _, terminated, truncated, _ = probe.step(probe.action_space.sample())
                if terminated or truncated:
                    obs, _ = probe.reset()
        except Exception:  # the probe is best effort; report the original error below
            pass
        finally:
            probe.close()
        return error

    @property
    def max_episode_steps(self) -> int | None:
        """The ``TimeLimit`` of the sub-envs (``gym.make``'s registration), None without."""
        try:
            limit = self.env.get_attr("_max_episode_steps")[0]
        except AttributeError:
            return None
        return None if limit is None else int(limit)

    def set_elapsed_steps(self, elapsed_steps: Tensor) -> None:
        """Set each sub-env's ``TimeLimit`` counter ([N]), as ``TorchVecEnv`` does."""
        self.env.set_attr("_elapsed_steps", [int(s) for s in elapsed_steps.tolist()])

    def state_dict(self) -> dict | None:
        """Each env's state as plain data (see ``nprl.envs.gym_state``), or None where it
        cannot be captured (async envs live in subprocesses; simulator-backed envs)."""
        if not isinstance(self.env, gym.vector.SyncVectorEnv):
            return None
        states = [gym_state.capture(e) for e in self.env.envs]
        return None if any(s is None for s in states) else {"envs": states}

    def load_state_dict(self, state: dict) -> None:
        envs = getattr(self.env, "envs", [])
        if len(state["envs"]) != len(envs):
            raise NprlError(f"{self.env_id}: saved state holds {len(state['envs'])} envs, "
                            f"this vector env has {len(envs)}")
        for env, s in zip(envs, state["envs"]):
            gym_state.restore(env, s)

    def close(self) -> None:
        self.env.close()
