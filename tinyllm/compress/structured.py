"""Structured pruning of a GPT's feed-forward neurons: smaller matrices, hence less time.

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

Attention heads are not pruned here: GPT-2's layout ties the head size to n_embd / n_head, so
a layer with fewer heads has no GPT-2 config (the issue's head pruning remains to be built).
"""

from __future__ import annotations

import numpy as np

from ..autograd import Tensor, default_dtype
from .analysis import intercepting_inputs


def _mlps(model) -> list:
    blocks = getattr(getattr(model, "transformer", None), "h", None)
    if blocks is None or not all(hasattr(b, "mlp") for b in blocks):
        raise ValueError(f"structured FFN pruning is for GPT models; got a "
                         f"{type(model).__name__}")
    return [b.mlp for b in blocks]


def ffn_importance(model, batches) -> list[np.ndarray]:
    """Per layer, the Taylor importance (I,) of each MLP neuron on (x, y) `batches`."""
    mlps = _mlps(model)
    scores = [np.zeros(m.c_fc.out_features) for m in mlps]
    names = [f"transformer.h.{i}.mlp.c_proj" for i in range(len(mlps))]
    seen: dict[str, Tensor] = {}

    def keep(name, h):                       # the neurons' activations, with their gradient
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
                    scores[i] += np.abs((a * h.grad.reshape(a.shape)).sum(axis=0))
    finally:
        model.zero_grad()
        model.train(training)
    return scores


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
