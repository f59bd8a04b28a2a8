"""Structured pruning of a GPT's feed-forward neurons and attention heads: smaller matrices,
hence less time.

Unstructured pruning (`tinyllm.nn.prune`) zeroes single weights and leaves every matrix its
shape. Removing whole hidden neurons of the MLP -- column j of `mlp.c_fc` (and its bias) and
row j of `mlp.c_proj` -- shrinks the matrices themselves: the same number in every layer keeps
the model a plain GPT-2 with a smaller `n_inner` (which Hugging Face's GPT2 reads too), and
its steps get faster in proportion.

Which neurons: the least important by the first-order (Taylor) estimate of what removing one
would change the loss by (Molchanov et al. 2017; Michel et al. 2019 score attention heads the
same way): with a_j the neuron's activation at every position and g_j = dL/da_j,

    I_j = sum over batches of | sum over the batch's positions of a_j g_j |

since zeroing a_j changes the loss by about -sum a_j g_j. The estimate needs gradients, so
the model runs forward and backward on a few training batches (its weights are not changed).

Attention heads (Michel et al. 2019, "Are Sixteen Heads Really Better than One?"): a head's
output enters `attn.c_proj` as its own slice of channels, so with o_h that slice and
g_h = dL/do_h the same estimate scores the whole head, I_h = sum over batches of
|sum o_h g_h|; Michel et al. normalise the scores by their l2 norm within each layer, then
rank the heads of all layers together and remove the lowest. Removing head h deletes its q,
k and v columns of `attn.c_attn` and its rows of `attn.c_proj`; the layer keeps its other
heads at the same size (`GPTConfig.pruned_heads` records which went, so the smaller model
saves and loads). The pruned model computes exactly what the dense one does with those
heads' outputs set to zero.
"""

from __future__ import annotations

import numpy as np

from ..autograd import Tensor, default_dtype
from ..nn.layers import Conv1D
from .analysis import intercepting_inputs


def _blocks(model) -> list:
    blocks = getattr(getattr(model, "transformer", None), "h", None)
    if blocks is None or not all(hasattr(b, "mlp") and hasattr(b, "attn") for b in blocks):
        raise ValueError(f"structured pruning is for GPT models; got a "
                         f"{type(model).__name__}")
    for i, b in enumerate(blocks):
        for name in ("attn.c_attn", "attn.c_proj", "mlp.c_fc", "mlp.c_proj"):
            layer = b.get_submodule(name)
            if type(layer) is not Conv1D:
                raise ValueError(f"structured pruning needs the float model: "
                                 f"transformer.h.{i}.{name} is a {type(layer).__name__} "
                                 "(prune first, then quantize or add adapters)")
    return list(blocks)


def _mlps(model) -> list:
    return [b.mlp for b in _blocks(model)]


def ffn_importance(model, batches) -> list[np.ndarray]:
    """Per layer, the Taylor importance (I,) of each MLP neuron on (x, y) `batches`."""
    mlps = _mlps(model)
    names = [f"transformer.h.{i}.mlp.c_proj" for i in range(len(mlps))]
    return _input_taylor_scores(model, names, batches, [m.c_fc.out_features for m in mlps], 1)


def _input_taylor_scores(model, names: list[str], batches, widths: list[int],
                         group: int) -> list[np.ndarray]:
    """For each named layer, sum over `batches` of |sum over positions of a g| for its input
    a (..., width) in groups of `group` channels (a neuron: 1; a head: its size)."""
    scores = [np.zeros(w // group) for w in widths]
    seen: dict[str, Tensor] = {}

    def keep(name, h):                       # the layer's input, with its gradient
        h.retain_grad()
        seen[name] = h
    training = model.training
    model.eval()
    try:
        with intercepting_inputs(model, names, keep):
            for x, y in batches:
                model.zero_grad()
                model(x, y).loss.backward()
                for i, name in enumerate(names):
                    h = seen[name]
                    a = h.data.reshape(-1, h.shape[-1]).astype(np.float64)
                    per_channel = (a * h.grad.reshape(a.shape)).sum(axis=0)     # (width,)
                    scores[i] += np.abs(per_channel.reshape(-1, group).sum(axis=1))
    finally:
        model.zero_grad()
        model.train(training)
    return scores


def head_importance(model, batches) -> list[np.ndarray]:
    """Per layer, the Taylor importance (heads,) of each attention head on (x, y) `batches`,
    normalised to unit l2 norm within the layer (Michel et al. 2019)."""
    blocks = _blocks(model)
    names = [f"transformer.h.{i}.attn.c_proj" for i in range(len(blocks))]
    widths = [b.attn.c_proj.in_features for b in blocks]
    scores = _input_taylor_scores(model, names, batches, widths, blocks[0].attn.head_dim)
    return [s / n if (n := np.linalg.norm(s)) > 0 else s for s in scores]


def prune_heads(model, fraction: float, importance: list[np.ndarray]):
    """A new GPT of the same kind without the round(fraction x all heads) least important
    heads, ranked across layers (every layer keeps at least its best head), and the heads
    removed per layer in the original numbering (what `config.pruned_heads` now holds)."""
    blocks = _blocks(model)
    total = sum(len(s) for s in importance)
    n_remove = int(round(fraction * total))
    if n_remove > total - len(blocks):
        raise ValueError(f"fraction={fraction} would remove {n_remove} of {total} heads; every "
                         f"one of the {len(blocks)} layers keeps at least one")
    # The best head of each layer is never a candidate; of the rest, the lowest scores go.
    best = {(i, int(np.argmax(s))) for i, s in enumerate(importance)}
    candidates = sorted(((s[h], i, h) for i, s in enumerate(importance)
                         for h in range(len(s)) if (i, h) not in best))
    drop = {(i, h) for _, i, h in candidates[:n_remove]}
    cfg = model.config
    hs = cfg.head_dim
    state = dict(model.state_dict())
    pruned = {i: list(v) for i, v in (cfg.pruned_heads or {}).items()}
    for i, block in enumerate(blocks):
        present = [h for h in range(cfg.n_head) if h not in pruned.get(i, [])]  # original ids
        kept = [h for h in range(block.attn.num_heads) if (i, h) not in drop]     # current ids
        pruned[i] = sorted(set(pruned.get(i, [])) | {present[h] for h in
                                                    range(block.attn.num_heads) if h not in kept})
        width = block.attn.num_heads * hs
        cols = np.concatenate([np.arange(h * hs, (h + 1) * hs) for h in kept])     # (A',)
        qkv_cols = np.concatenate([cols, cols + width, cols + 2 * width])          # (3A',)
        prefix = f"transformer.h.{i}.attn."
        state[prefix + "c_attn.weight"] = state[prefix + "c_attn.weight"][:, qkv_cols]
        state[prefix + "c_attn.bias"] = state[prefix + "c_attn.bias"][qkv_cols]
        state[prefix + "c_proj.weight"] = state[prefix + "c_proj.weight"][cols, :]
    with default_dtype(model.dtype):
        new = type(model)(cfg.replace(pruned_heads=pruned))
    new.load_state_dict(state)
    return new.train(model.training), new.config.pruned_heads or {}


def prune_ffn(model, sparsity: float, importance: list[np.ndarray]):
    """A new GPT of the same kind with round(sparsity x I) of every layer's MLP neurons
    removed (the least important; the same number per layer), and the kept indices."""
    mlps = _mlps(model)
    width = mlps[0].c_fc.out_features
    keep_n = width - int(round(sparsity * width))
    if keep_n < 1:
        raise ValueError(f"sparsity={sparsity} would remove all {width} neurons of each MLP")
    kept = [np.sort(np.argsort(-score, kind="stable")[:keep_n]) for score in importance]
    state = dict(model.state_dict())
    for i, keep in enumerate(kept):
        prefix = f"transformer.h.{i}.mlp."
        state[prefix + "c_fc.weight"] = state[prefix + "c_fc.weight"][:, keep]   # (C, I')
        state[prefix + "c_fc.bias"] = state[prefix + "c_fc.bias"][keep]
        state[prefix + "c_proj.weight"] = state[prefix + "c_proj.weight"][keep, :]  # (I', C)
    with default_dtype(model.dtype):
        pruned = type(model)(model.config.replace(n_inner=keep_n))
    pruned.load_state_dict(state)
    return pruned.train(model.training), kept
