"""The per-step forward pass of the collector and the evaluation, without module dispatch.

Acting calls the actor once per env step on a few rows (8 Pendulum envs: an [8, 3] input).
At that size each ``nn.Module.__call__`` costs more than its arithmetic: on a CPU an
``ActorCritic.dist_params`` through a 64×64 ``nn.Sequential`` measured ~27 µs, the same
``addmm`` and in-place activations ~8 µs, next to a ~40 µs torch-native env step.
``acting_fn`` returns that direct path when it computes exactly what ``dist_params`` does
(same kernels, bit-identical outputs), and ``policy.dist_params`` itself otherwise: a
custom policy, an actor that is not a plain MLP, or any module with a hook.
"""

from __future__ import annotations

from collections.abc import Callable
from functools import partial

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from nprl.activations import Tanh, tanh_
from nprl.curvature.linearise import mlp_parameters
from nprl.policies import ActorCritic

# In-place activations: the hidden activations are fresh tensors nobody else holds.
_INPLACE: dict[type[nn.Module], Callable[[nn.Module], Callable[[Tensor], Tensor] | None]] = {
    Tanh: lambda m: tanh_,  # nprl's Tanh: the same formula as its forward, bit for bit
    nn.Tanh: lambda m: torch.tanh_,
    nn.Sigmoid: lambda m: torch.sigmoid_,
    nn.ReLU: lambda m: torch.relu_,
    nn.LeakyReLU: lambda m: partial(F.leaky_relu_, negative_slope=m.negative_slope),
    nn.ELU: lambda m: partial(F.elu_, alpha=m.alpha),
    nn.Identity: lambda m: None,
}


def acting_fn(policy) -> Callable[[Tensor], Tensor]:
    """A function obs [B, obs_dim] → ``policy.dist_params(obs)`` for use without autograd
    (inside ``torch.no_grad``/``inference_mode``). Build it once per rollout: it reads the
    parameters in place, so it follows optimiser updates, but not a hook added later."""
    actor = getattr(policy, "actor", None)
    if (getattr(type(policy), "dist_params", None) is not ActorCritic.dist_params
            or mlp_parameters(actor) is None or type(actor[0]) is not nn.Linear
            or any(type(m) not in _INPLACE and type(m) is not nn.Linear for m in actor)):
        return policy.dist_params
    steps: list[tuple[Tensor, Tensor | None] | Callable[[Tensor], Tensor]] = []
    for m in actor:
        if type(m) is nn.Linear:
            steps.append((m.weight.t(), m.bias))  # addmm reads the transpose as a view
        elif (act := _INPLACE[type(m)](m)) is not None:
            steps.append(act)
    log_std = policy.log_std

    def dist_params(obs: Tensor) -> Tensor:
        if obs.dim() != 2:
            return policy.dist_params(obs)
        h = obs
        for step in steps:
            if type(step) is tuple:
                w_t, b = step
                h = torch.addmm(b, h, w_t) if b is not None else torch.mm(h, w_t)
            else:
                h = step(h)
        return h if log_std is None else torch.cat([h, log_std.expand_as(h)], dim=-1)

    return dist_params
