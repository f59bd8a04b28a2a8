"""The feed-forward network and the Transformer block, pre-LN (GPT-2) or post-LN (BERT).

Shapes: B batch, T positions, C channels (n_embd), I inner width of the feed-forward
network (4C by default).

Pre-LN (GPT-2; `norm_first=True`): each sub-layer sees a normalised input and adds to the
residual stream, which itself is never normalised -- gradients reach early layers unscaled::

    x = x + attn(ln_1(x))
    x = x + mlp(ln_2(x))

Post-LN (the original Transformer, BERT; `norm_first=False`): normalise after each residual
sum::

    x = ln_1(x + attn(x))
    x = ln_2(x + mlp(x))

Parameter names follow GPT-2's block (`ln_1`, `attn.c_attn`, `attn.c_proj`, `ln_2`,
`mlp.c_fc`, `mlp.c_proj`), so a GPT built from these blocks loads GPT-2 weights as they are.
"""

from __future__ import annotations

from .._checks import positive_int
from ..autograd.tensor import Tensor
from .attention import LayerKVCache, MultiHeadAttention
from .layers import Conv1D, Dropout, LayerNorm, get_activation
from .module import Module


class FeedForward(Module):
    """FFN(x) = act(x W1 + b1) W2 + b2, applied to each position alone: (B, T, C) -> (B, T, C).

    `activation`: 'gelu_new' (GPT-2's tanh GELU), 'gelu' (exact GELU, BERT's) or 'relu' (the
    original Transformer's); see `tinyllm.nn.layers.ACTIVATIONS` for the aliases.
    """

    def __init__(self, n_embd: int, n_inner: int | None = None, activation: str = "gelu_new",
                 dropout: float = 0.0, bias: bool = True):
        super().__init__()
        positive_int("n_embd", n_embd, where="FeedForward")
        if n_inner is None:
            n_inner = 4 * n_embd
        n_inner = positive_int("n_inner", n_inner, where="FeedForward")
        self.activation_name = activation
        self.act = get_activation(activation)
        self.c_fc = Conv1D(n_embd, n_inner, bias=bias)
        self.c_proj = Conv1D(n_inner, n_embd, bias=bias)
        self.dropout = Dropout(dropout)

    def forward(self, x: Tensor) -> Tensor:
        h = self.act(self.c_fc(x))                                     # (B, T, I)
        return self.dropout(self.c_proj(h))                            # (B, T, C)

    def extra_repr(self) -> str:
        return f"activation={self.activation_name!r}"


class TransformerBlock(Module):
    """One Transformer layer: self-attention and feed-forward, each with a residual and a
    LayerNorm, pre-LN (`norm_first=True`, GPT-2) or post-LN (`norm_first=False`, BERT).

    x (B, T, C) -> (B, T, C).

    >>> block = TransformerBlock(n_embd=16, n_head=4, is_causal=True)
    >>> block(tinyllm.randn(2, 5, 16)).shape
    (2, 5, 16)
    """

    def __init__(self, n_embd: int, n_head: int, n_inner: int | None = None,
                 activation: str = "gelu_new", dropout: float = 0.0,
                 attn_dropout: float | None = None, layer_norm_eps: float = 1e-5,
                 norm_first: bool = True, is_causal: bool = False, bias: bool = True,
                 head_dim: int | None = None, attn_scale: float | None = None):
        super().__init__()
        self.norm_first = bool(norm_first)
        self.ln_1 = LayerNorm(n_embd, eps=layer_norm_eps)
        self.attn = MultiHeadAttention(
            n_embd, n_head, dropout=dropout if attn_dropout is None else attn_dropout,
            bias=bias, is_causal=is_causal, resid_dropout=dropout, head_dim=head_dim,
            scale=attn_scale)
        self.ln_2 = LayerNorm(n_embd, eps=layer_norm_eps)
        self.mlp = FeedForward(n_embd, n_inner, activation=activation, dropout=dropout,
                               bias=bias)

    def forward(self, x: Tensor, attn_mask=None, key_padding_mask=None,
                kv_cache: LayerKVCache | None = None) -> Tensor:
        def attn(h):
            return self.attn(h, attn_mask=attn_mask, key_padding_mask=key_padding_mask,
                             kv_cache=kv_cache)

        if self.norm_first:
            x = x + attn(self.ln_1(x))                                 # (B, T, C)
            return x + self.mlp(self.ln_2(x))                          # (B, T, C)
        x = self.ln_1(x + attn(x))                                     # (B, T, C)
        return self.ln_2(x + self.mlp(x))                              # (B, T, C)

    def extra_repr(self) -> str:
        return f"norm_first={self.norm_first}"
