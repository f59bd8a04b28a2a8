"""Text classification tasks cut from what ships with Python: no download, deterministic splits.

``pydoc_topics_task()`` ("pydoc-topics"): passages of CPython's help topics
(``pydoc_data.topics``, the language reference) labelled by the kind of topic they come from.
Each of the four labels gathers a fixed list of topic names, ``PYDOC_TOPIC_CLASSES``:

==============  ========================================================  ==================
label           topics                                                    passages (3.11)
==============  ========================================================  ==================
builtin-types   the ``types*`` and ``bltin-*`` topics, string methods,    453
                format strings, truth values
data-model      special method names (``specialnames``, customization,    244
                attribute access, numeric and sequence types, ...)
expressions     expressions, operators, displays, literals, identifiers   239
statements      simple and compound statements, the execution model,      423
                naming, exceptions
==============  ========================================================  ==================

A passage is a paragraph (text between blank lines) with its line breaks and indentation
collapsed to single spaces, kept when it has at least 8 words; one longer than 1,000 characters
is cut at its last sentence end before that length. Some topics repeat paragraphs of others
("compound" holds the text of "if", "while", ...): a paragraph is kept once, and dropped when
its topics fall in different labels. The grouping follows the reference's own chapters
(statements, expressions, data model, built-in types) and keeps each label above 200 passages;
the "debugger" topic (pdb's manual, ~100 passages) and topics that later Pythons add are left out.

``stdlib_docstrings_task()`` ("stdlib-docstrings"): docstrings of standard-library modules,
classes and functions, labelled by their top-level package (``STDLIB_DOCSTRING_PACKAGES``, 9
labels). The source files are parsed with ``ast`` (nothing is imported); each docstring is
cleaned as ``inspect.cleandoc`` does (common indentation and surrounding blank space
removed), otherwise unedited, and kept when it has at least 3 words. A docstring found in two
packages is dropped, one repeated inside a package is kept once, and each package keeps at
most ``max_per_class`` (300) of its docstrings, drawn by ``seed``. The packages are those
with the most such docstrings in CPython 3.11 (asyncio 343, email 306, importlib 298, logging
241, xml 224, multiprocessing 203, unittest 174, http 143, urllib 108; the next, wsgiref, has
under 70), among those that every CPython 3.10 to 3.13 build ships: tkinter is a separate OS
package on Debian and Ubuntu, distutils and lib2to3 were removed in 3.12 and 3.13, and
encodings' docstrings are generated boilerplate. With the default cap: 1,991 docstrings on
CPython 3.11.

Both tasks split each label 80/10/10 into train, validation and test, drawn by ``seed``
(``stratified_split``); the passages themselves depend only on the Python version.
"""

from __future__ import annotations

import ast
import functools
import sys
import sysconfig
from pathlib import Path

import numpy as np

from .._checks import positive_int
from ..data.corpora import stdlib_files
from .base import ClassificationTask, Example, stratified_split

#: Label -> the pydoc topics it gathers; topics of ``pydoc_data.topics`` not listed are unused.
PYDOC_TOPIC_CLASSES: dict[str, tuple[str, ...]] = {
    "builtin-types": (
        "bltin-code-objects", "bltin-ellipsis-object", "bltin-null-object",
        "bltin-type-objects", "formatstrings", "string-methods", "truth", "types",
        "typesfunctions", "typesmapping", "typesmethods", "typesmodules", "typesseq",
        "typesseq-mutable",
    ),
    "data-model": (
        "attribute-access", "callable-types", "context-managers", "customization",
        "numeric-types", "objects", "sequence-types", "specialattrs", "specialnames",
    ),
    "expressions": (
        "atom-identifiers", "atom-literals", "attribute-references", "await", "binary",
        "bitwise", "booleans", "calls", "comparisons", "conversions", "dict", "exprlists",
        "floating", "id-classes", "identifiers", "imaginary", "in", "integers", "lambda",
        "lists", "numbers", "operator-summary", "power", "shifting", "slicings", "strings",
        "subscriptions", "unary",
    ),
    "statements": (
        "assert", "assignment", "async", "augassign", "break", "class", "compound", "continue",
        "del", "dynamic-features", "else", "exceptions", "execmodel", "for", "function",
        "global", "if", "import", "naming", "nonlocal", "pass", "raise", "return", "try",
        "while", "with", "yield",
    ),
}

#: Top-level standard-library packages whose docstrings make the labels of "stdlib-docstrings".
STDLIB_DOCSTRING_PACKAGES = (
    "asyncio", "email", "http", "importlib", "logging", "multiprocessing", "unittest",
    "urllib", "xml",
)

MIN_PASSAGE_WORDS = 8
MAX_PASSAGE_CHARS = 1000
MIN_DOCSTRING_WORDS = 3


# ---------------------------------------------------------------------- pydoc-topics


def pydoc_topics_task(seed: int = 0) -> ClassificationTask:
    """Passages of CPython's help topics labelled by the kind of topic (4 labels, see above)."""
    texts, labels = zip(*_pydoc_passages())
    return _split_task("pydoc-topics", list(texts), list(labels), sorted(PYDOC_TOPIC_CLASSES),
                       seed, {"python": sys.version.split()[0]})


def _passage(paragraph: str) -> str | None:
    """The paragraph on one line, cut to ``MAX_PASSAGE_CHARS``; None when too short."""
    text = " ".join(paragraph.split())
    if len(text.split()) < MIN_PASSAGE_WORDS:
        return None
    if len(text) > MAX_PASSAGE_CHARS:
        end = text.rfind(". ", 0, MAX_PASSAGE_CHARS)
        text = text[: end + 1] if end > 0 else text[: text.rfind(" ", 0, MAX_PASSAGE_CHARS)]
    return text


@functools.lru_cache(maxsize=1)
def _pydoc_passages() -> tuple[tuple[str, str], ...]:
    """``(passage, label)`` pairs in topic order, each passage once (see the module docstring)."""
    try:
        from pydoc_data.topics import topics
    except ImportError:
        raise RuntimeError(
            f"this Python build ({sys.version.split()[0]}) lacks pydoc_data.topics, the text of "
            "the 'pydoc-topics' task (some distributions strip it); use 'stdlib-docstrings', "
            "'markov-source', 'babi' or a task file instead") from None
    label_of = {t: lab for lab, names in PYDOC_TOPIC_CLASSES.items() for t in names}
    found: dict[str, set[str]] = {}
    for topic in sorted(set(topics) & set(label_of)):
        for paragraph in topics[topic].split("\n\n"):
            text = _passage(paragraph)
            if text is not None:
                found.setdefault(text, set()).add(label_of[topic])
    return tuple((text, labs.pop()) for text, labs in found.items() if len(labs) == 1)


# ---------------------------------------------------------------------- stdlib-docstrings


def stdlib_docstrings_task(seed: int = 0, max_per_class: int | None = 300) -> ClassificationTask:
    """Standard-library docstrings labelled by their top-level package (9 labels, see above).

    ``max_per_class``: the most docstrings a package keeps, drawn by ``seed`` (None: all).
    """
    if max_per_class is not None:
        positive_int("max_per_class", max_per_class, where="stdlib-docstrings")
    pairs = _stdlib_docstrings()
    if max_per_class is not None:
        rng = np.random.default_rng([seed, 1])
        keep = []
        for package in STDLIB_DOCSTRING_PACKAGES:
            members = [i for i, (_, lab) in enumerate(pairs) if lab == package]
            if len(members) > max_per_class:
                members = rng.choice(members, size=max_per_class, replace=False).tolist()
            keep += members
        pairs = tuple(pairs[i] for i in sorted(keep))
    texts, labels = zip(*pairs)
    meta = {"python": sys.version.split()[0], "max_per_class": max_per_class}
    return _split_task("stdlib-docstrings", list(texts), list(labels),
                       sorted(STDLIB_DOCSTRING_PACKAGES), seed, meta)


_DOCUMENTED = (ast.Module, ast.ClassDef, ast.FunctionDef, ast.AsyncFunctionDef)


@functools.lru_cache(maxsize=1)
def _stdlib_docstrings() -> tuple[tuple[str, str], ...]:
    """``(docstring, package)`` pairs in file order, each docstring once (see the module
    docstring); files that do not parse are skipped."""
    root = Path(sysconfig.get_paths()["stdlib"])
    found: dict[str, set[str]] = {}
    for package in STDLIB_DOCSTRING_PACKAGES:
        if not (root / package).is_dir():
            raise RuntimeError(f"the standard library at {root} has no {package!r} package, "
                               "one of the labels of the 'stdlib-docstrings' task")
        for path in stdlib_files(root / package):
            try:
                tree = ast.parse(path.read_bytes(), filename=str(path))
            except (SyntaxError, ValueError, OSError):
                continue  # not this interpreter's syntax, or unreadable: skip rather than guess
            for node in ast.walk(tree):
                if isinstance(node, _DOCUMENTED):
                    doc = (ast.get_docstring(node, clean=True) or "").strip()
                    if len(doc.split()) >= MIN_DOCSTRING_WORDS:
                        found.setdefault(doc, set()).add(package)
    return tuple((doc, pkgs.pop()) for doc, pkgs in found.items() if len(pkgs) == 1)


# ---------------------------------------------------------------------- unlabelled text
def training_text(seed: int = 0) -> str:
    """The training texts of ``pydoc-topics`` and ``stdlib-docstrings`` (their default
    splits) without their labels, in an order drawn by ``seed`` (not grouped by label), a
    blank line after each: text of the tasks' own kind for ULMFiT's second stage (Howard &
    Ruder 2018, section 3.2: the pre-trained language model trained further on the target
    task's own text) -- the fine-tuning study's "text-tasks" corpus. No validation or test
    text is in it.

    The pre-training corpus ``stdlib`` (its first 2 MB, up to ``difflib``) holds asyncio's
    docstrings but none of the other eight packages'; this text holds them all.
    """
    texts = [ex.text for task in (pydoc_topics_task(), stdlib_docstrings_task())
             for ex in task.train]
    order = np.random.default_rng([seed, 2]).permutation(len(texts))
    return "".join(texts[i] + "\n\n" for i in order)


# ---------------------------------------------------------------------- shared


def _split_task(name, texts, labels, label_set, seed, metadata) -> ClassificationTask:
    """A ClassificationTask of ``texts`` split 80/10/10 per label by ``seed``."""
    parts = [[Example(texts[i], labels[i]) for i in idx]
             for idx in stratified_split(labels, seed, where=name)]
    return ClassificationTask(name, label_set, *parts, metadata={**metadata, "seed": seed})
