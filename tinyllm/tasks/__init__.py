"""Labelled tasks for fine-tuning and their metrics.

A ``ClassificationTask`` holds ``Example``\\ s and ``labels``, a ``QATask`` holds
``QAExample``\\ s, each with ``train``, ``validation`` and ``test`` splits.

This package imports the data layer and nothing of models or training.
"""

from .base import (
    ANSWER_SEPARATOR,
    SPLITS,
    ClassificationTask,
    Example,
    QAExample,
    QATask,
    TaskError,
    stratified_sample,
    stratified_split,
)
from .metrics import (
    accuracy,
    confusion_matrix,
    f1_per_label,
    macro_f1,
    normalize_answer,
    squad_evaluate,
    squad_exact_match,
    squad_f1,
)

__all__ = [
    "ANSWER_SEPARATOR",
    "SPLITS",
    "ClassificationTask",
    "Example",
    "QAExample",
    "QATask",
    "TaskError",
    "accuracy",
    "confusion_matrix",
    "f1_per_label",
    "macro_f1",
    "normalize_answer",
    "squad_evaluate",
    "squad_exact_match",
    "squad_f1",
    "stratified_sample",
    "stratified_split",
]
