"""Unstructured magnitude pruning: zero the smallest weights, at once or on a schedule.

Which weights: those of the Linear/Conv1D layers (`quantizable_layers`: the projections and
MLPs; embeddings, norms and biases stay), the usual choice since they hold most of the
parameters. Which ones go: the smallest in magnitude,

    scope "global"  one threshold over all those layers: layers with many small weights lose
                    more (a layer's share is decided by the model)
    scope "layer"   every layer loses the same fraction

One-shot: `prune_model(model, 0.5)`. Gradual (Zhu & Gupta 2017, "To prune, or not to
prune"): the sparsity rises from s_i to s_f between steps t0 and t0 + n dt as

    s_t = s_f + (s_i - s_f) (1 - (t - t0) / (n dt))^3

pruning fast while many weights are redundant and slowly near the end; between prunings the
pruned weights are held at zero (`apply_masks` after each optimizer step), so training
recovers around them (`GradualPruner`, which `tinyllm train --prune-to` uses). The dense
matrices keep their shape: unstructured sparsity saves bytes only in a sparse format, and
time only with sparse kernels -- this module measures what it costs in loss. (PyTorch's
counterpart is torch.nn.utils.prune.)
"""

from __future__ import annotations

import numpy as np

from .._checks import choice
from .quantized import quantizable_layers

SCOPES = ("global", "layer")


def check_sparsity(sparsity: float, what: str = "sparsity") -> float:
    """`sparsity` if it is in [0, 1), else a ValueError naming the value."""
    if not isinstance(sparsity, int | float) or not 0 <= sparsity < 1:
        raise ValueError(f"{what}={sparsity!r} is out of range; accepted: 0 <= {what} < 1 "
                         "(the fraction of the weights set to zero)")
    return float(sparsity)


def prunable_weights(model) -> dict[str, object]:
    """name -> the weight Parameter of each Linear/Conv1D layer that pruning considers."""
    return {f"{name}.weight": model.get_submodule(name).weight
            for name in quantizable_layers(model)}


def magnitude_masks(model, sparsity: float, scope: str = "global") -> dict[str, np.ndarray]:
    """name -> boolean mask (True = kept) removing the `sparsity` smallest-magnitude weights,
    over all prunable weights at once ("global") or within each ("layer"). Ties at the
    threshold are broken by position, so exactly round(sparsity x count) weights go."""
    sparsity = check_sparsity(sparsity)
    choice("scope", scope, SCOPES, where="magnitude_masks")
    weights = {name: np.abs(p.data) for name, p in prunable_weights(model).items()}
    if scope == "layer":
        return {name: _keep_largest(w, sparsity) for name, w in weights.items()}
    flat = np.concatenate([w.reshape(-1) for w in weights.values()])
    keep = _keep_largest(flat, sparsity)
    masks, start = {}, 0
    for name, w in weights.items():
        masks[name] = keep[start:start + w.size].reshape(w.shape)
        start += w.size
    return masks


def _keep_largest(magnitudes: np.ndarray, sparsity: float) -> np.ndarray:
    """True for all but the round(sparsity x n) smallest entries."""
    n_drop = int(round(sparsity * magnitudes.size))
    keep = np.ones(magnitudes.size, dtype=bool)
    if n_drop:
        order = np.argsort(magnitudes.reshape(-1), kind="stable")
        keep[order[:n_drop]] = False
    return keep.reshape(magnitudes.shape)


def apply_masks(model, masks: dict[str, np.ndarray]) -> None:
    """Zero the pruned weights (mask False), in place."""
    params = prunable_weights(model)
    for name, mask in masks.items():
        params[name].data[~mask] = 0


def masks_from_zeros(model) -> dict[str, np.ndarray]:
    """The masks a pruned model implies: its weights that are exactly zero are pruned."""
    return {name: p.data != 0 for name, p in prunable_weights(model).items()}


def prune_model(model, sparsity: float, scope: str = "global") -> dict[str, np.ndarray]:
    """One-shot magnitude pruning, in place; returns the masks."""
    masks = magnitude_masks(model, sparsity, scope)
    apply_masks(model, masks)
    return masks


def sparsity_of(model) -> float:
    """The fraction of the prunable weights that are zero."""
    params = prunable_weights(model).values()
    total = sum(p.data.size for p in params)
    return sum(int(np.count_nonzero(p.data == 0)) for p in params) / total if total else 0.0


def cubic_sparsity(step: int, final: float, start: int, end: int, initial: float = 0.0) -> float:
    """Zhu & Gupta's schedule: `initial` until `start`, then s_f + (s_i - s_f)(1 - frac)^3
    with frac = (step - start) / (end - start), then `final` from `end` on."""
    check_sparsity(final, "final sparsity")
    check_sparsity(initial, "initial sparsity")
    if not 0 <= start < end:
        raise ValueError(f"pruning steps: start={start}, end={end}; accepted: 0 <= start < end")
    if step <= start:
        return initial
    if step >= end:
        return final
    frac = (step - start) / (end - start)
    return final + (initial - final) * (1 - frac) ** 3


class GradualPruner:
    """Zhu & Gupta's gradual pruning during training: every `every` steps from `start` to
    `end` the masks are recomputed at `cubic_sparsity(step)`; after every optimizer step the
    pruned weights are set back to zero. Resuming needs no saved state: the masks are the
    weights that are zero (`masks_from_zeros`)."""

    def __init__(self, model, final: float, start: int, end: int, every: int = 1,
                 scope: str = "global"):
        cubic_sparsity(start, final, start, end)               # checks the arguments
        choice("scope", scope, SCOPES, where="GradualPruner")
        if every < 1:
            raise ValueError(f"prune every {every} steps; accepted: >= 1")
        self.model, self.final, self.start, self.end = model, final, start, end
        self.every, self.scope = every, scope
        self.masks = masks_from_zeros(model)

    def after_step(self, step: int) -> None:
        """Call after optimizer step `step` (counted from 1)."""
        if self.start < step <= self.end and ((step - self.start) % self.every == 0
                                              or step == self.end):
            self.masks = magnitude_masks(self.model, cubic_sparsity(
                step, self.final, self.start, self.end), self.scope)
        apply_masks(self.model, self.masks)
