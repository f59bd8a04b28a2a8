"""Numbers in English words and in Chinese numerals, both ways: a translation with exact rules.

The two languages group digits differently (English by thousands, Chinese by ten-thousands:
万 = 10^4, 亿 = 10^8), so a model must learn to regroup, and to place Chinese's 零 (zero),
which English never writes. Every integer from 0 to ``MAX_NUMBER`` (10^12 - 1) has one form in
each language, and ``from_english`` and ``from_chinese`` read them back.

English (British, short scale): groups of three digits named ``billion`` (10^9), ``million``
and ``thousand``; a group reads "h hundred and t-u" (tens and units hyphenated:
"twenty-one"); groups are joined by a comma, except that a last group below 100 is joined by
"and" instead:

    121             one hundred and twenty-one
    3,005           three thousand and five
    1,234           one thousand, two hundred and thirty-four
    2,000,100       two million, one hundred

Chinese: groups of four digits named 亿 and 万, each read with 千 百 十; 二 is used throughout,
also where speech often says 两 (二百, 二千, 二万, 二亿; ``from_chinese`` reads 两 too):

- zeros at the end of a group are silent (十万, 一亿零五十万); every other run of zeros, also
  one that spans groups, is read as one 零 before the next non-zero digit (三千零五, 一万零一百,
  十万零三, 一亿零三, 一亿零一千); the number never ends in 零;
- 十 is read without 一 when it opens the number (十, 十五, 十万, 十一亿) and as 一十 inside
  (一百一十, 一千零一十, 一亿零一十万).

The tasks ``numbers-en-zh`` and ``numbers-zh-en`` hold the same numbers (``number_splits``):
``SPLIT_SIZES`` distinct integers drawn by ``SEED``, no number in two splits. A draw picks a
length of 1 to 12 digits uniformly, a leading digit 1-9, and each later digit 0 with
probability ``ZERO_PROBABILITY`` (else 1-9), so that every magnitude is common and so are
zeros: every number below 100 is drawn, 44% of the numbers reach 亿 and 85% reach 万, and 76%
of the Chinese forms hold a 零. The longest forms have 23 characters (Chinese) and 144
characters, 19 words (English).

>>> to_english(100_500_000), to_chinese(100_500_000)
('one hundred million, five hundred thousand', '一亿零五十万')
>>> from_chinese("一万零一百"), from_english("three thousand and five")
(10100, 3005)
"""

from __future__ import annotations

from functools import lru_cache

import numpy as np

from .._checks import non_negative_int
from .base import TaskError

#: The largest number written (both languages; one short of a trillion, 一万亿).
MAX_NUMBER = 10**12 - 1
#: The seed of the numbers drawn, and the chance of a 0 among the digits after the first.
SEED = 0
ZERO_PROBABILITY = 0.4
#: Distinct numbers per split.
SPLIT_SIZES = {"train": 8000, "validation": 1000, "test": 1000}

ONES = ("zero one two three four five six seven eight nine ten eleven twelve thirteen "
        "fourteen fifteen sixteen seventeen eighteen nineteen").split()
TENS = ("", "", "twenty", "thirty", "forty", "fifty", "sixty", "seventy", "eighty", "ninety")
SCALES = ((10**9, "billion"), (10**6, "million"), (10**3, "thousand"))
DIGITS_ZH = "零一二三四五六七八九"
UNITS_ZH = {"千": 1000, "百": 100, "十": 10}


def _check(n) -> int:
    n = non_negative_int("n", n, where="numbers")
    if n > MAX_NUMBER:
        raise TaskError(f"numbers: {n} is out of range; accepted: 0 to {MAX_NUMBER:,}")
    return n


# ---------------------------------------------------------------------- English


def _english_below_100(n: int) -> str:
    tens, units = divmod(n, 10)
    if n < 20:
        return ONES[n]
    return TENS[tens] + (f"-{ONES[units]}" if units else "")


def _english_below_1000(n: int) -> str:
    hundreds, rest = divmod(n, 100)
    parts = [f"{ONES[hundreds]} hundred"] if hundreds else []
    return " and ".join(parts + ([_english_below_100(rest)] if rest else []))


def to_english(n: int) -> str:
    """``n`` in British English words (see the module docstring).

    >>> to_english(1_234_567)
    'one million, two hundred and thirty-four thousand, five hundred and sixty-seven'
    """
    n = _check(n)
    if n == 0:
        return "zero"
    parts = []
    for scale, word in SCALES:
        group, n = divmod(n, scale)
        if group:
            parts.append(f"{_english_below_1000(group)} {word}")
    if n and parts and n < 100:
        return ", ".join(parts) + " and " + _english_below_100(n)
    return ", ".join(parts + ([_english_below_1000(n)] if n else []))


def from_english(text: str) -> int:
    """The integer that English ``text`` names; reads ``to_english``'s forms (commas and "and"
    optional); a word it does not know, a misplaced "hundred" or scales out of order raise
    TaskError."""
    small = {w: i for i, w in enumerate(ONES)} | {w: 10 * i for i, w in enumerate(TENS) if w}
    scales = {word: scale for scale, word in SCALES}
    words = text.replace(",", " ").replace("-", " ").split()
    total = group = 0
    last_scale = 10**12
    for word in words:
        if word in small:
            group += small[word]
        elif word == "hundred" and 0 < group < 10:
            group *= 100
        elif word in scales and 0 < group < 1000 and scales[word] < last_scale:
            total, group, last_scale = total + group * scales[word], 0, scales[word]
        elif word != "and":
            raise TaskError(f"not an English number: {text!r} (at {word!r}); accepted: "
                            f"numbers such as {to_english(3005)!r}")
    if not words or group > 999:
        raise TaskError(f"not an English number: {text!r}; accepted: numbers such as "
                        f"{to_english(3005)!r}")
    return total + group


# ---------------------------------------------------------------------- Chinese


def to_chinese(n: int) -> str:
    """``n`` in Chinese numerals with 万/亿 grouping (see the module docstring).

    >>> to_chinese(123_456_789), to_chinese(1005), to_chinese(110)
    ('一亿二千三百四十五万六千七百八十九', '一千零五', '一百一十')
    """
    n = _check(n)
    if n == 0:
        return DIGITS_ZH[0]
    out: list[str] = []
    zero = False  # a run of unread zeros waits for the next non-zero digit
    for group_unit, group in (("亿", n // 10**8), ("万", n // 10**4 % 10**4), ("", n % 10**4)):
        if group == 0:
            zero = zero or bool(out)
            continue
        for unit, power in (("千", 1000), ("百", 100), ("十", 10), ("", 1)):
            digit = group // power % 10
            if digit == 0:
                zero = zero or bool(out)
                continue
            if zero:
                out.append(DIGITS_ZH[0])
            opens_with_ten = not out and unit == "十" and digit == 1
            out.append(("" if opens_with_ten else DIGITS_ZH[digit]) + unit)
            zero = False
        out.append(group_unit)
        zero = False  # zeros at the end of a group are silent
    return "".join(out)


def from_chinese(text: str) -> int:
    """The integer that Chinese ``text`` names; reads ``to_chinese``'s forms and 两 for 二; a
    character it does not know or a malformed number raises TaskError."""
    def fail(why: str):
        raise TaskError(f"not a Chinese number: {text!r} ({why}); accepted: numbers such as "
                        f"{to_chinese(10_100)!r}")

    total = section = 0
    digit: int | None = None   # a digit read and not yet multiplied by its unit
    last_unit = 10**4          # units fall within a group: 千, 百, 十
    has_wan = False
    for ch in text:
        if ch == DIGITS_ZH[0] and digit is None:
            continue
        if ch in DIGITS_ZH or ch == "两":
            if digit is not None:
                fail(f"two digits in a row at {ch!r}")
            digit = 2 if ch == "两" else DIGITS_ZH.index(ch)
        elif ch in UNITS_ZH and UNITS_ZH[ch] < last_unit:
            if digit is None and not (ch == "十" and total == section == 0):
                fail(f"{ch} without a digit")
            section += (1 if digit is None else digit) * UNITS_ZH[ch]
            digit, last_unit = None, UNITS_ZH[ch]
        elif ch in "万亿" and section + (digit or 0) and not (has_wan if ch == "万" else total):
            total += (section + (digit or 0)) * (10**4 if ch == "万" else 10**8)
            section, digit, last_unit, has_wan = 0, None, 10**4, ch == "万"
        else:
            fail(f"at {ch!r}")
    if not text:
        fail("empty")
    return total + section + (digit or 0)


# ---------------------------------------------------------------------- the numbers drawn


def sample_numbers(count: int, seed=SEED) -> list[int]:
    """``count`` distinct integers in 0..``MAX_NUMBER`` in draw order (see the module
    docstring: a uniform length of 1 to 12 digits, zeros among the later digits with
    probability ``ZERO_PROBABILITY``); the same ``seed`` gives the same numbers."""
    count = non_negative_int("count", count, where="sample_numbers")
    rng = np.random.default_rng(seed)
    width = len(str(MAX_NUMBER))
    seen: dict[int, None] = {}
    while len(seen) < count:
        lengths = rng.integers(1, width + 1, size=1024)                       # (N,)
        digits = rng.integers(1, 10, size=(1024, width))                      # (N, D)
        digits[rng.random((1024, width)) < ZERO_PROBABILITY] = 0
        digits[:, 0] = rng.integers(1, 10, size=1024)   # the leading digit is never 0 ...
        digits[lengths == 1, 0] = rng.integers(0, 10, size=int((lengths == 1).sum()))  # ... but 0
        for row, length in zip(digits.tolist(), lengths.tolist()):
            seen.setdefault(int("".join(map(str, row[:length]))), None)
            if len(seen) == count:
                break
    return list(seen)


@lru_cache(maxsize=1)
def number_splits() -> tuple[tuple[int, ...], ...]:
    """The (train, validation, test) numbers of both number tasks: ``SPLIT_SIZES`` distinct
    numbers drawn by ``SEED``, shuffled, and cut in that order."""
    numbers = sample_numbers(sum(SPLIT_SIZES.values()))
    order = np.random.default_rng([SEED, 1]).permutation(len(numbers))
    numbers = [numbers[i] for i in order]
    n_train, n_validation = SPLIT_SIZES["train"], SPLIT_SIZES["validation"]
    return (tuple(numbers[:n_train]), tuple(numbers[n_train:n_train + n_validation]),
            tuple(numbers[n_train + n_validation:]))


@lru_cache(maxsize=1)
def written_splits() -> tuple[tuple[tuple[str, str], ...], ...]:
    """``number_splits`` written out: (English, Chinese) for each number of each split."""
    return tuple(tuple((to_english(n), to_chinese(n)) for n in part) for part in number_splits())
