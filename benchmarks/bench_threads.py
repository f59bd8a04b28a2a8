"""Parallel-threshold benchmark: each compiled kernel on one thread and on all, side by side.

Measures what ext/parallel.h's rule is built on: the one-thread cost of a unit of work (an
element, or a multiply-add for attention), and whether calls near the threshold gain from
more threads. Shapes: rows (N, 512) float32; attention q, k, v (B, nh, T, 64) float32.

    python benchmarks/bench_threads.py
    OPENBLAS_NUM_THREADS=1 python benchmarks/bench_threads.py --repeats 30

Columns: one-thread time, its cost per unit of work (compare with the TL_NS_PER_* constants
of parallel.h), all-thread time and the speed-up. A call is split when its estimated one-thread
time reaches TL_PARALLEL_MIN_NS (0.1 ms). Run it on a quiet machine: a timing taken while
other work shares the cores says little. This is a script, not a test: speed is never asserted.
"""

import argparse
import importlib
import math
import os
import statistics
import time

import numpy as np

from tinyllm import kernels


def parse_args():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--repeats", type=int, default=30, help="timed calls per cell")
    return parser.parse_args()


def median_seconds(fn, repeats):
    fn()  # warm caches, thread pool and allocator
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def cases(k, rng):
    """(kernel, compiled module, size, units of work, zero-argument call) for each row."""
    rows = []
    for n in (256, 2048, 8192):                                  # (N, 512) rows
        x = rng.standard_normal((n, 512)).astype(np.float32)
        rows += [("softmax_forward", "_softmax", n, x.size, lambda x=x: k.softmax_forward(x)),
                 ("gelu_forward", "_fused", n, x.size, lambda x=x: k.gelu_forward(x)),
                 ("layer_norm_forward", "_fused", n, x.size,
                  lambda x=x: k.layer_norm_forward(x, None, None, 1e-5)),
                 ("erf", "_special", n, x.size, lambda x=x: k.erf(x))]
    for t in (64, 128, 256):                                     # (8, 8, T, 64) heads
        q = rng.standard_normal((8, 8, t, 64)).astype(np.float32)
        rows.append(("attention_forward", "_attention", t, 8 * 8 * t * t * 64,
                     lambda q=q: k.attention_forward(q, q, q, None, None, False, 0.0, None)))
    return rows


def main():
    args = parse_args()
    if "cython" not in kernels.available_backends():
        raise SystemExit(f"compiled kernels unavailable: {kernels.backend_reason()}")
    k = kernels.get_backend("cython")
    print(f"cpus {os.cpu_count()}; OMP_NUM_THREADS={os.environ.get('OMP_NUM_THREADS', '(unset)')}"
          f" OPENBLAS_NUM_THREADS={os.environ.get('OPENBLAS_NUM_THREADS', '(unset)')}; median "
          f"of {args.repeats} calls")
    print(f"{'kernel':<20}{'size':>6}{'units':>12}{'1 thread':>12}{'ns/unit':>9}"
          f"{'all threads':>13}{'speed-up':>10}")
    for name, stem, size, units, call in cases(k, np.random.default_rng(0)):
        module = importlib.import_module(f"tinyllm.kernels.{stem}")
        old = module.set_parallel_threshold(math.inf)            # one thread
        one = median_seconds(call, args.repeats)
        module.set_parallel_threshold(0.0)                       # every thread
        many = median_seconds(call, args.repeats)
        module.set_parallel_threshold(old)
        print(f"{name:<20}{size:>6}{units:>12.2e}{one * 1e3:>9.3f} ms{one / units * 1e9:>9.3f}"
              f"{many * 1e3:>10.3f} ms{one / many:>9.2f}x")


if __name__ == "__main__":
    main()
