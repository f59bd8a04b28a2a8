"""The translation study: the Transformer encoder-decoder against its recurrent ancestor.

    plan       budgets (tiny, default, full) and the runs they ask for: one per task / SCAN
               split, family ("seq2seq", "lstm-seq2seq") and size; Lake & Baroni's figures
    runner     run a plan (worker processes on one BLAS thread each, resumable after a crash)
    store      the results directory: study.json, runs.csv, study.log, written atomically
    estimate   how long a plan takes: a per-step cost model calibrated on one BLAS thread
    results    read a results directory (the shipped study or your own)
    report     the tables as text and the results directory's README;
    plots      exact match and BLEU vs parameters (PNG, SVG)
    cli        `tinyllm translation-study`

>>> from tinyllm.translation import BUDGETS, plan_study, run_study
>>> plan = plan_study(BUDGETS["tiny"])
>>> report = run_study(plan, "runs/translation-study-tiny", jobs=0)   # doctest: +SKIP

Like `finetuning`, this package sits above `training` and borrows the scaling study's CSV
helpers, study.json reader and worker-thread settings, and the fine-tuning study's worker
call and machine description.
"""

from .plan import (
    BUDGETS,
    FAMILIES,
    FAMILY_LABELS,
    PUBLISHED,
    SIZES,
    TASKS,
    Budget,
    RunSpec,
    StudyError,
    StudyPlan,
    describe_plan,
    get_budget,
    plan_study,
)
from .results import Results, load_results, shipped
from .runner import run_one, run_study
from .store import RUN_COLUMNS, SCHEMA

__all__ = [
    "BUDGETS", "FAMILIES", "FAMILY_LABELS", "PUBLISHED", "RUN_COLUMNS", "SCHEMA", "SIZES",
    "TASKS", "Budget", "Results", "RunSpec", "StudyError", "StudyPlan", "describe_plan",
    "get_budget", "load_results", "plan_study", "run_one", "run_study", "shipped",
]
