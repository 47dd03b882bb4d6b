"""Actor-critic MLP policies built from gymnasium spaces.

The actor maps an observation to the flat distribution parameters of its family
(``nprl.distributions``); the critic is a separate MLP to a scalar value. The Gaussian
log-std is one state-independent parameter vector, part of the actor.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import gymnasium as gym
import numpy as np
import torch
from torch import Tensor, nn
from torch.distributions import Distribution

from nprl.activations import Tanh
from nprl.distributions import DiagGaussian, family_for

# "tanh" is nprl's Tanh: nn.Tanh's function by a formula ~5× cheaper on a CPU (nprl.activations)
ACTIVATIONS: dict[str, type[nn.Module]] = {"tanh": Tanh, "relu": nn.ReLU, "elu": nn.ELU}


def mlp(sizes: Sequence[int], activation: str, out_gain: float) -> nn.Sequential:
    """Linear layers with ``activation`` between them; orthogonal init (hidden gain √2,
    output gain ``out_gain``, zero biases), the initialisation PPO/TRPO baselines use."""
    if activation not in ACTIVATIONS:
        raise ValueError(f"activation={activation!r}: expected one of {', '.join(ACTIVATIONS)}")
    layers: list[nn.Module] = []
    for i, (fan_in, fan_out) in enumerate(zip(sizes[:-1], sizes[1:])):
        last = i == len(sizes) - 2
        linear = nn.Linear(fan_in, fan_out)
        nn.init.orthogonal_(linear.weight, gain=out_gain if last else math.sqrt(2))
        nn.init.zeros_(linear.bias)
        layers.append(linear)
        if not last:
            layers.append(ACTIVATIONS[activation]())
    return nn.Sequential(*layers)


class ActorCritic(nn.Module):
    """Separate actor and critic MLPs for a Box observation space.

    hidden_sizes: actor widths, typically (64, 64); critic_hidden_sizes defaults to the same.
    init_log_std: initial Gaussian log-std (0.0 → σ = 1), ignored for discrete actions.
    """

    def __init__(
        self,
        observation_space: gym.Space,
        action_space: gym.Space,
        hidden_sizes: Sequence[int] = (64, 64),
        activation: str = "tanh",
        critic_hidden_sizes: Sequence[int] | None = None,
        init_log_std: float = 0.0,
    ) -> None:
        super().__init__()
        if not isinstance(observation_space, gym.spaces.Box):
            raise ValueError(
                f"unsupported observation space {observation_space!r}: nprl policies take a Box"
            )
        self.obs_dim = int(np.prod(observation_space.shape))
        self.family = family_for(action_space)
        self.gaussian = isinstance(self.family, DiagGaussian)
        head = self.family.dim if self.gaussian else self.family.param_dim
        self.actor = mlp([self.obs_dim, *hidden_sizes, head], activation, out_gain=0.01)
        critic_sizes = hidden_sizes if critic_hidden_sizes is None else critic_hidden_sizes
        self.critic = mlp([self.obs_dim, *critic_sizes, 1], activation, out_gain=1.0)
        self.log_std = (
            nn.Parameter(torch.full((self.family.dim,), float(init_log_std)))
            if self.gaussian
            else None
        )

    def actor_parameters(self) -> list[nn.Parameter]:
        """The parameters the Fisher is taken over, in a fixed order: actor MLP, log-std."""
        params = list(self.actor.parameters())
        return params + [self.log_std] if self.log_std is not None else params

    def critic_parameters(self) -> list[nn.Parameter]:
        return list(self.critic.parameters())

    def dist_params(self, obs: Tensor) -> Tensor:
        """Flat distribution parameters [B, P] for observations [B, obs_dim]."""
        out = self.actor(obs.flatten(1) if obs.dim() > 2 else obs)
        if self.log_std is None:
            return out
        return torch.cat([out, self.log_std.expand_as(out)], dim=-1)

    def forward(self, obs: Tensor) -> Tensor:
        """The actor's output, ``dist_params`` (so ``torch.func.functional_call`` works)."""
        return self.dist_params(obs)

    def dist(self, obs: Tensor) -> Distribution:
        return self.family.dist(self.dist_params(obs))

    def value(self, obs: Tensor) -> Tensor:
        return self.critic(obs.flatten(1) if obs.dim() > 2 else obs).squeeze(-1)

    @torch.no_grad()
    def act(self, obs: Tensor, deterministic: bool = False) -> tuple[Tensor, Tensor, Tensor]:
        """(action, log_prob, dist_params) for a batch of observations."""
        params = self.dist_params(obs)
        action = self.family.mode(params) if deterministic else self.family.sample(params)
        return action, self.family.log_prob(params, action), params
