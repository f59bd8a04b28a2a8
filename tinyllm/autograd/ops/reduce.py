"""Reductions over `dim` (None = all), with PyTorch's `keepdim`.

The backward of a reduction first restores the reduced axes (as size 1) so the gradient
broadcasts back over the input: d(sum)/dx = 1, d(mean)/dx = 1/N, d(var)/dx = 2(x - mean)/(N - c).
"""

from __future__ import annotations

import builtins
from collections import namedtuple

import numpy as np

from ..function import Function
from ..tensor import Tensor
from ._util import normalize_dim


def _restore(grad: np.ndarray, axes, keepdim: bool, shape) -> np.ndarray:
    """Re-insert the reduced axes into `grad` and broadcast it to `shape`."""
    if axes is not None and not keepdim:
        grad = np.expand_dims(grad, axes)
    elif axes is None and not keepdim:
        grad = np.reshape(grad, (1,) * len(shape))
    return np.broadcast_to(grad, shape)


class Sum(Function):
    def forward(self, x, axes, keepdim):
        self.shape, self.axes, self.keepdim = x.shape, axes, keepdim
        return np.sum(x, axis=axes, keepdims=keepdim)

    def backward(self, dout):
        return np.array(_restore(dout, self.axes, self.keepdim, self.shape))  # writable copy


class Mean(Function):
    def forward(self, x, axes, keepdim):
        self.shape, self.axes, self.keepdim = x.shape, axes, keepdim
        self.count = x.size if axes is None else int(np.prod([x.shape[a] for a in axes]))
        return np.mean(x, axis=axes, keepdims=keepdim)

    def backward(self, dout):
        grad = _restore(dout, self.axes, self.keepdim, self.shape) / self.count
        return grad.astype(dout.dtype, copy=False)


class Var(Function):
    def forward(self, x, axes, correction, keepdim):
        self.axes, self.keepdim = axes, keepdim
        n = x.size if axes is None else int(np.prod([x.shape[a] for a in axes]))
        self.denom = builtins.max(n - correction, 0)
        self.centered = x - np.mean(x, axis=axes, keepdims=True)
        with np.errstate(divide="ignore", invalid="ignore"):
            return np.sum(self.centered ** 2, axis=axes, keepdims=keepdim) / self.denom

    def backward(self, dout):
        d = _restore(dout, self.axes, self.keepdim, self.centered.shape)
        return (d * (2 / self.denom) * self.centered).astype(dout.dtype, copy=False)


class MaxAll(Function):
    """max over every element; ties share the gradient evenly (as PyTorch's `max()`)."""

    def forward(self, x):
        out = np.max(x)
        self.ties = x == out
        return np.asarray(out)

    def backward(self, dout):
        return (self.ties * (dout / self.ties.sum())).astype(dout.dtype, copy=False)


class MaxDim(Function):
    """max along one dim; the gradient goes to the index returned (the first maximum)."""

    def forward(self, x, axis, keepdim):
        self.shape, self.axis, self.keepdim = x.shape, axis, keepdim
        self.indices = np.argmax(x, axis=axis, keepdims=True)
        out = np.take_along_axis(x, self.indices, axis=axis)
        return out if keepdim else np.squeeze(out, axis=axis)

    def backward(self, dout):
        dx = np.zeros(self.shape, dtype=dout.dtype)
        d = dout if self.keepdim else np.expand_dims(dout, self.axis)
        np.put_along_axis(dx, self.indices, d, axis=self.axis)
        return dx


def sum(x: Tensor, dim=None, keepdim: bool = False) -> Tensor:  # noqa: A001 - PyTorch's name
    return Sum.apply(x, axes=normalize_dim("sum", dim, x.ndim), keepdim=keepdim)


def mean(x: Tensor, dim=None, keepdim: bool = False) -> Tensor:
    if x.dtype.kind != "f":
        raise TypeError(f"mean: needs a floating tensor, got {x.dtype}")
    return Mean.apply(x, axes=normalize_dim("mean", dim, x.ndim), keepdim=keepdim)


def var(x: Tensor, dim=None, *, correction: int = 1, keepdim: bool = False) -> Tensor:
    """Variance with Bessel's `correction` (1 = unbiased, PyTorch's default; 0 = biased)."""
    return Var.apply(x, axes=normalize_dim("var", dim, x.ndim), correction=correction,
                     keepdim=keepdim)


MaxResult = namedtuple("MaxResult", ["values", "indices"])


def max(x: Tensor, dim: int | None = None, keepdim: bool = False):  # noqa: A001
    """Largest element; with `dim`, a `(values, indices)` pair as in `torch.max(x, dim)`."""
    if x.data.size == 0:
        raise ValueError("max: the input is empty")
    if dim is None:
        return MaxAll.apply(x)
    (axis,) = normalize_dim("max", dim, x.ndim)
    values = MaxDim.apply(x, axis=axis, keepdim=keepdim)
    indices = np.argmax(x.data, axis=axis, keepdims=keepdim).astype(np.int64)
    return MaxResult(values, Tensor._make(indices))
