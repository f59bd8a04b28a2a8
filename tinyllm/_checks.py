"""Argument checks shared by every layer: one wording for one kind of mistake.

Each check returns the value (converted where that is safe) or raises a ValueError that says
where the value was given, its name, the value seen and what is accepted:

>>> positive_int("n_layer", 0, where="GPTConfig")
Traceback (most recent call last):
ValueError: GPTConfig: n_layer must be a positive integer, got 0
>>> probability("dropout", 0.1)
0.1

This module imports nothing from tinyllm, so the engine, the models, the data and the
command can all use it.
"""

from __future__ import annotations

import numbers


def _prefix(where: str) -> str:
    return f"{where}: " if where else ""


def _is_int(value) -> bool:
    return isinstance(value, numbers.Integral) and not isinstance(value, bool)


def positive_int(name: str, value, where: str = "") -> int:
    """`value` as an int when it is an integer >= 1 (bools are refused)."""
    if not _is_int(value) or value <= 0:
        raise ValueError(f"{_prefix(where)}{name} must be a positive integer, got {value!r}")
    return int(value)


def non_negative_int(name: str, value, where: str = "") -> int:
    """`value` as an int when it is an integer >= 0 (bools are refused)."""
    if not _is_int(value) or value < 0:
        raise ValueError(f"{_prefix(where)}{name} must be a non-negative integer, "
                         f"got {value!r}")
    return int(value)


def positive_number(name: str, value, where: str = "") -> float:
    """`value` as a float when it is a finite real number > 0 (an epsilon, a scale)."""
    if (isinstance(value, bool) or not isinstance(value, numbers.Real)
            or not 0 < value < float("inf")):
        raise ValueError(f"{_prefix(where)}{name} must be a positive number, got {value!r}")
    return float(value)


def probability(name: str, value, where: str = "") -> float:
    """`value` as a float when it is a number in [0, 1) (a dropout rate, a fraction)."""
    if isinstance(value, bool) or not isinstance(value, numbers.Real) or not 0 <= value < 1:
        raise ValueError(f"{_prefix(where)}{name} must be a probability in [0, 1), "
                         f"got {value!r}")
    return float(value)


def choice(name: str, value, accepted, where: str = ""):
    """`value` when it is one of `accepted`, else an error listing them."""
    if value not in accepted:
        listed = ", ".join(str(a) for a in accepted)
        raise ValueError(f"{_prefix(where)}unknown {name} {value!r}; accepted: {listed}")
    return value
