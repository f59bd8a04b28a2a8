"""The models registry: every model family says, in one place, what the rest of tinyllm needs.

A family is what `tinyllm train --model NAME` builds. Its module (gpt.py, bert.py, lstm.py,
seq2seq.py) ends with one `register_family(ModelFamily(...))` call naming

- its config class and model class (the config class names its context-length field);
- its size presets (preset name -> config fields);
- its training objective ("causal-lm", "masked-lm", "seq2seq" for an encoder-decoder that
  translates a source sequence into a target sequence): how batches are cut and the loss taken
  (`tinyllm.training.objectives` maps each objective to that code);
- the config fields that the run's dropout and the tokenizer's special tokens set;
- the Hugging Face class with the same parameter layout, where there is one;
- its task heads: the model class to fine-tune for each kind of task (`HEADS`), e.g. BERT's
  `BertForSequenceClassification` for "sequence-classification".

The trainer, `tinyllm.training.inference`, the command and the studies ask this registry;
nothing else branches on a family's name. An unknown name is an error:

>>> get_family("gpt").objective
'causal-lm'
>>> get_family("gtp")  # doctest: +ELLIPSIS
Traceback (most recent call last):
ValueError: unknown model family 'gtp'; accepted: gpt, bert, lstm, seq2seq...
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field

OBJECTIVES = ("causal-lm", "masked-lm", "seq2seq")
#: Kinds of task a family may have a head for (the `heads` keys).
HEADS = ("sequence-classification", "question-answering", "pretraining")

_FAMILIES: dict[str, ModelFamily] = {}


@dataclass(frozen=True)
class ModelFamily:
    """What tinyllm needs to know to build, train, save and load one kind of model."""

    name: str                        # the --model value and the checkpoints' model_type
    config_class: type               # a dataclass config with from_preset/from_dict/block_size
    model_class: type                # built as model_class(config, seed=seed)
    objective: str                   # one of OBJECTIVES
    presets: dict[str, dict]         # preset name -> config fields
    description: str                 # one line for --help and `tinyllm info`
    dropout_fields: tuple[str, ...] = ()   # config fields that TrainConfig.dropout sets
    # config field -> tokenizer attribute it is taken from (e.g. BERT's pad_token_id)
    token_id_fields: dict[str, str] = field(default_factory=dict)
    hf_class: str | None = None      # the transformers class with this parameter layout
    heads: dict[str, type] = field(default_factory=dict)   # task kind -> model class
    lora_targets: tuple[str, ...] = ()   # the layers LoRA adapts by default (peft's choice)

    def __post_init__(self):
        if self.objective not in OBJECTIVES:
            raise ValueError(f"model family {self.name!r}: unknown objective "
                             f"{self.objective!r}; accepted: {', '.join(OBJECTIVES)}")
        unknown = sorted(set(self.heads) - set(HEADS))
        if unknown:
            raise ValueError(f"model family {self.name!r}: unknown head kinds {unknown}; "
                             f"accepted: {', '.join(HEADS)}")

    @property
    def context_field(self) -> str:
        """The config field that holds the context length (Hugging Face's name for it)."""
        return self.config_class.context_field

    @property
    def can_generate(self) -> bool:
        """Whether the model continues text (a causal LM) rather than filling in masks."""
        return self.objective == "causal-lm"

    def preset(self, name: str) -> dict:
        """The config fields of preset `name`, or a ValueError listing the presets."""
        if name not in self.presets:
            raise ValueError(f"{self.config_class.__name__}: unknown preset {name!r}; "
                             f"accepted: {', '.join(self.presets)}")
        return self.presets[name]

    def head(self, kind: str) -> type:
        """The model class that fine-tunes this family for `kind`, or an error naming the
        families that have one."""
        if kind not in self.heads:
            having = [n for n in _FAMILIES if kind in _FAMILIES[n].heads]
            raise ValueError(f"model family {self.name!r} has no {kind} head; the families "
                             f"that have one: {', '.join(having) or 'none'}")
        return self.heads[kind]

    def make_config(self, preset: str, *, vocab_size: int, block_size: int | None = None,
                    dropout: float = 0.0, tokenizer=None, **overrides):
        """The config of `preset` for a vocabulary, context, dropout and tokenizer.

        `block_size` (None: the preset's) sets the family's context field; `overrides` are
        config fields by their own names and win over everything else.
        """
        fields = {name: dropout for name in self.dropout_fields}
        if block_size is not None:
            fields[self.context_field] = block_size
        if tokenizer is not None:
            fields.update({name: getattr(tokenizer, attr)
                           for name, attr in self.token_id_fields.items()})
        return self.config_class(**{**self.preset(preset), "vocab_size": vocab_size,
                                    **fields, **overrides})

    def config_from_dict(self, d: dict):
        """A config from a checkpoint's saved dict (unknown keys are ignored)."""
        return self.config_class.from_dict(d, strict=False)

    def build(self, config, seed: int | None = None):
        """A freshly initialised model of this family."""
        return self.model_class(config, seed=seed)


def register_family(family: ModelFamily) -> ModelFamily:
    """Add a family (once per name); returns it."""
    if family.name in _FAMILIES:
        raise ValueError(f"model family {family.name!r} is registered already")
    _FAMILIES[family.name] = family
    return family


def get_family(name: str) -> ModelFamily:
    """The family registered as `name`, or a ValueError listing the accepted names."""
    try:
        return _FAMILIES[name]
    except (KeyError, TypeError):
        raise ValueError(f"unknown model family {name!r}; accepted: "
                         f"{', '.join(_FAMILIES)}") from None


def family_names() -> tuple[str, ...]:
    """The registered families' names, in registration order."""
    return tuple(_FAMILIES)


class _Presets(Mapping):
    """`PRESETS[family][preset]`: a read-only view of every registered family's presets."""

    def __getitem__(self, name: str) -> dict[str, dict]:
        return get_family(name).presets

    def __contains__(self, name) -> bool:
        return name in _FAMILIES

    def __iter__(self) -> Iterator[str]:
        return iter(_FAMILIES)

    def __len__(self) -> int:
        return len(_FAMILIES)

    def __repr__(self) -> str:
        return f"PRESETS({', '.join(_FAMILIES)})"


PRESETS: Mapping[str, dict[str, dict]] = _Presets()
