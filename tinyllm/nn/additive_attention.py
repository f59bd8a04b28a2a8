"""`AdditiveAttention`: Bahdanau et al.'s (2015) score, a one-hidden-layer network per key.

Shapes: B batch, T queries (decoder positions; absent when each row asks one query), S keys
(source positions), Q query width (`query_dim`), K key width (`key_dim`), A the score
network's width (`attn_dim`, the paper's n').

    e_j = v^T tanh(W_q q + W_k k_j)          (B, T, S)  one score per key (eq. 6 of the paper)
    a   = softmax_j(e_j), padded keys out     (B, T, S)  the attention weights
    ctx = sum_j a_j k_j                       (B, T, K)  the context vector

Where the dot-product score (Luong et al. 2015; the Transformer's) needs Q = K and one matrix
product, this one lets the query and key widths differ and scores through a tanh layer of
width A. W_k k_j does not depend on the query, so `project_keys` computes it once per source
and a decoder passes the result back as `projected_keys` at every step: a step then costs
O(B S A) for the scores instead of O(B S K A) for the projection. A padded key
(`key_padding_mask` True, PyTorch's convention) gets weight exactly 0.

>>> attn = AdditiveAttention(query_dim=8, key_dim=6, attn_dim=5)
>>> keys = tinyllm.randn(2, 7, 6)
>>> context, weights = attn(tinyllm.randn(2, 8), keys)
>>> context.shape, weights.shape
((2, 6), (2, 7))

Parameters: `query_proj.weight` (A, Q), `key_proj.weight` (A, K) and `v` (A,); no biases,
as in the paper's equation.
"""

from __future__ import annotations

import math

import numpy as np

from .. import functional as F
from .._checks import positive_int
from ..autograd.tensor import Tensor
from . import init
from .layers import Linear
from .module import Module, Parameter


class AdditiveAttention(Module):
    """`AdditiveAttention(query_dim, key_dim, attn_dim)`; see the module docstring.

    `forward(query, keys, key_padding_mask=None, projected_keys=None)` -> `(context, weights)`:
    query (B, Q) or (B, T, Q), keys (B, S, K), key_padding_mask (B, S) bool (True = padding),
    projected_keys (B, S, A) from `project_keys(keys)`; context (B, K) or (B, T, K), weights
    (B, S) or (B, T, S).
    """

    def __init__(self, query_dim: int, key_dim: int, attn_dim: int):
        super().__init__()
        where = "AdditiveAttention"
        self.query_dim = positive_int("query_dim", query_dim, where=where)
        self.key_dim = positive_int("key_dim", key_dim, where=where)
        self.attn_dim = positive_int("attn_dim", attn_dim, where=where)
        self.query_proj = Linear(query_dim, attn_dim, bias=False)      # W_q
        self.key_proj = Linear(key_dim, attn_dim, bias=False)          # W_k
        self.v = Parameter(init.empty(attn_dim))
        # as a Linear(A, 1) would start: U(-1/sqrt(A), 1/sqrt(A))
        init.uniform_(self.v, -1 / math.sqrt(attn_dim), 1 / math.sqrt(attn_dim))

    def project_keys(self, keys: Tensor) -> Tensor:
        """W_k k_j for every key: (B, S, K) -> (B, S, A). Once per source, not per query."""
        self._check_keys(keys)
        return self.key_proj(keys)                                     # (B, S, A)

    def forward(self, query: Tensor, keys: Tensor, key_padding_mask=None,
                projected_keys: Tensor | None = None) -> tuple[Tensor, Tensor]:
        """(context, weights) of `query` over `keys`; see the class docstring for shapes."""
        one_query = query.ndim == 2
        self._check_keys(keys)
        if query.ndim not in (2, 3) or query.shape[0] != keys.shape[0] or (
                query.shape[-1] != self.query_dim):
            raise ValueError(f"AdditiveAttention: query must be (B, {self.query_dim}) or "
                             f"(B, T, {self.query_dim}) with the keys' B={keys.shape[0]}; "
                             f"got shape {query.shape}")
        mask = self._check_mask(key_padding_mask, keys.shape[:2])
        if projected_keys is None:
            projected_keys = self.key_proj(keys)                       # (B, S, A)
        elif tuple(projected_keys.shape) != (*keys.shape[:2], self.attn_dim):
            raise ValueError(f"AdditiveAttention: projected_keys has shape "
                             f"{projected_keys.shape}, expected {(*keys.shape[:2], self.attn_dim)}"
                             " (B, S, attn_dim), as project_keys(keys) returns")
        if one_query:
            query = query.unsqueeze(1)                                 # (B, 1, Q)
        q = self.query_proj(query)                                     # (B, T, A)
        hidden = (q.unsqueeze(2) + projected_keys.unsqueeze(1)).tanh()  # (B, T, S, A)
        scores = (hidden @ self.v.reshape(-1, 1)).squeeze(-1)         # (B, T, S)
        if mask is not None:
            scores = scores.masked_fill(mask[:, None, :], -math.inf)   # exp(-inf) = 0
        weights = F.softmax(scores, dim=-1)                            # (B, T, S)
        context = weights @ keys                                       # (B, T, K)
        if one_query:
            return context.squeeze(1), weights.squeeze(1)              # (B, K), (B, S)
        return context, weights

    def _check_keys(self, keys: Tensor) -> None:
        if keys.ndim != 3 or keys.shape[-1] != self.key_dim or keys.shape[1] == 0:
            raise ValueError(f"AdditiveAttention: keys must be (B, S, {self.key_dim}) with "
                             f"S >= 1; got shape {keys.shape}")

    @staticmethod
    def _check_mask(key_padding_mask, shape: tuple) -> np.ndarray | None:
        if key_padding_mask is None:
            return None
        m = np.asarray(key_padding_mask.data if isinstance(key_padding_mask, Tensor)
                       else key_padding_mask)
        if m.dtype != np.bool_ or m.shape != tuple(shape):
            raise ValueError(f"AdditiveAttention: key_padding_mask must be boolean (B, S) = "
                             f"{tuple(shape)}, True = padding; got shape {m.shape} and dtype "
                             f"{m.dtype}")
        empty = np.flatnonzero(m.all(axis=1))
        if empty.size:
            raise ValueError(f"AdditiveAttention: row {int(empty[0])} of key_padding_mask is "
                             "all padding; every row needs at least one key to attend to")
        return m if m.any() else None

    def extra_repr(self) -> str:
        return f"query_dim={self.query_dim}, key_dim={self.key_dim}, attn_dim={self.attn_dim}"
