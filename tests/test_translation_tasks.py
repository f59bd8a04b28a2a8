"""Tests for the translation tasks: SCAN, numbers between English and Chinese, dates into ISO
8601, task files (tsv:FILE), and the loader's names and errors."""

import datetime
import doctest
import hashlib
import json
import os
import random
import re
import subprocess
import sys
from collections import Counter
from pathlib import Path

import pytest

import tinyllm.tasks as tasks_pkg
from tinyllm.tasks import (
    TRANSLATION_TASKS,
    Pair,
    TaskError,
    TranslationTask,
    dates,
    list_translation_tasks,
    load_translation_task,
    numbers,
    scan,
    translation,
)
from tinyllm.tasks.dates import DATE_FORMATS, WEEKDAYS, format_date, read_date
from tinyllm.tasks.numbers import from_chinese, from_english, to_chinese, to_english

REPO = Path(__file__).resolve().parents[1]
SPLITS = ("train", "validation", "test")


def _actions(*groups) -> str:
    """Space-joined actions from groups ``names, repeat, names, repeat, ...``, e.g.
    ``("L", "JUMP"), 4`` is I_TURN_LEFT I_JUMP four times."""
    names = {"L": "I_TURN_LEFT", "R": "I_TURN_RIGHT"}
    out = []
    for seq, times in zip(groups[::2], groups[1::2]):
        out += [names.get(a, f"I_{a}") for a in seq] * times
    return " ".join(out)


def _assert_disjoint_sources(task):
    sets = {s: set(task.sources(s)) for s in SPLITS}
    assert not sets["train"] & sets["test"]
    assert not sets["train"] & sets["validation"]
    assert not sets["validation"] & sets["test"]


def test_docstring_examples_hold():
    for module in (tasks_pkg, translation, scan, numbers, dates):
        result = doctest.testmod(module)
        assert result.failed == 0 and result.attempted > 0, module.__name__


# ---------------------------------------------------------------------- names and errors


def test_list_translation_tasks_and_names():
    listed = list_translation_tasks()
    assert list(listed) == ["scan:simple", "scan:length", "scan:addprim-jump", "numbers-en-zh",
                            "numbers-zh-en", "dates", "tsv:FILE"]
    assert TRANSLATION_TASKS == tuple(listed)[:-1]
    assert all(isinstance(d, str) and d for d in listed.values())
    for name in TRANSLATION_TASKS:
        task = load_translation_task(name)
        assert isinstance(task, TranslationTask) and task.name == name
        assert task.description == listed[name]
        assert all(isinstance(p, Pair) for s in SPLITS for p in task.split(s))
        assert all(p.source and p.target for s in SPLITS for p in task.split(s))


def test_bare_scan_is_the_simple_split():
    bare, simple = load_translation_task("scan"), load_translation_task("scan:simple")
    assert bare.name == "scan:simple"
    assert [bare.split(s) for s in SPLITS] == [simple.split(s) for s in SPLITS]


def test_task_error_is_a_value_error():
    assert issubclass(TaskError, ValueError)


@pytest.mark.parametrize("spec", ["wmt14", "numbers", "numbers-en-fr", "tsv:", "dates:fr",
                                  "csv:pairs.csv"])
def test_unknown_task_lists_the_accepted_ones(spec):
    message = (rf"unknown translation task {re.escape(repr(spec))}; accepted: scan:simple, "
               r"scan:length, scan:addprim-jump, numbers-en-zh, numbers-zh-en, dates, tsv:FILE")
    with pytest.raises(TaskError, match=message):
        load_translation_task(spec)


def test_unknown_scan_split_is_named():
    with pytest.raises(TaskError, match=r"^unknown SCAN split 'foo'; accepted: simple, length, "
                                        r"addprim-jump$"):
        load_translation_task("scan:foo")
    with pytest.raises(TaskError, match=r"unknown SCAN split ''"):
        load_translation_task("scan:")


def test_a_spec_must_be_a_string():
    with pytest.raises(TaskError, match=r"expects a task name or tsv:FILE string, got \w*Path"):
        load_translation_task(Path("pairs.tsv"))


def test_split_by_name_and_unknown_split():
    task = load_translation_task("dates")
    assert task.split("test") is task.test
    assert task.sizes == {"train": 8000, "validation": 1000, "test": 1000}
    assert task.sources("validation")[0] == task.validation[0].source
    assert task.targets("validation")[0] == task.validation[0].target
    with pytest.raises(TaskError, match=r"unknown split 'dev'; accepted: train, validation, "
                                        r"test"):
        task.split("dev")


def test_subsample_train_keeps_the_task():
    task = load_translation_task("numbers-zh-en")
    small = task.subsample_train(100, seed=1)
    assert isinstance(small, TranslationTask) and len(small.train) == 100
    assert set(small.train) <= set(task.train) and small.test == task.test
    assert small.bleu_tokenize == task.bleu_tokenize


def test_describe_names_the_sizes():
    text = load_translation_task("scan:length").describe()
    assert "16140 train, 850 validation, 3920 test" in text
    assert "longest target" in text


def test_bleu_tokenize_suits_the_targets():
    expected = {"scan:simple": "none", "scan:length": "none", "scan:addprim-jump": "none",
                "numbers-en-zh": "zh", "numbers-zh-en": "13a", "dates": "13a"}
    assert {n: load_translation_task(n).bleu_tokenize for n in TRANSLATION_TASKS} == expected


def test_bleu_tokenizers_are_sacrebleus_and_13a_would_cut_scan_actions():
    sacrebleu = pytest.importorskip("sacrebleu")
    from sacrebleu.tokenizers.tokenizer_13a import Tokenizer13a
    for name in TRANSLATION_TASKS:
        task = load_translation_task(name)
        bleu = sacrebleu.BLEU(tokenize=task.bleu_tokenize)
        refs = task.targets("test")[:50]
        assert bleu.corpus_score(refs, [refs]).score == pytest.approx(100.0)
    assert Tokenizer13a()("I_TURN_LEFT I_JUMP") != "I_TURN_LEFT I_JUMP"


def test_built_in_tasks_are_the_same_in_a_fresh_process():
    """Nothing depends on the process (hash seeds, set order): a digest of every built-in task
    computed in a subprocess with another hash seed equals this process's."""
    code = ("import hashlib, json; from tinyllm.tasks import load_translation_task as load, "
            "TRANSLATION_TASKS as names; print(json.dumps({n: hashlib.sha256(repr([load(n)"
            ".split(s) for s in ('train', 'validation', 'test')]).encode()).hexdigest() "
            "for n in names}))")
    env = {**os.environ, "PYTHONHASHSEED": "12345"}
    out = subprocess.run([sys.executable, "-c", code], cwd=REPO, env=env, capture_output=True,
                         text=True, check=True).stdout
    here = {n: hashlib.sha256(repr([load_translation_task(n).split(s) for s in SPLITS])
                              .encode()).hexdigest() for n in TRANSLATION_TASKS}
    assert json.loads(out) == here


# ---------------------------------------------------------------------- SCAN


def test_scan_grammar_counts():
    commands = scan.scan_commands()
    assert len(commands) == 20_910 == len(set(commands))
    assert len(scan._verb_phrases()) == 34
    lengths = [len(actions.split()) for _, actions in scan.scan_pairs()]
    assert max(lengths) == 48 and min(lengths) == 1
    longest = {c for c, a in scan.scan_pairs() if len(a.split()) == 48}
    assert "look around left thrice and walk around right thrice" in longest
    assert all(" around " in c and c.count("thrice") == 2 for c in longest)
    assert 23 not in lengths   # so "at most 22" and "longer than 22" meet at 22/24


@pytest.mark.parametrize("command, actions", [
    ("jump", _actions(("JUMP",), 1)),
    ("turn left", _actions(("L",), 1)),
    ("walk right", _actions(("R", "WALK"), 1)),
    ("run opposite left", _actions(("L", "L", "RUN"), 1)),
    ("turn opposite right", _actions(("R", "R"), 1)),
    ("turn around left", _actions(("L",), 4)),
    ("jump around right", _actions(("R", "JUMP"), 4)),
    ("look twice", _actions(("LOOK",), 2)),
    ("turn right thrice", _actions(("R",), 3)),
    ("walk and run left", _actions(("WALK", "L", "RUN"), 1)),
    ("walk after run left", _actions(("L", "RUN", "WALK"), 1)),
    ("look opposite left twice and jump", _actions(("L", "L", "LOOK"), 2, ("JUMP",), 1)),
    ("jump around left twice after walk opposite right thrice",
     _actions(("R", "R", "WALK"), 3, ("L", "JUMP"), 8)),
    ("turn around right thrice after look around left",
     _actions(("L", "LOOK"), 4, ("R",), 12)),
    ("run around left thrice and walk around right thrice",
     _actions(("L", "RUN"), 12, ("R", "WALK"), 12)),
])
def test_scan_interpretation_by_hand(command, actions):
    assert scan.interpret(command) == actions
    assert command in set(scan.scan_commands())


@pytest.mark.parametrize("command", ["", "turn", "walk twice twice", "walk and", "fly left",
                                     "walk around", "walk left left", "jump and walk and run",
                                     "walk around up", "twice"])
def test_commands_outside_the_grammar_are_refused(command):
    with pytest.raises(TaskError, match=r"not a SCAN command"):
        scan.interpret(command)


@pytest.mark.parametrize("split, paper_train, paper_test, validation", [
    ("simple", 16_728, 4_182, 836), ("length", 16_990, 3_920, 850),
    ("addprim-jump", 14_670, 7_706, 734)])
def test_scan_split_sizes_are_the_papers(split, paper_train, paper_test, validation):
    task = load_translation_task(f"scan:{split}")
    assert len(task.train) + len(task.validation) == paper_train
    assert len(task.test) == paper_test
    assert len(task.validation) == validation == round(0.05 * paper_train + 1e-9)
    assert task.metadata["paper_sizes"] == (paper_train, paper_test)
    _assert_disjoint_sources(task)
    for s in SPLITS:   # every pair is the grammar's
        assert all(scan.interpret(p.source) == p.target for p in task.split(s))


@pytest.mark.parametrize("split", ["simple", "length"])
def test_scan_splits_partition_the_commands(split):
    task = load_translation_task(f"scan:{split}")
    sources = [c for s in SPLITS for c in task.sources(s)]
    assert sorted(sources) == sorted(scan.scan_commands())


def test_scan_simple_test_is_a_random_fifth():
    test = load_translation_task("scan:simple").test
    lengths = Counter(len(p.target.split()) <= 22 for p in test)
    # Unlike the length split, short and long commands are both held out, near their shares
    # of the whole set (16,990 and 3,920 of 20,910).
    assert abs(lengths[True] / len(test) - 16_990 / 20_910) < 0.03


def test_scan_length_split_cuts_at_22_actions():
    task = load_translation_task("scan:length")
    assert max(len(p.target.split()) for s in ("train", "validation") for p in task.split(s)) == 22
    assert min(len(p.target.split()) for p in task.test) == 24
    assert max(len(p.target.split()) for p in task.test) == 48


def test_scan_addprim_jump_split():
    task = load_translation_task("scan:addprim-jump")
    train_commands = Counter(task.sources("train"))
    assert train_commands["jump"] == 1467 == 13_203 // 9
    assert train_commands["jump"] * 10 == len(task.train) + len(task.validation)
    others = [c for c in train_commands if c != "jump"]
    assert len(others) + len(task.validation) == 13_203
    assert all("jump" not in c.split() for c in others + task.sources("validation"))
    assert all("jump" in c.split() and c != "jump" for c in task.sources("test"))
    with_jump = [c for c in scan.scan_commands() if "jump" in c.split()]
    assert sorted(task.sources("test")) == sorted(c for c in with_jump if c != "jump")


@pytest.mark.parametrize("split", list(scan.SCAN_SPLITS))
def test_scan_splits_are_deterministic(split):
    again = scan.scan_split.__wrapped__(split)   # recomputed, not the cached copy
    assert again == scan.scan_split(split)
    task = load_translation_task(f"scan:{split}")
    assert [list(map(tuple, map(lambda p: (p.source, p.target), task.split(s))))
            for s in SPLITS] == [list(part) for part in again]


# ---------------------------------------------------------------------- numbers

NUMBER_CASES = [
    (0, "零", "zero"),
    (7, "七", "seven"),
    (10, "十", "ten"),
    (15, "十五", "fifteen"),
    (20, "二十", "twenty"),
    (21, "二十一", "twenty-one"),
    (99, "九十九", "ninety-nine"),
    (100, "一百", "one hundred"),
    (101, "一百零一", "one hundred and one"),
    (110, "一百一十", "one hundred and ten"),
    (121, "一百二十一", "one hundred and twenty-one"),
    (200, "二百", "two hundred"),
    (1000, "一千", "one thousand"),
    (1005, "一千零五", "one thousand and five"),
    (1010, "一千零一十", "one thousand and ten"),
    (1234, "一千二百三十四", "one thousand, two hundred and thirty-four"),
    (3005, "三千零五", "three thousand and five"),
    (10_000, "一万", "ten thousand"),
    (10_010, "一万零一十", "ten thousand and ten"),
    (10_100, "一万零一百", "ten thousand, one hundred"),
    (15_000, "一万五千", "fifteen thousand"),
    (100_000, "十万", "one hundred thousand"),
    (100_003, "十万零三", "one hundred thousand and three"),
    (101_000, "十万一千", "one hundred and one thousand"),
    (110_000, "十一万", "one hundred and ten thousand"),
    (1_000_000, "一百万", "one million"),
    (2_000_100, "二百万零一百", "two million, one hundred"),
    (10_000_000, "一千万", "ten million"),
    (100_000_000, "一亿", "one hundred million"),
    (100_000_003, "一亿零三", "one hundred million and three"),
    (100_001_000, "一亿零一千", "one hundred million, one thousand"),
    (100_100_000, "一亿零一十万", "one hundred million, one hundred thousand"),
    (100_500_000, "一亿零五十万", "one hundred million, five hundred thousand"),
    (105_000_300, "一亿零五百万零三百", "one hundred and five million, three hundred"),
    (123_456_789, "一亿二千三百四十五万六千七百八十九",
     "one hundred and twenty-three million, four hundred and fifty-six thousand, "
     "seven hundred and eighty-nine"),
    (1_000_000_000, "十亿", "one billion"),
    (1_100_000_000, "十一亿", "one billion, one hundred million"),
    (2_000_000_001, "二十亿零一", "two billion and one"),
    (999_999_999_999, "九千九百九十九亿九千九百九十九万九千九百九十九",
     "nine hundred and ninety-nine billion, nine hundred and ninety-nine million, "
     "nine hundred and ninety-nine thousand, nine hundred and ninety-nine"),
]


@pytest.mark.parametrize("n, chinese, english", NUMBER_CASES)
def test_numbers_by_hand(n, chinese, english):
    assert to_chinese(n) == chinese
    assert to_english(n) == english
    assert from_chinese(chinese) == n
    assert from_english(english) == n


def _reference_chinese(n: int) -> str:
    """The same rules by rewriting a digit-by-digit reading (a different route): read every
    digit with its unit (a zero as 零), then fold runs of 零, drop 零 before 万 and 亿 and at
    the end, and drop the 一 of a leading 一十."""
    digits, units = "零一二三四五六七八九", ["", "十", "百", "千"]
    text = ""
    s = str(n)
    for i, c in enumerate(s):
        place = len(s) - 1 - i
        text += digits[int(c)] + units[place % 4] if c != "0" else "零"
        text += {4: "万", 8: "亿"}.get(place, "")
    text = re.sub("零+", "零", text).replace("亿零万", "亿零")
    text = re.sub("零+", "零", text).replace("零万", "万").replace("零亿", "亿")
    text = text.rstrip("零") or "零"
    return text[1:] if text.startswith("一十") else text


def test_chinese_agrees_with_a_second_formulation_of_the_rules():
    rng = random.Random(0)
    sample = list(range(0, 120_000)) + [rng.randrange(10 ** rng.randrange(5, 13))
                                        for _ in range(50_000)]
    # Numbers with many zeros, where the rules differ most.
    sample += [int("".join(rng.choice("0001") for _ in range(11)), 2) for _ in range(2000)]
    sample += [int("1" + "".join(rng.choice("00005") for _ in range(k)))
               for k in range(1, 12) for _ in range(300)]
    for n in sample:
        assert to_chinese(n) == _reference_chinese(n), n


def test_chinese_forms_follow_the_rules():
    for n in numbers.sample_numbers(3000, seed=5):
        zh = to_chinese(n)
        assert "零零" not in zh and (n == 0 or not zh.endswith("零"))
        assert not zh.startswith("一十") and "两" not in zh
        assert not re.search("零[万亿]", zh)


def test_english_forms_follow_the_rules():
    for n in filter(None, numbers.sample_numbers(3000, seed=6)):   # 0 is "zero"
        en = to_english(n)
        groups = [int(g) for g in f"{n:,}".split(",")]
        last_small = len(groups) > 1 and 0 < groups[-1] < 100
        assert en.count(",") == sum(g > 0 for g in groups) - 1 - last_small
        assert en.count(" and ") == sum(g % 100 > 0 and g >= 100 for g in groups) + last_small
        assert re.fullmatch(r"[a-z ,-]+", en) and "  " not in en


def test_parsers_read_variants():
    assert from_chinese("两千") == 2000 and from_chinese("两亿两万") == 200_020_000
    assert from_chinese("一十五") == 15
    assert from_english("one thousand two hundred thirty-four") == 1234
    assert from_english("twenty one") == 21


@pytest.mark.parametrize("text", ["", "一二", "万", "五x", "一百二千", "一万二万", "一亿二亿",
                                  "一万一亿", "五零三", "百"])
def test_chinese_parser_refuses_malformed_numbers(text):
    with pytest.raises(TaskError, match=r"not a Chinese number"):
        from_chinese(text)


@pytest.mark.parametrize("text", ["", "eleventy", "one thousand one million",
                                  "seven hundred hundred", "million", "twelve hundred",
                                  "one thousand one thousand"])
def test_english_parser_refuses_malformed_numbers(text):
    with pytest.raises(TaskError, match=r"not an English number"):
        from_english(text)


@pytest.mark.parametrize("n", [-1, 10**12, 1.5, True, "7"])
def test_numbers_out_of_range_are_refused(n):
    with pytest.raises(ValueError, match=r"numbers: "):
        to_chinese(n)
    with pytest.raises(ValueError, match=r"numbers: "):
        to_english(n)


def test_number_tasks_share_disjoint_numbers_and_round_trip():
    en_zh, zh_en = load_translation_task("numbers-en-zh"), load_translation_task("numbers-zh-en")
    assert en_zh.sizes == zh_en.sizes == {"train": 8000, "validation": 1000, "test": 1000}
    values = {}
    for s in SPLITS:
        assert [(p.target, p.source) for p in zh_en.split(s)] == \
               [(p.source, p.target) for p in en_zh.split(s)]
        values[s] = []
        for pair in en_zh.split(s):   # every generated pair, read back from both languages
            n = from_english(pair.source)
            assert from_chinese(pair.target) == n
            assert to_english(n) == pair.source and to_chinese(n) == pair.target
            values[s].append(n)
        assert len(set(values[s])) == len(values[s])
    assert list(map(tuple, values.values())) == list(numbers.number_splits())
    assert not set(values["train"]) & set(values["test"])
    assert not set(values["train"]) & set(values["validation"])
    assert not set(values["validation"]) & set(values["test"])


def test_numbers_are_spread_over_magnitudes_with_zeros():
    everything = [n for part in numbers.number_splits() for n in part]
    assert set(range(100)) <= set(everything)
    lengths = Counter(len(str(n)) for n in everything)
    assert all(lengths[k] >= 800 for k in range(4, 13))
    chinese = [to_chinese(n) for n in everything]
    share = {c: sum(c in z for z in chinese) / len(chinese) for c in "零万亿"}
    assert share["零"] > 0.6 and share["万"] > 0.7 and share["亿"] > 0.35
    assert max(everything) <= numbers.MAX_NUMBER


def test_number_sampling_is_deterministic():
    assert numbers.sample_numbers(500, seed=3) == numbers.sample_numbers(500, seed=3)
    assert numbers.sample_numbers(500, seed=3) != numbers.sample_numbers(500, seed=4)
    assert numbers.number_splits.__wrapped__() == numbers.number_splits()
    assert numbers.written_splits.__wrapped__() == numbers.written_splits()
    with pytest.raises(TaskError, match=r"unknown direction 'en' -> 'fr'"):
        translation.numbers_task("en", "fr")


# ---------------------------------------------------------------------- dates

TUESDAY = datetime.date(2024, 3, 5)


@pytest.mark.parametrize("fmt, date, text", [
    ("en-mdy", TUESDAY, "March 5, 2024"),
    ("en-dmy", TUESDAY, "5 March 2024"),
    ("en-weekday", TUESDAY, "Tuesday, 5 March 2024"),
    ("en-ordinal", TUESDAY, "5th of March, 2024"),
    ("en-abbr", TUESDAY, "Mar 5 2024"),
    ("us-numeric", TUESDAY, "3/5/2024"),
    ("eu-numeric", TUESDAY, "5.3.2024"),
    ("ymd-slash", TUESDAY, "2024/03/05"),
    ("fr", TUESDAY, "5 mars 2024"),
    ("fr-weekday", TUESDAY, "mardi 5 mars 2024"),
    ("de", TUESDAY, "5. März 2024"),
    ("de-weekday", TUESDAY, "Dienstag, 5. März 2024"),
    ("es", TUESDAY, "5 de marzo de 2024"),
    ("es-weekday", TUESDAY, "martes, 5 de marzo de 2024"),
    ("en-weekday", datetime.date(1900, 1, 1), "Monday, 1 January 1900"),
    ("en-ordinal", datetime.date(1900, 1, 1), "1st of January, 1900"),
    ("en-ordinal", datetime.date(1999, 12, 2), "2nd of December, 1999"),
    ("en-ordinal", datetime.date(2000, 2, 3), "3rd of February, 2000"),
    ("en-ordinal", datetime.date(2001, 7, 11), "11th of July, 2001"),
    ("en-ordinal", datetime.date(2001, 7, 12), "12th of July, 2001"),
    ("en-ordinal", datetime.date(2001, 7, 13), "13th of July, 2001"),
    ("en-ordinal", datetime.date(2001, 7, 21), "21st of July, 2001"),
    ("en-ordinal", datetime.date(2001, 7, 22), "22nd of July, 2001"),
    ("en-ordinal", datetime.date(2001, 7, 23), "23rd of July, 2001"),
    ("en-ordinal", datetime.date(2001, 7, 31), "31st of July, 2001"),
    ("en-abbr", datetime.date(2015, 9, 30), "Sep 30 2015"),
    ("us-numeric", datetime.date(2015, 12, 1), "12/1/2015"),
    ("eu-numeric", datetime.date(2015, 12, 1), "1.12.2015"),
    ("ymd-slash", datetime.date(2015, 12, 1), "2015/12/01"),
    ("fr", datetime.date(1968, 8, 1), "1er août 1968"),
    ("fr-weekday", datetime.date(2099, 12, 31), "jeudi 31 décembre 2099"),
    ("de-weekday", datetime.date(1989, 11, 9), "Donnerstag, 9. November 1989"),
    ("de", datetime.date(1990, 10, 3), "3. Oktober 1990"),
    ("es-weekday", datetime.date(2000, 1, 1), "sábado, 1 de enero de 2000"),
    ("es-weekday", datetime.date(2020, 2, 26), "miércoles, 26 de febrero de 2020"),
])
def test_date_formats_by_hand(fmt, date, text):
    assert format_date(date, fmt) == text
    assert read_date(text) == date


def test_unknown_date_format_is_named():
    with pytest.raises(TaskError, match=r"unknown date format 'iso'; accepted: en-mdy, "):
        format_date(TUESDAY, "iso")


@pytest.mark.parametrize("text, message", [
    ("Monday, 5 March 2024", r"2024-03-05 is a Tuesday, not a Monday"),
    ("31.2.2024", r"not a real date"),
    ("2/30/2023", r"not a real date"),
    ("5 Marchember 2024", r"not a date in a known format"),
    ("5 March", r"not a date in a known format"),
    ("March 2024", r"not a date in a known format"),
])
def test_read_date_refuses_what_it_cannot_read(text, message):
    with pytest.raises(TaskError, match=message):
        read_date(text)


def test_no_name_means_two_months_or_weekdays():
    names = Counter()
    for table in (*dates.MONTHS.values(), dates.MONTH_ABBREVIATIONS):
        for i, name in enumerate(table):
            names[name.lower(), i] += 1
    by_name = Counter(name for name, _ in names)
    assert all(count == 1 for count in by_name.values())
    assert len(dates._MONTH_INDEX) == len(by_name)


def test_dates_task_sizes_disjoint_and_read_back():
    task = load_translation_task("dates")
    assert task.sizes == {"train": 8000, "validation": 1000, "test": 1000}
    _assert_disjoint_sources(task)
    targets = {s: set(task.targets(s)) for s in SPLITS}
    assert sum(map(len, targets.values())) == 10_000   # no date twice, in or across splits
    for s in SPLITS:
        for pair in task.split(s):   # every source names its target by the rules alone
            assert read_date(pair.source).isoformat() == pair.target
            assert re.fullmatch(r"(19|20)\d\d-\d\d-\d\d", pair.target)


def test_dates_formats_are_balanced_per_split():
    task = load_translation_task("dates")
    for s in SPLITS:
        formats = task.metadata["formats"][s]
        assert len(formats) == len(task.split(s))
        counts = Counter(formats)
        assert set(counts) == set(DATE_FORMATS)
        assert max(counts.values()) - min(counts.values()) <= 1
        for pair, fmt in zip(task.split(s), formats):
            assert format_date(datetime.date.fromisoformat(pair.target), fmt) == pair.source


def test_weekdays_are_the_dates_own():
    task = load_translation_task("dates")
    languages = {"en-weekday": "en", "fr-weekday": "fr", "de-weekday": "de",
                 "es-weekday": "es"}
    seen = Counter()
    for s in SPLITS:
        for pair, fmt in zip(task.split(s), task.metadata["formats"][s]):
            if fmt in languages:
                date = datetime.date.fromisoformat(pair.target)
                word = re.match(r"\w+", pair.source).group()
                assert word == WEEKDAYS[languages[fmt]][date.weekday()]
                if fmt == "en-weekday":
                    assert word == date.strftime("%A")
                seen[fmt] += 1
    assert all(seen[f] > 500 for f in languages)


def test_dates_span_the_years_and_are_deterministic():
    years = [int(t[:4]) for part in dates.date_splits() for _, t, _ in part]
    assert min(years) == 1900 and max(years) == 2099
    assert Counter(y // 100 for y in years)[19] > 4000
    assert dates.date_splits.__wrapped__() == dates.date_splits()


# ---------------------------------------------------------------------- tsv:FILE


def _write(tmp_path, text, name="pairs.tsv", encoding="utf-8"):
    path = tmp_path / name
    path.write_bytes(text.encode(encoding) if isinstance(text, str) else text)
    return path


def test_tsv_task_reads_and_splits(tmp_path):
    lines = [f"source {i}\ttarget {i}" for i in range(40)]
    lines[3] = "  padded source \t padded target  "
    text = "\n".join(lines[:20]) + "\n\n   \n" + "\r\n".join(lines[20:]) + "\n"
    path = _write(tmp_path, text)
    task = load_translation_task(f"tsv:{path}")
    assert task.name == f"tsv:{path}" and task.bleu_tokenize == "13a"
    assert task.sizes == {"train": 32, "validation": 4, "test": 4}
    assert Pair("padded source", "padded target") in {p for s in SPLITS for p in task.split(s)}
    _assert_disjoint_sources(task)
    for s in SPLITS:   # the file's order within each split
        numbers_seen = [int(p.source.split()[-1]) for p in task.split(s)
                        if p.source.startswith("source")]
        assert numbers_seen == sorted(numbers_seen)
    again = translation.tsv_task(path)
    assert [again.split(s) for s in SPLITS] == [task.split(s) for s in SPLITS]
    other = translation.tsv_task(path, seed=1)
    assert other.sizes == task.sizes and other.test != task.test


def test_tsv_repeated_sources_stay_in_one_split(tmp_path):
    lines = [f"s{i % 10}\tt{i}" for i in range(30)]   # each source translated three ways
    task = translation.tsv_task(_write(tmp_path, "\n".join(lines)))
    _assert_disjoint_sources(task)
    assert task.sizes == {"train": 24, "validation": 3, "test": 3}


def test_tsv_smallest_file_gives_one_pair_per_split(tmp_path):
    task = translation.tsv_task(_write(tmp_path, "a\tA\nb\tB\nc\tC\n"))
    assert task.sizes == {"train": 1, "validation": 1, "test": 1}


def test_tsv_chinese_targets_use_the_zh_tokenizer(tmp_path):
    lines = [f"{to_english(n)}\t{to_chinese(n)}" for n in range(1, 11)]
    assert translation.tsv_task(_write(tmp_path, "\n".join(lines))).bleu_tokenize == "zh"


@pytest.mark.parametrize("text, message", [
    ("a\tA\nb B\nc\tC\n", r"pairs\.tsv:2: no tab between source and target"),
    ("a\tA\nb\tB\n\nc\tC\td\n", r"pairs\.tsv:4: 2 tabs"),
    ("a\tA\n\tB\nc\tC\n", r"pairs\.tsv:2: empty source"),
    ("a\tA\nb\t  \nc\tC\n", r"pairs\.tsv:2: empty target"),
    ("a\tA\nb\tB\n\n\n", r"pairs\.tsv: too few pairs to split: 2 pairs with 2 distinct "
                         r"sources; accepted: at least 3"),
    ("a\tA\na\tB\nb\tC\n", r"pairs\.tsv: too few pairs to split: 3 pairs with 2 distinct"),
    ("", r"pairs\.tsv' is empty"),
    ("\n  \n", r"pairs\.tsv' is empty"),
    (b"a\tA\nb\tB\nc\t\xff\n", r"pairs\.tsv', line 3: byte 0xff at offset 10 is not UTF-8"),
])
def test_tsv_mistakes_name_the_file_and_line(tmp_path, text, message):
    path = _write(tmp_path, text)
    with pytest.raises(TaskError, match=message):
        load_translation_task(f"tsv:{path}")
    with pytest.raises(TaskError, match=re.escape(str(path.parent))):
        load_translation_task(f"tsv:{path}")


def test_tsv_missing_file_and_directory(tmp_path):
    with pytest.raises(TaskError, match=r"no task file at .*nowhere\.tsv"):
        load_translation_task(f"tsv:{tmp_path / 'nowhere.tsv'}")
    with pytest.raises(TaskError, match=r"is a directory"):
        load_translation_task(f"tsv:{tmp_path}")
