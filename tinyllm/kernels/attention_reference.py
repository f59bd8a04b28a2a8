"""Scaled dot-product attention in NumPy, forward and backward: the equations tinyllm computes.

This is the file to read for attention. `tinyllm.autograd.ops.attention` wraps this pair as one
graph node (`F.scaled_dot_product_attention`); the compiled kernel, ext/attention.pyx, computes
the same result blockwise, is tested against this pair, and takes over where it is built.
Everything here works on plain arrays: no autograd.

Shapes: `...` the batch dimensions (B, nh in a Transformer), L query positions, S key
positions, E query/key features (the head size hs), Ev value features.

Forward::

    scores = scale * q @ k^T                    (..., L, S), scale = 1/sqrt(E) by default
    scores = where(mask, scores, -inf)          boolean mask: True = may attend
       or  = scores + mask                      float mask: added to the scores
    P      = softmax(scores)                    each query's weights over the keys
    P'     = P * keep / (1 - dropout_p)         dropout on the weights (training only)
    out    = P' @ v                             (..., L, Ev)

Backward (dout = dL/dout)::

    dv      = P'^T @ dout                       (..., S, Ev)
    dP      = (dout @ v^T) * keep / (1 - dropout_p)
    dscores = P * (dP - sum_S(dP * P))          the softmax backward, row by row
    dq      = scale * dscores @ k               (..., L, E)
    dk      = scale * dscores^T @ q             (..., S, E)
    dmask   = dscores                           (float masks only)

Only P (and the dropout scale) is kept between the two: one (..., L, S) array.

>>> causal_mask(2, 3, align="top-left").astype(int)       # is_causal=True, as PyTorch
array([[1, 0, 0],
       [1, 1, 0]])
"""

import math
from typing import NamedTuple

import numpy as np

__all__ = ["ALIGNMENTS", "AttentionCache", "attention_backward", "attention_forward",
           "causal_mask"]

ALIGNMENTS = ("top-left", "bottom-right")


def causal_mask(n_queries: int, n_keys: int, align: str = "bottom-right") -> np.ndarray:
    """Boolean causal mask (L, S), True = may attend: each query sees its own key and earlier.

    With L == S both alignments are `tril(ones(L, S))`. They differ when L != S:

    - ``"bottom-right"`` (the default; decoders with a KV cache): the L queries are the
      *last* L of S positions, so query i sits at position S - L + i and sees keys 0..S-L+i;
    - ``"top-left"`` (PyTorch's ``is_causal=True``): query i sees keys 0..i.

    >>> causal_mask(2, 4).astype(int)                     # 2 new tokens after 2 cached ones
    array([[1, 1, 1, 0],
           [1, 1, 1, 1]])
    >>> causal_mask(2, 4, align="top-left").astype(int)
    array([[1, 0, 0, 0],
           [1, 1, 0, 0]])
    """
    if align not in ALIGNMENTS:
        raise ValueError(f"causal_mask: align must be one of {ALIGNMENTS}, got {align!r}")
    diagonal = n_keys - n_queries if align == "bottom-right" else 0
    return np.tri(n_queries, n_keys, k=diagonal, dtype=bool)


class AttentionCache(NamedTuple):
    """What `attention_backward` needs from `attention_forward`."""

    q: np.ndarray               # (..., L, E)
    k: np.ndarray               # (..., S, E)
    v: np.ndarray               # (..., S, Ev)
    probs: np.ndarray           # (..., L, S), softmax output before dropout
    drop_scale: np.ndarray | None  # (..., L, S), keep / (1 - p), or None without dropout
    scale: float


def _allowed(mask: np.ndarray | None, is_causal: bool, n_queries: int,
             n_keys: int) -> np.ndarray | None:
    """The boolean 'may attend' pattern of `mask` and `is_causal` together, or None if all."""
    allowed = None
    if mask is not None:
        allowed = mask if mask.dtype == np.bool_ else ~np.isneginf(mask)
    if is_causal:
        tri = causal_mask(n_queries, n_keys, align="top-left")
        allowed = tri if allowed is None else allowed & tri
    return allowed


def _softmax(scores: np.ndarray) -> np.ndarray:
    """softmax along the last axis; a row that is all -inf gives NaN (zeroed by the caller)."""
    with np.errstate(invalid="ignore"):  # -inf - (-inf) in an all-masked row
        e = np.exp(scores - scores.max(axis=-1, keepdims=True, initial=-np.inf))
    return e / e.sum(axis=-1, keepdims=True)               # (..., L, S)


def _dropout_scale(probs: np.ndarray, dropout_p: float,
                   generator: np.random.Generator | None) -> np.ndarray:
    """keep / (1 - p) with keep ~ Bernoulli(1 - p), drawn from `generator`; (..., L, S)."""
    if generator is None:
        raise ValueError(f"attention_forward: dropout_p={dropout_p} needs a generator (a NumPy "
                         "Generator) to draw the dropout mask, got None")
    keep = generator.random(probs.shape) >= dropout_p
    return (keep / (1.0 - dropout_p)).astype(probs.dtype)


def attention_forward(q, k, v, mask=None, scale=None, is_causal=False, dropout_p=0.0,
                      generator=None):
    """out = dropout(softmax(scale * q @ k^T + mask)) @ v on plain arrays; returns (out, cache).

    `mask` is None, a boolean array (True = may attend) or a float array added to the scores,
    broadcastable to (..., L, S). `is_causal` masks keys after each query, top-left aligned
    (as PyTorch). Rows whose keys are all masked give zeros (as PyTorch 2.x does), not NaN.
    `generator` (a NumPy Generator) draws the dropout mask when dropout_p > 0.
    """
    n_queries, n_keys = q.shape[-2], k.shape[-2]
    if scale is None:
        scale = 1.0 / math.sqrt(q.shape[-1])
    scores = q @ np.swapaxes(k, -1, -2)                     # (..., L, S)
    scores *= scale
    if mask is not None and mask.dtype == np.bool_:
        scores = np.where(mask, scores, -np.inf)            # (..., L, S)
    elif mask is not None:
        scores = scores + mask.astype(scores.dtype, copy=False)
    if is_causal:
        scores = np.where(causal_mask(n_queries, n_keys, align="top-left"), scores, -np.inf)
    probs = _softmax(scores)                                # (..., L, S)
    allowed = _allowed(mask, is_causal, n_queries, n_keys)
    if allowed is not None and n_keys:
        dead = ~allowed.any(axis=-1, keepdims=True)         # queries that may see no key
        if dead.any():
            # softmax of an all -inf row is 0/0; PyTorch returns zeros there, so do we.
            probs = np.where(dead, np.zeros((), probs.dtype), probs)
    drop_scale = _dropout_scale(probs, dropout_p, generator) if dropout_p > 0.0 else None
    weights = probs if drop_scale is None else probs * drop_scale
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
    # The softmax Jacobian diag(P) - P P^T, applied row by row without forming it.
    dscores = probs * (dprobs - (dprobs * probs).sum(axis=-1, keepdims=True))   # (..., L, S)
    dscaled = dscores * scale if scale != 1.0 else dscores
    dq = dscaled @ k                                        # (..., L, E)
    dk = np.swapaxes(dscaled, -1, -2) @ q                   # (..., S, E)
    return dq, dk, dv, dscores
