"""Exercises on byte-pair encoding: one merge step, and the pair training merges next.

The references are tinyllm's BPE itself (``tinyllm.tokenizers.bpe``): its ``_merge`` for a
merge step, and its trainer's first merge for the most frequent pair -- so the tie rule the
student must follow is the library's (the smallest pair wins a tie).
"""

from __future__ import annotations

from collections import Counter
from functools import partial

from ..tokenizers.bpe import _learn_merges, _merge
from ._grading import Case, Exercise, Problem, call, times

_SHOWN = 12  # ids shown from a list in a message


def _short(ids) -> str:
    ids = list(ids)
    body = ", ".join(str(i) for i in ids[:_SHOWN])
    return f"[{body}{', ...' if len(ids) > _SHOWN else ''}]"


def _as_ids(got, fn_name: str) -> list[int] | Problem:
    if not isinstance(got, list | tuple):
        return Problem(f"{fn_name} must return a list of ints; it returned a "
                       f"{type(got).__name__}")
    try:
        return [int(i) for i in got]
    except (TypeError, ValueError):
        return Problem(f"{fn_name} must return a list of ints; yours holds "
                       f"{sorted({type(i).__name__ for i in got})}")


def _unchanged(ids: list[int], original: list[int]) -> Problem | None:
    if ids != original:
        return Problem("your function changed the list it was given; build a new list "
                       "instead", "Leave the input list alone: append to a new list.")
    return None


# ---------------------------------------------------------------- bpe_merge
_EMOJI = list("héllo wörld 🙂🙂".encode())
_MERGE_CASES = (
    ("a pair in the middle", [1, 2, 3, 1, 2], (1, 2), 256),
    ("three in a row", [7, 7, 7], (7, 7), 256),
    ("four in a row", [7, 7, 7, 7], (7, 7), 256),
    ("the pair at the end", [5, 1, 2], (1, 2), 256),
    ("the reversed pair does not count", [2, 1, 2, 1], (1, 2), 256),
    ("no occurrence", [1, 3, 2], (1, 2), 256),
    ("an empty list", [], (1, 2), 256),
    ("one id", [1], (1, 2), 256),
    ("UTF-8 bytes of text with emoji", _EMOJI, (0xF0, 0x9F), 300),
    ("ids above 255", [256, 300, 256, 300, 5], (256, 300), 301),
)


def _merge_cases(fn) -> list[Case]:
    return [Case(f"{label} (ids={_short(ids)}, pair={pair}, new_id={new})",
                 partial(_grade_merge, fn, ids, pair, new))
            for label, ids, pair, new in _MERGE_CASES]


def _grade_merge(fn, ids, pair, new) -> list[Problem]:
    expected = _merge(ids, pair[0], pair[1], new)
    given = list(ids)
    got = _as_ids(call(fn, given, pair, new), "bpe_merge")
    if isinstance(got, Problem):
        return [got]
    found = [_unchanged(given, ids)]
    if got != expected:
        if len(got) != len(expected):
            found.append(Problem(f"you returned {_short(got)}: {times(len(got), 'id')}, but "
                                 f"the merged list has {len(expected)}"))
        else:
            i = next(i for i, (g, e) in enumerate(zip(got, expected)) if g != e)
            found.append(Problem(f"you returned {_short(got)}: the length is right, but the "
                                 f"id at position {i} is wrong"))
    return [p for p in found if p is not None]


BPE_MERGE = Exercise(
    name="bpe_merge",
    summary="one BPE merge step: replace the pair (a, b) by new_id, left to right",
    signature="bpe_merge(ids, pair, new_id) -> list[int]",
    hint=("Scan left to right. Where ids[i], ids[i + 1] is the pair (in that order), emit "
          "new_id and continue after both ids, so occurrences never overlap: [a, a, a] with "
          "the pair (a, a) becomes [new_id, a]. Every other id is copied, the last one too."),
    functions=("bpe_merge",),
    cases=_merge_cases,
)


# ---------------------------------------------------------------- most_frequent_pair
_PAIR_CASES = (
    ("one clear winner", [1, 2, 3, 1, 2, 4, 1, 2]),
    ("a tie: the smallest pair wins", [5, 6, 1, 2]),
    ("a tie on the first id", [4, 9, 4, 3]),
    ("a run counts overlapping pairs", [1, 1, 1, 2, 3, 2, 3]),
    ("two ids", [3, 3]),
    ("the bytes of a sentence", list(b"the cat sat on the mat")),
    ("an empty list", []),
    ("one id", [7]),
)


def _library_most_frequent(ids: list[int]) -> tuple[int, int] | None:
    """The first merge tinyllm's BPE trainer would learn from ``ids`` (ids below 128)."""
    if any(not 0 <= i < 128 for i in ids):  # chr(i) is then one UTF-8 byte, i itself
        raise ValueError("internal error: most_frequent_pair cases must use ids in 0..127")
    if len(ids) < 2:
        return None
    merges = _learn_merges(Counter({"".join(map(chr, ids)): 1}), 1, 1)
    return merges[0] if merges else None


def _pair_cases(fn) -> list[Case]:
    return [Case(f"{label} (ids={_short(ids)})", partial(_grade_pair, fn, ids))
            for label, ids in _PAIR_CASES]


def _grade_pair(fn, ids) -> list[Problem]:
    expected = _library_most_frequent(ids)
    given = list(ids)
    got = call(fn, given)
    found = [_unchanged(given, ids)]
    if expected is None:
        if got is not None:
            found.append(Problem(f"there is no pair in a list of {len(ids)} ids, so the "
                                 f"answer is None; you returned {got!r}"))
    elif not (isinstance(got, tuple | list) and len(got) == 2):
        found.append(Problem(f"most_frequent_pair must return a pair (a, b); it returned "
                             f"{got!r}"))
    elif tuple(got) != expected:
        counts = Counter(zip(ids, ids[1:]))
        n_got, n_best = counts[tuple(got)], counts[expected]
        how = ("as often as the answer: look at how you count runs and break ties"
               if n_got == n_best else f"but the answer occurs {times(n_best)}")
        found.append(Problem(f"you returned {tuple(got)}, which occurs {times(n_got)} "
                             f"(counting overlapping pairs), {how}"))
    return [p for p in found if p is not None]


MOST_FREQUENT_PAIR = Exercise(
    name="most_frequent_pair",
    summary="the adjacent pair BPE training merges next (ties: the smallest pair)",
    signature="most_frequent_pair(ids) -> tuple[int, int] | None",
    hint=("Count every adjacent pair (ids[i], ids[i + 1]), overlapping ones included: "
          "[a, a, a] holds (a, a) twice. The most frequent wins; among equally frequent "
          "pairs tinyllm takes the smallest, comparing a first, then b. No pair: None."),
    functions=("most_frequent_pair",),
    cases=_pair_cases,
)

EXERCISES = (BPE_MERGE, MOST_FREQUENT_PAIR)
