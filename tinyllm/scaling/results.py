"""Reading a scaling results directory: the shipped one, or one `tinyllm scaling` wrote.

>>> r = load_results()                       # the study shipped with tinyllm (full budget)
>>> r.corpora()
['markov', 'pydoc']
>>> N = r.column("size", "non_embedding_params", corpus="markov")
>>> quick = load_results(shipped("default"))  # the shipped default-budget study

A study that tuned its learning rates (budget `v2`) trained each rung at several rates;
its sweeps hold each rung's best (`tuning.select_tuned`), `lr_runs` every size-sweep run;
likewise the baselines hold each rung's best LSTM (`baselines.best_baselines`).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from .baselines import best_baselines
from .plan import SWEEPS, SYNTHETIC, StudyError, text_digest
from .store import SCHEMA, load_meta, read_csv
from .tuning import select_tuned

#: Where the studies that ship with the package live (CSV and JSON only), one folder per budget.
SHIPPED_ROOT = Path(__file__).parent / "results"
#: Shipped studies, best first: `load_results()` reads the first one present.
SHIPPED_BUDGETS = ("full", "default", "v2")


def _shipped_budgets() -> list[str]:
    return [b for b in SHIPPED_BUDGETS if (SHIPPED_ROOT / b / "study.json").is_file()]


def shipped(budget: str | None = None) -> Path:
    """The folder of the shipped study of `budget` (default: the best one shipped)."""
    present = _shipped_budgets()
    if budget is None and present:
        return SHIPPED_ROOT / present[0]
    if budget not in present:
        raise StudyError(f"no shipped study for budget {budget!r}; accepted: "
                         f"{', '.join(present) or 'none (this installation ships none)'}")
    return SHIPPED_ROOT / budget


def resolve_results(arg: str) -> Path:
    """A results directory from the command line: a path, 'shipped' (the best shipped study)
    or 'shipped:BUDGET' (e.g. shipped:default)."""
    if arg == "shipped":
        return shipped()
    if arg.startswith("shipped:"):
        return shipped(arg.split(":", 1)[1])
    return Path(arg)


#: The study `load_results()` reads by default.
SHIPPED = SHIPPED_ROOT / (_shipped_budgets() or SHIPPED_BUDGETS)[0]

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
    #: every size-sweep run, each rate tried included (`sweeps["size"]` holds the tuned ones)
    lr_runs: list[dict] = field(default_factory=list)
    _window_floors: dict = field(default_factory=dict, repr=False)

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
        """The corpus's entropy rate in nats per character (a synthetic source only: exact for
        the Markov source, estimated to about +-0.2% for the hidden Markov one)."""
        return self.meta.get("corpora", {}).get(corpus, {}).get("entropy_rate_nats")

    def window_floor(self, corpus: str) -> float | None:
        """The least validation loss, in nats per character, of a model that sees windows of
        the study's block size (the source's `window_floor_nats`): above the entropy rate,
        since a window's first targets see less of the past. None when the entropy rate is
        unknown or the corpus no longer regenerates to the study's hash."""
        if corpus not in self._window_floors:
            self._window_floors[corpus] = self._compute_window_floor(corpus)
        return self._window_floors[corpus]

    def _compute_window_floor(self, corpus: str) -> float | None:
        info = self.meta.get("corpora", {}).get(corpus, {})
        if self.entropy_rate(corpus) is None or "data" not in info:
            return None
        from ..data import load_corpus

        regenerated = load_corpus(info["data"])
        source = regenerated.metadata.get("source")
        if source is None or text_digest(regenerated.text) != info.get("sha256"):
            return None
        settings = self.meta["budget"]["markov" if corpus in SYNTHETIC else "text"]
        return source.window_floor_nats(settings["block_size"])

    @property
    def budget(self) -> str:
        return self.meta.get("budget", {}).get("name", "?")


#: Which runs of a study that tuned its learning rates `load_results` reads.
RATES = ("tuned", "rule")


def load_results(root=None, baselines=None, rates: str = "tuned") -> Results:
    """Load a results directory (default: the shipped study, `SHIPPED`), checking its schema.

    `baselines`: a CSV with columns model, params, val_loss_nats (and optionally corpus);
    default `<root>/baselines.csv` when it exists. `rates`: "tuned" (each width's best
    learning rate; each rung's best LSTM) or "rule" (only the runs at Kaplan's rate, and the
    LSTMs at `lstm_lr`: a tuned study as it was before tuning); the same for a study that
    did not tune.
    """
    if rates not in RATES:
        raise StudyError(f"unknown rates {rates!r}; accepted: {', '.join(RATES)}")
    root = shipped() if root is None else Path(root)
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
    tuned, curves = select_tuned(sweeps, read_csv(root / "curves.csv"), rule=rates == "rule")
    return Results(root, meta, tuned, curves,
                   best_baselines(read_baselines(base_path), rule=rates == "rule")
                   if base_path.is_file() else [],
                   lr_runs=sweeps["size"])


def read_baselines(path) -> list[dict]:
    """Rows of a baselines CSV; a missing column is an error naming it."""
    rows = read_csv(path)
    if rows:
        missing = [c for c in BASELINE_COLUMNS if c not in rows[0]]
        if missing:
            raise StudyError(f"baselines file {path} lacks column(s) {missing}; accepted: a CSV "
                             f"with columns {', '.join(BASELINE_COLUMNS)} (corpus optional)")
    return rows
