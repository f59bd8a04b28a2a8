"""Tensor factories with PyTorch's names: tensor, zeros, ones, randn, rand, arange, ..."""

from __future__ import annotations

import numpy as np

from .autograd.dtype import get_default_dtype
from .autograd.random import default_generator
from .autograd.tensor import Tensor


def _shape(size) -> tuple[int, ...]:
    return tuple(size[0]) if len(size) == 1 and not isinstance(size[0], int) else tuple(size)


def _float_dtype(dtype):
    return np.dtype(dtype) if dtype is not None else get_default_dtype()


def tensor(data, requires_grad: bool = False, dtype=None) -> Tensor:
    """A new tensor holding a copy of `data` (floats default to float32, ints to int64).

    >>> tensor([1.0, 2.0], requires_grad=True)
    tensor([1., 2.], requires_grad=True)
    """
    return Tensor(data, requires_grad=requires_grad, dtype=dtype)


def zeros(*size, dtype=None, requires_grad: bool = False) -> Tensor:
    return Tensor(np.zeros(_shape(size), _float_dtype(dtype)), requires_grad=requires_grad)


def ones(*size, dtype=None, requires_grad: bool = False) -> Tensor:
    return Tensor(np.ones(_shape(size), _float_dtype(dtype)), requires_grad=requires_grad)


def full(size, fill_value, dtype=None, requires_grad: bool = False) -> Tensor:
    return Tensor(np.full(_shape((size,)), fill_value, _float_dtype(dtype)),
                  requires_grad=requires_grad)


def zeros_like(t: Tensor, requires_grad: bool = False) -> Tensor:
    return Tensor(np.zeros_like(t.data), requires_grad=requires_grad)


def ones_like(t: Tensor, requires_grad: bool = False) -> Tensor:
    return Tensor(np.ones_like(t.data), requires_grad=requires_grad)


def randn(*size, dtype=None, requires_grad: bool = False,
          generator: np.random.Generator | None = None) -> Tensor:
    """Standard normal samples from tinyllm's global generator (see `manual_seed`)."""
    rng = generator or default_generator()
    data = rng.standard_normal(_shape(size)).astype(_float_dtype(dtype))
    return Tensor(data, requires_grad=requires_grad)


def rand(*size, dtype=None, requires_grad: bool = False,
         generator: np.random.Generator | None = None) -> Tensor:
    """Uniform samples in [0, 1) from tinyllm's global generator."""
    rng = generator or default_generator()
    return Tensor(rng.random(_shape(size)).astype(_float_dtype(dtype)),
                  requires_grad=requires_grad)


def arange(start, end=None, step=1, dtype=None) -> Tensor:
    if end is None:
        start, end = 0, start
    data = np.arange(start, end, step)
    return Tensor(data, dtype=dtype) if dtype is not None else Tensor(data)
