"""Per-op overhead of the autograd engine on tiny tensors: tinyllm vs raw NumPy vs PyTorch.

On tiny tensors the arithmetic is nearly free, so the time per op is the engine's own cost:
building the graph node in forward, and the walk plus the backward call in backward.

    python benchmarks/bench_engine.py [--repeat 2000]
"""

from __future__ import annotations

import argparse
import timeit

import numpy as np

import tinyllm


def _per_op_us(fn, n_ops: int, repeat: int) -> float:
    """Best-of-5 microseconds per op for `fn`, which performs `n_ops` ops per call."""
    times = timeit.repeat(fn, number=repeat, repeat=5)
    return min(times) / repeat / n_ops * 1e6


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=2000)
    args = parser.parse_args()

    rng = np.random.default_rng(0)
    a_np, b_np = rng.standard_normal((4, 4)), rng.standard_normal((4, 4))
    a = tinyllm.tensor(a_np, requires_grad=True)
    b = tinyllm.tensor(b_np, requires_grad=True)

    # Five ops forward: (a @ b + a) * b, tanh, sum.
    def numpy_forward():
        return np.tanh((a_np @ b_np + a_np) * b_np).sum()

    def tiny_forward():
        with tinyllm.no_grad():
            return ((a @ b + a) * b).tanh().sum()

    def tiny_forward_backward():
        ((a @ b + a) * b).tanh().sum().backward()

    rows = [("NumPy (no autograd)", _per_op_us(numpy_forward, 5, args.repeat), None),
            ("tinyllm forward, no_grad", _per_op_us(tiny_forward, 5, args.repeat), None),
            ("tinyllm forward+backward", _per_op_us(tiny_forward_backward, 5, args.repeat), None)]
    try:
        import torch

        torch.set_num_threads(1)
        at = torch.tensor(a_np, requires_grad=True)
        bt = torch.tensor(b_np, requires_grad=True)

        def torch_forward():
            with torch.no_grad():
                return ((at @ bt + at) * bt).tanh().sum()

        def torch_forward_backward():
            ((at @ bt + at) * bt).tanh().sum().backward()

        rows += [("PyTorch forward, no_grad", _per_op_us(torch_forward, 5, args.repeat), None),
                 ("PyTorch forward+backward",
                  _per_op_us(torch_forward_backward, 5, args.repeat), None)]
    except ImportError:
        rows.append(("PyTorch", float("nan"), "not installed"))

    base = rows[0][1]
    print("Per-op time on (4, 4) float64 tensors, 5-op expression (a @ b + a) * b -> tanh -> sum")
    print(f"{'':28s} {'us/op':>8s} {'x NumPy':>8s}")
    for name, us, note in rows:
        print(f"{name:28s} {us:8.2f} {us / base:8.1f}" + (f"  ({note})" if note else ""))


if __name__ == "__main__":
    main()
