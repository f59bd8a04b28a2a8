"""Hyperparameters that transfer: the learning-rate sweep of the maximal-update parametrisation.

Under GPT-2's standard parametrisation (SP) the best learning rate of Adam falls as a model
grows wider, so a rate tuned on a small model is wrong for a large one. Under muP (Yang et al.
2022, "Tensor Programs V"; `GPTConfig.mup_base_width`) the best rate stays put: tune once at a
small width, then train wide. The classic check, repeated here: the same GPT shape (depth and
head count fixed) at several widths, each trained with a grid of learning rates in both
parametrisations, the validation loss of every run, and where each width's optimum falls.

Each run: `steps` AdamW steps of `batch_size` x `block_size` characters of `corpus`, cosine
schedule to a tenth of the peak, weight decay 0 (so that only the learning rate differs),
then the validation loss over `eval_iters` batches. A run whose loss becomes NaN or infinite
is recorded as diverged (loss NaN). muP's base width is the smallest width: there the two
parametrisations are the same model (`GPTConfig.mup_width_mult` = 1).

`optimum(rows, parametrization, width)` is the best rate of the grid, refined by the vertex of
a parabola through it and its two neighbours in log2(lr) (kept within half a grid step);
`drift(rows, parametrization)` the ratio of the best rates at the largest and smallest widths.

    tinyllm mup-study                    # the default budget, about 15 minutes on 2 cores
    tinyllm mup-study --plot shipped     # the shipped results' table and figure

Results: runs.csv (one row per run), study.json and summary.txt in --out; the default
budget's ship in tinyllm/scaling/results/mup/ (`load_mup("shipped")`).
"""

from __future__ import annotations

import math
import shutil
import time
from dataclasses import dataclass
from pathlib import Path

from .._io import atomic_write
from .plan import StudyError, named_budget
from .runner import each_finished
from .store import csv_text, earlier_sessions, read_csv, write_study_json

SHIPPED = Path(__file__).parent / "results" / "mup"
PARAMETRIZATIONS = ("standard", "mup")
#: runs.csv's columns, in order.
COLUMNS = ("parametrization", "width", "n_layer", "n_head", "params", "log2_lr", "lr",
           "val_loss", "train_loss", "status", "seconds")


@dataclass(frozen=True)
class MupBudget:
    """A named sweep: widths x learning rates x both parametrisations."""

    name: str
    widths: tuple[int, ...]          # smallest first; the smallest is muP's base width
    log2_lrs: tuple[float, ...]      # the grid of peak learning rates, as powers of two
    n_layer: int
    n_head: int
    steps: int
    batch_size: int
    block_size: int
    eval_iters: int
    corpus: str = "pydoc"
    minutes: float = 30.0

    @property
    def base_width(self) -> int:
        return self.widths[0]

    def runs(self) -> list[tuple[str, int, float]]:
        """(parametrization, width, log2 lr) of every run, widest first (the longest start
        first when several share the cores)."""
        return [(p, w, x) for w in sorted(self.widths, reverse=True) for p in PARAMETRIZATIONS
                for x in self.log2_lrs if not (p == "mup" and w == self.base_width)]


BUDGETS: dict[str, MupBudget] = {
    # Seconds: tests.
    "tiny": MupBudget("tiny", widths=(8, 16), log2_lrs=(-9.0, -7.0), n_layer=1, n_head=2,
                      steps=6, batch_size=4, block_size=16, eval_iters=1, minutes=0.5),
    # About 15 minutes on 2 cores: widths 32 to 256 (head size 8 to 64), 2 layers of 4 heads,
    # rates 2^-14 to 2^-5 (6e-5 to 3e-2).
    "default": MupBudget("default", widths=(32, 64, 128, 256),
                         log2_lrs=tuple(float(x) for x in range(-14, -4)), n_layer=2, n_head=4,
                         steps=400, batch_size=16, block_size=64, eval_iters=20,
                         minutes=20.0),
}


def get_budget(name: str) -> MupBudget:
    return named_budget(BUDGETS, name, "muP budget")


def run_key(parametrization: str, width: int, log2_lr: float) -> str:
    return f"{parametrization}-w{width}-lr{log2_lr:+g}"


# ---------------------------------------------------------------------- one run
def train_one(budget: MupBudget, parametrization: str, width: int, log2_lr: float,
              work: str) -> dict:
    """Train one (parametrization, width, rate) and return its row of COLUMNS."""
    from ..training import TrainConfig, Trainer

    name = run_key(parametrization, width, log2_lr)
    start = time.perf_counter()
    lr = 2.0 ** log2_lr
    shape = dict(n_layer=budget.n_layer, n_head=budget.n_head, n_embd=width,
                 n_positions=budget.block_size,
                 mup_base_width=budget.base_width if parametrization == "mup" else None)
    trainer = Trainer(TrainConfig(
        data=budget.corpus, tokenizer="char", steps=budget.steps, batch_size=budget.batch_size,
        block_size=budget.block_size, lr=lr, min_lr=lr / 10, weight_decay=0.0,
        eval_interval=budget.steps, eval_iters=budget.eval_iters, sample_tokens=0, seed=1337,
        model_overrides=shape, out=work, name=name), quiet=True, overwrite=True)
    # a loss that became NaN or infinite stops the run ("stopped"): it diverged
    final = trainer.evaluate() if trainer.train().status == "finished" else {}
    finite = math.isfinite(final.get("val_loss", math.nan))
    row = {"parametrization": parametrization, "width": width, "n_layer": budget.n_layer,
           "n_head": budget.n_head, "params": trainer.model.num_params(non_embedding=True),
           "log2_lr": log2_lr, "lr": lr,
           "val_loss": final["val_loss"] if finite else math.nan,
           "train_loss": final["train_loss"] if finite else math.nan,
           "status": "finished" if finite else "diverged",
           "seconds": round(time.perf_counter() - start, 2)}
    shutil.rmtree(Path(work) / name, ignore_errors=True)      # checkpoints are scratch
    return row


# ---------------------------------------------------------------------- the sweep
def run_sweep(budget: MupBudget, root, *, jobs: int = 2, executor: str = "local",
              log=None) -> list[dict]:
    """Every run of `budget` not yet in root/runs.csv, `jobs` at a time; returns all rows.
    Each finished run is written at once, so an interrupted sweep resumes where it stopped."""
    say = log or (lambda message: None)
    root = Path(root)
    root.mkdir(parents=True, exist_ok=True)
    rows = load_mup(root) if (root / "runs.csv").is_file() else []
    done = {run_key(r["parametrization"], r["width"], r["log2_lr"]) for r in rows}
    todo = [run for run in budget.runs() if run_key(*run) not in done]
    say(f"{len(done)} run(s) done, {len(todo)} to go, {jobs} at a time")
    start = time.perf_counter()
    work = str(root / "work")
    earlier = earlier_sessions(root)

    def write() -> None:
        _write(root, budget, rows, [*earlier, round(time.perf_counter() - start, 1)])

    calls = [(budget, *run, work) for run in todo]
    for (_, *run, _), row in each_finished(train_one, calls, jobs=jobs, executor=executor):
        rows.append(row)
        write()
        say(f"  {run_key(*run)}: {_loss_text(row)} "
            f"({(time.perf_counter() - start) / 60:.1f} min)")
    shutil.rmtree(work, ignore_errors=True)
    return _sorted(rows)


def _loss_text(row: dict) -> str:
    return "diverged" if row["status"] != "finished" else f"val loss {row['val_loss']:.4f}"


def _sorted(rows: list[dict]) -> list[dict]:
    return sorted(rows, key=lambda r: (r["parametrization"], r["width"], r["log2_lr"]))


def _write(root: Path, budget: MupBudget, rows: list[dict], sessions_s: list[float]) -> None:
    """runs.csv, study.json (the budget, and the wall seconds of every session that trained
    runs) and summary.txt."""
    atomic_write(root / "runs.csv", csv_text(_sorted(rows), COLUMNS))
    write_study_json(root, budget, sessions_s)
    atomic_write(root / "summary.txt", summary(rows) + "\n")


# ---------------------------------------------------------------------- reading
def load_mup(source="shipped") -> list[dict]:
    """The rows of a sweep's runs.csv: `source` is "shipped" or a results directory."""
    root = SHIPPED if source == "shipped" else Path(source)
    if not (root / "runs.csv").is_file():
        raise StudyError(f"{root} holds no runs.csv; run tinyllm mup-study --out {root} first")
    return read_csv(root / "runs.csv")


def widths_of(rows: list[dict], parametrization: str | None = None) -> list[int]:
    return sorted({r["width"] for r in rows
                   if parametrization is None or r["parametrization"] == parametrization})


def curve(rows: list[dict], parametrization: str, width: int) -> list[dict]:
    """The runs of one width, by rate; muP's base width borrows the standard runs (the same
    model)."""
    own = [r for r in rows if r["parametrization"] == parametrization and r["width"] == width]
    if not own and parametrization == "mup":
        own = [r for r in rows if r["parametrization"] == "standard" and r["width"] == width
               and width == min(widths_of(rows))]
    return sorted(own, key=lambda r: r["log2_lr"])


def optimum(rows: list[dict], parametrization: str, width: int) -> float | None:
    """log2 of the best learning rate of one width: the grid's best, moved to the vertex of
    the parabola through it and its neighbours (at most half a grid step); None when every run
    diverged."""
    pts = [(r["log2_lr"], r["val_loss"]) for r in curve(rows, parametrization, width)
           if math.isfinite(r["val_loss"])]
    if not pts:
        return None
    i = min(range(len(pts)), key=lambda j: pts[j][1])
    x, y = pts[i]
    if 0 < i < len(pts) - 1:
        (x0, y0), (x2, y2) = pts[i - 1], pts[i + 1]
        step = min(x - x0, x2 - x)
        # the vertex of the parabola through the three points
        num = (x - x0) ** 2 * (y - y2) - (x - x2) ** 2 * (y - y0)
        den = (x - x0) * (y - y2) - (x - x2) * (y - y0)
        if den != 0:
            x = min(max(x - 0.5 * num / den, x - step / 2), x + step / 2)
    return x


def drift(rows: list[dict], parametrization: str) -> float | None:
    """The best rate at the largest width over the best at the smallest (1 = no drift)."""
    widths = widths_of(rows)
    lo, hi = optimum(rows, parametrization, widths[0]), optimum(rows, parametrization, widths[-1])
    return None if lo is None or hi is None else 2.0 ** (hi - lo)


def summary(rows: list[dict]) -> str:
    """Per parametrisation and width: the loss at every rate, the best rate; the drift."""
    rows = _sorted(rows)
    grid = sorted({r["log2_lr"] for r in rows})
    out = ["validation loss (nats/char) by peak learning rate; '-' diverged, blank not run",
           f"{'param':9s} {'width':>5s} " + " ".join(f"{'2^' + format(x, 'g'):>7s}" for x in grid)
           + f" {'best lr':>9s}"]
    for p in PARAMETRIZATIONS:
        for w in widths_of(rows):
            by_x = {r["log2_lr"]: r for r in curve(rows, p, w)}
            cells = [("" if x not in by_x else "-" if not math.isfinite(by_x[x]["val_loss"])
                      else f"{by_x[x]['val_loss']:.4f}") for x in grid]
            best = optimum(rows, p, w)
            out.append(f"{p:9s} {w:>5d} " + " ".join(f"{c:>7s}" for c in cells)
                       + f" {'' if best is None else format(2.0 ** best, '.2e'):>9s}")
    for p in PARAMETRIZATIONS:
        d = drift(rows, p)
        ws = widths_of(rows)
        if d is not None:
            out.append(f"{p}: best rate at width {ws[-1]} / at width {ws[0]} = {d:.2f}x")
    return "\n".join(out)


def plot_transfer(rows: list[dict], axes=None):
    """Validation loss against the learning rate, one curve per width, one panel per
    parametrisation; each width's optimum marked."""
    import matplotlib.pyplot as plt

    if axes is None:
        _, axes = plt.subplots(1, 2, figsize=(11, 4.2), sharey=True)
    finite = [r["val_loss"] for r in rows if math.isfinite(r["val_loss"])]
    top = min(max(finite), min(finite) + 1.0) if finite else None
    for ax, p in zip(axes, PARAMETRIZATIONS):
        for w in widths_of(rows):
            pts = [(r["log2_lr"], r["val_loss"]) for r in curve(rows, p, w)
                   if math.isfinite(r["val_loss"])]
            if not pts:
                continue
            line, = ax.plot([2.0 ** x for x, _ in pts], [y for _, y in pts], "o-", ms=3,
                            label=f"width {w}")
            best = optimum(rows, p, w)
            ax.axvline(2.0 ** best, color=line.get_color(), ls=":", lw=1)
        ax.set_xscale("log", base=2)
        ax.set_xlabel("peak learning rate")
        ax.set_title({"standard": "standard parametrisation", "mup": "muP"}[p])
        if top is not None:
            ax.set_ylim(top=top)
        ax.legend(fontsize=8)
    axes[0].set_ylabel("validation loss (nats/char)")
    return axes
