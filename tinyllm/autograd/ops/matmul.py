"""Matrix product with NumPy's rules: batched, broadcasting, 1-D operands promoted.

For out = a @ b:  da = dout @ b^T  and  db = a^T @ dout, summed over broadcast batch axes.
"""

from __future__ import annotations

import numpy as np

from ..function import Function
from ..tensor import Tensor
from ._util import broadcast_shape, lift, unbroadcast


class MatMul(Function):
    def forward(self, a, b):
        if a.ndim == 0 or b.ndim == 0:
            raise ValueError(f"matmul: both operands need at least 1 dimension; "
                             f"got shapes {a.shape} and {b.shape}")
        k_a, k_b = a.shape[-1], b.shape[0] if b.ndim == 1 else b.shape[-2]
        if k_a != k_b:
            raise ValueError(f"matmul: shapes {a.shape} and {b.shape} are not aligned "
                             f"({k_a} != {k_b} in the contracted dimension)")
        broadcast_shape("matmul", a.shape[:-2], b.shape[:-2])
        self.a, self.b = a, b
        return np.matmul(a, b)

    def backward(self, dout):
        a, b = self.a, self.b
        # Promote 1-D operands to matrices so one rule covers every case.
        a2 = a[None, :] if a.ndim == 1 else a          # (..., M, K)
        b2 = b[:, None] if b.ndim == 1 else b          # (..., K, N)
        d2 = dout
        if a.ndim == 1:
            d2 = np.expand_dims(d2, -2 if b.ndim > 1 else 0)
        if b.ndim == 1:
            d2 = d2[..., None]                          # (..., M, N)
        da = db = None
        if self.needs_input_grad[0]:
            da = unbroadcast(d2 @ np.swapaxes(b2, -1, -2), a2.shape).reshape(a.shape)
        if self.needs_input_grad[1]:
            if b2.ndim == 2 and a2.ndim > 2:
                # A shared weight: fold the batch into rows, one (K, rows) @ (rows, N) GEMM.
                k, n = b2.shape
                db = a2.reshape(-1, k).T @ d2.reshape(-1, n)
            else:
                db = unbroadcast(np.swapaxes(a2, -1, -2) @ d2, b2.shape)
            db = db.reshape(b.shape)
        return da, db


def matmul(a, b) -> Tensor:
    like = a if isinstance(a, Tensor) else b
    return MatMul.apply(lift(a, like), lift(b, like))
