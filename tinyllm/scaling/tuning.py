"""Learning rates tuned per width: each size-sweep rung trained at powers of 2 of Kaplan's rate.

A budget with ``tune_lr`` trains every rung of its size sweep at ``2**k * kaplan_lr(N)``
(exponent k): first k = 0 (the rule) and k = 1, then, while the best k tried is at the edge
of those tried, the next power beyond it (never past +-`MAX_EXPONENT`). A rung is tuned when
its best run has a tried neighbour on each side (or sits at a limit): the optimum is
bracketed to a factor of 2. Every run is a full size-sweep run (same steps, same data), so
the tuned rung's result *is* its best run.

The study keeps every run (size.csv holds each rate tried; a run's k is read back from its
learning rate, `lr_exponent`); `select_tuned` keeps, for the fits and tables, the size and
IsoFLOP runs at each (corpus, width)'s tuned k. The IsoFLOP runs of a width train at the k
its size-sweep run chose (their horizons differ; the rate is tuned at the size sweep's). The
capability task keeps the rule.

>>> next_exponents({})
[0, 1]
>>> next_exponents({0: 2.0, 1: 1.9})        # the larger rate is better: try 4x
[2]
>>> next_exponents({0: 2.0, 1: 1.9, 2: 2.1})  # bracketed
[]
>>> lr_suffix(-1), lr_suffix(0), lr_suffix(2)
('-lr0.5x', '', '-lr4x')
"""

from __future__ import annotations

import dataclasses
import math

from .plan import StudyPlan, kaplan_lr, lr_suffix, scaled

#: Rates are tried from 2**-MAX_EXPONENT to 2**MAX_EXPONENT times Kaplan's.
MAX_EXPONENT = 6


def lr_exponent(row: dict) -> int:
    """The k of a finished run: its learning rate over Kaplan's for its N, as a power of 2."""
    return round(math.log2(row["lr"] / kaplan_lr(row["non_embedding_params"])))


def best_exponent(losses: dict[int, float]) -> int:
    """The k of the least loss (a tie goes to the k nearest the rule)."""
    return min(losses, key=lambda k: (losses[k], abs(k)))


def next_exponents(tried: dict[int, float]) -> list[int]:
    """The exponents one rung still needs, given the loss of each exponent tried (math.inf
    for a run that failed): [0, 1] to start, then the next power beyond an edge best."""
    if len(tried) < 2:
        return [k for k in (0, 1) if k not in tried]
    best = best_exponent(tried)
    return [k for k in (best - 1, best + 1)
            if k not in tried and abs(k) <= MAX_EXPONENT]


def bracket(keys, tried, train, wanted=next_exponents) -> dict:
    """The search, a round at a time, over `keys` (rungs, or LSTMs): `tried()` gives key ->
    {k: loss} of the runs finished so far, `wanted(losses)` the exponents a key still needs,
    and `train(todo, round_number)` trains todo = [(key, k), ...] and returns {(key, k):
    error} of the runs that failed (each then counts as the worst rate, math.inf, and is not
    tried again in this search). Returns every failure."""
    failed: dict[tuple, str] = {}
    for round_number in range(1, 2 * MAX_EXPONENT + 2):
        losses = tried()
        for key, k in failed:
            losses.setdefault(key, {})[k] = math.inf
        todo = [(key, k) for key in keys for k in wanted(losses.get(key, {}))]
        if not todo:
            break
        failed.update(train(todo, round_number))
    return failed


def tried_exponents(rows: list[dict], exponent=lr_exponent,
                    key=lambda row: (row["corpus"], row["n_embd"])) -> dict[tuple, dict]:
    """key(row) -> {k: validation loss} of every run in `rows` (default: size-sweep runs by
    (corpus, width), k from Kaplan's rate; `baselines.lstm_tried` passes the LSTMs' own)."""
    tried: dict[tuple, dict[int, float]] = {}
    for row in rows:
        tried.setdefault(key(row), {})[exponent(row)] = row["val_loss_nats"]
    return tried


def tuned_exponents(size_rows: list[dict]) -> dict[tuple[str, int], int]:
    """(corpus, width) -> the k of its best size-sweep run (ties: the one nearest the rule)."""
    return {key: best_exponent(losses) for key, losses in tried_exponents(size_rows).items()}


def select_tuned(sweeps: dict[str, list[dict]], curves: list[dict], rule: bool = False):
    """(sweeps, curves) with only the size and IsoFLOP runs at their width's tuned rate (a
    study without tuning: everything, every run being at the rule); rule=True: only those at
    Kaplan's rate (the study as it was before tuning)."""
    best = {} if rule else tuned_exponents(sweeps.get("size", []))

    def keep(row):
        k = best.get((row["corpus"], row["n_embd"]), 0)
        return row["sweep"] == "task" or lr_exponent(row) == k

    kept = {sweep: [r for r in rows if keep(r)] for sweep, rows in sweeps.items()}
    ids = {r["run_id"] for rows in kept.values() for r in rows}
    return kept, [c for c in curves if c["run_id"] in ids]


def tuning_rounds(plan: StudyPlan, out, *, jobs: int, log=None, executor: str = "local"):
    """Train the size sweep of `plan` at every rate its rungs need, a round at a time, until
    each rung's optimum is bracketed (`bracket`); returns the failed runs' errors by run id.
    Resumable: the runs already in `out` are read, not trained again."""
    from .runner import run_study
    from .store import ResultsStore

    store = ResultsStore(out)
    base = {(s.corpus, s.width): s for s in plan.by_sweep("size")}

    def tried():
        return tried_exponents([r for r in store.rows("size") if r["corpus"] in plan.corpora])

    def train(todo, round_number):
        specs = {scaled(base[key], k).run_id: (key, k) for key, k in todo}
        if log:
            log(f"learning-rate round {round_number}: {len(specs)} run(s): " + ", ".join(specs))
        report = run_study(dataclasses.replace(plan, notes=[], specs=[
            scaled(base[key], k) for key, k in todo]), out, jobs=jobs, log=log,
            executor=executor)
        return {specs[run_id]: error for run_id, error in report.failed.items()}

    failed = bracket(base, tried, train)
    return {scaled(base[key], k).run_id: error for (key, k), error in failed.items()}


def tuning_table(size_rows: list[dict]) -> str:
    """Loss of every rung at every rate tried, the tuned one starred."""
    tried = tried_exponents(size_rows)
    if not any(len(v) > 1 for v in tried.values()):
        return ""
    ks = sorted({k for v in tried.values() for k in v})
    lines = [f"{'corpus':<10}{'width':>6}{'rule lr':>10} | "
             + " ".join(f"{2.0 ** k:>8g}x" for k in ks) + " | tuned lr"]
    rule = {(r["corpus"], r["n_embd"]): kaplan_lr(r["non_embedding_params"]) for r in size_rows}
    for (corpus, width), losses in sorted(tried.items()):
        best = best_exponent(losses)
        cells = [(f"{losses[k]:>8.4f}" + ("*" if k == best else " ")) if k in losses
                 else f"{'':>9}" for k in ks]
        lines.append(f"{corpus:<10}{width:>6}{rule[corpus, width]:>10.2e} | " + " ".join(cells)
                     + f" | {rule[corpus, width] * 2.0 ** best:.2e}")
    return "\n".join(lines)


__all__ = ["MAX_EXPONENT", "best_exponent", "bracket", "lr_exponent", "lr_suffix",
           "next_exponents", "scaled", "select_tuned", "tried_exponents", "tuned_exponents",
           "tuning_rounds", "tuning_table"]
