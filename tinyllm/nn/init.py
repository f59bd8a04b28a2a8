"""Initialisers, as `torch.nn.init`: each fills a Parameter's array in place and returns it.

Random draws come from `generator` (a NumPy Generator) or, by default, tinyllm's global one
(`tinyllm.manual_seed`). Values are drawn in float64 and then cast, so a float32 and a float64
model built from the same seed hold the same weights up to rounding.

>>> w = Parameter(np.empty((3, 4)))
>>> normal_(w, std=0.02, generator=np.random.default_rng(0)).shape
(3, 4)

fan_in / fan_out follow PyTorch's convention for a weight of shape (out, in): fan_in = in.
"""

from __future__ import annotations

import math

import numpy as np

from ..autograd.dtype import get_default_dtype
from ..autograd.random import default_generator
from ..autograd.tensor import Tensor


def empty(*shape) -> np.ndarray:
    """Zeros of the default dtype: a new Parameter's storage, before an initialiser fills it."""
    return np.zeros(shape, dtype=get_default_dtype())


def _rng(generator):
    return generator if generator is not None else default_generator()


def _fill(tensor: Tensor, values) -> Tensor:
    tensor.data[...] = values
    return tensor


def zeros_(tensor: Tensor) -> Tensor:
    return _fill(tensor, 0)


def ones_(tensor: Tensor) -> Tensor:
    return _fill(tensor, 1)


def constant_(tensor: Tensor, val: float) -> Tensor:
    return _fill(tensor, val)


def normal_(tensor: Tensor, mean: float = 0.0, std: float = 1.0, generator=None) -> Tensor:
    """Fill with samples of N(mean, std^2)."""
    if std < 0:
        raise ValueError(f"normal_: std must be non-negative, got {std}")
    return _fill(tensor, mean + std * _rng(generator).standard_normal(tensor.shape))


def uniform_(tensor: Tensor, a: float = 0.0, b: float = 1.0, generator=None) -> Tensor:
    """Fill with samples of U(a, b)."""
    if a > b:
        raise ValueError(f"uniform_: need a <= b, got a={a}, b={b}")
    return _fill(tensor, _rng(generator).uniform(a, b, tensor.shape))


def _fans(tensor: Tensor) -> tuple[int, int]:
    if tensor.ndim < 2:
        raise ValueError(f"fan in and fan out need a weight with at least 2 dimensions, "
                         f"got shape {tensor.shape}")
    receptive = int(np.prod(tensor.shape[2:])) if tensor.ndim > 2 else 1
    return tensor.shape[1] * receptive, tensor.shape[0] * receptive


def xavier_uniform_(tensor: Tensor, gain: float = 1.0, generator=None) -> Tensor:
    """U(-a, a) with a = gain * sqrt(6 / (fan_in + fan_out)) (Glorot and Bengio, 2010)."""
    fan_in, fan_out = _fans(tensor)
    a = gain * math.sqrt(6.0 / (fan_in + fan_out))
    return uniform_(tensor, -a, a, generator)


def xavier_normal_(tensor: Tensor, gain: float = 1.0, generator=None) -> Tensor:
    """N(0, std^2) with std = gain * sqrt(2 / (fan_in + fan_out))."""
    fan_in, fan_out = _fans(tensor)
    return normal_(tensor, 0.0, gain * math.sqrt(2.0 / (fan_in + fan_out)), generator)


def kaiming_uniform_(tensor: Tensor, a: float = 0.0, generator=None) -> Tensor:
    """U(-bound, bound), bound = sqrt(6 / ((1 + a^2) fan_in)) (He et al., 2015; leaky ReLU a).

    With a = sqrt(5) this is PyTorch's default for `nn.Linear`: U(-1/sqrt(in), 1/sqrt(in)).
    """
    fan_in, _ = _fans(tensor)
    bound = math.sqrt(6.0 / ((1 + a * a) * fan_in))
    return uniform_(tensor, -bound, bound, generator)
