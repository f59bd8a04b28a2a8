"""Generation speed: tinyllm's `GPT.generate` vs Hugging Face's `generate` on the same weights,
at 1 thread and at `--threads` (default auto), and against the memory-bandwidth bound.

The generation rows of `tinyllm bench` (tinyllm.bench.generation_rows, whose docstring says
what is measured), alone and with more options: for each preset and batch size, a GPT with
random weights (vocabulary 256), a prompt of 8 tokens per row, `--new-tokens` greedy tokens
with the KV cache; tokens/s count every row's tokens; the runs of both libraries alternate
round by round (median of `--repeat`).

The bound: at batch 1 each new token reads every weight once, so tokens/s can be at most
(memory bandwidth) / (bytes of the weights). The bandwidth is measured on one thread as the
speed of summing a float32 array ten times larger than the last-level cache share a core gets
(`--bandwidth-mib`, default 512 MiB). Weights that stay in a cache can beat it; on this
machine the `medium` preset's 38 MiB do not stay in the 4 MiB L2.

    python benchmarks/bench_generate.py [--threads auto] [--presets small,medium] [--batches 1,8]
"""

from __future__ import annotations

import argparse

import tinyllm
from tinyllm import bench, kernels, threads


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--threads", default="auto")
    parser.add_argument("--presets", default="small,medium")
    parser.add_argument("--batches", default="1,8")
    parser.add_argument("--new-tokens", type=int, default=56)
    parser.add_argument("--repeat", type=int, default=7)
    parser.add_argument("--bandwidth-mib", type=int, default=512)
    args = parser.parse_args()
    n, why = threads.resolve(args.threads)
    bandwidth = bench.bandwidth_gbs(args.bandwidth_mib)
    torch = bench._torch()
    print(f"threads: 1 and {n} ({why}); tinyllm {tinyllm.__version__} kernels: "
          f"{kernels.backend()}; BLAS: {bench.blas_description()}; torch "
          f"{torch.__version__ if torch else 'absent'}; measured read bandwidth "
          f"{bandwidth:.1f} GB/s (one thread)")
    rows = bench.generation_rows(presets=args.presets.split(","),
                                 batches=[int(b) for b in args.batches.split(",")],
                                 threads=n, new_tokens=args.new_tokens, repeats=args.repeat,
                                 bandwidth=bandwidth)
    bench.print_generation(rows, n)


if __name__ == "__main__":
    main()
