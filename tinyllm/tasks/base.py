"""What a task is: labelled examples in three splits, and the helpers that cut and sample them.

A ``ClassificationTask`` holds ``Example(text, label)`` (or a pair, ``Example(text, label,
text_b)``) in ``train``, ``validation`` and ``test``; a ``QATask`` holds ``QAExample``\\ s, each
an extractive answer (a span of its context, for BERT) that ``generative()`` also gives as a
prompt and an answer string (for GPT).

>>> task = ClassificationTask("toy", ["neg", "pos"],
...                           train=[Example("bad", "neg"), Example("good", "pos")],
...                           validation=[], test=[Example("fine", "pos")])
>>> task.label_counts("train")
{'neg': 1, 'pos': 1}
>>> task.label_ids("test").tolist()
[1]

Every mistake in a task's data raises ``TaskError`` (a ``ValueError``), in one line that names
the file, row or example, the value seen and what is accepted.
"""

from __future__ import annotations

import dataclasses
from collections import Counter, defaultdict
from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np

from .._checks import choice, non_negative_int, probability

#: The splits of every task, in order.
SPLITS = ("train", "validation", "test")

#: What separates a QA example's question from its answer in a generative prompt (see
#: ``QAExample.prompt``): a model continues the prompt with the answer.
ANSWER_SEPARATOR = "\nA: "
#: The forms of a generative prompt: the question (``Q: ... A:``), or the statement that
#: answers it, cut before the answer (``Mary is in the``: a cloze).
PROMPT_FORMS = ("question", "statement")


class TaskError(ValueError):
    """A task's data or name is wrong: the message names the file, row or example, and the value."""


@dataclass(frozen=True)
class Example:
    """One labelled text, or a labelled pair of texts (``text`` first, ``text_b`` second)."""

    text: str
    label: str
    text_b: str | None = None


@dataclass(frozen=True)
class QAExample:
    """A question whose answers are spans of ``context``: ``answers[i]`` starts at character
    ``answer_starts[i]``. The first answer is the training target; all count when scoring.
    ``statement``, when the task knows it, is the sentence that answers the question, cut
    before the answer ("Where is Mary?" -> "Mary is in the"): a causal LM can be asked in the
    words it read in pre-training (``prompt("statement")``).

    >>> ex = QAExample("q1", "Mary went to the office.", "Where is Mary?", ("office",), (17,),
    ...                statement="Mary is in the")
    >>> ex.prompt()
    'Mary went to the office.\\nQ: Where is Mary?\\nA: '
    >>> ex.prompt("statement")
    'Mary went to the office.\\nMary is in the '
    """

    id: str
    context: str
    question: str
    answers: tuple[str, ...]
    answer_starts: tuple[int, ...]
    statement: str | None = None

    def __post_init__(self):
        object.__setattr__(self, "answers", tuple(self.answers))
        object.__setattr__(self, "answer_starts", tuple(int(s) for s in self.answer_starts))
        if not self.answers or len(self.answers) != len(self.answer_starts):
            raise TaskError(f"question {self.id!r}: needs one answer_start per answer and at "
                            f"least one answer, got {len(self.answers)} answers and "
                            f"{len(self.answer_starts)} starts")
        for text, start in zip(self.answers, self.answer_starts):
            check_span(self.context, text, start, where=f"question {self.id!r}")

    @property
    def answer(self) -> str:
        """The first gold answer: what a model is trained to produce."""
        return self.answers[0]

    @property
    def answer_start(self) -> int:
        """The character offset of the first gold answer in ``context``."""
        return self.answer_starts[0]

    def prompt(self, form: str = "question") -> str:
        """The generative form's prompt (a causal LM continues it with the answer): the
        context, then ``Q: question`` and the separator ("question"), or the statement and a
        space ("statement")."""
        if form == "question":
            return f"{self.context}\nQ: {self.question}{ANSWER_SEPARATOR}"
        choice("prompt form", form, PROMPT_FORMS)
        if self.statement is None:
            raise TaskError(f"question {self.id!r} ({self.question!r}) has no statement form; "
                            f"ask it with prompt form 'question'")
        return f"{self.context}\n{self.statement} "


def check_span(context: str, text: str, start: int, where: str) -> None:
    """Raise a TaskError unless ``context[start:start + len(text)] == text`` (and text is set)."""
    if text and 0 <= start and context[start:start + len(text)] == text:
        return
    seen = context[start:start + len(text)] if start >= 0 else ""
    raise TaskError(f"{where}: answer {text!r} at answer_start {start} is not in its context "
                    f"(the context there reads {seen!r}; accepted: a non-empty answer equal to "
                    f"context[answer_start:answer_start + len(answer)])")


def _check_split_name(split: str) -> str:
    return choice("split", split, SPLITS, where="task")


def _budget(task, n) -> int:
    """``n`` when it is a possible number of training examples of ``task``, else an error."""
    if isinstance(n, bool) or not isinstance(n, int) or not 0 < n <= len(task.train):
        raise ValueError(f"subsample_train: n must be an integer in 1..{len(task.train)} "
                         f"(the training examples of {task.name!r}), got {n!r}")
    return n


class _Splits:
    """What every task shares: three splits by name, their sizes, and a label budget."""

    name: str
    train: list
    validation: list
    test: list
    metadata: dict

    def split(self, name: str) -> list:
        """The examples of split ``name`` ("train", "validation" or "test")."""
        return getattr(self, _check_split_name(name))

    @property
    def sizes(self) -> dict[str, int]:
        """Number of examples per split."""
        return {s: len(self.split(s)) for s in SPLITS}

    def _train_sample(self, n: int, seed) -> list[int]:
        """Indices into ``train`` of a budget of ``n`` examples, drawn uniformly (sorted)."""
        rng = np.random.default_rng(seed)
        return sorted(rng.choice(len(self.train), size=_budget(self, n), replace=False).tolist())

    def subsample_train(self, n: int, seed=0):
        """The same task with ``n`` training examples drawn without replacement by ``seed``
        (validation and test unchanged), in their original order."""
        keep = self._train_sample(n, seed)
        metadata = {**self.metadata, "train_subsample": {"n": n, "seed": seed,
                                                          "of": len(self.train)}}
        return dataclasses.replace(self, train=[self.train[i] for i in keep], metadata=metadata)


@dataclass(eq=False)
class ClassificationTask(_Splits):
    """Texts (or text pairs) to label with one of ``labels``; every label of validation and
    test also occurs in training. ``labels`` fixes the label ids: ``labels[i]`` is class ``i``.
    """

    name: str
    labels: list[str]
    train: list[Example]
    validation: list[Example]
    test: list[Example]
    metadata: dict = field(default_factory=dict, repr=False)

    def __post_init__(self):
        self.labels = list(self.labels)
        for split in SPLITS:
            setattr(self, split, list(self.split(split)))
        self._check_labels()

    def _check_labels(self) -> None:
        """Labels are distinct and every example's label is one of them. Validation and test
        are checked after train, so a label there that is not in ``labels`` never occurs in
        training (loaders take ``labels`` from the training split)."""
        repeated = sorted(k for k, n in Counter(self.labels).items() if n > 1)
        if repeated:
            raise TaskError(f"task {self.name!r}: labels must be distinct; {repeated} repeat")
        known = set(self.labels)
        for split in SPLITS:
            counts = Counter(ex.label for ex in self.split(split))
            unknown = sorted(set(counts) - known, key=str)
            if not unknown:
                continue
            seen = unknown[0]
            where = ("but is not among the task's labels" if split == "train"
                     else "but never in training")
            raise TaskError(f"task {self.name!r}: label {seen!r} appears in the {split} split "
                            f"({counts[seen]} examples) {where}; accepted labels: "
                            f"{', '.join(self.labels) or 'none'}")

    @property
    def num_labels(self) -> int:
        return len(self.labels)

    @property
    def is_pair(self) -> bool:
        """True when the examples are text pairs (``text_b`` set)."""
        return any(ex.text_b is not None for ex in self.train)

    def label_ids(self, split: str) -> np.ndarray:
        """``(N,)`` int64: the class id (index into ``labels``) of each example of ``split``."""
        index = {lab: i for i, lab in enumerate(self.labels)}
        return np.array([index[ex.label] for ex in self.split(split)], dtype=np.int64)

    def label_counts(self, split: str) -> dict[str, int]:
        """Examples per label in ``split``, in label order (zeros included)."""
        counts = Counter(ex.label for ex in self.split(split))
        return {lab: counts[lab] for lab in self.labels}

    def describe(self) -> str:
        """A table of the split sizes and the examples per label in each split."""
        width = max([len(lab) for lab in self.labels] + [5])
        lines = [f"{self.name}: {self.num_labels} labels, "
                 + ", ".join(f"{n} {s}" for s, n in self.sizes.items()),
                 f"  {'label':<{width}}  " + "  ".join(f"{s:>10}" for s in SPLITS)]
        per_split = [self.label_counts(s) for s in SPLITS]
        for lab in self.labels:
            lines.append(f"  {lab:<{width}}  " + "  ".join(f"{c[lab]:>10}" for c in per_split))
        return "\n".join(lines)

    def _train_sample(self, n: int, seed) -> list[int]:
        """A stratified label budget: at least one example per class when ``n`` >= classes, the
        rest shared in proportion to the class sizes (largest remainders)."""
        return stratified_sample([ex.label for ex in self.train], _budget(self, n), seed)


@dataclass(eq=False)
class QATask(_Splits):
    """Extractive question answering: ``QAExample``\\ s whose answers are spans of their context."""

    name: str
    train: list[QAExample]
    validation: list[QAExample]
    test: list[QAExample]
    metadata: dict = field(default_factory=dict, repr=False)

    def generative(self, split: str = "train", form: str = "question") -> list[tuple[str, str]]:
        """``(prompt, answer)`` pairs of ``split`` for a causal LM (``QAExample.prompt(form)``:
        "question" ends in ``ANSWER_SEPARATOR``); the answer is the first gold answer."""
        return [(ex.prompt(form), ex.answer) for ex in self.split(split)]

    def check_prompt_form(self, form: str) -> None:
        """A TaskError unless every question can be asked in prompt form ``form``."""
        if choice("prompt form", form, PROMPT_FORMS) == "question":
            return
        missing = [ex for s in SPLITS for ex in self.split(s) if ex.statement is None]
        if missing:
            raise TaskError(f"task {self.name!r}: {len(missing)} question(s) have no statement "
                            f"form (the first: {missing[0].question!r}); prompt form "
                            f"'statement' needs one for every question, 'question' does not")

    def describe(self) -> str:
        """The split sizes, the mean context length, and the most frequent answers."""
        lines = [f"{self.name}: question answering, "
                 + ", ".join(f"{n} {s}" for s, n in self.sizes.items())]
        for split in SPLITS:
            examples = self.split(split)
            if not examples:
                continue
            chars = np.mean([len(ex.context) for ex in examples])
            top = Counter(ex.answer for ex in examples).most_common(5)
            lines.append(f"  {split}: mean context {chars:.0f} characters; top answers "
                         + ", ".join(f"{a!r} {n}" for a, n in top))
        return "\n".join(lines)


# ---------------------------------------------------------------------- splitting and sampling


def stratified_split(labels: Sequence, seed, validation: float = 0.1, test: float = 0.1,
                     where: str = "task") -> tuple[list[int], list[int], list[int]]:
    """Indices of train, validation and test, drawn per class with ``seed``.

    Each class of ``n`` examples gives ``round(n * test)`` to test and ``round(n * validation)``
    to validation (halves round up), but keeps at least one for training; each split's
    indices are in a seeded random order, so its classes are mixed.

    >>> stratified_split(["a"] * 10 + ["b"] * 10, seed=0)[1].__len__()
    2
    """
    validation = probability("validation", validation, where=where)
    test = probability("test", test, where=where)
    if validation + test >= 1:
        raise ValueError(f"{where}: validation + test must leave examples for training, got "
                         f"validation={validation} and test={test} (sum {validation + test})")
    by_class: dict = defaultdict(int)
    for lab in labels:
        by_class[lab] += 1
    quota = {}
    for lab, n in by_class.items():
        n_test = int(n * test + 0.5)
        n_val = int(n * validation + 0.5)
        while n - n_test - n_val < 1:   # a rare class keeps one example for training
            if n_test >= n_val and n_test > 0:
                n_test -= 1
            else:
                n_val -= 1
        quota[lab] = (n_test, n_test + n_val)
    rank: dict = defaultdict(int)
    parts: tuple[list[int], list[int], list[int]] = ([], [], [])
    for i in np.random.default_rng(seed).permutation(len(labels)).tolist():
        lab = labels[i]
        r = rank[lab]
        rank[lab] += 1
        n_test, n_held = quota[lab]
        parts[2 if r < n_test else 1 if r < n_held else 0].append(i)
    return parts


def stratified_sample(labels: Sequence, n: int, seed) -> list[int]:
    """``n`` indices (sorted) drawn per class: one per class first when ``n`` >= the number of
    classes (else ``n`` distinct classes drawn at random, one example each), the rest shared
    in proportion to what each class has left, by largest remainders.

    >>> stratified_sample(["a"] * 8 + ["b"] * 2, 5, seed=0).__len__()
    5
    """
    n = non_negative_int("n", n, where="stratified_sample")
    rng = np.random.default_rng(seed)
    members: dict = defaultdict(list)
    for i, lab in enumerate(labels):
        members[lab].append(i)
    classes = list(members)
    if n >= len(labels):
        return list(range(len(labels)))
    if n < len(classes):
        picked = rng.choice(len(classes), size=n, replace=False)
        quota = {classes[c]: 1 for c in picked.tolist()}
    else:
        left = np.array([len(members[c]) - 1 for c in classes], dtype=np.float64)
        share = (n - len(classes)) * left / left.sum() if left.sum() else left
        extra = np.floor(share).astype(np.int64)
        # Largest remainders (ties to the earlier class) get the examples that flooring lost.
        order = np.argsort(-(share - extra), kind="stable")
        extra[order[: n - len(classes) - int(extra.sum())]] += 1
        quota = {c: 1 + int(e) for c, e in zip(classes, extra)}
    chosen = []
    for c, k in quota.items():
        chosen += rng.choice(members[c], size=k, replace=False).tolist()
    return sorted(chosen)
