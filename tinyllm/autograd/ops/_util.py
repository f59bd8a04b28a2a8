"""Helpers shared by the ops: lifting constants, broadcasting gradients back, `dim` checks."""

from __future__ import annotations

import numpy as np

from ..tensor import Tensor


def lift(x, like: Tensor | None = None) -> Tensor:
    """`x` as a Tensor; a Python number takes `like`'s dtype (it never upcasts, as in PyTorch)."""
    if isinstance(x, Tensor):
        return x
    if like is not None and isinstance(x, int | float | bool) and like.dtype.kind == "f":
        return Tensor._make(np.asarray(x, dtype=like.dtype))
    return Tensor(x)


def unbroadcast(grad: np.ndarray, shape: tuple[int, ...]) -> np.ndarray:
    """Sum `grad` over the axes that broadcasting added or stretched, giving `shape`."""
    if grad.shape == shape:
        return grad
    extra = grad.ndim - len(shape)
    if extra > 0:
        grad = grad.sum(axis=tuple(range(extra)))
    stretched = tuple(i for i, n in enumerate(shape) if n == 1 and grad.shape[i] != 1)
    if stretched:
        grad = grad.sum(axis=stretched, keepdims=True)
    return grad


def broadcast_shape(op: str, *shapes: tuple[int, ...]) -> tuple[int, ...]:
    """The broadcast shape, or a ValueError naming the op and the shapes."""
    try:
        return np.broadcast_shapes(*shapes)
    except ValueError:
        listed = " and ".join(str(tuple(s)) for s in shapes)
        raise ValueError(f"{op}: shapes {listed} cannot be broadcast together") from None


def normalize_dim(op: str, dim, ndim: int) -> tuple[int, ...] | None:
    """`dim` (None, an int or a sequence of ints, negatives allowed) as sorted positive axes."""
    if dim is None:
        return None
    dims = (dim,) if isinstance(dim, int | np.integer) else tuple(dim)
    out = []
    for d in dims:
        lo, hi = (-ndim, ndim - 1) if ndim else (-1, 0)
        if not lo <= d <= hi:
            raise IndexError(f"{op}: dim {d} is out of range for a tensor with {ndim} "
                             f"dimensions (accepted: {lo}..{hi})")
        out.append(int(d) % max(ndim, 1))
    if len(set(out)) != len(out):
        raise ValueError(f"{op}: dim {dim} repeats a dimension")
    return tuple(sorted(out))
