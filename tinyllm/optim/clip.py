"""`clip_grad_norm_`: rescale all gradients together so their joint norm is at most `max_norm`.

The total norm treats every gradient of every parameter as one long vector:
total = || (||g_1||, ||g_2||, ...) ||, which for the 2-norm is sqrt(sum of all g^2). If it
exceeds `max_norm`, every gradient is multiplied by max_norm / (total + 1e-6), so the
direction of the update is kept and only its length shrinks. This is PyTorch's
`torch.nn.utils.clip_grad_norm_`, with the same 1e-6 and the same return value (the norm
*before* clipping, which is what a training log wants to show):

>>> import numpy as np, tinyllm
>>> w = tinyllm.tensor([0.0, 0.0], requires_grad=True)
>>> w.grad = np.array([3.0, 4.0])
>>> float(clip_grad_norm_([w], max_norm=1.0))
5.0
>>> np.round(w.grad, 6)
array([0.6, 0.8])
"""

from __future__ import annotations

import math

import numpy as np

from ..autograd import get_default_dtype


def clip_grad_norm_(parameters, max_norm: float, norm_type: float = 2.0,
                    error_if_nonfinite: bool = False):
    """Scale the gradients of `parameters` in place so their total norm is <= `max_norm`.

    `parameters` is one tensor or an iterable of them; those without a gradient are skipped.
    `norm_type` is p > 0 or `inf` (the largest absolute entry; "inf" is accepted too).
    Returns the total norm before clipping as a NumPy scalar of the gradients' dtype
    (PyTorch returns a 0-d tensor; both have `.item()`). A non-finite norm raises
    RuntimeError if `error_if_nonfinite`, and otherwise propagates into the gradients, as in
    PyTorch (NaN stays NaN, so a diverged run is visible rather than hidden).
    """
    if hasattr(parameters, "data") and hasattr(parameters, "grad"):
        parameters = [parameters]
    grads = [p.grad for p in parameters if p.grad is not None]
    norm_type = float(norm_type)
    if not (norm_type > 0):
        raise ValueError(f"clip_grad_norm_: invalid norm_type={norm_type}; "
                         "expected a number > 0 or inf")
    max_norm = float(max_norm)
    if not (max_norm >= 0):
        raise ValueError(f"clip_grad_norm_: invalid max_norm={max_norm}; expected max_norm >= 0")
    if not grads:
        return np.dtype(get_default_dtype()).type(0.0)

    norms = [_vector_norm(g, norm_type) for g in grads]
    total = _vector_norm(np.array(norms, dtype=np.result_type(*norms)), norm_type)
    if error_if_nonfinite and not np.isfinite(total):
        raise RuntimeError(
            f"clip_grad_norm_: the total norm of order {norm_type} of the gradients is "
            f"{total}, so it cannot be clipped; to scale the gradients by the non-finite norm "
            "anyway, pass error_if_nonfinite=False")
    clip_coef = max_norm / (total + 1e-6)
    # Multiplying by a clamped coefficient of exactly 1 would change nothing, so skip it; a NaN
    # coefficient fails `>= 1` and is applied, as PyTorch's clamp would let it through.
    if not clip_coef >= 1.0:
        for g in grads:
            g *= clip_coef
    return total


def _vector_norm(x: np.ndarray, p: float):
    """The p-norm of all of `x`'s entries, as a scalar of `x`'s dtype."""
    if p == 2.0:
        flat = x.reshape(-1)
        return np.sqrt(np.vdot(flat, flat))  # a BLAS dot: no temporary array
    if math.isinf(p):
        return np.max(np.abs(x)) if x.size else x.dtype.type(0.0)
    return np.sum(np.abs(x) ** p) ** (1.0 / p)
