"""What GPT and BERT share: the output tuples, input checks, save / load / from_pretrained.

Shapes: B batch, T positions, V vocabulary, K labels.
"""

from __future__ import annotations

import warnings
from pathlib import Path
from typing import NamedTuple

import numpy as np

from .. import functional as F
from .._memory import check_fits
from .._version import __version__
from ..autograd.dtype import default_dtype, get_default_dtype
from ..autograd.tensor import Tensor
from ..nn import Module
from ..nn.quantized import load_quantized, quantized_layers, quantized_state
from .checkpoint import CheckpointError, read_config, read_weights, write_model_dir


class LMOutput(NamedTuple):
    """A model's output: `logits` (B, T, V) (or (B, num_labels)) and `loss` (None without
    targets). A tuple, so `logits, loss = model(x, y)` works."""

    logits: Tensor
    loss: Tensor | None = None


class QAOutput(NamedTuple):
    """An extractive question-answering head's output (Hugging Face's field names): a score
    per position for the answer's first and last token, `start_logits` (B, T) and
    `end_logits` (B, T), and `loss` (None without start and end positions)."""

    start_logits: Tensor
    end_logits: Tensor
    loss: Tensor | None = None


class PreTrainingOutput(NamedTuple):
    """BERT's pre-training output (Hugging Face's field names): masked-LM scores
    `prediction_logits` (B, T, V), next-sentence scores `seq_relationship_logits` (B, 2)
    and `loss`, their two cross-entropies summed (None without both kinds of label)."""

    prediction_logits: Tensor
    seq_relationship_logits: Tensor
    loss: Tensor | None = None


class Seq2SeqLMOutput(NamedTuple):
    """An encoder-decoder's output (Hugging Face's field names): `logits` (B, T, V) over the
    target vocabulary at each decoder position, `loss` (None without labels) and, when asked
    for with `output_attentions=True`, `cross_attentions`: one array per decoder layer,
    (B, nh, T, S), each target position's weights over the S source positions (plain arrays,
    outside the autograd graph)."""

    logits: Tensor
    loss: Tensor | None = None
    cross_attentions: tuple | None = None


def shift_tokens_right(labels, pad_token_id: int | None,
                       decoder_start_token_id: int) -> np.ndarray:
    """The decoder's input for teacher forcing: `labels` (B, T) moved one position right,
    `decoder_start_token_id` first, and -100 (an ignored label) replaced by `pad_token_id`,
    as Hugging Face's rule. Position t of the decoder reads label t - 1 and predicts label t.

    >>> shift_tokens_right(np.array([[5, 6, 1, -100]]), pad_token_id=0, decoder_start_token_id=0)
    array([[0, 5, 6, 1]])
    """
    if pad_token_id is None:
        raise ValueError("shift_tokens_right: pad_token_id is None; the ignored label "
                         "positions (-100) need a padding id to read as")
    y = np.asarray(labels.data if isinstance(labels, Tensor) else labels)
    if y.ndim != 2 or y.dtype.kind not in "iu":
        raise ValueError(f"shift_tokens_right: labels must be integer ids of shape (B, T), "
                         f"got dtype {y.dtype} and shape {y.shape}")
    out = np.empty(y.shape, dtype=np.int64)                            # (B, T)
    out[:, 1:] = y[:, :-1]
    out[:, :1] = decoder_start_token_id
    out[out == -100] = pad_token_id
    return out


def as_ids(name: str, ids, vocab_size: int, max_len: int | None = None,
           what: str = "the vocabulary") -> np.ndarray:
    """`ids` (B, T) as an int64 array, or a ValueError naming the bad shape or value."""
    arr = ids.data if isinstance(ids, Tensor) else np.asarray(ids)
    if arr.dtype.kind not in "iu":
        raise TypeError(f"{name} must hold integer token ids, got dtype {arr.dtype}")
    if arr.ndim != 2:
        raise ValueError(f"{name} must have shape (B, T), got shape {arr.shape}; "
                         f"add a batch dimension with ids[None]")
    if max_len is not None and arr.shape[1] > max_len:
        raise ValueError(f"{name} has {arr.shape[1]} positions, more than the context of "
                         f"{max_len} positions this model was built for; crop the sequence")
    if arr.size and (arr.min() < 0 or arr.max() >= vocab_size):
        bad = int(arr.min()) if arr.min() < 0 else int(arr.max())
        raise ValueError(f"{name} holds id {bad}, outside {what} of size {vocab_size} "
                         f"(accepted: 0..{vocab_size - 1})")
    return arr.astype(np.int64, copy=False)


def lm_loss(model_name: str, logits: Tensor, targets, what: str = "targets") -> Tensor:
    """Mean cross-entropy of `logits` (B, T, V) against ids `targets` (B, T); -100 is skipped."""
    t = targets.data if isinstance(targets, Tensor) else np.asarray(targets)
    if t.shape != logits.shape[:2]:
        raise ValueError(f"{model_name}: {what} have shape {t.shape}, expected the ids' shape "
                         f"{logits.shape[:2]}")
    return F.cross_entropy(logits.reshape(-1, logits.shape[-1]), t.reshape(-1),
                           ignore_index=-100)


def classification_loss(model_name: str, logits: Tensor, labels) -> Tensor:
    """The loss of sequence-level `logits` (B, K) against `labels` (B,), as Hugging Face
    infers its problem_type: K = 1 is regression (mean squared error against float labels),
    K > 1 single-label classification (cross-entropy against class ids; -100 is skipped)."""
    y = labels.data if isinstance(labels, Tensor) else np.asarray(labels)
    if y.shape != logits.shape[:1]:
        raise ValueError(f"{model_name}: labels have shape {y.shape}, expected (B,) = "
                         f"{logits.shape[:1]}")
    k = logits.shape[1]
    if k == 1:
        if y.dtype.kind not in "iuf":
            raise TypeError(f"{model_name}: regression labels (num_labels=1) must be numbers, "
                            f"got dtype {y.dtype}")
        diff = logits.reshape(-1) - Tensor._make(y.astype(logits.dtype))   # (B,)
        return (diff * diff).mean()
    if y.dtype.kind not in "iu":
        raise TypeError(f"{model_name}: labels must be class ids (integers 0..{k - 1}) for "
                        f"num_labels={k}, got dtype {y.dtype}; multi-label classification "
                        "(float labels, binary cross-entropy) is not implemented")
    return F.cross_entropy(logits, y)


def as_padding_mask(model_name: str, attention_mask, shape: tuple,
                    name: str = "attention_mask") -> np.ndarray | None:
    """Hugging Face's `attention_mask` (B, T), 1 = token and 0 = padding, as attention's
    `key_padding_mask` (True = padding), or None when there is no padding to hide.
    `name` is the argument's name in error messages (an encoder-decoder has two masks)."""
    if attention_mask is None:
        return None
    m = np.asarray(attention_mask.data if isinstance(attention_mask, Tensor)
                   else attention_mask)
    if m.shape != shape:
        raise ValueError(f"{model_name}: {name} has shape {m.shape}, expected (B, T) = "
                         f"{shape}, the ids' shape (1 = token, 0 = padding)")
    if not np.isin(m, (0, 1)).all():
        raise ValueError(f"{model_name}: {name} must hold only 1 (token) and "
                         "0 (padding)")
    pad = m == 0                                                       # (B, T), True = pad
    return pad if pad.any() else None


class PretrainedModel(Module):
    """A Module with a config that saves to, and loads from, a model directory."""

    config_class: type = type(None)
    # Architecture name written to config.json (Hugging Face's class of the same layout).
    hf_architecture = ""
    # Parameter-name prefixes that may be absent from a directory (a new head to train).
    optional_prefixes: tuple[str, ...] = ()
    # Extra config.json entries for transformers' sake (fields tinyllm does not use).
    hf_config_extras: dict = {}

    @classmethod
    def head_modules(cls) -> list[str]:
        """The modules a task head adds to its body (`optional_prefixes` as module names):
        the ones LoRA fine-tuning trains in full (peft's `modules_to_save`)."""
        return [prefix.rstrip(".") for prefix in cls.optional_prefixes]

    def __init__(self, config):
        super().__init__()
        if not isinstance(config, self.config_class):
            raise TypeError(f"{type(self).__name__} needs a {self.config_class.__name__}, "
                            f"got {type(config).__name__}")
        self.config = config

    def lr_multipliers(self) -> dict[str, float]:
        """{parameter name: factor} for parameters whose learning rate differs from the run's
        (muP's hidden weights; `tinyllm.optim.scale_group_lrs`); {} when none does."""
        return {}

    # ----------------------------------------------------------------- saving
    def save(self, directory) -> Path:
        """Write config.json and model.safetensors (tied weights once, Hugging Face names)."""
        config = {**self.config.to_dict(), **self.hf_config_extras,
                  "architectures": [self.hf_architecture],
                  "dtype": str(self.dtype), "tinyllm_version": __version__}
        state = {name: p.data for name, p in self.named_parameters()}
        layers = quantized_layers(self)
        if not layers:
            return write_model_dir(directory, config, state)
        # A quantized model: its integers and scales, and the scheme in both files.
        scheme = layers[0][1].scheme.name
        config["quantization_config"] = {"quant_method": "tinyllm", "scheme": scheme,
                                         "modules": [name for name, _ in layers]}
        return write_model_dir(directory, config, {**state, **quantized_state(self)},
                               {"tinyllm_quantization": scheme})

    # ----------------------------------------------------------------- loading
    @classmethod
    def from_pretrained(cls, directory, dtype=None, **config_overrides):
        """A model from a directory written by `save` or by `transformers`' `save_pretrained`.

        `dtype`: the parameters' dtype (default: tinyllm's default dtype); `config_overrides`
        change config fields (e.g. dropout, or num_labels for a new classification head).
        """
        raw = read_config(directory)
        expected = cls.config_class.model_type
        found = raw.get("model_type")
        if not cls.config_class.reads_model_type(found):
            arch = ", ".join(raw.get("architectures") or []) or "no architectures listed"
            raise CheckpointError(
                f"{cls.__name__}.from_pretrained: {directory} holds a model of type {found!r} "
                f"({arch}); expected model_type {expected!r} ({cls.hf_architecture})")
        cls.check_hf_config(raw, directory)
        if "num_labels" not in raw and isinstance(raw.get("id2label"), dict):
            raw["num_labels"] = len(raw["id2label"])  # transformers stores the label names
        try:
            config = cls.config_class.from_dict({**raw, **config_overrides}, strict=False)
        except (TypeError, ValueError) as exc:
            raise CheckpointError(f"{cls.__name__}.from_pretrained: {directory}/config.json "
                                  f"does not describe a usable model: {exc}") from None
        dtype = np.dtype(dtype) if dtype is not None else get_default_dtype()
        cls._check_fits(config, dtype, directory)
        with default_dtype(dtype):
            model = cls(config)
        state = cls.convert_state_dict(read_weights(directory))
        if "quantization_config" in raw:
            state = cls._load_quantized(model, raw["quantization_config"], state, directory)
        missing, unexpected = model.load_state_dict(state, strict=False)
        required = [k for k in missing if not k.startswith(cls.optional_prefixes)]
        if required or unexpected:
            problems = []
            if required:
                problems.append(f"missing keys ({len(required)}): {', '.join(required)}")
            if unexpected:
                problems.append(f"unexpected keys ({len(unexpected)}): {', '.join(unexpected)}")
            raise CheckpointError(f"{cls.__name__}.from_pretrained: the weights in {directory} "
                                  "do not fit the model:\n  " + "\n  ".join(problems))
        if missing:
            warnings.warn(f"{cls.__name__}.from_pretrained: {', '.join(missing)} not in "
                          f"{directory}; newly initialised -- train them before use",
                          stacklevel=2)
        return model

    @staticmethod
    def _load_quantized(model, qconfig, state: dict, directory) -> dict:
        """Rebuild the quantized layers that config.json's quantization_config names, from
        their stored integers and scales; returns the float part of `state`."""
        try:
            if qconfig.get("quant_method") != "tinyllm":
                raise ValueError(f"quant_method {qconfig.get('quant_method')!r} is not "
                                 "tinyllm's (accepted: 'tinyllm')")
            return load_quantized(model, qconfig["scheme"], qconfig["modules"], state)
        except (AttributeError, KeyError, TypeError, ValueError) as exc:
            raise CheckpointError(f"{directory}: its quantized weights cannot be read: "
                                  f"{exc}") from None

    @staticmethod
    def _check_fits(config, dtype: np.dtype, directory) -> None:
        """Refuse, before allocating anything, a config whose weights exceed the memory."""
        need = config.param_count() * dtype.itemsize
        try:
            check_fits(need, f"the model in {directory} ({config.param_count():,} parameters)",
                       "a config.json asking for this much is refused")
        except ValueError as exc:
            raise CheckpointError(str(exc)) from None

    @classmethod
    def load(cls, directory, dtype=None):
        """A model saved with `save` (the same reader as `from_pretrained`)."""
        return cls.from_pretrained(directory, dtype=dtype)

    @classmethod
    def check_hf_config(cls, raw: dict, directory) -> None:
        """Raise if a config.json asks for an option this implementation does not have."""

    @classmethod
    def convert_state_dict(cls, state: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        """Map a file's names onto this model's (older checkpoints' spellings); drop buffers."""
        return state

    @staticmethod
    def _refuse(cls_name: str, directory, option: str, value, accepted) -> None:
        raise CheckpointError(f"{cls_name}.from_pretrained: {directory} sets {option}={value!r}, "
                              f"which tinyllm does not implement (accepted: {accepted})")
