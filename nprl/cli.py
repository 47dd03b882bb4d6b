"""The ``nprl`` command: ``train``, ``eval`` (and ``compare``, ``plot`` where installed).

Bad input is one line on stderr and exit code 2, never a traceback.
"""

from __future__ import annotations

import argparse
import sys
import warnings
from collections.abc import Sequence
from typing import Any, NoReturn

from nprl.errors import NprlError

EPILOG = "Config keys for --set: see `nprl keys` or nprl/agents/configs.py and nprl/config.py."


class Parser(argparse.ArgumentParser):
    """argparse, but usage errors are a single line (exit code 2)."""

    def error(self, message: str) -> NoReturn:
        self.exit(2, f"{self.prog}: error: {message} (see --help)\n")


def parse_sets(items: Sequence[str]) -> dict[str, Any]:
    from nprl.config import parse_value

    out = {}
    for item in items:
        key, sep, value = item.partition("=")
        if not sep or not key.strip():
            raise NprlError(f"--set {item!r}: expected key=value, e.g. --set max_kl=0.02")
        out[key.strip()] = parse_value(value.strip())
    return out


def check_resume_args(args: argparse.Namespace) -> None:
    """--resume takes the run's identity from its checkpoint; naming it again is an error
    rather than silently ignored."""
    given = [name for name, value in (("AGENT/ENV", args.agent or args.env),
                                      ("--seed", args.seed is not None),
                                      ("--config", args.config), ("--logdir", args.logdir),
                                      ("--run-name", args.run_name), ("--force", args.force))
             if value]
    if given:
        raise NprlError(f"--resume continues the run as it was: drop {', '.join(given)} "
                        "(only --steps and --set of safe keys may change)")


def cmd_train(args: argparse.Namespace) -> int:
    from nprl.config import resolve
    from nprl.trainer import Trainer

    overrides = parse_sets(args.set)
    for key in ("steps", "n_envs", "device"):
        if getattr(args, key) is not None:
            overrides[key] = getattr(args, key)
    if args.resume:
        from nprl.resume import resume_trainer

        check_resume_args(args)
        trainer = resume_trainer(args.resume, overrides, progress=not args.no_progress)
    else:
        cfg = resolve(args.agent, args.env, 0 if args.seed is None else args.seed, overrides,
                      args.config)
        trainer = Trainer(cfg, args.logdir or "runs", args.run_name,
                          progress=not args.no_progress, force=args.force)
    result = trainer.run()
    if not trainer.parallel.is_main:
        return 0  # under torchrun rank 0 reports
    ev = result.final_eval
    print(f"run: {result.run_dir}")
    if ev is not None:
        print(f"final deterministic eval: {ev.mean:.1f} ± {ev.std:.1f} over {len(ev.returns)} "
              f"episodes after {result.steps} steps ({result.seconds:.1f} s)")
    if result.solved_step is not None:
        print(f"solved (≥ {result.config.run.solved_threshold:g}) at {result.solved_step} steps, "
              f"{result.solved_seconds:.1f} s")
    return 0


def cmd_eval(args: argparse.Namespace) -> int:
    from nprl.evaluate_checkpoint import evaluate_checkpoint

    res = evaluate_checkpoint(args.checkpoint, args.episodes, not args.stochastic, args.device,
                              args.seed)
    mode = "stochastic" if args.stochastic else "deterministic"
    print(f"{mode} eval: {res.mean:.2f} ± {res.std:.2f} over {len(res.returns)} episodes "
          f"(mean length {sum(res.lengths) / len(res.lengths):.1f})")
    return 0


def cmd_keys(args: argparse.Namespace) -> int:
    from nprl.config import resolve

    cfg = resolve(args.agent, args.env)
    for key, value in cfg.flat().items():
        print(f"{key} = {value!r}")
    return 0


def build_parser() -> Parser:
    from nprl.agents import AGENTS

    parser = Parser(prog="nprl", description="Natural-gradient RL: NPG, TRPO, PPO on gymnasium.",
                    epilog=EPILOG)
    sub = parser.add_subparsers(dest="command", required=True, parser_class=Parser)

    t = sub.add_parser("train", help="train an agent; logs under runs/<env>/<agent>-s<seed>-*/",
                       description="Train AGENT on the gymnasium task ENV.", epilog=EPILOG)
    t.add_argument("agent", nargs="?", help=f"algorithm: {', '.join(AGENTS)}")
    t.add_argument("env", nargs="?", help="gymnasium id, e.g. CartPole-v1, Pendulum-v1")
    t.add_argument("--seed", type=int, help="seed for torch, numpy and envs (0)")
    t.add_argument("--steps", type=int, help="env-step budget (preset; CartPole 100000)")
    t.add_argument("--n-envs", dest="n_envs", type=int, help="parallel envs per rollout")
    t.add_argument("--device", choices=("auto", "cpu", "cuda"),
                   help="auto picks CUDA when present (preset: auto)")
    t.add_argument("--set", action="append", default=[], metavar="KEY=VALUE",
                   help="override any config key, e.g. --set max_kl=0.02 (repeatable)")
    t.add_argument("--config", metavar="FILE", help="TOML file of key = value overrides")
    t.add_argument("--logdir", help="TensorBoard root (runs)")
    t.add_argument("--run-name", help="directory under --logdir instead of <env>/<agent>-s<seed>-*")
    t.add_argument("--force", action="store_true", help="reuse an existing --run-name directory")
    t.add_argument("--resume", metavar="RUN_DIR",
                   help="continue a run (or a checkpoint file) exactly where it stopped; "
                        "only --steps and --set of safe keys (eval_every, ...) may change")
    t.add_argument("--no-progress", action="store_true", help="no progress bar")
    t.set_defaults(func=cmd_train)

    e = sub.add_parser("eval", help="evaluate a checkpoint",
                       description="Evaluate a checkpoint file or a run directory's newest one.")
    e.add_argument("checkpoint", help="checkpoint .pt file or run directory")
    e.add_argument("--episodes", type=int, default=10, help="episodes, run in parallel (10)")
    e.add_argument("--deterministic", action="store_true",
                   help="act with the distribution's mode (the default)")
    e.add_argument("--stochastic", action="store_true", help="sample actions instead")
    e.add_argument("--device", choices=("auto", "cpu", "cuda"), default="cpu", help="(cpu)")
    e.add_argument("--seed", type=int, default=0, help="seed of the evaluation episodes (0)")
    e.set_defaults(func=cmd_eval)

    k = sub.add_parser("keys", help="print the resolved config keys for AGENT ENV")
    k.add_argument("agent")
    k.add_argument("env")
    k.set_defaults(func=cmd_keys)

    for extra in ("nprl.compare_cli",):
        try:
            module = __import__(extra, fromlist=["register"])
        except ImportError:
            continue
        module.register(sub)
    return parser


def _format_warning(message, category, filename, lineno, line=None) -> str:
    """nprl's own warnings as one line, like its errors; others as Python formats them."""
    from nprl.errors import NprlWarning

    if issubclass(category, NprlWarning):
        return f"nprl: warning: {message}\n"
    return _python_format(message, category, filename, lineno, line)


_python_format = warnings.formatwarning


def main(argv: Sequence[str] | None = None) -> int:
    warnings.formatwarning = _format_warning
    parser = build_parser()
    args = parser.parse_args(argv)
    if args.command == "train" and not args.resume and (args.agent is None or args.env is None):
        parser.exit(2, "nprl train: error: AGENT and ENV are required (or --resume RUN_DIR)\n")
    try:
        return args.func(args)
    except NprlError as e:
        print(f"nprl: error: {e}", file=sys.stderr)
        return 2
    except KeyboardInterrupt as e:
        detail = f" ({e.args[0]})" if e.args else ""
        print(f"nprl: interrupted{detail}", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
