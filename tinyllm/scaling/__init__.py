"""The scaling study: how loss and capability fall with parameters, data and compute.

    ladder   the model sizes (depth and width grown together) and their FLOPs and memory
    plan     budgets and the runs they ask for (size, IsoFLOP and task sweeps)
    tuning   learning rates tuned per rung: powers of 2 of Kaplan's rule until the best is
             bracketed (the v2 budget; --tune-lr)
    runner   run a plan in worker processes, two at a time, resumable after a crash
    store    the results directory: study.json and one CSV per sweep, written atomically
    estimate  how long a plan should take on this machine
    results  read a results directory (the shipped studies or your own)
    fits     Kaplan's L(N), the offset form, Chinchilla's L(N, D), the compute-optimal frontier
    plots    every figure of the study, PNG and SVG
    tasks    a capability scored by accuracy: in-context copying
    baselines  n-gram (orders 1-5) and size-matched LSTM baselines on a study's own data
    induction  attention-only models and the scores of induction heads (Olsson et al. 2022)
    induction_study  the phase change of in-context learning across depth and width
    mup      learning-rate sweeps: standard parametrisation vs muP
    accounting  compute-optimal size with and without Porian et al.'s corrections

>>> from tinyllm.scaling import BUDGETS, plan_study, run_study
>>> plan = plan_study(BUDGETS["tiny"], ["markov"])
>>> report = run_study(plan, "runs/scaling-tiny", jobs=0)     # doctest: +SKIP
"""

from .estimate import estimate_seconds
from .ladder import WIDTHS, Rung, check_fits_in_memory, make_ladder
from .plan import (
    BUDGETS,
    Budget,
    CorpusSettings,
    RunSpec,
    StudyError,
    StudyPlan,
    get_budget,
    kaplan_lr,
    plan_study,
)
from .results import SHIPPED, Results, load_results, shipped
from .runner import run_study
from .store import SCHEMA
from .tasks import CopyTask, RecallTask, make_task, task_accuracy

__all__ = [
    "BUDGETS", "SCHEMA", "SHIPPED", "WIDTHS", "Budget", "CopyTask", "CorpusSettings", "Results",
    "RecallTask", "RunSpec", "Rung", "StudyError", "StudyPlan", "check_fits_in_memory",
    "estimate_seconds", "get_budget", "kaplan_lr", "load_results", "make_ladder", "make_task",
    "plan_study", "run_study", "shipped", "task_accuracy",
]
