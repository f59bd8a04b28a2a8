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

The plain-array pair `attention_forward` / `attention_backward` below is the whole
computation; `ScaledDotProductAttention` only wraps it for autograd. A compiled kernel with the
same signatures, exposed as `tinyllm.kernels.attention_forward` / `attention_backward`, takes
over automatically (see `_kernel`).
"""

from __future__ import annotations

import math
import numbers
from typing import NamedTuple

import numpy as np

from ... import kernels
from ..function import Function
from ..random import default_generator
from ..tensor import Tensor
from ._util import broadcast_shape, unbroadcast


class AttentionCache(NamedTuple):
    """What `attention_backward` needs from `attention_forward`."""

    q: np.ndarray               # (..., L, E)
    k: np.ndarray               # (..., S, E)
    v: np.ndarray               # (..., S, Ev)
    probs: np.ndarray           # (..., L, S), softmax output before dropout
    drop_scale: np.ndarray | None  # (..., L, S), keep / (1 - p), or None without dropout
    scale: float


def causal_mask(n_queries: int, n_keys: int) -> np.ndarray:
    """PyTorch's `is_causal` mask, `tril(ones(L, S))`: query i may see keys 0..i.

    It is aligned to the top-left corner. When L < S (queries that come after cached keys)
    that is *not* what a decoder wants -- build the bottom-right mask yourself (see
    `tinyllm.nn.attention.causal_mask`).

    >>> causal_mask(2, 3).astype(int)
    array([[1, 0, 0],
           [1, 1, 0]])
    """
    return np.tri(n_queries, n_keys, dtype=bool)


def _allowed(mask: np.ndarray | None, is_causal: bool, n_queries: int,
             n_keys: int) -> np.ndarray | None:
    """The boolean 'may attend' pattern of `mask` and `is_causal` together, or None if all."""
    allowed = None
    if mask is not None:
        allowed = mask if mask.dtype == np.bool_ else ~np.isneginf(mask)
    if is_causal:
        tri = causal_mask(n_queries, n_keys)
        allowed = tri if allowed is None else allowed & tri
    return allowed


def attention_forward(q, k, v, mask=None, scale=None, is_causal=False, dropout_p=0.0,
                      generator=None):
    """out = dropout(softmax(scale * q @ k^T + mask)) @ v on plain arrays; returns (out, cache).

    `mask` is None, a boolean array (True = may attend) or a float array added to the scores,
    broadcastable to (..., L, S). Rows whose keys are all masked give zeros (as PyTorch 2.x
    does), not NaN. `generator` (a NumPy Generator) draws the dropout mask.
    """
    n_queries, n_keys = q.shape[-2], k.shape[-2]
    if scale is None:
        scale = 1.0 / math.sqrt(q.shape[-1])
    scores = q @ np.swapaxes(k, -1, -2)                     # (..., L, S)
    scores *= scale
    if mask is not None:
        if mask.dtype == np.bool_:
            scores = np.where(mask, scores, -np.inf)        # (..., L, S)
        else:
            scores = scores + mask.astype(scores.dtype, copy=False)
    if is_causal:
        scores = np.where(causal_mask(n_queries, n_keys), scores, -np.inf)
    probs = kernels.softmax_forward(scores)                 # (..., L, S)
    allowed = _allowed(mask, is_causal, n_queries, n_keys)
    if allowed is not None and n_keys:
        dead = ~allowed.any(axis=-1, keepdims=True)         # queries that may see no key
        if dead.any():
            # softmax of an all -inf row is 0/0; PyTorch returns zeros there, so do we.
            probs = np.where(dead, np.zeros((), probs.dtype), probs)
    drop_scale = None
    weights = probs
    if dropout_p > 0.0:
        rng = generator if generator is not None else default_generator()
        keep = rng.random(probs.shape) >= dropout_p
        drop_scale = (keep / (1.0 - dropout_p)).astype(probs.dtype)   # (..., L, S)
        weights = probs * drop_scale
    out = weights @ v                                       # (..., L, Ev)
    return out, AttentionCache(q, k, v, probs, drop_scale, float(scale))


def attention_backward(dout, cache: AttentionCache):
    """Gradients (dq, dk, dv, dscores) of `attention_forward`, given dL/dout (..., L, Ev).

    Each gradient has the broadcast batch shape; the caller sums it back to its input's shape.
    `dscores` (..., L, S) is also the gradient of an additive float mask.
    """
    q, k, v, probs, drop_scale, scale = cache
    weights = probs if drop_scale is None else probs * drop_scale
    dv = np.swapaxes(weights, -1, -2) @ dout                # (..., S, Ev)
    dprobs = dout @ np.swapaxes(v, -1, -2)                  # (..., L, S)
    if drop_scale is not None:
        dprobs *= drop_scale
    dscores = kernels.softmax_backward(probs, dprobs)       # (..., L, S)
    dscaled = dscores * scale if scale != 1.0 else dscores
    dq = dscaled @ k                                        # (..., L, E)
    dk = np.swapaxes(dscaled, -1, -2) @ q                   # (..., S, E)
    return dq, dk, dv, dscores


def _kernel(name: str):
    """The compiled kernel `name` when `tinyllm.kernels` provides one, else the NumPy pair.

    This is the dispatch point: a later kernel adds `attention_forward` / `attention_backward`
    with the signatures above, and every caller picks it up without changing.
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
