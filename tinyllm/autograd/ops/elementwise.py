"""Elementwise ops: arithmetic with broadcasting, and the pointwise functions.

Each backward sums its gradient back to its input's shape (`unbroadcast`), so `x + b` with
x (B, T, C) and b (C,) gives db of shape (C,).
"""

from __future__ import annotations

import numpy as np

from ..function import Function
from ..tensor import Tensor
from ._util import broadcast_shape, lift, unbroadcast


class _Binary(Function):
    op_name = "binary op"

    def _check(self, a: np.ndarray, b: np.ndarray) -> None:
        self.a_shape, self.b_shape = a.shape, b.shape
        if a.shape != b.shape:
            broadcast_shape(self.op_name, a.shape, b.shape)


class Add(_Binary):
    op_name = "add"

    def forward(self, a, b):
        self._check(a, b)
        return a + b

    def backward(self, dout):
        return unbroadcast(dout, self.a_shape), unbroadcast(dout, self.b_shape)


class Sub(_Binary):
    op_name = "sub"

    def forward(self, a, b):
        self._check(a, b)
        return a - b

    def backward(self, dout):
        return unbroadcast(dout, self.a_shape), unbroadcast(-dout, self.b_shape)


class Mul(_Binary):
    op_name = "mul"

    def forward(self, a, b):
        self._check(a, b)
        self.a, self.b = a, b
        return a * b

    def backward(self, dout):
        da = unbroadcast(dout * self.b, self.a_shape) if self.needs_input_grad[0] else None
        db = unbroadcast(dout * self.a, self.b_shape) if self.needs_input_grad[1] else None
        return da, db


class Div(_Binary):
    op_name = "div"

    def forward(self, a, b):
        self._check(a, b)
        self.a, self.b = a, b
        return a / b

    def backward(self, dout):
        da = unbroadcast(dout / self.b, self.a_shape) if self.needs_input_grad[0] else None
        db = None
        if self.needs_input_grad[1]:
            db = unbroadcast(-dout * self.a / (self.b * self.b), self.b_shape)
        return da, db


class Pow(_Binary):
    op_name = "pow"

    def forward(self, a, b):
        self._check(a, b)
        self.a, self.b = a, b
        self.out = a ** b
        return self.out

    def backward(self, dout):
        a, b = self.a, self.b
        da = db = None
        if self.needs_input_grad[0]:
            da = unbroadcast(dout * b * a ** (b - 1), self.a_shape)
        if self.needs_input_grad[1]:
            # d(a^b)/db = a^b log a; a^b is 0 where a == 0, which makes 0 * log 0 -> 0.
            with np.errstate(divide="ignore", invalid="ignore"):
                log_a = np.where(a > 0, np.log(np.where(a > 0, a, 1)), np.nan)
            db = unbroadcast(np.where(self.out == 0, 0, dout * self.out * log_a), self.b_shape)
        return da, db


class Neg(Function):
    def forward(self, x):
        return -x

    def backward(self, dout):
        return -dout


class Exp(Function):
    def forward(self, x):
        self.out = np.exp(x)
        return self.out

    def backward(self, dout):
        return dout * self.out


class Log(Function):
    def forward(self, x):
        self.x = x
        return np.log(x)

    def backward(self, dout):
        return dout / self.x


class Sqrt(Function):
    def forward(self, x):
        self.out = np.sqrt(x)
        return self.out

    def backward(self, dout):
        return dout / (2 * self.out)


class Tanh(Function):
    def forward(self, x):
        self.out = np.tanh(x)
        return self.out

    def backward(self, dout):
        return dout * (1 - self.out * self.out)


class Sigmoid(Function):
    def forward(self, x):
        # 1 / (1 + e^-x) for x >= 0, e^x / (1 + e^x) below: written with exp(-|x|) so
        # neither overflows, and without np.where (ten times slower than arithmetic here).
        e = np.exp(-np.abs(x))
        self.out = (np.exp(np.minimum(x, 0)) / (1 + e)).astype(x.dtype, copy=False)
        return self.out

    def backward(self, dout):
        return dout * self.out * (1 - self.out)


class Relu(Function):
    """max(x, 0); NaN stays NaN as in PyTorch. Arithmetic, not np.where: on a (1024, 512)
    float32 array np.maximum takes 0.6 ms and np.where(x > 0, x, 0) 5.7 ms."""

    def forward(self, x):
        self.mask = x > 0
        return np.maximum(x, np.zeros((), dtype=x.dtype))

    def backward(self, dout):
        return dout * self.mask


class Abs(Function):
    def forward(self, x):
        self.sign = np.sign(x)
        return np.abs(x)

    def backward(self, dout):
        return dout * self.sign


class Cast(Function):
    def forward(self, x, dtype):
        self.in_dtype = x.dtype
        return x.astype(dtype)

    def backward(self, dout):
        return dout.astype(self.in_dtype)


class Where(Function):
    """out = a where condition else b (condition is a constant boolean array)."""

    def forward(self, a, b, condition):
        shape = broadcast_shape("where", condition.shape, a.shape, b.shape)
        self.condition, self.a_shape, self.b_shape, self.shape = condition, a.shape, b.shape, shape
        return np.where(condition, a, b)

    def backward(self, dout):
        zero = np.zeros((), dtype=dout.dtype)
        da = unbroadcast(np.where(self.condition, dout, zero), self.a_shape)
        db = unbroadcast(np.where(self.condition, zero, dout), self.b_shape)
        return da, db


class MaskedFill(Function):
    """out = value where mask else x; the mask must broadcast to x's shape."""

    def forward(self, x, mask, value):
        if broadcast_shape("masked_fill", x.shape, mask.shape) != x.shape:
            raise ValueError(f"masked_fill: mask of shape {mask.shape} does not broadcast to "
                             f"the input's shape {x.shape}")
        self.mask = mask
        return np.where(mask, np.asarray(value, dtype=x.dtype), x)

    def backward(self, dout):
        return np.where(self.mask, np.zeros((), dtype=dout.dtype), dout)


def _binary(cls):
    def op(a, b):
        like = a if isinstance(a, Tensor) else b
        return cls.apply(lift(a, like), lift(b, like))

    op.__name__ = cls.__name__.lower()
    op.__doc__ = f"Elementwise {cls.op_name} with broadcasting."
    return op


add, sub, mul, div, pow = (_binary(c) for c in (Add, Sub, Mul, Div, Pow))


def neg(x: Tensor) -> Tensor:
    return Neg.apply(x)


def exp(x: Tensor) -> Tensor:
    return Exp.apply(x)


def log(x: Tensor) -> Tensor:
    return Log.apply(x)


def sqrt(x: Tensor) -> Tensor:
    return Sqrt.apply(x)


def tanh(x: Tensor) -> Tensor:
    return Tanh.apply(x)


def sigmoid(x: Tensor) -> Tensor:
    return Sigmoid.apply(x)


def relu(x: Tensor) -> Tensor:
    return Relu.apply(x)


def abs(x: Tensor) -> Tensor:  # noqa: A001 - PyTorch's name
    return Abs.apply(x)


def to_dtype(x: Tensor, dtype) -> Tensor:
    dtype = np.dtype(dtype)
    if dtype == x.dtype:
        return x
    if dtype.kind != "f" and x.requires_grad:
        raise TypeError(f"to: cannot cast a tensor that requires grad to {dtype}")
    return Cast.apply(x, dtype=dtype)


def where(condition, input, other) -> Tensor:  # noqa: A002 - PyTorch's argument name
    """`input` where `condition` is true, else `other` (PyTorch's `torch.where`)."""
    cond = condition.data if isinstance(condition, Tensor) else np.asarray(condition)
    if cond.dtype != np.bool_:
        raise TypeError(f"where: condition must be boolean, got {cond.dtype}")
    like = input if isinstance(input, Tensor) else other
    return Where.apply(lift(input, like), lift(other, like), condition=cond)


def masked_fill(x: Tensor, mask, value: float) -> Tensor:
    """Fill the positions where `mask` is true with `value` (mask broadcasts to x)."""
    m = mask.data if isinstance(mask, Tensor) else np.asarray(mask)
    if m.dtype != np.bool_:
        raise TypeError(f"masked_fill: mask must be boolean, got {m.dtype}")
    return MaskedFill.apply(x, mask=m, value=value)
