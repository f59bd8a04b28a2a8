"""A fine-tuning study's results directory: study.json and two CSVs, every file atomic.

Results directory (tidy CSV, one row per finished run)::

    study.json     schema, tinyllm version, budget settings, tasks (sizes, labels, Bayes
                   accuracy), pre-training corpus (size, hash) and the second stage's text
                   (size, hash; a budget with one), machine, wall time per session
    runs.csv       one row per scored run (RUN_COLUMNS): pretrained, scratch, logreg, majority
                   ...; a question-answering task's test_accuracy is its exact match, its
                   test_macro_f1 the SQuAD token F1
    pretrain.csv   one row per pre-training run (PRETRAIN_COLUMNS; model gpt, or bert)
    pretrain/      the pre-trained runs (corpus.txt, and continue.txt for a second stage; one
                   run directory per size, "mini" for a GPT, "bert-mini" for a BERT, and
                   "mini-stage1" for a GPT's first stage when it has two): reused by every
                   task and label budget, and by a resumed study; not shipped
    _work/         scratch run directories of fine-tuning runs (removed when a run finishes)

A finished run's row is written at once (`tinyllm._io.atomic_write`), so an interruption loses
only the runs in progress; running the same study again skips every run id already in a CSV
and continues an interrupted pre-training run from its last checkpoint.
"""

from __future__ import annotations

import json
import os
import platform
import sys
from pathlib import Path

from .._io import atomic_write
from ..scaling.store import csv_text, read_csv, read_study_json
from .plan import StudyError, StudyPlan, text_digest

#: The results' format: a directory written under another schema is refused, not mixed.
SCHEMA = "tinyllm-finetuning/1"
#: The columns of runs.csv, in order. Baseline rows leave the size columns empty; `params` of
#: logreg is its weights and biases (K x F + K).
RUN_COLUMNS = (
    "run_id", "task", "method", "size", "n_layer", "n_head", "n_embd", "params",
    "non_embedding_params", "label_budget", "train_examples", "seed", "steps", "epochs", "lr",
    "batch_size", "block_size", "features", "pretrain_tokens", "pretrain_val_loss_nats",
    "val_accuracy", "val_macro_f1", "test_accuracy", "test_macro_f1", "test_loss",
    "test_examples", "bayes_test_accuracy", "wall_s", "threads", "version", "schema",
)
#: The columns of pretrain.csv, in order.
PRETRAIN_COLUMNS = (
    "run_id", "model", "size", "n_layer", "n_head", "n_embd", "vocab_size", "params",
    "non_embedding_params", "steps", "batch_size", "block_size", "tokens", "lr",
    "train_loss_nats", "val_loss_nats", "val_bits_per_char", "wall_s", "threads", "version",
    "schema",
)


class ResultsStore:
    """A results directory: study.json, runs.csv, pretrain.csv, pretrain/ and _work/."""

    def __init__(self, root):
        self.root = Path(root)
        self.work = self.root / "_work"
        self.pretrain_dir = self.root / "pretrain"

    @property
    def corpus_path(self) -> Path:
        return self.pretrain_dir / "corpus.txt"

    @property
    def continue_path(self) -> Path:
        """The second stage's text (`Budget.continue_corpora`)."""
        return self.pretrain_dir / "continue.txt"

    def rows(self, kind: str = "runs") -> list[dict]:
        """The finished rows of runs.csv (kind "runs") or pretrain.csv ("pretrain")."""
        return read_csv(self.root / f"{kind}.csv")

    def done(self) -> set[str]:
        """Run ids of every finished run, both CSVs together."""
        return {r["run_id"] for kind in ("runs", "pretrain") for r in self.rows(kind)}

    def add(self, row: dict, kind: str = "runs") -> None:
        """Write one finished run's row (the CSV replaced atomically)."""
        columns = RUN_COLUMNS if kind == "runs" else PRETRAIN_COLUMNS
        rows = [r for r in self.rows(kind) if r["run_id"] != row["run_id"]] + [row]
        atomic_write(self.root / f"{kind}.csv", csv_text(rows, columns))

    # ------------------------------------------------------------------ study.json
    def open(self, plan: StudyPlan, corpus: str, continued: str = "") -> None:
        """Create the directory and the pre-training corpus (and the second stage's text,
        `continued`, when there is one), or check that the directory holds this same
        study."""
        self.root.mkdir(parents=True, exist_ok=True)
        self.work.mkdir(exist_ok=True)
        self.pretrain_dir.mkdir(exist_ok=True)
        meta = study_meta(plan, corpus, continued)
        path = self.root / "study.json"
        if path.is_file():
            old = load_meta(self.root)
            check_same_study(old, meta, self.root)
            meta["sessions"] = old.get("sessions", [])
        for text, where in ((corpus, self.corpus_path), (continued, self.continue_path)):
            if text and (not where.is_file() or text_digest(
                    where.read_text(encoding="utf-8")) != text_digest(text)):
                atomic_write(where, text)
        atomic_write(path, json.dumps(meta, indent=1))

    def add_session(self, session: dict) -> None:
        """Append one `run_study` call (start, wall time, runs trained) to study.json."""
        meta = load_meta(self.root)
        meta.setdefault("sessions", []).append(session)
        meta["wall_s"] = round(sum(s["wall_s"] for s in meta["sessions"]), 1)
        atomic_write(self.root / "study.json", json.dumps(meta, indent=1))


def machine() -> dict:
    """The machine and software a study ran on (for study.json)."""
    import numpy as np

    from .. import kernels

    return {"python": sys.version.split()[0], "numpy": np.__version__,
            "platform": platform.platform(), "processor": platform.machine(),
            "cpus": os.cpu_count(), "kernels": kernels.backend()}


def study_meta(plan: StudyPlan, corpus: str, continued: str = "") -> dict:
    """What study.json says of `plan` (through JSON once, so tuples compare as lists): the
    second stage's text `continued` is described only when there is one."""
    from .. import __version__

    budget = plan.budget
    texts = {"pretrain_corpus": _text_meta(budget.pretrain_corpora, corpus)}
    if continued:
        texts["continue_text"] = _text_meta(budget.continue_corpora, continued)
    return json.loads(json.dumps({
        "schema": SCHEMA, "tinyllm_version": __version__, "budget": budget.to_dict(),
        "tasks": {k: vars(v) for k, v in plan.tasks.items()}, **texts,
        "machine": machine(), "sessions": [], "wall_s": 0.0}))


def _text_meta(corpora, text: str) -> dict:
    return {"corpora": list(corpora), "chars": len(text), "sha256": text_digest(text)}


def load_meta(root) -> dict:
    """study.json of a results directory, checked for this schema."""
    return read_study_json(root, SCHEMA, "a fine-tuning study's results directory",
                           "tinyllm finetune-study", StudyError)


def check_same_study(old: dict, new: dict, root: Path) -> None:
    """Refuse to add runs to a directory that holds a different study."""
    for key, what in (("tinyllm_version", "tinyllm version"), ("budget", "budget settings"),
                      ("tasks", "tasks"), ("pretrain_corpus", "pre-training corpus"),
                      ("continue_text", "second pre-training stage's text")):
        if old.get(key) != new.get(key):
            raise StudyError(
                f"{root} holds a study with other {what} than this one (there: "
                f"{_short(old.get(key))}; here: {_short(new.get(key))}); mixing them would mix "
                "different experiments. Accepted: the same --budget, or another --out "
                "directory")


def _short(value) -> str:
    text = json.dumps(value)
    return text if len(text) < 80 else text[:77] + "..."
