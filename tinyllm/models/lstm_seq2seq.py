"""LSTMSeq2Seq: the recurrent encoder-decoder with attention that the Transformer replaced.

Shapes: B batch, S source positions, T target positions, H hidden size (also the embedding
width), L layers, A attention width, V vocabulary.

A bidirectional LSTM reads the source (Bahdanau et al. 2015); a unidirectional one writes
the target one token at a time, attending over the source at every step with Bahdanau's
additive score, and feeds its attentional vector into its own next step (Luong et al. 2015,
section 3.3, "input feeding"):

    enc, (h_n, c_n) = bilstm(drop(embedding[input_ids]))   (B, S, 2H); (2L, B, H) each
    keys       = encoder_proj(enc)                          (B, S, H)  both directions, mixed
    h_0        = tanh(init_h([h_n fwd; h_n bwd]))           (L, B, H)  per layer
    c_0        = init_c([c_n fwd; c_n bwd])                 (L, B, H)
    feed_0     = 0                                          (B, H)
    for t = 1..T:
        s_t, (h, c) = lstm([drop(embedding[y_t]); feed_{t-1}], (h, c))     (B, H)
        ctx_t, a_t  = attention(s_t, keys)  v^T tanh(W_q s_t + W_k k_j)   (B, H), (B, S)
        feed_t      = tanh(combine([s_t; ctx_t]))           (B, H)  Luong's attentional vector
    logits     = lm_head(drop(feed))                        (B, T, V)  tied to the embedding

One embedding serves the source, the target and the output head (Press and Wolf 2017), as in
the Transformer it is compared with. The decoder's input at step t is the previous target
token: teacher forcing reads `shift_tokens_right(labels, ...)`, generation its own output.
Source padding (`attention_mask` 0) is invisible: the encoder reads each row as a packed
sequence (the backward direction starts at the row's last real token) and a padded position
gets attention weight 0, so a padded row gives exactly what it gives alone. The decoder reads
left to right, so target padding must come after the tokens (then it changes nothing before
it). Parameters start U(-init_range, init_range) (Luong et al. 2015: 0.1), the head's bias 0.

Presets match the encoder-decoder Transformer's (`seq2seq` family) total parameter counts
at vocab_size=256. H and L set the size; the attention width A (Bahdanau's n', a free choice
in the paper) then brings the total closest to the Transformer's. The count is
V H + 2 sum_k LSTM(in_k) + 3 (2H H + H) + sum_k LSTM(in'_k) + 2 H A + A + 2 H H + V, with
LSTM(in) = 4H (in + H) + 8H, in_k = H then 2H (encoder), in'_k = 2H then H (decoder). FLOPs
are `flops_per_token(training=False)` at the preset's max_positions (one source token per
target token); training costs three times as much.

====== ====== ===== ===== ===== ============ ================ ===================
preset layers H     A     max   parameters   Transformer's    fwd FLOPs/target tok
====== ====== ===== ===== ===== ============ ================ ===================
nano   1      14    26    32    12,028       12,032           23,728
micro  1      28    31    64    38,171       38,144           75,536
tiny   1      56    39    64    133,407      133,376          250,272
mini   2      86    101   64    547,059      547,072          1,049,400
small  2      140   162   64    1,421,558    1,421,568        2,709,856
base   2      243   231   128   4,202,686    4,202,752        8,028,564
====== ====== ===== ===== ===== ============ ================ ===================

>>> model = LSTMSeq2Seq(LSTMSeq2SeqConfig.from_preset("nano", vocab_size=65), seed=0)
>>> out = model(src, attention_mask=mask, labels=tgt)      # src (B, S), tgt (B, T) ids
>>> out.logits.shape, out.loss                             # (B, T, 65), the mean cross-entropy
>>> state = model.start_decoding(src, mask)                # the encoder runs once
>>> logits = model.decode_step(state, np.full(len(src), model.config.decoder_start_token_id))
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from .._checks import non_negative_int, positive_int, positive_number, probability
from ..autograd.grad_mode import no_grad
from ..autograd.ops.shape import cat, stack
from ..autograd.random import default_generator
from ..autograd.tensor import Tensor
from ..nn import LSTM, AdditiveAttention, Dropout, Embedding, Linear, init
from .base import (
    PretrainedModel,
    Seq2SeqLMOutput,
    as_ids,
    as_padding_mask,
    lm_loss,
    shift_tokens_right,
)
from .config import ModelConfig
from .registry import ModelFamily, register_family

NAME = "LSTMSeq2Seq"

# name: (num_layers, hidden_size, attention_size, max_positions)
_SIZES = {
    "nano": (1, 14, 26, 32),
    "micro": (1, 28, 31, 64),
    "tiny": (1, 56, 39, 64),
    "mini": (2, 86, 101, 64),
    "small": (2, 140, 162, 64),
    "base": (2, 243, 231, 128),
}

LSTM_SEQ2SEQ_PRESETS = {name: dict(num_layers=n, hidden_size=h, attention_size=a,
                                   max_positions=t)
                        for name, (n, h, a, t) in _SIZES.items()}


@dataclass
class LSTMSeq2SeqConfig(ModelConfig):
    """An LSTM encoder-decoder's architecture. Layers and width default to the `small` preset.

    `attention_size=None` means `hidden_size`; `decoder_start_token_id=None` means
    `pad_token_id` (Marian's choice); `eos_token_id=None` means generation stops only at its
    length limit. `max_positions` is the most positions of a source or a target (the
    recurrence itself has no limit: it is the window the data is cut to). `dropout` acts on
    the embeddings, between LSTM layers and before the head.
    """

    vocab_size: int = 256
    hidden_size: int = 140
    num_layers: int = 2
    attention_size: int | None = None
    max_positions: int = 64
    dropout: float = 0.0
    pad_token_id: int = 0
    eos_token_id: int | None = 1
    decoder_start_token_id: int | None = None
    init_range: float = 0.1

    model_type = "lstm-seq2seq"
    architecture = NAME
    preset_family = "lstm-seq2seq"
    context_field = "max_positions"

    def __post_init__(self):
        name = type(self).__name__
        if self.attention_size is None:
            self.attention_size = self.hidden_size
        if self.decoder_start_token_id is None:
            self.decoder_start_token_id = self.pad_token_id
        for field in ("vocab_size", "hidden_size", "num_layers", "attention_size",
                      "max_positions"):
            positive_int(field, getattr(self, field), where=name)
        probability("dropout", self.dropout, where=name)
        positive_number("init_range", self.init_range, where=name)
        for field in ("pad_token_id", "eos_token_id", "decoder_start_token_id"):
            value = getattr(self, field)
            if value is None and field == "eos_token_id":
                continue
            if non_negative_int(field, value, where=name) >= self.vocab_size:
                raise ValueError(f"{name}: {field}={value} is outside the vocabulary "
                                 f"(accepted: 0..{self.vocab_size - 1})")

    def param_count(self) -> int:
        h, v, a, n = self.hidden_size, self.vocab_size, self.attention_size, self.num_layers

        def lstm(inputs):                        # one direction's layers, by input width
            return sum(4 * h * (i + h) + 8 * h for i in inputs)

        encoder = 2 * lstm([h] + [2 * h] * (n - 1))
        decoder = lstm([2 * h] + [h] * (n - 1))
        projections = 3 * (2 * h * h + h)        # encoder_proj, init_h, init_c
        attention = 2 * h * a + a                # W_q, W_k, v
        combine = 2 * h * h
        return v * h + encoder + projections + decoder + attention + combine + v

    def activation_count(self, batch_size: int, block_size: int, score_copies: int = 3) -> int:
        # Per source position: the embedding, each layer's and direction's input and ~8 H of
        # gates and states, the two directions joined, the keys and their projection. Per
        # target position: the embedding and fed input, the decoder layers, the score
        # network's tanh layer over every source position (S A, the largest term), the
        # scores and weights, the context and attentional vector, and 3 V at the head.
        h, a, s, n = self.hidden_size, self.attention_size, block_size, self.num_layers
        source = h + n * 2 * (2 * h + 8 * h) + 3 * h + a
        target = 3 * h + n * (2 * h + 8 * h) + a + s * (a + score_copies) + 5 * h
        return batch_size * block_size * (source + target + 3 * self.vocab_size)


class LSTMDecodingState:
    """What `LSTMSeq2Seq.decode_step` carries from one target position to the next.

    Plain arrays: the encoder's `keys` (B, S, H), their projection `projected_keys` (B, S, A)
    and `padding_mask` (B, S) bool or None, from `start_decoding`; the decoder's `h` and `c`
    (L, B, H) and the attentional vector `feed` (B, H) it feeds to its next step; `length`
    the positions decoded so far.

    `select(indices)` gives a state of those rows (beam search). The encoder's arrays are
    shared, not copied, when the rows still come from the same sources in the same order (a
    reordering of beams within each source), and gathered once otherwise.
    """

    def __init__(self, keys, projected_keys, padding_mask, h, c, feed, length: int = 0,
                 source_rows: np.ndarray | None = None, source=None):
        self.keys, self.projected_keys, self.padding_mask = keys, projected_keys, padding_mask
        self.h, self.c, self.feed, self.length = h, c, feed, length
        n_b = keys.shape[0]
        # which row of the encoded batch each row reads, and that batch's arrays
        self.source_rows = np.arange(n_b) if source_rows is None else source_rows
        self._source = (keys, projected_keys, padding_mask) if source is None else source

    @property
    def batch_size(self) -> int:
        return self.feed.shape[0]

    def select(self, indices) -> LSTMDecodingState:
        """A new state whose rows are rows `indices` (B',) of this one (repeats allowed)."""
        idx = np.asarray(indices)
        if idx.dtype.kind not in "iu" or idx.ndim != 1:
            raise ValueError(f"select: indices must be a 1-D array of row numbers, got shape "
                             f"{idx.shape} and dtype {idx.dtype}")
        if idx.size and (idx.min() < 0 or idx.max() >= self.batch_size):
            bad = int(idx.min()) if idx.min() < 0 else int(idx.max())
            raise ValueError(f"select: row {bad} does not exist in a state of "
                             f"{self.batch_size} rows (accepted: 0..{self.batch_size - 1})")
        rows = self.source_rows[idx]
        if np.array_equal(rows, self.source_rows):
            encoded = (self.keys, self.projected_keys, self.padding_mask)
        else:
            keys, projected, mask = self._source
            encoded = (keys[rows], projected[rows], None if mask is None else mask[rows])
        return LSTMDecodingState(*encoded, self.h[:, idx], self.c[:, idx], self.feed[idx],
                                 self.length, rows, self._source)


class LSTMSeq2Seq(PretrainedModel):
    """`LSTMSeq2Seq(config, seed=None)`; see the module docstring.

    `model(input_ids, attention_mask=None, decoder_input_ids=None, decoder_attention_mask=None,
    labels=None, output_attentions=False)` -> `Seq2SeqLMOutput(logits (B, T, V), loss,
    cross_attentions)`; `cross_attentions` is one (B, 1, T, S) array (one "head") when asked.
    """

    config_class = LSTMSeq2SeqConfig
    hf_architecture = NAME

    def __init__(self, config: LSTMSeq2SeqConfig | None = None, seed: int | None = None):
        super().__init__(LSTMSeq2SeqConfig() if config is None else config)
        c = self.config
        h = c.hidden_size
        self.embedding = Embedding(c.vocab_size, h)
        self.drop = Dropout(c.dropout)
        self.encoder = LSTM(h, h, c.num_layers, dropout=c.dropout, bidirectional=True)
        self.encoder_proj = Linear(2 * h, h)
        self.init_h = Linear(2 * h, h)
        self.init_c = Linear(2 * h, h)
        self.decoder = LSTM(2 * h, h, c.num_layers, dropout=c.dropout)
        self.attention = AdditiveAttention(h, h, c.attention_size)
        self.combine = Linear(2 * h, h, bias=False)      # Luong's W_c (no bias)
        self.lm_head = Linear(h, c.vocab_size)
        self.lm_head.weight = self.embedding.weight
        self.init_weights(seed)

    def init_weights(self, seed: int | None = None) -> None:
        """Every parameter U(-init_range, init_range), the head's bias 0 (Luong et al. 2015)."""
        rng = np.random.default_rng(seed) if seed is not None else default_generator()
        r = self.config.init_range
        for p in self.parameters():
            init.uniform_(p, -r, r, generator=rng)
        init.zeros_(self.lm_head.bias)

    # ----------------------------------------------------------------- forward
    def forward(self, input_ids, attention_mask=None, decoder_input_ids=None,
                decoder_attention_mask=None, labels=None,
                output_attentions: bool = False) -> Seq2SeqLMOutput:
        """Logits (B, T, V) of each target position given the source and the target before it,
        and the mean cross-entropy against `labels` (B, T) (-100 ignored) if given. Without
        `decoder_input_ids` the decoder reads `shift_tokens_right(labels, pad, start)`."""
        c = self.config
        if labels is not None:
            labels = self._check_labels(labels)
        if decoder_input_ids is None:
            if labels is None:
                raise ValueError(f"{NAME}: pass decoder_input_ids, or labels to train with "
                                 "teacher forcing (the decoder then reads the labels shifted "
                                 "one position right)")
            decoder_input_ids = shift_tokens_right(labels, c.pad_token_id,
                                                   c.decoder_start_token_id)
        tgt = self._check_target(decoder_input_ids, decoder_attention_mask)
        keys, projected, mask, (h, cell) = self._encode(input_ids, attention_mask)
        if tgt.shape[0] != keys.shape[0]:
            raise ValueError(f"{NAME}: decoder_input_ids has {tgt.shape[0]} rows but "
                             f"input_ids has {keys.shape[0]}; each source needs its target")
        emb = self.drop(self.embedding(tgt))                           # (B, T, H)
        feed = Tensor._make(np.zeros((tgt.shape[0], c.hidden_size), dtype=emb.dtype))
        feeds, weights = [], []
        for t in range(tgt.shape[1]):
            feed, (h, cell), w = self._decoder_step(emb[:, t], feed, (h, cell), keys,
                                                    projected, mask)   # (B, H)
            feeds.append(feed)
            weights.append(w.data)                                     # (B, S)
        logits = self.lm_head(self.drop(stack(feeds, dim=1)))          # (B, T, V)
        loss = None if labels is None else lm_loss(NAME, logits, labels, what="labels")
        attentions = (np.stack(weights, axis=1)[:, None],) if output_attentions else None
        return Seq2SeqLMOutput(logits, loss, attentions)               # (B, 1, T, S)

    def _encode(self, input_ids, attention_mask):
        """(keys (B, S, H), projected keys (B, S, A), padding mask (B, S) or None,
        (h_0, c_0) (L, B, H) each): everything the decoder needs from the source."""
        src = as_ids("input_ids", input_ids, self.config.vocab_size, self.config.block_size)
        if src.shape[1] == 0:
            raise ValueError(f"{NAME}: input_ids must hold at least one position, got shape "
                             f"{src.shape}")
        pad = as_padding_mask(NAME, attention_mask, src.shape)         # (B, S) or None
        lengths, order = self._packing(pad)
        if order is not None:
            src = np.take_along_axis(src, order, axis=1)               # tokens first
        x = self.drop(self.embedding(src))                             # (B, S, H)
        enc, (h_n, c_n) = self.encoder(x, lengths=lengths)             # (B, S, 2H)
        if order is not None:
            rows = np.arange(len(src))[:, None]                        # (B, 1)
            enc = enc[rows, np.argsort(order, axis=1)]                 # back in place
        keys = self.encoder_proj(enc)                                  # (B, S, H)
        projected = self.attention.project_keys(keys)                  # (B, S, A)
        # layer k's directions are rows 2k (forward) and 2k + 1 (backward) of h_n and c_n
        h0 = self.init_h(cat([h_n[0::2], h_n[1::2]], dim=-1)).tanh()   # (L, B, H)
        c0 = self.init_c(cat([c_n[0::2], c_n[1::2]], dim=-1))          # (L, B, H)
        return keys, projected, pad, (h0, c0)

    @staticmethod
    def _packing(pad: np.ndarray | None):
        """(lengths (B,), order (B, S) or None): each row's token count, and the gather that
        moves its tokens to the front when padding comes before or between them."""
        if pad is None:
            return None, None
        lengths = (~pad).sum(axis=1)                                   # (B,)
        empty = np.flatnonzero(lengths == 0)
        if empty.size:
            raise ValueError(f"{NAME}: row {int(empty[0])} of attention_mask is all padding; "
                             "every source needs at least one token")
        if (pad == (np.arange(pad.shape[1]) >= lengths[:, None])).all():
            return lengths, None                                       # right padding
        return lengths, np.argsort(pad, axis=1, kind="stable")         # (B, S)

    def _decoder_step(self, emb: Tensor, feed: Tensor, state: tuple[Tensor, Tensor],
                      keys: Tensor, projected: Tensor, mask):
        """One target position: (attentional vector (B, H), new (h, c), weights (B, S))."""
        x = cat([emb, feed], dim=-1).unsqueeze(1)                      # (B, 1, 2H)
        out, state = self.decoder(x, state)                            # (B, 1, H)
        query = out.squeeze(1)                                         # (B, H)
        context, weights = self.attention(query, keys, mask, projected)   # (B, H), (B, S)
        feed = self.combine(cat([query, context], dim=-1)).tanh()      # (B, H)
        return feed, state, weights

    def _check_labels(self, labels) -> np.ndarray:
        y = np.asarray(labels.data if isinstance(labels, Tensor) else labels)
        if y.dtype.kind not in "iu" or y.ndim != 2:
            raise ValueError(f"{NAME}: labels must be integer token ids of shape (B, T), got "
                             f"shape {y.shape} and dtype {y.dtype}")
        v = self.config.vocab_size
        bad = y[(y != -100) & ((y < 0) | (y >= v))]
        if bad.size:
            raise ValueError(f"{NAME}: labels hold id {int(bad[0])}, outside the vocabulary "
                             f"of size {v} (accepted: 0..{v - 1}, or -100 to ignore)")
        return y

    def _check_target(self, decoder_input_ids, decoder_attention_mask) -> np.ndarray:
        tgt = as_ids("decoder_input_ids", decoder_input_ids, self.config.vocab_size,
                     self.config.block_size)
        if tgt.shape[1] == 0:
            raise ValueError(f"{NAME}: decoder_input_ids must hold at least one position, "
                             f"got shape {tgt.shape}")
        pad = as_padding_mask(NAME, decoder_attention_mask, tgt.shape)
        if pad is not None and (np.diff(pad.astype(np.int8), axis=1) < 0).any():
            raise ValueError(f"{NAME}: decoder_attention_mask has padding before a token; the "
                             "LSTM decoder reads left to right, so a target's padding must "
                             "come after its tokens (right padding)")
        return tgt

    # ----------------------------------------------------------------- incremental decoding
    @no_grad()
    def start_decoding(self, input_ids, attention_mask=None) -> LSTMDecodingState:
        """Run the encoder once over the source (B, S) and return the decoder's first state.
        Call `model.eval()` first (as `generate` does): in training mode dropout acts."""
        keys, projected, mask, (h, c) = self._encode(input_ids, attention_mask)
        feed = np.zeros((keys.shape[0], self.config.hidden_size), dtype=keys.dtype)
        return LSTMDecodingState(keys.data, projected.data, mask, h.data, c.data, feed)

    @no_grad()
    def decode_step(self, state: LSTMDecodingState, tokens) -> np.ndarray:
        """Next-token logits (B, V) after `tokens` (B,), each row's previous target token
        (decoder_start_token_id first); advances `state` by one position in place."""
        ids = np.asarray(tokens)
        if ids.shape != (state.batch_size,):
            raise ValueError(f"{NAME}.decode_step: tokens must be ({state.batch_size},), one "
                             f"per row of the state, got shape {ids.shape}")
        ids = as_ids("tokens", ids[:, None], self.config.vocab_size)[:, 0]   # (B,)
        emb = self.drop(self.embedding(ids))                           # (B, H)
        feed, (h, c), _ = self._decoder_step(
            emb, Tensor._make(state.feed), (Tensor._make(state.h), Tensor._make(state.c)),
            Tensor._make(state.keys), Tensor._make(state.projected_keys), state.padding_mask)
        logits = self.lm_head(self.drop(feed))                         # (B, V)
        state.h, state.c, state.feed = h.data, c.data, feed.data
        state.length += 1
        return logits.data

    def generate(self, input_ids, attention_mask=None, **kwargs) -> np.ndarray:
        """Translate each source row: `tinyllm.models.decoding.generate_seq2seq` (greedy, beam
        search or sampling; see there for the options). Returns (B, L) target ids."""
        from .decoding import generate_seq2seq

        return generate_seq2seq(self, input_ids, attention_mask, **kwargs)

    # ----------------------------------------------------------------- size and cost
    def num_params(self, non_embedding: bool = False) -> int:
        """Number of parameters (the tied head counted once); non_embedding=True leaves out
        the token embedding (Kaplan et al.'s N)."""
        n = super().num_params()
        if non_embedding:
            n -= self.embedding.weight.data.size
        return n

    def flops_breakdown(self, seq_len: int | None = None) -> dict[str, int]:
        """Forward-pass matmul FLOPs per target token, by component, for sources of `seq_len`
        positions (default: the full `max_positions`), one source token per target token.

        2 FLOPs per multiply-add, as `GPT.flops_breakdown`. Per source token: both encoder
        directions, 2 (in + H) 4H each per layer, `encoder_proj` 2 (2H) H and the keys'
        projection 2 H A. Per target token: the decoder layers, the query's projection
        2 H A, the scores v^T tanh(.) over the S source positions 2 S A, the context 2 S H,
        `combine` 2 (2H) H and the head 2 H V. Left out: the gate nonlinearities, the tanh
        and softmax (O(H) or O(S A) elementwise), and `init_h`/`init_c`, which run once per
        sequence rather than per token.
        """
        c = self.config
        h, a, n = c.hidden_size, c.attention_size, c.num_layers
        s = c.max_positions if seq_len is None else seq_len
        out = {f"encoder.l{k}": 2 * 2 * ((h if k == 0 else 2 * h) + h) * 4 * h
               for k in range(n)}
        out["encoder_proj"] = 2 * 2 * h * h
        out["attention.key_proj"] = 2 * h * a
        out.update({f"decoder.l{k}": 2 * ((2 * h if k == 0 else h) + h) * 4 * h
                    for k in range(n)})
        out["attention.query_proj"] = 2 * h * a
        out["attention.scores"] = 2 * s * a
        out["attention.context"] = 2 * s * h
        out["combine"] = 2 * 2 * h * h
        out["lm_head"] = 2 * h * c.vocab_size
        return out

    def flops_per_token(self, training: bool = True, seq_len: int | None = None) -> int:
        """Matmul FLOPs per target token of a forward pass, or of forward and backward
        (training=True: 3x, each product's backward being two products of its size)."""
        forward = sum(self.flops_breakdown(seq_len).values())
        return 3 * forward if training else forward


register_family(ModelFamily(
    name="lstm-seq2seq", config_class=LSTMSeq2SeqConfig, model_class=LSTMSeq2Seq,
    objective="seq2seq", presets=LSTM_SEQ2SEQ_PRESETS, dropout_fields=("dropout",),
    token_id_fields={"pad_token_id": "pad_token_id", "eos_token_id": "eos_token_id",
                     "decoder_start_token_id": "pad_token_id"},
    description="LSTM encoder-decoder with additive attention (the recurrent baseline for "
                "translation; presets match the seq2seq Transformer's sizes)"))
