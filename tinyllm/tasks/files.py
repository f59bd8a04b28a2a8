"""Tasks from the user's files: ``csv:FILE``, ``jsonl:FILE`` (classification) and ``squad:FILE``.

CSV (UTF-8, a header row, then one example per row) and JSON Lines (one object per line) hold
a ``text`` and a ``label`` column, or ``text_a``, ``text_b`` and ``label`` for text pairs;
other names are chosen with ``text_column``, ``text_b_column`` and ``label_column``. A label
is a string (a JSON integer becomes its decimal string). Blank lines are skipped.

    text,label
    "a fine, warm film",pos
    dull,neg

Splits: a ``split`` column (``split_column``), when the file has one, puts each row in
"train", "validation" or "test". Without it the rows are split per label, ``validation`` and
``test`` (0.1 each) of each label drawn by ``seed`` (``stratified_split``: the same file and
seed give the same split). The labels are those of the training split, in sorted order; a
label found only in validation or test is an error.

SQuAD (``squad:FILE``) is SQuAD's JSON layout: ``data`` -> ``paragraphs`` -> ``context`` and
``qas`` -> ``id``, ``question``, ``answers`` -> ``text``, ``answer_start``. Paragraphs, not
questions, are split (``validation`` and ``test`` of them, by ``seed``), so that no context
is seen in training and again in test; questions without answers (SQuAD 2.0's unanswerable
ones) are left out and counted in ``metadata["unanswerable"]``.

Every mistake raises a ``TaskError`` naming the file and the line, row or question.
"""

from __future__ import annotations

import csv
import io
import json
import os
from pathlib import Path

from .base import (
    SPLITS,
    ClassificationTask,
    Example,
    QAExample,
    QATask,
    TaskError,
    check_span,
    stratified_split,
)

SQUAD_LAYOUT = ("data -> paragraphs -> context, qas -> id, question, "
                "answers -> text, answer_start")


def csv_task(path: str | os.PathLike, text_column: str | None = None,
             text_b_column: str | None = None, label_column: str = "label",
             split_column: str = "split", validation: float = 0.1, test: float = 0.1,
             seed: int = 0) -> ClassificationTask:
    """A classification task from a CSV file with a header row (see the module docstring)."""
    path = Path(path)
    text = _read_text(path)
    reader = csv.reader(io.StringIO(text, newline=""))
    rows: list[tuple[int, dict]] = []
    try:
        header = next(reader)
        for number, row in enumerate(reader, start=1):
            if not row:
                continue
            if len(row) != len(header):
                few = "few" if len(row) < len(header) else "many"
                raise TaskError(
                    f"{_name(path)}: row {number} (line {reader.line_num}) has too {few} fields: "
                    f"{len(row)}, but the header names {len(header)} ({', '.join(header)}); "
                    "quote a field that holds a comma")
            rows.append((reader.line_num, dict(zip(header, row))))
    except csv.Error as exc:
        raise TaskError(f"{_name(path)}, line {reader.line_num}: not valid CSV ({exc})") from None
    if not rows:
        raise TaskError(f"{_name(path)}: has a header ({', '.join(header)}) but no rows; "
                        "a task file needs at least one example")
    return _classification(f"csv:{path}", path, header, rows, text_column, text_b_column,
                           label_column, split_column, validation, test, seed)


def jsonl_task(path: str | os.PathLike, text_column: str | None = None,
               text_b_column: str | None = None, label_column: str = "label",
               split_column: str = "split", validation: float = 0.1, test: float = 0.1,
               seed: int = 0) -> ClassificationTask:
    """A classification task from a JSON Lines file, one object per line (see the module
    docstring); its columns are the keys of the first object."""
    path = Path(path)
    rows: list[tuple[int, dict]] = []
    for number, line in enumerate(_read_text(path).splitlines(), start=1):
        if not line.strip():
            continue
        try:
            row = json.loads(line)
        except json.JSONDecodeError as exc:
            raise TaskError(f"{_name(path)}, line {number}: malformed JSON ({exc.msg} at column "
                            f"{exc.colno}); each line must be one JSON object") from None
        if not isinstance(row, dict):
            raise TaskError(f"{_name(path)}, line {number}: a JSON {type(row).__name__}, not an "
                            "object; each line must be one JSON object such as "
                            '{"text": "...", "label": "..."}')
        rows.append((number, row))
    return _classification(f"jsonl:{path}", path, list(rows[0][1]), rows, text_column,
                           text_b_column, label_column, split_column, validation, test, seed)


def squad_task(path: str | os.PathLike, validation: float = 0.1, test: float = 0.1,
               seed: int = 0) -> QATask:
    """An extractive QA task from a file in SQuAD's JSON layout (see the module docstring)."""
    path = Path(path)
    text = _read_text(path)
    try:
        data = json.loads(text)
    except json.JSONDecodeError as exc:
        raise TaskError(f"{_name(path)}, line {exc.lineno}: malformed JSON ({exc.msg} at column "
                        f"{exc.colno})") from None
    paragraphs: list[list[QAExample]] = []
    unanswerable = 0
    ids: set[str] = set()
    for a, article in enumerate(_field(path, data, "data", list, "the file")):
        where = f"data[{a}]"
        for p, paragraph in enumerate(_field(path, article, "paragraphs", list, where)):
            where = f"data[{a}].paragraphs[{p}]"
            context = _field(path, paragraph, "context", str, where)
            questions = []
            for q, qa in enumerate(_field(path, paragraph, "qas", list, where)):
                example = _squad_question(path, context, qa, f"{where}.qas[{q}]", ids)
                if example is None:
                    unanswerable += 1
                else:
                    questions.append(example)
            if questions:
                paragraphs.append(questions)
    if not paragraphs:
        raise TaskError(f"{_name(path)}: holds no answered question; a SQuAD file needs at least "
                        f"one ({SQUAD_LAYOUT})")
    parts = stratified_split([0] * len(paragraphs), seed, validation, test, where=_name(path))
    splits = [[ex for i in sorted(idx) for ex in paragraphs[i]] for idx in parts]
    meta = {"path": str(path.resolve()), "seed": seed, "unanswerable": unanswerable}
    return QATask(f"squad:{path}", *splits, metadata=meta)


# ---------------------------------------------------------------------- helpers


def _name(path: Path) -> str:
    return f"task file {str(path)!r}"


def _read_text(path: Path) -> str:
    """The file as text (UTF-8, a byte-order mark allowed); errors name the file."""
    try:
        raw = path.read_bytes()
    except FileNotFoundError:
        raise TaskError(f"no task file at {str(path)!r}") from None
    except IsADirectoryError:
        raise TaskError(f"{str(path)!r} is a directory; give a task file") from None
    if not raw.strip():
        raise TaskError(f"{_name(path)} is empty ({len(raw)} bytes); it needs at least one "
                        "example")
    try:
        return raw.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        line = raw.count(b"\n", 0, exc.start) + 1
        raise TaskError(f"{_name(path)}, line {line}: byte 0x{raw[exc.start]:02x} at offset "
                        f"{exc.start} is not UTF-8; convert the file to UTF-8") from None


def _classification(name, path, columns, rows, text_column, text_b_column, label_column,
                    split_column, validation, test, seed) -> ClassificationTask:
    """The task of ``rows`` (line number, record) after resolving and checking the columns."""
    text_column, text_b_column = _text_columns(path, columns, text_column, text_b_column)
    if label_column not in columns:
        raise TaskError(f"{_name(path)}: unknown label column {label_column!r}; the columns "
                        f"found: {', '.join(columns)} (name another with label_column=)")
    has_split = split_column in columns
    needed = [c for c in (text_column, text_b_column, label_column) if c is not None]
    needed += [split_column] if has_split else []
    examples, split_of = [], []
    for line, row in rows:
        missing = [c for c in needed if c not in row]
        if missing:
            raise TaskError(f"{_name(path)}, line {line}: no {missing[0]!r} column; the columns "
                            f"there: {', '.join(row)}")
        label = _label(path, line, row[label_column])
        texts = [_text(path, line, row[c], c) for c in (text_column, text_b_column)
                 if c is not None]
        examples.append(Example(texts[0], label, texts[1] if len(texts) > 1 else None))
        if has_split:
            split_of.append(_split_value(path, line, row[split_column]))
    if has_split:
        parts = [[ex for ex, s in zip(examples, split_of) if s == split] for split in SPLITS]
    else:
        idx = stratified_split([ex.label for ex in examples], seed, validation, test,
                                where=_name(path))
        parts = [[examples[i] for i in sorted(part)] for part in idx]
    labels = sorted({ex.label for ex in parts[0]})
    meta = {"path": str(path.resolve()), "seed": None if has_split else seed,
            "columns": {"text": text_column, "text_b": text_b_column, "label": label_column,
                        "split": split_column if has_split else None}}
    return ClassificationTask(name, labels, *parts, metadata=meta)


def _text_columns(path, columns, text_column, text_b_column) -> tuple[str, str | None]:
    """The text column(s): as named, else ``text``, else the pair ``text_a``, ``text_b``."""
    for kind, column in (("text", text_column), ("text_b", text_b_column)):
        if column is not None and column not in columns:
            raise TaskError(f"{_name(path)}: unknown {kind} column {column!r}; the columns "
                            f"found: {', '.join(columns)}")
    if text_column is not None:
        return text_column, text_b_column
    if "text" in columns:
        return "text", text_b_column
    if "text_a" in columns and "text_b" in columns:
        return "text_a", "text_b"
    raise TaskError(f"{_name(path)}: no text column; the columns found: {', '.join(columns)}; "
                    "accepted: 'text', or 'text_a' and 'text_b', or one named with text_column=")


def _label(path, line, value) -> str:
    if isinstance(value, str) or (isinstance(value, int) and not isinstance(value, bool)):
        return str(value)
    raise TaskError(f"{_name(path)}, line {line}: label {value!r} is a "
                    f"{type(value).__name__}; accepted: a string or an integer")


def _text(path, line, value, column) -> str:
    if isinstance(value, str):
        return value
    raise TaskError(f"{_name(path)}, line {line}: {column} {value!r} is a "
                    f"{type(value).__name__}; accepted: a string")


def _split_value(path, line, value) -> str:
    if value in SPLITS:
        return value
    raise TaskError(f"{_name(path)}, line {line}: split {value!r} is not one of "
                    f"{', '.join(SPLITS)}")


def _field(path, record, key, kind, where):
    """``record[key]`` when the record is an object holding a ``kind`` there, else an error."""
    if not isinstance(record, dict) or key not in record:
        raise TaskError(f"{_name(path)}: {where} has no {key!r}; expected SQuAD's layout "
                        f"({SQUAD_LAYOUT})")
    value = record[key]
    if not isinstance(value, kind):
        raise TaskError(f"{_name(path)}: {where}.{key} is a {type(value).__name__}, not a "
                        f"{kind.__name__} ({SQUAD_LAYOUT})")
    return value


def _squad_question(path, context, qa, where, ids: set) -> QAExample | None:
    """One question, its spans checked against ``context``; None when it has no answer."""
    qid = _field(path, qa, "id", str, where)
    question = _field(path, qa, "question", str, where)
    if qid in ids:
        raise TaskError(f"{_name(path)}: question id {qid!r} ({where}) repeats; ids must be "
                        "unique, predictions are matched to questions by id")
    ids.add(qid)
    answers = _field(path, qa, "answers", list, where)
    if not answers:
        return None
    texts, starts = [], []
    for i, answer in enumerate(answers):
        text = _field(path, answer, "text", str, f"{where}.answers[{i}]")
        start = _field(path, answer, "answer_start", int, f"{where}.answers[{i}]")
        check_span(context, text, start, where=f"{_name(path)}: question {qid!r}")
        texts.append(text)
        starts.append(start)
    return QAExample(qid, context, question, tuple(texts), tuple(starts))
