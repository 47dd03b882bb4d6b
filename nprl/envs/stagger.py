"""Staggered time limits: desynchronise the envs' episodes once, at the start of a run.

All envs of a batch reset together. Where episodes have a fixed length (Pendulum-v1's 200
steps, or any task early on, when every episode runs into its time limit), they then stay
in lock-step: a rollout of ``n_steps`` < episode length sees the same phase of the episode
in every env (say steps 0–31 of all 64 episodes), the next rollout the next phase, and
the policy is fitted to a different slice of the task at every update. Starting each
env's time-limit clock at a random offset k ∈ [0, limit) ends its first episode after
limit − k steps, so from the first rollout on the batch covers every phase evenly
(Isaac Gym's legged-robot tasks randomise the initial episode length for the same
reason). The cut is a truncation: GAE bootstraps through it, so the learning targets stay
unbiased; the collector leaves these shortened first episodes out of the episode
statistics (so the first ones it reports end one to two time limits into the run).
Evaluation episodes are never staggered.

It matters for many envs with short rollouts, which the torch-native envs make cheap.
TRPO on Pendulum-v1, 16 seeds, 100k steps, median final return (seeds reaching −200):
64 × 32: −318.5 (6/16) → −169.2 (15/16); 32 × 64: −230.6 (9/16) → −169.6 (16/16);
8 × 256, where a rollout spans a whole episode: −174.5 (16/16) → −168.5 (15/16).
"""

from __future__ import annotations

import numpy as np
import torch
from torch import Tensor

from nprl.envs.base import VecEnv
from nprl.errors import NprlError


def stagger_offsets(num_envs: int, limit: int, seed: int | None) -> Tensor:
    """Offsets [N] int64, uniform on [0, limit): the same for both backends from one seed,
    and a stream of their own (not the env's reset stream, which the seed also starts)."""
    rng = np.random.default_rng(None if seed is None else [int(seed), 0x57A66E])
    return torch.from_numpy(rng.integers(0, limit, size=num_envs))


def stagger_time_limits(env: VecEnv, seed: int | None) -> Tensor:
    """Advance each env's time-limit counter by a random offset (just after ``reset``);
    returns the offsets [N] (0: that env runs a full first episode).

    Needs a time limit: ``TorchVecEnv`` and gymnasium envs registered with
    ``max_episode_steps`` have one. Anything else is an ``NprlError``."""
    limit = getattr(env, "max_episode_steps", None)
    setter = getattr(env, "set_elapsed_steps", None)
    name = getattr(env, "env_id", type(env).__name__)
    if not limit or setter is None:
        raise NprlError(f"stagger_episodes=true: {name} has no time limit to stagger "
                        "(it needs gymnasium's max_episode_steps); set stagger_episodes=false")
    offsets = stagger_offsets(env.num_envs, int(limit), seed)
    setter(offsets.to(env.device))
    return offsets
