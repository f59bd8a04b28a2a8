"""Seq2SeqTransformer: the encoder-decoder Transformer of Vaswani et al. (2017), weight for
weight as Hugging Face's MarianMTModel.

Shapes: B batch, S source positions, T target positions, C channels (d_model), nh heads,
hs head size (C / nh), I feed-forward width (encoder_ffn_dim, decoder_ffn_dim), V vocabulary
(one, shared by source and target), Le / Ld encoder / decoder layers.

    encoder   x = sqrt(C) E[src] + P[0:S]                        (B, S, C)
              x = LN(x + SelfAttn(x, source padding))           each of Le post-LN layers
              x = LN(x + FFN(x))                                FFN(x) = act(x W1 + b1) W2 + b2
              h = x                                             encoder states (B, S, C)
    decoder   y = sqrt(C) E[tgt] + P[0:T]                        (B, T, C)
              y = LN(y + SelfAttn(y, causal, target padding))   each of Ld post-LN layers
              y = LN(y + CrossAttn(q = y; k, v = h, source padding))   weights (B, nh, T, S)
              y = LN(y + FFN(y))
    logits    = y E^T + final_logits_bias                        (B, T, V)

One embedding E (V, C) reads the source, reads the target and scores the output, as in the
paper ("we share the same weight matrix between the two embedding layers and the pre-softmax
linear transformation, ... multiply those weights by sqrt(d_model)"). The positions P are not
learned: Marian's layout puts all sines first, then all cosines (the paper interleaves them),

    P[p, i] = sin(p w_i),  P[p, ceil(C/2) + i] = cos(p w_i),  w_i = 10000^(-2i / C).

Cross-attention is the only place where the decoder reads the source: its queries come from
the T target positions, its keys and values from the S encoder states (T and S differ), and
padded source positions get no weight. `output_attentions=True` returns those weights, one
(B, nh, T, S) array per decoder layer (the alignments a notebook draws).

Parameter names are MarianMTModel's (`model.shared.weight`,
`model.encoder.layers.0.self_attn.q_proj.weight`, `...self_attn_layer_norm`, `...fc1`,
`...final_layer_norm`, `model.decoder.layers.0.encoder_attn.k_proj.weight`,
`...encoder_attn_layer_norm`, `lm_head.weight` (tied to `model.shared.weight`),
`final_logits_bias` (1, V)), so `from_pretrained` reads a `save_pretrained` directory and
`transformers` reads what `save` writes. The sinusoidal table is a constant, neither a
parameter nor saved (Hugging Face leaves it out of its files too).

Presets (family "seq2seq"): the GPT presets' widths and heads, L layers in the encoder and L
in the decoder, feed-forward width 4C. Parameters at the placeholder vocab_size=256 (another
vocabulary V changes them by (V - 256)(C + 1): its embedding row and output bias); FLOPs per
target token are `flops_per_token(training=False)` for a source as long as the target
(S = T = n_pos):

====== ===== ===== ===== ===== ========== ===============
preset C     L     heads n_pos parameters fwd FLOPs/token
====== ===== ===== ===== ===== ========== ===============
nano   16    1     2     64    12,032     34,816
micro  32    1     4     64    38,144     98,304
tiny   64    1     4     64    133,376    311,296
mini   96    2     4     64    547,072    1,228,800
small  128   3     4     64    1,421,568  3,112,960
base   192   4     6     128   4,202,752  9,535,488
====== ===== ===== ===== ===== ========== ===============

>>> model = Seq2SeqTransformer(Seq2SeqConfig.from_preset("nano", vocab_size=40), seed=0)
>>> out = model(src, attention_mask=src_mask, labels=tgt)      # teacher forcing
>>> out.logits.shape, out.loss                                   # (B, T, V), scalar
>>> state = model.start_decoding(src, src_mask)                  # the encoder runs once
>>> logits = model.decode_step(state, np.full(len(src), model.config.decoder_start_token_id))
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from .. import functional as F
from .._checks import non_negative_int, positive_int, positive_number, probability
from ..autograd.grad_mode import no_grad
from ..autograd.random import default_generator
from ..autograd.tensor import Tensor
from ..nn import (
    Dropout,
    Embedding,
    KVCache,
    LayerKVCache,
    LayerNorm,
    Linear,
    Module,
    ModuleList,
    Parameter,
    get_activation,
    init,
)
from ..nn.attention import attend, attention_weights, merge_heads, split_heads
from .base import (
    PretrainedModel,
    Seq2SeqLMOutput,
    as_ids,
    as_padding_mask,
    lm_loss,
    shift_tokens_right,
)
from .config import ModelConfig, _check_activation, _check_heads
from .registry import ModelFamily, register_family
from .sampling import generating

# torch.nn.LayerNorm's default, which MarianMTModel uses (its config has no field for it).
LAYER_NORM_EPS = 1e-5

# name: (d_model, layers of the encoder and of the decoder, heads, max_position_embeddings)
_SIZES = {
    "nano": (16, 1, 2, 64),
    "micro": (32, 1, 4, 64),
    "tiny": (64, 1, 4, 64),
    "mini": (96, 2, 4, 64),
    "small": (128, 3, 4, 64),
    "base": (192, 4, 6, 128),
}

SEQ2SEQ_PRESETS = {
    name: dict(d_model=c, encoder_layers=n, decoder_layers=n, encoder_attention_heads=h,
               decoder_attention_heads=h, encoder_ffn_dim=4 * c, decoder_ffn_dim=4 * c,
               max_position_embeddings=t)
    for name, (c, n, h, t) in _SIZES.items()}


# --------------------------------------------------------------------------- config
@dataclass
class Seq2SeqConfig(ModelConfig):
    """The encoder-decoder's architecture, with `transformers.MarianConfig`'s field names.

    Defaults are the `small` preset with the paper's choices: ReLU, embeddings scaled by
    sqrt(d_model), one embedding for source, target and output. `encoder_ffn_dim` /
    `decoder_ffn_dim` None mean 4 * d_model; `decoder_start_token_id` None means
    `pad_token_id` (Marian starts decoding from the padding id). Dropout defaults to 0:
    `dropout` after embeddings, attention and feed-forward outputs, `attention_dropout` on
    the attention weights, `activation_dropout` after the feed-forward activation.
    `activation_function` "swish" (= "silu", x sigmoid(x)) is what Marian's own models use.
    `tie_word_embeddings` and `share_encoder_decoder_embeddings` are there for config.json's
    sake and must stay True: one embedding reads source and target and scores the output.
    """

    vocab_size: int = 256
    d_model: int = 128
    encoder_layers: int = 3
    decoder_layers: int = 3
    encoder_attention_heads: int = 4
    decoder_attention_heads: int = 4
    encoder_ffn_dim: int | None = None
    decoder_ffn_dim: int | None = None
    max_position_embeddings: int = 64
    activation_function: str = "relu"
    dropout: float = 0.0
    attention_dropout: float = 0.0
    activation_dropout: float = 0.0
    init_std: float = 0.02
    scale_embedding: bool = True
    pad_token_id: int = 0
    eos_token_id: int = 1
    decoder_start_token_id: int | None = None
    tie_word_embeddings: bool = True
    share_encoder_decoder_embeddings: bool = True

    model_type = "marian"
    architecture = "MarianMTModel"
    preset_family = "seq2seq"
    context_field = "max_position_embeddings"

    def __post_init__(self):
        name = type(self).__name__
        positive_int("d_model", self.d_model, where=name)
        if self.encoder_ffn_dim is None:
            self.encoder_ffn_dim = 4 * self.d_model
        if self.decoder_ffn_dim is None:
            self.decoder_ffn_dim = 4 * self.d_model
        if self.decoder_start_token_id is None:
            self.decoder_start_token_id = self.pad_token_id
        for field in ("vocab_size", "encoder_layers", "decoder_layers",
                      "encoder_attention_heads", "decoder_attention_heads", "encoder_ffn_dim",
                      "decoder_ffn_dim", "max_position_embeddings"):
            positive_int(field, getattr(self, field), where=name)
        for side in ("encoder", "decoder"):
            heads = f"{side}_attention_heads"
            _check_heads(name, "d_model", self.d_model, heads, getattr(self, heads))
        for field in ("dropout", "attention_dropout", "activation_dropout"):
            probability(field, getattr(self, field), where=name)
        _check_activation(name, "activation_function", self.activation_function)
        positive_number("init_std", self.init_std, where=name)
        for field in ("scale_embedding", "tie_word_embeddings",
                      "share_encoder_decoder_embeddings"):
            if not isinstance(getattr(self, field), bool):
                raise ValueError(f"{name}: {field} must be true or false, "
                                 f"got {getattr(self, field)!r}")
        for field in ("tie_word_embeddings", "share_encoder_decoder_embeddings"):
            if not getattr(self, field):
                raise ValueError(f"{name}: {field}=False (embeddings of their own for the "
                                 "source, the target or the output) is not implemented; "
                                 "accepted: True, one embedding for all three")
        for field in ("pad_token_id", "eos_token_id", "decoder_start_token_id"):
            if non_negative_int(field, getattr(self, field), where=name) >= self.vocab_size:
                raise ValueError(f"{name}: {field}={getattr(self, field)} is outside the "
                                 f"vocabulary (accepted: 0..{self.vocab_size - 1})")

    def param_count(self) -> int:
        """The shared embedding (the output head too), the layers and the output bias."""
        c, v = self.d_model, self.vocab_size
        attention = 4 * (c * c + c)                 # q_proj, k_proj, v_proj, out_proj
        norm = 2 * c

        def ffn(i):
            return (c * i + i) + (i * c + c)        # fc1, fc2

        encoder = attention + norm + ffn(self.encoder_ffn_dim) + norm
        decoder = 2 * (attention + norm) + ffn(self.decoder_ffn_dim) + norm
        return v * c + self.encoder_layers * encoder + self.decoder_layers * decoder + v

    def activation_count(self, batch_size: int, block_size: int, score_copies: int = 3) -> int:
        # As GPTConfig.activation_count, for a source and a target of `block_size` positions
        # each: per encoder layer ~10 C + 2 I and the scores; per decoder layer a third
        # attention (self and cross: twice the scores); the logits, probabilities and their
        # gradient (3 V) per target position.
        c, t = self.d_model, block_size
        enc = 10 * c + 2 * self.encoder_ffn_dim + score_copies * self.encoder_attention_heads * t
        dec = (15 * c + 2 * self.decoder_ffn_dim
               + 2 * score_copies * self.decoder_attention_heads * t)
        return batch_size * t * (self.encoder_layers * enc + self.decoder_layers * dec
                                 + 3 * self.vocab_size + 4 * c)


# --------------------------------------------------------------------------- layers
def sinusoidal_table(n_positions: int, dim: int) -> np.ndarray:
    """Marian's position table (n_positions, dim), float64: sines in the first ceil(dim/2)
    columns, cosines of the same frequencies in the rest."""
    half = (dim + 1) // 2
    freqs = 10000.0 ** (-2.0 * np.arange(half) / dim)                 # (ceil(C/2),)
    angles = np.arange(n_positions)[:, None] * freqs                    # (n_pos, ceil(C/2))
    return np.concatenate([np.sin(angles), np.cos(angles[:, :dim // 2])], axis=1)


class SinusoidalPositionalEmbedding(Module):
    """The fixed position table: `embed_positions(start, n, dtype)` is rows start..start+n-1
    (n, C), in `dtype`.
    Its `weight` is a constant array, not a Parameter: nothing trains or saves it."""

    def __init__(self, num_positions: int, embedding_dim: int):
        super().__init__()
        self.num_positions, self.embedding_dim = num_positions, embedding_dim
        self.weight = sinusoidal_table(num_positions, embedding_dim)   # (n_pos, C) float64

    def forward(self, start: int, n: int, dtype) -> Tensor:
        if start + n > self.num_positions:
            raise ValueError(f"Seq2SeqTransformer: positions {start}..{start + n - 1} are past "
                             f"the table of max_position_embeddings={self.num_positions}")
        return Tensor._make(self.weight[start:start + n].astype(dtype))  # (n, C)

    def extra_repr(self) -> str:
        return f"{self.num_positions}, {self.embedding_dim}"


class Seq2SeqAttention(Module):
    """Multi-head attention with Marian's four projections (`q_proj`, `k_proj`, `v_proj`,
    `out_proj`, nn.Linear layout (out, in)), for self- and cross-attention alike.

    `attn(x)` attends x (B, T, C) to itself; `attn(x, key_value=attn.project_kv(h))` lets
    the T queries of x attend the S positions of h (B, S, C) -- cross-attention, whose keys
    and values are computed once per source and may be reused at every decoding step.
    Returns (output (B, T, C), weights (B, nh, T, S) as an array, or None unless
    `need_weights`).
    """

    def __init__(self, embed_dim: int, num_heads: int, dropout: float = 0.0,
                 is_causal: bool = False):
        super().__init__()
        if embed_dim % num_heads:
            raise ValueError(f"Seq2SeqAttention: embed_dim={embed_dim} is not divisible by "
                             f"num_heads={num_heads}; each head gets embed_dim / num_heads "
                             "channels, which must be a whole number")
        self.num_heads, self.is_causal, self.dropout = num_heads, is_causal, dropout
        self.q_proj = Linear(embed_dim, embed_dim)
        self.k_proj = Linear(embed_dim, embed_dim)
        self.v_proj = Linear(embed_dim, embed_dim)
        self.out_proj = Linear(embed_dim, embed_dim)

    def project_kv(self, states: Tensor) -> tuple[Tensor, Tensor]:
        """The keys and values of `states` (B, S, C): (B, nh, S, hs) each."""
        k = split_heads(self.k_proj(states), self.num_heads)           # (B, nh, S, hs)
        v = split_heads(self.v_proj(states), self.num_heads)           # (B, nh, S, hs)
        return k, v

    def forward(self, x: Tensor, key_value: tuple[Tensor, Tensor] | None = None,
                key_padding_mask: np.ndarray | None = None,
                kv_cache: LayerKVCache | None = None, need_weights: bool = False):
        q = split_heads(self.q_proj(x), self.num_heads)                # (B, nh, T, hs)
        k, v = self.project_kv(x) if key_value is None else key_value  # (B, nh, S, hs)
        if kv_cache is not None:
            k, v = kv_cache.update(k, v)                               # (B, nh, S, hs)
        y = attend(q, k, v, is_causal=self.is_causal, key_padding_mask=key_padding_mask,
                   dropout_p=self.dropout if self.training else 0.0)  # (B, nh, T, hs)
        weights = (attention_weights(q.data, k.data, key_padding_mask, self.is_causal)
                   if need_weights else None)                          # (B, nh, T, S)
        return self.out_proj(merge_heads(y)), weights                  # (B, T, C)

    def extra_repr(self) -> str:
        return f"num_heads={self.num_heads}, is_causal={self.is_causal}"


class _PostLNLayer(Module):
    """The feed-forward half every layer ends with: x = LN(x + FFN(x))."""

    def _init_ffn(self, config: Seq2SeqConfig, ffn_dim: int) -> None:
        self.act = get_activation(config.activation_function)
        self.fuse_relu = self.act is F.relu
        self.activation_dropout = Dropout(config.activation_dropout)
        self.fc1 = Linear(config.d_model, ffn_dim)
        self.fc2 = Linear(ffn_dim, config.d_model)
        self.final_layer_norm = LayerNorm(config.d_model, eps=LAYER_NORM_EPS)

    def _ffn_block(self, x: Tensor) -> Tensor:
        if self.fuse_relu and type(self.fc1) is Linear:   # (a LoRA or quantized fc1: unfused)
            h = F.linear_relu(x, self.fc1.weight, self.fc1.bias)       # (B, T, I)
        else:
            h = self.act(self.fc1(x))                                  # (B, T, I)
        h = self.activation_dropout(h)
        return self.final_layer_norm(x + self.dropout(self.fc2(h)))    # (B, T, C)


class Seq2SeqEncoderLayer(_PostLNLayer):
    """Self-attention over the source, then the feed-forward network, each post-LN."""

    def __init__(self, config: Seq2SeqConfig):
        super().__init__()
        c = config.d_model
        self.self_attn = Seq2SeqAttention(c, config.encoder_attention_heads,
                                          config.attention_dropout)
        self.self_attn_layer_norm = LayerNorm(c, eps=LAYER_NORM_EPS)
        self.dropout = Dropout(config.dropout)
        self._init_ffn(config, config.encoder_ffn_dim)

    def forward(self, x: Tensor, key_padding_mask: np.ndarray | None = None) -> Tensor:
        h, _ = self.self_attn(x, key_padding_mask=key_padding_mask)    # (B, S, C)
        x = self.self_attn_layer_norm(x + self.dropout(h))             # (B, S, C)
        return self._ffn_block(x)                                      # (B, S, C)


class Seq2SeqDecoderLayer(_PostLNLayer):
    """Causal self-attention, cross-attention to the encoder states, feed-forward; post-LN."""

    def __init__(self, config: Seq2SeqConfig):
        super().__init__()
        c, nh = config.d_model, config.decoder_attention_heads
        self.self_attn = Seq2SeqAttention(c, nh, config.attention_dropout, is_causal=True)
        self.self_attn_layer_norm = LayerNorm(c, eps=LAYER_NORM_EPS)
        self.encoder_attn = Seq2SeqAttention(c, nh, config.attention_dropout)
        self.encoder_attn_layer_norm = LayerNorm(c, eps=LAYER_NORM_EPS)
        self.dropout = Dropout(config.dropout)
        self._init_ffn(config, config.decoder_ffn_dim)

    def forward(self, y: Tensor, cross_kv: tuple[Tensor, Tensor], source_padding=None,
                target_padding=None, kv_cache: LayerKVCache | None = None,
                need_weights: bool = False):
        """y (B, T, C); `cross_kv` the encoder states' keys and values (B, nh, S, hs) each.
        Returns (y (B, T, C), cross-attention weights (B, nh, T, S) or None)."""
        h, _ = self.self_attn(y, key_padding_mask=target_padding, kv_cache=kv_cache)
        y = self.self_attn_layer_norm(y + self.dropout(h))             # (B, T, C)
        h, weights = self.encoder_attn(y, key_value=cross_kv, key_padding_mask=source_padding,
                                       need_weights=need_weights)      # (B, T, C)
        y = self.encoder_attn_layer_norm(y + self.dropout(h))          # (B, T, C)
        return self._ffn_block(y), weights                             # (B, T, C)


class _Embedded(Module):
    """What the encoder and the decoder share: scaled token embeddings plus positions."""

    def _init_embeddings(self, config: Seq2SeqConfig, embed_tokens: Embedding) -> None:
        self.embed_tokens = embed_tokens                # the one shared Embedding module
        self.embed_positions = SinusoidalPositionalEmbedding(config.max_position_embeddings,
                                                             config.d_model)
        self.embed_scale = math.sqrt(config.d_model) if config.scale_embedding else 1.0
        self.dropout = Dropout(config.dropout)

    def _embed(self, ids: np.ndarray, start: int = 0) -> Tensor:
        x = self.embed_tokens(ids) * self.embed_scale                  # (B, T, C)
        pos = self.embed_positions(start, ids.shape[1], x.dtype)       # (T, C)
        return self.dropout(x + pos)                                   # (B, T, C)


class Seq2SeqEncoder(_Embedded):
    """Source ids (B, S) -> encoder states (B, S, C)."""

    def __init__(self, config: Seq2SeqConfig, embed_tokens: Embedding):
        super().__init__()
        self._init_embeddings(config, embed_tokens)
        self.layers = ModuleList(Seq2SeqEncoderLayer(config)
                                 for _ in range(config.encoder_layers))

    def forward(self, ids: np.ndarray, key_padding_mask: np.ndarray | None = None) -> Tensor:
        x = self._embed(ids)                                           # (B, S, C)
        for layer in self.layers:
            x = layer(x, key_padding_mask)                             # (B, S, C)
        return x


class Seq2SeqDecoder(_Embedded):
    """Target ids (B, T) and the encoder's keys and values -> decoder states (B, T, C)."""

    def __init__(self, config: Seq2SeqConfig, embed_tokens: Embedding):
        super().__init__()
        self._init_embeddings(config, embed_tokens)
        self.layers = ModuleList(Seq2SeqDecoderLayer(config)
                                 for _ in range(config.decoder_layers))

    def cross_keys_values(self, encoder_states: Tensor) -> list[tuple[Tensor, Tensor]]:
        """Every layer's cross-attention keys and values of the encoder states (B, S, C)."""
        return [layer.encoder_attn.project_kv(encoder_states) for layer in self.layers]

    def forward(self, ids: np.ndarray, cross_kv: list[tuple[Tensor, Tensor]],
                source_padding=None, target_padding=None, kv_cache: KVCache | None = None,
                need_weights: bool = False) -> tuple[Tensor, list]:
        """With `kv_cache`, `ids` are the new positions only (they continue the cached ones).
        Returns (states (B, T, C), per layer the cross-attention weights or None)."""
        start = 0 if kv_cache is None else kv_cache.length
        y = self._embed(ids, start)                                    # (B, T, C)
        weights = []
        for i, layer in enumerate(self.layers):
            y, w = layer(y, cross_kv[i], source_padding, target_padding,
                         None if kv_cache is None else kv_cache[i], need_weights)  # (B, T, C)
            weights.append(w)
        return y, weights


class Seq2SeqModel(Module):
    """The shared embedding, encoder and decoder (Hugging Face's MarianModel)."""

    def __init__(self, config: Seq2SeqConfig):
        super().__init__()
        self.shared = Embedding(config.vocab_size, config.d_model,
                                padding_idx=config.pad_token_id)
        self.encoder = Seq2SeqEncoder(config, self.shared)
        self.decoder = Seq2SeqDecoder(config, self.shared)


# --------------------------------------------------------------------------- decoding state
class Seq2SeqDecodingState:
    """What incremental decoding keeps between steps (`start_decoding` makes one).

    - `encoder_hidden_states` (B, S, C), `source_padding` (B, S) True = padding, or None;
    - `cross_kv`: per decoder layer the cross-attention keys and values (B, nh, S, hs),
      computed once from the encoder states;
    - `cache`: the decoder's self-attention keys and values so far (a `KVCache`);
    - `source_index` (B,): the row of the encoded batch each row decodes.

    `length` is the number of target positions decoded so far.
    """

    def __init__(self, encoder_hidden_states: Tensor, cross_kv: list, source_padding,
                 cache: KVCache, source_index: np.ndarray):
        self.encoder_hidden_states = encoder_hidden_states
        self.cross_kv = cross_kv
        self.source_padding = source_padding
        self.cache = cache
        self.source_index = source_index

    @property
    def length(self) -> int:
        return self.cache.length

    @property
    def batch_size(self) -> int:
        return len(self.source_index)

    def select(self, indices) -> Seq2SeqDecodingState:
        """A state whose rows are rows `indices` (B',) of this one (repeats allowed): expand
        each source to its beams, or reorder beams after a step.

        The encoder side (states, cross keys and values, padding) is gathered only when some
        row now decodes another source; reordering beams of the same source shares it.
        """
        idx = np.asarray(indices)
        b = self.batch_size
        if idx.ndim != 1 or idx.dtype.kind not in "iu" or (
                idx.size and (idx.min() < 0 or idx.max() >= b)):
            raise ValueError(f"Seq2SeqDecodingState.select: indices must be a 1-D array of row "
                             f"numbers in 0..{b - 1}, got {indices!r}")
        rows = self.source_index[idx]                                  # (B',)
        if np.array_equal(rows, self.source_index):
            enc, cross, padding = self.encoder_hidden_states, self.cross_kv, self.source_padding
        else:
            enc = Tensor._make(self.encoder_hidden_states.data[idx])   # (B', S, C)
            cross = [(Tensor._make(k.data[idx]), Tensor._make(v.data[idx]))
                     for k, v in self.cross_kv]                        # (B', nh, S, hs) each
            padding = None if self.source_padding is None else self.source_padding[idx]
        cache = KVCache(len(self.cache))
        for old, new in zip(self.cache.layers, cache.layers):
            if old.k is not None:
                new.k, new.v = Tensor._make(old.k.data[idx]), Tensor._make(old.v.data[idx])
        return Seq2SeqDecodingState(enc, cross, padding, cache, rows)


# --------------------------------------------------------------------------- the model
class Seq2SeqTransformer(PretrainedModel):
    """`Seq2SeqTransformer(config, seed=None)`; `model(input_ids, attention_mask=None,
    decoder_input_ids=None, decoder_attention_mask=None, labels=None,
    output_attentions=False)` -> `Seq2SeqLMOutput(logits (B, T, V), loss, cross_attentions)`.

    `input_ids` (B, S) is the source and `attention_mask` (B, S) its padding (1 = token,
    0 = padding). The decoder reads `decoder_input_ids` (B, T) or, without them,
    `shift_tokens_right(labels)`: the target moved one step right after
    `decoder_start_token_id` (teacher forcing). `decoder_attention_mask` (B, T) hides padded
    target positions from later ones (right padding needs none: causal attention never looks
    ahead). The loss is the mean cross-entropy over the label positions that are not -100.
    `seed` makes the initialisation reproducible (else tinyllm's global generator).

    A source row that is all padding leaves cross-attention nothing to attend: its weights
    and output are zeros here (Hugging Face's attention spreads them over the padding).
    """

    config_class = Seq2SeqConfig
    hf_architecture = "MarianMTModel"
    # Older Marian files hold the sinusoidal tables; they are recomputed, never read.
    _position_tables = ("model.encoder.embed_positions.weight",
                        "model.decoder.embed_positions.weight")

    def __init__(self, config: Seq2SeqConfig | None = None, seed: int | None = None):
        super().__init__(Seq2SeqConfig() if config is None else config)
        config = self.config
        self.model = Seq2SeqModel(config)
        self.lm_head = Linear(config.d_model, config.vocab_size, bias=False)
        self.lm_head.weight = self.model.shared.weight                 # tied: (V, C)
        self.final_logits_bias = Parameter(np.zeros((1, config.vocab_size),
                                                    self.model.shared.weight.dtype))
        self.init_weights(seed)

    @property
    def hf_config_extras(self) -> dict:
        """Extra config.json entries: MarianConfig's `forced_eos_token_id` (its default, 0,
        would otherwise end every generation) and `is_encoder_decoder`."""
        return {"forced_eos_token_id": self.config.eos_token_id, "is_encoder_decoder": True}

    def init_weights(self, seed: int | None = None) -> None:
        """MarianMTModel's initialisation: Linear and Embedding weights N(0, init_std^2),
        the padding token's embedding 0, biases 0 (final_logits_bias too), LayerNorm 1 and 0."""
        rng = np.random.default_rng(seed) if seed is not None else default_generator()
        std = self.config.init_std
        done: set[int] = set()                  # a tied weight is drawn once, not per use
        for module in self.modules():
            if isinstance(module, Linear | Embedding) and id(module.weight) not in done:
                done.add(id(module.weight))
                init.normal_(module.weight, std=std, generator=rng)
                if isinstance(module, Embedding) and module.padding_idx is not None:
                    module.weight.data[module.padding_idx] = 0
            if isinstance(module, Linear | LayerNorm) and module.bias is not None:
                init.zeros_(module.bias)
            if isinstance(module, LayerNorm):
                init.ones_(module.weight)
        init.zeros_(self.final_logits_bias)

    # ----------------------------------------------------------------- inputs
    def _source(self, input_ids, attention_mask):
        cfg = self.config
        src = as_ids("input_ids", input_ids, cfg.vocab_size, cfg.max_position_embeddings)
        padding = as_padding_mask("Seq2SeqTransformer", attention_mask, src.shape)
        return src, padding                                            # (B, S), (B, S)

    def _labels(self, labels) -> np.ndarray:
        y = np.asarray(labels.data if isinstance(labels, Tensor) else labels)
        if y.dtype.kind not in "iu" or y.ndim != 2:
            raise ValueError(f"Seq2SeqTransformer: labels must be integer ids of shape (B, T), "
                             f"got dtype {y.dtype} and shape {y.shape}")
        v = self.config.vocab_size
        bad = (y != -100) & ((y < 0) | (y >= v))
        if bad.any():
            raise ValueError(f"Seq2SeqTransformer: labels hold id {int(y[bad][0])}, outside "
                             f"the vocabulary (accepted: 0..{v - 1}, or -100 to ignore)")
        return y.astype(np.int64, copy=False)

    def _target(self, decoder_input_ids, labels, batch: int) -> np.ndarray:
        cfg = self.config
        if decoder_input_ids is None:
            if labels is None:
                raise ValueError("Seq2SeqTransformer: give decoder_input_ids (B, T), or labels "
                                 "(B, T) for the decoder to read shifted right")
            decoder_input_ids = shift_tokens_right(labels, cfg.pad_token_id,
                                                   cfg.decoder_start_token_id)
        tgt = as_ids("decoder_input_ids", decoder_input_ids, cfg.vocab_size,
                     cfg.max_position_embeddings)                      # (B, T)
        if tgt.shape[0] != batch:
            raise ValueError(f"Seq2SeqTransformer: {tgt.shape[0]} target rows for {batch} "
                             "source rows; give one target per source")
        return tgt

    # ----------------------------------------------------------------- forward
    def forward(self, input_ids, attention_mask=None, decoder_input_ids=None,
                decoder_attention_mask=None, labels=None,
                output_attentions: bool = False) -> Seq2SeqLMOutput:
        y_true = None if labels is None else self._labels(labels)      # (B, T)
        src, source_padding = self._source(input_ids, attention_mask)  # (B, S)
        tgt = self._target(decoder_input_ids, y_true, len(src))        # (B, T)
        target_padding = as_padding_mask("Seq2SeqTransformer", decoder_attention_mask,
                                         tgt.shape, name="decoder_attention_mask")
        h = self.model.encoder(src, source_padding)                    # (B, S, C)
        y, weights = self.model.decoder(tgt, self.model.decoder.cross_keys_values(h),
                                        source_padding, target_padding,
                                        need_weights=output_attentions)  # (B, T, C)
        logits = self.lm_head(y) + self.final_logits_bias             # (B, T, V)
        loss = (None if y_true is None
                else lm_loss("Seq2SeqTransformer", logits, y_true, what="labels"))
        return Seq2SeqLMOutput(logits, loss, tuple(weights) if output_attentions else None)

    def encode(self, input_ids, attention_mask=None) -> Tensor:
        """The encoder states (B, S, C) of source ids (B, S) with their padding mask."""
        src, padding = self._source(input_ids, attention_mask)
        return self.model.encoder(src, padding)                        # (B, S, C)

    # ----------------------------------------------------------------- incremental decoding
    @no_grad()
    def start_decoding(self, input_ids, attention_mask=None) -> Seq2SeqDecodingState:
        """Run the encoder once on the source (B, S) and compute every decoder layer's
        cross-attention keys and values: the state `decode_step` advances."""
        src, padding = self._source(input_ids, attention_mask)
        with generating(self):
            h = self.model.encoder(src, padding)                       # (B, S, C)
            cross = self.model.decoder.cross_keys_values(h)            # (B, nh, S, hs) each
        return Seq2SeqDecodingState(h, cross, padding, KVCache(self.config.decoder_layers),
                                    np.arange(len(src)))

    @no_grad()
    def decode_step(self, state: Seq2SeqDecodingState, tokens) -> np.ndarray:
        """The next-token logits (B, V) after `tokens` (B,), each row's previous target token
        (decoder_start_token_id first); the state moves one position on, in place."""
        cfg = self.config
        tok = np.asarray(tokens)
        if tok.shape != (state.batch_size,):
            raise ValueError(f"Seq2SeqTransformer.decode_step: tokens must have shape (B,) = "
                             f"({state.batch_size},), one per row of the state; got shape "
                             f"{tok.shape}")
        tok = as_ids("tokens", tok[:, None], cfg.vocab_size)           # (B, 1)
        if state.length >= cfg.max_position_embeddings:
            raise ValueError(f"Seq2SeqTransformer.decode_step: {state.length} target positions "
                             f"decoded already, the most max_position_embeddings="
                             f"{cfg.max_position_embeddings} allows")
        with generating(self):
            y, _ = self.model.decoder(tok, state.cross_kv, state.source_padding,
                                      kv_cache=state.cache)            # (B, 1, C)
            logits = self.lm_head(y) + self.final_logits_bias         # (B, 1, V)
        return logits.data[:, 0]                                       # (B, V)

    def generate(self, input_ids, attention_mask=None, **kwargs) -> np.ndarray:
        """Translate each source row: `tinyllm.models.decoding.generate_seq2seq` (greedy,
        sampling or beam search; see there for the options). Returns (B, L) target ids."""
        from .decoding import generate_seq2seq

        return generate_seq2seq(self, input_ids, attention_mask, **kwargs)

    # ----------------------------------------------------------------- size and cost
    def num_params(self, non_embedding: bool = False) -> int:
        """Number of parameters (the tied head counted once); non_embedding=True leaves out
        the shared token embedding (the positions are not parameters)."""
        n = super().num_params()
        if non_embedding:
            n -= self.model.shared.weight.data.size
        return n

    def flops_breakdown(self, seq_len: int | None = None) -> dict[str, int]:
        """Forward-pass matmul FLOPs per target token, by component, for a source and a
        target of `seq_len` positions each (default: max_position_embeddings) -- so each
        target token also pays for one source token's encoding.

        As `GPT.flops_breakdown`: 2 FLOPs per multiply-add, LayerNorm, activations, softmax
        and embedding lookups left out, attention scores and weighted sums counted over
        every key (2 S C each; the masked half of causal self-attention included).
        Cross-attention projects queries and outputs per target token and keys and values
        per source token: with S = T, 4 projections per token as in self-attention.
        """
        cfg = self.config
        t = cfg.max_position_embeddings if seq_len is None else seq_len
        c, n_enc, n_dec = cfg.d_model, cfg.encoder_layers, cfg.decoder_layers
        return {
            "encoder.self_attn.proj": n_enc * 2 * 4 * c * c,
            "encoder.self_attn.scores": n_enc * 2 * t * c,
            "encoder.self_attn.values": n_enc * 2 * t * c,
            "encoder.ffn": n_enc * 2 * 2 * c * cfg.encoder_ffn_dim,
            "decoder.self_attn.proj": n_dec * 2 * 4 * c * c,
            "decoder.self_attn.scores": n_dec * 2 * t * c,
            "decoder.self_attn.values": n_dec * 2 * t * c,
            "decoder.encoder_attn.proj": n_dec * 2 * 4 * c * c,
            "decoder.encoder_attn.scores": n_dec * 2 * t * c,
            "decoder.encoder_attn.values": n_dec * 2 * t * c,
            "decoder.ffn": n_dec * 2 * 2 * c * cfg.decoder_ffn_dim,
            "lm_head": 2 * c * cfg.vocab_size,
        }

    def flops_per_token(self, training: bool = True, seq_len: int | None = None) -> int:
        """Matmul FLOPs per target token of a forward pass (training=False) or of forward and
        backward (training=True: 3x, each product's backward being two products of its
        size). See `flops_breakdown`."""
        forward = sum(self.flops_breakdown(seq_len).values())
        return 3 * forward if training else forward

    # ----------------------------------------------------------------- Hugging Face files
    @classmethod
    def check_hf_config(cls, raw: dict, directory) -> None:
        vocab = raw.get("decoder_vocab_size")
        if vocab is not None and vocab != raw.get("vocab_size"):
            cls._refuse(cls.__name__, directory, "decoder_vocab_size", vocab,
                        f"None or vocab_size={raw.get('vocab_size')} (one shared vocabulary)")
        for option in ("encoder_layerdrop", "decoder_layerdrop"):
            if raw.get(option, 0.0):
                cls._refuse(cls.__name__, directory, option, raw[option], "0.0 (no LayerDrop)")

    @classmethod
    def convert_state_dict(cls, state):
        """Drop the sinusoidal tables older files hold, and add Hugging Face's zero
        `final_logits_bias` to files written without it."""
        state = {k: v for k, v in state.items() if k not in cls._position_tables}
        if "final_logits_bias" not in state and "model.shared.weight" in state:
            vocab = state["model.shared.weight"].shape[0]
            state["final_logits_bias"] = np.zeros((1, vocab), np.float32)
        return state


register_family(ModelFamily(
    name="seq2seq", config_class=Seq2SeqConfig, model_class=Seq2SeqTransformer,
    objective="seq2seq", presets=SEQ2SEQ_PRESETS,
    dropout_fields=("dropout", "attention_dropout", "activation_dropout"),
    token_id_fields={"pad_token_id": "pad_token_id", "eos_token_id": "eos_token_id",
                     "decoder_start_token_id": "pad_token_id"},
    hf_class="MarianMTModel",
    description="Encoder-decoder Transformer (Vaswani et al.; MarianMTModel's layout) for "
                "translation"))
