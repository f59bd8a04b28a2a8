"""Metrics with their official definitions: classification, and SQuAD's exact match and F1.

Classification (labels are any hashable values, e.g. strings or class ids):

- ``accuracy``: the fraction of predictions equal to the truth.
- ``confusion_matrix``: ``M[i, j]`` = examples of true label ``labels[i]`` predicted as
  ``labels[j]`` (rows are the truth, as in scikit-learn).
- ``macro_f1``: the unweighted mean over labels of ``F1 = 2 TP / (2 TP + FP + FN)``; a label
  with no true and no predicted example scores 0 (scikit-learn's ``zero_division=0``). The
  labels are those given, else every label in the truth or the predictions.

>>> y_true, y_pred = ["a", "a", "b", "c"], ["a", "b", "b", "a"]
>>> accuracy(y_true, y_pred)
0.5
>>> confusion_matrix(y_true, y_pred).tolist()
[[1, 1, 0], [0, 1, 0], [1, 0, 0]]
>>> round(macro_f1(y_true, y_pred), 4)    # F1: a 1/2, b 2/3, c 0
0.3889

SQuAD (the official evaluation script, v1.1): an answer is normalised by lower-casing it,
removing punctuation (``string.punctuation``), removing the articles "a", "an" and "the" as
words, and collapsing whitespace. ``squad_exact_match`` is 1 when the normalised prediction
equals a normalised gold answer; ``squad_f1`` is the F1 of the two bags of normalised words
(0 when they share none); both take the best over the gold answers. ``squad_evaluate``
averages them over questions, in percent, as the script prints them.

>>> squad_exact_match("The Eiffel Tower!", ["eiffel tower"])
1.0
>>> round(squad_f1("in the Eiffel Tower", ["Eiffel Tower"]), 4)
0.8
"""

from __future__ import annotations

import re
import string
from collections import Counter
from collections.abc import Hashable, Mapping, Sequence

import numpy as np

__all__ = [
    "accuracy",
    "confusion_matrix",
    "f1_per_label",
    "macro_f1",
    "normalize_answer",
    "squad_evaluate",
    "squad_exact_match",
    "squad_f1",
]


# ---------------------------------------------------------------------- classification


def _as_list(values) -> list:
    return values.tolist() if isinstance(values, np.ndarray) else list(values)


def _pair(y_true, y_pred, name: str) -> tuple[list, list]:
    y_true, y_pred = _as_list(y_true), _as_list(y_pred)
    if len(y_true) != len(y_pred):
        raise ValueError(f"{name}: y_true and y_pred must be equally long, got {len(y_true)} "
                         f"and {len(y_pred)}")
    if not y_true:
        raise ValueError(f"{name}: got no examples; accepted: at least one (y_true, y_pred)")
    return y_true, y_pred


def _labels(y_true, y_pred, labels, name: str) -> list:
    if labels is None:
        return sorted(set(y_true) | set(y_pred))
    labels = list(labels)
    if len(set(labels)) != len(labels):
        raise ValueError(f"{name}: labels must be distinct, got {labels}")
    unknown = sorted((set(y_true) | set(y_pred)) - set(labels), key=str)
    if unknown:
        raise ValueError(f"{name}: {unknown[0]!r} occurs in y_true or y_pred but not in labels; "
                         f"accepted: {', '.join(map(str, labels))}")
    return labels


def accuracy(y_true: Sequence[Hashable], y_pred: Sequence[Hashable]) -> float:
    """The fraction of ``y_pred`` equal to ``y_true``."""
    y_true, y_pred = _pair(y_true, y_pred, "accuracy")
    return sum(t == p for t, p in zip(y_true, y_pred)) / len(y_true)


def confusion_matrix(y_true: Sequence[Hashable], y_pred: Sequence[Hashable],
                     labels: Sequence[Hashable] | None = None) -> np.ndarray:
    """``(K, K)`` int64: row ``i`` counts the examples of true label ``labels[i]`` by predicted
    label; ``labels`` defaults to the sorted labels seen in either argument."""
    y_true, y_pred = _pair(y_true, y_pred, "confusion_matrix")
    labels = _labels(y_true, y_pred, labels, "confusion_matrix")
    index = {lab: i for i, lab in enumerate(labels)}
    matrix = np.zeros((len(labels), len(labels)), dtype=np.int64)
    np.add.at(matrix, ([index[t] for t in y_true], [index[p] for p in y_pred]), 1)
    return matrix


def f1_per_label(y_true: Sequence[Hashable], y_pred: Sequence[Hashable],
                 labels: Sequence[Hashable] | None = None) -> dict:
    """Label -> ``2 TP / (2 TP + FP + FN)`` (0 when the label is in neither argument)."""
    y_true, y_pred = _pair(y_true, y_pred, "f1_per_label")
    labels = _labels(y_true, y_pred, labels, "f1_per_label")
    m = confusion_matrix(y_true, y_pred, labels)                        # (K, K)
    tp = np.diag(m)
    denom = m.sum(axis=0) + m.sum(axis=1)                                # 2 TP + FP + FN
    f1 = np.divide(2 * tp, denom, out=np.zeros(len(labels)), where=denom > 0)
    return dict(zip(labels, f1.tolist()))


def macro_f1(y_true: Sequence[Hashable], y_pred: Sequence[Hashable],
             labels: Sequence[Hashable] | None = None) -> float:
    """The unweighted mean of ``f1_per_label`` over ``labels``."""
    return float(np.mean(list(f1_per_label(y_true, y_pred, labels).values())))


# ---------------------------------------------------------------------- SQuAD


_ARTICLES = re.compile(r"\b(a|an|the)\b", re.UNICODE)
_PUNCTUATION = frozenset(string.punctuation)


def normalize_answer(text: str) -> str:
    """Lower-case, drop punctuation, drop the articles a/an/the, collapse whitespace (v1.1).

    >>> normalize_answer("  The  Cat's hat, an Apple. ")
    'cats hat apple'
    """
    text = "".join(ch for ch in text.lower() if ch not in _PUNCTUATION)
    return " ".join(_ARTICLES.sub(" ", text).split())


def _golds(answers: str | Sequence[str], name: str) -> list[str]:
    golds = [answers] if isinstance(answers, str) else list(answers)
    if not golds:
        raise ValueError(f"{name}: needs at least one gold answer, got none")
    return golds


def squad_exact_match(prediction: str, answers: str | Sequence[str]) -> float:
    """1.0 when the normalised prediction equals a normalised gold answer, else 0.0."""
    pred = normalize_answer(prediction)
    return float(any(pred == normalize_answer(g) for g in _golds(answers, "squad_exact_match")))


def _token_f1(prediction: str, gold: str) -> float:
    pred_tokens, gold_tokens = normalize_answer(prediction).split(), normalize_answer(gold).split()
    same = sum((Counter(pred_tokens) & Counter(gold_tokens)).values())
    if same == 0:
        return 0.0
    precision, recall = same / len(pred_tokens), same / len(gold_tokens)
    return 2 * precision * recall / (precision + recall)


def squad_f1(prediction: str, answers: str | Sequence[str]) -> float:
    """The best token F1 of the normalised prediction against a normalised gold answer."""
    return max(_token_f1(prediction, g) for g in _golds(answers, "squad_f1"))


def squad_evaluate(examples: Sequence, predictions: Mapping[str, str]) -> dict[str, float]:
    """``{"exact_match", "f1"}`` in percent over ``examples`` (``QAExample``\\ s), with
    ``predictions`` mapping question id -> predicted text; a question without a prediction
    scores 0, as in the official script, and is counted in ``"missing"``."""
    if not examples:
        raise ValueError("squad_evaluate: got no examples; accepted: at least one QAExample")
    em = f1 = 0.0
    missing = 0
    for ex in examples:
        if ex.id not in predictions:
            missing += 1
            continue
        em += squad_exact_match(predictions[ex.id], ex.answers)
        f1 += squad_f1(predictions[ex.id], ex.answers)
    n = len(examples)
    return {"exact_match": 100.0 * em / n, "f1": 100.0 * f1 / n, "missing": missing}
