"""Model configurations: `GPTConfig`, `BertConfig`, and the named size presets.

Field names are Hugging Face's (`GPT2Config`, `BertConfig`), so a config.json written by
`transformers` reads straight in and one written by tinyllm reads into `transformers`.

Presets span ~10^4 to ~10^7 parameters for the scaling study, sized for a 2-core CPU.
Parameter counts below are at the presets' placeholder vocab_size=256 (a byte-level
vocabulary); a tokenizer's vocabulary changes them by (V - 256) * n_embd. "Non-emb." excludes
the token and position embeddings (Kaplan et al.'s N).

====== ======= ====== ====== ===== =========== =========== =========== ===============
preset n_layer n_head n_embd n_pos GPT params  non-emb.    BERT params GPT fwd FLOPs/tok
====== ======= ====== ====== ===== =========== =========== =========== ===============
nano   2       2      16     32    11,200      6,592       11,792      24,576
micro  2       4      32     64    35,712      25,472      37,152      81,920
tiny   3       4      64     64    170,560     150,080     175,232     376,832
mini   4       4      96     64    478,272     447,552     488,224     1,032,192
small  4       4      128    64    834,304     793,344     851,584     1,769,472
base   6       6      192    128   2,743,296   2,669,568   2,781,376   5,996,544
medium 8       8      320    128   9,987,200   9,864,320   10,091,456  21,135,360
====== ======= ====== ====== ===== =========== =========== =========== ===============

FLOPs per token are `GPT.flops_per_token(training=False)` at the full context; training
costs three times as much.

`small` is the default (`DEFAULT_PRESET`): nanoGPT's CPU recipe size (4 layers, 4 heads,
d=128, context 64). One forward + backward step on a 12 x 64 batch of characters takes about
0.2 s on one core of the 2-core reference machine (benchmarks/bench_models.py): some 1,500
steps in five minutes.

>>> GPTConfig.from_preset("nano", vocab_size=65).n_embd
16
"""

from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass

from .._checks import choice, non_negative_int, positive_int, positive_number, probability
from ..nn import ACTIVATIONS
from .registry import PRESETS, get_family  # noqa: F401 - PRESETS re-exported here

DEFAULT_PRESET = "small"

# name: (n_layer, n_head, n_embd, n_positions)
_SIZES = {
    "nano": (2, 2, 16, 32),
    "micro": (2, 4, 32, 64),
    "tiny": (3, 4, 64, 64),
    "mini": (4, 4, 96, 64),
    "small": (4, 4, 128, 64),
    "base": (6, 6, 192, 128),
    "medium": (8, 8, 320, 128),
}

GPT_PRESETS = {name: dict(n_layer=l, n_head=h, n_embd=c, n_positions=t)
               for name, (l, h, c, t) in _SIZES.items()}
BERT_PRESETS = {name: dict(num_hidden_layers=l, num_attention_heads=h, hidden_size=c,
                           intermediate_size=4 * c, max_position_embeddings=t)
                for name, (l, h, c, t) in _SIZES.items()}

SUPPORTED_ACTIVATIONS = tuple(ACTIVATIONS)
#: What GPT2ForSequenceClassification classifies (`GPTConfig.classifier_pooling`).
CLASSIFIER_POOLING = ("last", "mean")

#: Before the model_type of a model that `transformers` would build differently
#: (`ModelConfig.saved_model_type`).
TINYLLM_MODEL_TYPE_PREFIX = "tinyllm-"


def _check_heads(cls: str, width_name: str, width: int, heads_name: str, heads: int) -> None:
    if width % heads:
        raise ValueError(f"{cls}: {width_name}={width} is not divisible by {heads_name}={heads}; "
                         f"each head gets {width_name} / {heads_name} channels, which must be a "
                         f"whole number (e.g. {heads_name}={_divisor_near(width, heads)})")


def stored_score_copies() -> int:
    """Numbers a training step keeps per attention score: 3 on the NumPy twin (the scores,
    the probabilities and their gradient, all T x T), none on the compiled kernel, which keeps
    only each row's log-sum-exp and recomputes the rest block by block in backward."""
    from .. import kernels

    return 3 if kernels.attention_forward is kernels.reference.attention_forward else 0


def _check_activation(cls: str, field: str, name: str) -> None:
    if name not in SUPPORTED_ACTIVATIONS:
        raise ValueError(f"{cls}: {field}={name!r} is not supported; "
                         f"accepted: {', '.join(SUPPORTED_ACTIVATIONS)}")


def _check_pad_token_id(cls: str, pad_token_id, vocab_size: int) -> None:
    if pad_token_id is not None and non_negative_int("pad_token_id", pad_token_id,
                                                     where=cls) >= vocab_size:
        raise ValueError(f"{cls}: pad_token_id={pad_token_id} is outside the vocabulary "
                         f"(accepted: 0..{vocab_size - 1}, or None)")


def _check_pruned_heads(cls: str, pruned, n_layer: int, n_head: int):
    """{layer: sorted heads} (JSON's string keys read back as ints), or None when empty."""
    if pruned is None:
        return None
    if not isinstance(pruned, dict):
        raise ValueError(f"{cls}: pruned_heads must be a mapping {{layer: [heads]}}, got "
                         f"{pruned!r}")
    out = {}
    for layer, heads in pruned.items():
        try:
            i = int(layer)
            hs = sorted({int(h) for h in heads})
        except (TypeError, ValueError):
            raise ValueError(f"{cls}: pruned_heads[{layer!r}] = {heads!r} is not a list of "
                             "head numbers") from None
        if not 0 <= i < n_layer:
            raise ValueError(f"{cls}: pruned_heads names layer {layer!r}; accepted: "
                             f"0..{n_layer - 1}")
        if any(not 0 <= h < n_head for h in hs):
            raise ValueError(f"{cls}: pruned_heads[{i}] = {heads!r} names a head outside "
                             f"0..{n_head - 1}")
        if len(hs) == n_head:
            raise ValueError(f"{cls}: pruned_heads[{i}] removes all {n_head} heads of the "
                             "layer; at least one must stay")
        if hs:
            out[i] = hs
    return dict(sorted(out.items())) or None


def _divisor_near(n: int, k: int) -> int:
    return min((d for d in range(1, n + 1) if n % d == 0), key=lambda d: abs(d - k))


class ModelConfig:
    """The base of every model config: presets, the context length, dict round trips."""

    model_type = ""
    architecture = ""
    preset_family = ""       # the models-registry family whose presets from_preset reads
    context_field = ""       # the field holding the context length (the family's own name)

    @property
    def block_size(self) -> int:
        """The context length, whatever the field is called (nanoGPT's name for it)."""
        return getattr(self, self.context_field)

    @classmethod
    def from_preset(cls, name: str, **overrides):
        """The config of preset `name` (see the table above), with fields overridden."""
        return cls(**{**get_family(cls.preset_family).preset(name), **overrides})

    def param_count(self) -> int:
        """The number of parameters the model of this config has (a tied weight once),
        computed from the config alone, before anything is allocated."""
        raise NotImplementedError

    def activation_count(self, batch_size: int, block_size: int, score_copies: int = 3) -> int:
        """About how many numbers one training step keeps for backward at batch x block;
        `score_copies` numbers per attention score (see `stored_score_copies`)."""
        raise NotImplementedError

    def train_memory_bytes(self, batch_size: int, block_size: int, itemsize: int = 4) -> int:
        """An estimate of one training step's peak memory: weights, gradients and two AdamW
        moments (4 copies of every parameter) plus the activations kept for backward and,
        at the peak of backward, about as many gradients of them."""
        acts = self.activation_count(batch_size, block_size, stored_score_copies())
        return itemsize * (4 * self.param_count() + 2 * acts)

    def replace(self, **changes):
        """A copy with some fields changed (checked again)."""
        return dataclasses.replace(self, **changes)

    def tinyllm_only_fields(self) -> list[str]:
        """The fields set to values that change the model and that `transformers`' class of
        the same `model_type` does not implement: it reads and ignores them, so it would build
        another model from the same file (its outputs differ silently, or its weights do not
        fit). None in the base class."""
        return []

    @property
    def saved_model_type(self) -> str:
        """The `model_type` that config.json names: the family's own, or, when
        `tinyllm_only_fields` is not empty, ``tinyllm-<model_type>``, which `transformers`'
        AutoModel classes refuse (and its model classes load only with a warning)."""
        own = TINYLLM_MODEL_TYPE_PREFIX + self.model_type
        return own if self.tinyllm_only_fields() else self.model_type

    @classmethod
    def reads_model_type(cls, model_type) -> bool:
        """Whether a config.json naming `model_type` holds a model of this config's kind."""
        return model_type in (cls.model_type, TINYLLM_MODEL_TYPE_PREFIX + cls.model_type)

    def to_dict(self) -> dict:
        """The fields plus `model_type` (`saved_model_type`) and `architectures`, as in a
        Hugging Face config.json."""
        return {"model_type": self.saved_model_type, "architectures": [self.architecture],
                **dataclasses.asdict(self)}

    @classmethod
    def from_dict(cls, d: dict, strict: bool = True):
        """Build from a dict such as `to_dict()`'s; with strict=False unknown keys are ignored
        (a Hugging Face config.json carries many that do not change the architecture)."""
        names = {f.name for f in dataclasses.fields(cls)}
        unknown = sorted(set(d) - names - {"model_type", "architectures"})
        if strict and unknown:
            raise ValueError(f"{cls.__name__}: unknown keys {unknown}; accepted: {sorted(names)}")
        return cls(**{k: v for k, v in d.items() if k in names})


@dataclass
class GPTConfig(ModelConfig):
    """GPT-2's architecture, with `transformers.GPT2Config`'s field names.

    Defaults are the `small` preset; dropout defaults to 0 (GPT-2's own configs say 0.1).
    `n_inner=None` means 4 * n_embd. `num_labels` and `pad_token_id` are for
    `GPT2ForSequenceClassification` (its number of classes, and the id whose rightmost
    non-occurrence marks the token it classifies); the language model ignores them.

    `pruned_heads` ({layer: [head, ...]}, Hugging Face's name for it) lists the attention
    heads structured pruning removed (`tinyllm.compress.structured.prune_heads`): layer i
    has n_head - len(pruned_heads[i]) heads, each still n_embd / n_head wide. Such a model
    has no GPT2LMHeadModel twin (transformers 5 dropped head pruning).

    `mup_base_width` (None: GPT-2's standard parametrisation) turns on the maximal-update
    parametrisation (muP; Yang et al. 2022, "Tensor Programs V", Table 3 for Adam) relative to
    a model `mup_base_width` wide, so that a learning rate tuned at that width carries over
    to this one. With m = `mup_width_mult` = n_embd / mup_base_width:

    - attention scores are multiplied by `attention_scale` = 1 / sqrt(head_dim * m), which is
      1/head_dim up to the constant sqrt(head_dim at the base width);
    - the output logits (`lm_head`, and `score` of the classifier) are divided by m;
    - hidden weights (`c_attn`, `c_fc` and both `c_proj`) start with their standard deviation
      divided by sqrt(m), and Adam trains them at the learning rate divided by m
      (`PretrainedModel.lr_multipliers`); embeddings, biases and LayerNorms keep both.

    At m = 1 the model is exactly the standard one. Such a model has no GPT2LMHeadModel twin
    (its attention and logits are scaled).

    `classifier_pooling` (tinyllm's own field) is the state `GPT2ForSequenceClassification`
    classifies: "last", the last token that is not padding (Hugging Face's, the default), or
    "mean", the average over every token that is not padding (a part of ULMFiT's concat
    pooling: each token's state sums up the text so far, and the mean gathers all of them).
    A "mean" classifier has no twin in `transformers`, which reads the field and ignores it.

    A config with pruned heads, muP at a width other than its base, or the "mean" classifier
    (`tinyllm_only_fields`) is saved with model_type "tinyllm-gpt2": `transformers` would build
    plain GPT-2 from it (the mean pooling and muP ignored silently, pruned heads' weights not
    fitting).
    """

    vocab_size: int = 256
    n_positions: int = 64
    n_embd: int = 128
    n_layer: int = 4
    n_head: int = 4
    n_inner: int | None = None
    activation_function: str = "gelu_new"
    resid_pdrop: float = 0.0
    embd_pdrop: float = 0.0
    attn_pdrop: float = 0.0
    layer_norm_epsilon: float = 1e-5
    initializer_range: float = 0.02
    tie_word_embeddings: bool = True
    num_labels: int = 2
    pad_token_id: int | None = None
    pruned_heads: dict[int, list[int]] | None = None
    mup_base_width: int | None = None
    classifier_pooling: str = "last"

    model_type = "gpt2"
    architecture = "GPT2LMHeadModel"
    preset_family = "gpt"
    context_field = "n_positions"

    def __post_init__(self):
        name = type(self).__name__
        for field in ("vocab_size", "n_positions", "n_embd", "n_layer", "n_head", "num_labels"):
            positive_int(field, getattr(self, field), where=name)
        if self.n_inner is not None:
            positive_int("n_inner", self.n_inner, where=name)
        _check_heads(name, "n_embd", self.n_embd, "n_head", self.n_head)
        for field in ("resid_pdrop", "embd_pdrop", "attn_pdrop"):
            probability(field, getattr(self, field), where=name)
        _check_activation(name, "activation_function", self.activation_function)
        for field in ("layer_norm_epsilon", "initializer_range"):
            positive_number(field, getattr(self, field), where=name)
        if not isinstance(self.tie_word_embeddings, bool):
            raise ValueError(f"{name}: tie_word_embeddings must be true or false, "
                             f"got {self.tie_word_embeddings!r}")
        _check_pad_token_id(name, self.pad_token_id, self.vocab_size)
        self.pruned_heads = _check_pruned_heads(name, self.pruned_heads, self.n_layer,
                                                self.n_head)
        if self.mup_base_width is not None:
            positive_int("mup_base_width", self.mup_base_width, where=name)
        choice("classifier_pooling", self.classifier_pooling, CLASSIFIER_POOLING, where=name)

    def tinyllm_only_fields(self) -> list[str]:
        """`pruned_heads` when heads were removed, `mup_base_width` when the width multiplier
        is not 1, `classifier_pooling` when it is not "last" (see the class docstring)."""
        return [name for name, own in (("pruned_heads", bool(self.pruned_heads)),
                                       ("mup_base_width", self.mup_width_mult != 1.0),
                                       ("classifier_pooling", self.classifier_pooling != "last"))
                if own]

    @property
    def head_dim(self) -> int:
        return self.n_embd // self.n_head

    @property
    def mup_width_mult(self) -> float:
        """m = n_embd / mup_base_width under muP; 1.0 in the standard parametrisation."""
        return 1.0 if self.mup_base_width is None else self.n_embd / self.mup_base_width

    @property
    def attention_scale(self) -> float | None:
        """What the attention scores q k^T are multiplied by: None (1/sqrt(head_dim), GPT-2's)
        in the standard parametrisation, 1/sqrt(head_dim * m) under muP."""
        if self.mup_base_width is None:
            return None
        return 1.0 / math.sqrt(self.head_dim * self.mup_width_mult)

    def heads_in_layer(self, layer: int) -> int:
        """How many attention heads layer `layer` has (n_head less the pruned ones)."""
        return self.n_head - len((self.pruned_heads or {}).get(layer, ()))

    def attention_width(self, layer: int) -> int:
        """Channels of layer `layer`'s q (and k, v): its heads times the head size."""
        return self.heads_in_layer(layer) * self.head_dim

    @property
    def inner_dim(self) -> int:
        return 4 * self.n_embd if self.n_inner is None else self.n_inner

    def total_attention_width(self) -> int:
        """The sum over layers of their attention widths (n_layer * n_embd unless heads were
        pruned), without a loop over the layers: a hostile config may claim 10^12 of them."""
        pruned = self.pruned_heads or {}
        return self.n_layer * self.n_embd - sum(len(h) for h in pruned.values()) * self.head_dim

    def param_count(self) -> int:
        c, i, v = self.n_embd, self.inner_dim, self.vocab_size
        # ln_1, c_attn (3 c a + 3 a), c_proj (a c + c), ln_2, c_fc, mlp c_proj (weights and
        # biases); a: a layer's attention width (c unless heads were pruned), summed over layers
        per_layer = 2 * c + c + 2 * c + (c * i + i) + (i * c + c)
        blocks = self.n_layer * per_layer + (4 * c + 3) * self.total_attention_width()
        head = 0 if self.tie_word_embeddings else v * c
        return v * c + self.n_positions * c + blocks + 2 * c + head

    def activation_count(self, batch_size: int, block_size: int, score_copies: int = 3) -> int:
        # per position and layer: LayerNorms, q/k/v, attention output and projection,
        # residuals (~10 C), the MLP's input and activation (2 I), and `score_copies`
        # numbers per attention score for each head
        c, t = self.n_embd, block_size
        per_layer = 10 * c + 2 * self.inner_dim + score_copies * self.n_head * t
        return batch_size * t * (self.n_layer * per_layer + 3 * self.vocab_size + 2 * c)


@dataclass
class BertConfig(ModelConfig):
    """BERT's architecture, with `transformers.BertConfig`'s field names.

    Defaults are the `small` preset; `intermediate_size=None` means 4 * hidden_size. Dropout
    defaults to 0 (BERT's own configs say 0.1). `num_labels` sizes the classification head.
    """

    vocab_size: int = 256
    hidden_size: int = 128
    num_hidden_layers: int = 4
    num_attention_heads: int = 4
    intermediate_size: int | None = None
    hidden_act: str = "gelu"
    hidden_dropout_prob: float = 0.0
    attention_probs_dropout_prob: float = 0.0
    max_position_embeddings: int = 64
    type_vocab_size: int = 2
    layer_norm_eps: float = 1e-12
    initializer_range: float = 0.02
    pad_token_id: int | None = 0
    num_labels: int = 2
    classifier_dropout: float | None = None

    model_type = "bert"
    architecture = "BertForMaskedLM"
    preset_family = "bert"
    context_field = "max_position_embeddings"

    def __post_init__(self):
        name = type(self).__name__
        if self.intermediate_size is None:
            self.intermediate_size = 4 * self.hidden_size
        for field in ("vocab_size", "hidden_size", "num_hidden_layers", "num_attention_heads",
                      "intermediate_size", "max_position_embeddings", "type_vocab_size",
                      "num_labels"):
            positive_int(field, getattr(self, field), where=name)
        _check_heads(name, "hidden_size", self.hidden_size, "num_attention_heads",
                     self.num_attention_heads)
        for field in ("hidden_dropout_prob", "attention_probs_dropout_prob"):
            probability(field, getattr(self, field), where=name)
        if self.classifier_dropout is not None:
            probability("classifier_dropout", self.classifier_dropout, where=name)
        _check_activation(name, "hidden_act", self.hidden_act)
        _check_pad_token_id(name, self.pad_token_id, self.vocab_size)
        for field in ("layer_norm_eps", "initializer_range"):
            positive_number(field, getattr(self, field), where=name)

    @property
    def head_dim(self) -> int:
        return self.hidden_size // self.num_attention_heads

    def param_count(self) -> int:
        """Parameters of `BertForMaskedLM` (the family's model; a classifier differs by the
        pooler and the classifier's few weights)."""
        c, i, v = self.hidden_size, self.intermediate_size, self.vocab_size
        embeddings = (v + self.max_position_embeddings + self.type_vocab_size) * c + 2 * c
        # query, key, value, output dense, LayerNorm; intermediate; output dense, LayerNorm
        layer = 4 * (c * c + c) + 2 * c + (c * i + i) + (i * c + c) + 2 * c
        mlm_head = (c * c + c) + 2 * c + v       # transform, its LayerNorm, output bias
        return embeddings + self.num_hidden_layers * layer + mlm_head

    def activation_count(self, batch_size: int, block_size: int, score_copies: int = 3) -> int:
        c, t = self.hidden_size, block_size     # as GPTConfig.activation_count
        per_layer = (10 * c + 2 * self.intermediate_size
                     + score_copies * self.num_attention_heads * t)
        return batch_size * t * (self.num_hidden_layers * per_layer + 3 * self.vocab_size + 4 * c)
