"""Reading a translation study's results: the shipped study, or any results directory.

>>> r = load_results()                          # doctest: +SKIP
>>> r.tasks(), r.families(), r.sizes()          # doctest: +SKIP
>>> r.value("scan:simple", "seq2seq", "mini")   # test exact match, 0..1  # doctest: +SKIP

``Results.value(task, family, size, column)`` is one cell (None when the run is missing);
``Results.curve`` the (parameters, values) of a family across sizes; ``published(task)`` the
Lake & Baroni figures of a SCAN split.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from ..scaling.store import read_csv, resolve_study_arg, shipped_study
from .plan import FAMILIES, SIZES, TASKS, StudyError
from .store import SCHEMA, load_meta

#: Where the studies that ship with the package live (CSV and JSON only), one folder per budget.
SHIPPED_ROOT = Path(__file__).parent / "results"


def shipped(name: str = "default") -> Path:
    """The folder of the shipped study of budget `name`."""
    return shipped_study(SHIPPED_ROOT, name, "translation", StudyError)


def resolve_results(arg: str) -> Path:
    """A results directory from the command line: a path, 'shipped' or 'shipped:BUDGET'."""
    return resolve_study_arg(arg, shipped)


@dataclass
class Results:
    """The rows of one study (runs.csv) with its study.json."""

    root: Path | None
    meta: dict
    runs: list[dict]

    def tasks(self) -> list[str]:
        """Tasks with finished runs, in the study's order."""
        seen = {r["task"] for r in self.runs}
        return [t for t in TASKS if t in seen]

    def families(self) -> list[str]:
        seen = {r["family"] for r in self.runs}
        return [f for f in FAMILIES if f in seen]

    def sizes(self) -> list[str]:
        """Sizes with finished runs, smallest first."""
        seen = {r["size"] for r in self.runs}
        return [s for s in SIZES if s in seen]

    def row(self, task: str, family: str, size: str) -> dict | None:
        for r in self.runs:
            if (r["task"], r["family"], r["size"]) == (task, family, size):
                return r
        return None

    def value(self, task: str, family: str, size: str, column: str = "test_exact_match"):
        """One cell: `column` of the run, or None when it is missing."""
        r = self.row(task, family, size)
        return None if r is None else r.get(column)

    def params(self, family: str, size: str) -> int | None:
        """Parameters of a family at a size (from any of its runs; the vocabulary of each
        task changes them a little, so this is the first task's)."""
        for task in self.tasks():
            p = self.value(task, family, size, "params")
            if p:
                return int(p)
        return None

    def curve(self, task: str, family: str, column: str = "test_exact_match"):
        """(parameters, values) of a family on a task, over the sizes it has runs for."""
        pairs = [(self.value(task, family, s, "params"), self.value(task, family, s, column))
                 for s in self.sizes()]
        pairs = [(p, v) for p, v in pairs if p is not None and v is not None]
        return [p for p, _ in pairs], [v for _, v in pairs]

    def published(self, task: str) -> dict | None:
        """Lake & Baroni's figures for a SCAN split ({"name", "overall_best",
        "top_for_split"}, percent), else None."""
        return self.meta.get("published", {}).get("splits", {}).get(task)

    @property
    def citation(self) -> str:
        return self.meta.get("published", {}).get("source", "")

    @property
    def budget(self) -> str:
        return self.meta.get("budget", {}).get("name", "?")


def load_results(name: str = "default", root=None) -> Results:
    """The study shipped with tinyllm for budget `name`, or the results directory `root`."""
    root = shipped(name) if root is None else Path(root)
    meta = load_meta(root)
    runs = read_csv(root / "runs.csv")
    bad = [r for r in runs if r.get("schema") != SCHEMA]
    if bad:
        raise StudyError(f"{root / 'runs.csv'}: run {bad[0].get('run_id')!r} has schema "
                         f"{bad[0].get('schema')!r}; this tinyllm reads {SCHEMA!r}")
    if not runs:
        raise StudyError(f"{root} holds no finished runs yet")
    return Results(root, meta, runs)
