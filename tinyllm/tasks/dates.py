"""Dates written by people, in many formats and four languages, translated into ISO 8601.

The task teaches a model to read a date however it is written and to write it one way,
``YYYY-MM-DD``: to find the month by name (in English, French, German or Spanish) or by
position, to pad day and month, and to ignore what carries no information (a weekday, "of",
"de", an ordinal's ending). The formats (``DATE_FORMATS``), for Tuesday 5 March 2024:

==============  ============================  ==============================================
format          source                        rule
==============  ============================  ==============================================
en-mdy          March 5, 2024                 month name, day, comma, year
en-dmy          5 March 2024                  day, month name, year
en-weekday      Tuesday, 5 March 2024         the weekday of the date, then en-dmy
en-ordinal      5th of March, 2024            1st 2nd 3rd 4th ... 21st 22nd 23rd ... 31st
en-abbr         Mar 5 2024                    three-letter month, day, year
us-numeric      3/5/2024                      '/' after a 1-2 digit number: month first
eu-numeric      5.3.2024                      '.' between numbers: day first
ymd-slash       2024/03/05                    '/' after a 4-digit year: year, month, day
fr              5 mars 2024                   day 1 is "1er" (1er mars 2024)
fr-weekday      mardi 5 mars 2024
de              5. März 2024                  the day is an ordinal with a dot
de-weekday      Dienstag, 5. März 2024
es              5 de marzo de 2024
es-weekday      martes, 5 de marzo de 2024
==============  ============================  ==============================================

No source is ambiguous: a numeric date's order is fixed by its separator and the place of the
year ('/' month first unless the year leads, '.' day first), never guessed from the values,
and no month or weekday name means two different things in the four languages. ``read_date``
reads every format back by these rules alone (it is not told the format). A weekday, where
shown, is the date's own.

Dates are drawn uniformly from 1900-01-01 to 2099-12-31 by ``SEED``: ``SPLIT_SIZES`` distinct
dates, so no date (and no source) is in two splits; within each split the formats are equally
common (to within one) and in a seeded random order.

>>> format_date(datetime.date(2024, 3, 5), "es-weekday")
'martes, 5 de marzo de 2024'
>>> read_date("Dienstag, 5. März 2024").isoformat()
'2024-03-05'
"""

from __future__ import annotations

import datetime
import re
from functools import lru_cache

import numpy as np

from .base import TaskError

#: The first and last dates drawn.
FIRST_DATE, LAST_DATE = datetime.date(1900, 1, 1), datetime.date(2099, 12, 31)
#: The seed of the dates and formats drawn, and the distinct dates per split.
SEED = 0
SPLIT_SIZES = {"train": 8000, "validation": 1000, "test": 1000}

MONTHS = {
    "en": ("January February March April May June July August September October November "
           "December").split(),
    "fr": "janvier février mars avril mai juin juillet août septembre octobre novembre "
          "décembre".split(),
    "de": "Januar Februar März April Mai Juni Juli August September Oktober November "
          "Dezember".split(),
    "es": "enero febrero marzo abril mayo junio julio agosto septiembre octubre noviembre "
          "diciembre".split(),
}
MONTH_ABBREVIATIONS = "Jan Feb Mar Apr May Jun Jul Aug Sep Oct Nov Dec".split()
#: Weekdays from Monday (``date.weekday()`` == 0).
WEEKDAYS = {
    "en": "Monday Tuesday Wednesday Thursday Friday Saturday Sunday".split(),
    "fr": "lundi mardi mercredi jeudi vendredi samedi dimanche".split(),
    "de": "Montag Dienstag Mittwoch Donnerstag Freitag Samstag Sonntag".split(),
    "es": "lunes martes miércoles jueves viernes sábado domingo".split(),
}


def _ordinal(day: int) -> str:
    """5 -> '5th', 1 -> '1st', 22 -> '22nd', 13 -> '13th'."""
    suffix = "th" if 11 <= day <= 13 else {1: "st", 2: "nd", 3: "rd"}.get(day % 10, "th")
    return f"{day}{suffix}"


def _fr_day(day: int) -> str:
    return "1er" if day == 1 else str(day)


#: Format name -> how a date is written in it.
DATE_FORMATS = {
    "en-mdy": lambda d: f"{MONTHS['en'][d.month - 1]} {d.day}, {d.year}",
    "en-dmy": lambda d: f"{d.day} {MONTHS['en'][d.month - 1]} {d.year}",
    "en-weekday": lambda d: f"{WEEKDAYS['en'][d.weekday()]}, {d.day} "
                            f"{MONTHS['en'][d.month - 1]} {d.year}",
    "en-ordinal": lambda d: f"{_ordinal(d.day)} of {MONTHS['en'][d.month - 1]}, {d.year}",
    "en-abbr": lambda d: f"{MONTH_ABBREVIATIONS[d.month - 1]} {d.day} {d.year}",
    "us-numeric": lambda d: f"{d.month}/{d.day}/{d.year}",
    "eu-numeric": lambda d: f"{d.day}.{d.month}.{d.year}",
    "ymd-slash": lambda d: f"{d.year}/{d.month:02d}/{d.day:02d}",
    "fr": lambda d: f"{_fr_day(d.day)} {MONTHS['fr'][d.month - 1]} {d.year}",
    "fr-weekday": lambda d: f"{WEEKDAYS['fr'][d.weekday()]} {_fr_day(d.day)} "
                            f"{MONTHS['fr'][d.month - 1]} {d.year}",
    "de": lambda d: f"{d.day}. {MONTHS['de'][d.month - 1]} {d.year}",
    "de-weekday": lambda d: f"{WEEKDAYS['de'][d.weekday()]}, {d.day}. "
                            f"{MONTHS['de'][d.month - 1]} {d.year}",
    "es": lambda d: f"{d.day} de {MONTHS['es'][d.month - 1]} de {d.year}",
    "es-weekday": lambda d: f"{WEEKDAYS['es'][d.weekday()]}, {d.day} de "
                            f"{MONTHS['es'][d.month - 1]} de {d.year}",
}


def format_date(date: datetime.date, fmt: str) -> str:
    """``date`` written in format ``fmt`` (a key of ``DATE_FORMATS``)."""
    if fmt not in DATE_FORMATS:
        raise TaskError(f"unknown date format {fmt!r}; accepted: {', '.join(DATE_FORMATS)}")
    return DATE_FORMATS[fmt](date)


# ---------------------------------------------------------------------- reading them back


def _lowered(table: dict[str, list[str]], extra=()) -> dict[str, int]:
    """Every name of ``table`` (and ``extra``), lower-cased -> its index; a name that meant
    two indices would make a source ambiguous, so it is refused here."""
    index: dict[str, int] = {}
    for names in (*table.values(), *extra):
        for i, name in enumerate(names):
            if index.setdefault(name.lower(), i) != i:
                raise AssertionError(f"{name!r} names two different months or weekdays")
    return index


_MONTH_INDEX = _lowered(MONTHS, [MONTH_ABBREVIATIONS])
_WEEKDAY_INDEX = _lowered(WEEKDAYS)
_NUMERIC = ((re.compile(r"(\d{4})/(\d{1,2})/(\d{1,2})"), "ymd"),
            (re.compile(r"(\d{1,2})/(\d{1,2})/(\d{4})"), "mdy"),
            (re.compile(r"(\d{1,2})\.(\d{1,2})\.(\d{4})"), "dmy"))
_FILLERS = {"of", "de", "st", "nd", "rd", "th", "er"}


def read_date(text: str) -> datetime.date:
    """The date a source of any of ``DATE_FORMATS`` names, read by the rules of the module
    docstring alone; a text it cannot read, an impossible date or a weekday that is not the
    date's raise TaskError."""
    for pattern, order in _NUMERIC:
        match = pattern.fullmatch(text.strip())
        if match:
            parts = dict(zip(order, map(int, match.groups())))
            return _date(text, parts["y"], parts["m"], parts["d"])
    words = re.findall(r"[^\W\d_]+|\d+", text.lower())
    months = [_MONTH_INDEX[w] + 1 for w in words if w in _MONTH_INDEX]
    weekdays = [_WEEKDAY_INDEX[w] for w in words if w in _WEEKDAY_INDEX]
    numbers = [w for w in words if w.isdigit()]
    unknown = [w for w in words if not (w.isdigit() or w in _FILLERS or w in _MONTH_INDEX
                                        or w in _WEEKDAY_INDEX)]
    years = [int(n) for n in numbers if len(n) == 4]
    days = [int(n) for n in numbers if len(n) <= 2]
    if unknown or len(months) != 1 or len(years) != 1 or len(days) != 1 or len(weekdays) > 1:
        raise TaskError(f"not a date in a known format: {text!r}; accepted formats: "
                        + "; ".join(f(datetime.date(2024, 3, 5)) for f in DATE_FORMATS.values()))
    date = _date(text, years[0], months[0], days[0])
    if weekdays and weekdays[0] != date.weekday():
        raise TaskError(f"{text!r}: {date.isoformat()} is a {WEEKDAYS['en'][date.weekday()]}, "
                        f"not a {WEEKDAYS['en'][weekdays[0]]}")
    return date


def _date(text: str, year: int, month: int, day: int) -> datetime.date:
    try:
        return datetime.date(year, month, day)
    except ValueError as exc:
        raise TaskError(f"{text!r} is not a real date ({exc})") from None


# ---------------------------------------------------------------------- the dates drawn


@lru_cache(maxsize=1)
def date_splits() -> tuple[tuple[tuple[str, str, str], ...], ...]:
    """The (train, validation, test) examples of the ``dates`` task, each a tuple
    (source, ISO date, format name); see the module docstring."""
    rng = np.random.default_rng(SEED)
    span = (LAST_DATE - FIRST_DATE).days + 1
    offsets = rng.choice(span, size=sum(SPLIT_SIZES.values()), replace=False).tolist()
    names = list(DATE_FORMATS)
    splits, start = [], 0
    for n in SPLIT_SIZES.values():
        formats = rng.permutation(np.arange(n) % len(names)).tolist()   # balanced, shuffled
        examples = []
        for offset, f in zip(offsets[start:start + n], formats):
            date = FIRST_DATE + datetime.timedelta(days=offset)
            examples.append((DATE_FORMATS[names[f]](date), date.isoformat(), names[f]))
        splits.append(tuple(examples))
        start += n
    return tuple(splits)
