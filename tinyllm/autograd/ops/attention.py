"""Scaled dot-product attention as one fused op: softmax(q k^T * scale + mask) v.

Shapes: `...` the batch dimensions (usually B, nh), L query positions, S key positions,
E query/key features, Ev value features.

Forward, written out::

    scores = scale * q @ k^T                    (..., L, S)
    scores = where(mask, scores, -inf)          boolean mask: True = may attend
       or  = scores + mask                      float mask: added to the scores
    P      = softmax(scores)                    each query's weights over the keys
    P'     = P * keep / (1 - dropout_p)         dropout on the weights (training only)
    out    = P' @ v                             (..., L, Ev)

Backward (dout = dL/dout)::

    dv      = P'^T @ dout
    dP      = (dout @ v^T) * keep / (1 - dropout_p)
    dscores = P * (dP - sum_S(dP * P))          the softmax backward, row by row
    dq      = scale * dscores @ k
    dk      = scale * dscores^T @ q
    dmask   = dscores                           (float masks only, summed to the mask's shape)

Only P (and the dropout scale) is kept between the two: one (..., L, S) array, the same
memory as the composed version's softmax output but one graph node instead of seven.

The plain-array pair `attention_forward` / `attention_backward` (defined in
`tinyllm.kernels.reference`, re-exported here) is the whole computation;
`ScaledDotProductAttention` only wraps it for autograd. The compiled kernel with the same
signatures (ext/attention.pyx: causal or boolean masks, blockwise with an online softmax, so it
keeps a per-row log-sum-exp instead of P) is `tinyllm.kernels.attention_forward` /
`attention_backward` when it is built, and takes over automatically (see `_kernel`).
"""

from __future__ import annotations

import math
import numbers

import numpy as np

from ... import kernels
from ...kernels.reference import (  # noqa: F401 - re-exported: the NumPy pair lives there
    AttentionCache,
    _allowed,
    attention_backward,
    attention_forward,
    causal_mask,
)
from ..function import Function
from ..tensor import Tensor
from ._util import broadcast_shape, unbroadcast


def _kernel(name: str):
    """The active backend's kernel `name` (compiled, or the NumPy pair), else the NumPy pair.

    This is the dispatch point: tests swap `tinyllm.kernels.attention_forward` /
    `attention_backward` here, and every caller picks them up without changing.
    """
    return getattr(kernels, name, None) or globals()[name]


class ScaledDotProductAttention(Function):
    """One graph node for softmax(q k^T * scale + mask) v; the inputs are q, k, v and the mask.

    Gradients flow to q, k, v, and to a float mask that requires grad (a learned bias).
    """

    def forward(self, q, k, v, mask, scale, is_causal, dropout_p, generator):
        self.shapes = (q.shape, k.shape, v.shape, None if mask is None else mask.shape)
        out, self.cache = _kernel("attention_forward")(
            q, k, v, mask, scale, is_causal, dropout_p, generator)
        return out

    def backward(self, dout):
        dq, dk, dv, dscores = _kernel("attention_backward")(dout, self.cache)
        q_shape, k_shape, v_shape, mask_shape = self.shapes
        dmask = None
        if len(self.needs_input_grad) > 3 and self.needs_input_grad[3]:
            dmask = unbroadcast(dscores, mask_shape)
        return (unbroadcast(dq, q_shape), unbroadcast(dk, k_shape), unbroadcast(dv, v_shape),
                dmask)


def _check_inputs(q: Tensor, k: Tensor, v: Tensor) -> tuple[int, ...]:
    """Validate q, k, v; return the scores' shape (..., L, S)."""
    for name, t in (("query", q), ("key", k), ("value", v)):
        if t.ndim < 2:
            raise ValueError(f"scaled_dot_product_attention: {name} needs at least 2 "
                             f"dimensions (..., positions, features), got shape {t.shape}")
        if t.dtype.kind != "f":
            raise TypeError(f"scaled_dot_product_attention: {name} must be floating, "
                            f"got {t.dtype}")
    if not q.dtype == k.dtype == v.dtype:
        raise TypeError(f"scaled_dot_product_attention: query, key and value must share a "
                        f"dtype, got {q.dtype}, {k.dtype} and {v.dtype}")
    if q.shape[-1] != k.shape[-1]:
        raise ValueError(f"scaled_dot_product_attention: query has {q.shape[-1]} features "
                         f"(shape {q.shape}) but key has {k.shape[-1]} (shape {k.shape}); "
                         "they must match")
    if k.shape[-2] != v.shape[-2]:
        raise ValueError(f"scaled_dot_product_attention: key has {k.shape[-2]} positions "
                         f"(shape {k.shape}) but value has {v.shape[-2]} (shape {v.shape}); "
                         "they must match")
    batch = broadcast_shape("scaled_dot_product_attention", q.shape[:-2], k.shape[:-2],
                            v.shape[:-2])
    return (*batch, q.shape[-2], k.shape[-2])


def _check_mask(mask: np.ndarray, scores_shape: tuple[int, ...]) -> None:
    if mask.dtype != np.bool_ and mask.dtype.kind != "f":
        raise TypeError(f"scaled_dot_product_attention: attn_mask must be boolean (True = may "
                        f"attend) or floating (added to the scores), got {mask.dtype}")
    try:
        fits = np.broadcast_shapes(mask.shape, scores_shape) == tuple(scores_shape)
    except ValueError:
        fits = False
    if not fits:
        raise ValueError(f"scaled_dot_product_attention: attn_mask of shape {mask.shape} does "
                         f"not broadcast to the attention scores' shape (..., L, S) = "
                         f"{tuple(scores_shape)}")


def scaled_dot_product_attention(query: Tensor, key: Tensor, value: Tensor, attn_mask=None,
                                 dropout_p: float = 0.0, is_causal: bool = False,
                                 scale: float | None = None, *,
                                 generator: np.random.Generator | None = None) -> Tensor:
    """softmax(query @ key^T * scale + attn_mask) @ value, as `torch.nn.functional`'s.

    query (..., L, E), key (..., S, E), value (..., S, Ev) -> (..., L, Ev).

    - `attn_mask`: boolean (True = may attend, False = masked out) or floating (added to the
      scores, e.g. 0 and -inf), broadcastable to (..., L, S). A float mask that requires grad
      receives one.
    - `is_causal`: query i attends to keys 0..i -- PyTorch's top-left-aligned
      `tril(ones(L, S))`, also when L != S. Give either `is_causal` or `attn_mask`, not both
      (as PyTorch); to combine them, pass their conjunction as `attn_mask`.
    - `scale`: defaults to 1/sqrt(E).
    - `dropout_p`: dropout on the attention weights, applied whenever it is > 0 (pass 0.0
      in evaluation, as with PyTorch's functional form); `generator` draws its mask
      (default: tinyllm's global generator).

    A query whose keys are all masked out gets zeros, as in PyTorch 2.x.

    >>> q = tinyllm.randn(1, 2, 4, 8)                      # (B, nh, T, hs)
    >>> scaled_dot_product_attention(q, q, q, is_causal=True).shape
    (1, 2, 4, 8)
    """
    scores_shape = _check_inputs(query, key, value)
    if not 0.0 <= dropout_p < 1.0:
        raise ValueError(f"scaled_dot_product_attention: dropout_p must be in [0, 1), "
                         f"got {dropout_p}")
    if scale is not None and not (isinstance(scale, numbers.Real) and math.isfinite(scale)):
        raise ValueError(f"scaled_dot_product_attention: scale must be a finite number or "
                         f"None, got {scale!r}")
    mask_t = None
    if attn_mask is not None and is_causal:
        raise ValueError("scaled_dot_product_attention: give attn_mask or is_causal=True, not "
                         "both (as PyTorch); to combine them, pass attn_mask & causal_mask(L, S)")
    if attn_mask is not None:
        mask_t = attn_mask if isinstance(attn_mask, Tensor) else Tensor._make(
            np.asarray(attn_mask))
        _check_mask(mask_t.data, scores_shape)
    return ScaledDotProductAttention.apply(
        query, key, value, mask_t, scale=None if scale is None else float(scale),
        is_causal=bool(is_causal),
        dropout_p=float(dropout_p), generator=generator)
