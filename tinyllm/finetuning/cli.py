"""`tinyllm finetune-study`: does pre-training pay off on the built-in tasks, and with size?

    tinyllm finetune-study                       # the default study: ~30 min on 2 cores
    tinyllm finetune-study --budget text         # the text tasks in BPE tokens: ~12 min
    tinyllm finetune-study --budget babi         # bAbI 1-3, GPT and BERT: ~80 min
    tinyllm finetune-study --budget tiny         # seconds: a smoke test of the whole pipeline
    tinyllm finetune-study --estimate            # the plan and its time estimate, nothing run
    tinyllm finetune-study --plot shipped        # tables and figures of the shipped results
    tinyllm finetune-study --plot runs/ft-study  # ... of a results directory
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

from ..scaling.cli import add_executor_option

EPILOG = """examples:
  tinyllm finetune-study                           # default budget, 4 GPT sizes, 3 tasks
  tinyllm finetune-study --budget text             # the text tasks read as BPE tokens
  tinyllm finetune-study --budget babi             # question answering: bAbI 1-3
  tinyllm finetune-study --budget tiny --out /tmp/f   # a smoke test in seconds
  tinyllm finetune-study --estimate                # plan and time estimate only
  tinyllm finetune-study --plot shipped            # tables + figures of the shipped study
  tinyllm finetune-study --plot shipped:babi       # ... of the shipped bAbI study
  tinyllm finetune-study --plot shipped:text       # ... of the shipped BPE study
An interrupted study resumes where it stopped: run the same command again.
"""



def add_finetune_study_parser(sub) -> None:
    from .plan import BUDGETS

    p = sub.add_parser(
        "finetune-study", help="the fine-tuning study: pre-trained vs scratch vs baselines",
        description="Pre-train GPTs of several sizes, fine-tune each on the built-in "
        "classification tasks with label budgets, and compare with the same models trained "
        "from scratch, TF-IDF logistic regression and the majority class (--budget text: the "
        "two text tasks read as BPE tokens, pre-trained in two stages, the second on the "
        "tasks' unlabelled texts, the head on the mean of every token's state); "
        "or (--budget babi) "
        "pre-train a GPT and a BERT per size for bAbI's question answering, the GPT writing "
        "the answer and the BERT pointing at it. Results are tidy CSVs in --out; an "
        "interrupted study resumes.", epilog=EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--budget", default="default", choices=list(BUDGETS),
                   help="tiny, tiny-qa: seconds; default: ~30 min on 2 cores; text: ~12 min; "
                   "babi: ~80 min (default: default)")
    p.add_argument("--out", help="results directory (default runs/finetune-study-<budget>)")
    p.add_argument("--jobs", type=int, default=None,
                   help="runs in parallel, one BLAS thread each when 2 (default: 2 on 2+ "
                   "cores; 0 = in this process)")
    add_executor_option(p)
    p.add_argument("--estimate", action="store_true",
                   help="print the plan and a measured time estimate, then stop")
    p.add_argument("--plot", metavar="RESULTS", help="print the tables and draw the figures "
                   "of a results directory instead of training ('shipped' = the study "
                   "shipped with tinyllm)")
    p.add_argument("--plot-dir", help="where figures go (default RESULTS/plots, or "
                   "./finetune-study-plots for 'shipped')")


def cmd_finetune_study(args) -> int:
    if args.plot:
        from .results import resolve_results

        shipped = args.plot == "shipped" or args.plot.startswith("shipped:")
        root = resolve_results(args.plot)
        plot_dir = Path(args.plot_dir) if args.plot_dir else (
            Path("finetune-study-plots") if shipped else root / "plots")
        _finish(root, plot_dir)
        return 0
    return _run(args)


def _run(args) -> int:
    from ..scaling.runner import default_jobs
    from .estimate import estimate_seconds
    from .plan import describe_plan, get_budget, plan_study
    from .runner import run_study

    jobs = default_jobs() if args.jobs is None else args.jobs
    if jobs < 0:
        raise ValueError(f"--jobs {jobs} must be 0 (this process) or more worker processes")
    budget = get_budget(args.budget)
    plan = plan_study(budget)
    out = Path(args.out or f"runs/finetune-study-{budget.name}")
    print(describe_plan(plan))
    estimate = estimate_seconds(plan, jobs=max(jobs, 1))
    print(f"{len(plan.pretrain) + len(plan.runs)} runs, {jobs or 1} at a time; estimated "
          f"{estimate / 60:.1f} min (budget '{budget.name}' aims at {budget.minutes:g} min)")
    if args.estimate:
        return 0
    print(f"results: {out}/ (rerun the same command to resume)", flush=True)
    start = time.perf_counter()
    report = run_study(plan, out, jobs=jobs, log=lambda m: print(m, flush=True),
                       executor=args.executor)
    print(f"study: {len(report.finished)} run(s) trained, {len(report.skipped)} already done, "
          f"{len(report.failed)} failed, {(time.perf_counter() - start) / 60:.1f} min")
    if report.finished or report.skipped:
        _finish(out, out / "plots")
    if report.failed:
        print("failed runs (rerun the command to retry them):", file=sys.stderr)
        for run_id, error in report.failed.items():
            print(f"  {run_id}: {error}", file=sys.stderr)
        return 1
    return 0


def _finish(root: Path, plot_dir: Path) -> None:
    """Print the tables, draw the figures."""
    from .report import full_report
    from .results import load_results

    results = load_results(root)
    print(full_report(results))
    try:
        from .plots import plot_all

        paths = plot_all(results, plot_dir)
    except ImportError:
        from .._hints import install_hint

        print(f"matplotlib is not installed: no figures ({install_hint('matplotlib', 'plot')})")
        return
    print("figures: " + ", ".join(str(p) for p in paths if p.suffix == ".png"))
