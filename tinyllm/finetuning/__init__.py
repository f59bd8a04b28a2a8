"""The fine-tuning study: does pre-training pay off on small labelled tasks, and with size?

    plan       budgets and the runs they ask for (pre-training per size -- a GPT, and a BERT
               for question answering; pretrained, scratch, generative classifier, BERT span
               head and baseline runs per task, label budget and seed)
    runner     run a plan (worker processes, pre-training cached, resumable after a crash)
    store      the results directory: study.json, runs.csv, pretrain.csv, written atomically
    estimate   how long a plan should take on this machine
    baselines  the majority class, and TF-IDF logistic regression trained with tinyllm's AdamW
    results    read a results directory (the shipped study or your own); ULMFiT's comparison
               and the Bayes-optimal gap
    report     the tables as text;  plots: accuracy vs labels and vs parameters (PNG, SVG)
    cli        `tinyllm finetune-study`

>>> from tinyllm.finetuning import BUDGETS, plan_study, run_study
>>> plan = plan_study(BUDGETS["tiny"])
>>> report = run_study(plan, "runs/finetune-study-tiny", jobs=0)     # doctest: +SKIP

This package sits above `training` (as `scaling` does) and borrows the scaling study's CSV
helpers and worker-thread settings.
"""

from .baselines import (
    LogisticRegression,
    MajorityClass,
    TfidfFeatures,
    char_ngrams,
    fit_logreg,
    fit_majority,
)
from .plan import (
    ALL,
    BUDGETS,
    METHODS,
    TASKS,
    Budget,
    PretrainSpec,
    RunSpec,
    StudyError,
    StudyPlan,
    get_budget,
    plan_study,
)
from .results import Results, bayes_gap, labels_to_match, load_results, shipped
from .runner import run_study
from .store import PRETRAIN_COLUMNS, RUN_COLUMNS, SCHEMA

__all__ = [
    "ALL", "BUDGETS", "METHODS", "PRETRAIN_COLUMNS", "RUN_COLUMNS", "SCHEMA", "TASKS",
    "Budget", "LogisticRegression", "MajorityClass", "PretrainSpec", "Results", "RunSpec",
    "StudyError", "StudyPlan", "TfidfFeatures", "bayes_gap", "char_ngrams", "fit_logreg",
    "fit_majority", "get_budget", "labels_to_match", "load_results", "plan_study",
    "run_study", "shipped",
]
