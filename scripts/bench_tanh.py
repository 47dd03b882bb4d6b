"""Benchmark: nprl's tanh (2·σ(2z) − 1, ``nprl.activations``) against ``torch.tanh``.

For float32 activations of the shapes a tanh MLP sees (acting: 8–64 rows; updates:
1,024–8,192 rows; 64 and 256 units), on one CPU thread, each row reports the median time
of ``torch.tanh``, nprl's ``tanh`` (a new tensor, as in the update) and ``tanh_`` (in
place, as in acting), and ``speedup`` = torch / nprl. Timing: warm-up calls, then rounds in
which each function is timed in turn (interleaved, so drift hits them alike); each time is
the median over rounds of the mean over a block of calls.

    python scripts/bench_tanh.py      # ~20 s
"""

from __future__ import annotations

import statistics
import time
from collections.abc import Callable

import torch

from nprl.activations import tanh, tanh_

SHAPES = [(8, 64), (64, 64), (1024, 64), (2048, 64), (8192, 64), (2048, 256)]


def block_time(fn: Callable[[], object], seconds: float = 0.02) -> float:
    """Mean seconds per call over a block lasting about ``seconds``."""
    n, start = 0, time.perf_counter()
    while (elapsed := time.perf_counter() - start) < seconds or n < 3:
        fn()
        n += 1
    return elapsed / n


def main() -> None:
    torch.set_num_threads(1)
    print(f"{'shape':<12}{'torch.tanh µs':>14}{'tanh µs':>10}{'tanh_ µs':>10}{'speedup':>9}")
    speedups = []
    for shape in SHAPES:
        z = torch.randn(*shape)
        buf = z.clone()
        fns = {"torch": lambda z=z: torch.tanh(z), "nprl": lambda z=z: tanh(z),
               "inplace": lambda z=z, b=buf: tanh_(b.copy_(z))}  # the copy is timed too
        for fn in fns.values():
            fn()
        times: dict[str, list[float]] = {k: [] for k in fns}
        for _ in range(15):
            for k, fn in fns.items():
                times[k].append(block_time(fn))
        med = {k: statistics.median(v) * 1e6 for k, v in times.items()}
        speedups.append(med["torch"] / med["nprl"])
        print(f"{str(shape):<12}{med['torch']:>14.1f}{med['nprl']:>10.1f}"
              f"{med['inplace']:>10.1f}{speedups[-1]:>8.2f}x")
    print(f"median speedup {statistics.median(speedups):.2f}x "
          f"(torch {torch.__version__}, {torch.backends.cpu.get_cpu_capability()})")


if __name__ == "__main__":
    main()
