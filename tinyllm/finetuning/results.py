"""Reading a fine-tuning study's results, and the numbers the study reports.

>>> r = load_results()                         # the study shipped with tinyllm (default budget)
>>> r.tasks(), r.sizes()
(['pydoc-topics', 'stdlib-docstrings', 'markov-source'], ['nano', 'micro', 'tiny', 'mini'])
>>> acc = r.cell("markov-source", "pretrained", "all", size="mini")["mean"]

- ``Results.cell(task, method, budget, size)``: test accuracy (or another column) averaged
  over seeds, with its standard deviation and the number of seeds.
- ``labels_to_match``: the ULMFiT comparison (Howard & Ruder 2018): how many labels the
  scratch model needs to reach the accuracy the pre-trained one has at 32 (or 128) labels,
  interpolated log-linearly between the study's label budgets.
- ``bayes_gap``: ``markov-source`` accuracy against the exact Bayes-optimal accuracy.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from ..scaling.store import read_csv, resolve_study_arg, shipped_study
from .plan import ALL, EXTRACTIVE_METHODS, METHODS, SIZED_METHODS, StudyError
from .store import SCHEMA, load_meta

#: Where the studies that ship with the package live (CSV and JSON only), one folder per budget.
SHIPPED_ROOT = Path(__file__).parent / "results"


def shipped(budget: str = "default") -> Path:
    """The folder of the shipped study of budget `budget`."""
    return shipped_study(SHIPPED_ROOT, budget, "fine-tuning", StudyError)


def resolve_results(arg: str) -> Path:
    """A results directory from the command line: a path, 'shipped' or 'shipped:BUDGET'."""
    return resolve_study_arg(arg, shipped)


def budget_key(value) -> str:
    """A label budget as the text used in tables and run ids ("32", "all")."""
    return str(value)


@dataclass
class Results:
    """The rows of one study (runs.csv, pretrain.csv) with its study.json."""

    root: Path
    meta: dict
    runs: list[dict]
    pretrain: list[dict] = field(default_factory=list)

    def tasks(self) -> list[str]:
        """Tasks with finished runs, in the budget's order."""
        seen = {r["task"] for r in self.runs}
        return [t for t in self.meta["budget"]["tasks"] if t in seen]

    def sizes(self) -> list[str]:
        """GPT sizes with finished runs, smallest first."""
        seen = {r["size"] for r in self.runs if r.get("size")}
        return [s for s in self.meta["budget"]["sizes"] if s in seen]

    def label_budgets(self) -> list[str]:
        return [budget_key(b) for b in self.meta["budget"]["label_budgets"]]

    def rows(self, task=None, method=None, budget=None, size=None) -> list[dict]:
        return [r for r in self.runs
                if (task is None or r["task"] == task)
                and (method is None or r["method"] == method)
                and (budget is None or budget_key(r["label_budget"]) == budget_key(budget))
                and (size is None or r.get("size") == size)]

    def cell(self, task: str, method: str, budget, size: str | None = None,
             column: str = "test_accuracy") -> dict:
        """{"mean", "std", "n", "labels"}: `column` over the seeds of one cell (nan if none)."""
        rows = self.rows(task, method, budget, size if method in SIZED_METHODS else None)
        values = np.array([r[column] for r in rows if r.get(column) is not None], dtype=float)
        labels = [r["train_examples"] for r in rows]
        return {"mean": float(values.mean()) if len(values) else math.nan,
                "std": float(values.std()) if len(values) > 1 else 0.0, "n": len(values),
                "labels": int(np.mean(labels)) if labels else None}

    def curve(self, task: str, method: str, size: str | None = None,
              column: str = "test_accuracy") -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """(labels, mean, std) over the label budgets that have runs."""
        cells = [self.cell(task, method, b, size, column) for b in self.label_budgets()]
        cells = [c for c in cells if c["n"]]
        return (np.array([c["labels"] for c in cells], dtype=float),
                np.array([c["mean"] for c in cells]), np.array([c["std"] for c in cells]))

    def params(self, size: str, method: str = "pretrained") -> int | None:
        """Parameters of the size's model for `method` (a BERT's for the extractive
        methods, else the GPT's), from any of its runs."""
        bert = method in EXTRACTIVE_METHODS
        for r in self.runs:
            if (r.get("size") == size and r.get("params")
                    and (r.get("method") in EXTRACTIVE_METHODS) == bert):
                return int(r["params"])
        return None

    def is_qa(self, task: str) -> bool:
        """A question-answering task (its accuracy is exact match)."""
        return not self.meta.get("tasks", {}).get(task, {}).get("num_labels", 1)

    def bayes(self, task: str) -> float | None:
        """The exact Bayes-optimal test accuracy of a task (markov-source), else None."""
        return self.meta.get("tasks", {}).get(task, {}).get("bayes_test_accuracy")

    @property
    def budget(self) -> str:
        return self.meta.get("budget", {}).get("name", "?")


def load_results(root=None) -> Results:
    """Load a results directory (default: the shipped default-budget study)."""
    root = shipped() if root is None else Path(root)
    meta = load_meta(root)
    runs = read_csv(root / "runs.csv")
    bad = [r for r in runs if r.get("schema") != SCHEMA]
    if bad:
        raise StudyError(f"{root / 'runs.csv'}: run {bad[0].get('run_id')!r} has schema "
                         f"{bad[0].get('schema')!r}; this tinyllm reads {SCHEMA!r}")
    if not runs:
        raise StudyError(f"{root} holds no finished runs yet")
    return Results(root, meta, runs, read_csv(root / "pretrain.csv"))


# ---------------------------------------------------------------------- what the study reports
def labels_to_match(results: Results, task: str, size: str, reference,
                    method: str = "pretrained", baseline: str = "scratch") -> dict:
    """How many labels scratch training (`baseline`) needs to reach the pre-trained accuracy
    (`method`) at `reference` labels (ULMFiT's comparison).

    Returns {"target" (pre-trained accuracy), "reference_labels", "labels" (None when scratch
    never reaches it within the budgets, or when the pre-trained model does no better than
    the majority class: then there is nothing to match), "ratio", "note"}. Between two
    budgets the label count is interpolated linearly in log(labels); scratch already matching
    at the smallest budget gives that budget (a ratio of at most its share).
    """
    target = results.cell(task, method, reference, size)
    ref_labels = target["labels"]
    labels, acc, _ = results.curve(task, baseline, size)
    out = {"target": target["mean"], "reference_labels": ref_labels, "labels": None,
           "ratio": None, "note": ""}
    if not target["n"] or not len(labels):
        out["note"] = "no runs"
        return out
    chance = results.cell(task, "majority", reference)
    if chance["n"] and target["mean"] <= chance["mean"]:
        out["note"] = (f"nothing to match: the pre-trained model is at or below the majority "
                       f"class ({chance['mean']:.3f})")
        return out
    hits = np.nonzero(acc >= target["mean"])[0]
    if not len(hits):
        out["note"] = (f"never within the budgets (scratch reaches {acc.max():.3f} with "
                       f"{int(labels[acc.argmax()])} labels)")
        return out
    i = int(hits[0])
    if i == 0:
        need = labels[0]
        out["note"] = "scratch matches it at the smallest budget" if labels[0] <= ref_labels \
            else ""
    else:
        a0, a1 = acc[i - 1], acc[i]
        t = (target["mean"] - a0) / (a1 - a0) if a1 > a0 else 1.0
        need = math.exp(math.log(labels[i - 1]) + t * (math.log(labels[i]) -
                                                        math.log(labels[i - 1])))
    out["labels"] = int(round(need))
    out["ratio"] = need / ref_labels
    return out


def bayes_gap(results: Results, task: str = "markov-source") -> list[dict]:
    """Accuracy of every method at the largest label budget against the Bayes-optimal one:
    rows {"method", "size", "accuracy", "bayes", "gap_points"} (gap = 100 x (bayes - acc))."""
    bayes = results.bayes(task)
    if bayes is None or task not in results.tasks():
        return []
    budget = results.label_budgets()[-1]
    rows = []
    for method in METHODS:
        sizes = results.sizes() if method in SIZED_METHODS else [None]
        for size in sizes:
            c = results.cell(task, method, budget, size)
            if c["n"]:
                rows.append({"method": method, "size": size, "accuracy": c["mean"],
                             "bayes": bayes, "gap_points": 100 * (bayes - c["mean"])})
    return rows


def reference_budgets(results: Results) -> list:
    """The label budgets ULMFiT's comparison starts from: the two smallest of the study."""
    return [b for b in results.label_budgets() if b != ALL][:2]
