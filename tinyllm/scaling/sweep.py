"""The study's sweeps under their former single-module name; the code lives in four modules.

    plan      budgets, `RunSpec`s and `plan_study`: what to run
    runner    `run_study`, `run_one`, worker processes, resume, `remeasure_memory`
    store     the results directory: study.json, the CSVs, `read_csv`, `load_meta`
    estimate  `estimate_seconds`: how long a plan should take here

Import from those; this module only re-exports their public names, so that code written
against `tinyllm.scaling.sweep` keeps working.
"""

from .estimate import estimate_seconds, measure_step_time
from .plan import (
    BUDGETS,
    SWEEPS,
    Budget,
    CorpusInfo,
    CorpusSettings,
    RunSpec,
    StudyError,
    StudyPlan,
    describe_plan,
    get_budget,
    isoflop_steps,
    kaplan_lr,
    plan_study,
    replace_settings,
    text_digest,
)
from .runner import (
    LN2,
    THREAD_VARS,
    StudyReport,
    default_jobs,
    remeasure_memory,
    run_one,
    run_study,
    thread_env,
)
from .store import CURVE_COLUMNS, RUN_COLUMNS, SCHEMA, ResultsStore, csv_text, load_meta, read_csv

__all__ = [
    "BUDGETS", "CURVE_COLUMNS", "LN2", "RUN_COLUMNS", "SCHEMA", "SWEEPS", "THREAD_VARS", "Budget",
    "CorpusInfo", "CorpusSettings", "ResultsStore", "RunSpec", "StudyError", "StudyPlan",
    "StudyReport", "csv_text", "default_jobs", "describe_plan", "estimate_seconds",
    "get_budget", "isoflop_steps", "kaplan_lr", "load_meta", "measure_step_time", "plan_study",
    "read_csv", "remeasure_memory", "replace_settings", "run_one", "run_study", "text_digest",
    "thread_env",
]
