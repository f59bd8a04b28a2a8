"""How long a plan should take on this machine, from step times measured here.

>>> seconds = estimate_seconds(plan_study(BUDGETS["tiny"]), jobs=2)   # doctest: +SKIP
"""

from __future__ import annotations

import time

import numpy as np

from .ladder import Rung
from .plan import StudyPlan


def measure_step_time(rung: Rung, vocab_size: int, block_size: int, batch_size: int,
                      steps: int = 3) -> float:
    """Seconds per training step (forward, backward, AdamW) of `rung`, measured here."""
    from ..models import GPT
    from ..optim import AdamW

    model = GPT(rung.config(vocab_size, block_size), seed=0)
    opt = AdamW(model.parameters(), lr=1e-3)
    rng = np.random.default_rng(0)
    x = rng.integers(0, vocab_size, (batch_size, block_size + 1))
    times = []
    for _ in range(steps + 1):
        t0 = time.perf_counter()
        loss = model(x[:, :-1], x[:, 1:]).loss
        opt.zero_grad()
        loss.backward()
        opt.step()
        times.append(time.perf_counter() - t0)
    return float(np.median(times[1:]))   # the first step pays for warm-up


#: Size-sweep runs a rung of a budget that tunes its rates needs at least (`tuning`): the
#: rule, twice it, and one beyond the better.
TUNED_RATES_PER_RUNG = 3


def estimate_seconds(plan: StudyPlan, jobs: int = 1, startup_s: float = 2.0) -> float:
    """Wall seconds the plan should take with `jobs` workers (a budget that tunes its
    learning rates: `TUNED_RATES_PER_RUNG` runs per size-sweep rung, the fewest it needs).

    Step time = a + b * FLOPs per step, with a and b measured on the smallest and the largest
    rung (a: Python's per-step overhead; b: the inverse of the matmul throughput), plus
    evaluations and process start-up.
    """
    total = 0.0
    shapes = {(s.block_size, s.batch_size, s.corpus) for s in plan.specs}
    for block, batch, corpus in shapes:
        specs = [s for s in plan.specs if (s.block_size, s.batch_size, s.corpus)
                 == (block, batch, corpus)]
        vocab = plan.corpora[corpus].vocab_size if corpus in plan.corpora else 32
        rungs = sorted({s.rung for s in specs}, key=lambda r: r.n_embd)
        lo, hi = rungs[0], rungs[-1]
        f_lo, f_hi = (r.flops_per_token(vocab, block) * batch * block for r in (lo, hi))
        t_lo, t_hi = (measure_step_time(r, vocab, block, batch) for r in (lo, hi))
        b = max((t_hi - t_lo) / max(f_hi - f_lo, 1.0), 0.0)
        a = max(t_lo - b * f_lo, 0.0)
        for s in specs:
            flops = s.rung.flops_per_token(vocab, block) * batch * block
            step = a + b * flops
            evals = (s.steps // s.eval_interval + 1) * 2 * s.eval_iters + 2 * s.final_eval_iters
            runs = TUNED_RATES_PER_RUNG if s.sweep == "size" and plan.budget.tune_lr else 1
            total += runs * (startup_s + s.steps * step + evals * step / 3)
    return total / max(jobs, 1)
