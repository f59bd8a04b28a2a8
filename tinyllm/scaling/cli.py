"""`tinyllm scaling`: run the scaling study, or redraw and refit a finished one.

    tinyllm scaling                          # the default study: ~30 min on 2 cores
    tinyllm scaling --budget tiny            # seconds: a smoke test of the whole pipeline
    tinyllm scaling --budget full            # ~2 h: the publication-quality curves
    tinyllm scaling --budget v2              # ~2.2 h: hmm + english, rates tuned per rung
    tinyllm scaling --estimate               # the plan and its time estimate, nothing run
    tinyllm scaling --plot runs/scaling      # redraw the figures of a results directory
    tinyllm scaling --plot shipped           # ... of the study shipped with tinyllm
    tinyllm scaling --plot shipped:default   # ... of the shipped default-budget study
    tinyllm scaling --baselines-run RESULTS  # n-gram and matched-LSTM baselines of a study
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

EPILOG = """examples:
  tinyllm scaling                                  # default budget, markov + pydoc, 2 jobs
  tinyllm scaling --budget tiny --out /tmp/s       # a smoke test in seconds
  tinyllm scaling --data markov --no-task          # one corpus, no capability task
  tinyllm scaling --data notes.txt                 # your own text file
  tinyllm scaling --budget tiny --tune-lr          # each rung at its best learning rate
  tinyllm scaling --estimate                       # plan and time estimate only
  tinyllm scaling --plot shipped --plot-dir figs   # figures of the shipped results
  tinyllm scaling --plot shipped:default           # ... of the shipped default study
  tinyllm scaling --baselines-run runs/scaling-default   # n-gram + LSTM baselines.csv
An interrupted study resumes where it stopped: run the same command again.
"""


def add_scaling_parser(sub) -> None:
    from .plan import BUDGETS

    p = sub.add_parser(
        "scaling", help="the scaling study: loss and capability vs size, data and compute",
        description="Train a ladder of GPT sizes (size sweep, IsoFLOP sweeps, a capability "
        "task), fit Kaplan and Chinchilla scaling laws with bootstrap intervals, and draw "
        "the figures. Results are tidy CSVs in --out; a finished run is never lost and an "
        "interrupted study resumes.", epilog=EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--budget", default="default", choices=list(BUDGETS),
                   help="tiny: seconds; default: ~30 min on 2 cores; full: ~2 h; v2: ~2.2 h "
                   "(the hidden Markov source and english, rates tuned)")
    p.add_argument("--data", help="comma-separated corpora or text files "
                   "(default: the budget's, markov,pydoc)")
    p.add_argument("--out", default=None, help="results directory (default runs/scaling-"
                   "<budget>)")
    p.add_argument("--jobs", type=int, default=None,
                   help="runs in parallel, one BLAS thread each when 2 (default: 2 on 2+ "
                   "cores; 0 = in this process, no per-run memory)")
    add_executor_option(p)
    p.add_argument("--max-width", type=int, default=None,
                   help="drop ladder rungs wider than this (a smaller, quicker study)")
    p.add_argument("--no-task", action="store_true", help="skip the capability task")
    p.add_argument("--tune-lr", action="store_true",
                   help="train each size-sweep rung at powers of 2 times Kaplan's learning "
                   "rate until its best is bracketed, and the IsoFLOP runs at that width's "
                   "best (about 3x the size sweep's time; the v2 budget always does); with "
                   "--baselines-run: each LSTM likewise, at powers of 2 of its own rate")
    p.add_argument("--estimate", action="store_true",
                   help="print the plan and a measured time estimate, then stop")
    p.add_argument("--plot", metavar="RESULTS", help="redraw (and refit) an existing results "
                   "directory instead of training ('shipped' = the full-budget study shipped "
                   "with tinyllm, 'shipped:default' = the shipped default-budget one)")
    p.add_argument("--plot-dir", help="where figures go (default RESULTS/plots, or "
                   "./scaling-plots for 'shipped')")
    p.add_argument("--baselines", help="CSV of baseline models (columns model, params, "
                   "val_loss_nats[, corpus]) to draw beside the Transformer")
    p.add_argument("--baselines-run", metavar="RESULTS", help="fit n-grams (orders 1-5) and "
                   "train LSTMs matched to the ladder on a finished study's data, into "
                   "RESULTS/baselines.csv (resumable; --data, --max-width and --jobs apply; "
                   "--max-width 0: n-grams only)")
    p.add_argument("--bootstrap", type=int, default=200,
                   help="bootstrap resamples for the fits' intervals (default 200)")


def add_executor_option(p) -> None:
    """--executor of the studies: local worker processes, or the workers of an MPI job."""
    p.add_argument("--executor", choices=("local", "mpi"), default="local",
                   help="local: --jobs worker processes here (default); mpi: the workers of "
                   f"an MPI job, started as mpiexec -n N python -m mpi4py.futures -m tinyllm "
                   f"{p.prog.split()[-1]} --executor mpi ... (same results files, same "
                   "resumption)")


def cmd_scaling(args) -> int:
    if args.baselines_run:
        return _baselines(args)
    if args.plot:
        return _redraw(args)
    return _run(args)


def _run(args) -> int:
    from .estimate import estimate_seconds
    from .plan import describe_plan, get_budget, plan_study, replace_settings
    from .runner import default_jobs, run_study

    budget = get_budget(args.budget)
    if args.max_width is not None:
        widths = tuple(w for w in budget.widths if w <= args.max_width)
        if len(widths) < 2:
            raise ValueError(f"--max-width {args.max_width} leaves {len(widths)} rung(s) of "
                             f"{budget.widths}; accepted: >= {sorted(budget.widths)[1]}")
        budget = replace_settings(budget, widths=widths)
    if args.tune_lr:
        budget = replace_settings(budget, tune_lr=True)
    corpora = args.data.split(",") if args.data else None
    plan = plan_study(budget, corpora, task=not args.no_task)
    jobs = default_jobs() if args.jobs is None else args.jobs
    out = Path(args.out or f"runs/scaling-{budget.name}")
    print(describe_plan(plan))
    if args.executor == "mpi":      # the pool's size is known once it starts
        at_once, jobs_estimated = "on the MPI job's workers", 1
    else:
        at_once, jobs_estimated = f"{jobs or 1} at a time", max(jobs, 1)
    estimate = estimate_seconds(plan, jobs=jobs_estimated)
    print(f"{len(plan.specs)} runs, {at_once}; estimated {estimate / 60:.1f} min"
          f"{' on one worker' if args.executor == 'mpi' else ''} "
          f"(budget '{budget.name}' aims at {budget.minutes:g} min)")
    if args.estimate:
        return 0
    print(f"results: {out}/ (rerun the same command to resume)", flush=True)
    start = time.perf_counter()
    failed = {}
    if budget.tune_lr and plan.by_sweep("size"):
        plan, failed = _tuned_plan(plan, out, jobs, args, corpora)
    report = run_study(plan, out, jobs=jobs, log=lambda m: print(m, flush=True),
                       executor=args.executor)
    failed.update(report.failed)
    print(f"study: {len(report.finished)} run(s) trained, {len(report.skipped)} already done, "
          f"{len(failed)} failed, {(time.perf_counter() - start) / 60:.1f} min")
    _finish(out, args, plot_dir=out / "plots", wall_s=time.perf_counter() - start)
    if failed:
        print("failed runs (rerun the command to retry them):", file=sys.stderr)
        for run_id, error in failed.items():
            print(f"  {run_id}: {error}", file=sys.stderr)
        return 1
    return 0


def _tuned_plan(plan, out: Path, jobs: int, args, corpora):
    """Tune the learning rate of every size-sweep rung (`tuning.tuning_rounds`); then the
    plan again with each width's size and IsoFLOP runs at its tuned rate, and the failures."""
    from .plan import plan_study
    from .store import ResultsStore
    from .tuning import tuned_exponents, tuning_rounds

    print("learning rates: each size-sweep rung at powers of 2 times Kaplan's rate, until its "
          "best is bracketed", flush=True)
    failed = tuning_rounds(plan, out, jobs=jobs, log=lambda m: print(m, flush=True),
                           executor=args.executor)
    tuned = tuned_exponents(ResultsStore(out).rows("size"))
    return plan_study(plan.budget, corpora, task=bool(plan.by_sweep("task")),
                      corpus_info=plan.corpora, lr_exponents=tuned), failed


def _baselines(args) -> int:
    from .baselines import run_baselines
    from .results import resolve_results
    from .runner import default_jobs
    from .store import load_meta

    root = resolve_results(args.baselines_run)
    widths = load_meta(root)["budget"]["widths"]
    if args.max_width is not None:
        widths = [w for w in widths if w <= args.max_width]
    start = time.perf_counter()
    rows = run_baselines(root, args.data.split(",") if args.data else None, lstm_widths=widths,
                         jobs=default_jobs() if args.jobs is None else args.jobs,
                         log=lambda m: print(m, flush=True), tune_lr=args.tune_lr,
                         executor=args.executor)
    print(f"baselines: {len(rows)} row(s) written to {root / 'baselines.csv'} in "
          f"{(time.perf_counter() - start) / 60:.1f} min")
    return 0


def _redraw(args) -> int:
    from .results import resolve_results

    shipped = args.plot == "shipped" or args.plot.startswith("shipped:")
    root = resolve_results(args.plot)
    plot_dir = Path(args.plot_dir) if args.plot_dir else (
        Path("scaling-plots") if shipped else root / "plots")
    _finish(root, args, plot_dir=plot_dir, write_fits=not shipped)
    return 0


def _finish(root: Path, args, plot_dir: Path, wall_s: float | None = None,
            write_fits: bool = True) -> None:
    """Fit, save fits.json, draw, print the summary."""
    from .._io import atomic_write
    from .fits import fit_study, fits_to_json
    from .report import baselines_summary, fits_summary, lr_summary, summary_table
    from .results import load_results

    results = load_results(root, baselines=args.baselines)
    fits = {c: fit_study(results, c, n_boot=args.bootstrap) for c in results.corpora()}
    if write_fits:
        atomic_write(root / "fits.json", json.dumps(fits_to_json(fits), indent=1))
    print(summary_table(results))
    rates, ancestors = lr_summary(results), baselines_summary(results)   # '' if irrelevant
    print("\n".join(text for text in (rates, fits_summary(results, fits), ancestors) if text))
    from .plots import plot_all

    try:
        paths = plot_all(results, plot_dir, fits)
    except ImportError:
        from .._hints import install_hint

        print(f"matplotlib is not installed: no figures ({install_hint('matplotlib', 'plot')})")
        return
    print(f"figures ({len(paths)} files): " + ", ".join(str(p) for p in paths
                                                       if p.suffix == ".png"))


# ---------------------------------------------------------------------- frontier-study
FRONTIER_EPILOG = """examples:
  tinyllm frontier-study                          # default budget: 4 rungs, <= 30 min
  tinyllm frontier-study --budget tiny --out /tmp/f   # a smoke test in seconds
  tinyllm frontier-study --plot shipped           # the shipped study's table and figure
Each rung is trained once (its weights averaged along the way), then quantized, pruned
(magnitude; heads and MLP neurons with recovery fine-tuning) and distilled from the largest
rung; every variant's validation loss and bytes go to frontier.csv, with study.json,
summary.txt and frontier.png, in --out. An interrupted study resumes: run the same command
again (a finished rung is never run again).
"""


def add_frontier_parser(sub) -> None:
    from .frontier import BUDGETS

    p = sub.add_parser(
        "frontier-study", help="loss vs bytes: quantized, pruned, distilled and averaged models",
        description="The size-quality frontier over the scaling ladder: at equal bytes, is a "
        "compressed large model better than a dense small one?", epilog=FRONTIER_EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter)
    _small_study_options(p, "frontier", BUDGETS, "default at most 30 min on 2 cores",
                         "rungs in parallel after the largest (default 2; 1 = one at a time)")


def _small_study_options(p, name: str, budgets, default_budget: str, jobs_help: str) -> None:
    """--budget, --out, --executor, --jobs and --plot of frontier-study and mup-study."""
    p.add_argument("--budget", default="default", metavar="NAME",
                   help=f"one of {', '.join(budgets)}: tiny takes seconds (tests), "
                   f"{default_budget} (default: default)")
    p.add_argument("--out", help=f"results directory (default runs/{name}-<budget>)")
    add_executor_option(p)
    p.add_argument("--jobs", type=int, default=2, metavar="N", help=jobs_help)
    p.add_argument("--plot", metavar="RESULTS", help="print the table and draw the figure of "
                   "a results directory instead of training ('shipped' = the shipped results)")


def cmd_frontier(args) -> int:
    from .frontier import SHIPPED, get_budget, load_frontier, plot_frontier, run_frontier, summary

    def start(budget, root):
        print(f"frontier study, budget {budget.name} (rungs "
              f"{', '.join(f'w{w}' for w in budget.widths)}; aims at {budget.minutes:g} min on "
              f"2 cores); results: {root}/ (rerun the same command to resume)", flush=True)

    return _small_study(args, "frontier", "frontier.png", SHIPPED, get_budget, load_frontier,
                        run_frontier, summary, lambda rows: plot_frontier(rows).figure, start,
                        "rungs")


def _small_study(args, name: str, figure_name: str, shipped: Path, get_budget, load, run,
                 summary, draw, start, unit: str) -> int:
    """A study command with --budget/--out/--jobs/--executor/--plot (frontier-study,
    mup-study): train into --out (default runs/<name>-<budget>) or read with --plot, print
    the summary, save the figure `draw(rows)` beside the results (here for the shipped ones).
    `start(budget, root)` announces a study; `unit` names what --jobs trains at once."""
    if args.jobs < 1:
        raise ValueError(f"--jobs {args.jobs} must be 1 or more ({unit} trained at once)")
    if args.plot:
        root = shipped if args.plot == "shipped" else Path(args.plot)
        rows = load(root)
        figure = Path(figure_name) if args.plot == "shipped" else root / figure_name
    else:
        budget = get_budget(args.budget)
        root = Path(args.out or f"runs/{name}-{budget.name}")
        start(budget, root)
        began = time.perf_counter()
        rows = run(budget, root, jobs=args.jobs, executor=args.executor,
                   log=lambda m: print(m, flush=True))
        print(f"study: {(time.perf_counter() - began) / 60:.1f} min")
        figure = root / figure_name
    print(summary(rows))
    try:
        import matplotlib

        matplotlib.use("Agg")
        draw(rows).savefig(figure, dpi=120, bbox_inches="tight")
        print(f"figure: {figure}")
    except ImportError:
        from .._hints import install_hint

        print(f"matplotlib is not installed: no figure ({install_hint('matplotlib', 'plot')})")
    return 0


# ---------------------------------------------------------------------- mup-study
MUP_EPILOG = """examples:
  tinyllm mup-study                               # default budget: 4 widths x 10 rates x 2
  tinyllm mup-study --budget tiny --out /tmp/m    # a smoke test in seconds
  tinyllm mup-study --plot shipped                # the shipped sweep's table and figure
Every (parametrisation, width, learning rate) is one short training run; its validation loss
goes to runs.csv in --out as soon as it finishes, so an interrupted sweep resumes where it
stopped (run the same command again). The table gives each width's best learning rate and how
far it moves from the smallest width to the largest: far under the standard parametrisation,
little under muP (GPTConfig.mup_base_width).
"""


def add_mup_parser(sub) -> None:
    from .mup import BUDGETS

    p = sub.add_parser(
        "mup-study", help="learning-rate sweeps at several widths: standard parametrisation vs "
        "muP", description="Does the best learning rate stay put as the model grows wider? "
        "The same GPT at several widths, each trained at a grid of learning rates, under "
        "GPT-2's standard parametrisation and under muP (Yang et al. 2022).",
        epilog=MUP_EPILOG, formatter_class=argparse.RawDescriptionHelpFormatter)
    _small_study_options(p, "mup", BUDGETS, "default about 15 min on 2 cores",
                         "runs in parallel (default 2, one BLAS thread each)")


def cmd_mup(args) -> int:
    from .mup import SHIPPED, get_budget, load_mup, plot_transfer, run_sweep, summary

    def start(budget, root):
        print(f"muP sweep, budget {budget.name} (widths {', '.join(map(str, budget.widths))}; "
              f"{len(budget.runs())} runs; aims at {budget.minutes:g} min on 2 cores); "
              f"results: {root}/ (rerun the same command to resume)", flush=True)

    return _small_study(args, "mup", "mup_transfer.png", SHIPPED, get_budget, load_mup,
                        run_sweep, summary, lambda rows: plot_transfer(rows)[0].figure, start,
                        "runs")


# ---------------------------------------------------------------------- induction-study
INDUCTION_EPILOG = """examples:
  tinyllm induction-study                              # default: 1-3 layers x widths 32-128
  tinyllm induction-study --budget tiny --out /tmp/i   # a smoke test in seconds
  tinyllm induction-study --plot shipped               # the shipped study's table and figure
Each (depth, width) is one attention-only model trained on random tokens whose tail is a
segment said twice, so only copying by content helps. Every eval it records the in-context
score (loss late in a row minus early), the loss on both copies of repeated random tokens, and
each head's prefix-matching, previous-token and copying scores. A finished run goes to
runs.json in --out at once; rerun the same command to resume. The table names, per run,
whether the in-context score fell in a phase change and which heads formed the circuit.
"""


def add_induction_parser(sub) -> None:
    from .induction_study import BUDGETS

    p = sub.add_parser(
        "induction-study", help="in-context learning and induction heads across depth and "
        "width (Olsson et al. 2022)", description="When does a Transformer learn to use "
        "its context? Attention-only models of 1-3 layers and several widths, tracked over "
        "training: the phase change of two-layer models, its absence in one-layer models, "
        "and the previous-token and induction heads that make it.",
        epilog=INDUCTION_EPILOG, formatter_class=argparse.RawDescriptionHelpFormatter)
    _small_study_options(p, "induction", BUDGETS, "default about 30 min on 2 cores",
                         "runs in parallel (default 2, one BLAS thread each)")


def cmd_induction(args) -> int:
    from .induction_study import (
        SHIPPED,
        get_budget,
        load_induction,
        plot_induction,
        run_grid,
        summary,
    )

    def start(budget, root):
        print(f"induction study, budget {budget.name} (depths "
              f"{', '.join(map(str, budget.depths))} x widths "
              f"{', '.join(map(str, budget.widths))}; {len(budget.runs())} runs of "
              f"{budget.steps:,} steps; aims at {budget.minutes:g} min on 2 cores); results: "
              f"{root}/ (rerun the same command to resume)", flush=True)

    return _small_study(args, "induction", "induction.png", SHIPPED, get_budget,
                        load_induction, run_grid, summary,
                        lambda rows: plot_induction(rows)[0].figure, start, "runs")


# ---------------------------------------------------------------------- accounting-study
ACCOUNTING_EPILOG = """examples:
  tinyllm accounting-study                              # default: the v2 IsoFLOPs on hmm, 4x
  tinyllm accounting-study --budget tiny --out /tmp/a   # a smoke test in seconds
  tinyllm accounting-study --plot shipped               # the shipped study's table and figure
First AdamW's beta2 is tuned at the study's batch size (three values at three widths); then
four IsoFLOP sweeps, each with one more of Porian et al.'s corrections than the last: Kaplan's
setup (compute counted as 6N, a fixed 300-step warmup, beta2 0.95), + the head and attention
FLOPs counted, + warmup scaled with the run, + the tuned beta2. The table gives each step's
N_opt ~ C^a and tokens per parameter. Every finished run is kept in --out: rerun the same
command to resume.
"""


def add_accounting_parser(sub) -> None:
    from .accounting import BUDGETS

    p = sub.add_parser(
        "accounting-study", help="compute-optimal size with and without Porian et al.'s "
        "corrections (head FLOPs, warmup, beta2)", description="Why do Kaplan's and "
        "Chinchilla's compute-optimal model sizes disagree? IsoFLOP sweeps with each "
        "correction of Porian et al. (2024) added in turn.", epilog=ACCOUNTING_EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter)
    _small_study_options(p, "accounting", BUDGETS, "default about 25 min on 2 cores",
                         "IsoFLOP runs in parallel (default 2)")


def cmd_accounting(args) -> int:
    from .accounting import (
        SHIPPED,
        get_budget,
        load_accounting,
        plot_accounting,
        run_accounting,
        summary,
    )

    def start(budget, root):
        print(f"accounting study, budget {budget.name} (the {budget.base} budget's IsoFLOPs on "
              f"{budget.corpus}, four steps; aims at {budget.minutes:g} min on 2 cores); "
              f"results: {root}/ (rerun the same command to resume)", flush=True)

    return _small_study(args, "accounting", "accounting.png", SHIPPED, get_budget,
                        load_accounting, run_accounting, summary,
                        lambda rows: plot_accounting(rows)[0].figure, start, "runs")
