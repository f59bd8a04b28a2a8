"""Where quantization hurts: per-layer outliers and errors, and the loss per scheme.

`layer_report(model, ids)` runs the float model once on a batch, records every quantizable
layer's input, and for each layer reports

    weight_outlier      max|W| / rms(W): how far the largest weight sits above a typical one.
                        An absmax scale spends its 127 (or 8) steps up to max|W|, so a
                        typical weight gets rms / (max / 127) of them: 127 / weight_outlier.
    input_outlier       max|x| / rms(x) over the batch: the same for the activations (what
                        dynamic int8 activations would have to cover)
    <scheme> w_err      ||W - W_q||_F / ||W||_F, the weight's relative error
    <scheme> out_err    ||x W^T - x W_q^T||_F / ||x W^T||_F on the recorded inputs

`loss_by_scheme(model, batches, schemes)` quantizes a copy of the model per scheme and
returns each one's mean loss on the batches (and the float model's), the figure that decides
whether a scheme is usable; `loss_by_sparsity` does the same for magnitude pruning (the
sparsity-vs-loss curve). `report(model, batches)` prints all three as tables
(`tinyllm compress RUN --report`).
"""

from __future__ import annotations

import copy
from contextlib import contextmanager

import numpy as np

from ..autograd import no_grad
from ..nn.prune import prune_model
from ..nn.quantized import QuantScheme, dequantize_weight, quantizable_layers, quantize_model
from ..nn.quantized import quantize_weight as _quantize

DEFAULT_SCHEMES = ("int8-tensor", "int8-channel", "int4-g32", "int4-g64", "int4-g128")


def _weight_out_in(layer) -> np.ndarray:
    """A Linear's (out, in) weight, or a Conv1D's transposed to (out, in), as float64."""
    w = layer.weight.data
    return np.asarray(w.T if type(layer).__name__ == "Conv1D" else w, dtype=np.float64)


def _rms(a: np.ndarray) -> float:
    return float(np.sqrt(np.mean(np.square(a, dtype=np.float64))))


def _relative(diff: np.ndarray, ref: np.ndarray) -> float:
    norm = np.linalg.norm(ref)
    return float(np.linalg.norm(diff) / norm) if norm else 0.0


@contextmanager
def intercepting_inputs(model, names, on_input):
    """Within the block, `on_input(name, x)` sees the input Tensor of each named submodule
    on every forward (its forward is wrapped by an instance attribute, removed after)."""
    for name in names:
        layer = model.get_submodule(name)

        def wrapped(x, _forward=layer.forward, _name=name):
            on_input(_name, x)
            return _forward(x)
        layer.forward = wrapped
    try:
        yield
    finally:
        for name in names:
            del model.get_submodule(name).forward


@no_grad()
def record_inputs(model, ids, layers) -> dict[str, np.ndarray]:
    """Each named layer's input (N, in) during one forward of `model(ids)`."""
    seen: dict[str, list[np.ndarray]] = {name: [] for name in layers}
    with intercepting_inputs(model, layers, lambda name, x: seen[name].append(
            x.data.reshape(-1, x.shape[-1]).copy())):
        model(ids)
    return {name: np.concatenate(parts) for name, parts in seen.items() if parts}


def layer_report(model, ids, schemes=DEFAULT_SCHEMES) -> list[dict]:
    """One row per quantizable layer (see the module doc); schemes whose group size does
    not divide a layer's input width get None for that layer."""
    schemes = [QuantScheme.parse(s) for s in schemes]
    names = quantizable_layers(model)
    inputs = record_inputs(model, ids, names)
    rows = []
    for name in names:
        w = _weight_out_in(model.get_submodule(name))                   # (out, in)
        x = inputs[name].astype(np.float64)                              # (N, in)
        row = {"layer": name, "shape": w.shape,
               "weight_outlier": float(np.abs(w).max() / _rms(w)),
               "input_outlier": float(np.abs(x).max() / _rms(x))}
        y = x @ w.T
        for scheme in schemes:
            g = scheme.group_size
            if g is not None and w.shape[1] % g:
                row[f"{scheme.name} w_err"] = row[f"{scheme.name} out_err"] = None
                continue
            wq = dequantize_weight(*_quantize(w, scheme), scheme, np.float64)
            row[f"{scheme.name} w_err"] = _relative(wq - w, w)
            row[f"{scheme.name} out_err"] = _relative(x @ (wq - w).T, y)
        rows.append(row)
    return rows


@no_grad()
def mean_loss(model, batches) -> float:
    """Mean of `model(x, y).loss` over (x, y) batches, weighted by their scored targets."""
    total = count = 0.0
    for x, y in batches:
        n = int(np.count_nonzero(np.asarray(y) != -100))
        total += model(x, y).loss.item() * n
        count += n
    if not count:
        raise ValueError("mean_loss: the batches hold no scored target")
    return total / count


def loss_by_scheme(model, batches, schemes=DEFAULT_SCHEMES) -> dict[str, float | None]:
    """{"float32" (or the model's dtype): loss, scheme: loss of a quantized copy, ...}; a
    scheme that cannot quantize every layer (a group size that does not divide a width) is
    None. `batches` is a list of (x, y) pairs (it is read once per scheme)."""
    batches = list(batches)
    model.eval()
    result: dict[str, float | None] = {str(model.dtype): mean_loss(model, batches)}
    for name in schemes:
        quantized = copy.deepcopy(model)
        try:
            quantize_model(quantized, name)
        except ValueError:
            result[name] = None
            continue
        result[name] = mean_loss(quantized, batches)
    return result


DEFAULT_SPARSITIES = (0.0, 0.25, 0.5, 0.75, 0.9)


def loss_by_sparsity(model, batches, sparsities=DEFAULT_SPARSITIES,
                     scope: str = "global") -> dict[float, float]:
    """{sparsity: mean loss of a copy magnitude-pruned to it} (one-shot, no recovery)."""
    batches = list(batches)
    model.eval()
    result = {}
    for sparsity in sparsities:
        pruned = copy.deepcopy(model)
        prune_model(pruned, sparsity, scope)
        result[sparsity] = mean_loss(pruned, batches)
    return result


def report(model, batches, out=print) -> None:
    """The per-layer table (first batch), the loss per scheme and per sparsity."""
    batches = list(batches)
    rows = layer_report(model, batches[0][0])
    schemes = [s for s in DEFAULT_SCHEMES]
    out(f"{'layer':32s} {'shape':>11s} {'w max/rms':>9s} {'x max/rms':>9s} "
        + " ".join(f"{s:>13s}" for s in schemes))
    for r in rows:
        cells = " ".join(f"{'n/a':>13s}" if r[f"{s} out_err"] is None
                         else f"{100 * r[f'{s} out_err']:12.2f}%" for s in schemes)
        shape = "x".join(map(str, r["shape"]))
        out(f"{r['layer']:32s} {shape:>11s} {r['weight_outlier']:9.1f} "
            f"{r['input_outlier']:9.1f} {cells}")
    out("(per scheme: the layer output's relative error on the recorded inputs)")
    losses = loss_by_scheme(model, batches, schemes)
    base = next(iter(losses.values()))
    out("loss: " + " | ".join(
        f"{k} {v:.4f}" + ("" if k == next(iter(losses)) else f" ({100 * (v - base) / base:+.2f}%)")
        if v is not None else f"{k} n/a" for k, v in losses.items()))
    pruned = loss_by_sparsity(model, batches)
    out("magnitude pruning (global, one-shot): " + " | ".join(
        f"{s:.0%} {v:.4f}" for s, v in pruned.items()))
