"""Labelled tasks for fine-tuning, generated or cut from text that ships with Python, and
their metrics.

``load_task(name_or_spec, **options)`` returns a ``ClassificationTask`` (``Example``\\ s and
``labels``) or a ``QATask`` (``QAExample``\\ s), each with ``train``, ``validation`` and
``test`` splits that are deterministic for a given seed:

===================  ==============  =========================================================
name                 kind            what
===================  ==============  =========================================================
pydoc-topics         classification  passages of CPython's help topics, 4 labels (``text``)
stdlib-docstrings    classification  standard-library docstrings by package, 9 labels (``text``)
markov-source        classification  which of K Markov chains wrote a string; exact Bayes
                                     accuracy (``markov``)
babi                 QA              bAbI tasks 1, 2, 3, 6, 7 with 1k or 10k training
                                     questions (``babi``)
babi1 .. babi7       QA              one bAbI task by number (``babi2`` = ``babi`` with
                                     ``task=2``): 1, 2, 3, 6 and 7
babi1-10k ..         QA              the same with the paper's 10k training questions
csv:FILE             classification  ``text,label`` or ``text_a,text_b,label`` (``files``)
jsonl:FILE           classification  one JSON object per line, same columns (``files``)
squad:FILE           QA              SQuAD's JSON layout (``files``)
===================  ==============  =========================================================

The options of a task are its builder's keyword arguments (``pydoc_topics_task``,
``stdlib_docstrings_task``, ``markov_source_task``, ``babi_task``, ``csv_task``, ...).

>>> task = load_task("babi", task=6, size="1k")
>>> prompt, answer = task.generative("test")[0]
>>> prompt.endswith("\\nA: "), answer in ("yes", "no")
(True, True)
>>> list_tasks()[:4]
['pydoc-topics', 'stdlib-docstrings', 'markov-source', 'babi']

Translation tasks (``translation``) hold ``Pair(source, target)``\\ s instead: SCAN's splits
(``scan``), numbers between English and Chinese (``numbers``), dates into ISO 8601
(``dates``), and ``tsv:FILE``; ``list_translation_tasks()`` names them.

>>> load_translation_task("dates").sizes
{'train': 8000, 'validation': 1000, 'test': 1000}

This package imports the data layer and nothing of models or training.
"""

from __future__ import annotations

import functools
import inspect
import os

from .babi import BABI_TASKS, babi_task
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
from .files import csv_task, jsonl_task, squad_task
from .markov import MarkovSourceTask, markov_source_task
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
from .text import pydoc_topics_task, stdlib_docstrings_task
from .translation import (
    TRANSLATION_TASKS,
    Pair,
    TranslationTask,
    list_translation_tasks,
    load_translation_task,
)
from .translation_metrics import BLEUScore, CHRFScore, chrf, corpus_bleu, exact_match, sentence_bleu

#: The built-in tasks: name -> builder (its keyword arguments are the task's options).
_BUILDERS = {
    "pydoc-topics": pydoc_topics_task,
    "stdlib-docstrings": stdlib_docstrings_task,
    "markov-source": markov_source_task,
    "babi": babi_task,
    **{f"babi{n}": functools.partial(babi_task, n) for n in BABI_TASKS},
    **{f"babi{n}-10k": functools.partial(babi_task, n, "10k") for n in BABI_TASKS},
}
#: Task files: ``KIND:FILE`` -> loader (its first argument is the path).
_LOADERS = {"csv": csv_task, "jsonl": jsonl_task, "squad": squad_task}
TASKS: tuple[str, ...] = tuple(_BUILDERS)


def list_tasks() -> list[str]:
    """The built-in task names, then the forms of a task file (``csv:FILE``, ...)."""
    return list(_BUILDERS) + [f"{kind}:FILE" for kind in _LOADERS]


def load_task(name_or_spec: str | os.PathLike, **options) -> ClassificationTask | QATask:
    """A built-in task by name (``"babi"``) or a task file (``"csv:reviews.csv"``), with the
    builder's or loader's keyword ``options``; unknown names and options raise TaskError."""
    if not isinstance(name_or_spec, str):
        raise TaskError(f"load_task expects a task name or KIND:FILE string, got "
                        f"{type(name_or_spec).__name__}; accepted: {', '.join(list_tasks())}")
    kind, sep, path = name_or_spec.partition(":")
    if name_or_spec in _BUILDERS:
        func, args = _BUILDERS[name_or_spec], ()
    elif sep and kind in _LOADERS and path:
        func, args = _LOADERS[kind], (path,)
    else:
        raise TaskError(f"unknown task {name_or_spec!r}; accepted: {', '.join(list_tasks())} "
                        "(FILE: the path of a task file)")
    accepted = list(inspect.signature(func).parameters)[len(args):]
    unknown = sorted(set(options) - set(accepted))
    if unknown:
        raise TaskError(f"task {name_or_spec!r} got unknown options {unknown}; accepted: "
                        f"{', '.join(accepted) or 'none'}")
    return func(*args, **options)


__all__ = [
    "ANSWER_SEPARATOR",
    "BLEUScore",
    "CHRFScore",
    "SPLITS",
    "TASKS",
    "TRANSLATION_TASKS",
    "ClassificationTask",
    "Example",
    "MarkovSourceTask",
    "Pair",
    "QAExample",
    "QATask",
    "TaskError",
    "TranslationTask",
    "accuracy",
    "chrf",
    "corpus_bleu",
    "exact_match",
    "sentence_bleu",
    "babi_task",
    "confusion_matrix",
    "csv_task",
    "f1_per_label",
    "jsonl_task",
    "list_tasks",
    "list_translation_tasks",
    "load_task",
    "load_translation_task",
    "macro_f1",
    "markov_source_task",
    "normalize_answer",
    "pydoc_topics_task",
    "squad_evaluate",
    "squad_exact_match",
    "squad_f1",
    "squad_task",
    "stdlib_docstrings_task",
    "stratified_sample",
    "stratified_split",
]
