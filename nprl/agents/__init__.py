"""Agents: each exposes ``update(batch) -> dict of named scalars`` and ``state_dict``.

NPG and TRPO are one ``NaturalGradient`` class (TRPO turns the line search on); ACKTR
(``ACKTR``) swaps CG for K-FAC curvature and clips the step's KL; PPO is separate.
``AGENTS`` maps a CLI name to (config class, builder).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from nprl.agents.acktr import ACKTR
from nprl.agents.configs import ACKTRConfig, NPGConfig, PPOConfig, TRPOConfig
from nprl.agents.natural import NaturalGradient
from nprl.agents.ppo import PPO


@dataclass(frozen=True)
class AgentSpec:
    config: type
    build: Callable[[Any, Any, int], Any]  # (policy, config, total_updates) -> agent
    natural: bool  # logs the curvature diagnostics


AGENTS: dict[str, AgentSpec] = {
    "npg": AgentSpec(NPGConfig, lambda p, c, n: NaturalGradient(p, c, n), True),
    "trpo": AgentSpec(TRPOConfig, lambda p, c, n: NaturalGradient(p, c, n), True),
    "acktr": AgentSpec(ACKTRConfig, lambda p, c, n: ACKTR(p, c), True),
    "ppo": AgentSpec(PPOConfig, lambda p, c, n: PPO(p, c, n), False),
}

__all__ = ["AGENTS", "AgentSpec", "NPGConfig", "TRPOConfig", "ACKTRConfig", "PPOConfig",
           "NaturalGradient", "ACKTR", "PPO"]
