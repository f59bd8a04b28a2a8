"""The scaling study: how loss and capability fall with parameters, data and compute.

    ladder   the model sizes (depth and width grown together) and their FLOPs and memory
    sweep    plan, run (in worker processes, resumable) and store the study's runs
    fits     Kaplan's L(N), the offset form, Chinchilla's L(N, D), the compute-optimal frontier
    plots    every figure of the study, PNG and SVG
    tasks    a capability scored by accuracy: in-context copying
    baselines  n-gram (orders 1-5) and size-matched LSTM baselines on a study's own data

>>> from tinyllm.scaling import BUDGETS, plan_study, run_study
>>> plan = plan_study(BUDGETS["tiny"], ["markov"])
>>> report = run_study(plan, "runs/scaling-tiny", jobs=0)     # doctest: +SKIP
"""

from .ladder import WIDTHS, Rung, check_fits_in_memory, make_ladder
from .results import SHIPPED, Results, load_results, shipped
from .sweep import (
    BUDGETS,
    SCHEMA,
    Budget,
    CorpusSettings,
    RunSpec,
    StudyError,
    StudyPlan,
    estimate_seconds,
    get_budget,
    kaplan_lr,
    plan_study,
    run_study,
)
from .tasks import CopyTask, RecallTask, make_task, task_accuracy

__all__ = [
    "BUDGETS", "SCHEMA", "SHIPPED", "WIDTHS", "Budget", "CopyTask", "CorpusSettings", "Results",
    "RecallTask", "RunSpec", "Rung", "StudyError", "StudyPlan", "check_fits_in_memory",
    "estimate_seconds", "get_budget", "kaplan_lr", "load_results", "make_ladder", "make_task",
    "plan_study", "run_study", "shipped", "task_accuracy",
]
