"""Compute-optimal accounting as Porian et al. (2024) did: why Kaplan's and Chinchilla's
compute-optimal sizes disagree, measured on tinyllm's ladder.

Kaplan et al. (2020) found the compute-optimal size growing as N_opt ~ C^0.73; Hoffmann et al.
(2022, "Chinchilla") as C^0.5, about 20 tokens per parameter. Porian et al. (2024, "Resolving
Discrepancies in Compute-Optimal Scaling of Language Models") reproduced Kaplan's law and
removed it step by step: count the output head's FLOPs, scale the warmup with the run, tune
AdamW's beta2 at small batch sizes. The same steps here, each an IsoFLOP sweep of the v2
study's settings (`plan.BUDGETS["v2"]`: batch 32 x 64, four budgets, five rungs each) with
one more correction than the one before:

    kaplan   budgets counted as 6 N FLOPs per token (N non-embedding: no attention scores,
             no output head), a fixed warmup of KAPLAN_WARMUP steps whatever the run's length
             (Kaplan et al. warmed up for 3,000 steps in every run), AdamW beta2 = 0.95
    head     + budgets counted in full (`Rung.flops_per_token`: attention and head included)
    warmup   + warmup scaled with the run (a tenth of it, at most 100 steps)
    beta2    + beta2 tuned at this batch size: BETA2S tried at BETA2_WIDTHS for
             BETA2_STEPS steps; the value best at most widths is used (ties: the larger)

For each step: the IsoFLOP frontier N_opt = k C^a (`fits.fit_isoflop`, over the minima inside
the sizes trained) and the tokens per parameter at the optima, beside Chinchilla's ~20 and
Kaplan's exponent.

    tinyllm accounting-study                  # about 22 minutes on 2 cores
    tinyllm accounting-study --plot shipped   # the shipped results' table and figure

Results in --out: one scaling results directory per step (`load_results` reads each),
beta2.csv (the tuning runs) and summary.txt; the default budget's ship in
tinyllm/scaling/results/accounting/.
"""

from __future__ import annotations

import dataclasses
import math
import shutil
import time
from pathlib import Path

import numpy as np

from .._io import atomic_write
from .ladder import Rung
from .plan import StudyError, kaplan_lr, named_budget, plan_study, replace_settings
from .plan import get_budget as scaling_budget
from .store import csv_text, earlier_sessions, read_csv, write_study_json

SHIPPED = Path(__file__).parent / "results" / "accounting"
STEPS = ("kaplan", "head", "warmup", "beta2")
KAPLAN_WARMUP = 300
BETA2S = (0.95, 0.99, 0.999)
BETA2_COLUMNS = ("width", "beta2", "steps", "val_loss_nats")


@dataclasses.dataclass(frozen=True)
class AccountingBudget:
    """Which scaling budget's settings the sweeps use, on which corpus, and the beta2 tuning."""

    name: str
    base: str                          # a scaling budget (`plan.BUDGETS`)
    corpus: str
    beta2_widths: tuple[int, ...]
    beta2_steps: int
    minutes: float


BUDGETS = {
    "tiny": AccountingBudget("tiny", base="tiny", corpus="markov", beta2_widths=(12, 16),
                             beta2_steps=6, minutes=0.5),
    "default": AccountingBudget("default", base="v2", corpus="hmm",
                                beta2_widths=(16, 48, 96), beta2_steps=1000, minutes=25.0),
}


def get_budget(name: str) -> AccountingBudget:
    return named_budget(BUDGETS, name, "accounting budget")


def step_settings(step: str, beta2: float | None = None) -> dict:
    """How the sweep of `step` counts, warms up and sets beta2 (the corrections so far)."""
    if step not in STEPS:
        raise StudyError(f"unknown accounting step {step!r}; accepted: {', '.join(STEPS)}")
    k = STEPS.index(step)
    return {"isoflop_count": "6n" if k < 1 else "full",
            "warmup_steps": KAPLAN_WARMUP if k < 2 else None,
            "beta2": 0.95 if k < 3 else beta2}


def step_plan(budget: AccountingBudget, step: str, beta2: float | None = None,
              corpora: dict | None = None):
    """The IsoFLOP runs of one step: the base budget's, with the step's settings (`corpora`:
    an earlier plan's measured corpora, so the corpus is not loaded again)."""
    base = scaling_budget(budget.base)
    settings = step_settings(step, beta2)
    count = settings.pop("isoflop_count")
    scaled = replace_settings(
        base, **settings,
        markov=dataclasses.replace(base.markov, isoflop_count=count),
        text=dataclasses.replace(base.text, isoflop_count=count))
    plan = plan_study(scaled, [budget.corpus], task=False, corpus_info=corpora)
    plan.specs = plan.by_sweep("isoflop")
    return plan


# ---------------------------------------------------------------------- beta2
def tune_beta2(budget: AccountingBudget, root: Path, say, corpora: dict | None = None) -> float:
    """Train each of BETA2S at each of budget.beta2_widths (the base budget's batch shape,
    budget.beta2_steps steps, the scaled warmup) into root/beta2.csv, resuming; return the
    value best at most widths (ties: the larger)."""
    from .runner import run_one

    path = root / "beta2.csv"
    rows = read_csv(path) if path.is_file() else []
    done = {(r["width"], r["beta2"]) for r in rows}
    template = step_plan(budget, "warmup", corpora=corpora).specs[0]
    for width in budget.beta2_widths:
        for beta2 in BETA2S:
            if (width, beta2) in done:
                continue
            steps = budget.beta2_steps
            spec = dataclasses.replace(
                template, run_id=f"beta2-w{width}-{beta2}", sweep="beta2", width=width,
                steps=steps, warmup_steps=min(100, steps // 10), beta2=beta2,
                lr=kaplan_lr(Rung.from_width(width).non_embedding_params()),
                eval_interval=steps, flops_budget=None)
            result = run_one(spec, root / "work")
            rows.append({"width": width, "beta2": beta2, "steps": steps,
                         "val_loss_nats": result["row"]["val_loss_nats"]})
            atomic_write(path, csv_text(rows, BETA2_COLUMNS))
            say(f"  beta2 {beta2} at width {width}: {rows[-1]['val_loss_nats']:.4f} nats")
    shutil.rmtree(root / "work", ignore_errors=True)
    return best_beta2(rows)


def best_beta2(rows: list[dict]) -> float:
    """The beta2 with the lowest loss at the most widths (ties: the larger beta2)."""
    wins: dict[float, int] = {}
    for width in sorted({r["width"] for r in rows}):
        mine = [r for r in rows if r["width"] == width]
        best = min(mine, key=lambda r: (r["val_loss_nats"], -r["beta2"]))
        wins[best["beta2"]] = wins.get(best["beta2"], 0) + 1
    if not wins:
        raise StudyError("no beta2 runs to choose from")
    return max(wins, key=lambda b: (wins[b], b))


# ---------------------------------------------------------------------- the study
def run_accounting(budget: AccountingBudget, root, *, jobs: int = 2, executor: str = "local",
                   log=None) -> list[dict]:
    """beta2's tuning, then the four steps' IsoFLOP sweeps (each resumable, in root/<step>);
    returns one row per step (`frontier_row`) and writes summary.txt and study.json."""
    from .runner import run_study

    say = log or (lambda message: None)
    root = Path(root)
    root.mkdir(parents=True, exist_ok=True)
    start = time.perf_counter()
    earlier = earlier_sessions(root)
    corpora = step_plan(budget, "warmup").corpora           # the corpus, measured once
    say("beta2 at this batch size:")
    beta2 = tune_beta2(budget, root, say, corpora)
    say(f"  best: {beta2}")
    for step in STEPS:
        say(f"step {step}: {step_settings(step, beta2)}")
        report = run_study(step_plan(budget, step, beta2, corpora), root / step, jobs=jobs,
                           executor=executor, log=lambda m: say(f"  {m}"))
        if report.failed:
            raise StudyError(f"step {step}: {len(report.failed)} run(s) failed: "
                             f"{report.failed}")
    rows = load_accounting(root)
    write_study_json(root, budget, [*earlier, round(time.perf_counter() - start, 1)],
                     beta2=beta2)
    atomic_write(root / "summary.txt", summary(rows) + "\n")
    return rows


def frontier_row(step: str, results, corpus: str, n_boot: int = 200) -> dict:
    """One step's IsoFLOP frontier: exponent a with its interval, tokens per parameter at
    the optima (mean, and at the smallest and largest budget with a minimum inside). When
    fewer than two curves have a minimum, the numbers are NaN and "note" says why."""
    from .fits import fit_isoflop

    try:
        fit = fit_isoflop(results.column("isoflop", "flops_budget", corpus),
                          results.column("isoflop", "non_embedding_params", corpus),
                          results.column("isoflop", "tokens", corpus),
                          results.column("isoflop", "val_loss_nats", corpus), n_boot=n_boot)
    except StudyError as exc:
        return {"step": step, **dict.fromkeys(
            ("a", "a_low", "a_high", "tokens_per_param", "tokens_per_param_first",
             "tokens_per_param_last"), math.nan), "minima": [], "note": str(exc)}
    minima = [m for m in fit.extra["minima"] if m["inside"]] or fit.extra["minima"]
    ratios = [m["D_opt"] / m["N_opt"] for m in minima]
    lo, hi = fit.intervals.get("a", (math.nan, math.nan))
    return {"step": step, "a": fit.params["a"], "a_low": lo, "a_high": hi,
            "tokens_per_param": fit.params["tokens_per_param"],
            "tokens_per_param_first": ratios[0], "tokens_per_param_last": ratios[-1],
            "minima": minima}


def load_accounting(source="shipped", n_boot: int = 200) -> list[dict]:
    """Each step's `frontier_row` from a study's directory (`source`: "shipped" or a path),
    and the beta2 runs as the row of step "beta2-runs"."""
    from .results import load_results

    root = SHIPPED if source == "shipped" else Path(source)
    if not all((root / step / "isoflop.csv").is_file() for step in STEPS):
        raise StudyError(f"{root} does not hold the four steps' IsoFLOP sweeps ("
                         f"{', '.join(STEPS)}); run tinyllm accounting-study --out {root} first")
    rows = []
    for step in STEPS:
        results = load_results(root / step)
        (corpus,) = results.corpora()
        rows.append(frontier_row(step, results, corpus, n_boot))
    beta2 = read_csv(root / "beta2.csv") if (root / "beta2.csv").is_file() else []
    return rows + [{"step": "beta2-runs", "runs": beta2}]


def summary(rows: list[dict]) -> str:
    """The exponent a and the tokens per parameter of each step; the beta2 runs."""
    out = ["N_opt ~ C^a at the IsoFLOP minima; tokens per parameter D_opt / N_opt "
           "(N non-embedding)",
           f"{'step':8s} {'a':>6s} {'95% interval':>16s} {'tokens/param':>13s} "
           f"{'smallest C':>11s} {'largest C':>10s}"]
    for r in rows:
        if r["step"] == "beta2-runs":
            continue
        if r.get("note"):
            out.append(f"{r['step']:8s} no frontier: {r['note']}")
            continue
        interval = f"[{r['a_low']:.2f}, {r['a_high']:.2f}]"
        out.append(f"{r['step']:8s} {r['a']:6.2f} {interval:>16s} "
                   f"{r['tokens_per_param']:13.0f} {r['tokens_per_param_first']:11.0f} "
                   f"{r['tokens_per_param_last']:10.0f}")
    out.append("Kaplan et al. 2020: a = 0.73; Hoffmann et al. 2022: a ~ 0.5, ~20 tokens/param")
    runs = next((r["runs"] for r in rows if r["step"] == "beta2-runs"), [])
    if runs:
        out.append("beta2 tuning (validation loss, nats): " + "; ".join(
            f"w{w}: " + ", ".join(f"{r['beta2']:g} {r['val_loss_nats']:.4f}"
                                  for r in runs if r["width"] == w)
            for w in sorted({r["width"] for r in runs})))
    return "\n".join(out)


def plot_accounting(rows: list[dict], axes=None):
    """Two panels: N_opt against C, one colour per step (its minima and fitted power law,
    with Kaplan's and Chinchilla's slopes for reference), and the tokens per parameter at
    each step's minima beside Chinchilla's 20."""
    import matplotlib.pyplot as plt

    if axes is None:
        _, axes = plt.subplots(1, 2, figsize=(12, 4.4), layout="constrained")
    steps = [r for r in rows if r["step"] != "beta2-runs" and r["minima"]]
    for r in steps:
        c = np.array([m["flops"] for m in r["minima"]])
        n = np.array([m["N_opt"] for m in r["minima"]])
        line, = axes[0].loglog(c, n, "o", label=f"{r['step']}: a = {r['a']:.2f}")
        k = np.exp(np.mean(np.log(n) - r["a"] * np.log(c)))
        grid = np.geomspace(c.min(), c.max(), 20)
        axes[0].loglog(grid, k * grid ** r["a"], "-", color=line.get_color(), lw=1)
        axes[1].semilogx(c, n ** -1 * np.array([m["D_opt"] for m in r["minima"]]), "o-",
                         color=line.get_color(), label=r["step"])
    if steps:
        c = np.array([m["flops"] for r in steps for m in r["minima"]])
        n = np.array([m["N_opt"] for r in steps for m in r["minima"]])
        grid = np.geomspace(c.min(), c.max(), 20)
        for slope, style, who in ((0.73, "--", "Kaplan"), (0.5, ":", "Chinchilla")):
            k = np.exp(np.mean(np.log(n) - slope * np.log(c)))
            axes[0].loglog(grid, k * grid ** slope, style, color="gray", lw=1,
                           label=f"slope {slope} ({who})")
        axes[1].axhline(20, color="gray", ls=":", lw=1, label="Chinchilla: ~20")
    axes[0].set_xlabel("compute budget C (FLOPs, as each step counts them)")
    axes[0].set_ylabel("compute-optimal N (non-embedding)")
    axes[0].legend(fontsize=8)
    axes[1].set_xlabel("compute budget C (FLOPs)")
    axes[1].set_ylabel("tokens per parameter at the optimum")
    axes[1].set_yscale("log")
    axes[1].legend(fontsize=8)
    return axes


__all__ = ["BETA2S", "BUDGETS", "KAPLAN_WARMUP", "SHIPPED", "STEPS", "AccountingBudget",
           "best_beta2", "frontier_row", "get_budget", "load_accounting", "plot_accounting",
           "run_accounting", "step_plan", "step_settings", "summary", "tune_beta2"]
