"""Finite-difference gradient checks: the proof that a backward pass is right.

For a function f of tensors, the analytic gradient from `backward()` is compared, element by
element, with the central difference

    df/dx_i ~ (f(x + eps e_i) - f(x - eps e_i)) / (2 eps),

whose error is O(eps^2) (truncation) + O(machine_eps / eps) (rounding). In float64 with
eps = 1e-6 both terms are ~1e-10, so a wrong derivative stands out by many orders of magnitude;
in float32 (machine eps ~1e-7) the rounding term alone is ~0.1 -- checks run in float64.

>>> x = tinyllm.tensor([0.5, -1.0], requires_grad=True, dtype="float64")
>>> gradcheck(lambda t: (t * t).tanh(), x)
True
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np

from .tensor import Tensor


def numerical_grad(f: Callable[[], float], x: Tensor, eps: float) -> np.ndarray:
    """Central differences of the scalar `f()` with respect to every element of `x`."""
    grad = np.zeros(x.shape, dtype=np.float64)
    data = x.data
    for i in np.ndindex(*x.shape):
        saved = data[i]
        data[i] = saved + eps
        f_plus = f()
        data[i] = saved - eps
        f_minus = f()
        data[i] = saved
        grad[i] = (f_plus - f_minus) / (2 * eps)
    return grad


def gradcheck(fn: Callable[..., Tensor], *inputs: Tensor, eps: float = 1e-6,
              atol: float = 1e-7, rtol: float = 1e-5, seed: int = 0) -> bool:
    """Check `fn`'s gradients for every input that requires grad; raise on a mismatch.

    The output is reduced with fixed random weights w (loss = sum(w * fn(...))) so every
    output element, not only their sum, is checked. An element passes when
    |analytic - numeric| <= atol + rtol * |numeric|.
    """
    for t in inputs:
        if t.requires_grad and t.dtype != np.float64:
            raise TypeError(f"gradcheck: inputs must be float64 (got {t.dtype}); float32 "
                            "rounding swamps finite differences")
    out = fn(*inputs)
    weights = np.asarray(np.random.default_rng(seed).standard_normal(out.shape))

    def loss() -> float:
        return float(np.sum(weights * fn(*inputs).data))

    for t in inputs:
        t.grad = None
    (fn(*inputs) * Tensor(weights)).sum().backward()
    for k, t in enumerate(inputs):
        if not t.requires_grad:
            continue
        analytic = np.zeros(t.shape) if t.grad is None else t.grad
        numeric = numerical_grad(loss, t, eps)
        bad = np.abs(analytic - numeric) > atol + rtol * np.abs(numeric)
        if bad.any():
            i = tuple(int(v) for v in np.argwhere(bad)[0])
            raise AssertionError(
                f"gradcheck: input {k} (shape {t.shape}): {int(bad.sum())} of {t.grad.size} "
                f"elements differ; first at {i}: analytic {analytic[i]:.10g}, "
                f"numeric {numeric[i]:.10g} (atol={atol}, rtol={rtol})")
    return True


def max_relative_error(a, b) -> float:
    """max |a - b| / max |b|: the error relative to the reference tensor's scale.

    Parity tests report this figure; it ignores the meaningless element-wise ratios of values
    that are zero up to rounding (a gradient of 1e-18 against 3e-18).
    """
    a, b = np.asarray(a, dtype=np.float64), np.asarray(b, dtype=np.float64)
    if a.shape != b.shape:
        raise ValueError(f"max_relative_error: shapes {a.shape} and {b.shape} differ")
    return float(np.max(np.abs(a - b), initial=0.0) / max(np.max(np.abs(b), initial=0.0), 1e-300))
