"""Exercises where the student writes a forward and its backward: LayerNorm, an attention head.

The forward returns ``(out, cache)``; the backward takes ``(dout, cache)`` and returns one
gradient per input. Grading, per case:

1. the forward's output against tinyllm's (``F.layer_norm``,
   ``F.scaled_dot_product_attention``);
2. when the forward is right, the backward against central differences of the student's own
   forward (float64, the classic gradient check); otherwise against tinyllm's gradient, so a
   wrong forward does not hide a right backward.

Shapes: B batch, T positions, hs head size, D normalised features.
"""

from __future__ import annotations

from collections.abc import Callable
from functools import partial

import numpy as np

from ..autograd.ops.attention import scaled_dot_product_attention
from ..autograd.ops.nn import layer_norm
from ._grading import (
    FD_ATOL,
    FD_RTOL,
    Case,
    CaseFailed,
    Exercise,
    Problem,
    as_float_array,
    call,
    compare,
    expect_tuple,
    library_vjp,
    numeric_vjp,
    problems_in,
)


def _grade_pair(forward, backward, inputs: dict[str, np.ndarray], extra: tuple,
                op: Callable, out_name: str, dout: np.ndarray,
                shape_hints: dict[str, str]) -> list[Problem]:
    """Grade ``forward(*inputs, *extra) -> (out, cache)`` and ``backward(dout, cache)``."""
    arrays = list(inputs.values())
    out_ref, grads_ref = library_vjp(op, arrays, dout)
    fwd_name, bwd_name = _name(forward), _name(backward)
    out, cache = expect_tuple(call(forward, *[a.copy() for a in arrays], *extra),
                              (out_name, "cache"), fwd_name)
    forward_problem = compare(out_name, out, out_ref, shape_hint=shape_hints.get(out_name, ""))
    grad_names = tuple(f"d{n}" for n in inputs)
    grads = expect_tuple(call(backward, dout.copy(), cache), grad_names, bwd_name)
    if forward_problem is None:
        refs = numeric_vjp(lambda *xs: _output(forward, xs, extra, fwd_name), arrays, dout)
        tol = dict(rtol=FD_RTOL, atol=FD_ATOL, against="central differences of your forward")
    else:
        refs, tol = grads_ref, dict(against="tinyllm's gradient")
    found = [forward_problem]
    for name, got, ref, input_name in zip(grad_names, grads, refs, inputs):
        found.append(compare(name, got, ref, shape_of=input_name,
                             shape_hint=shape_hints.get(name, ""), **tol))
    return problems_in(*found)


def _output(forward, xs, extra, fwd_name) -> np.ndarray:
    """The output of the student's forward at ``xs``, for central differences."""
    # Copies: a forward that works in place must not move the points being differenced.
    out = expect_tuple(call(forward, *[x.copy() for x in xs], *extra), ("out", "cache"),
                       fwd_name)[0]
    array = as_float_array(out)
    if array is None:
        raise CaseFailed(Problem(f"{fwd_name} returned an output that is not an array of "
                                 "numbers"))
    return array


def _name(fn) -> str:
    return getattr(fn, "__name__", "your function")


# ---------------------------------------------------------------- layer_norm
_LN_CASES = (
    ("rows of 8 features", (4, 8), 1.0, 1e-5),
    ("a batch of sequences", (2, 3, 5), 1.0, 1e-5),
    ("a lone vector", (6,), 1.0, 1e-5),
    ("one feature (D = 1)", (3, 1), 1.0, 1e-5),
    ("small variance, eps = 1e-2", (4, 6), 0.05, 1e-2),
)

_LN_HINTS = {
    "dweight": "dweight and dbias have weight's shape (D,): sum over every axis but the last.",
    "dbias": "dweight and dbias have weight's shape (D,): sum over every axis but the last.",
}


def _layer_norm_cases(forward, backward) -> list[Case]:
    rng = np.random.default_rng(4)
    cases = []
    for label, shape, scale, eps in _LN_CASES:
        d = shape[-1]
        inputs = {"x": 0.5 + scale * rng.standard_normal(shape),
                  "weight": 1.0 + 0.5 * rng.standard_normal(d),
                  "bias": 0.5 * rng.standard_normal(d)}
        dout = rng.standard_normal(shape)
        op = partial(_ln_op, d=d, eps=eps)
        cases.append(Case(f"{label} (x {shape}, eps={eps:g})",
                          partial(_grade_pair, forward, backward, inputs, (eps,), op, "y",
                                  dout, _LN_HINTS)))
    return cases


def _ln_op(x, weight, bias, *, d: int, eps: float):
    return layer_norm(x, (d,), weight, bias, eps)


LAYER_NORM = Exercise(
    name="layer_norm",
    summary="LayerNorm over the last axis, forward and backward",
    signature=("layer_norm_forward(x, weight, bias, eps=1e-5) -> (y, cache); "
               "layer_norm_backward(dout, cache) -> (dx, dweight, dbias)"),
    hint=("Normalise with the biased variance (divide by D) and eps inside the square root. "
          "In the backward, the mean and the variance depend on every x of the row, so dx "
          "has three terms: the direct path through xhat, one through the mean and one "
          "through the variance."),
    functions=("layer_norm_forward", "layer_norm_backward"),
    cases=_layer_norm_cases,
)


# ---------------------------------------------------------------- attention_head
_ATTN_CASES = (
    ("one sequence", (5, 4), False),
    ("a batch", (2, 4, 3), False),
    ("one position (T = 1)", (1, 4), False),
    ("large scores (about 1500)", (4, 4), True),
)


def _attention_cases(forward, backward) -> list[Case]:
    rng = np.random.default_rng(5)
    cases = []
    for label, shape, large in _ATTN_CASES:
        inputs = {"q": rng.standard_normal(shape), "k": rng.standard_normal(shape),
                  "v": rng.standard_normal(shape)}
        if large:
            # Feature 0 adds the same 1500 to every score of a row: exp overflows unless the
            # row max is subtracted, yet the softmax (and so the gradient) stays unsaturated.
            inputs["q"][..., 0], inputs["k"][..., 0] = 3.0, 1000.0
        dout = rng.standard_normal(shape)
        cases.append(Case(f"{label} (q, k, v {shape})",
                          partial(_grade_pair, forward, backward, inputs, (), _attention_op,
                                  "out", dout, {})))
    return cases


def _attention_op(q, k, v):
    return scaled_dot_product_attention(q, k, v, is_causal=True)


ATTENTION_HEAD = Exercise(
    name="attention_head",
    summary="one causal attention head, forward and backward",
    signature=("attention_forward(q, k, v) -> (out, cache); "
               "attention_backward(dout, cache) -> (dq, dk, dv)"),
    hint=("Scores are q k^T / sqrt(hs) (hs = the last axis), position t sees keys 0..t "
          "only, and the softmax runs over the keys (subtract the row max first). The "
          "backward goes through the same steps in reverse: the second matmul, the softmax "
          "backward (masked scores get no gradient), the scale, the first matmul."),
    functions=("attention_forward", "attention_backward"),
    cases=_attention_cases,
)

EXERCISES = (LAYER_NORM, ATTENTION_HEAD)
