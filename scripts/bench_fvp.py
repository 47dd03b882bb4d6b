"""Benchmark: the cost of nprl's Fisher-vector product, measured in gradients.

For tanh MLP actors (64×64 and 256×256) with a categorical head (2 actions, obs dim 4,
CartPole-like) and diagonal-Gaussian heads (1 action dim with obs dim 3, Pendulum-like;
6 action dims with obs dim 17, HalfCheetah-like), at batches 512, 2048 and 8192, in
float32 on one CPU thread, every cell reports as a multiple of one *gradient* (forward +
backward of the PPO/TRPO surrogate loss ``-mean(exp(logp - logp_old) · A)`` over the
actor's parameters, same batch):

- ``fvp``   one product F v with ``nprl.curvature.FisherOperator`` (linearised once);
- ``cg10``  a 10-iteration CG solve (F + 0.1 I)⁻¹ g, *including* building the operator;
- ``dbp``   one product by double backprop of the batch-mean KL(π_old ‖ π_θ): the KL
            gradient built once with ``create_graph=True``, then differentiated once per
            product (what sb3-contrib, OpenAI baselines and Tianshou do);
- ``speedup`` = dbp / fvp.

Timing: ``time.perf_counter``, warm-up calls first, then several rounds in which every
quantity is timed in turn (interleaved, so drift hits them alike); each quantity's time
is the median over rounds of the mean of a block of calls (a block lasts ≥ ~20 ms).

Targets (issue 2): fvp ≤ 1 gradient (median over cells, no cell above 1.2); cg10 ≤ 10
gradients (median); speedup ≥ 1.5 (median) and ≥ 1 in every cell.

    python scripts/bench_fvp.py            # full grid, ~1-2 min
    python scripts/bench_fvp.py --quick    # fewer rounds, batches 512/2048 only
    python scripts/bench_fvp.py --backend autograd   # the generic double-vjp path
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import gymnasium as gym
import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from nprl.curvature import FisherOperator, flat  # noqa: E402
from nprl.policies import ActorCritic  # noqa: E402

HEADS: dict[str, tuple[int, gym.Space]] = {
    "cat2": (4, gym.spaces.Discrete(2)),
    "gauss1": (3, gym.spaces.Box(-1.0, 1.0, (1,), dtype=np.float32)),
    "gauss6": (17, gym.spaces.Box(-1.0, 1.0, (6,), dtype=np.float32)),
}


@dataclass
class Cell:
    hidden: int
    head: str
    batch: int
    grad_ms: float
    fvp: float
    cg10: float
    dbp: float

    @property
    def speedup(self) -> float:
        return self.dbp / self.fvp


def block_time(fn: Callable[[], object], number: int) -> float:
    """Mean seconds per call over ``number`` back-to-back calls."""
    t0 = time.perf_counter()
    for _ in range(number):
        fn()
    return (time.perf_counter() - t0) / number


def calibrate(fn: Callable[[], object], target_s: float) -> int:
    """Calls per block so that a block lasts about ``target_s`` (after two warm-up calls)."""
    fn()
    fn()
    t = block_time(fn, 1)
    return max(1, int(target_s / max(t, 1e-6)))


def measure(fns: dict[str, Callable[[], object]], rounds: int, target_s: float) -> dict:
    numbers = {k: calibrate(f, target_s) for k, f in fns.items()}
    times: dict[str, list[float]] = {k: [] for k in fns}
    for _ in range(rounds):
        for k, f in fns.items():
            times[k].append(block_time(f, numbers[k]))
    return {k: statistics.median(v) for k, v in times.items()}


def bench_cell(hidden: int, head: str, batch: int, backend: str, rounds: int, target_s: float
               ) -> Cell:
    torch.manual_seed(0)
    obs_dim, space = HEADS[head]
    obs_space = gym.spaces.Box(-np.inf, np.inf, (obs_dim,), dtype=np.float32)
    policy = ActorCritic(obs_space, space, hidden_sizes=(hidden, hidden))
    family, params = policy.family, policy.actor_parameters()
    obs = torch.randn(batch, obs_dim)
    with torch.no_grad():
        old = policy.dist_params(obs)
        actions = family.dist(old).sample()
        logp_old = family.log_prob(old, actions)
    adv = torch.randn(batch)
    n = sum(p.numel() for p in params)
    v = torch.randn(n)

    def surrogate_grad() -> torch.Tensor:
        logp = family.log_prob(policy.dist_params(obs), actions)
        loss = -(torch.exp(logp - logp_old) * adv).mean()
        return flat(torch.autograd.grad(loss, params), params)

    g = surrogate_grad()
    op = FisherOperator(policy, obs, backend=backend)

    def fvp() -> torch.Tensor:
        return op.mv(v)

    def cg10() -> torch.Tensor:
        F = FisherOperator(policy, obs, damping=0.1, cg_iters=10, cg_tol=0.0, backend=backend)
        x = F.solve(g)
        assert F.last_solve.iters == 10, F.last_cg
        return x

    kl = family.kl(old, policy.dist_params(obs)).mean()
    kl_grad = flat(torch.autograd.grad(kl, params, create_graph=True), params)

    def dbp() -> torch.Tensor:
        return flat(torch.autograd.grad(kl_grad @ v, params, retain_graph=True), params)

    # Same product, two ways (float32): a wrong fast path must not win a benchmark.
    ref, got = dbp(), fvp()
    err = float((got - ref).norm() / ref.norm())
    assert err < 1e-3, f"FVP disagrees with double backprop: rel. error {err:.2e}"

    t = measure({"grad": surrogate_grad, "fvp": fvp, "cg10": cg10, "dbp": dbp},
                rounds, target_s)
    return Cell(hidden, head, batch, 1e3 * t["grad"], t["fvp"] / t["grad"],
                t["cg10"] / t["grad"], t["dbp"] / t["grad"])


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--quick", action="store_true", help="3 rounds, batches 512 and 2048")
    ap.add_argument("--backend", default="auto", help="FisherOperator backend (auto|mlp|autograd)")
    ap.add_argument("--rounds", type=int, default=None, help="timing rounds per cell (default 9)")
    args = ap.parse_args(argv)
    torch.set_num_threads(1)
    batches = (512, 2048) if args.quick else (512, 2048, 8192)
    rounds = args.rounds or (3 if args.quick else 9)
    target_s = 0.01 if args.quick else 0.02
    t_start = time.perf_counter()
    print(f"nprl FVP benchmark: torch {torch.__version__}, float32, threads="
          f"{torch.get_num_threads()}, backend={args.backend}, rounds={rounds}")
    print("heads: cat2 = Discrete(2), obs 4; gauss1 = Box(1), obs 3; gauss6 = Box(6), obs 17")
    print("costs are multiples of one surrogate gradient (forward + backward, same batch)\n")
    header = (f"{'mlp':>8} {'head':>7} {'batch':>6} {'grad ms':>8} {'fvp':>6} {'cg10':>6} "
              f"{'dbp':>6} {'dbp/fvp':>8}")
    print(header)
    print("-" * len(header))
    cells = []
    for hidden in (64, 256):
        for head in HEADS:
            for batch in batches:
                c = bench_cell(hidden, head, batch, args.backend, rounds, target_s)
                cells.append(c)
                print(f"{f'{hidden}x{hidden}':>8} {head:>7} {batch:>6} {c.grad_ms:>8.2f} "
                      f"{c.fvp:>6.2f} {c.cg10:>6.2f} {c.dbp:>6.2f} {c.speedup:>8.2f}",
                      flush=True)
    med = statistics.median
    fvp = [c.fvp for c in cells]
    cg = [c.cg10 for c in cells]
    dbp = [c.dbp for c in cells]
    sp = [c.speedup for c in cells]
    ok = med(fvp) <= 1.0 and max(fvp) <= 1.2 and med(cg) <= 10.0 and med(sp) >= 1.5 \
        and min(sp) >= 1.0
    print(f"\nsummary: fvp median {med(fvp):.2f} max {max(fvp):.2f} (target ≤1.0, ≤1.2) | "
          f"cg10 median {med(cg):.2f} max {max(cg):.2f} (target ≤10) | "
          f"dbp median {med(dbp):.2f} max {max(dbp):.2f} | "
          f"dbp/fvp median {med(sp):.2f} min {min(sp):.2f} (target ≥1.5, ≥1.0) | "
          f"targets {'met' if ok else 'MISSED'} | {time.perf_counter() - t_start:.0f} s")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
