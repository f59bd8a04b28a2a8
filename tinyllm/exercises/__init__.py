"""Graders for the course exercises, in the spirit of CS231n's gradient checks.

A student writes a function in a notebook (``notebooks/exercises/``) and grades it::

    from tinyllm import exercises
    result = exercises.check("softmax_backward", softmax_backward)

``check`` runs the function on fixed, seeded cases (broadcast shapes, a size-1 axis, a
negative ``dim``, large logits, ties, empty and Unicode input...) and compares it with
tinyllm's own implementation: autograd's gradients (themselves proven by central differences
in float64), ``F.layer_norm``, ``F.scaled_dot_product_attention``, ``optim.AdamW``, the BPE
tokenizer and the sampler. Where the student writes a forward too, the backward is checked
against central differences of that forward. It prints ``passed: N cases``, or what is wrong
in each failing case (shapes, the largest error and where, properties of the answer) and a
hint -- never the answer itself -- and returns a :class:`CheckResult` that is true when every
case passed.

>>> sorted(list_exercises())[:3]
['adamw_step', 'attention_head', 'bpe_merge']

The reference solutions live outside the package (``tests/exercise_solutions.py``).
"""

from __future__ import annotations

from . import adamw, backprop, layers, tokens, top_p
from ._grading import (
    CaseFailed,
    CheckResult,
    Exercise,
    NotYetImplemented,
    Problem,
    StudentRaised,
)

__all__ = ["CheckResult", "check", "describe", "list_exercises"]

EXERCISES: dict[str, Exercise] = {
    ex.name: ex
    for module in (backprop, layers, tokens, adamw, top_p)
    for ex in module.EXERCISES
}


def list_exercises() -> dict[str, str]:
    """Every exercise's name and a one-line description, in course order."""
    return {name: ex.summary for name, ex in EXERCISES.items()}


def describe(name: str) -> str:
    """What to write for exercise ``name``: its signature(s) and a one-line summary."""
    ex = _exercise(name)
    signatures = "".join(f"\n  {s}" for s in ex.signature.split("; "))
    return f"{ex.name}: {ex.summary}{signatures}"


def check(name: str, fn, *, verbose: bool = True) -> CheckResult:
    """Grade ``fn`` on exercise ``name``; print the verdict unless ``verbose=False``.

    ``fn`` is the student's function, or for ``layer_norm`` and ``attention_head`` the pair
    ``(forward, backward)``. A function that raises is a failure (``NotImplementedError``:
    "not yet implemented"), never a crash. Raises ValueError for an unknown ``name`` and
    TypeError when ``fn`` is not callable (or not a pair of callables where one is needed).
    """
    ex = _exercise(name)
    fns = _functions(ex, fn)
    result = _grade(ex, fns)
    if verbose:
        print(result.report())
    return result


def _exercise(name: str) -> Exercise:
    if name not in EXERCISES:
        raise ValueError(f"unknown exercise {name!r}; accepted: {', '.join(EXERCISES)}")
    return EXERCISES[name]


def _functions(ex: Exercise, fn) -> tuple:
    n = len(ex.functions)
    fns = (fn,) if n == 1 else fn
    if n > 1 and not (isinstance(fns, tuple | list) and len(fns) == n):
        raise TypeError(f"check({ex.name!r}, ...) expects the pair ({', '.join(ex.functions)}) "
                        f"of functions, e.g. check({ex.name!r}, ({', '.join(ex.functions)})); "
                        f"got {type(fn).__name__}")
    for expected, f in zip(ex.functions, fns):
        if not callable(f):
            raise TypeError(f"check({ex.name!r}, ...): {expected} must be a function, got "
                            f"{type(f).__name__} {f!r:.60}")
    return tuple(fns)


def _grade(ex: Exercise, fns: tuple) -> CheckResult:
    cases = ex.cases(*fns)
    failures: list[str] = []
    hints: list[str] = []
    n_failed = 0
    for case in cases:
        try:
            found = case.run()
        except NotYetImplemented as exc:
            return CheckResult(ex.name, False, len(cases), [str(exc)], ex.hint,
                               n_failed=len(cases), not_implemented=True)
        except (StudentRaised, CaseFailed) as exc:
            found = [exc.problem if isinstance(exc, CaseFailed) else Problem(str(exc))]
        if found:
            n_failed += 1
            failures += [f"case {case.label}: {p.text}" for p in found]
            hints += [p.hint for p in found if p.hint]
    hint = "" if not failures else (hints[0] if hints else ex.hint)
    return CheckResult(ex.name, not failures, len(cases), failures, hint, n_failed)
