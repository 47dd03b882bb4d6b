"""``nprl eval``: rebuild a policy from a checkpoint and evaluate it."""

from __future__ import annotations

from pathlib import Path

import torch

from nprl.checkpoint import load_checkpoint
from nprl.config import Config
from nprl.envs import make_env
from nprl.errors import NprlError
from nprl.evaluation import EvalResult, evaluate
from nprl.normalize import ObsNormalizer
from nprl.policies import ActorCritic
from nprl.trainer import resolve_device


def restore_policy(state: dict, env, device: torch.device) -> tuple[ActorCritic, ObsNormalizer]:
    """The checkpoint's policy (and observation normaliser) for ``env``; refuses a
    checkpoint made for another observation shape or action space."""
    cfg = Config.from_dict(state["config"])
    shape = list(env.single_observation_space.shape)
    if list(state.get("obs_shape", shape)) != shape:
        raise NprlError(f"checkpoint was made for observations of shape {state['obs_shape']}, "
                        f"but {cfg.env_id} gives {shape}")
    p = cfg.policy
    policy = ActorCritic(env.single_observation_space, env.single_action_space, p.hidden_sizes,
                         p.activation, p.critic_hidden_sizes, p.init_log_std).to(device)
    try:
        policy.load_state_dict(state["policy"])
    except (RuntimeError, KeyError) as e:
        first = str(e).splitlines()[0]
        raise NprlError(f"checkpoint policy does not fit {cfg.env_id}: {first}") from None
    obs_norm = None
    if state.get("obs_norm") is not None:
        obs_norm = ObsNormalizer(tuple(shape), device=device)
        obs_norm.load_state_dict(state["obs_norm"])
    return policy, obs_norm


def evaluate_checkpoint(path: str | Path, episodes: int = 10, deterministic: bool = True,
                        device: str = "cpu", seed: int = 0) -> EvalResult:
    if episodes < 1:
        raise NprlError(f"--episodes {episodes}: expected a positive integer")
    dev = resolve_device(device)
    state = load_checkpoint(path, dev)
    try:
        cfg = Config.from_dict(state["config"])
    except (KeyError, TypeError) as e:
        raise NprlError(f"checkpoint {str(path)!r} has no valid config ({e})") from None
    env = make_env(cfg.env_id, episodes, dev, cfg.run.backend, cfg.run.vectorization)
    try:
        policy, obs_norm = restore_policy(state, env, dev)
        torch.manual_seed(seed)
        return evaluate(env, policy, obs_norm, deterministic, seed)
    finally:
        env.close()
