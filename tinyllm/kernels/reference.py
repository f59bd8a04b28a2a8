"""NumPy twins of the compiled kernels: same names, same signatures, same results.

Every kernel works along the LAST axis of an array of any shape ``(..., C)``, float32 or
float64, and returns a new array with the input's shape and dtype. ``C`` is the number of
classes (columns) softmax normalises over; ``...`` are any leading axes (rows).

These are the definitions the compiled kernels in ``ext/`` are tested against, and what
tinyllm runs on when the compiled module is missing. Keep them short and obviously right.
Attention's pair (whole-matrix scores and probabilities, ``(..., L, S)``) is in
``attention_reference.py`` with its equations, and re-exported here.

>>> import numpy as np
>>> softmax_forward(np.array([0.0, 0.0, -np.inf]))   # -inf: a masked position
array([0.5, 0.5, 0. ])

A row that is entirely ``-inf`` (every position masked) has no defined softmax; like
``torch.softmax`` the result is NaN for that row, in both forward and backward.
"""

import math
from typing import NamedTuple

import numpy as np

from .._checks import choice

# Attention's pair lives in its own file, the one to read for the equations; every twin is
# still reachable here as reference.<name>.
from .attention_reference import (  # noqa: F401 - re-exported
    AttentionCache,
    attention_backward,
    attention_forward,
)

__all__ = [
    "attention_backward",
    "attention_forward",
    "erf",
    "gelu_backward",
    "gelu_forward",
    "layer_norm_backward",
    "layer_norm_forward",
    "softmax_forward",
    "softmax_backward",
    "log_softmax_forward",
    "log_softmax_backward",
    "quantized_linear",
    "matmul",
    "adam_update",
]

SUPPORTED_DTYPES = (np.dtype(np.float32), np.dtype(np.float64))


def check_input(x, name: str) -> np.ndarray:
    """Return ``x`` as an ndarray after checking it is float32/float64 with >= 1 dimension."""
    x = np.asarray(x)
    if x.dtype not in SUPPORTED_DTYPES:
        raise TypeError(f"{name}: expected a float32 or float64 array, got dtype {x.dtype}")
    if x.ndim == 0:
        raise ValueError(f"{name}: expected an array with at least 1 dimension, got a scalar")
    return x


def check_pair(y, dy, name: str) -> tuple[np.ndarray, np.ndarray]:
    """Check a (saved output, upstream gradient) pair; ``dy`` is cast to ``y``'s dtype."""
    y = check_input(y, name)
    dy = np.asarray(dy)
    if dy.shape != y.shape:
        raise ValueError(f"{name}: y and dy must have the same shape, got {y.shape} and "
                         f"{dy.shape}")
    # The output dtype follows y (the forward's dtype), so a float64 dy cannot upcast it.
    return y, dy.astype(y.dtype, copy=False)


def _minus_row_max(x: np.ndarray) -> np.ndarray:
    """x - max(x) along the last axis; an all -inf row gives NaN, quietly, as documented."""
    with np.errstate(invalid="ignore"):
        return x - x.max(axis=-1, keepdims=True)


def softmax_forward(x):
    """y = exp(x - max x) / sum exp(x - max x) along the last axis."""
    x = check_input(x, "softmax_forward")
    if x.size == 0:
        return np.empty(x.shape, x.dtype)
    # Subtracting the row max keeps exp from overflowing; it cancels in the ratio.
    e = np.exp(_minus_row_max(x))                          # (..., C)
    return e / e.sum(axis=-1, keepdims=True)               # (..., C)


def softmax_backward(y, dy):
    """dx = y * (dy - sum(dy * y)) along the last axis; ``y`` is softmax_forward's output."""
    y, dy = check_pair(y, dy, "softmax_backward")
    # The Jacobian is diag(y) - y y^T; applied to dy it never needs to be formed.
    return y * (dy - (dy * y).sum(axis=-1, keepdims=True))  # (..., C)


def log_softmax_forward(x):
    """y = (x - max x) - log(sum exp(x - max x)) along the last axis."""
    x = check_input(x, "log_softmax_forward")
    if x.size == 0:
        return np.empty(x.shape, x.dtype)
    z = _minus_row_max(x)                                  # (..., C)
    # log(softmax) would take the log of probabilities that underflowed to 0; this does not.
    return z - np.log(np.exp(z).sum(axis=-1, keepdims=True))


def log_softmax_backward(y, dy):
    """dx = dy - exp(y) * sum(dy) along the last axis; ``y`` is log_softmax_forward's output."""
    y, dy = check_pair(y, dy, "log_softmax_backward")
    return dy - np.exp(y) * dy.sum(axis=-1, keepdims=True)  # (..., C)


# Taylor series of erf about 0 in powers of x^2, highest power first (for Horner's rule):
# erf(x) = 2/sqrt(pi) * x * sum_n (-1)^n x^(2n) / (n! (2n + 1)). Sixty terms reach double
# precision for |x| < 3; the largest term (~170, near n = 9 at x = 3) costs at most ~2e-14
# absolute to cancellation.
_ERF_TAYLOR = [(-1) ** n / (math.factorial(n) * (2 * n + 1)) for n in range(60)][::-1]
_ERFC_CF_TERMS = 60


def erf(x):
    """The error function, elementwise (NumPy has none; GELU's exact form needs it).

    |x| < 3: the Taylor series. |x| >= 3: 1 - erfc(|x|) from the continued fraction
    erfc(x) = exp(-x^2)/sqrt(pi) / (x + (1/2)/(x + 1/(x + (3/2)/(x + 2/(x + ...))))),
    (Abramowitz & Stegun 7.1.14) evaluated from its tail. Max error ~5e-14.
    """
    x = check_input(np.atleast_1d(x), "erf").reshape(np.shape(x))
    x64 = x.astype(np.float64)
    out = np.empty_like(x64)
    small = np.abs(x64) < 3.0
    xs = x64[small]
    z, acc = xs * xs, np.zeros_like(xs)
    for c in _ERF_TAYLOR:
        acc = acc * z + c
    out[small] = (2.0 / math.sqrt(math.pi)) * xs * acc
    xl = np.abs(x64[~small])
    tail = np.zeros_like(xl)
    for k in range(_ERFC_CF_TERMS, 0, -1):
        tail = (k / 2.0) / (xl + tail)
    with np.errstate(invalid="ignore"):  # inf / inf at |x| = inf: erfc is 0 there
        erfc = np.exp(-xl * xl) / math.sqrt(math.pi) / (xl + tail)
    out[~small] = np.sign(x64[~small]) * (1.0 - np.nan_to_num(erfc, nan=0.0))
    return out.astype(x.dtype, copy=False)


# ------------------------------------------------------------------ GELU
_SQRT_2_OVER_PI = math.sqrt(2.0 / math.pi)
_GELU_C = 0.044715
_GELU_FORMS = ("none", "tanh")


def is_tanh_gelu(approximate: str, name: str) -> bool:
    """True for GELU's tanh form, False for the exact one; any other name is an error."""
    return choice("approximate", approximate, _GELU_FORMS, where=name) == "tanh"


def gelu_forward(x, approximate="tanh"):
    """GELU(x) = x * Phi(x) exactly (``"none"``, via erf) or GPT-2's tanh approximation:
    0.5 x (1 + tanh(sqrt(2/pi) (x + 0.044715 x^3))). Elementwise, any shape."""
    x = check_input(x, "gelu_forward")
    if is_tanh_gelu(approximate, "gelu_forward"):
        t = np.tanh(_SQRT_2_OVER_PI * (x + _GELU_C * (x * x * x)))   # not x**3: far slower
        return 0.5 * x * (1 + t)
    return x * (0.5 * (1 + erf(x / math.sqrt(2.0)))).astype(x.dtype, copy=False)


def gelu_backward(x, dy, approximate="tanh"):
    """dL/dx of gelu_forward, from the forward's *input* ``x`` and dL/dy."""
    x, dy = check_pair(x, dy, "gelu_backward")
    if is_tanh_gelu(approximate, "gelu_backward"):
        t = np.tanh(_SQRT_2_OVER_PI * (x + _GELU_C * (x * x * x)))
        du = _SQRT_2_OVER_PI * (1 + 3 * _GELU_C * x * x)
        return dy * (0.5 * (1 + t) + 0.5 * x * (1 - t * t) * du)
    cdf = (0.5 * (1 + erf(x / math.sqrt(2.0)))).astype(x.dtype, copy=False)
    pdf = np.exp(-0.5 * x * x) / math.sqrt(2 * math.pi)
    return (dy * (cdf + x * pdf)).astype(x.dtype, copy=False)


# ------------------------------------------------------------------ LayerNorm
def layer_norm_forward(x, weight, bias, eps):
    """Normalise the last axis of x (..., D): (y, mean, rstd), mean and rstd of shape (...).

    y = (x - mean) * rstd * weight + bias, rstd = 1 / sqrt(var + eps); weight and bias
    (D,) may be None.
    """
    x = check_input(x, "layer_norm_forward")
    mean = x.mean(axis=-1, keepdims=True)                              # (..., 1)
    var = np.mean((x - mean) ** 2, axis=-1, keepdims=True)
    rstd = (1.0 / np.sqrt(var + eps)).astype(x.dtype, copy=False)      # (..., 1)
    y = (x - mean) * rstd
    if weight is not None:
        y = y * weight
    if bias is not None:
        y = y + bias
    return y.astype(x.dtype, copy=False), mean[..., 0], rstd[..., 0]


def layer_norm_backward(x, dy, mean, rstd, weight):
    """(dx, dweight, dbias) of layer_norm_forward; dweight, dbias (D,) summed over rows.

    With xhat = (x - mean) rstd and g = dy * weight:
    dx = rstd * (g - mean(g) - xhat * mean(g * xhat)).
    """
    x, dy = check_pair(x, dy, "layer_norm_backward")
    d = x.shape[-1]
    xhat = (x - mean[..., None]) * rstd[..., None]                     # (..., D)
    g = dy if weight is None else dy * weight
    dx = rstd[..., None] * (g - g.mean(axis=-1, keepdims=True)
                            - xhat * (g * xhat).mean(axis=-1, keepdims=True))
    dweight = (dy * xhat).reshape(-1, d).sum(axis=0)
    dbias = dy.reshape(-1, d).sum(axis=0)
    return dx.astype(x.dtype, copy=False), dweight, dbias


# ------------------------------------------------------------------ quantized weights
def unpack_int4(packed, group_size):
    """Bytes (out, in / 2) holding two 4-bit values each -> int8 values (out, in) in [-8, 7].

    llama.cpp's Q4_0 layout: in each group of `group_size` inputs, byte j holds input j in
    its low nibble and input j + group_size / 2 in its high one, each stored as value + 8.
    """
    out_f, half = packed.shape
    h = group_size // 2
    groups = packed.reshape(out_f, half // h, h)                       # (out, in/g, g/2)
    q = np.empty((out_f, half // h, 2 * h), dtype=np.int8)
    q[..., :h] = (groups & 0x0F).astype(np.int8) - 8
    q[..., h:] = (groups >> 4).astype(np.int8) - 8
    return q.reshape(out_f, 2 * half)


def dequantize(qweight, scale, group_size, dtype):
    """The weight (out, in) that stored integers and scales stand for, in `dtype`:
    int8 (out, in) times a scale per tensor (1,) or per row (out,) when group_size is 0;
    packed 4-bit (out, in / 2) times a scale per group of `group_size` inputs (out, in / g)."""
    s = np.asarray(scale).astype(dtype)
    if not group_size:
        return qweight.astype(dtype) * s[:, None]
    values = unpack_int4(qweight, group_size)                          # (out, in)
    out_f, in_f = values.shape
    w = values.reshape(out_f, in_f // group_size, group_size).astype(dtype) * s[..., None]
    return w.reshape(out_f, in_f)


def matmul(a, b, bias=None):
    """c (M, N) = a (M, K) @ b (K, N) (+ bias (N,) on every row), 2-D float arrays: every
    linear layer's product; c has the product's dtype.

    Here NumPy's, on its BLAS threads. The compiled twin splits it over tinyllm's own threads
    (one pool for products and kernels alike), writes the bias inside each thread's block,
    and streams the weight once when there are only a few rows, as in generation."""
    a, b = check_input(a, "matmul"), check_input(b, "matmul")
    if a.ndim != 2 or b.ndim != 2 or a.shape[1] != b.shape[0]:
        raise ValueError(f"matmul: expected 2-D arrays (M, K) and (K, N), got shapes {a.shape} "
                         f"and {b.shape}")
    c = a @ b
    if bias is not None:
        if np.shape(bias) != (b.shape[1],):
            raise ValueError(f"matmul: bias must have shape ({b.shape[1]},), got "
                             f"{np.shape(bias)}")
        c += bias
    return c


def quantized_linear(x, qweight, scale, group_size, bias=None):
    """y (..., out) = x (..., in) @ W^T + bias with W = dequantize(qweight, scale, group_size);
    y has x's dtype (float32 or float64)."""
    x = check_input(x, "quantized_linear")
    w = dequantize(qweight, scale, group_size, x.dtype)                    # (out, in)
    # Leading dims folded into rows: one GEMM, not NumPy's loop of per-batch products.
    y = x.reshape(-1, x.shape[-1]) @ w.T                                   # (N, out)
    if bias is not None:
        y += bias
    return y.reshape(*x.shape[:-1], w.shape[0])                           # (..., out)


class AdamHyper(NamedTuple):
    """One Adam(W) step's hyperparameters (torch.optim.Adam's names; `step` counts from 1)."""

    lr: float
    beta1: float
    beta2: float
    eps: float
    weight_decay: float
    decoupled: bool         # AdamW's decay of p, not Adam's L2 penalty added to g
    maximize: bool
    step: int


def adam_update(p, g, m, v, vmax, hyper: AdamHyper, scratch=None):
    """One Adam(W) step in place on p, m, v (and vmax, the running max of v, for amsgrad; else
    None) from the gradient g, all of p's shape and dtype. `scratch`: two arrays like p to
    work in (else they are allocated). g is never modified.

    The equations are tinyllm.optim.adamw's docstring; they are written here as PyTorch
    evaluates them (its lerp for m, its product order for v), so the two agree to rounding.
    Each NumPy operation rounds a Python-float constant to p's dtype first: the compiled twin
    does exactly that, and agrees to the bit."""
    a, b = scratch if scratch is not None else (np.empty_like(p), np.empty_like(p))
    h = hyper
    if h.maximize:
        g = np.negative(g, out=a)
    if h.weight_decay != 0:
        if h.decoupled:
            p *= 1 - h.lr * h.weight_decay
        else:
            np.multiply(p, h.weight_decay, out=b)
            g = np.add(g, b, out=a)
    # m.lerp_(g, 1 - beta1), with PyTorch's two branches for accuracy near each end.
    weight = 1 - h.beta1
    np.subtract(g, m, out=b)
    if weight < 0.5:
        m += np.multiply(b, weight, out=b)
    else:
        np.subtract(g, np.multiply(b, 1 - weight, out=b), out=m)
    # v.mul_(beta2).addcmul_(g, g, value=1 - beta2): the product in PyTorch's order.
    v *= h.beta2
    np.multiply(g, 1 - h.beta2, out=b)
    v += np.multiply(b, g, out=b)
    if vmax is not None:
        v = np.maximum(vmax, v, out=vmax)
    bias_correction1 = 1 - h.beta1 ** h.step
    bias_correction2 = 1 - h.beta2 ** h.step
    denom = np.sqrt(v, out=a)
    denom /= bias_correction2 ** 0.5
    denom += h.eps
    np.multiply(m, h.lr / bias_correction1, out=b)
    p -= np.divide(b, denom, out=b)


def adam_constants(h: AdamHyper) -> tuple:
    """The constants of one step in the order adam_rows.h's struct takes them (the compiled
    twin rounds each to p's dtype, as NumPy does above)."""
    decay = 1 - h.lr * h.weight_decay if h.decoupled and h.weight_decay != 0 else 1.0
    l2 = h.weight_decay if not h.decoupled else 0.0
    weight = 1 - h.beta1
    return (decay, l2, weight, 1 - weight, h.beta2, 1 - h.beta2,
            (1 - h.beta2 ** h.step) ** 0.5, h.eps, h.lr / (1 - h.beta1 ** h.step))
