"""Exercises on single backward passes: broadcasting multiply, sum, softmax and log-softmax.

The student gets what a backward pass sees (the inputs or the saved output, and ``dout``, the
gradient of the loss with respect to the output) and returns the input gradients. Each is
compared with tinyllm's autograd (float64), whose gradient is itself proven by central
differences first.
"""

from __future__ import annotations

from functools import partial

import numpy as np

from ..autograd.ops.nn import log_softmax, softmax
from ._grading import (
    Case,
    Exercise,
    Problem,
    call,
    compare,
    expect_tuple,
    library_vjp,
    problems_in,
)

_REDUCE_HINT = ("A gradient always has its input's shape. Where broadcasting added leading "
                "axes or stretched a size-1 axis, the same input entry was used many times, "
                "so its gradient is the sum over those uses (keep stretched axes with "
                "keepdims=True).")


# ---------------------------------------------------------------- mul_backward
_MUL_SHAPES = (
    ("same shapes", (3, 4), (3, 4)),
    ("b broadcast over rows", (3, 4), (4,)),
    ("an outer product", (3, 1), (1, 4)),
    ("b with a size-1 axis", (2, 3, 4), (3, 1)),
    ("both broadcast", (4, 1, 3), (2, 3)),
    ("b is a scalar", (2, 3), ()),
)


def _mul_cases(fn) -> list[Case]:
    rng = np.random.default_rng(0)
    cases = []
    for label, sa, sb in _MUL_SHAPES:
        a, b = np.asarray(rng.standard_normal(sa)), np.asarray(rng.standard_normal(sb))
        dout = rng.standard_normal(np.broadcast_shapes(sa, sb))
        cases.append(Case(f"{label} (a {sa}, b {sb}, dout {dout.shape})",
                          partial(_grade_mul, fn, a, b, dout)))
    return cases


def _grade_mul(fn, a, b, dout) -> list[Problem]:
    _, (da, db) = library_vjp(lambda x, y: x * y, (a, b), dout)
    got = expect_tuple(call(fn, a.copy(), b.copy(), dout.copy()), ("da", "db"), "mul_backward")
    return problems_in(compare("da", got[0], da, shape_of="a", shape_hint=_REDUCE_HINT),
                       compare("db", got[1], db, shape_of="b", shape_hint=_REDUCE_HINT))


MUL_BACKWARD = Exercise(
    name="mul_backward",
    summary="backward of a broadcasting multiply out = a * b",
    signature="mul_backward(a, b, dout) -> (da, db)",
    hint=("out = a * b, so d out / d a is b (and the other way round), times dout; then "
          "reduce each gradient back to its input's shape."),
    functions=("mul_backward",),
    cases=_mul_cases,
)


# ---------------------------------------------------------------- sum_backward
_SUM_CASES = (
    ("sum of everything", (3, 4), None, False),
    ("sum of everything, keepdim", (3, 4), None, True),
    ("dim 0", (3, 4), 0, False),
    ("a square input, dim 1", (3, 3), 1, False),
    ("negative dim -1", (2, 3, 4), -1, False),
    ("two dims (0, 2)", (2, 3, 4), (0, 2), False),
    ("two dims given as (-1, 0)", (2, 3, 4), (-1, 0), False),
    ("a size-1 axis, keepdim", (3, 1, 4), 1, True),
)


def _sum_cases(fn) -> list[Case]:
    rng = np.random.default_rng(1)
    cases = []
    for label, shape, dim, keepdim in _SUM_CASES:
        x = rng.standard_normal(shape)
        out_shape = x.sum(axis=dim, keepdims=keepdim).shape
        dout = np.asarray(rng.standard_normal(out_shape))
        cases.append(Case(f"{label} (x {shape}, dim={dim}, keepdim={keepdim}, dout "
                          f"{dout.shape})", partial(_grade_sum, fn, x, dim, keepdim, dout)))
    return cases


def _grade_sum(fn, x, dim, keepdim, dout) -> list[Problem]:
    _, (dx,) = library_vjp(lambda t: t.sum(dim, keepdim), (x,), dout)
    got = call(fn, x.shape, dim, keepdim, dout.copy())
    hint = ("With keepdim=False the summed axes are gone from dout: put them back as size-1 "
            "axes before broadcasting to x's shape (negative dims count from x's end).")
    return problems_in(compare("dx", got, dx, shape_of="x", shape_hint=hint))


SUM_BACKWARD = Exercise(
    name="sum_backward",
    summary="backward of x.sum(dim, keepdim): copy dout back over the summed axes",
    signature="sum_backward(x_shape, dim, keepdim, dout) -> dx",
    hint=("Every x entry in a sum contributes with weight 1, so dx is dout copied along the "
          "summed axes; mind keepdim, negative dims and dim=None (all axes)."),
    functions=("sum_backward",),
    cases=_sum_cases,
)


# ---------------------------------------------------------------- softmax family
_SOFTMAX_CASES = (
    ("rows of 6", (4, 6), -1, 1.0, False),
    ("dim 1 of a 3-d array", (3, 4, 5), 1, 1.0, False),
    ("dim 0", (5, 3), 0, 1.0, False),
    ("negative dim -2", (2, 3, 4), -2, 1.0, False),
    ("a size-1 axis", (4, 1), -1, 1.0, False),
    ("near one-hot rows (large logits)", (4, 6), -1, 50.0, False),
    ("masked entries (-inf logits)", (3, 5), -1, 1.0, True),
)


def _softmax_cases(fn, op, seed: int) -> list[Case]:
    rng = np.random.default_rng(seed)
    cases = []
    for label, shape, dim, scale, masked in _SOFTMAX_CASES:
        x = scale * rng.standard_normal(shape)
        dout = rng.standard_normal(shape)
        if masked:  # some entries of each row, never a whole row
            x[0, 1] = x[1, 3] = x[2, 0] = x[2, 4] = -np.inf
            # No loss reads a -inf log-probability, so dout is zero there, as in practice
            # (central differences could not see those entries anyway).
            dout[~np.isfinite(x)] = 0.0
        cases.append(Case(f"{label} (x {shape}, dim={dim})",
                          partial(_grade_softmax, fn, op, x, dim, dout)))
    return cases


def _grade_softmax(fn, op, x, dim, dout) -> list[Problem]:
    y, (dx,) = library_vjp(lambda t: op(t, dim), (x,), dout)
    got = call(fn, y.copy(), dout.copy(), dim)
    hint = "dx has the shape of y and dout; reduce with keepdims=True so it broadcasts back."
    return problems_in(compare("dx", got, dx, shape_of="y", shape_hint=hint))


SOFTMAX_BACKWARD = Exercise(
    name="softmax_backward",
    summary="backward of y = softmax(x, dim), given the output y",
    signature="softmax_backward(y, dout, dim=-1) -> dx",
    hint=("Every y along dim depends on every x along dim (they share the normaliser), so "
          "dx_i = sum_j dout_j * dy_j/dx_i with dy_j/dx_i = y_j (delta_ij - y_i). The sum "
          "runs along dim only."),
    functions=("softmax_backward",),
    cases=partial(_softmax_cases, op=softmax, seed=2),
)

LOG_SOFTMAX_BACKWARD = Exercise(
    name="log_softmax_backward",
    summary="backward of y = log_softmax(x, dim), given the output y",
    signature="log_softmax_backward(y, dout, dim=-1) -> dx",
    hint=("y_j = x_j - logsumexp(x), so dy_j/dx_i = delta_ij - softmax(x)_i; softmax(x) is "
          "exp(y). The sum over j runs along dim only."),
    functions=("log_softmax_backward",),
    cases=partial(_softmax_cases, op=log_softmax, seed=3),
)

EXERCISES = (MUL_BACKWARD, SUM_BACKWARD, SOFTMAX_BACKWARD, LOG_SOFTMAX_BACKWARD)
