"""Exercise: one AdamW update, checked step by step against ``tinyllm.optim.AdamW``.

Each case runs a few steps in float64: the student's function is fed its own previous
``(p, m, v)``, tinyllm's optimizer runs alongside, and the first step where they part is
reported. The cases are chosen so that each classic mistake moves the result well beyond
rounding: a large learning rate and decay (decoupled or not), a large ``eps`` (where it goes),
a resumed run at step 100 (the bias corrections' ``t``) and zero gradients (decay alone).
"""

from __future__ import annotations

from functools import partial

import numpy as np

from ..autograd.tensor import Tensor
from ..optim import AdamW
from ._grading import Case, Exercise, Problem, call, compare, expect_tuple

_DEFAULTS = dict(lr=1e-3, betas=(0.9, 0.999), eps=1e-8, weight_decay=1e-2)

# label, shape, hyperparameters, steps, first step t, gradient scale (0: zero gradients)
_ADAMW_CASES = (
    ("PyTorch's defaults", (4, 3), _DEFAULTS, 5, 1, 1.0),
    ("strong weight decay", (5,), dict(_DEFAULTS, lr=0.1, weight_decay=0.5), 5, 1, 1.0),
    ("large eps, other betas", (3, 3), dict(lr=1e-2, betas=(0.8, 0.95), eps=0.1,
                                            weight_decay=0.0), 4, 1, 0.3),
    ("zero gradients: only the decay acts", (4,), dict(_DEFAULTS, lr=0.1, weight_decay=0.1),
     3, 1, 0.0),
    ("resuming at step t = 100", (2, 3), dict(_DEFAULTS, lr=1e-2), 3, 100, 1.0),
)


def _adamw_cases(fn) -> list[Case]:
    rng = np.random.default_rng(6)
    cases = []
    for label, shape, hyper, steps, t0, g_scale in _ADAMW_CASES:
        p0 = rng.standard_normal(shape)
        grads = g_scale * rng.standard_normal((steps, *shape))
        resumed = t0 > 1   # a run that already took t0 - 1 steps has non-zero moments
        m0 = 0.1 * rng.standard_normal(shape) if resumed else np.zeros(shape)
        v0 = 0.1 * rng.random(shape) if resumed else np.zeros(shape)
        hyper_text = ", ".join(f"{k}={v}" for k, v in hyper.items())
        cases.append(Case(f"{label} ({hyper_text}; p {shape}; steps t = {t0}..{t0 + steps - 1})",
                          partial(_grade_adamw, fn, p0, grads, m0, v0, t0, hyper)))
    return cases


def _library_trajectory(p0, grads, m0, v0, t0, hyper) -> list[tuple[np.ndarray, ...]]:
    """(p, m, v) after each of tinyllm's AdamW steps, starting from step ``t0``."""
    w = Tensor(p0.copy(), requires_grad=True)
    opt = AdamW([w], **hyper)
    if t0 > 1:
        opt.load_state_dict({"state": {0: {"step": t0 - 1, "exp_avg": m0.copy(),
                                           "exp_avg_sq": v0.copy()}},
                             "param_groups": opt.state_dict()["param_groups"]})
    out = []
    for g in grads:
        w.grad = g.copy()
        opt.step()
        state = opt.state[w]
        out.append((w.data.copy(), state["exp_avg"].copy(), state["exp_avg_sq"].copy()))
    return out


def _grade_adamw(fn, p0, grads, m0, v0, t0, hyper) -> list[Problem]:
    expected = _library_trajectory(p0, grads, m0, v0, t0, hyper)
    p, m, v = p0.copy(), m0.copy(), v0.copy()
    for k, (g, ref) in enumerate(zip(grads, expected)):
        t = t0 + k
        result = call(fn, p.copy(), g.copy(), m.copy(), v.copy(), t, **hyper)
        p, m, v = expect_tuple(result, ("p", "m", "v"), "adamw_step")
        found = [compare(name, got, want, shape_of="p", rtol=1e-10, atol=1e-13,
                         against="tinyllm's AdamW")
                 for name, got, want in zip(("new p", "new m", "new v"), (p, m, v), ref)]
        found = [f for f in found if f is not None]
        if found:  # later steps only repeat the first difference
            return [Problem(f"step t={t}: {f.text}", f.hint) for f in found]
        p, m, v = (np.asarray(a, dtype=np.float64) for a in (p, m, v))
    return []


ADAMW_STEP = Exercise(
    name="adamw_step",
    summary="one AdamW update of a parameter: moments, bias correction, decoupled decay",
    signature=("adamw_step(p, g, m, v, t, lr=1e-3, betas=(0.9, 0.999), eps=1e-8, "
               "weight_decay=1e-2) -> (p, m, v)"),
    hint=("Decay is decoupled: first shrink p by the factor (1 - lr * weight_decay), apart "
          "from the adaptive step (it is not added to g). m and v are running means of g and "
          "g * g; both start at zero, so divide them by 1 - beta^t for step t (t counts from "
          "1). eps is added after the square root."),
    functions=("adamw_step",),
    cases=_adamw_cases,
)

EXERCISES = (ADAMW_STEP,)
