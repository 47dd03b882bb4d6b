"""Typed run configuration: dataclass defaults ← presets ← config file ← ``--set``.

Keys are flat (``max_kl``, ``n_envs``, ``hidden_sizes``); each names exactly one field of
the run, policy or agent section. Unknown keys and wrong types are errors naming the key.
"""

from __future__ import annotations

import math
import types
import typing
from dataclasses import asdict, dataclass, fields
from pathlib import Path
from typing import Any

import tomllib

from nprl.agents import AGENTS
from nprl.errors import NprlError, did_you_mean
from nprl.presets import load_agent_preset, load_env_preset


@dataclass(frozen=True)
class RunConfig:
    """What a run does, independent of the algorithm.

    steps: env-step budget (CartPole ~1e5). n_envs × n_steps: one rollout (8 × 128).
    gamma / gae_lambda: discount (0.99) and GAE λ (0.95).
    device: "auto" (CUDA when present), "cpu" or "cuda". backend: "auto" (torch-native env
    where nprl has one), "torch" or "gymnasium"; vectorization: "sync" or "async".
    normalize_obs / normalize_reward: running observation normalisation, return scaling.
    stagger_episodes: start each env's time limit at a random offset, so that the envs'
        episodes do not run in lock-step (``nprl.envs.stagger``; Acrobot's and Pendulum's
        presets).
    eval_every: env steps between evaluations (0: at the end only); eval_episodes: run in
    parallel as one vector env; solved_threshold: the return that counts as solved;
    stop_when_solved: end the run at the first deterministic evaluation ≥ threshold.
    eval_stochastic: also evaluate the sampling policy (``eval/mean_reward_stochastic``;
        doubles the evaluation time; ``rollout/ep_rew_mean`` already tracks that policy).
    checkpoint_every: updates between checkpoints (0: at the end only); keep_checkpoints.
    max_consecutive_skips: stop the run (NprlError) after this many updates in a row were
    skipped for non-finite values (10).
    torch_threads: intra-op threads (1 is fastest for small MLPs on CPU).
    dist_timeout / dist_check_every: under torchrun, seconds a rank waits for a silent peer
    before failing (300; a dead peer fails at once), and updates between checks that all
    ranks hold identical parameters (10; 0: never). See docs/scaling.md.
    """

    steps: int = 100_000
    n_envs: int = 8
    n_steps: int = 128
    gamma: float = 0.99
    gae_lambda: float = 0.95
    device: str = "auto"
    backend: str = "auto"
    vectorization: str = "sync"
    normalize_obs: bool = False
    normalize_reward: bool = False
    obs_clip: float = 10.0
    stagger_episodes: bool = False
    eval_every: int = 10_000
    eval_episodes: int = 10
    solved_threshold: float | None = None
    stop_when_solved: bool = False
    eval_stochastic: bool = False
    checkpoint_every: int = 0
    keep_checkpoints: int = 3
    max_consecutive_skips: int = 10
    torch_threads: int = 1
    dist_timeout: float = 300.0
    dist_check_every: int = 10


@dataclass(frozen=True)
class PolicyConfig:
    """The actor-critic MLP: hidden_sizes (64, 64), activation "tanh" | "relu" | "elu",
    critic_hidden_sizes (None: same as the actor), init_log_std (0.0: σ = 1)."""

    hidden_sizes: tuple[int, ...] = (64, 64)
    activation: str = "tanh"
    critic_hidden_sizes: tuple[int, ...] | None = None
    init_log_std: float = 0.0


@dataclass(frozen=True)
class Config:
    """Everything that defines a run; ``to_dict`` is plain data (TOML/JSON/checkpoints)."""

    agent_name: str
    env_id: str
    seed: int
    run: RunConfig
    policy: PolicyConfig
    agent: Any

    def to_dict(self) -> dict[str, Any]:
        return {
            "agent_name": self.agent_name, "env_id": self.env_id, "seed": self.seed,
            "run": asdict(self.run), "policy": asdict(self.policy), "agent": asdict(self.agent),
        }

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> Config:
        spec = _agent_spec(d["agent_name"])
        flat = {**d["run"], **d["policy"], **d["agent"]}
        return build(d["agent_name"], d["env_id"], int(d["seed"]), flat, spec.config)

    def flat(self) -> dict[str, Any]:
        return {**asdict(self.run), **asdict(self.policy), **asdict(self.agent)}


def _agent_spec(name: str):
    if name not in AGENTS:
        raise NprlError(
            f"unknown agent {name!r}{did_you_mean(name, AGENTS)}; valid: {', '.join(AGENTS)}"
        )
    return AGENTS[name]


def _sections(agent_cls: type) -> list[type]:
    return [RunConfig, PolicyConfig, agent_cls]


def _field_types(agent_cls: type) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for section in _sections(agent_cls):
        hints = typing.get_type_hints(section)
        out.update({f.name: hints[f.name] for f in fields(section)})
    return out


def parse_value(text: str) -> Any:
    """A ``--set`` value as TOML (``0.02``, ``true``, ``[64, 64]``, ``"relu"``), falling
    back to the bare string (``relu``); ``none`` / ``null`` mean None."""
    if text.strip().lower() in ("none", "null"):
        return None
    try:
        return tomllib.loads(f"v = {text}")["v"]
    except tomllib.TOMLDecodeError:
        return text


def _coerce(key: str, value: Any, hint: Any) -> Any:
    """Check ``value`` against the field's type; ints are accepted for floats."""
    origin, args = typing.get_origin(hint), typing.get_args(hint)
    if origin in (typing.Union, types.UnionType):
        if value is None and type(None) in args:
            return None
        inner = [a for a in args if a is not type(None)]
        return _coerce(key, value, inner[0])
    if origin is tuple:
        if isinstance(value, list | tuple) and all(
            isinstance(v, int) and not isinstance(v, bool) for v in value
        ):
            return tuple(value)
        raise NprlError(f"{key}={value!r}: expected a list of integers, e.g. [64, 64]")
    if hint is bool:
        if isinstance(value, bool):
            return value
        raise NprlError(f"{key}={value!r}: expected true or false")
    if hint is int:
        if isinstance(value, int) and not isinstance(value, bool):
            return value
        if isinstance(value, float) and value.is_integer() and math.isfinite(value):
            return int(value)
        raise NprlError(f"{key}={value!r}: expected an integer")
    if hint is float:
        if isinstance(value, int | float) and not isinstance(value, bool):
            return float(value)
        raise NprlError(f"{key}={value!r}: expected a number")
    if hint is str:
        if isinstance(value, str):
            return value
        raise NprlError(f"{key}={value!r}: expected a string")
    return value


def _check_ranges(cfg: Config) -> None:
    """Reject values that make no sense, naming the key and what would be valid."""
    v = cfg.flat()

    def need(key: str, ok: bool, valid: str) -> None:
        if key in v and not ok:
            raise NprlError(f"{key}={v[key]!r}: expected {valid}")

    def finite(x: Any) -> bool:
        return isinstance(x, int | float) and math.isfinite(x)

    for key in ("steps", "n_envs", "n_steps", "eval_episodes", "torch_threads", "keep_checkpoints",
                "cg_iters", "vf_epochs", "vf_minibatches", "n_epochs", "n_minibatches",
                "max_consecutive_skips"):
        need(key, isinstance(v.get(key), int) and v[key] > 0, "a positive integer")
    for key in ("eval_every", "checkpoint_every", "max_backtracks", "dist_check_every"):
        need(key, isinstance(v.get(key), int) and v[key] >= 0, "an integer ≥ 0")
    need("gamma", finite(v.get("gamma")) and 0 < v["gamma"] <= 1, "a number in (0, 1]")
    need("gae_lambda", finite(v.get("gae_lambda")) and 0 <= v["gae_lambda"] <= 1,
         "a number in [0, 1]")
    for key in ("max_kl", "lr", "vf_lr", "clip_range", "obs_clip", "max_grad_norm",
                "dist_timeout"):
        need(key, finite(v.get(key)) and v[key] > 0, "a positive finite number")
    for key in ("cg_damping", "cg_tol", "ent_coef", "vf_coef", "accept_ratio", "kfac_damping",
                "vf_damping", "momentum"):
        need(key, finite(v.get(key)) and v[key] >= 0, "a finite number ≥ 0")
    need("max_kl_end", v.get("max_kl_end") is None or (finite(v["max_kl_end"])
                                                      and v["max_kl_end"] > 0),
         "a positive finite number or none")
    for key in ("target_kl", "clip_range_vf", "solved_threshold"):
        need(key, v.get(key) is None or finite(v[key]), "a finite number or none")
    need("backtrack_coef", finite(v.get("backtrack_coef")) and 0 < v["backtrack_coef"] < 1,
         "a number in (0, 1)")
    need("kl_clip", finite(v.get("kl_clip")) and v["kl_clip"] > 0, "a positive finite number")
    for key in ("inverse_every", "g_samples", "vf_iters"):
        need(key, isinstance(v.get(key), int) and v[key] > 0, "a positive integer")
    for key in ("kfac_decay", "momentum"):
        need(key, finite(v.get(key)) and 0 <= v[key] < 1, "a number in [0, 1)")
    need("fisher_fraction", finite(v.get("fisher_fraction")) and 0 < v["fisher_fraction"] <= 1,
         "a number in (0, 1]")
    choices = {"device": ("auto", "cpu", "cuda"), "backend": ("auto", "torch", "gymnasium"),
               "vectorization": ("sync", "async"), "damping": ("fixed", "adaptive"),
               "fisher": ("true", "empirical"), "activation": ("tanh", "relu", "elu"),
               "precondition": ("none", "diagonal", "kfac"), "g_mode": ("exact", "mc"),
               "kfac_damping_form": ("eigen", "factored"), "kl_curvature": ("kfac", "exact")}
    for key, valid in choices.items():
        need(key, v.get(key) in valid, "one of " + ", ".join(valid))
    for key in ("hidden_sizes", "critic_hidden_sizes"):
        need(key, v.get(key) is None or all(h > 0 for h in v[key]), "positive layer widths")
    need("hidden_sizes", len(v["hidden_sizes"]) > 0, "at least one hidden layer")


def build(agent_name: str, env_id: str, seed: int, values: dict[str, Any],
          agent_cls: type | None = None, origin: str = "") -> Config:
    """A checked ``Config`` from flat ``values`` (unknown keys and bad types are errors)."""
    agent_cls = agent_cls or _agent_spec(agent_name).config
    hints = _field_types(agent_cls)
    where = f" in {origin}" if origin else ""
    for key in values:
        if key not in hints:
            raise NprlError(f"unknown config key {key!r}{where}{did_you_mean(key, hints)}")
    typed = {k: _coerce(k, val, hints[k]) for k, val in values.items()}
    sections = []
    for section in _sections(agent_cls):
        names = {f.name for f in fields(section)}
        sections.append(section(**{k: v for k, v in typed.items() if k in names}))
    if isinstance(seed, bool) or not isinstance(seed, int) or seed < 0:
        raise NprlError(f"seed={seed!r}: expected an integer ≥ 0")
    cfg = Config(agent_name, env_id, seed, *sections)
    _check_ranges(cfg)
    return cfg


def load_toml(path: str | Path) -> dict[str, Any]:
    """A flat TOML config file (``key = value`` lines), errors as one line."""
    try:
        return tomllib.loads(Path(path).read_text())
    except FileNotFoundError:
        raise NprlError(f"config file {str(path)!r} does not exist") from None
    except (tomllib.TOMLDecodeError, UnicodeDecodeError) as e:
        raise NprlError(f"malformed TOML in {str(path)!r}: {e}") from None


def resolve(agent_name: str, env_id: str, seed: int = 0, overrides: dict[str, Any] | None = None,
            config_file: str | Path | None = None) -> Config:
    """Defaults ← agent preset [defaults] ← env preset ← agent preset [env.<id>]
    ← ``config_file`` ← ``overrides``; each layer checked on its own so errors name it."""
    spec = _agent_spec(agent_name)
    agent_preset, agent_origin = load_agent_preset(agent_name)
    env_preset, env_origin = load_env_preset(env_id)
    layers = [
        (agent_preset.get("defaults", {}), agent_origin),
        (env_preset, env_origin),
        (agent_preset.get("env", {}).get(env_id, {}), agent_origin),
    ]
    if config_file is not None:
        layers.append((load_toml(config_file), str(config_file)))
    layers.append((overrides or {}, "--set"))
    values: dict[str, Any] = {}
    for layer, origin in layers:
        build(agent_name, env_id, seed, {**values, **layer}, spec.config, origin)
        values.update(layer)
    return build(agent_name, env_id, seed, values, spec.config)
