"""Tests for tinyllm.tasks: the built-in tasks, the task files, splits and label budgets."""

import doctest
import json
import math
import re
import subprocess
import sys
import sysconfig
from collections import Counter
from pathlib import Path

import numpy as np
import pytest

import tinyllm.tasks as tasks_pkg
from tinyllm.data import stdlib_files
from tinyllm.tasks import (
    ANSWER_SEPARATOR,
    ClassificationTask,
    Example,
    QAExample,
    TaskError,
    list_tasks,
    load_task,
    stratified_sample,
    stratified_split,
)
from tinyllm.tasks import babi as babi_mod
from tinyllm.tasks.markov import log_likelihood, sample_codes
from tinyllm.tasks.text import PYDOC_TOPIC_CLASSES, STDLIB_DOCSTRING_PACKAGES, training_text

REPO = Path(__file__).resolve().parents[1]
PY311 = sys.version_info[:2] == (3, 11)   # the Python whose counts the docstrings state


def _keys(task, split):
    """What identifies an example, to compare splits and runs."""
    return [ex.text if isinstance(ex, Example) else (ex.context, ex.question)
            for ex in task.split(split)]


def _assert_disjoint(task):
    sets = {s: set(_keys(task, s)) for s in ("train", "validation", "test")}
    assert not sets["train"] & sets["validation"]
    assert not sets["train"] & sets["test"]
    assert not sets["validation"] & sets["test"]


# ---------------------------------------------------------------------- names and options


def test_list_tasks():
    assert list_tasks() == ["pydoc-topics", "stdlib-docstrings", "markov-source", "babi",
                            "babi1", "babi2", "babi3", "babi6", "babi7", "babi1-10k",
                            "babi2-10k", "babi3-10k", "babi6-10k", "babi7-10k",
                            "csv:FILE", "jsonl:FILE", "squad:FILE"]


@pytest.mark.parametrize("name", ["glue", "csv:", "parquet:data.parquet", "babi:1"])
def test_unknown_task_lists_the_accepted_ones(name):
    message = (rf"unknown task {re.escape(repr(name))}; accepted: pydoc-topics, "
               r"stdlib-docstrings, markov-source, babi, babi1, babi2, babi3, babi6, babi7, "
               r"babi1-10k, babi2-10k, babi3-10k, babi6-10k, babi7-10k, csv:FILE, jsonl:FILE, "
               r"squad:FILE")
    with pytest.raises(TaskError, match=message):
        load_task(name)


def test_unknown_options_are_named():
    with pytest.raises(TaskError, match=r"task 'babi' got unknown options \['tsak'\]; "
                                        r"accepted: task, size, seed"):
        load_task("babi", tsak=2)
    with pytest.raises(TaskError, match=r"got unknown options \['lenght'\]"):
        load_task("markov-source", lenght=3)


def test_docstring_examples_hold():
    for module in (tasks_pkg, tasks_pkg.base, tasks_pkg.babi, tasks_pkg.markov,
                   tasks_pkg.metrics):
        result = doctest.testmod(module)
        assert result.failed == 0 and result.attempted > 0, module.__name__


# ---------------------------------------------------------------------- pydoc-topics


@pytest.fixture(scope="module")
def pydoc_task():
    return load_task("pydoc-topics")


def test_pydoc_topics_labels_sizes_and_splits(pydoc_task):
    assert pydoc_task.labels == ["builtin-types", "data-model", "expressions", "statements"]
    assert pydoc_task.labels == sorted(PYDOC_TOPIC_CLASSES)
    total = Counter(ex.label for s in ("train", "validation", "test")
                    for ex in pydoc_task.split(s))
    if PY311:   # the counts the module docstring states
        assert total == {"builtin-types": 453, "data-model": 244, "expressions": 239,
                         "statements": 423}
    assert min(total.values()) >= 150
    for label, n in total.items():  # 80/10/10 per label
        assert pydoc_task.label_counts("test")[label] == int(n * 0.1 + 0.5)
        assert pydoc_task.label_counts("validation")[label] == int(n * 0.1 + 0.5)
    _assert_disjoint(pydoc_task)
    for ex in pydoc_task.train:
        assert len(ex.text.split()) >= 8 and len(ex.text) <= 1000 and "\n" not in ex.text


def test_pydoc_topics_passages_come_from_their_topics(pydoc_task):
    from pydoc_data.topics import topics
    flat = {lab: " ".join(" ".join(topics[t].split()) for t in names if t in topics)
            for lab, names in PYDOC_TOPIC_CLASSES.items()}
    for ex in pydoc_task.test:
        assert ex.text in flat[ex.label]


def test_pydoc_topics_seed_decides_the_split(pydoc_task):
    again = load_task("pydoc-topics", seed=0)
    other = load_task("pydoc-topics", seed=1)
    assert _keys(again, "test") == _keys(pydoc_task, "test")
    assert set(_keys(other, "test")) != set(_keys(pydoc_task, "test"))
    assert sorted(sum((_keys(other, s) for s in ("train", "validation", "test")), [])) == \
        sorted(sum((_keys(pydoc_task, s) for s in ("train", "validation", "test")), []))


# ---------------------------------------------------------------------- stdlib-docstrings


@pytest.fixture(scope="module")
def docstrings_task():
    return load_task("stdlib-docstrings")


def test_stdlib_docstrings_labels_and_sizes(docstrings_task):
    assert docstrings_task.labels == sorted(STDLIB_DOCSTRING_PACKAGES)
    assert len(docstrings_task.labels) == 9
    total = Counter(ex.label for s in ("train", "validation", "test")
                    for ex in docstrings_task.split(s))
    assert max(total.values()) == 300 and min(total.values()) >= 80
    if PY311:
        assert sum(total.values()) == 1991
        assert total["urllib"] == 108 and total["http"] == 143
    _assert_disjoint(docstrings_task)
    for ex in docstrings_task.train:
        assert ex.text == ex.text.strip() and len(ex.text.split()) >= 3


def test_stdlib_docstrings_are_real(docstrings_task):
    """Each docstring's lines stand, indentation aside, in its package's source."""
    root = Path(sysconfig.get_paths()["stdlib"])
    source = {pkg: "\n".join(p.read_text(encoding="utf-8", errors="replace")
                             for p in stdlib_files(root / pkg))
              for pkg in docstrings_task.labels}
    for ex in docstrings_task.test:
        for line in ex.text.splitlines():
            assert line.strip() in source[ex.label], (ex.label, line)


def test_stdlib_docstrings_options_and_seed(docstrings_task):
    full = load_task("stdlib-docstrings", max_per_class=None)
    counts = Counter(ex.label for s in ("train", "validation", "test") for ex in full.split(s))
    assert max(counts.values()) > 300
    other = load_task("stdlib-docstrings", seed=1)
    assert set(_keys(other, "test")) != set(_keys(docstrings_task, "test"))
    assert _keys(load_task("stdlib-docstrings"), "test") == _keys(docstrings_task, "test")
    with pytest.raises(ValueError, match=r"stdlib-docstrings: max_per_class must be a positive "
                                         r"integer, got 0"):
        load_task("stdlib-docstrings", max_per_class=0)


def test_stdlib_docstrings_are_parsed_not_imported():
    code = ("import sys; from tinyllm.tasks import load_task; load_task('stdlib-docstrings'); "
            "print([m for m in ('asyncio', 'email.mime', 'http.server', 'multiprocessing.managers',"
            " 'unittest.mock', 'xml.dom.minidom') if m in sys.modules])")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         cwd=REPO, env={"PYTHONPATH": str(REPO)}, check=True)
    assert out.stdout.strip() == "[]"


def test_training_text_holds_every_training_text_and_nothing_held_out(pydoc_task,
                                                                       docstrings_task):
    """ULMFiT's second-stage text: each training text of both tasks once, unlabelled, not
    grouped by label; no validation or test text; the seed decides only the order."""
    text = training_text()
    train = [ex.text for t in (pydoc_task, docstrings_task) for ex in t.train]
    pieces = text.split("\n\n")
    assert all(ex in text for ex in train)
    assert len(text) == sum(len(t) + 2 for t in train)                 # nothing else in it
    held_out = [ex.text for t in (pydoc_task, docstrings_task) for s in ("validation", "test")
                for ex in t.split(s)]                    # (a few are parts of a training text)
    alone = [h for h in held_out if not any(h in t for t in train)]
    assert len(alone) > 0.9 * len(held_out) and not any(h in text for h in alone)
    label_of = {ex.text: ex.label for t in (pydoc_task, docstrings_task) for ex in t.train}
    first = {label_of[p] for p in pieces[:40] if p in label_of}
    assert len(first) > 5                                           # labels mixed, not grouped
    other = training_text(seed=1)
    assert other != text and sorted(other) == sorted(text)


# ---------------------------------------------------------------------- label budgets and splits


def test_subsample_train_is_stratified(pydoc_task):
    small = pydoc_task.subsample_train(4, seed=0)
    assert sorted(small.label_counts("train").values()) == [1, 1, 1, 1]
    assert small.test == pydoc_task.test and small.labels == pydoc_task.labels
    two = pydoc_task.subsample_train(2, seed=0)
    assert sorted(two.label_counts("train").values()) == [0, 0, 1, 1]
    hundred = pydoc_task.subsample_train(100, seed=3)
    counts = hundred.label_counts("train")
    assert sum(counts.values()) == 100
    full = pydoc_task.label_counts("train")
    for label in counts:   # proportional, within one of the exact share
        share = 1 + 96 * (full[label] - 1) / (len(pydoc_task.train) - 4)
        assert abs(counts[label] - share) <= 1
    assert hundred.train == pydoc_task.subsample_train(100, seed=3).train
    assert hundred.train != pydoc_task.subsample_train(100, seed=4).train
    assert set(hundred.train) <= set(pydoc_task.train)
    assert hundred.metadata["train_subsample"] == {"n": 100, "seed": 3,
                                                   "of": len(pydoc_task.train)}


@pytest.mark.parametrize("n", [0, -1, 10**6, 2.5, True])
def test_subsample_train_rejects_impossible_budgets(pydoc_task, n):
    with pytest.raises(ValueError, match=rf"n must be an integer in 1..{len(pydoc_task.train)} "
                                         rf"\(the training examples of 'pydoc-topics'\), got"):
        pydoc_task.subsample_train(n)


def test_stratified_helpers():
    labels = ["a"] * 50 + ["b"] * 7 + ["c"] * 2 + ["d"]
    train, val, test = stratified_split(labels, seed=0)
    assert sorted(train + val + test) == list(range(60))
    assert Counter(labels[i] for i in test) == {"a": 5, "b": 1}   # b: round(0.7) = 1
    assert Counter(labels[i] for i in train)["d"] == 1            # a lone example trains
    assert Counter(labels[i] for i in train)["c"] >= 1
    with pytest.raises(ValueError, match=r"validation \+ test must leave examples for training"):
        stratified_split(labels, seed=0, validation=0.5, test=0.5)
    picked = stratified_sample(labels, 6, seed=1)
    assert len(picked) == 6 and {labels[i] for i in picked} == {"a", "b", "c", "d"}
    assert stratified_sample(labels, 60, seed=1) == list(range(60))


def test_classification_task_checks_its_labels():
    with pytest.raises(TaskError, match=r"task 'toy': label 'maybe' appears in the test split "
                                        r"\(1 examples\) but never in training; accepted "
                                        r"labels: no, yes"):
        ClassificationTask("toy", ["no", "yes"], [Example("a", "no"), Example("b", "yes")], [],
                           [Example("c", "maybe")])
    with pytest.raises(TaskError, match=r"labels must be distinct; \['no'\] repeat"):
        ClassificationTask("toy", ["no", "no"], [], [], [])


# ---------------------------------------------------------------------- markov-source


@pytest.fixture(scope="module")
def markov_task():
    return load_task("markov-source", train=400)     # default validation and test: 1000


def _brute_force_log_likelihood(source, text):
    """log P(text) by a plain loop over characters: pi(first context) times each transition."""
    index = {ch: i for i, ch in enumerate(source.alphabet)}
    A, k = len(source.alphabet), source.order
    symbols = [index[ch] for ch in text]
    context = 0
    for x in symbols[:k]:
        context = context * A + x
    total = math.log(source.stationary()[context])
    for x in symbols[k:]:
        total += math.log(source.probs[context, x])
        context = (context * A + x) % A**k
    return total


def test_markov_bayes_accuracy_two_ways(markov_task):
    sources = markov_task.sources
    truth = markov_task.label_ids("test")
    brute = np.array([np.argmax([_brute_force_log_likelihood(s, ex.text) for s in sources])
                      for ex in markov_task.test])
    exact = markov_task.bayes_optimal_accuracy("test")
    assert np.array_equal(brute, markov_task.bayes_predictions("test"))
    assert exact == pytest.approx(np.mean(brute == truth))
    assert 0.80 <= exact <= 0.95                        # the documented range
    expected = markov_task.expected_bayes_accuracy(n=20_000, seed=5)
    assert 0.80 <= expected <= 0.95
    assert abs(expected - exact) < 4 * math.sqrt(exact * (1 - exact) / 1000) + 0.01


def test_markov_likelihood_matches_the_source(markov_task):
    source = markov_task.sources[0]
    texts = [ex.text for ex in markov_task.validation[:20]]
    ll = markov_task.log_likelihoods(texts)
    assert ll.shape == (20, 4)
    for text, row in zip(texts, ll):
        # MarkovSource.cross_entropy counts the transitions only, in bits per symbol.
        transitions = source.cross_entropy(text) * (len(text) - source.order) * math.log(2)
        first = math.log(source.stationary()[source.alphabet.index(text[0])])
        assert row[0] == pytest.approx(first - transitions)


def test_markov_sampler_follows_the_chain(markov_task):
    source = markov_task.sources[1]
    codes = sample_codes(source, 4000, 32, np.random.default_rng(0))
    bits = -log_likelihood(source, codes).mean() / math.log(2) / 32
    # per-symbol entropy of a stationary start plus 31 transitions, close to the rate
    assert bits == pytest.approx(source.entropy_rate(), abs=0.03)


def test_markov_task_layout_and_seeds(markov_task):
    assert markov_task.labels == ["source0", "source1", "source2", "source3"]
    assert markov_task.sizes == {"train": 400, "validation": 1000, "test": 1000}
    assert set(markov_task.label_counts("test").values()) == {250}
    assert all(len(ex.text) == 32 and set(ex.text) <= set("abcdefgh") for ex in markov_task.train)
    _assert_disjoint(markov_task)
    small = dict(train=40, validation=10, test=10)
    same = load_task("markov-source", **small)
    assert _keys(same, "train") == _keys(load_task("markov-source", **small), "train")
    assert _keys(same, "train") != _keys(load_task("markov-source", seed=1, **small), "train")
    assert markov_task.subsample_train(8).sources is markov_task.sources
    with pytest.raises(ValueError, match=r"sources must be at least 2"):
        load_task("markov-source", sources=1)
    with pytest.raises(ValueError, match=r"length must exceed order=2"):
        load_task("markov-source", order=2, length=2)


# ---------------------------------------------------------------------- babi


def _solve(story_lines, question):
    """An independent reading of a bAbI story: the answer the paper's rules give."""
    at, holder, trail = {}, {}, {}
    left = {}
    for line in story_lines:
        words = line.rstrip(".").split()
        person, rest = words[0], " ".join(words[1:])
        place_match = re.fullmatch(r"(?:moved|went|journeyed|travelled|went back) to the (\w+)",
                                   rest)
        if place_match:
            at[person] = place_match.group(1)
            for obj, who in holder.items():
                if who == person and trail[obj][-1] != at[person]:
                    trail[obj].append(at[person])
            continue
        verb, obj = " ".join(words[1:-2]), words[-1]
        if verb in babi_mod.GRAB_VERBS:
            holder[obj] = person
            left.pop(obj, None)
            trail.setdefault(obj, [])
            if not trail[obj] or trail[obj][-1] != at[person]:
                trail[obj].append(at[person])
        else:
            assert verb in babi_mod.DROP_VERBS and holder.pop(obj) == person
            left[obj] = at[person]
    if m := re.fullmatch(r"Where is (\w+)\?", question):
        return at[m.group(1)]
    if m := re.fullmatch(r"Where is the (\w+)\?", question):
        obj = m.group(1)
        return at[holder[obj]] if obj in holder else left[obj]
    if m := re.fullmatch(r"Where was the (\w+) before the (\w+)\?", question):
        path = trail[m.group(1)]
        assert path.count(m.group(2)) == 1
        return path[path.index(m.group(2)) - 1]
    if m := re.fullmatch(r"Is (\w+) in the (\w+)\?", question):
        return "yes" if at[m.group(1)] == m.group(2) else "no"
    m = re.fullmatch(r"How many objects is (\w+) carrying\?", question)
    return babi_mod.COUNT_WORDS[sum(1 for who in holder.values() if who == m.group(1))]


@pytest.mark.parametrize("number", [1, 2, 3, 6, 7])
def test_babi_task_by_number_is_the_same_task(number):
    named, general = load_task(f"babi{number}", seed=1), load_task("babi", task=number, seed=1)
    assert named.name == general.name == f"babi{number}-1k"
    assert [ex.question for ex in named.test] == [ex.question for ex in general.test]
    with pytest.raises(TaskError, match=r"unknown options \['task'\]; accepted: size, seed"):
        load_task(f"babi{number}", task=1)
    big = load_task(f"babi{number}-10k")
    assert big.name == f"babi{number}-10k" and big.sizes["train"] == 10_000


@pytest.mark.parametrize("number", [1, 2, 3, 6, 7])
def test_babi_answers_follow_the_rules_and_lie_in_the_context(number):
    task = load_task("babi", task=number, size="1k")
    assert task.sizes == {"train": 1000, "validation": 100, "test": 1000}
    assert task.name == f"babi{number}-1k"
    _assert_disjoint(task)
    low, high = babi_mod.STORY_LENGTHS[number]
    vocabulary_line = number in (6, 7)
    for split in ("train", "validation", "test"):
        for ex in task.split(split):
            start = ex.answer_start
            assert ex.context[start:start + len(ex.answer)] == ex.answer
            assert ex.answers == (ex.answer,)
            lines = ex.context.split("\n")
            if vocabulary_line:
                assert lines.pop() == babi_mod.ANSWER_VOCABULARY
                assert start > len(ex.context) - len(babi_mod.ANSWER_VOCABULARY) - 1
            else:   # the answer is the place named in a sentence of the story
                assert ex.context[start - 4:start] == "the "
                assert ex.answer in babi_mod.LOCATIONS
            assert low <= len(lines) <= high
            assert _solve(lines, ex.question) == ex.answer, (ex.context, ex.question)
    answers = Counter(ex.answer for ex in task.train)
    if number == 6:
        assert set(answers) == {"yes", "no"} and min(answers.values()) > 400
    if number == 7:
        assert set(answers) == {"none", "one", "two", "three"}
    if number in (1, 2, 3):
        assert set(answers) == set(babi_mod.LOCATIONS)


def test_babi_generative_form():
    task = load_task("babi", task=2)
    pairs = task.generative("validation")
    assert len(pairs) == 100
    for (prompt, answer), ex in zip(pairs, task.validation):
        assert prompt == f"{ex.context}\nQ: {ex.question}{ANSWER_SEPARATOR}"
        assert prompt.endswith("\nA: ") and answer == ex.answer


@pytest.mark.parametrize("number", [1, 2, 3])
def test_babi_statement_form_is_the_narrators_answer_to_the_question(number):
    """Asked as a statement, a question of tasks 1-3 is the narrator's sentence that answers
    it, cut before the answer: completed with the answer, `_statement` (the test's own reading
    of the narrator) gives back the question and the answer."""
    task = load_task("babi", task=number)
    pairs = task.generative("test", form="statement")
    for (prompt, answer), ex in zip(pairs, task.test):
        assert prompt == f"{ex.context}\n{ex.statement} " and answer == ex.answer
        assert _statement(f"{ex.statement} {ex.answer}.")[1:] == (ex.question, ex.answer)
    task.check_prompt_form("statement")


@pytest.mark.parametrize("number", [6, 7])
def test_yes_no_and_counting_questions_have_no_statement_form(number):
    task = load_task("babi", task=number)
    assert {ex.statement for ex in task.train} == {None}
    first = task.train[0].question
    with pytest.raises(TaskError, match=rf"task 'babi{number}-1k': 2100 question\(s\) have no "
                       rf"statement form \(the first: {re.escape(repr(first))}\)"):
        task.check_prompt_form("statement")
    with pytest.raises(TaskError, match="has no statement form; ask it with prompt form "
                       "'question'"):
        task.train[0].prompt("statement")
    with pytest.raises(ValueError, match="unknown prompt form 'cloze'; accepted: question, "
                       "statement"):
        task.check_prompt_form("cloze")


def test_babi_10k_shares_the_test_set_and_is_deterministic():
    small, big = load_task("babi", task=1, size="1k"), load_task("babi", task=1, size="10k")
    assert big.sizes == {"train": 10_000, "validation": 1000, "test": 1000}
    assert big.name == "babi1-10k"
    assert _keys(big, "test") == _keys(small, "test")
    _assert_disjoint(big)
    again = babi_mod._babi_task.__wrapped__(1, "1k", 0)     # bypass the cache: regenerate
    assert [(e.context, e.question, e.answer) for e in again.train] == \
        [(e.context, e.question, e.answer) for e in small.train]
    other = load_task("babi", task=1, seed=1)
    assert _keys(other, "test") != _keys(small, "test")


_STATEMENTS = ((r"(\w+) is in the (\w+)\.", "Where is {0}?"),
               (r"The (\w+) is in the (\w+)\.", "Where is the {0}?"),
               (r"Before the (\w+), the (\w+) was in the (\w+)\.",
                "Where was the {1} before the {0}?"))


def _statement(line):
    """(its kind, the question a narrator's statement answers, its answer), or None for an
    event."""
    for kind, (pattern, question) in enumerate(_STATEMENTS):
        if m := re.fullmatch(pattern, line):
            return kind, question.format(*m.groups()), m.groups()[-1]
    return None


def test_narrated_stories_state_only_what_is_true():
    """Every narrator's statement is the answer the rules give to its question (read by
    `_solve`, independently of the generator), each kind occurs, and the text is
    deterministic."""
    text = babi_mod.narrated_stories(300, seed=5)
    assert text == babi_mod.narrated_stories(300, seed=5) != babi_mod.narrated_stories(300)
    stories = text.rstrip("\n").split("\n\n")
    assert len(stories) == 300
    kinds = Counter()
    for story in stories:
        events = []
        for line in story.split("\n"):
            said = _statement(line)
            if said is None:
                events.append(line)
                continue
            kind, question, answer = said
            kinds[kind] += 1
            assert _solve(events, question) == answer, (story, line)
    assert len(kinds) == 3 and min(kinds.values()) > 100


@pytest.mark.parametrize("number", [1, 2])
def test_narrated_stories_of_a_task_have_its_length_and_events(number):
    """Stories of task 1's kind only move people; task 2's pick up and drop too; each has
    the task's number of events, and a narrator at rate 0 says nothing."""
    low, high = babi_mod.STORY_LENGTHS[number]
    quiet = babi_mod.narrated_stories(200, seed=1, narrate=0.0, task=number)
    lengths, objects = [], 0
    for story in quiet.rstrip("\n").split("\n\n"):
        lines = story.split("\n")
        assert not [line for line in lines if _statement(line)]
        lengths.append(len(lines))
        objects += sum(any(o in line for o in babi_mod.OBJECTS) for line in lines)
    assert min(lengths) == low and max(lengths) == high
    assert (objects > 0) == (number == 2)
    told = babi_mod.narrated_stories(200, seed=1, narrate=1.0, task=number)
    assert len(told.split("\n")) > len(quiet.split("\n")) + 200 * low


def test_narrated_stories_bad_options():
    with pytest.raises(ValueError, match="narrate must be a chance in \\[0, 1\\], got 1.5"):
        babi_mod.narrated_stories(1, narrate=1.5)
    with pytest.raises(ValueError, match="unknown bAbI task 6; accepted: 1, 2, 3"):
        babi_mod.narrated_stories(1, task=6)


def test_babi_pretraining_texts_hold_no_answer_and_no_held_out_question():
    """The study's "babi" text: fully narrated stories, then the unlabelled questions; its
    "babi-tasks" text (the second stage): stories of each of tasks 1-3 narrated at each rate,
    then the same questions. A question is a training question of tasks 1-3 with its story
    and without its answer; no validation or test question is in either text."""
    questions = babi_mod.unlabelled_questions(40)
    first = babi_mod.pretraining_text(stories=50, questions=40)
    assert first == babi_mod.narrated_stories(50, narrate=1.0) + "\n" + questions
    second = babi_mod.task_text(mixed=2, questions=40)
    assert second.endswith("\n" + questions)
    for number in (1, 2, 3):
        for rate in babi_mod.MIXED_RATES:
            assert babi_mod.narrated_stories(2, seed=1, narrate=rate, task=number) in second
    assert questions.count("\nA:\n") == 3 * 20 and "A: " not in first + second
    for number in (1, 2, 3):
        task = load_task(f"babi{number}-10k")
        for i, ex in enumerate(task.train[:40]):       # Q:/A: lines and bare, in turn
            form = f"Q: {ex.question}\nA:\n" if i % 2 == 0 else f"{ex.question}\n"
            assert f"{form}{ex.context}\n" in questions
        for ex in task.validation[:100] + task.test[:100]:    # (story, question) pairs
            for text in (first, second):
                assert f"{ex.question}\n{ex.context}\n" not in text
                assert f"{ex.question}\nA:\n{ex.context}\n" not in text
    with pytest.raises(ValueError, match="stories must be"):
        babi_mod.pretraining_text(stories=-1)
    with pytest.raises(ValueError, match="mixed must be"):
        babi_mod.task_text(mixed=-1)


def test_babi_bad_options():
    with pytest.raises(ValueError, match=r"babi: unknown bAbI task 4; accepted: 1, 2, 3, 6, 7"):
        load_task("babi", task=4)
    with pytest.raises(ValueError, match=r"babi: unknown size '100k'; accepted: 1k, 10k"):
        load_task("babi", size="100k")


# ---------------------------------------------------------------------- task files


def _write(tmp_path, name, text):
    path = tmp_path / name
    path.write_text(text, encoding="utf-8")
    return path


def test_csv_round_trip_with_a_split_column(tmp_path):
    path = _write(tmp_path, "reviews.csv",
                  'text,label,split\n"a fine, warm film",pos,train\ndull,neg,train\n'
                  '\n"two\nlines",pos,validation\nbad,neg,test\n')
    task = load_task(f"csv:{path}")
    assert task.name == f"csv:{path}" and task.labels == ["neg", "pos"]
    assert task.train == [Example("a fine, warm film", "pos"), Example("dull", "neg")]
    assert task.validation == [Example("two\nlines", "pos")]
    assert task.test == [Example("bad", "neg")]
    assert not task.is_pair


def test_jsonl_pairs_and_deterministic_split(tmp_path):
    rows = [{"text_a": f"premise {i}", "text_b": f"hypothesis {i}", "label": i % 3}
            for i in range(60)]
    path = _write(tmp_path, "nli.jsonl", "\n".join(json.dumps(r) for r in rows) + "\n\n")
    task = load_task(f"jsonl:{path}")
    assert task.labels == ["0", "1", "2"] and task.is_pair
    assert task.sizes == {"train": 48, "validation": 6, "test": 6}
    assert set(task.label_counts("test").values()) == {2}
    everything = sorted(task.train + task.validation + task.test, key=lambda e: e.text)
    assert everything == sorted((Example(r["text_a"], str(r["label"]), r["text_b"])
                                 for r in rows), key=lambda e: e.text)
    again = load_task(f"jsonl:{path}")
    assert again.test == task.test
    assert load_task(f"jsonl:{path}", seed=1).test != task.test
    custom = load_task(f"jsonl:{path}", text_column="text_b", validation=0.0, test=0.5)
    assert custom.sizes == {"train": 30, "validation": 0, "test": 30}
    assert custom.train[0].text.startswith("hypothesis") and custom.train[0].text_b is None


SQUAD = {"version": "1.1", "data": [
    {"title": "Broncos", "paragraphs": [
        {"context": "The Denver Broncos won Super Bowl 50.",
         "qas": [{"id": "q1", "question": "Who won?",
                  "answers": [{"text": "Denver Broncos", "answer_start": 4},
                              {"text": "The Denver Broncos", "answer_start": 0}]},
                 {"id": "q2", "question": "Which Super Bowl?",
                  "answers": [{"text": "Super Bowl 50", "answer_start": 23}]}]},
        {"context": "Mary went to the office.",
         "qas": [{"id": "q3", "question": "Where is Mary?",
                  "answers": [{"text": "office", "answer_start": 17}]},
                 {"id": "q4", "question": "Who is John?", "answers": [],
                  "is_impossible": True}]}]}]}


def test_squad_round_trip(tmp_path):
    path = _write(tmp_path, "squad.json", json.dumps(SQUAD, indent=1))
    task = load_task(f"squad:{path}", validation=0.0, test=0.0)
    assert [ex.id for ex in task.train] == ["q1", "q2", "q3"]
    q1 = task.train[0]
    assert q1.answers == ("Denver Broncos", "The Denver Broncos") and q1.answer_starts == (4, 0)
    assert task.metadata["unanswerable"] == 1
    assert task.generative()[2] == ("Mary went to the office.\nQ: Where is Mary?\nA: ", "office")
    split = load_task(f"squad:{path}", validation=0.0, test=0.5)
    # paragraphs, not questions, are split: q1 and q2 stay together
    assert sorted(len(split.split(s)) for s in ("train", "test")) == [1, 2]


@pytest.mark.parametrize("name, text, message", [
    ("labels.csv", "text,category\nhi,a\n",
     r"task file '.*labels\.csv': unknown label column 'label'; the columns found: text, "
     r"category"),
    ("notext.csv", "sentence,label\nhi,a\n",
     r"task file '.*notext\.csv': no text column; the columns found: sentence, label"),
    ("short.csv", "text,label\nfine,pos\nbroken\n",
     r"task file '.*short\.csv': row 2 \(line 3\) has too few fields: 1, but the header names "
     r"2 \(text, label\)"),
    ("long.csv", "text,label\na, b,pos\n",
     r"task file '.*long\.csv': row 1 \(line 2\) has too many fields: 3"),
    ("empty.csv", "", r"task file '.*empty\.csv' is empty \(0 bytes\)"),
    ("blank.jsonl", "\n  \n", r"task file '.*blank\.jsonl' is empty \(4 bytes\)"),
    ("header.csv", "text,label\n", r"task file '.*header\.csv': has a header \(text, label\) "
                                   r"but no rows"),
    ("unseen.csv", "text,label,split\na,x,train\nb,y,test\n",
     r"task 'csv:.*unseen\.csv': label 'y' appears in the test split \(1 examples\) but never "
     r"in training; accepted labels: x"),
    ("badsplit.csv", "text,label,split\na,x,train\nb,x,dev\n",
     r"task file '.*badsplit\.csv', line 3: split 'dev' is not one of train, validation, test"),
    ("bad.jsonl", '{"text": "a", "label": "x"}\n{"text": "b", "label": "x"\n',
     r"task file '.*bad\.jsonl', line 2: malformed JSON \(Expecting ',' delimiter at column "
     r"\d+\)"),
    ("list.jsonl", '["a", "x"]\n', r"task file '.*list\.jsonl', line 1: a JSON list, not an "
                                   r"object"),
    ("missing.jsonl", '{"text": "a", "label": "x"}\n{"text": "b"}\n',
     r"task file '.*missing\.jsonl', line 2: no 'label' column; the columns there: text"),
    ("floatlabel.jsonl", '{"text": "a", "label": 0.5}\n',
     r"line 1: label 0.5 is a float; accepted: a string or an integer"),
])
def test_bad_classification_files_say_what_and_where(tmp_path, name, text, message):
    path = _write(tmp_path, name, text)
    kind = name.rsplit(".", 1)[1]
    with pytest.raises(TaskError, match=message):
        load_task(f"{kind}:{path}")


def test_bad_columns_named_by_the_caller(tmp_path):
    path = _write(tmp_path, "t.csv", "text,label\nhi,a\n")
    with pytest.raises(TaskError, match=r"unknown text column 'body'; the columns found: text, "
                                        r"label"):
        load_task(f"csv:{path}", text_column="body")
    with pytest.raises(TaskError, match=r"unknown label column 'y'"):
        load_task(f"csv:{path}", label_column="y")
    with pytest.raises(TaskError, match=r"no task file at '.*nope\.csv'"):
        load_task(f"csv:{tmp_path / 'nope.csv'}")


def _squad_with(**changes):
    data = json.loads(json.dumps(SQUAD))
    qa = data["data"][0]["paragraphs"][1]["qas"][0]
    qa.update(changes)
    return json.dumps(data, indent=1)


@pytest.mark.parametrize("text, message", [
    (_squad_with(answers=[{"text": "kitchen", "answer_start": 17}]),
     r"task file '.*q\.json': question 'q3': answer 'kitchen' at answer_start 17 is not in its "
     r"context \(the context there reads 'office\.'"),
    (_squad_with(answers=[{"text": "office", "answer_start": 99}]),
     r"question 'q3': answer 'office' at answer_start 99 is not in its context"),
    (_squad_with(id="q1"), r"question id 'q1' \(data\[0\]\.paragraphs\[1\]\.qas\[0\]\) repeats"),
    (_squad_with(answers=[{"text": "office"}]),
     r"data\[0\]\.paragraphs\[1\]\.qas\[0\]\.answers\[0\] has no 'answer_start'; expected "
     r"SQuAD's layout"),
    ('{"data": [{"paragraphs": [{"context": "x"}]}]}',
     r"data\[0\]\.paragraphs\[0\] has no 'qas'"),
    ('{"version": "1.1"}', r"the file has no 'data'"),
    ('{"data": []}', r"holds no answered question"),
    ('{\n  "data": [\n    {"paragraphs": [}\n  ]\n}',
     r"task file '.*q\.json', line 3: malformed JSON \(Expecting value at column 21\)"),
    ("", r"is empty \(0 bytes\)"),
])
def test_bad_squad_files_say_what_and_where(tmp_path, text, message):
    path = _write(tmp_path, "q.json", text)
    with pytest.raises(TaskError, match=message):
        load_task(f"squad:{path}")


def test_qa_example_checks_its_span():
    with pytest.raises(TaskError, match=r"question 'x': answer 'cat' at answer_start 0"):
        QAExample("x", "a dog", "?", ("cat",), (0,))
    with pytest.raises(TaskError, match=r"needs one answer_start per answer"):
        QAExample("x", "a dog", "?", ("dog",), ())
