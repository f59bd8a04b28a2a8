"""LoRA (Hu et al. 2021): train a low-rank update beside each frozen projection, not the weight.

Shapes: `*` any leading dimensions (usually B, T), `in` / `out` the layer's features, r the rank.

A frozen layer y = x W^T + b gains a trainable product of two thin matrices::

    y = base(x) + dropout(x) @ A^T @ B^T * (lora_alpha / r)      A (r, in), B (out, r)

A starts as `nn.Linear`'s default (kaiming-uniform, a = sqrt(5)) and B at zero, so a fresh
adapter changes nothing; only A and B (r (in + out) numbers per layer) learn. Merging folds
the update into the weight, W + B A (lora_alpha / r), so inference costs what the base costs.

Names mirror Hugging Face `peft`: `LoraConfig(r, lora_alpha, target_modules, lora_dropout,
modules_to_save)`, `lora_A` / `lora_B` as `nn.Linear` layers without bias, `lora_dropout`,
`get_nb_trainable_parameters`; peft's merge_and_unload / merge_adapter / unmerge_adapter /
unload are `merge_lora(model)`, `merge_lora(model, unload=False)`, `unmerge_lora`,
`unload_lora`. Targets match as in peft: a layer is wrapped when its name is a target or ends
with "." + a target (a string is a regular expression the whole name must match).

The wrapped layer's own parameters keep their names: `transformer.h.0.attn.c_attn.weight`
stays what it was (peft would call it `...c_attn.base_layer.weight`), and the adapter adds
`...c_attn.lora_A.weight` and `...c_attn.lora_B.weight` -- peft's saved names without their
`base_model.model.` prefix. So a LoRA model's `state_dict` still loads into the plain model
(strict=False), and `tinyllm.models.lora_io.save_adapter` / `load_adapter` write and read
peft's adapter directory (the file I/O lives there, above nn).

>>> model = apply_lora(GPT(GPTConfig.from_preset("nano", vocab_size=65)), r=8, lora_alpha=16,
...                    target_modules=["c_attn"])
>>> trainable, total = get_nb_trainable_parameters(model)      # only lora_A / lora_B train
>>> merged = merge_lora(model)                                  # plain Conv1D layers again
"""

from __future__ import annotations

import math
import re
from collections import OrderedDict
from collections.abc import Iterator, Sequence
from dataclasses import dataclass

import numpy as np

from .._checks import positive_int, positive_number, probability
from ..autograd.dtype import default_dtype
from ..autograd.tensor import Tensor
from . import init
from .layers import Conv1D, Dropout, Linear
from .module import Module

#: The layer types LoRA wraps: PyTorch-layout `Linear` (out, in) and GPT-2's `Conv1D` (in, out).
LORA_LAYER_TYPES = (Linear, Conv1D)


@dataclass(frozen=True)
class LoraConfig:
    """What `apply_lora` did to a model (kept as `model.lora_config`; peft's field names)."""

    r: int
    lora_alpha: float
    target_modules: tuple[str, ...] | str
    lora_dropout: float = 0.0
    modules_to_save: tuple[str, ...] | None = None

    @property
    def scaling(self) -> float:
        return self.lora_alpha / self.r


class LoRALinear(Module):
    """A frozen `Linear` or `Conv1D` plus a trainable low-rank update: x (*, in) -> (*, out).

    y = base_layer(x) + lora_B(lora_A(lora_dropout(x))) * lora_alpha / r, where
    lora_A = Linear(in, r, bias=False) (kaiming-uniform) and lora_B = Linear(r, out, bias=False)
    (zeros). `fan_in_fan_out` is True for a Conv1D base (its weight is (in, out)); A and B
    have the same layout for both, as in peft.

    The base layer's parameters appear under the wrapper's name (`c_attn.weight`), not under
    `c_attn.base_layer.weight`: `base_layer` is kept out of the parameter walk.
    """

    def __init__(self, base_layer: Linear | Conv1D, r: int, lora_alpha: float,
                 lora_dropout: float = 0.0, generator: np.random.Generator | None = None):
        super().__init__()
        if not isinstance(base_layer, LORA_LAYER_TYPES):
            raise TypeError(f"LoRALinear: base_layer must be a Linear or Conv1D, got "
                            f"{type(base_layer).__name__}")
        self.r = positive_int("r", r, where="LoRALinear")
        self.lora_alpha = _alpha(lora_alpha, "LoRALinear")
        self.scaling = self.lora_alpha / self.r
        self.base_layer = base_layer
        self.fan_in_fan_out = isinstance(base_layer, Conv1D)
        self.in_features, self.out_features = base_layer.in_features, base_layer.out_features
        self.merged, self._trainable = False, True
        self.lora_dropout = Dropout(probability("lora_dropout", lora_dropout, where="LoRALinear"))
        with default_dtype(base_layer.weight.dtype):
            self.lora_A = Linear(self.in_features, self.r, bias=False)   # kaiming-uniform
            self.lora_B = Linear(self.r, self.out_features, bias=False)
        if generator is not None:
            init.kaiming_uniform_(self.lora_A.weight, a=math.sqrt(5), generator=generator)
        init.zeros_(self.lora_B.weight)

    def _members(self) -> Iterator[tuple[str, object]]:
        # The base layer's weight and bias first, under the wrapper's own name.
        yield from self.base_layer._members()
        yield "lora_dropout", self.lora_dropout
        yield "lora_A", self.lora_A
        yield "lora_B", self.lora_B

    def forward(self, x: Tensor) -> Tensor:
        y = self.base_layer(x)                                         # (*, out)
        if self.merged:
            return y
        h = self.lora_A(self.lora_dropout(x))                          # (*, r)
        return y + self.lora_B(h) * self.scaling                       # (*, out)

    def delta_weight(self) -> np.ndarray:
        """B A * lora_alpha / r in the base weight's layout: (out, in), or (in, out) for Conv1D."""
        delta = (self.lora_B.weight.data @ self.lora_A.weight.data) * self.scaling  # (out, in)
        return delta.T if self.fan_in_fan_out else delta

    def merge(self) -> None:
        """Add the update into the base weight; the forward then skips the adapter, whose
        A and B are frozen meanwhile (they would get no gradient)."""
        if not self.merged:
            w = self.base_layer.weight
            w.data = (w.data + self.delta_weight()).astype(w.dtype, copy=False)
            self._trainable = self.lora_A.weight.requires_grad
            for p in (self.lora_A.weight, self.lora_B.weight):
                p.requires_grad_(False)
            self.merged = True

    def unmerge(self) -> None:
        """Take the update back out of the base weight (exact up to float round-off)."""
        if self.merged:
            w = self.base_layer.weight
            w.data = (w.data - self.delta_weight()).astype(w.dtype, copy=False)
            for p in (self.lora_A.weight, self.lora_B.weight):
                p.requires_grad_(self._trainable)
            self.merged = False

    def extra_repr(self) -> str:
        base = type(self.base_layer).__name__
        return (f"{base}(in_features={self.in_features}, out_features={self.out_features}), "
                f"r={self.r}, lora_alpha={self.lora_alpha}"
                + (", merged" if self.merged else ""))


def _alpha(value, where: str):
    """lora_alpha as given (an int stays an int, as peft writes it) when it is positive."""
    positive_number("lora_alpha", value, where=where)
    return value


# ------------------------------------------------------------------ finding layers
def target_matches(name: str, targets: Sequence[str] | str) -> bool:
    """Whether a module named `name` is a LoRA target, by peft's rule: the name equals a
    target or ends with "." + target; a str target is a regex the whole name must match."""
    if isinstance(targets, str):
        return re.fullmatch(targets, name) is not None
    return any(name == t or name.endswith("." + t) for t in targets)


def _as_targets(target_modules, what: str, where: str = "apply_lora"):
    """A str (regex) or a tuple of distinct non-empty names, or a ValueError."""
    if isinstance(target_modules, str):
        if not target_modules:
            raise ValueError(f"{where}: {what} must not be empty")
        return target_modules
    names = tuple(dict.fromkeys(target_modules))
    if not names or not all(isinstance(n, str) and n for n in names):
        raise ValueError(f"{where}: {what} must be a non-empty list of module names (or a "
                         f"regex string), got {target_modules!r}")
    return names


def _linear_names(model: Module) -> list[str]:
    """The distinct last components of the model's Linear/Conv1D names (for messages)."""
    return sorted({name.rsplit(".", 1)[-1] for name, m in model.named_modules()
                   if isinstance(m, LORA_LAYER_TYPES) and name})


def _find_targets(model: Module, targets) -> list[str]:
    """Names of the layers to wrap; an error for a target that matches nothing or matches a
    layer LoRA cannot wrap."""
    found = [(name, m) for name, m in model.named_modules()
             if name and target_matches(name, targets)]
    for name, m in found:
        if not isinstance(m, LORA_LAYER_TYPES):
            raise ValueError(f"apply_lora: target_modules {targets!r} match {name}, a "
                             f"{type(m).__name__}; LoRA wraps Linear and Conv1D layers only "
                             f"(here named: {', '.join(_linear_names(model))})")
    unmatched = ([targets] if not found else []) if isinstance(targets, str) else [
        t for t in targets if not any(target_matches(name, [t]) for name, _ in found)]
    if unmatched:
        example = next((n for n, m in model.named_modules() if isinstance(m, LORA_LAYER_TYPES)),
                       "none")
        raise ValueError(f"apply_lora: target_modules {unmatched} match no layer of "
                         f"{type(model).__name__}; its Linear/Conv1D layers are named "
                         f"{', '.join(_linear_names(model)) or '(none)'} (full names like "
                         f"{example!r})")
    return [name for name, _ in found]


def lora_layers(model: Module) -> list[tuple[str, LoRALinear]]:
    """(name, LoRALinear) for every adapted layer, in the model's order."""
    return [(name, m) for name, m in model.named_modules() if isinstance(m, LoRALinear)]


# ------------------------------------------------------------------ the model-level API
def apply_lora(model: Module, r: int, lora_alpha: float, target_modules: Sequence[str] | str,
               lora_dropout: float = 0.0, modules_to_save: Sequence[str] | None = None,
               seed: int | None = None) -> Module:
    """Wrap every target layer of `model` in a `LoRALinear` and freeze all else; returns it.

    - `target_modules`: e.g. ["c_attn", "c_proj", "c_fc"] (GPT-2) or ["query", "key",
      "value"] (BERT); each must match at least one Linear/Conv1D layer.
    - `modules_to_save`: modules trained in full beside the adapter and saved with it, as in
      peft (a new task head: ["classifier"] for BertForSequenceClassification).
    - `seed`: a private generator for A's initialisation (default: tinyllm's global one).

    Every other parameter gets requires_grad=False (and its gradient is dropped). The
    settings are kept as `model.lora_config` (a `LoraConfig`) for `save_adapter`.
    """
    r = positive_int("r", r, where="apply_lora")
    lora_alpha = _alpha(lora_alpha, "apply_lora")
    lora_dropout = probability("lora_dropout", lora_dropout, where="apply_lora")
    targets = _as_targets(target_modules, "target_modules")
    save = None if modules_to_save is None else _as_targets(modules_to_save, "modules_to_save")
    if lora_layers(model):
        raise ValueError(f"apply_lora: {type(model).__name__} has LoRA adapters already; "
                         "merge_lora(model) first to stack a new adapter on the merged weights")
    saved = _modules_to_save(model, save)
    # Without a seed each lora_A keeps nn.Linear's own draw from the global generator.
    rng = np.random.default_rng(seed) if seed is not None else None
    for name in _find_targets(model, targets):
        base = model.get_submodule(name)
        model.set_submodule(name, LoRALinear(base, r, lora_alpha, lora_dropout, generator=rng))
    model.requires_grad_(False)
    for p in model.parameters():
        p.grad = None
    for _, p in named_lora_parameters(model, saved):
        p.requires_grad_(True)
    model.lora_config = LoraConfig(r, lora_alpha, targets, lora_dropout, save)
    return model


def _modules_to_save(model: Module, names) -> list[str]:
    """Names of the modules trained in full; an error if a requested name matches nothing."""
    if names is None:
        return []
    found = [n for n, _ in model.named_modules() if n and target_matches(n, names)]
    missing = [t for t in names if not any(target_matches(n, [t]) for n in found)]
    if missing:
        raise ValueError(f"apply_lora: modules_to_save {missing} match no module of "
                         f"{type(model).__name__}")
    return found


def named_lora_parameters(model: Module, modules_to_save: Sequence[str] | None = None
                          ) -> Iterator[tuple[str, Tensor]]:
    """(name, Parameter) of everything an adapter holds: each LoRA layer's lora_A.weight and
    lora_B.weight, then the parameters of `modules_to_save` (module names; by default those
    of `model.lora_config`), each under the model's own names."""
    if modules_to_save is None:
        config = getattr(model, "lora_config", None)
        names = config.modules_to_save if config is not None else None
        modules_to_save = _modules_to_save(model, names)
    for name, layer in lora_layers(model):
        yield f"{name}.lora_A.weight", layer.lora_A.weight
        yield f"{name}.lora_B.weight", layer.lora_B.weight
    for name in modules_to_save:
        yield from model.get_submodule(name).named_parameters(prefix=name)


def lora_state_dict(model: Module) -> OrderedDict[str, np.ndarray]:
    """name -> array of the adapter's parameters (LoRA A and B, modules_to_save), tinyllm's
    names; the arrays are the parameters' own (copy them to keep a snapshot)."""
    return OrderedDict((name, p.data) for name, p in named_lora_parameters(model))


def get_nb_trainable_parameters(model: Module) -> tuple[int, int]:
    """(trainable, total) scalar parameter counts, a tied weight counted once (peft's name)."""
    params = list(model.parameters())
    trainable = sum(p.data.size for p in params if p.requires_grad)
    return trainable, sum(p.data.size for p in params)


def merge_lora(model: Module, unload: bool = True) -> Module:
    """Fold each adapter into its base weight, W + B A * lora_alpha / r; returns `model`.

    unload=True (peft's merge_and_unload): the plain Linear/Conv1D layers are put back and
    `model.lora_config` is removed. unload=False (peft's merge_adapter): the wrappers stay,
    merged, so `unmerge_lora` can take the update out again. Either way the logits are those
    of the adapted model, up to float round-off. Base parameters stay frozen: call
    `model.requires_grad_(True)` to train all of them afterwards.
    """
    counts: dict[int, list[str]] = {}
    for name, p in model.named_parameters(remove_duplicate=False):
        counts.setdefault(id(p), []).append(name)
    for name, layer in lora_layers(model):
        names = counts[id(layer.base_layer.weight)]
        if len(names) > 1:
            raise ValueError(f"merge_lora: {name}.weight is one tied parameter with "
                             f"{', '.join(n for n in names if n != name + '.weight')}; merging "
                             "would change both; keep this adapter unmerged")
    for _, layer in lora_layers(model):
        layer.merge()
    return unload_lora(model) if unload else model


def unload_lora(model: Module) -> Module:
    """Put the plain base layers back without merging: the adapters are dropped (peft's
    unload). A layer merged before (`merge_lora(unload=False)`) keeps its merged weight."""
    for name, layer in lora_layers(model):
        model.set_submodule(name, layer.base_layer)
    if hasattr(model, "lora_config"):
        del model.lora_config
    return model


def unmerge_lora(model: Module) -> Module:
    """Undo `merge_lora(model, unload=False)`: the adapters act separately again."""
    for _, layer in lora_layers(model):
        layer.unmerge()
    return model
