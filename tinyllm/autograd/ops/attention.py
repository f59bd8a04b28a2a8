"""Scaled dot-product attention as one fused op: softmax(q k^T * scale + mask) v.

Shapes: `...` the batch dimensions (usually B, nh), L query positions, S key positions,
E query/key features, Ev value features.

The equations, forward and backward, are in `tinyllm/kernels/attention_reference.py`: the
NumPy pair `attention_forward` / `attention_backward` (re-exported here), to be read top to
bottom. This module adds what autograd needs and nothing else:

- `ScaledDotProductAttention`, one graph node (instead of seven composed ones) that calls
  `tinyllm.kernels.attention_forward` / `attention_backward` -- that NumPy pair, or the
  compiled kernel with the same signatures (ext/attention.pyx: blockwise, with an online
  softmax) where it is built -- and sums each gradient back to its input's shape;
- `scaled_dot_product_attention`, PyTorch's function: it checks the inputs and the mask
  (`check_attn_mask`, which `tinyllm.nn` uses too) and applies the node.

The call path: `F.scaled_dot_product_attention` -> `ScaledDotProductAttention.forward` ->
`tinyllm.kernels.attention_forward` -> `scores = q @ k^T` in attention_reference.py.
"""

from __future__ import annotations

import math
import numbers

import numpy as np

from ... import kernels
from ...kernels.attention_reference import (  # noqa: F401 - re-exported: the equations
    AttentionCache,
    attention_backward,
    attention_forward,
)
from ..function import Function
from ..random import default_generator
from ..tensor import Tensor
from ._util import broadcast_shape, unbroadcast


class ScaledDotProductAttention(Function):
    """One graph node for softmax(q k^T * scale + mask) v; the inputs are q, k, v and the mask.

    Gradients flow to q, k, v, and to a float mask that requires grad (a learned bias).
    """

    def forward(self, q, k, v, mask, scale, is_causal, dropout_p, generator):
        self.shapes = (q.shape, k.shape, v.shape, None if mask is None else mask.shape)
        out, self.cache = kernels.attention_forward(q, k, v, mask, scale, is_causal, dropout_p,
                                                    generator)
        return out

    def backward(self, dout):
        dq, dk, dv, dscores = kernels.attention_backward(dout, self.cache)
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


def check_attn_mask(mask, scores_shape: tuple[int, ...], *,
                    caller: str = "scaled_dot_product_attention",
                    layout: str = "(..., L, S)") -> Tensor:
    """Check an attention mask against the scores' shape; return it as a Tensor.

    The one check for `attn_mask`, used by `scaled_dot_product_attention` and `tinyllm.nn`:
    boolean (True = may attend) or floating (added to the scores), broadcastable to
    `scores_shape`, whose letters `layout` names in the error message.
    """
    m = mask if isinstance(mask, Tensor) else Tensor._make(np.asarray(mask))
    if m.dtype != np.bool_ and m.dtype.kind != "f":
        raise TypeError(f"{caller}: attn_mask must be boolean (True = may attend) or floating "
                        f"(added to the scores), got {m.dtype}")
    scores_shape = tuple(scores_shape)
    try:
        fits = np.broadcast_shapes(m.shape, scores_shape) == scores_shape
    except ValueError:
        fits = False
    if not fits:
        raise ValueError(f"{caller}: attn_mask of shape {m.shape} does not broadcast to the "
                         f"attention scores; accepted: a shape that broadcasts to {layout} = "
                         f"{scores_shape}, e.g. {scores_shape[-2:]} for the whole batch")
    return m


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
    if attn_mask is not None and is_causal:
        raise ValueError("scaled_dot_product_attention: give attn_mask or is_causal=True, not "
                         "both (as PyTorch); to combine them, pass attn_mask & "
                         "tinyllm.nn.causal_mask(L, S, align='top-left')")
    mask_t = None if attn_mask is None else check_attn_mask(attn_mask, scores_shape)
    if dropout_p > 0.0 and generator is None:
        generator = default_generator()
    return ScaledDotProductAttention.apply(
        query, key, value, mask_t, scale=None if scale is None else float(scale),
        is_causal=bool(is_causal),
        dropout_p=float(dropout_p), generator=generator)


class PackedSelfAttention(Function):
    """Self-attention of the heads packed in a fused projection: qkv (B, T, 3 nh hs), as GPT-2's
    c_attn makes it, -> the heads' outputs side by side (B, T, nh hs); causal or full, no
    mask, no dropout.

    The same numbers as splitting qkv in three, each into heads, attending and merging the
    heads (`tinyllm.nn.MultiHeadAttention`'s general path) -- one graph node instead of ten.
    What that saves in a training step: the split's backward builds three zero-filled
    (B, T, 3C) arrays, each with one third written, which autograd then sums; here dq, dk and
    dv are written once, into their thirds of one array.
    """

    def forward(self, qkv, n_head, is_causal, scale=None):
        b, t, c3 = qkv.shape
        self.shape, self.n_head = qkv.shape, n_head
        q, k, v = qkv.reshape(b, t, 3, n_head, c3 // (3 * n_head)).transpose(2, 0, 3, 1, 4)
        out, self.cache = kernels.attention_forward(q, k, v, None, scale, is_causal)
        return out.transpose(0, 2, 1, 3).reshape(b, t, c3 // 3)          # (B, T, nh hs)

    def backward(self, dout):
        b, t, c3 = self.shape
        nh, hs = self.n_head, c3 // (3 * self.n_head)
        heads = dout.reshape(b, t, nh, hs).transpose(0, 2, 1, 3)          # (B, nh, T, hs)
        grads = kernels.attention_backward(heads, self.cache)[:3]
        dqkv = np.empty((b, t, 3, nh, hs), dtype=dout.dtype)
        for i, g in enumerate(grads):
            dqkv[:, :, i] = g.transpose(0, 2, 1, 3)                      # (B, T, nh, hs)
        return dqkv.reshape(self.shape)


def packed_self_attention(qkv: Tensor, n_head: int, is_causal: bool = False,
                          scale: float | None = None) -> Tensor:
    """Attention of the `n_head` heads packed in qkv (B, T, 3 C) = [q | k | v] along the last
    axis, each (B, T, C) with the heads side by side; returns (B, T, C). `scale` multiplies
    the scores (None: 1/sqrt(head size), as in `scaled_dot_product_attention`). See
    `PackedSelfAttention`."""
    if qkv.ndim != 3 or qkv.shape[-1] % (3 * n_head):
        raise ValueError(f"packed_self_attention: expected qkv (B, T, 3 * n_head * head_size) "
                         f"with n_head={n_head}, got shape {qkv.shape}")
    if qkv.dtype.kind != "f":
        raise TypeError(f"packed_self_attention: qkv must be floating, got {qkv.dtype}")
    return PackedSelfAttention.apply(qkv, n_head=int(n_head), is_causal=bool(is_causal),
                                     scale=None if scale is None else float(scale))
