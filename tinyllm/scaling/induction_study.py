"""The induction-head study: when in-context learning appears, across depth and width.

Olsson et al. 2022 saw two-layer attention-only Transformers gain in-context learning in a
short window of training -- a phase change -- as a previous-token head (layer 0) and an
induction head (layer 1) formed together, and saw none in one-layer models. This study
repeats the experiment at tinyllm's scale: attention-only models (`induction.AttentionOnlyLM`)
of each depth and width, trained on rows of random tokens whose tail is a segment said twice
(`induction.repeated_tail`: only copying by content helps), tracked every `eval_every` steps:
the in-context score, the loss on both copies of repeated random tokens, and every head's
prefix-matching, previous-token, duplicate-token and copying scores.

A run has a **phase change** when its in-context score falls by at least `PHASE_DROP` x log V
(a fifth of the way from "the context does not help" to "every repeated token is copied")
within `PHASE_SPAN` of its steps (`induction.steepest_fall`). The heads that did it are named
by their scores at the end: the layer-0 head with the highest previous-token score and the
head of a later layer with the highest prefix-matching score, with its copying score.

    tinyllm induction-study                  # the default budget, about 30 minutes on 2 cores
    tinyllm induction-study --plot shipped   # the shipped results' table and figure

Results: runs.json (one record per run, its whole track), study.json and summary.txt in
--out; the default budget's ship in tinyllm/scaling/results/induction/
(`load_induction("shipped")`).
"""

from __future__ import annotations

import json
import math
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from .._io import atomic_write
from .induction import best_heads, phase_change, repeated_tail, steepest_fall, train_and_track
from .plan import StudyError, named_budget
from .runner import each_finished
from .store import earlier_sessions, write_study_json

SHIPPED = Path(__file__).parent / "results" / "induction"
#: a phase change: a fall of the in-context score of at least PHASE_DROP x log V ...
PHASE_DROP = 0.2
#: ... within PHASE_SPAN of the run's steps
PHASE_SPAN = 0.1


@dataclass(frozen=True)
class InductionBudget:
    """A named grid: attention-only models of each depth x width x seed, one training each."""

    name: str
    depths: tuple[int, ...]
    widths: tuple[int, ...]
    n_head: int
    vocab_size: int
    context: int
    min_repeat: int
    steps: int
    batch_size: int
    lr: float
    eval_every: int
    seeds: tuple[int, ...] = (0,)
    minutes: float = 30.0

    def runs(self) -> list[tuple[int, int, int]]:
        """(depth, width, seed) of every run, the most expensive first (the longest start
        first when several share the cores)."""
        return sorted(((d, w, s) for d in self.depths for w in self.widths for s in self.seeds),
                      key=lambda r: (-r[0] * r[1], r))


BUDGETS: dict[str, InductionBudget] = {
    # Seconds: tests.
    "tiny": InductionBudget("tiny", depths=(1, 2), widths=(16,), n_head=2, vocab_size=32,
                            context=16, min_repeat=3, steps=8, batch_size=8, lr=1e-3,
                            eval_every=4, minutes=0.5),
    # About 30 minutes on 2 cores: 1-3 layers of 4 heads, widths 32-128 (head size 8-32),
    # 4,000 steps of 128 rows of 48 tokens from a vocabulary of 256, two seeds.
    "default": InductionBudget("default", depths=(1, 2, 3), widths=(32, 64, 128), n_head=4,
                               vocab_size=256, context=48, min_repeat=6, steps=4000,
                               batch_size=128, lr=1e-3, eval_every=100, seeds=(0, 1),
                               minutes=30.0),
}


def get_budget(name: str) -> InductionBudget:
    return named_budget(BUDGETS, name, "induction budget")


def run_key(depth: int, width: int, seed: int) -> str:
    return f"l{depth}-w{width}-s{seed}"


# ---------------------------------------------------------------------- one run
def train_one(budget: InductionBudget, depth: int, width: int, seed: int) -> dict:
    """Train one model of the grid and return its record: the settings and the whole track
    (`InductionRun.to_dict()`), with the phase change and the named heads."""
    run = train_and_track(repeated_tail(budget.vocab_size, budget.min_repeat),
                          budget.vocab_size, n_layer=depth, n_head=budget.n_head,
                          n_embd=width, context=budget.context, steps=budget.steps,
                          batch_size=budget.batch_size, lr=budget.lr,
                          eval_every=budget.eval_every, seed=seed)
    record = {"key": run_key(depth, width, seed), "depth": depth, "width": width,
              "seed": seed, "vocab_size": budget.vocab_size, **run.to_dict()}
    return {**record, **describe(record)}


def describe(record: dict) -> dict:
    """What a run's track says: its steepest fall of the in-context score within PHASE_SPAN
    of the run, its 10-90% window (`induction.phase_change`), whether that is a phase change,
    and the heads named by their final scores."""
    steps, icl = record["steps"], record["icl_score"]
    span = max(steps[1] - steps[0] if len(steps) > 1 else 1, int(round(PHASE_SPAN * steps[-1])))
    first, last, fall = steepest_fall(steps, icl, span)
    w10, w90, total = phase_change(steps, icl)
    prev = best_heads(np.asarray(record["previous_token"][-1])[:1])[0]
    prefix = np.asarray(record["prefix_matching"][-1])
    later = prefix[1:] if len(prefix) > 1 else prefix                 # heads that can induct
    layer, head, score = best_heads(later)[0]
    layer += len(prefix) - len(later)
    return {"steepest_fall": [first, last, fall], "window_10_90": [w10, w90, total],
            "phase_change": bool(fall <= -PHASE_DROP * math.log(record["vocab_size"])),
            "previous_token_head": list(prev),
            "induction_head": [layer, head, score,
                               float(record["copying"][-1][layer][head])]}


# ---------------------------------------------------------------------- the grid
def run_grid(budget: InductionBudget, root, *, jobs: int = 2, executor: str = "local",
             log=None) -> list[dict]:
    """Every run of `budget` not yet in root/runs.json, `jobs` at a time; returns all records.
    Each finished run is written at once, so an interrupted study resumes where it stopped."""
    say = log or (lambda message: None)
    root = Path(root)
    root.mkdir(parents=True, exist_ok=True)
    records = load_induction(root) if (root / "runs.json").is_file() else []
    done = {r["key"] for r in records}
    todo = [run for run in budget.runs() if run_key(*run) not in done]
    say(f"{len(done)} run(s) done, {len(todo)} to go, {jobs} at a time")
    start = time.perf_counter()
    earlier = earlier_sessions(root)

    def finished(record: dict) -> None:
        records.append(record)
        _write(root, budget, records, [*earlier, round(time.perf_counter() - start, 1)])
        say(f"  {record['key']}: {_line(record)} ({(time.perf_counter() - start) / 60:.1f} min)")

    calls = [(budget, *run) for run in todo]
    for _, record in each_finished(train_one, calls, jobs=jobs, executor=executor):
        finished(record)
    return _sorted(records)


def _sorted(records: list[dict]) -> list[dict]:
    return sorted(records, key=lambda r: (r["depth"], r["width"], r["seed"]))


def _write(root: Path, budget: InductionBudget, records: list[dict],
           sessions_s: list[float]) -> None:
    """runs.json, study.json (the budget and the wall seconds of every session) and
    summary.txt."""
    atomic_write(root / "runs.json", json.dumps(_sorted(records)) + "\n")
    write_study_json(root, budget, sessions_s)
    atomic_write(root / "summary.txt", summary(records) + "\n")


# ---------------------------------------------------------------------- reading
def load_induction(source="shipped") -> list[dict]:
    """The records of a study's runs.json: `source` is "shipped" or a results directory."""
    root = SHIPPED if source == "shipped" else Path(source)
    if not (root / "runs.json").is_file():
        raise StudyError(f"{root} holds no runs.json; run tinyllm induction-study --out {root} "
                         "first")
    return _sorted(json.loads((root / "runs.json").read_text()))


def _line(r: dict) -> str:
    first, last, fall = r["steepest_fall"]
    return (f"in-context score {r['icl_score'][-1]:+.2f}, steepest fall {fall:+.2f} nats "
            f"(steps {first}-{last}){', a phase change' if r['phase_change'] else ''}")


def summary(records: list[dict]) -> str:
    """One line per run: the final losses and in-context score, the steepest fall and where,
    whether it is a phase change, and the named heads (layer.head score)."""
    out = [f"phase change: the in-context score falls by >= {PHASE_DROP:g} x log V within "
           f"{PHASE_SPAN:.0%} of the steps; heads as layer.head (score)",
           f"{'run':>12s} {'params':>7s} {'val':>6s} {'ICL':>6s} {'fresh':>6s} {'copy':>6s} "
           f"{'fall':>6s} {'steps':>11s} {'phase':>5s}  {'prev-token':>12s} "
           f"{'induction (copying)':>21s}"]
    for r in _sorted(records):
        first, last, fall = r["steepest_fall"]
        pl, ph, ps = r["previous_token_head"]
        il, ih, iscore, icopy = r["induction_head"]
        out.append(f"{r['key']:>12s} {r['params']:>7d} {r['val_loss'][-1]:6.3f} "
                   f"{r['icl_score'][-1]:+6.2f} {r['fresh_loss'][-1]:6.3f} "
                   f"{r['copy_loss'][-1]:6.3f} {fall:+6.2f} {f'{first}-{last}':>11s} "
                   f"{'yes' if r['phase_change'] else 'no':>5s}  "
                   f"{f'{pl}.{ph} ({ps:.2f})':>12s} "
                   f"{f'{il}.{ih} ({iscore:.2f}; {icopy:+.2f})':>21s}")
    return "\n".join(out)


def plot_induction(records: list[dict], axes=None):
    """Three panels: the in-context score over training, one line per run; for the
    narrowest two-layer run with a phase change (the longest plateau before it), the
    in-context score beside the named heads' scores (they jump together); and that run's
    final previous-token and prefix-matching scores, head by head."""
    import matplotlib.pyplot as plt

    if axes is None:
        _, axes = plt.subplots(1, 3, figsize=(16, 4.4), layout="constrained",
                               width_ratios=(1, 1, 0.9))
    records = _sorted(records)
    widths = sorted({r["width"] for r in records})
    styles = dict(zip(widths, ("o-", "s--", "^:", "v-.")))
    colors = {1: "tab:gray", 2: "tab:blue", 3: "tab:green", 4: "tab:purple"}
    first_seed = min(r["seed"] for r in records)
    for r in records:                   # other seeds: the same line, fainter, unlabelled
        axes[0].plot(r["steps"], r["icl_score"], styles.get(r["width"], "-"), ms=2, lw=1,
                     color=colors.get(r["depth"]),
                     alpha=1.0 if r["seed"] == first_seed else 0.45,
                     label=(f"{r['depth']} layer(s), width {r['width']}"
                            if r["seed"] == first_seed else None))
    if any(r["seed"] != first_seed for r in records):
        axes[0].set_title("every run (first seed solid, the others faint)")
    axes[0].set_xlabel("step")
    axes[0].set_ylabel("in-context score (nats; late - early loss)")
    axes[0].legend(fontsize=7)
    two = [r for r in records if r["depth"] == 2 and r["phase_change"]] or records
    r = min(two, key=lambda x: (x["depth"] != 2, x["width"], x["seed"]))
    il, ih = r["induction_head"][:2]
    pl, ph = r["previous_token_head"][:2]
    axes[1].plot(r["steps"], r["icl_score"], "k-", label="in-context score (left)")
    axes[1].set_ylabel("in-context score (nats)")
    twin = axes[1].twinx()
    twin.plot(r["steps"], [m[il][ih] for m in r["prefix_matching"]], "tab:red",
              label=f"prefix matching, head {il}.{ih}")
    twin.plot(r["steps"], [m[pl][ph] for m in r["previous_token"]], "tab:orange",
              label=f"previous token, head {pl}.{ph}")
    twin.set_ylim(0, 1)
    twin.set_ylabel("head score")
    twin.legend(fontsize=7, loc="center right")
    axes[1].legend(fontsize=7, loc="upper right")
    axes[1].set_xlabel("step")
    axes[1].set_title(f"{r['depth']} layers, width {r['width']}")
    scores = np.concatenate([np.asarray(r["previous_token"][-1]),
                             np.asarray(r["prefix_matching"][-1])])   # (2 n_layer, n_head)
    image = axes[2].imshow(scores, vmin=0, vmax=1, cmap="viridis")
    n_layer = len(r["prefix_matching"][-1])
    axes[2].set_yticks(range(2 * n_layer),
                       [f"prev-token L{i}" for i in range(n_layer)]
                       + [f"prefix-match L{i}" for i in range(n_layer)])
    axes[2].set_xticks(range(scores.shape[1]), [f"head {h}" for h in range(scores.shape[1])])
    for (i, j), v in np.ndenumerate(scores):
        axes[2].text(j, i, f"{v:.2f}", ha="center", va="center", fontsize=8,
                     color="white" if v < 0.6 else "black")
    axes[2].figure.colorbar(image, ax=axes[2], fraction=0.046)
    axes[2].set_title("each head's score at the end")
    return axes


__all__ = ["BUDGETS", "PHASE_DROP", "PHASE_SPAN", "SHIPPED", "InductionBudget", "describe",
           "get_budget", "load_induction", "plot_induction", "run_grid", "summary",
           "train_one"]
