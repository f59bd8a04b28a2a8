"""Split a model's parameters into a weight-decay group and a no-decay group, as GPT-2 recipes do.

Weight decay pulls weights toward 0. That is a sensible prior for the matrices of matmuls,
but not for biases (shifts), LayerNorm gains (which should stay near 1) or embedding rows
(most are rarely updated, and decay would shrink every rare token toward nothing), so
training recipes exempt them. The rule here, for a parameter named e.g.
`transformer.h.0.ln_1.weight`:

- no decay if `p.ndim < 2` (every bias and norm parameter), or if any dot-separated part of
  its name is `wte`, `wpe` or `shared` (an encoder-decoder's one embedding), contains `embed`
  (`embeddings`, `word_embeddings`, `embed_tokens`, ...), starts with `ln` (`ln_1`, `ln_f`),
  contains `norm` (`LayerNorm`, `layer_norm`, `norm1`) or `bias` (Marian's 2-D
  `final_logits_bias`), ignoring case;
- decay otherwise: the 2-D+ weights of linear layers and attention projections.

A tensor shared under two names (GPT-2's `lm_head.weight` is `transformer.wte.weight`) is
listed once, and is exempt if any of its names is. Parameters with `requires_grad=False`
are left out. The groups carry `"param_names"` so you can see where everything went:

>>> import tinyllm
>>> named = [("h.0.attn.c_attn.weight", tinyllm.zeros(4, 12, requires_grad=True)),
...          ("h.0.attn.c_attn.bias", tinyllm.zeros(12, requires_grad=True)),
...          ("h.0.ln_1.weight", tinyllm.ones(4, requires_grad=True)),
...          ("wte.weight", tinyllm.zeros(10, 4, requires_grad=True))]
>>> decay, no_decay = param_groups_for_weight_decay(named, weight_decay=0.1)
>>> decay["param_names"], decay["weight_decay"]
(['h.0.attn.c_attn.weight'], 0.1)
>>> no_decay["param_names"], no_decay["weight_decay"]
(['h.0.attn.c_attn.bias', 'h.0.ln_1.weight', 'wte.weight'], 0.0)

Pass the two groups straight to an optimizer: `AdamW(groups, lr=6e-4)`. (nanoGPT decays
its embedding matrix too, since it only tests `dim() >= 2`; minGPT and Hugging Face's
recipes exempt embeddings and LayerNorm as here.)
"""

from __future__ import annotations

from typing import Any

NO_DECAY_EXACT = ("wte", "wpe", "shared")
NO_DECAY_CONTAINS = ("embed", "norm", "bias")
NO_DECAY_PREFIX = ("ln",)


def is_no_decay(name: str, param) -> bool:
    """True if `param`, called `name`, belongs in the no-decay group (rule in the module doc)."""
    if param.data.ndim < 2:
        return True
    for part in name.lower().split("."):
        if (part in NO_DECAY_EXACT or part.startswith(NO_DECAY_PREFIX)
                or any(word in part for word in NO_DECAY_CONTAINS)):
            return True
    return False


def param_groups_for_weight_decay(named_parameters, weight_decay: float) -> list[dict[str, Any]]:
    """`[decay_group, no_decay_group]` for an optimizer, from `(name, param)` pairs or a model.

    `named_parameters` is an iterable of `(name, tensor)` pairs, or any object with a
    `named_parameters()` method (a `tinyllm.nn.Module`). Both groups are always returned (one
    may be empty), decay first, each keeping the parameters' order.
    """
    if hasattr(named_parameters, "named_parameters"):
        named_parameters = named_parameters.named_parameters()
    if not weight_decay >= 0:
        raise ValueError(f"param_groups_for_weight_decay: invalid weight_decay={weight_decay}; "
                         "expected weight_decay >= 0")
    order: list[int] = []  # ids of trainable parameters, first appearance first
    params: dict[int, Any] = {}
    names: dict[int, str] = {}
    exempt: dict[int, bool] = {}
    for item in named_parameters:
        if not (isinstance(item, tuple) and len(item) == 2 and isinstance(item[0], str)):
            raise TypeError("param_groups_for_weight_decay: expected (name, parameter) pairs, "
                            f"as model.named_parameters() yields; got {type(item).__name__}")
        name, p = item
        if not getattr(p, "requires_grad", True):
            continue
        key = id(p)
        if key not in params:
            order.append(key)
            params[key], names[key], exempt[key] = p, name, False
        exempt[key] = exempt[key] or is_no_decay(name, p)

    decay = {"params": [], "param_names": [], "weight_decay": float(weight_decay)}
    no_decay = {"params": [], "param_names": [], "weight_decay": 0.0}
    for key in order:
        group = no_decay if exempt[key] else decay
        group["params"].append(params[key])
        group["param_names"].append(names[key])
    return [decay, no_decay]


def scale_group_lrs(groups: list[dict[str, Any]], multipliers: dict[str, float],
                    lr: float) -> list[dict[str, Any]]:
    """`groups` (with "param_names", as `param_groups_for_weight_decay` gives them) split so
    that each holds parameters of one learning-rate factor, with "lr" = lr * factor and the
    factor kept as "lr_multiplier" (a name missing from `multipliers` has factor 1).

    With no multipliers the groups come back unchanged (no "lr" key: the optimizer's default).
    muP trains its hidden weights at lr / m this way (`PretrainedModel.lr_multipliers`):

    >>> import tinyllm
    >>> named = [("h.0.attn.c_attn.weight", tinyllm.zeros(4, 12, requires_grad=True)),
    ...          ("wte.weight", tinyllm.zeros(10, 4, requires_grad=True))]
    >>> groups = param_groups_for_weight_decay(named, weight_decay=0.1)
    >>> [(g["param_names"], g["lr"]) for g in scale_group_lrs(
    ...     groups, {"h.0.attn.c_attn.weight": 0.25}, lr=0.01)]
    [(['h.0.attn.c_attn.weight'], 0.0025), (['wte.weight'], 0.01)]
    """
    if not multipliers:
        return groups
    for name, factor in multipliers.items():
        if not factor > 0:
            raise ValueError(f"scale_group_lrs: the learning-rate factor of {name} is "
                             f"{factor}; expected a positive number")
    out = []
    for group in groups:
        by_factor: dict[float, dict[str, Any]] = {}
        for name, p in zip(group["param_names"], group["params"]):
            factor = float(multipliers.get(name, 1.0))
            sub = by_factor.setdefault(factor, {
                **{k: v for k, v in group.items() if k not in ("params", "param_names")},
                "params": [], "param_names": [], "lr": lr * factor, "lr_multiplier": factor})
            sub["params"].append(p)
            sub["param_names"].append(name)
        out += sorted(by_factor.values(), key=lambda g: g["lr_multiplier"])
    return out
