"""BERT: the bidirectional post-LN encoder, weight for weight as Hugging Face's BERT classes.

Shapes: B batch, T positions, C channels (hidden_size), nh heads, hs head size (C / nh),
I intermediate size, V vocabulary, K labels, L layers.

    x      = LN(word[ids] + position[pos] + token_type[segment])   three embeddings, summed
    x      = layer_l(x),  l = 1..L                                  post-LN, GELU (erf)
    MLM:     logits = LN(gelu(x W_t + b_t)) @ word^T + b            (B, T, V), head tied
    classify: logits = tanh(x[:, 0] W_p + b_p) W_c + b_c            (B, K), from [CLS]
    QA:      start, end = x W_qa + b_qa                            (B, T) each
    NSP:     logits = tanh(x[:, 0] W_p + b_p) W_s + b_s            (B, 2), with the MLM head

Each layer is a post-LN Transformer block, written with Hugging Face's module tree so the
names match (`bert.encoder.layer.0.attention.self.query.weight`, ...); it computes exactly
`tinyllm.nn.TransformerBlock(norm_first=False, activation="gelu")` with q, k, v kept apart
(a test checks the two agree).

- `BertForMaskedLM` (alias `BERT`): `model(input_ids, token_type_ids=None,
  attention_mask=None, labels=None)` -> `LMOutput(logits (B, T, V), loss)`; labels of -100
  (the unmasked positions) are ignored.
- `BertForSequenceClassification`: the same inputs -> `LMOutput(logits (B, K), loss)`; K = 1
  is regression (mean squared error), as in Hugging Face.
- `BertForQuestionAnswering`: `model(input_ids, token_type_ids=None, attention_mask=None,
  start_positions=None, end_positions=None)` -> `QAOutput(start_logits (B, T),
  end_logits (B, T), loss)`, the answer span's first and last token.
- `BertForPreTraining`: `model(input_ids, token_type_ids=None, attention_mask=None,
  labels=None, next_sentence_label=None)` -> `PreTrainingOutput(prediction_logits
  (B, T, V), seq_relationship_logits (B, 2), loss)`: masked LM plus next-sentence prediction.

`attention_mask` is Hugging Face's: (B, T), 1 for a real token, 0 for padding.
"""

from __future__ import annotations

import numpy as np

from .. import functional as F
from ..autograd.random import default_generator
from ..autograd.tensor import Tensor
from ..nn import (
    Dropout,
    Embedding,
    LayerNorm,
    Linear,
    Module,
    ModuleList,
    Parameter,
    get_activation,
    init,
)
from ..nn.attention import attend, merge_heads, split_heads
from .base import (
    LMOutput,
    PretrainedModel,
    PreTrainingOutput,
    QAOutput,
    as_ids,
    as_padding_mask,
    classification_loss,
    lm_loss,
)
from .config import BERT_PRESETS, BertConfig
from .registry import ModelFamily, register_family


class BertEmbeddings(Module):
    """Token + position + segment embeddings, summed, normalised: ids (B, T) -> (B, T, C)."""

    def __init__(self, config: BertConfig):
        super().__init__()
        c = config.hidden_size
        self.word_embeddings = Embedding(config.vocab_size, c, padding_idx=config.pad_token_id)
        self.position_embeddings = Embedding(config.max_position_embeddings, c)
        self.token_type_embeddings = Embedding(config.type_vocab_size, c)
        self.LayerNorm = LayerNorm(c, eps=config.layer_norm_eps)
        self.dropout = Dropout(config.hidden_dropout_prob)

    def forward(self, input_ids: np.ndarray, token_type_ids: np.ndarray) -> Tensor:
        pos = np.arange(input_ids.shape[1])                            # (T,)
        x = (self.word_embeddings(input_ids) + self.position_embeddings(pos)
             + self.token_type_embeddings(token_type_ids))             # (B, T, C)
        return self.dropout(self.LayerNorm(x))                         # (B, T, C)


class BertSelfAttention(Module):
    """Separate query, key and value projections (nn.Linear, weight (out, in)), then attention
    over all positions except padding: (B, T, C) -> (B, T, C), before the output projection."""

    def __init__(self, config: BertConfig):
        super().__init__()
        c = config.hidden_size
        self.num_attention_heads = config.num_attention_heads
        self.query = Linear(c, c)
        self.key = Linear(c, c)
        self.value = Linear(c, c)
        self.dropout_p = config.attention_probs_dropout_prob

    def forward(self, x: Tensor, key_padding_mask: np.ndarray | None) -> Tensor:
        nh = self.num_attention_heads
        q = split_heads(self.query(x), nh)                             # (B, nh, T, hs)
        k = split_heads(self.key(x), nh)                               # (B, nh, T, hs)
        v = split_heads(self.value(x), nh)                             # (B, nh, T, hs)
        y = attend(q, k, v, key_padding_mask=key_padding_mask,
                   dropout_p=self.dropout_p if self.training else 0.0)  # (B, nh, T, hs)
        return merge_heads(y)                                          # (B, T, C)


class BertSelfOutput(Module):
    """Output projection, dropout, residual and LayerNorm: LN(x + dropout(h W_o + b_o))."""

    def __init__(self, config: BertConfig):
        super().__init__()
        self.dense = Linear(config.hidden_size, config.hidden_size)
        self.LayerNorm = LayerNorm(config.hidden_size, eps=config.layer_norm_eps)
        self.dropout = Dropout(config.hidden_dropout_prob)

    def forward(self, h: Tensor, residual: Tensor) -> Tensor:
        return self.LayerNorm(residual + self.dropout(self.dense(h)))  # (B, T, C)


class BertAttention(Module):
    def __init__(self, config: BertConfig):
        super().__init__()
        self.self = BertSelfAttention(config)
        self.output = BertSelfOutput(config)

    def forward(self, x: Tensor, key_padding_mask) -> Tensor:
        return self.output(self.self(x, key_padding_mask), x)          # (B, T, C)


class BertIntermediate(Module):
    """The feed-forward network's first half: act(x W1 + b1), (B, T, C) -> (B, T, I)."""

    def __init__(self, config: BertConfig):
        super().__init__()
        self.dense = Linear(config.hidden_size, config.intermediate_size)
        self.act = get_activation(config.hidden_act)

    def forward(self, x: Tensor) -> Tensor:
        return self.act(self.dense(x))                                 # (B, T, I)


class BertOutput(Module):
    """The second half, residual and LayerNorm: LN(x + dropout(h W2 + b2))."""

    def __init__(self, config: BertConfig):
        super().__init__()
        self.dense = Linear(config.intermediate_size, config.hidden_size)
        self.LayerNorm = LayerNorm(config.hidden_size, eps=config.layer_norm_eps)
        self.dropout = Dropout(config.hidden_dropout_prob)

    def forward(self, h: Tensor, residual: Tensor) -> Tensor:
        return self.LayerNorm(residual + self.dropout(self.dense(h)))  # (B, T, C)


class BertLayer(Module):
    """One post-LN block: x = LN(x + attn(x)); x = LN(x + ffn(x))."""

    def __init__(self, config: BertConfig):
        super().__init__()
        self.attention = BertAttention(config)
        self.intermediate = BertIntermediate(config)
        self.output = BertOutput(config)

    def forward(self, x: Tensor, key_padding_mask=None) -> Tensor:
        x = self.attention(x, key_padding_mask)                        # (B, T, C)
        return self.output(self.intermediate(x), x)                    # (B, T, C)


class BertEncoder(Module):
    def __init__(self, config: BertConfig):
        super().__init__()
        self.layer = ModuleList(BertLayer(config) for _ in range(config.num_hidden_layers))

    def forward(self, x: Tensor, key_padding_mask=None) -> Tensor:
        for layer in self.layer:
            x = layer(x, key_padding_mask)                             # (B, T, C)
        return x


class BertPooler(Module):
    """The [CLS] position's state through a dense layer and tanh: (B, T, C) -> (B, C)."""

    def __init__(self, config: BertConfig):
        super().__init__()
        self.dense = Linear(config.hidden_size, config.hidden_size)

    def forward(self, x: Tensor) -> Tensor:
        return self.dense(x[:, 0]).tanh()                              # (B, C)


class BertModel(Module):
    """Embeddings, encoder and (optionally) pooler: ids (B, T) -> states (B, T, C), pooled."""

    def __init__(self, config: BertConfig, add_pooling_layer: bool = True):
        super().__init__()
        self.config = config
        self.embeddings = BertEmbeddings(config)
        self.encoder = BertEncoder(config)
        self.pooler = BertPooler(config) if add_pooling_layer else None

    def forward(self, input_ids, token_type_ids=None, attention_mask=None) -> Tensor:
        cfg = self.config
        ids = as_ids("input_ids", input_ids, cfg.vocab_size, cfg.max_position_embeddings)
        if token_type_ids is None:
            segments = np.zeros_like(ids)
        else:
            segments = as_ids("token_type_ids", token_type_ids, cfg.type_vocab_size,
                              what="the token types")
            if segments.shape != ids.shape:
                raise ValueError(f"BERT: token_type_ids have shape {segments.shape}, expected "
                                 f"the input_ids' shape {ids.shape}")
        padding = as_padding_mask("BERT", attention_mask, ids.shape)  # (B, T) or None
        x = self.embeddings(ids, segments)                             # (B, T, C)
        return self.encoder(x, padding)                                # (B, T, C)


class BertPredictionHeadTransform(Module):
    def __init__(self, config: BertConfig):
        super().__init__()
        self.dense = Linear(config.hidden_size, config.hidden_size)
        self.act = get_activation(config.hidden_act)
        self.LayerNorm = LayerNorm(config.hidden_size, eps=config.layer_norm_eps)

    def forward(self, x: Tensor) -> Tensor:
        return self.LayerNorm(self.act(self.dense(x)))                 # (B, T, C)


class BertLMPredictionHead(Module):
    """Transform, then score every word with the (tied) word embeddings plus a bias."""

    def __init__(self, config: BertConfig, word_embeddings: Parameter):
        super().__init__()
        self.transform = BertPredictionHeadTransform(config)
        # `bias` comes before `decoder` so the shared bias is first found (and saved) under
        # Hugging Face's name, cls.predictions.bias.
        self.bias = Parameter(np.zeros(config.vocab_size, dtype=word_embeddings.dtype))
        self.decoder = Linear(config.hidden_size, config.vocab_size, bias=False)
        self.decoder.weight = word_embeddings
        self.decoder.bias = self.bias

    def forward(self, x: Tensor) -> Tensor:
        return self.decoder(self.transform(x))                         # (B, T, V)


class BertOnlyMLMHead(Module):
    def __init__(self, config: BertConfig, word_embeddings: Parameter):
        super().__init__()
        self.predictions = BertLMPredictionHead(config, word_embeddings)

    def forward(self, x: Tensor) -> Tensor:
        return self.predictions(x)


class _BertPretrained(PretrainedModel):
    config_class = BertConfig

    def init_weights(self, seed: int | None = None) -> None:
        """BERT's initialisation: Linear and Embedding weights N(0, 0.02^2), biases 0,
        LayerNorm 1 and 0, the padding token's embedding 0."""
        rng = np.random.default_rng(seed) if seed is not None else default_generator()
        std = self.config.initializer_range
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

    def _encoder_flops(self, t: int) -> dict[str, int]:
        cfg = self.config
        c, i, n_layer = cfg.hidden_size, cfg.intermediate_size, cfg.num_hidden_layers
        return {
            "attention.qkv": n_layer * 3 * 2 * c * c,
            "attention.scores": n_layer * 2 * t * c,
            "attention.values": n_layer * 2 * t * c,
            "attention.output": n_layer * 2 * c * c,
            "intermediate": n_layer * 2 * c * i,
            "output": n_layer * 2 * i * c,
        }

    def num_params(self, non_embedding: bool = False) -> int:
        """Number of parameters (tied ones once); non_embedding=True leaves out the word,
        position and token-type embeddings (Kaplan et al.'s N)."""
        n = super().num_params()
        if non_embedding:
            emb = self.bert.embeddings
            n -= sum(e.weight.data.size for e in (emb.word_embeddings, emb.position_embeddings,
                                                   emb.token_type_embeddings))
        return n

    def flops_per_token(self, training: bool = True, seq_len: int | None = None) -> float:
        """Matmul FLOPs per token, forward (x3 with training=True); see `flops_breakdown`."""
        forward = sum(self.flops_breakdown(seq_len).values())
        return 3 * forward if training else forward

    @classmethod
    def check_hf_config(cls, raw: dict, directory) -> None:
        kind = raw.get("position_embedding_type", "absolute")
        if kind != "absolute":
            cls._refuse(cls.__name__, directory, "position_embedding_type", kind, "'absolute'")
        if raw.get("is_decoder"):
            cls._refuse(cls.__name__, directory, "is_decoder", True, "False")

    @classmethod
    def convert_state_dict(cls, state):
        """Rename the original checkpoints' LayerNorm.gamma / .beta to weight / bias and drop
        the position_ids buffer and the parts of other BERT heads this model lacks."""
        out = {}
        for key, value in state.items():
            if key.endswith("position_ids") or key.startswith(cls._other_heads):
                continue
            key = key.replace("LayerNorm.gamma", "LayerNorm.weight")
            out[key.replace("LayerNorm.beta", "LayerNorm.bias")] = value
        return out

    _other_heads: tuple[str, ...] = ()


class BertForMaskedLM(_BertPretrained):
    """BERT with its masked-language-model head (Hugging Face's BertForMaskedLM).

    `model(input_ids, token_type_ids=None, attention_mask=None, labels=None)` ->
    `LMOutput(logits (B, T, V), loss)`; `labels` (B, T) hold the original ids at masked
    positions and -100 elsewhere.
    """

    hf_architecture = "BertForMaskedLM"
    # A pre-training checkpoint also carries the pooler and the next-sentence head.
    _other_heads = ("bert.pooler.", "cls.seq_relationship.")

    def __init__(self, config: BertConfig | None = None, seed: int | None = None):
        super().__init__(BertConfig() if config is None else config)
        self.bert = BertModel(self.config, add_pooling_layer=False)
        self.cls = BertOnlyMLMHead(self.config, self.bert.embeddings.word_embeddings.weight)
        self.init_weights(seed)

    def forward(self, input_ids, token_type_ids=None, attention_mask=None,
                labels=None) -> LMOutput:
        x = self.bert(input_ids, token_type_ids, attention_mask)       # (B, T, C)
        logits = self.cls(x)                                           # (B, T, V)
        loss = None if labels is None else lm_loss("BERT", logits, labels, what="labels")
        return LMOutput(logits, loss)

    def flops_breakdown(self, seq_len: int | None = None) -> dict[str, int]:
        """Forward matmul FLOPs per token by component, at `seq_len` (default: full context).

        As `GPT.flops_breakdown`: 2 m k n per (m, k) @ (k, n) product, attention over all
        T x T pairs; the MLM head scores every position (as `forward` does).
        """
        cfg = self.config
        t = cfg.max_position_embeddings if seq_len is None else seq_len
        c = cfg.hidden_size
        return {**self._encoder_flops(t), "cls.transform": 2 * c * c,
                "cls.decoder": 2 * c * cfg.vocab_size}


class BertForSequenceClassification(_BertPretrained):
    """BERT with pooler and a linear classifier on the [CLS] state (Hugging Face's
    BertForSequenceClassification). From a masked-LM directory the pooler and classifier
    start new (with a warning), the usual start of fine-tuning.

    `model(input_ids, token_type_ids=None, attention_mask=None, labels=None)` ->
    `LMOutput(logits (B, K), loss)`; labels (B,) class ids (floats for K = 1, regression).
    """

    hf_architecture = "BertForSequenceClassification"
    optional_prefixes = ("bert.pooler.", "classifier.")
    _other_heads = ("cls.", "qa_outputs.")

    def __init__(self, config: BertConfig | None = None, seed: int | None = None):
        super().__init__(BertConfig() if config is None else config)
        cfg = self.config
        self.bert = BertModel(cfg, add_pooling_layer=True)
        p = cfg.hidden_dropout_prob if cfg.classifier_dropout is None else cfg.classifier_dropout
        self.dropout = Dropout(p)
        self.classifier = Linear(cfg.hidden_size, cfg.num_labels)
        self.init_weights(seed)

    def forward(self, input_ids, token_type_ids=None, attention_mask=None,
                labels=None) -> LMOutput:
        x = self.bert(input_ids, token_type_ids, attention_mask)       # (B, T, C)
        pooled = self.bert.pooler(x)                                   # (B, C)
        logits = self.classifier(self.dropout(pooled))                 # (B, K)
        loss = None if labels is None else classification_loss("BERT", logits, labels)
        return LMOutput(logits, loss)

    def flops_breakdown(self, seq_len: int | None = None) -> dict[str, float]:
        """As `BertForMaskedLM.flops_breakdown`; the pooler and classifier run once per
        sequence, so their share per token is divided by `seq_len` (and may be fractional)."""
        cfg = self.config
        t = cfg.max_position_embeddings if seq_len is None else seq_len
        c = cfg.hidden_size
        return {**self._encoder_flops(t), "pooler": 2 * c * c / t,
                "classifier": 2 * c * cfg.num_labels / t}


def _row_labels(what: str, labels, batch: int) -> np.ndarray:
    """Per-sequence integer labels (B,) (or (B, 1), as Hugging Face accepts) as (B,) int64."""
    y = labels.data if isinstance(labels, Tensor) else np.asarray(labels)
    if y.ndim == 2 and y.shape[1] == 1:
        y = y[:, 0]
    if y.shape != (batch,):
        raise ValueError(f"BERT: {what} have shape {y.shape}, expected (B,) = ({batch},), "
                         "one per sequence")
    if y.dtype.kind not in "iu":
        raise TypeError(f"BERT: {what} must be integers, got dtype {y.dtype}")
    return y.astype(np.int64, copy=False)


class BertForQuestionAnswering(_BertPretrained):
    """BERT with an answer-span head (Hugging Face's BertForQuestionAnswering): `qa_outputs`
    (C -> 2) scores each position as the answer's first and as its last token. From a
    masked-LM or pre-training directory `qa_outputs` starts new (with a warning).

    `model(input_ids, token_type_ids=None, attention_mask=None, start_positions=None,
    end_positions=None)` -> `QAOutput(start_logits (B, T), end_logits (B, T), loss)`;
    positions (B,) are token indices, and the loss is the mean of the start and the end
    cross-entropies. As in Hugging Face, positions are clamped to [0, T] and T is ignored:
    an answer that truncation cut off counts for nothing.
    """

    hf_architecture = "BertForQuestionAnswering"
    optional_prefixes = ("qa_outputs.",)
    _other_heads = ("cls.", "bert.pooler.", "classifier.")

    def __init__(self, config: BertConfig | None = None, seed: int | None = None):
        super().__init__(BertConfig() if config is None else config)
        cfg = self.config
        if cfg.num_labels != 2:
            # Hugging Face sizes qa_outputs by num_labels but can only split it into two.
            raise ValueError(f"BertForQuestionAnswering: num_labels={cfg.num_labels}, but the "
                             "span head scores a start and an end per position (accepted: "
                             "num_labels=2; from_pretrained(directory, num_labels=2) "
                             "overrides a classifier's)")
        self.bert = BertModel(cfg, add_pooling_layer=False)
        self.qa_outputs = Linear(cfg.hidden_size, 2)
        self.init_weights(seed)

    def forward(self, input_ids, token_type_ids=None, attention_mask=None,
                start_positions=None, end_positions=None) -> QAOutput:
        x = self.bert(input_ids, token_type_ids, attention_mask)       # (B, T, C)
        logits = self.qa_outputs(x)                                    # (B, T, 2)
        start_logits, end_logits = logits[..., 0], logits[..., 1]      # (B, T) each
        loss = None
        if start_positions is not None or end_positions is not None:
            loss = self._span_loss(start_logits, end_logits, start_positions, end_positions)
        return QAOutput(start_logits, end_logits, loss)

    @staticmethod
    def _span_loss(start_logits: Tensor, end_logits: Tensor, start_positions,
                   end_positions) -> Tensor:
        if start_positions is None or end_positions is None:
            given = "start_positions" if end_positions is None else "end_positions"
            raise ValueError(f"BERT: the span loss needs both start_positions and "
                             f"end_positions; got only {given}")
        b, t = start_logits.shape
        losses = []
        for what, logits, positions in (("start_positions", start_logits, start_positions),
                                        ("end_positions", end_logits, end_positions)):
            p = np.clip(_row_labels(what, positions, b), 0, t)         # (B,), T = ignored
            losses.append(F.cross_entropy(logits, p, ignore_index=t))
        return (losses[0] + losses[1]) / 2

    def flops_breakdown(self, seq_len: int | None = None) -> dict[str, int]:
        """As `BertForMaskedLM.flops_breakdown`, with the span head at every position."""
        cfg = self.config
        t = cfg.max_position_embeddings if seq_len is None else seq_len
        return {**self._encoder_flops(t), "qa_outputs": 2 * cfg.hidden_size * 2}


class BertPreTrainingHeads(Module):
    """The masked-LM head on every position and the next-sentence head on the pooled [CLS]."""

    def __init__(self, config: BertConfig, word_embeddings: Parameter):
        super().__init__()
        self.predictions = BertLMPredictionHead(config, word_embeddings)
        self.seq_relationship = Linear(config.hidden_size, 2)

    def forward(self, x: Tensor, pooled: Tensor) -> tuple[Tensor, Tensor]:
        return self.predictions(x), self.seq_relationship(pooled)     # (B, T, V), (B, 2)


class BertForPreTraining(_BertPretrained):
    """BERT as it was pre-trained (Hugging Face's BertForPreTraining): the masked-LM head
    (tied to the word embeddings) and next-sentence prediction from the pooled [CLS] state,
    `cls.seq_relationship` (C -> 2; label 0: sentence B follows A, 1: B is random). From a
    masked-LM directory the pooler and `cls.seq_relationship` start new (with a warning).

    `model(input_ids, token_type_ids=None, attention_mask=None, labels=None,
    next_sentence_label=None)` -> `PreTrainingOutput(prediction_logits (B, T, V),
    seq_relationship_logits (B, 2), loss)`; labels (B, T) as `BertForMaskedLM`'s (-100
    ignored), next_sentence_label (B,). The loss is the sum of the two cross-entropies.
    """

    hf_architecture = "BertForPreTraining"
    optional_prefixes = ("bert.pooler.", "cls.seq_relationship.")

    def __init__(self, config: BertConfig | None = None, seed: int | None = None):
        super().__init__(BertConfig() if config is None else config)
        self.bert = BertModel(self.config, add_pooling_layer=True)
        self.cls = BertPreTrainingHeads(self.config,
                                        self.bert.embeddings.word_embeddings.weight)
        self.init_weights(seed)

    def forward(self, input_ids, token_type_ids=None, attention_mask=None, labels=None,
                next_sentence_label=None) -> PreTrainingOutput:
        x = self.bert(input_ids, token_type_ids, attention_mask)       # (B, T, C)
        prediction_logits, nsp_logits = self.cls(x, self.bert.pooler(x))  # (B, T, V), (B, 2)
        loss = None
        if labels is not None or next_sentence_label is not None:
            if labels is None or next_sentence_label is None:
                given = "labels" if next_sentence_label is None else "next_sentence_label"
                raise ValueError("BERT: the pre-training loss needs both labels (masked LM) "
                                 f"and next_sentence_label; got only {given}")
            y = _row_labels("next_sentence_label", next_sentence_label, nsp_logits.shape[0])
            loss = (lm_loss("BERT", prediction_logits, labels, what="labels")
                    + F.cross_entropy(nsp_logits, y))
        return PreTrainingOutput(prediction_logits, nsp_logits, loss)

    def flops_breakdown(self, seq_len: int | None = None) -> dict[str, float]:
        """As `BertForMaskedLM.flops_breakdown`, plus the pooler and the next-sentence head,
        which run once per sequence (their share per token is divided by `seq_len`)."""
        cfg = self.config
        t = cfg.max_position_embeddings if seq_len is None else seq_len
        c = cfg.hidden_size
        return {**self._encoder_flops(t), "cls.transform": 2 * c * c,
                "cls.decoder": 2 * c * cfg.vocab_size, "pooler": 2 * c * c / t,
                "cls.seq_relationship": 2 * c * 2 / t}


BERT = BertForMaskedLM

register_family(ModelFamily(
    name="bert", config_class=BertConfig, model_class=BertForMaskedLM, objective="masked-lm",
    presets=BERT_PRESETS, dropout_fields=("hidden_dropout_prob", "attention_probs_dropout_prob"),
    token_id_fields={"pad_token_id": "pad_token_id"}, hf_class="BertForMaskedLM",
    lora_targets=("query", "value"),
    heads={"sequence-classification": BertForSequenceClassification,
           "question-answering": BertForQuestionAnswering, "pretraining": BertForPreTraining},
    description="BERT's bidirectional encoder (masked LM)"))
