"""Benchmark: env steps per second of nprl's torch-native classic-control envs against
gymnasium's vector envs, on CPU.

For each of CartPole-v1, Acrobot-v1, MountainCar-v0, MountainCarContinuous-v0 and
Pendulum-v1, at 1, 16, 256 and 4,096 envs, it times

- ``nprl``  ``TORCH_ENVS[id](n)``, the torch env ``make_env`` returns (SAME_STEP auto-reset
            inside the step, float32), stepped under ``torch.inference_mode()`` as the
            collector and the evaluation step it;
- ``gym``   ``gymnasium.make_vec(id, n)``: ``vectorization_mode="vector_entry_point"`` for
            the ids gymnasium 1.4 registers a numpy-vectorised env for (only CartPole of
            these five), ``"sync"`` (a Python loop over ``n`` envs) otherwise; gymnasium's
            default NEXT_STEP auto-reset;

and prints env steps/s (= n × vector steps/s) and the ratio nprl / gym, measured in the
same run. Random actions are drawn before timing (a pool of 64 batches, cycled), so only
``step`` is timed. Timing: ``time.perf_counter`` around blocks of steps lasting ≥ ~40 ms,
the two backends interleaved over several rounds, best block kept (the least disturbed
by other processes). Warm-up steps first.

Targets (issue 5): at 256 envs, nprl ≥ 10× gym (sync) for Acrobot, MountainCar,
MountainCarContinuous and Pendulum, and ≥ 1× gym's vectorised CartPole.

    python scripts/bench_envs.py                 # full grid, ~1-2 min
    python scripts/bench_envs.py --quick         # fewer rounds
    python scripts/bench_envs.py --threads 2     # torch intra-op threads (default 1)
    python scripts/bench_envs.py --envs CartPole-v1 --sizes 256 4096
"""

from __future__ import annotations

import argparse
import contextlib
import sys
import time
from collections.abc import Callable
from pathlib import Path

import gymnasium as gym
import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from nprl.envs import TORCH_ENVS  # noqa: E402

ENV_IDS = ["CartPole-v1", "Acrobot-v1", "MountainCar-v0", "MountainCarContinuous-v0", "Pendulum-v1"]
SIZES = [1, 16, 256, 4096]
POOL = 64  # pre-drawn action batches, cycled through


def gym_mode(env_id: str) -> str:
    """gymnasium's own vectorised env if the id registers one, else the sync loop."""
    return "vector_entry_point" if gym.spec(env_id).vector_entry_point else "sync"


def time_block(step: Callable[[int], object], min_seconds: float) -> tuple[float, int]:
    """Run ``step(i)`` for i = 0, 1, ... until ``min_seconds`` pass; (seconds, steps)."""
    count, start = 0, time.perf_counter()
    while True:
        for _ in range(8):
            step(count)
            count += 1
        elapsed = time.perf_counter() - start
        if elapsed >= min_seconds:
            return elapsed, count


def nprl_stepper(env_id: str, n: int, seed: int) -> Callable[[int], object]:
    env = TORCH_ENVS[env_id](n)
    env.reset(seed=seed)
    space = env.single_action_space
    gen = torch.Generator().manual_seed(seed)
    if isinstance(space, gym.spaces.Discrete):
        pool = [torch.randint(0, int(space.n), (n,), generator=gen) for _ in range(POOL)]
    else:
        low, high = float(space.low[0]), float(space.high[0])
        pool = [low + (high - low) * torch.rand(n, 1, generator=gen) for _ in range(POOL)]
    return lambda i: env.step(pool[i % POOL])


def gym_stepper(env_id: str, n: int, seed: int) -> Callable[[int], object]:
    env = gym.make_vec(env_id, num_envs=n, vectorization_mode=gym_mode(env_id))
    env.reset(seed=seed)
    env.action_space.seed(seed)
    pool = [env.action_space.sample() for _ in range(POOL)]
    return lambda i: env.step(pool[i % POOL])


def measure(env_id: str, n: int, rounds: int, block: float, seed: int) -> tuple[float, float]:
    """Best env-steps/s of (nprl, gym) over ``rounds`` interleaved blocks."""
    steppers = {"nprl": nprl_stepper(env_id, n, seed), "gym": gym_stepper(env_id, n, seed)}
    # nprl's envs step as the collector and the evaluation loop step them: inside
    # torch.inference_mode(), which skips autograd's per-op bookkeeping (numpy has none).
    modes = {"nprl": torch.inference_mode, "gym": contextlib.nullcontext}
    for name, step in steppers.items():  # warm-up
        with modes[name]():
            time_block(step, block / 4)
    best = dict.fromkeys(steppers, 0.0)
    for _ in range(rounds):
        for name, step in steppers.items():
            with modes[name]():
                seconds, count = time_block(step, block)
            best[name] = max(best[name], n * count / seconds)
    return best["nprl"], best["gym"]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--envs", nargs="+", default=ENV_IDS, choices=ENV_IDS)
    parser.add_argument("--sizes", nargs="+", type=int, default=SIZES)
    parser.add_argument("--threads", type=int, default=1, help="torch.set_num_threads")
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--block", type=float, default=0.04, help="seconds per timed block")
    parser.add_argument("--quick", action="store_true", help="2 rounds")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    rounds = 2 if args.quick else args.rounds

    print(
        f"torch {torch.__version__}, gymnasium {gym.__version__}, numpy {np.__version__}, "
        f"torch threads {torch.get_num_threads()}, CPU, float32, {rounds} rounds"
    )
    header = (
        f"{'env':<26}{'gym mode':<20}{'n':>6}{'nprl steps/s':>15}{'gym steps/s':>15}{'ratio':>9}"
    )
    print(header)
    print("-" * len(header))
    start = time.perf_counter()
    for env_id in args.envs:
        for n in args.sizes:
            nprl_sps, gym_sps = measure(env_id, n, rounds, args.block, args.seed)
            print(
                f"{env_id:<26}{gym_mode(env_id):<20}{n:>6}{nprl_sps:>15,.0f}{gym_sps:>15,.0f}"
                f"{nprl_sps / gym_sps:>8.2f}x",
                flush=True,
            )
    print(f"({time.perf_counter() - start:.0f} s)")


if __name__ == "__main__":
    main()
