"""Benchmark: nprl's tanh (2·σ(2z) − 1, ``nprl.activations``) against ``torch.tanh``.

For float32 activations of the shapes a tanh MLP sees (acting: 8–64 rows; updates:
1,024–8,192 rows; 64 and 256 units), on one CPU thread, each row reports the median time
of ``torch.tanh``, nprl's ``tanh`` (a new tensor, as in the update) and ``tanh_`` (in
place, as in acting), and ``speedup`` = torch / nprl. Timing: ``bench_fvp.measure`` (warm-up
calls, then rounds in which each function is timed in turn, so drift hits them alike; each
time is the median over rounds of the mean over a ~20 ms block of calls).

    python scripts/bench_tanh.py      # ~20 s
"""

from __future__ import annotations

import statistics

import torch
from bench_fvp import measure  # (this folder: the interleaved block timing)

from nprl.activations import tanh, tanh_

SHAPES = [(8, 64), (64, 64), (1024, 64), (2048, 64), (8192, 64), (2048, 256)]


def main() -> None:
    torch.set_num_threads(1)
    print(f"{'shape':<12}{'torch.tanh µs':>14}{'tanh µs':>10}{'tanh_ µs':>10}{'speedup':>9}")
    speedups = []
    for shape in SHAPES:
        z = torch.randn(*shape)
        buf = z.clone()
        fns = {"torch": lambda z=z: torch.tanh(z), "nprl": lambda z=z: tanh(z),
               "inplace": lambda z=z, b=buf: tanh_(b.copy_(z))}  # the copy is timed too
        med = {k: t * 1e6 for k, t in measure(fns, rounds=15, target_s=0.02).items()}
        speedups.append(med["torch"] / med["nprl"])
        print(f"{str(shape):<12}{med['torch']:>14.1f}{med['nprl']:>10.1f}"
              f"{med['inplace']:>10.1f}{speedups[-1]:>8.2f}x")
    print(f"median speedup {statistics.median(speedups):.2f}x "
          f"(torch {torch.__version__}, {torch.backends.cpu.get_cpu_capability()})")


if __name__ == "__main__":
    main()
