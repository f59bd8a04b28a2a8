"""Multi-head self-attention with causal and key-padding masks and a KV cache.

Shapes: B batch, T (= L) positions of the input (queries), S key positions (T plus any cached
ones), C channels (n_embd), nh heads, hs = C / nh head size.

Each head h attends with its own slice of the channels::

    q, k, v = x W_q, x W_k, x W_v                         (B, T, C) each, split into heads
    y_h     = softmax(q_h k_h^T / sqrt(hs) + mask) v_h    (B, T, hs) per head
    y       = concat_h(y_h) W_o                           (B, T, C)

Masks, and which way round they read:

- `is_causal` (a constructor flag): position i sees positions <= i. With a KV cache the
  queries are the *last* T of S positions, so the mask is aligned bottom-right
  (`causal_mask(T, S, align="bottom-right")`), not top-left as
  `F.scaled_dot_product_attention(is_causal=True)` is.
- `attn_mask` (forward): as in `F.scaled_dot_product_attention`: boolean True = may attend,
  or floats added to the scores; broadcastable to (B, nh, T, S). (PyTorch's
  `nn.MultiheadAttention` reads a boolean attn_mask the other way round; tinyllm keeps one
  convention.)
- `key_padding_mask` (forward): boolean (B, S), True = this key is padding, ignore it
  (PyTorch's convention for this argument). Hugging Face's `attention_mask` (1 = real token)
  is its negation.
"""

from __future__ import annotations

import math

import numpy as np

from .. import functional as F
from .._checks import positive_int
from ..autograd.ops.attention import check_attn_mask, packed_self_attention
from ..autograd.ops.shape import cat
from ..autograd.tensor import Tensor
from ..kernels.attention_reference import causal_mask  # public as tinyllm.nn.causal_mask
from .layers import Conv1D, Dropout
from .module import Module


class LayerKVCache:
    """The keys and values one attention layer has computed so far, (B, nh, S, hs) each.

    Outside autograd (generation) the positions are written into buffers that grow by
    doubling, so a step copies only its own keys and values, not all S of them; `k` and `v`
    are views of the first S positions. Keys that need a gradient are concatenated instead.
    """

    def __init__(self):
        self.k: Tensor | None = None
        self.v: Tensor | None = None
        self._buffers: tuple[np.ndarray, np.ndarray] | None = None   # (B, nh, capacity, hs)

    def __len__(self) -> int:
        return 0 if self.k is None else self.k.shape[2]

    def update(self, k: Tensor, v: Tensor) -> tuple[Tensor, Tensor]:
        """Append the new positions' keys and values; return all of them."""
        if self.k is None:
            self.k, self.v = k, v
            return k, v
        if k.shape[:2] != self.k.shape[:2] or k.shape[3] != self.k.shape[3]:
            raise ValueError(f"KV cache: new keys of shape {k.shape} do not continue the "
                             f"cached ones of shape {self.k.shape} (same B, nh, hs)")
        if k.requires_grad or v.requires_grad or self.k.requires_grad or self.v.requires_grad:
            self.k, self.v = cat([self.k, k], dim=2), cat([self.v, v], dim=2)
        else:
            self.k, self.v = self._append(k.data, v.data)
        return self.k, self.v                                          # (B, nh, S, hs)

    def _append(self, k: np.ndarray, v: np.ndarray) -> tuple[Tensor, Tensor]:
        s, n = len(self), len(self) + k.shape[2]
        bufs = self._buffers
        # The buffers are reused only while k and v are still the views made here (a caller,
        # beam search for one, may have replaced them) and have room.
        if (bufs is None or n > bufs[0].shape[2] or self.k.data.base is not bufs[0]
                or self.v.data.base is not bufs[1] or self.k.dtype != k.dtype):
            b, nh, _, hs = self.k.shape
            bufs = tuple(np.empty((b, nh, max(2 * n, 16), hs), dtype=k.dtype) for _ in "kv")
            bufs[0][:, :, :s], bufs[1][:, :, :s] = self.k.data, self.v.data
            self._buffers = bufs
        bufs[0][:, :, s:n], bufs[1][:, :, s:n] = k, v
        return Tensor._make(bufs[0][:, :, :n]), Tensor._make(bufs[1][:, :, :n])


class KVCache:
    """Per-layer key/value caches for incremental decoding: `cache[i]` is layer i's.

    >>> cache = KVCache(n_layer=2)
    >>> logits = model(prompt, kv_cache=cache).logits       # fills the cache
    >>> logits = model(next_token, kv_cache=cache).logits   # attends to cached keys
    """

    def __init__(self, n_layer: int):
        self.layers = [LayerKVCache() for _ in range(n_layer)]

    def __getitem__(self, i: int) -> LayerKVCache:
        return self.layers[i]

    def __len__(self) -> int:
        return len(self.layers)

    @property
    def length(self) -> int:
        """Number of positions cached so far."""
        return len(self.layers[0]) if self.layers else 0

    def reset(self) -> None:
        for layer in self.layers:
            layer.k = layer.v = None


def split_heads(x: Tensor, n_head: int) -> Tensor:
    """(B, T, C) -> (B, nh, T, hs). (One position, as in each step of generation: the same
    numbers in the same order, so a reshape alone, one op instead of two.)"""
    b, t, c = x.shape
    if t == 1:
        return x.reshape(b, n_head, 1, c // n_head)                    # (B, nh, 1, hs)
    return x.reshape(b, t, n_head, c // n_head).transpose(1, 2)        # (B, nh, T, hs)


def merge_heads(y: Tensor) -> Tensor:
    """(B, nh, T, hs) -> (B, T, C), the heads side by side."""
    b, nh, t, hs = y.shape
    if t == 1:
        return y.reshape(b, 1, nh * hs)                                # (B, 1, C)
    return y.transpose(1, 2).reshape(b, t, nh * hs)                    # (B, T, C)


def split_qkv_heads(qkv: Tensor, n_head: int) -> tuple[Tensor, Tensor, Tensor]:
    """The fused projection (B, T, 3C) -> q, k, v (B, nh, T, hs) each.

    Outside autograd (generation) they are three views of the projection's array, made
    without an op: the same numbers as the split and the reshapes, which would cost seven
    ops' bookkeeping per layer and token.
    """
    b, t, c3 = qkv.shape
    if qkv.requires_grad:
        return tuple(split_heads(part, n_head) for part in qkv.split(c3 // 3, dim=2))
    views = qkv.data.reshape(b, t, 3, n_head, c3 // (3 * n_head)).transpose(2, 0, 3, 1, 4)
    return tuple(Tensor._make(part) for part in views)                # (B, nh, T, hs) each


def _check_key_padding(mask, batch: int, n_keys: int) -> np.ndarray:
    m = mask.data if isinstance(mask, Tensor) else np.asarray(mask)
    if m.dtype != np.bool_:
        raise TypeError(f"key_padding_mask must be boolean (True = padding), got {m.dtype}")
    if m.shape != (batch, n_keys):
        raise ValueError(f"key_padding_mask has shape {m.shape}, expected (B, S) = "
                         f"{(batch, n_keys)}")
    return m


def attend(q: Tensor, k: Tensor, v: Tensor, *, is_causal: bool = False, attn_mask=None,
           key_padding_mask=None, kv_cache: LayerKVCache | None = None,
           dropout_p: float = 0.0, scale: float | None = None) -> Tensor:
    """Attention of heads q (B, nh, T, hs) over k, v (B, nh, T, hs) -> (B, nh, T, hs).

    Appends k, v to `kv_cache` first (if given), builds one mask from `is_causal`,
    `attn_mask` and `key_padding_mask` (see the module docstring), and calls
    `F.scaled_dot_product_attention`. Layers with other projections (BERT's) share it.
    """
    if kv_cache is not None:
        k, v = kv_cache.update(k, v)                                   # (B, nh, S, hs)
    b, nh, t, _ = q.shape
    s = k.shape[2]
    if attn_mask is None and key_padding_mask is None and (not is_causal or t == s or t == 1):
        # The common cases need no mask array: full attention, causal with T == S, or one new
        # query (which may see every key).
        return F.scaled_dot_product_attention(q, k, v, dropout_p=dropout_p,
                                              is_causal=is_causal and t > 1, scale=scale)
    allowed = None                                                     # boolean, True = may see
    if is_causal:
        allowed = causal_mask(t, s, align="bottom-right")              # (T, S)
    if key_padding_mask is not None:
        keep = ~_check_key_padding(key_padding_mask, b, s)[:, None, None, :]   # (B, 1, 1, S)
        allowed = keep if allowed is None else allowed & keep          # (B, 1, T, S)
    mask = allowed
    if attn_mask is not None:
        m = check_attn_mask(attn_mask, (b, nh, t, s), caller="attend", layout="(B, nh, T, S)")
        if m.dtype == np.bool_:
            mask = m.data if allowed is None else m.data & allowed
        else:
            mask = m if allowed is None else m + np.where(allowed, 0.0, -np.inf).astype(m.dtype)
    return F.scaled_dot_product_attention(q, k, v, attn_mask=mask, dropout_p=dropout_p,
                                          scale=scale)


def attention_weights(q: np.ndarray, k: np.ndarray, key_padding_mask=None,
                      is_causal: bool = False, scale: float | None = None) -> np.ndarray:
    """softmax(q k^T * scale + mask) as a plain array (B, nh, T, S), outside the graph (scale
    None: 1/sqrt(hs)): what a layer's attention looked at. A query that may see no key gets
    a row of zeros."""
    scores = q @ np.swapaxes(k, -1, -2)                                # (B, nh, T, S)
    scores = scores / math.sqrt(q.shape[-1]) if scale is None else scores * scale
    allowed = np.ones(scores.shape, dtype=bool)
    if is_causal:
        allowed &= causal_mask(q.shape[-2], k.shape[-2], align="bottom-right")
    if key_padding_mask is not None:
        allowed &= ~key_padding_mask[:, None, None, :]                 # (B, 1, 1, S)
    scores = np.where(allowed, scores, -np.inf)
    top = scores.max(axis=-1, keepdims=True)
    e = np.exp(scores - np.where(np.isfinite(top), top, 0.0))          # (B, nh, T, S)
    total = e.sum(axis=-1, keepdims=True)
    return e / np.where(total > 0, total, 1.0)


class MultiHeadAttention(Module):
    """Multi-head self-attention in GPT-2's layout: one fused q|k|v projection `c_attn`
    (C, 3C) and an output projection `c_proj` (C, C), both `Conv1D` (weight (in, out)).
    `head_dim` (default C / num_heads) sets the head size apart from C: a layer whose heads
    were pruned keeps their size with fewer of them, c_attn (C, 3 nh hs), c_proj (nh hs, C).

    x (B, T, C) -> (B, T, C). `dropout` applies to the attention weights and to the output
    (GPT-2's attn_pdrop and resid_pdrop; give `resid_dropout` to set the second apart).
    `scale` multiplies the scores q k^T (None: 1/sqrt(head_dim); the maximal-update
    parametrisation sets another, `GPTConfig.attention_scale`).

    >>> attn = MultiHeadAttention(embed_dim=16, num_heads=4, is_causal=True)
    >>> attn(tinyllm.randn(2, 5, 16)).shape
    (2, 5, 16)
    """

    def __init__(self, embed_dim: int, num_heads: int, dropout: float = 0.0, bias: bool = True,
                 is_causal: bool = False, resid_dropout: float | None = None,
                 head_dim: int | None = None, scale: float | None = None):
        super().__init__()
        positive_int("embed_dim", embed_dim, where="MultiHeadAttention")
        positive_int("num_heads", num_heads, where="MultiHeadAttention")
        if head_dim is None:
            if embed_dim % num_heads:
                raise ValueError(f"MultiHeadAttention: embed_dim={embed_dim} is not divisible "
                                 f"by num_heads={num_heads}; each head gets embed_dim / "
                                 "num_heads channels, which must be a whole number")
            head_dim = embed_dim // num_heads
        positive_int("head_dim", head_dim, where="MultiHeadAttention")
        if not 0.0 <= dropout < 1.0:
            raise ValueError(f"MultiHeadAttention: dropout must be in [0, 1), got {dropout}")
        self.embed_dim, self.num_heads, self.head_dim = embed_dim, num_heads, head_dim
        self.is_causal, self.dropout = bool(is_causal), float(dropout)
        self.scale = None if scale is None else float(scale)
        inner = num_heads * head_dim                 # embed_dim, unless heads were pruned
        self.c_attn = Conv1D(embed_dim, 3 * inner, bias=bias)
        self.c_proj = Conv1D(inner, embed_dim, bias=bias)
        self.resid_dropout = Dropout(dropout if resid_dropout is None else resid_dropout)

    def forward(self, x: Tensor, attn_mask=None, key_padding_mask=None,
                kv_cache: LayerKVCache | None = None) -> Tensor:
        if x.ndim != 3 or x.shape[-1] != self.embed_dim:
            raise ValueError(f"MultiHeadAttention: expected input (B, T, C) with "
                             f"C = {self.embed_dim}, got shape {x.shape}")
        qkv = self.c_attn(x)                                            # (B, T, 3C)
        dropout_p = self.dropout if self.training else 0.0
        if (qkv.requires_grad and attn_mask is None and key_padding_mask is None
                and kv_cache is None and dropout_p == 0.0):
            # Training without masks: one op does split, heads, attention and merge.
            y = packed_self_attention(qkv, self.num_heads, self.is_causal,
                                      self.scale)                       # (B, T, C)
            return self.resid_dropout(self.c_proj(y))
        q, k, v = split_qkv_heads(qkv, self.num_heads)                 # (B, nh, T, hs) each
        y = attend(q, k, v, is_causal=self.is_causal, attn_mask=attn_mask,
                   key_padding_mask=key_padding_mask, kv_cache=kv_cache,
                   dropout_p=dropout_p, scale=self.scale)               # (B, nh, T, hs)
        return self.resid_dropout(self.c_proj(merge_heads(y)))         # (B, T, C)

    def attention_maps(self, x: Tensor) -> np.ndarray:
        """What each head looks at for input x (B, T, C) (already normalised, as the layer
        sees it): softmax(q k^T * scale) with the layer's causal mask, (B, nh, T, T), a
        plain array outside the graph."""
        q, k, _ = split_qkv_heads(self.c_attn(x), self.num_heads)       # (B, nh, T, hs) each
        return attention_weights(q.data, k.data, is_causal=self.is_causal, scale=self.scale)

    def extra_repr(self) -> str:
        scale = "" if self.scale is None else f", scale={self.scale:.4g}"
        return (f"embed_dim={self.embed_dim}, num_heads={self.num_heads}, "
                f"head_dim={self.head_dim}, is_causal={self.is_causal}{scale}")

