"""`tinyllm translation-study`: the Transformer against the LSTM encoder-decoder, by size, on
SCAN's splits, number names and dates.

    tinyllm translation-study                        # the default study: <= 30 min on 2 cores
    tinyllm translation-study --budget tiny          # seconds: a smoke test of the pipeline
    tinyllm translation-study --estimate             # the plan and its time, nothing run
    tinyllm translation-study --plot shipped         # tables and figures of the shipped study
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

from ..scaling.cli import add_executor_option

EPILOG = """examples:
  tinyllm translation-study                            # default budget, 4 sizes, 6 tasks
  tinyllm translation-study --budget tiny --out /tmp/t # a smoke test in seconds
  tinyllm translation-study --estimate --budget full   # plan and time estimate only
  tinyllm translation-study --tasks scan:simple,scan:length --families seq2seq
  tinyllm translation-study --plot shipped             # tables + figures of the shipped study
Each (task, family, size) is trained once and scored greedily on the test split: exact match,
BLEU (the task's tokenizer), chrF. Results are runs.csv (one row per run), study.json,
study.log, README.md and plots/ in --out. An interrupted study resumes where it stopped: run
the same command again (a finished run is never run again).
"""



def add_translation_study_parser(sub) -> None:
    from .plan import BUDGETS, FAMILIES, TASKS

    p = sub.add_parser(
        "translation-study", help="the translation study: Transformer vs LSTM encoder-decoder",
        description="Train the Transformer and the LSTM encoder-decoder at several sizes on "
        "each translation task and SCAN split, score each on its test split, and compare "
        "with Lake & Baroni's published SCAN figures.", epilog=EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--budget", default="default", metavar="NAME",
                   help=f"one of {', '.join(BUDGETS)}: tiny takes seconds (tests), default at "
                   "most 30 min on 2 cores with --jobs 2, full about 1.5 hours (3,000 steps "
                   "each) (default: default)")
    p.add_argument("--out", help="results directory (default runs/translation-study-<budget>)")
    p.add_argument("--jobs", default=None, metavar="N",
                   help="runs in parallel, each a worker process on one BLAS thread (default: "
                   "2 on 2+ cores; 0 = one after the other in this process)")
    add_executor_option(p)
    p.add_argument("--tasks", metavar="T1,T2", help=f"comma-separated subset of {', '.join(TASKS)}"
                   " (default: the budget's)")
    p.add_argument("--families", metavar="F1,F2", help=f"comma-separated subset of "
                   f"{', '.join(FAMILIES)} (default: both)")
    p.add_argument("--estimate", action="store_true",
                   help="print the plan and its estimated time (per-step cost model), then stop")
    p.add_argument("--plot", metavar="RESULTS", help="print the tables and draw the figures of "
                   "a results directory instead of training ('shipped' = the study shipped "
                   "with tinyllm)")
    p.add_argument("--plot-dir", help="where figures go (default RESULTS/plots, or "
                   "./translation-study-plots for 'shipped')")


def _list(value: str | None, what: str) -> list[str] | None:
    if value is None:
        return None
    items = [v.strip() for v in value.split(",") if v.strip()]
    if not items:
        raise ValueError(f"--{what} {value!r} names nothing; give a comma-separated list")
    return items


def _jobs(value) -> int:
    from ..scaling.runner import default_jobs

    if value is None:
        return default_jobs()
    try:
        jobs = int(value)
    except ValueError:
        jobs = -1
    if jobs < 0:
        raise ValueError(f"--jobs {value} must be 0 (this process) or a number of worker "
                         "processes (1, 2, ...)")
    return jobs


def cmd_translation_study(args) -> int:
    if args.plot:
        from .results import resolve_results

        shipped = args.plot == "shipped" or args.plot.startswith("shipped:")
        root = resolve_results(args.plot)
        plot_dir = Path(args.plot_dir) if args.plot_dir else (
            Path("translation-study-plots") if shipped else root / "plots")
        finish(root, plot_dir, readme=False)
        return 0
    return _run(args)


def _run(args) -> int:
    from .estimate import estimate_seconds, fmt_minutes
    from .plan import describe_plan, get_budget, plan_study
    from .runner import run_study

    jobs = _jobs(args.jobs)
    budget = get_budget(args.budget)
    plan = plan_study(budget, _list(args.tasks, "tasks"), _list(args.families, "families"))
    out = Path(args.out or f"runs/translation-study-{budget.name}")
    print(describe_plan(plan))
    estimate = estimate_seconds(plan, jobs=max(jobs, 1))
    print(f"{len(plan.runs)} runs, {jobs or 1} at a time; estimated {fmt_minutes(estimate)} on "
          f"the calibration machine (budget '{budget.name}' aims at "
          f"{fmt_minutes(60 * budget.minutes)} with 2 workers)")
    if args.estimate:
        return 0
    print(f"results: {out}/ (rerun the same command to resume)", flush=True)
    start = time.perf_counter()
    report = run_study(plan, out, jobs=jobs, log=lambda m: print(m, flush=True),
                       executor=args.executor)
    print(f"study: {len(report.finished)} run(s) trained, {len(report.skipped)} already done, "
          f"{len(report.failed)} failed, {(time.perf_counter() - start) / 60:.1f} min")
    if report.finished or report.skipped:
        finish(out, out / "plots", readme=True)
    if report.failed:
        print("failed runs (rerun the command to retry them):", file=sys.stderr)
        for run_id, error in report.failed.items():
            print(f"  {run_id}: {error}", file=sys.stderr)
        return 1
    return 0


def finish(root: Path, plot_dir: Path, readme: bool) -> None:
    """Print the tables, write the README (a study just run), draw the figures."""
    from .report import full_report, write_readme
    from .results import load_results

    results = load_results(root=root)
    print(full_report(results))
    if readme:
        print(f"tables: {write_readme(results)}")
    try:
        from .plots import plot_all

        paths = plot_all(results, plot_dir)
    except ImportError:
        from .._hints import install_hint

        print(f"matplotlib is not installed: no figures ({install_hint('matplotlib', 'plot')})")
        return
    print("figures: " + ", ".join(str(p) for p in paths if p.suffix == ".png"))
