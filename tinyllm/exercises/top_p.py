"""Exercise: nucleus (top-p) filtering, as tinyllm's sampler does it.

Given logits (V,) or (B, V) and ``p``, the student returns the probabilities the sampler draws
from: the softmax, with every token outside the nucleus set to zero and the rest renormalised.
The rule is ``tinyllm.models.sampling.sample``'s: sort the tokens by probability (ties: lower
index first) and keep a token while the probability mass *before* it is below ``p`` -- the
smallest set whose mass reaches ``p``, so the token that crosses ``p`` is kept; ``p = 1``
keeps everything and a tiny ``p`` keeps the argmax alone.
"""

from __future__ import annotations

from functools import partial

import numpy as np

from ..models.sampling import top_p_filter
from ._grading import Case, Exercise, Problem, as_float_array, call, compare, times

#: Cases keep every prefix mass at least this far from p, so rounding cannot flip a token.
_MARGIN = 1e-6


def library_top_p(logits: np.ndarray, top_p: float) -> np.ndarray:
    """The distribution ``tinyllm.models.sampling.sample`` draws from (temperature 1, no
    top-k): the softmax, through the sampler's own ``top_p_filter``."""
    rows = np.atleast_2d(np.asarray(logits, dtype=np.float64))            # (B, V)
    probs = np.exp(rows - rows.max(axis=-1, keepdims=True))
    probs /= probs.sum(axis=-1, keepdims=True)                           # (B, V)
    return top_p_filter(probs, top_p).reshape(np.shape(logits))


def prefix_margin(logits: np.ndarray, top_p: float) -> float:
    """How close any sorted prefix mass comes to ``top_p`` (inf when p = 1: no boundary)."""
    if top_p >= 1.0:
        return float("inf")
    rows = np.atleast_2d(np.asarray(logits, dtype=np.float64))
    probs = np.exp(rows - rows.max(axis=-1, keepdims=True))
    probs /= probs.sum(axis=-1, keepdims=True)
    before = np.cumsum(-np.sort(-probs, axis=-1), axis=-1) - (-np.sort(-probs, axis=-1))
    return float(np.min(np.abs(before - top_p)))


_RNG = np.random.default_rng(7)
_TOP_P_CASES = (
    ("p = 0.9 over 10 tokens", 2.0 * _RNG.standard_normal(10), 0.9),
    ("a batch of rows", 2.0 * _RNG.standard_normal((3, 8)), 0.7),
    ("p = 1.0 keeps every token", _RNG.standard_normal(6), 1.0),
    ("a tiny p keeps only the most likely token", _RNG.standard_normal(8), 1e-6),
    ("the token that crosses p is kept", np.log([0.2, 0.4, 0.1, 0.3]), 0.6),
    ("tied tokens at the boundary", np.array([0.0, 2.0, 2.0, 2.0, 1.0]), 0.5),
    ("large logits", np.array([998.0, 1000.0, 0.0, 999.0, 500.0, 997.0]), 0.8),
    ("masked tokens (-inf logits)", np.array([1.0, -np.inf, 0.5, 2.0, -np.inf, 0.0, 1.5]), 0.95),
    ("all tokens equally likely", np.zeros(5), 0.5),
)
del _RNG


def _top_p_cases(fn) -> list[Case]:
    cases = []
    for label, logits, p in _TOP_P_CASES:
        if prefix_margin(logits, p) < _MARGIN:
            raise RuntimeError(f"internal error: top_p case {label!r} sits on a boundary")
        cases.append(Case(f"{label} (logits {logits.shape}, p={p:g})",
                          partial(_grade_top_p, fn, logits, p)))
    return cases


def _grade_top_p(fn, logits, p) -> list[Problem]:
    expected = library_top_p(logits, p)
    got = call(fn, logits.copy(), p)
    problem = compare("probs", got, expected,
                      shape_hint="Return one probability per logit: the logits' shape.")
    if problem is None:
        return []
    got = as_float_array(got)
    if got is None or got.shape != expected.shape or not np.isfinite(got).all():
        return [problem]
    got, want = np.atleast_2d(got), np.atleast_2d(expected)
    probs = library_top_p(logits, 1.0).reshape(want.shape)    # before filtering
    for r, (g, w) in enumerate(zip(got, want)):
        where = f"row {r}: " if np.ndim(logits) == 2 else ""
        wrong = np.flatnonzero((g > 0) != (w > 0))
        if wrong.size:
            i = int(wrong[0])
            n_got, n_want = int((g > 0).sum()), int((w > 0).sum())
            how = (f"the right number of tokens ({n_want}) but not the right ones"
                   if n_got == n_want else f"{times(n_got, 'token')} but {n_want} should be kept")
            should = "kept" if w[i] > 0 else "dropped"
            return [Problem(f"{where}you kept {how}: token {i} (probability "
                            f"{probs[r, i]:.3g} before filtering) should be {should}")]
        if abs(g.sum() - 1.0) > 1e-6:
            return [Problem(f"{where}you kept the right tokens, but your probabilities sum "
                            f"to {g.sum():.4g}, not 1")]
    return [problem]


TOP_P_FILTER = Exercise(
    name="top_p_filter",
    summary="nucleus sampling's filter: the renormalised top-p distribution",
    signature="top_p_filter(logits, p) -> probs",
    hint=("Softmax first (subtract the max). Sort by probability, ties keeping the lower "
          "index first; keep a token while the mass of the tokens before it is below p (so "
          "the one that crosses p stays); zero the rest and renormalise. Rows of (B, V) are "
          "independent."),
    functions=("top_p_filter",),
    cases=_top_p_cases,
)

EXERCISES = (TOP_P_FILTER,)
