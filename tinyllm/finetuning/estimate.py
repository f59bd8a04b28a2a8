"""How long a plan should take on this machine, from step times measured here.

>>> seconds = estimate_seconds(plan_study(BUDGETS["tiny"]), jobs=2)   # doctest: +SKIP
"""

from __future__ import annotations

import os
import time

import numpy as np

from .plan import GENERATIVE_METHODS, StudyPlan

#: Seconds a run spends outside its steps (loading the task and the source, checkpoints).
RUN_OVERHEAD_S = 1.0
#: Seconds of a logistic-regression run (features and full-batch steps), on average.
LOGREG_S = 3.0
#: Tokens per example of each task inside a context of 64 (markov-source strings are 32).
TASK_TOKENS = {"markov-source": 32}
#: Forward passes of a greedy answer to a bAbI question (the word, the newline, and the pass
#: that finds a row finished).
ANSWER_PASSES = 3


def step_seconds(size: str, block_size: int, batch_size: int, classify: bool,
                 steps: int = 3) -> float:
    """Seconds per training step (forward, backward, AdamW) of a GPT preset, measured here."""
    from ..models import GPTConfig, get_family
    from ..optim import AdamW

    config = GPTConfig.from_preset(size, vocab_size=110).replace(n_positions=block_size)
    rng = np.random.default_rng(0)
    x = rng.integers(1, 110, (batch_size, block_size + 1))
    if classify:
        head = get_family("gpt").head("sequence-classification")
        model = head(config.replace(num_labels=4, pad_token_id=0), seed=0)
        labels = rng.integers(0, 4, batch_size)

        def loss():
            return model(input_ids=x[:, :-1], labels=labels).loss
    else:
        from ..models import GPT

        model = GPT(config, seed=0)

        def loss():
            return model(x[:, :-1], x[:, 1:]).loss
    opt = AdamW(model.parameters(), lr=1e-3)
    times = []
    for _ in range(steps + 1):
        t0 = time.perf_counter()
        value = loss()
        opt.zero_grad()
        value.backward()
        opt.step()
        times.append(time.perf_counter() - t0)
    return float(np.median(times[1:]))       # the first step pays for warm-up


def estimate_seconds(plan: StudyPlan, jobs: int = 1) -> float:
    """Wall seconds the plan should take with `jobs` workers: measured step times times the
    steps, evaluations at a third of a step per batch, and fixed per-run costs. Steps are
    timed on the BLAS threads a worker gets (one each when two share two cores)."""
    from threadpoolctl import threadpool_limits

    threads = max(1, (os.cpu_count() or 1) // max(jobs, 1))
    with threadpool_limits(limits=threads):
        return _estimate(plan) / max(jobs, 1)


def _estimate(plan: StudyPlan) -> float:
    """Seconds of all the plan's runs, one after the other."""
    b = plan.budget
    total = 0.0
    for spec in plan.pretrain:
        step = step_seconds(spec.size, spec.block_size, spec.batch_size, classify=False)
        stages = 2 if spec.continue_steps else 1
        n_steps = spec.steps + spec.continue_steps
        evals = (n_steps // spec.eval_interval + 2 * stages) * 2 * b.eval_iters * 10
        total += n_steps * step + evals * step / 3 + stages * RUN_OVERHEAD_S
    steps = {}
    for spec in plan.runs:
        if not spec.sized:
            total += LOGREG_S if spec.method.startswith("logreg") else 0.1
            continue
        tokens = min(b.block_size, TASK_TOKENS.get(spec.task, b.block_size))
        key = (spec.size, tokens)
        if key not in steps:
            steps[key] = step_seconds(spec.size, tokens, b.batch_size, classify=True)
        info = plan.tasks[spec.task]
        eval_batches = (info.sizes["validation"] + info.sizes["test"]) / b.batch_size
        if spec.method in GENERATIVE_METHODS:      # one forward pass per label
            eval_batches *= info.num_labels
        elif info.qa and spec.model == "gpt":      # greedy answers: a pass per answer token
            eval_batches *= ANSWER_PASSES
        total += (spec.steps + eval_batches / 3) * steps[key] + RUN_OVERHEAD_S
    return total
