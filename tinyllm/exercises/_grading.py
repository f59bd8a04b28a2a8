"""What every grader shares: the verdict, calling student code safely, comparing arrays.

A grader never shows the answer. A failure says which case, which output, its shape, and how
far it is from the reference (the largest error, where, and relative to what), plus a hint
that names the idea to revisit, not the code.

References are tinyllm's own results. Where a reference is a gradient, it is first proven by
central differences in float64 (:func:`library_vjp`), so a grader cannot bless a wrong library.
"""

from __future__ import annotations

import traceback
import warnings
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

import numpy as np

from ..autograd.grad_mode import no_grad
from ..autograd.tensor import Tensor

#: Problems printed by a report; the rest are counted.
MAX_SHOWN = 6
#: Central-difference step (float64: truncation and rounding errors both ~1e-10).
FD_EPS = 1e-6
#: Tolerances against central differences:
#: ``max|got - numeric| <= FD_ATOL + FD_RTOL * max|numeric|``.
FD_RTOL, FD_ATOL = 1e-5, 1e-7


@dataclass
class CheckResult:
    """The verdict of :func:`tinyllm.exercises.check`; true when every case passed.

    ``failures`` holds one line per problem found (``"case: what is wrong"``), ``n_failed``
    counts the cases with at least one, ``hint`` names the idea to revisit (empty when
    passed), and ``not_implemented`` is true while the function still raises
    ``NotImplementedError``.
    """

    name: str
    passed: bool
    n_cases: int
    failures: list[str] = field(default_factory=list)
    hint: str = ""
    n_failed: int = 0
    not_implemented: bool = False

    def __bool__(self) -> bool:
        return self.passed

    def report(self) -> str:
        """The text ``check`` prints: one line when passed, else the problems and a hint."""
        if self.passed:
            return f"{self.name}: passed: {self.n_cases} cases"
        if self.not_implemented:
            return (f"{self.name}: not yet implemented ({self.failures[0]}). "
                    "Fill in the lines marked TODO and run the check again.")
        lines = [f"{self.name}: FAILED {self.n_failed} of {self.n_cases} cases"]
        lines += [f"  - {f}" for f in self.failures[:MAX_SHOWN]]
        if len(self.failures) > MAX_SHOWN:
            lines.append(f"  ... and {len(self.failures) - MAX_SHOWN} more problems")
        lines.append(f"hint: {self.hint}")
        return "\n".join(lines)


@dataclass(frozen=True)
class Problem:
    """One thing found wrong, and optionally a hint aimed at that kind of mistake."""

    text: str
    hint: str = ""


class NotYetImplemented(Exception):
    """The student's function still raises ``NotImplementedError``."""


class StudentRaised(Exception):
    """The student's function raised; the message says what and where."""


class CaseFailed(Exception):
    """Stops a case early (e.g. the function returned the wrong kind of thing)."""

    def __init__(self, problem: Problem):
        super().__init__(problem.text)
        self.problem = problem


@dataclass(frozen=True)
class Case:
    """One graded situation: ``run()`` returns the problems found (none = passed)."""

    label: str
    run: Callable[[], list[Problem]]


# ---------------------------------------------------------------- calling student code
def call(fn: Callable, *args, **kwargs):
    """``fn(*args, **kwargs)``, turning anything it raises into a finding, not a crash."""
    try:
        # NaN, inf and empty reductions are reported by `compare` instead of as warnings.
        with np.errstate(all="ignore"), warnings.catch_warnings():
            warnings.simplefilter("ignore", RuntimeWarning)
            return fn(*args, **kwargs)
    except NotImplementedError as exc:
        raise NotYetImplemented(_describe(fn, exc)) from None
    except Exception as exc:  # any error in student code is a finding, reported to them
        raise StudentRaised(_describe(fn, exc)) from None


def _describe(fn: Callable, exc: BaseException) -> str:
    """``"f raised ValueError: msg (line 7)"``: the line is the deepest one in ``fn``'s file."""
    name = getattr(fn, "__name__", "your function")
    where = ""
    code = getattr(fn, "__code__", None)
    if code is not None:
        lines = [f.lineno for f in traceback.extract_tb(exc.__traceback__)
                 if f.filename == code.co_filename]
        where = f" (line {lines[-1]})" if lines else ""
    message = str(exc) or "no message"
    return f"{name} raised {type(exc).__name__}: {message}{where}"


def expect_tuple(result, names: Sequence[str], fn_name: str) -> tuple:
    """``result`` as a tuple of ``len(names)`` items, or a CaseFailed naming what came back."""
    n = len(names)
    if not isinstance(result, tuple | list) or len(result) != n:
        got = (f"a {type(result).__name__} of length {len(result)}"
               if isinstance(result, tuple | list) else f"a {type(result).__name__}")
        raise CaseFailed(Problem(f"{fn_name} must return {n} things ({', '.join(names)}); "
                                 f"it returned {got}"))
    return tuple(result)


# ---------------------------------------------------------------- comparing arrays
def compare(what: str, got, expected: np.ndarray, *, shape_of: str = "", rtol: float = 1e-6,
            atol: float = 1e-9, against: str = "tinyllm's result",
            shape_hint: str = "") -> Problem | None:
    """None when ``got`` matches ``expected``; else one sentence on how it differs.

    ``shape_of`` names the array whose shape ``got`` should have (``"a"`` for ``da``).
    Passes when ``max|got - expected| <= atol + rtol * max|expected|`` over the finite
    entries, and ``got`` is non-finite exactly where ``expected`` is.
    """
    expected = np.asarray(expected, dtype=np.float64)
    if got is None:
        return Problem(f"your {what} is None; return an array")
    array = as_float_array(got)
    if array is None:
        return Problem(f"your {what} is a {type(got).__name__}, not an array of numbers")
    got = array
    if got.shape != expected.shape:
        owner = f"{shape_of} has shape" if shape_of else "it should have shape"
        return Problem(f"your {what} has shape {got.shape} but {owner} {expected.shape}",
                       shape_hint)
    finite = np.isfinite(expected)
    odd = (np.isfinite(got) != finite) | (~finite & (got != expected))
    if odd.any():
        return Problem(f"your {what} has {int(odd.sum())} entries that are NaN or infinite "
                       f"where the answer is not, or the other way round (first at index "
                       f"{_index(np.argwhere(odd)[0])})")
    with np.errstate(invalid="ignore"):  # inf - inf where both are the same infinity
        diff = np.where(finite, np.abs(got - expected), 0.0)
    scale = float(np.max(np.abs(np.where(finite, expected, 0.0)), initial=0.0))
    err = float(np.max(diff, initial=0.0))
    if err <= atol + rtol * scale:
        return None
    i = _index(np.unravel_index(np.argmax(diff), diff.shape))
    if scale == 0.0:
        return Problem(f"your {what} should be zero everywhere here; yours is off by up to "
                       f"{err:.3g} (at index {i})")
    return Problem(f"your {what} is off by up to {err:.3g} at index {i} (relative error "
                   f"{err / scale:.2g}; tolerance {rtol:g}) compared with {against}"
                   + _pattern(got[finite], expected[finite]))


def as_float_array(value) -> np.ndarray | None:
    """``value`` as a float64 array, or None when it is not an array of numbers."""
    if value is None:
        return None
    try:
        return np.asarray(value, dtype=np.float64)
    except (TypeError, ValueError):
        return None


def _index(i) -> str:
    return "[" + ", ".join(str(int(v)) for v in i) + "]"


def _pattern(got: np.ndarray, expected: np.ndarray) -> str:
    """A property of a wrong answer worth saying: a wrong sign or a constant factor."""
    ee = float(np.dot(expected, expected))
    if ee == 0.0:
        return ""
    c = float(np.dot(got, expected)) / ee
    err = float(np.max(np.abs(got - expected)))
    if abs(c - 1) < 1e-3 or np.max(np.abs(got - c * expected)) > 1e-3 * err:
        return ""
    if abs(c + 1) < 1e-3:
        return "; it has the opposite sign everywhere"
    return f"; it is proportional to the answer, but off by a factor of {c:.4g}"


def times(n: int, noun: str = "time") -> str:
    """``"1 time"``, ``"3 times"``."""
    return f"{n} {noun}{'' if n == 1 else 's'}"


# ---------------------------------------------------------------- gradients
def numeric_vjp(f: Callable[..., np.ndarray], arrays: Sequence[np.ndarray],
                dout: np.ndarray, eps: float = FD_EPS) -> list[np.ndarray]:
    """Central differences of ``sum(dout * f(*arrays))`` with respect to each array (float64).

    Inputs that are not finite (a -inf logit) get zero: nudging them changes nothing; outputs
    that are not finite (a -inf log-probability) are left out of the sum.
    """
    arrays = [np.array(a, dtype=np.float64) for a in arrays]
    grads = []
    for x in arrays:
        g = np.zeros_like(x)
        for i in np.ndindex(*x.shape):
            saved = x[i]
            if not np.isfinite(saved):
                continue
            x[i] = saved + eps
            f_plus = _weighted_sum(dout, f(*arrays))
            x[i] = saved - eps
            f_minus = _weighted_sum(dout, f(*arrays))
            x[i] = saved
            g[i] = (f_plus - f_minus) / (2 * eps)
        grads.append(g)
    return grads


def _weighted_sum(dout: np.ndarray, out: np.ndarray) -> float:
    """sum(dout * out) over the finite outputs (a -inf log-probability stays -inf)."""
    out = np.asarray(out, dtype=np.float64)
    return float(np.sum(np.where(np.isfinite(out), dout * np.where(np.isfinite(out), out, 0.0),
                                 0.0)))


def library_vjp(op: Callable[..., Tensor], arrays: Sequence[np.ndarray],
                dout: np.ndarray) -> tuple[np.ndarray, list[np.ndarray]]:
    """tinyllm's output and gradients of ``sum(dout * op(*arrays))``, in float64.

    The gradients come from autograd (``Tensor.backward``) and are checked against central
    differences of the same op before they are used: a mismatch is a bug in tinyllm, raised
    as a RuntimeError rather than blamed on the student.
    """
    leaves = [Tensor(np.array(a, dtype=np.float64), requires_grad=True) for a in arrays]
    out = op(*leaves)
    out.backward(np.asarray(dout, dtype=np.float64))
    grads = [np.zeros(t.shape) if t.grad is None else t.grad for t in leaves]

    def forward(*xs: np.ndarray) -> np.ndarray:
        with no_grad():
            return op(*[Tensor(x) for x in xs]).data

    for k, (g, n, a) in enumerate(zip(grads, numeric_vjp(forward, arrays, dout), arrays)):
        finite = np.isfinite(a)
        err = float(np.max(np.abs(g - n)[finite], initial=0.0))
        if err > FD_ATOL + FD_RTOL * float(np.max(np.abs(n), initial=0.0)):
            raise RuntimeError(f"internal error: tinyllm's gradient for input {k} differs from "
                               f"central differences by {err:.3g}; please report this")
    return out.data, grads


def problems_in(*found: Problem | None) -> list[Problem]:
    """The problems among ``found`` (``compare`` returns None for a match)."""
    return [p for p in found if p is not None]


@dataclass(frozen=True)
class Exercise:
    """One graded exercise: what the student writes and how it is graded.

    ``functions`` names what the student passes to ``check`` (one function, or a
    (forward, backward) pair); ``cases(*fns)`` builds the graded cases around them.
    """

    name: str
    summary: str
    signature: str
    hint: str
    functions: tuple[str, ...]
    cases: Callable[..., list[Case]]
