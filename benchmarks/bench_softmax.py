"""Row softmax benchmark: compiled kernel vs NumPy twin vs PyTorch, side by side in one run.

Shapes: x, dy (N, C), default (4096, 256) float32; softmax over the last axis C.

    python benchmarks/bench_softmax.py                 # library defaults for threads
    python benchmarks/bench_softmax.py --threads 1     # OpenMP, BLAS and torch on 1 thread

Each cell is the median of many timed calls; variants are interleaved round by round so a
noisy neighbour slows them all alike. Thread settings are printed with the numbers because
they change the answer: on a 2-core machine two BLAS threads were sometimes slower than one,
and an OpenMP thread woken for a small call can cost more than the call. Columns:

    cython          tinyllm.kernels compiled backend (inputs already contiguous)
    numpy           the NumPy twin, tinyllm/kernels/reference.py
    torch           torch.softmax + torch._softmax_backward_data (no autograd graph)
    torch-autograd  torch.softmax on a requires_grad tensor, then .backward(dy)

This is a script, not a test: speed is never asserted.
"""

import argparse
import os
import statistics
import sys
import time


def parse_args():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--threads", type=int, default=None,
                        help="threads for OpenMP, BLAS and torch (default: leave as found)")
    parser.add_argument("--rows", type=int, default=4096)
    parser.add_argument("--cols", type=int, default=256)
    parser.add_argument("--dtype", choices=["float32", "float64"], default="float32")
    parser.add_argument("--repeats", type=int, default=50, help="timed calls per round")
    parser.add_argument("--rounds", type=int, default=8, help="interleaved rounds")
    return parser.parse_args()


ARGS = parse_args()
if ARGS.threads is not None:
    # Thread pools read these once, when their library loads: set before importing them.
    for var in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
        os.environ[var] = str(ARGS.threads)

import numpy as np  # noqa: E402

from tinyllm import kernels  # noqa: E402

try:
    import torch  # noqa: E402
except ImportError:
    torch = None


def variants(x, dy):
    """{op: {column: zero-argument callable}} for every op and backend available here."""
    ops = {"softmax fwd": {}, "softmax fwd+bwd": {}, "log_softmax fwd+bwd": {}}
    for name in ("cython", "numpy"):
        if name not in kernels.available_backends():
            continue
        k = kernels.get_backend(name)
        ops["softmax fwd"][name] = lambda k=k: k.softmax_forward(x)
        ops["softmax fwd+bwd"][name] = lambda k=k: k.softmax_backward(k.softmax_forward(x), dy)
        ops["log_softmax fwd+bwd"][name] = (
            lambda k=k: k.log_softmax_backward(k.log_softmax_forward(x), dy))
    if torch is not None:
        tx, tdy = torch.from_numpy(x), torch.from_numpy(dy)
        txg = tx.clone().requires_grad_()
        dt = tx.dtype

        def autograd(fn):
            def run():
                fn(txg, dim=-1).backward(tdy)
                txg.grad = None
            return run

        ops["softmax fwd"]["torch"] = lambda: torch.softmax(tx, -1)
        ops["softmax fwd+bwd"]["torch"] = (
            lambda: torch._softmax_backward_data(tdy, torch.softmax(tx, -1), -1, dt))
        ops["log_softmax fwd+bwd"]["torch"] = (
            lambda: torch._log_softmax_backward_data(tdy, torch.log_softmax(tx, -1), -1, dt))
        ops["softmax fwd+bwd"]["torch-autograd"] = autograd(torch.softmax)
        ops["log_softmax fwd+bwd"]["torch-autograd"] = autograd(torch.log_softmax)
    return ops


def measure(ops, repeats, rounds):
    """Median seconds per call of every callable, interleaving the variants round by round."""
    samples = {(op, col): [] for op, cols in ops.items() for col in cols}
    for fn in (fn for cols in ops.values() for fn in cols.values()):
        for _ in range(5):  # warm caches, thread pools and allocator
            fn()
    for _ in range(rounds):
        for (op, col), times in samples.items():
            fn = ops[op][col]
            for _ in range(repeats):
                start = time.perf_counter()
                fn()
                times.append(time.perf_counter() - start)
    return {key: statistics.median(times) for key, times in samples.items()}


def thread_report():
    lines = [f"cpus: {os.cpu_count()}"]
    for var in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
        lines.append(f"{var}={os.environ.get(var, '(unset)')}")
    if "cython" in kernels.available_backends():
        from tinyllm.kernels import _softmax
        lines.append(f"tinyllm OpenMP threads: {_softmax.num_threads()}")
    if torch is not None:
        lines.append(f"torch {torch.__version__} threads: {torch.get_num_threads()}")
    try:
        from numpy._core._multiarray_umath import __cpu_features__ as feats
        simd = [f for f in ("AVX512F", "AVX2", "FMA3") if feats.get(f)]
        lines.append(f"cpu simd: {' '.join(simd) or 'baseline'}")
    except ImportError:
        pass
    return lines


def main():
    rng = np.random.default_rng(0)
    shape = (ARGS.rows, ARGS.cols)
    x = (rng.standard_normal(shape) * 3).astype(ARGS.dtype)      # (N, C)
    dy = rng.standard_normal(shape).astype(ARGS.dtype)           # (N, C)
    ops = variants(x, dy)
    medians = measure(ops, ARGS.repeats, ARGS.rounds)

    print(f"row softmax, x (N, C) = {shape} {ARGS.dtype}; median of "
          f"{ARGS.repeats * ARGS.rounds} calls each")
    print(f"python {sys.version.split()[0]}, numpy {np.__version__}; "
          f"active backend: {kernels.backend()} ({kernels.backend_reason()})")
    print("; ".join(thread_report()))
    columns = ["cython", "numpy", "torch", "torch-autograd"]
    header = f"{'op':<20}" + "".join(f"{c:>16}" for c in columns)
    header += f"{'numpy/cython':>14}{'torch/cython':>14}"
    print(header)
    for op, cols in ops.items():
        cells = [f"{medians[op, c] * 1e3:>13.3f} ms" if c in cols else f"{'-':>16}"
                 for c in columns]
        ratios = []
        for other in ("numpy", "torch"):
            ok = "cython" in cols and other in cols
            ratio = medians[op, other] / medians[op, "cython"] if ok else None
            ratios.append(f"{ratio:>13.2f}x" if ratio else f"{'-':>14}")
        print(f"{op:<20}" + "".join(cells) + "".join(ratios))


if __name__ == "__main__":
    main()
