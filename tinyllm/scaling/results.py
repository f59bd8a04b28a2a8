"""Reading a scaling results directory: the shipped one, or one `tinyllm scaling` wrote.

>>> r = load_results()                       # the study shipped with tinyllm
>>> r.corpora()
['markov', 'pydoc']
>>> N = r.column("size", "non_embedding_params", corpus="markov")
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from .sweep import SCHEMA, SWEEPS, StudyError, load_meta, read_csv

#: The default-budget study that ships with the package (CSV and JSON only).
SHIPPED = Path(__file__).parent / "results" / "default"

#: Columns a baselines CSV (n-gram, LSTM, ...) must have to be drawn beside the Transformer.
BASELINE_COLUMNS = ("model", "params", "val_loss_nats")


@dataclass
class Results:
    """The rows of every sweep of one study, with its metadata."""

    root: Path
    meta: dict
    sweeps: dict[str, list[dict]]
    curves: list[dict]
    baselines: list[dict] = field(default_factory=list)

    def corpora(self) -> list[str]:
        """Corpora with a size or IsoFLOP sweep, in study.json's order."""
        seen = {r["corpus"] for s in ("size", "isoflop") for r in self.sweeps.get(s, [])}
        return [c for c in self.meta.get("corpora", {}) if c in seen]

    def rows(self, sweep: str, corpus: str | None = None) -> list[dict]:
        if sweep == "curves":
            rows = self.curves
        elif sweep == "baselines":
            rows = self.baselines
        elif sweep in SWEEPS:
            rows = self.sweeps.get(sweep, [])
        else:
            raise StudyError(f"unknown sweep {sweep!r}; accepted: "
                             f"{', '.join(SWEEPS + ('curves', 'baselines'))}")
        return [r for r in rows if corpus is None or r.get("corpus") == corpus]

    def column(self, sweep: str, name: str, corpus: str | None = None) -> np.ndarray:
        """One column of a sweep as a float array (None -> nan)."""
        return np.array([np.nan if r.get(name) is None else r[name]
                         for r in self.rows(sweep, corpus)], dtype=float)

    def entropy_rate(self, corpus: str) -> float | None:
        """The corpus's exact entropy rate in nats per character (Markov source only)."""
        return self.meta.get("corpora", {}).get(corpus, {}).get("entropy_rate_nats")

    @property
    def budget(self) -> str:
        return self.meta.get("budget", {}).get("name", "?")


def load_results(root=None, baselines=None) -> Results:
    """Load a results directory (default: the shipped study), checking its schema.

    `baselines`: a CSV with columns model, params, val_loss_nats (and optionally corpus);
    default `<root>/baselines.csv` when it exists.
    """
    root = SHIPPED if root is None else Path(root)
    meta = load_meta(root)
    sweeps = {s: read_csv(root / f"{s}.csv") for s in SWEEPS}
    for sweep, rows in sweeps.items():
        bad = [r for r in rows if r.get("schema") != SCHEMA]
        if bad:
            raise StudyError(f"{root / (sweep + '.csv')}: run {bad[0].get('run_id')!r} has "
                             f"schema {bad[0].get('schema')!r}; this tinyllm reads {SCHEMA!r}")
    if not any(sweeps.values()):
        raise StudyError(f"{root} holds no finished runs yet")
    base_path = Path(baselines) if baselines else root / "baselines.csv"
    return Results(root, meta, sweeps, read_csv(root / "curves.csv"),
                   read_baselines(base_path) if base_path.is_file() else [])


def read_baselines(path) -> list[dict]:
    """Rows of a baselines CSV; a missing column is an error naming it."""
    rows = read_csv(path)
    if rows:
        missing = [c for c in BASELINE_COLUMNS if c not in rows[0]]
        if missing:
            raise StudyError(f"baselines file {path} lacks column(s) {missing}; accepted: a CSV "
                             f"with columns {', '.join(BASELINE_COLUMNS)} (corpus optional)")
    return rows
