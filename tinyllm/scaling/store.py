"""A study's results directory: study.json, one CSV per sweep, the curves; every file atomic.

Results directory (tidy CSV, one row per run; all numbers per token in nats and bits)::

    study.json     schema, tinyllm version, budget settings, corpora (size, hash, entropy rate)
    size.csv  isoflop.csv  task.csv      one row per finished run
    curves.csv     (run, tokens, loss) from every evaluation of every run
    _work/         scratch run directories while they train (removed when a run finishes)

Each finished run is written at once (the CSV is rewritten to a temporary file and renamed
over the old one, `tinyllm._io.atomic_write`), so a crash or Ctrl-C loses only the runs still
training; running the same study again skips what is done.
"""

from __future__ import annotations

import csv
import io
import json
from dataclasses import asdict
from pathlib import Path

from .._io import atomic_write
from .plan import SWEEPS, StudyError, StudyPlan

#: The results' format: a directory written under another schema is refused, not mixed.
SCHEMA = "tinyllm-scaling/1"
#: The columns of size.csv, isoflop.csv and task.csv, in order.
RUN_COLUMNS = (
    "run_id", "sweep", "corpus", "rung", "n_layer", "n_head", "n_embd", "vocab_size",
    "block_size", "batch_size", "steps", "lr", "params", "non_embedding_params", "tokens",
    "flops_per_token", "flops", "flops_6n", "flops_budget", "train_loss_nats", "val_loss_nats",
    "train_loss_bits", "val_loss_bits", "val_bits_per_char", "entropy_rate_nats",
    "unigram_nats", "accuracy", "task", "wall_s", "setup_s", "tokens_per_s", "peak_rss_mb",
    "base_rss_mb", "threads", "seed", "version", "schema",
)
#: The columns of curves.csv: one row per evaluation of a run.
CURVE_COLUMNS = ("run_id", "sweep", "corpus", "rung", "params", "non_embedding_params",
                 "step", "tokens", "flops", "train_loss_nats", "val_loss_nats")


def csv_text(rows: list[dict], columns) -> str:
    """`rows` as CSV text with a header of `columns` (None is an empty cell; extra keys are
    left out)."""
    buf = io.StringIO()
    writer = csv.DictWriter(buf, fieldnames=list(columns), extrasaction="ignore",
                            lineterminator="\n")
    writer.writeheader()
    for row in rows:
        writer.writerow({k: ("" if row.get(k) is None else row.get(k)) for k in columns})
    return buf.getvalue()


def _parse(value: str):
    """A CSV cell as None (empty), an int, a float, or the string itself."""
    if value == "":
        return None
    try:
        number = float(value)
    except ValueError:
        return value
    return int(number) if number.is_integer() and "." not in value and "e" not in value \
        else number


def read_csv(path) -> list[dict]:
    """Rows of a results CSV with numbers parsed (empty cells are None)."""
    path = Path(path)
    if not path.is_file():
        return []
    with open(path, encoding="utf-8", newline="") as f:
        return [{k: _parse(v) for k, v in row.items()} for row in csv.DictReader(f)]


class ResultsStore:
    """A results directory: study.json, one CSV per sweep, curves.csv."""

    def __init__(self, root):
        self.root = Path(root)
        self.work = self.root / "_work"

    def csv_path(self, sweep: str) -> Path:
        """Where the rows of `sweep` live."""
        return self.root / f"{sweep}.csv"

    def rows(self, sweep: str) -> list[dict]:
        """The finished runs of `sweep` (none yet: an empty list)."""
        return read_csv(self.csv_path(sweep))

    def write_rows(self, sweep: str, rows: list[dict]) -> None:
        """Replace the rows of `sweep` with `rows`, atomically."""
        atomic_write(self.csv_path(sweep), csv_text(rows, RUN_COLUMNS))

    def done(self) -> set[str]:
        """The run ids of every finished run, all sweeps together."""
        return {r["run_id"] for sweep in SWEEPS for r in self.rows(sweep)}

    def add(self, result: dict) -> None:
        """Write one finished run (its row and its curve), each file replaced atomically."""
        row = result["row"]
        rows = [r for r in self.rows(row["sweep"]) if r["run_id"] != row["run_id"]] + [row]
        self.write_rows(row["sweep"], rows)
        curves = [r for r in read_csv(self.root / "curves.csv") if r["run_id"] != row["run_id"]]
        atomic_write(self.root / "curves.csv", csv_text(curves + result["curve"], CURVE_COLUMNS))

    def open(self, plan: StudyPlan) -> None:
        """Create the directory, or check that the one there holds this same study."""
        self.root.mkdir(parents=True, exist_ok=True)
        self.work.mkdir(exist_ok=True)
        meta = _study_meta(plan)
        path = self.root / "study.json"
        if path.is_file():
            old = load_meta(self.root)
            _check_same_study(old, meta, self.root)
            meta["corpora"] = {**old["corpora"], **meta["corpora"]}
            meta["task"] = meta["task"] or old.get("task")
        atomic_write(path, json.dumps(meta, indent=1))


def _study_meta(plan: StudyPlan) -> dict:
    """What study.json says of `plan`: schema, version, budget, task settings, corpora."""
    from .. import __version__

    budget = plan.budget.to_dict()
    task = {k: budget.pop(k) for k in list(budget) if k.startswith("task_")}
    # Through JSON once, so tuples compare equal to the lists read back from disk.
    return json.loads(json.dumps({
        "schema": SCHEMA, "tinyllm_version": __version__, "budget": budget,
        "task": task if plan.by_sweep("task") else None,
        "corpora": {k: asdict(v) for k, v in plan.corpora.items()}}))


def load_meta(root) -> dict:
    """study.json of a results directory, checked for this schema."""
    return read_study_json(root, SCHEMA, "a scaling results directory", "tinyllm scaling")


def read_study_json(root, schema: str, what: str, command: str, error=StudyError) -> dict:
    """A study's study.json, checked to be `schema`; any problem raises `error` saying that
    `root` is not `what` (a directory written by `command`)."""
    path = Path(root) / "study.json"
    if not path.is_file():
        raise error(f"{root} is not {what} (no study.json); accepted: a directory written "
                    f"by `{command}`")
    try:
        meta = json.loads(path.read_text(encoding="utf-8"))
    except json.JSONDecodeError as exc:
        raise error(f"{path} is not valid JSON ({exc})") from None
    if meta.get("schema") != schema:
        raise error(f"{path} has results schema {meta.get('schema')!r}; this tinyllm "
                    f"reads {schema!r} (rerun the study to regenerate it)")
    return meta


#: budget settings added after studies were first written, with the value every study
#: written before them used: an older study.json without them is the same study
_IMPLIED_BUDGET = {"warmup_steps": None, "beta2": 0.99, "tune_lr": False}
_IMPLIED_SETTINGS = {"isoflop_count": "full"}


def _with_implied(budget: dict | None) -> dict:
    """`budget` (a study.json's) with the settings it predates filled in."""
    budget = {**_IMPLIED_BUDGET, **(budget or {})}
    for key in ("markov", "text"):
        if isinstance(budget.get(key), dict):
            budget[key] = {**_IMPLIED_SETTINGS, **budget[key]}
    return budget


def _check_same_study(old: dict, new: dict, root: Path) -> None:
    """Refuse to add runs to a directory that holds a different study (version, budget...)."""
    if old.get("tinyllm_version") != new["tinyllm_version"]:
        raise StudyError(
            f"{root} holds results from tinyllm {old.get('tinyllm_version')}, not this "
            f"{new['tinyllm_version']}; mixing versions would mix different code. Accepted: "
            "another --out directory, or delete this one to start over")
    if _with_implied(old.get("budget")) != new["budget"]:
        raise StudyError(
            f"{root} holds a study with budget {old.get('budget', {}).get('name')!r} and other "
            f"settings than this one ({new['budget']['name']!r}); accepted: the same --budget "
            "and options, or another --out directory")
    if old.get("task") and new["task"] and old["task"] != new["task"]:
        raise StudyError(f"{root} holds task runs with other settings ({old['task']}) than "
                         f"this study's ({new['task']}); accepted: another --out directory")
    for name, info in new["corpora"].items():
        seen = old.get("corpora", {}).get(name)
        if seen and (seen["sha256"], seen["chars"]) != (info["sha256"], info["chars"]):
            raise StudyError(
                f"{root} holds results for a different corpus {name!r} ({seen['chars']:,} "
                f"characters, sha256 {seen['sha256']}) than this one ({info['chars']:,}, "
                f"{info['sha256']}); accepted: another --out directory")


def shipped_study(root: Path, budget: str, what: str, error: type = ValueError) -> Path:
    """The folder `root/budget` of a study shipped with the package, or `error` naming the
    budgets that are shipped (`what` names the study in the message)."""
    folder = Path(root) / budget
    if not (folder / "study.json").is_file():
        present = sorted(p.name for p in Path(root).glob("*") if (p / "study.json").is_file())
        raise error(f"no shipped {what} study for budget {budget!r}; accepted: "
                    f"{', '.join(present) or 'none (this installation ships none)'}")
    return folder


def resolve_study_arg(arg: str, shipped) -> Path:
    """A results directory from the command line: a path, 'shipped' or 'shipped:BUDGET'
    (`shipped(budget=None)` finds a shipped study)."""
    if arg == "shipped":
        return shipped()
    if arg.startswith("shipped:"):
        return shipped(arg.split(":", 1)[1])
    return Path(arg)


# ---------------------------------------------------------------------- small studies
def earlier_sessions(root) -> list[float]:
    """The wall seconds of every session that trained runs into `root`, as its study.json
    recorded them (none yet: [])."""
    path = Path(root) / "study.json"
    return json.loads(path.read_text()).get("sessions_s", []) if path.is_file() else []


def write_study_json(root, budget, sessions_s: list[float], **extra) -> None:
    """study.json of a study trained in sessions (muP, induction, accounting): its budget (a
    dataclass), tinyllm's version, the wall seconds of every session and their total, and
    `extra`."""
    from .. import __version__

    study = {"budget": asdict(budget), "version": __version__, **extra,
             "sessions_s": sessions_s, "total_s": round(sum(sessions_s), 1)}
    atomic_write(Path(root) / "study.json", json.dumps(study, indent=2) + "\n")
