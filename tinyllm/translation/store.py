"""A translation study's results directory: study.json, runs.csv and a log, every table atomic.

Results directory (tidy CSV, one row per finished run)::

    study.json   schema, tinyllm version, budget settings, the tasks and families run, the
                 published SCAN figures quoted beside ours, machine, wall time per session
    runs.csv     one row per run (RUN_COLUMNS): exact match, BLEU and chrF on the test split,
                 validation exact match, steps, seconds, parameters
    study.log    one line per event (session start, run finished or failed), appended
    README.md    the tables (`report.write_readme`), rewritten when a session ends
    _work/       scratch run directories while they train (removed when a run is scored)

A finished run's row is written at once: runs.csv is rewritten whole to a temporary file and
renamed over the old one (`tinyllm._io.atomic_write`), so a reader, or a study resumed after a
crash, sees every finished row and never half of one. Running the same study again skips
every run id runs.csv holds.
"""

from __future__ import annotations

import json
import time
from pathlib import Path

from .._io import atomic_write
from ..finetuning.store import machine
from ..scaling.store import csv_text, read_csv, read_study_json
from .plan import FAMILIES, PUBLISHED, TASKS, StudyError, StudyPlan

#: The results' format: a directory written under another schema is refused, not mixed.
SCHEMA = "tinyllm-translation/1"
#: The columns of runs.csv, in order. Exact match is a fraction (0..1); BLEU and chrF are
#: 0..100 (sacrebleu's scale). `test_pairs` is the split's size, `test_scored` the pairs
#: decoded (all of them unless the budget caps it).
RUN_COLUMNS = (
    "run_id", "task", "family", "size", "params", "vocab_size", "block_size", "train_pairs",
    "validation_pairs", "test_pairs", "steps", "batch_size", "lr", "warmup_steps", "dropout",
    "init", "train_loss", "val_loss", "val_exact_match", "val_pairs", "test_exact_match",
    "test_bleu", "test_chrf", "test_scored", "bleu_tokenize", "train_s", "test_s", "wall_s",
    "threads", "seed", "version", "schema",
)


class ResultsStore:
    """A results directory: study.json, runs.csv, study.log and _work/."""

    def __init__(self, root):
        self.root = Path(root)
        self.work = self.root / "_work"
        self.csv_path = self.root / "runs.csv"
        self.log_path = self.root / "study.log"

    def rows(self) -> list[dict]:
        """The finished runs (none yet: an empty list)."""
        return read_csv(self.csv_path)

    def done(self) -> set[str]:
        """Run ids of every finished run."""
        return {r["run_id"] for r in self.rows()}

    def add(self, row: dict) -> None:
        """Write one finished run's row (runs.csv replaced atomically)."""
        missing = [c for c in ("run_id", "task", "family", "size") if row.get(c) is None]
        if missing:
            raise ValueError(f"a run's row needs {missing}; got keys {sorted(row)}")
        rows = [r for r in self.rows() if r["run_id"] != row["run_id"]] + [row]
        atomic_write(self.csv_path, csv_text(rows, RUN_COLUMNS))

    def log(self, line: str) -> None:
        """Append one time-stamped line to study.log."""
        with open(self.log_path, "a", encoding="utf-8") as f:
            f.write(f"{time.strftime('%Y-%m-%d %H:%M:%S')} {line}\n")

    # ------------------------------------------------------------------ study.json
    def open(self, plan: StudyPlan) -> None:
        """Create the directory, or check that the one there holds this same study (the
        tasks and families run so far are merged: a study may be run a task at a time)."""
        self.root.mkdir(parents=True, exist_ok=True)
        self.work.mkdir(exist_ok=True)
        meta = study_meta(plan)
        if (self.root / "study.json").is_file():
            old = load_meta(self.root)
            check_same_study(old, meta, self.root)
            meta["sessions"], meta["wall_s"] = old.get("sessions", []), old.get("wall_s", 0.0)
            meta["tasks"] = [t for t in TASKS if t in {*old["tasks"], *meta["tasks"]}]
            meta["families"] = [f for f in FAMILIES
                                if f in {*old["families"], *meta["families"]}]
        atomic_write(self.root / "study.json", json.dumps(meta, indent=1))

    def add_session(self, session: dict) -> None:
        """Append one `run_study` call (start, wall time, runs trained) to study.json."""
        meta = load_meta(self.root)
        meta.setdefault("sessions", []).append(session)
        meta["wall_s"] = round(sum(s["wall_s"] for s in meta["sessions"]), 1)
        atomic_write(self.root / "study.json", json.dumps(meta, indent=1))


def study_meta(plan: StudyPlan) -> dict:
    """What study.json says of `plan` (through JSON once, so tuples compare as lists)."""
    from .. import __version__

    return json.loads(json.dumps({
        "schema": SCHEMA, "tinyllm_version": __version__, "budget": plan.budget.to_dict(),
        "tasks": list(plan.tasks), "families": list(plan.families), "published": PUBLISHED,
        "machine": machine(), "sessions": [], "wall_s": 0.0}))


def load_meta(root) -> dict:
    """study.json of a results directory, checked for this schema."""
    return read_study_json(root, SCHEMA, "a translation study's results directory",
                           "tinyllm translation-study", StudyError)


def check_same_study(old: dict, new: dict, root: Path) -> None:
    """Refuse to add runs to a directory that holds a different study."""
    if old.get("tinyllm_version") != new["tinyllm_version"]:
        raise StudyError(
            f"{root} holds results from tinyllm {old.get('tinyllm_version')}, not this "
            f"{new['tinyllm_version']}; mixing versions would mix different code. Accepted: "
            "another --out directory, or delete this one to start over")
    if old.get("budget") != new["budget"]:
        raise StudyError(
            f"{root} holds a study with budget {old.get('budget', {}).get('name')!r} and other "
            f"settings than this one ({new['budget']['name']!r}); mixing them would mix "
            "different experiments. Accepted: the same --budget, or another --out directory")
