"""Tests for tinyllm.tasks.metrics: hand-computed cases, scikit-learn, and SQuAD's v1.1 script."""

import re
import string
from collections import Counter

import numpy as np
import pytest

from tinyllm.tasks import QAExample
from tinyllm.tasks.metrics import (
    accuracy,
    confusion_matrix,
    f1_per_label,
    macro_f1,
    normalize_answer,
    squad_evaluate,
    squad_exact_match,
    squad_f1,
)

# ---------------------------------------------------------------------- classification

Y_TRUE = ["cat", "cat", "cat", "dog", "dog", "fox"]
Y_PRED = ["cat", "dog", "cat", "dog", "fox", "cat"]


def test_hand_computed_example():
    # rows = truth (cat, dog, fox), columns = prediction
    assert confusion_matrix(Y_TRUE, Y_PRED).tolist() == [[2, 1, 0], [0, 1, 1], [1, 0, 0]]
    assert accuracy(Y_TRUE, Y_PRED) == pytest.approx(3 / 6)
    # cat: TP 2, FP 1, FN 1 -> 4/6; dog: TP 1, FP 1, FN 1 -> 2/4; fox: TP 0 -> 0
    assert f1_per_label(Y_TRUE, Y_PRED) == pytest.approx({"cat": 2 / 3, "dog": 0.5, "fox": 0.0})
    assert macro_f1(Y_TRUE, Y_PRED) == pytest.approx((2 / 3 + 0.5 + 0.0) / 3)


def test_explicit_labels_fix_the_order_and_count_absent_labels_as_zero():
    m = confusion_matrix(Y_TRUE, Y_PRED, labels=["fox", "dog", "cat", "owl"])
    assert m.tolist() == [[0, 0, 1, 0], [1, 1, 0, 0], [0, 1, 2, 0], [0, 0, 0, 0]]
    assert macro_f1(Y_TRUE, Y_PRED, labels=["cat", "dog", "fox", "owl"]) == pytest.approx(
        (2 / 3 + 0.5) / 4)


def test_perfect_and_integer_labels():
    y = np.array([0, 2, 1, 2])
    assert accuracy(y, y) == 1.0
    assert macro_f1(y, y) == 1.0
    assert confusion_matrix(y, y).tolist() == [[1, 0, 0], [0, 1, 0], [0, 0, 2]]


@pytest.mark.parametrize("call, message", [
    (lambda: accuracy([1, 2], [1]),
     r"accuracy: y_true and y_pred must be equally long, got 2 and 1"),
    (lambda: macro_f1([], []), r"got no examples"),
    (lambda: confusion_matrix(["a"], ["b"], labels=["a"]),
     r"'b' occurs .* not in labels; accepted: a"),
    (lambda: macro_f1(["a"], ["a"], labels=["a", "a"]), r"labels must be distinct"),
])
def test_bad_arguments_say_what_was_wrong(call, message):
    with pytest.raises(ValueError, match=message):
        call()


def test_agrees_with_scikit_learn():
    skm = pytest.importorskip("sklearn.metrics")
    rng = np.random.default_rng(0)
    for trial in range(20):
        k = 2 + trial % 5
        y_true = rng.integers(0, k, size=50)
        y_pred = np.where(rng.random(50) < 0.6, y_true, rng.integers(0, k + 1, size=50))
        labels = list(range(k + 2))          # one label absent from both
        assert accuracy(y_true, y_pred) == pytest.approx(skm.accuracy_score(y_true, y_pred))
        np.testing.assert_array_equal(confusion_matrix(y_true, y_pred),
                                      skm.confusion_matrix(y_true, y_pred))
        assert macro_f1(y_true, y_pred) == pytest.approx(
            skm.f1_score(y_true, y_pred, average="macro"))
        assert macro_f1(y_true, y_pred, labels) == pytest.approx(
            skm.f1_score(y_true, y_pred, labels=labels, average="macro", zero_division=0))


# ---------------------------------------------------------------------- SQuAD


def _official_normalize_answer(s):
    """SQuAD v1.1's evaluate-v1.1.py, verbatim in substance: the reference to compare with."""
    def remove_articles(text):
        return re.sub(r"\b(a|an|the)\b", " ", text)

    def white_space_fix(text):
        return " ".join(text.split())

    def remove_punc(text):
        exclude = set(string.punctuation)
        return "".join(ch for ch in text if ch not in exclude)

    return white_space_fix(remove_articles(remove_punc(s.lower())))


def _official_f1(prediction, ground_truth):
    prediction_tokens = _official_normalize_answer(prediction).split()
    ground_truth_tokens = _official_normalize_answer(ground_truth).split()
    common = Counter(prediction_tokens) & Counter(ground_truth_tokens)
    num_same = sum(common.values())
    if num_same == 0:
        return 0
    precision = 1.0 * num_same / len(prediction_tokens)
    recall = 1.0 * num_same / len(ground_truth_tokens)
    return (2 * precision * recall) / (precision + recall)


@pytest.mark.parametrize("text, expected", [
    ("The Denver Broncos", "denver broncos"),
    ("  an apple,  a pear; THE plum. ", "apple pear plum"),
    ("theatre thesis", "theatre thesis"),          # articles only as whole words
    ("Saint-Étienne's (1990)", "saintétiennes 1990"),
    ("the", ""),
])
def test_normalize_answer(text, expected):
    assert normalize_answer(text) == expected


@pytest.mark.parametrize("prediction, golds, em, f1", [
    ("Denver Broncos", ["Denver Broncos", "The Denver Broncos"], 1.0, 1.0),
    ("the Broncos of Denver", ["Denver Broncos"], 0.0, 0.8),      # p 2/3, r 1
    ("Carolina Panthers", ["Denver Broncos"], 0.0, 0.0),
    ("Broncos", ["Denver Broncos", "Broncos!"], 1.0, 1.0),       # best over golds
    ("Denver", "Denver Broncos", 0.0, 2 / 3),                    # one gold as a string
    ("", ["the"], 1.0, 0.0),    # v1.1: both normalise to "", equal, but share no word
    ("a b a", ["a b"], 1.0, 1.0),                               # "a" is an article: "b"
    ("x x y", ["x y y"], 0.0, 2 / 3),                             # bags, not sets
])
def test_exact_match_and_f1_known_cases(prediction, golds, em, f1):
    assert squad_exact_match(prediction, golds) == em
    assert squad_f1(prediction, golds) == pytest.approx(f1)


def test_agrees_with_the_official_script_on_random_strings():
    rng = np.random.default_rng(0)
    words = ["the", "The", "a", "An", "cat", "Cat.", "dog,", "(dog)", "x-ray", "  ", "an", "1"]
    for _ in range(300):
        pred = " ".join(rng.choice(words, size=rng.integers(0, 5)))
        golds = [" ".join(rng.choice(words, size=rng.integers(1, 5)))
                 for _ in range(rng.integers(1, 4))]
        assert normalize_answer(pred) == _official_normalize_answer(pred)
        assert squad_f1(pred, golds) == pytest.approx(max(_official_f1(pred, g) for g in golds))
        expected_em = max(float(_official_normalize_answer(pred) == _official_normalize_answer(g))
                          for g in golds)
        assert squad_exact_match(pred, golds) == expected_em


def test_squad_evaluate_in_percent_with_missing_predictions():
    context = "Mary went to the office. John went to the kitchen."
    examples = [QAExample("q1", context, "Where is Mary?", ("office", "the office"), (17, 13)),
                QAExample("q2", context, "Where is John?", ("kitchen",), (42,)),
                QAExample("q3", context, "Who went?", ("Mary",), (0,))]
    scores = squad_evaluate(examples, {"q1": "The office.", "q2": "the big kitchen"})
    assert scores["exact_match"] == pytest.approx(100 / 3)
    assert scores["f1"] == pytest.approx(100 * (1 + 2 / 3) / 3)
    assert scores["missing"] == 1


def test_squad_bad_arguments():
    with pytest.raises(ValueError, match="squad_f1: needs at least one gold answer"):
        squad_f1("x", [])
    with pytest.raises(ValueError, match="squad_evaluate: got no examples"):
        squad_evaluate([], {})
