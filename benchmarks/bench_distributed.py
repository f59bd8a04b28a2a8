"""Data parallel on one machine: 1 process x 2 threads vs 2 MPI ranks x 1 thread, and the
ring all-reduce cost model checked against the measurement.

For each preset (default `small` and `medium`, batch 12, pydoc characters) it times training
steps (forward, backward, gradient all-reduce, AdamW) in interleaved rounds:

- one process on 2 threads (the whole batch of 12 rows, one thread pool);
- two ranks on 1 thread each (`mpiexec -n 2`, 6 rows each, gradients summed in flat buckets);

and prints the bytes all-reduced per step and the time the all-reduce took inside the step.
A second measurement times MPI_Allreduce alone over message sizes and fits the ring model

    t(bytes) = 2 (N - 1) alpha + 2 (N - 1) / N * bytes / beta

(alpha: latency per message step, beta: bandwidth), which then predicts the 2-rank step
(compute of 6 rows on one thread + the all-reduce) and, for a network of a given bandwidth,
the step at N ranks (compute of 12 / N rows + the all-reduce at that bandwidth).

    python benchmarks/bench_distributed.py [--presets small,medium] [--steps 8] [--rounds 3]

Needs mpi4py and mpiexec (pip install ".[mpi]"); as root, Open MPI needs
OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1 (this script sets them for its own
children only). Run it on a quiet machine: timings taken while other work shares the cores
say little. This is a script, not a test: speed is never asserted.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path

import numpy as np

HERE = Path(__file__).resolve()
ENV = {**os.environ, "OMPI_ALLOW_RUN_AS_ROOT": "1", "OMPI_ALLOW_RUN_AS_ROOT_CONFIRM": "1"}


# ---------------------------------------------------------------------- the workers
def worker_steps(preset: str, steps: int, threads: int, out_dir: str,
                 bucket_mb: float = 25.0) -> dict:
    """Median seconds of a training step (rank 0's), the all-reduce's share of it, bytes."""
    from tinyllm import set_num_threads
    from tinyllm.training import TrainConfig, Trainer

    set_num_threads(threads)
    config = TrainConfig(preset=preset, data="pydoc", steps=steps + 2, eval_interval=10_000,
                         sample_tokens=0, out=out_dir, name=f"bench-{preset}",
                         bucket_mb=bucket_mb)
    trainer = Trainer(config, quiet=True, overwrite=True, check_memory=False)
    reduce_s = []
    if trainer.buckets is not None:
        reduce = trainer.buckets.reduce_

        def timed_reduce(world, scale):
            start = time.perf_counter()
            reduce(world, scale)
            reduce_s.append(time.perf_counter() - start)

        trainer.buckets.reduce_ = timed_reduce
    times = []
    for i in range(steps + 2):
        trainer.world.barrier()
        start = time.perf_counter()
        trainer._train_step()
        if i >= 2:                                # two warm-up steps
            times.append(time.perf_counter() - start)
    return {"step_s": statistics.median(times),
            "reduce_s": statistics.median(reduce_s[2:]) if reduce_s else 0.0,
            "bytes": trainer.buckets.nbytes if trainer.buckets is not None else 0,
            "buckets": ([buf.nbytes for _, buf, _ in trainer.buckets.buckets]
                        if trainer.buckets is not None else []),
            "params": trainer.model.num_params(), "ranks": trainer.world.size,
            "is_main": trainer.world.is_main}


def worker_allreduce(sizes: list[int], repeats: int = 20) -> dict:
    """Median seconds of MPI_Allreduce (in place, float32) for each message size in bytes."""
    from mpi4py import MPI

    comm = MPI.COMM_WORLD
    out = {}
    for size in sizes:
        buf = np.ones(size // 4, dtype=np.float32)
        for _ in range(3):
            comm.Allreduce(MPI.IN_PLACE, buf)
        times = []
        for _ in range(repeats):
            comm.Barrier()
            start = time.perf_counter()
            comm.Allreduce(MPI.IN_PLACE, buf)
            times.append(time.perf_counter() - start)
        out[size] = statistics.median(times)
    return {"times": out, "ranks": comm.Get_size(), "is_main": comm.Get_rank() == 0}


# ---------------------------------------------------------------------- the parent
def run_worker(args: list[str], ranks: int) -> dict:
    command = [sys.executable, str(HERE), "--worker", *args]
    if ranks > 1:
        command = ["mpiexec", "-n", str(ranks), *command]
    proc = subprocess.run(command, env=ENV, capture_output=True, text=True, timeout=3600)
    if proc.returncode != 0:
        raise SystemExit(f"worker failed ({' '.join(command)}):\n{proc.stderr[-3000:]}")
    return json.loads(proc.stdout.strip().splitlines()[-1])


def fit_ring(times: dict, ranks: int) -> tuple[float, float]:
    """(alpha s, beta bytes/s) of t = 2 (N-1) alpha + 2 (N-1)/N bytes / beta: alpha from the
    smallest message (latency rules it), beta by least squares on relative errors over the
    messages of 1 MB and more (bandwidth rules them; a gradient bucket is 25 MiB)."""
    sizes = sorted(times)
    alpha = times[sizes[0]] / (2 * (ranks - 1))
    big = [s for s in sizes if s >= 2 ** 20]
    t = np.array([times[s] for s in big]) - 2 * (ranks - 1) * alpha
    x = 2 * (ranks - 1) / ranks * np.array(big, dtype=float)
    inv_beta = float(np.sum(x / t) / np.sum((x / t) ** 2))      # min sum (x / (beta t) - 1)^2
    return float(alpha), 1.0 / inv_beta


def ring_seconds(nbytes: float, ranks: int, alpha: float, beta: float) -> float:
    return 2 * (ranks - 1) * alpha + 2 * (ranks - 1) / ranks * nbytes / beta


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--presets", default="small,medium")
    p.add_argument("--steps", type=int, default=8, help="timed steps per measurement")
    p.add_argument("--rounds", type=int, default=3, help="interleaved rounds (medians)")
    p.add_argument("--bucket-mb", type=float, default=25.0, help="the ranks' bucket size")
    p.add_argument("--worker", action="store_true", help=argparse.SUPPRESS)
    p.add_argument("--allreduce", action="store_true", help=argparse.SUPPRESS)
    p.add_argument("--preset", help=argparse.SUPPRESS)
    p.add_argument("--threads", type=int, default=1, help=argparse.SUPPRESS)
    p.add_argument("--out", default="/tmp/tinyllm-bench-distributed", help=argparse.SUPPRESS)
    args = p.parse_args()
    if args.worker:
        result = (worker_allreduce([2 ** k for k in range(10, 26)]) if args.allreduce
                  else worker_steps(args.preset, args.steps, args.threads, args.out,
                                    args.bucket_mb))
        if result.pop("is_main"):
            print(json.dumps(result))
        return
    report(args)


def report(args) -> None:
    from tinyllm import kernels
    from tinyllm.bench import blas_description

    print(f"kernels: {kernels.backend()}; BLAS: {blas_description()}; OPENBLAS_CORETYPE="
          f"{os.environ.get('OPENBLAS_CORETYPE', 'unset')}")
    sweep = run_worker(["--allreduce"], ranks=2)
    alpha, beta = fit_ring({int(k): v for k, v in sweep["times"].items()}, 2)
    print(f"MPI_Allreduce, 2 ranks on this machine (shared memory): fitted alpha = "
          f"{alpha * 1e6:.1f} us per message step, beta = {beta / 1e9:.2f} GB/s")
    for size, t in sweep["times"].items():
        print(f"  {int(size):>11,} bytes: {t * 1e3:8.3f} ms measured, "
              f"{ring_seconds(int(size), 2, alpha, beta) * 1e3:8.3f} ms by the model")
    print()
    header = (f"{'preset':<8} {'params':>10} {'MB/step':>8} | {'1 x 2 thr':>10} "
              f"{'2 x 1 thr':>10} {'ratio':>6} | {'all-reduce':>10} {'model':>8} | "
              f"{'predicted 2-rank step':>22}")
    print("training step, batch 12 (ms; ratio = 2 ranks / 1 process, below 1: ranks faster)")
    print(header)
    print("-" * len(header))
    rows = []
    for preset in args.presets.split(","):
        single, ranks = [], []
        for _ in range(args.rounds):               # interleaved: drift slows both alike
            common = ["--preset", preset, "--steps", str(args.steps), "--out", args.out,
                      "--bucket-mb", str(args.bucket_mb)]
            single.append(run_worker([*common, "--threads", "2"], ranks=1))
            ranks.append(run_worker([*common, "--threads", "1"], ranks=2))
        one = statistics.median(r["step_s"] for r in single)
        two = statistics.median(r["step_s"] for r in ranks)
        reduce_s = statistics.median(r["reduce_s"] for r in ranks)
        nbytes = ranks[0]["bytes"]
        model = sum(ring_seconds(b, 2, alpha, beta) for b in ranks[0]["buckets"])
        compute = two - reduce_s                   # 6 rows on one thread, and the update
        rows.append((preset, compute, ranks[0]["buckets"]))
        print(f"{preset:<8} {ranks[0]['params']:>10,} {nbytes / 1e6:>8.2f} | {one * 1e3:>10.1f} "
              f"{two * 1e3:>10.1f} {two / one:>6.2f} | {reduce_s * 1e3:>10.2f} "
              f"{model * 1e3:>8.2f} | {(compute + model) * 1e3:>12.1f} (meas. {two * 1e3:.1f})")
    print()
    print("predicted step at N ranks over a network (ring all-reduce, alpha 20 us; compute "
          "of 12/N rows scaled from the 2-rank measurement), ms:")
    nets = {"1 Gb/s": 1e9 / 8, "10 Gb/s": 10e9 / 8, "100 Gb/s": 100e9 / 8}
    print(f"{'preset':<8} {'N':>3} " + " ".join(f"{n:>10}" for n in nets))
    for preset, compute, buckets in rows:
        for n in (2, 4, 8, 16):
            cells = [(compute * 2 / n + sum(ring_seconds(b, n, 20e-6, bw) for b in buckets))
                     * 1e3 for bw in nets.values()]
            print(f"{preset:<8} {n:>3} " + " ".join(f"{c:>10.1f}" for c in cells))


if __name__ == "__main__":
    main()
