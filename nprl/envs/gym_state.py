"""Save and restore the state of gymnasium envs as plain data (exact resume).

Supported are envs whose whole dynamic state is plain Python/NumPy attributes of the
unwrapped env: gymnasium's classic-control tasks (``state``, CartPole's
``steps_beyond_terminated``, Pendulum's ``last_u``) and simple custom envs. What is saved
per env: those attributes, the ``TimeLimit`` wrapper's elapsed steps, and the env's NumPy
generator state (``np_random.bit_generator.state``, plain ints and strings).

Envs holding simulator objects (Box2D worlds, MuJoCo data) cannot be captured this way:
``capture`` returns None for them and a resumed run restarts their episodes instead.
"""

from __future__ import annotations

from typing import Any

import gymnasium as gym
import numpy as np
from gymnasium.wrappers import TimeLimit

from nprl.plain import from_plain, to_plain

# Attributes that are configuration or handles, never dynamic state worth restoring.
_SKIP = {"_np_random", "spec", "render_mode", "metadata", "screen", "clock", "surf", "viewer",
         "window"}
_PLAIN = (type(None), bool, int, float, str, np.ndarray, np.generic)


def _time_limit(env: gym.Env) -> TimeLimit | None:
    while True:
        if isinstance(env, TimeLimit):
            return env
        if not hasattr(env, "env"):
            return None
        env = env.env


def capture(env: gym.Env) -> dict[str, Any] | None:
    """One (wrapped) env's dynamic state, or None if it holds non-plain objects."""
    u = env.unwrapped
    attrs: dict[str, Any] = {}
    for name, value in vars(u).items():
        if name in _SKIP or isinstance(value, gym.Space):
            continue
        plain_tuple = isinstance(value, tuple) and all(isinstance(v, _PLAIN) for v in value)
        if not (plain_tuple or isinstance(value, _PLAIN)):
            return None  # e.g. a Box2D world: its state cannot be saved as plain data
        attrs[name] = value
    limit = _time_limit(env)
    return to_plain({
        "attrs": attrs,
        "elapsed_steps": None if limit is None else limit._elapsed_steps,
        "np_random": u.np_random.bit_generator.state,
    })


def restore(env: gym.Env, state: dict[str, Any]) -> None:
    """Put back what ``capture`` returned for the same kind of env."""
    state = from_plain(state)
    u = env.unwrapped
    for name, value in state["attrs"].items():
        setattr(u, name, value)
    limit = _time_limit(env)
    if limit is not None:
        limit._elapsed_steps = state["elapsed_steps"]
    u.np_random.bit_generator.state = state["np_random"]
