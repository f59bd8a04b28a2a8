"""Learning-rate schedules, driven like PyTorch's `torch.optim.lr_scheduler`.

A scheduler owns an optimizer and rewrites each group's `"lr"` once per training step.
Creating it sets the rate for step 0; each `scheduler.step()` after `optimizer.step()` moves
to the next, so optimizer step k (counting from 0) runs at the schedule's value for k:

    opt = AdamW(model.parameters(), lr=6e-4)
    sched = WarmupCosine(opt, warmup_steps=100, total_steps=5000, min_lr=6e-5)
    for k in range(5000):
        ...backward...
        opt.step()                # uses lr(k)
        sched.step()              # sets lr(k + 1)

`last_epoch` is the index of the step the current rate is for (PyTorch's name; it counts
steps, not epochs, here). Each group's base rate is its `"initial_lr"`, recorded when the
scheduler is created. Every schedule is also a pure function of the step
(`warmup_cosine_lr`, `inverse_sqrt_lr`) that a notebook can plot without an optimizer:

>>> [round(warmup_cosine_lr(k, 1.0, warmup_steps=2, total_steps=6, min_lr=0.1), 3)
...  for k in range(8)]
[0.333, 0.667, 1.0, 0.868, 0.55, 0.232, 0.1, 0.1]

`state_dict()` is plain JSON-able data (ints, floats, lists). One difference from PyTorch:
`load_state_dict` also writes the restored rate back into the optimizer, so a resumed run has
the right rate whether the optimizer's state was loaded before or after the scheduler's.
"""

from __future__ import annotations

import math
import numbers
from collections.abc import Callable
from typing import Any


class LRScheduler:
    """Base class: subclasses define `get_lr()`, the rates for step `self.last_epoch`."""

    def __init__(self, optimizer, last_epoch: int = -1):
        if not hasattr(optimizer, "param_groups"):
            raise TypeError(f"{type(self).__name__}: expected an optimizer, "
                            f"got {type(optimizer).__name__}")
        self.optimizer = optimizer
        if last_epoch == -1:
            for group in optimizer.param_groups:
                group.setdefault("initial_lr", group["lr"])
        else:
            for i, group in enumerate(optimizer.param_groups):
                if "initial_lr" not in group:
                    raise KeyError(
                        f"{type(self).__name__}: resuming at last_epoch={last_epoch} needs "
                        f"'initial_lr' in param_groups[{i}]; load the optimizer's state_dict "
                        "first, or start with last_epoch=-1")
        self.base_lrs: list[float] = [group["initial_lr"] for group in optimizer.param_groups]
        self.last_epoch = last_epoch
        self._last_lr: list[float] = []
        self.step()

    def get_lr(self) -> list[float]:
        """The learning rate of each parameter group at step `self.last_epoch`."""
        raise NotImplementedError(f"{type(self).__name__} does not implement get_lr()")

    def step(self) -> None:
        """Advance one step and write the new rates into the optimizer."""
        self.last_epoch += 1
        self._set(self.get_lr())

    def get_last_lr(self) -> list[float]:
        """The rates most recently written into the optimizer, one per group."""
        return list(self._last_lr)

    def _set(self, lrs: list[float]) -> None:
        for group, lr in zip(self.optimizer.param_groups, lrs):
            group["lr"] = lr
        self._last_lr = [group["lr"] for group in self.optimizer.param_groups]

    def refresh(self) -> None:
        """Recompute the current step's rates, after a setting changed (e.g. total_steps)."""
        self._set(self.get_lr())

    def state_dict(self) -> dict[str, Any]:
        """Everything but the optimizer (and functions, which cannot be saved as data)."""
        return {key: (list(value) if isinstance(value, list) else value)
                for key, value in vars(self).items()
                if key != "optimizer" and not callable(value) and key != "lr_lambdas"}

    def load_state_dict(self, state_dict: dict[str, Any]) -> None:
        """Restore `state_dict()`'s values and set the optimizer's rates to the saved ones."""
        groups = len(self.optimizer.param_groups)
        for key in ("base_lrs", "_last_lr"):
            if key in state_dict and len(state_dict[key]) != groups:
                raise ValueError(
                    f"{type(self).__name__}.load_state_dict: saved {key!r} has "
                    f"{len(state_dict[key])} entries but the optimizer has {groups} groups")
        self.__dict__.update({key: (list(value) if isinstance(value, list | tuple) else value)
                              for key, value in state_dict.items()})
        if self._last_lr:
            self._set(self._last_lr)


class LambdaLR(LRScheduler):
    """lr = base_lr * lr_lambda(step): `torch.optim.lr_scheduler.LambdaLR`.

    `lr_lambda` is one function of the step or a list of them, one per parameter group.
    The functions are not part of `state_dict()`: recreate them when resuming.
    """

    def __init__(self, optimizer, lr_lambda: Callable[[int], float] | list, last_epoch: int = -1):
        groups = len(optimizer.param_groups)
        if isinstance(lr_lambda, list | tuple):
            if len(lr_lambda) != groups:
                raise ValueError(f"LambdaLR: expected {groups} lr_lambdas (one per parameter "
                                 f"group), but got {len(lr_lambda)}")
            self.lr_lambdas = list(lr_lambda)
        else:
            self.lr_lambdas = [lr_lambda] * groups
        super().__init__(optimizer, last_epoch)

    def get_lr(self) -> list[float]:
        return [base * fn(self.last_epoch) for base, fn in zip(self.base_lrs, self.lr_lambdas)]


class ConstantLR(LRScheduler):
    """lr = base_lr * factor for the first `total_iters` steps, then base_lr (PyTorch's).

    PyTorch's defaults (factor=1/3, total_iters=5) make this a short, low start; a truly
    constant rate is `ConstantLR(opt, factor=1.0)` (or no scheduler at all).
    """

    def __init__(self, optimizer, factor: float = 1.0 / 3, total_iters: int = 5,
                 last_epoch: int = -1):
        if not 0.0 <= factor <= 1.0:
            raise ValueError(f"ConstantLR: invalid factor={factor}; expected 0 <= factor <= 1")
        _check_steps("ConstantLR", total_iters=total_iters)
        self.factor = factor
        self.total_iters = total_iters
        super().__init__(optimizer, last_epoch)

    def get_lr(self) -> list[float]:
        # Closed form: PyTorch's recursive update (divide by factor at total_iters) can miss the
        # base rate by a rounding error; this returns it exactly.
        if self.last_epoch < self.total_iters:
            return [base * self.factor for base in self.base_lrs]
        return list(self.base_lrs)


def warmup_cosine_lr(step: int, base_lr: float, warmup_steps: int, total_steps: int,
                     min_lr: float = 0.0) -> float:
    """The learning rate at optimizer step `step` (from 0): nanoGPT's `get_lr`, exactly.

    - warmup, step < warmup_steps: base_lr * (step + 1) / (warmup_steps + 1), a straight line
      that would pass through 0 at step -1, so even step 0 learns (it is base_lr/(w+1), not 0);
    - cosine, warmup_steps <= step <= total_steps: with r = (step - warmup_steps) /
      (total_steps - warmup_steps), min_lr + 0.5 * (1 + cos(pi * r)) * (base_lr - min_lr),
      which is base_lr at the first cosine step and min_lr at total_steps;
    - after total_steps: min_lr.

    (nanoGPT's names: learning_rate, warmup_iters, lr_decay_iters, min_lr.) When
    warmup_steps == total_steps the cosine phase is empty and step total_steps is min_lr.
    """
    _check_cosine_args(base_lr, warmup_steps, total_steps, min_lr)
    if step < 0:
        raise ValueError(f"warmup_cosine_lr: invalid step={step}; expected step >= 0")
    if step < warmup_steps:
        return base_lr * (step + 1) / (warmup_steps + 1)
    # nanoGPT tests `step > total_steps`; at step == total_steps its cosine gives exactly min_lr
    # (cos(pi) == -1.0), so `>=` is the same schedule and also covers an empty cosine phase.
    if step >= total_steps:
        return min_lr
    decay_ratio = (step - warmup_steps) / (total_steps - warmup_steps)
    coeff = 0.5 * (1.0 + math.cos(math.pi * decay_ratio))  # 1 -> 0
    return min_lr + coeff * (base_lr - min_lr)


class WarmupCosine(LRScheduler):
    """Linear warmup, then cosine decay to `min_lr`, then constant (see `warmup_cosine_lr`).

    `min_lr` is an absolute rate shared by every group (like CosineAnnealingLR's eta_min), or
    a list of one rate per group (like ReduceLROnPlateau's min_lr); each group warms up to and
    decays from its own base rate.
    """

    def __init__(self, optimizer, warmup_steps: int, total_steps: int,
                 min_lr: float | list[float] = 0.0, last_epoch: int = -1):
        self.min_lrs = _min_lrs(min_lr, optimizer, "WarmupCosine")
        for low in self.min_lrs:
            _check_cosine_args(1.0, warmup_steps, total_steps, low, where="WarmupCosine")
        self.warmup_steps = warmup_steps
        self.total_steps = total_steps
        self.min_lr = min_lr
        super().__init__(optimizer, last_epoch)

    def get_lr(self) -> list[float]:
        return [warmup_cosine_lr(self.last_epoch, base, self.warmup_steps, self.total_steps,
                                 low) for base, low in zip(self.base_lrs, self.min_lrs)]


def warmup_stable_decay_lr(step: int, base_lr: float, warmup_steps: int, total_steps: int,
                           min_lr: float = 0.0, decay_steps: int = 0) -> float:
    """Warmup, a long constant stretch, then a short decay (Hägele et al. 2024, "Scaling Laws
    and Compute-Optimal Training Beyond Fixed Training Durations"; MiniCPM's WSD).

    - warmup, step < warmup_steps: as `warmup_cosine_lr`;
    - stable, until total_steps - decay_steps: base_lr;
    - decay, the last `decay_steps` steps: linear down to min_lr at the last step
      (total_steps - 1);
    - after total_steps: min_lr.

    Until its decay begins, the schedule does not depend on total_steps: a run resumed from a
    checkpoint taken in the stable stretch and given more steps continues exactly as a run
    planned that long from the start.

    >>> [round(warmup_stable_decay_lr(k, 1.0, 1, 6, 0.1, decay_steps=2), 2) for k in range(7)]
    [0.5, 1.0, 1.0, 1.0, 0.55, 0.1, 0.1]
    """
    _check_cosine_args(base_lr, warmup_steps, total_steps, min_lr,
                       where="warmup_stable_decay_lr")
    _check_steps("warmup_stable_decay_lr", decay_steps=decay_steps, step=step)
    if warmup_steps + decay_steps > total_steps:
        raise ValueError(f"warmup_stable_decay_lr: warmup_steps={warmup_steps} + decay_steps="
                         f"{decay_steps} is more than total_steps={total_steps}")
    decay_start = total_steps - decay_steps
    if step < warmup_steps:
        return base_lr * (step + 1) / (warmup_steps + 1)
    if step >= total_steps:
        return min_lr
    if step < decay_start:
        return base_lr
    return base_lr + (min_lr - base_lr) * (step - decay_start + 1) / decay_steps


class WarmupStableDecay(LRScheduler):
    """Warmup, constant, then a linear decay over the last `decay_steps` steps (see
    `warmup_stable_decay_lr`); extending `total_steps` before the decay begins is exact."""

    def __init__(self, optimizer, warmup_steps: int, total_steps: int,
                 min_lr: float | list[float] = 0.0, decay_steps: int = 0,
                 last_epoch: int = -1):
        self.min_lrs = _min_lrs(min_lr, optimizer, "WarmupStableDecay")
        for low in self.min_lrs:   # checks
            warmup_stable_decay_lr(0, 1.0, warmup_steps, total_steps, low, decay_steps)
        self.warmup_steps = warmup_steps
        self.total_steps = total_steps
        self.min_lr = min_lr
        self.decay_steps = decay_steps
        super().__init__(optimizer, last_epoch)

    def get_lr(self) -> list[float]:
        return [warmup_stable_decay_lr(self.last_epoch, base, self.warmup_steps,
                                       self.total_steps, low, self.decay_steps)
                for base, low in zip(self.base_lrs, self.min_lrs)]


def inverse_sqrt_lr(step: int, base_lr: float, warmup_steps: int) -> float:
    """The original Transformer's rate at optimizer step `step` (from 0), peaking at base_lr.

    Vaswani et al. (2017) use lrate = d_model^-0.5 * min(t^-0.5, t * w^-1.5) with
    t = step + 1 (their step_num counts from 1) and w = warmup_steps: linear growth for w
    steps, then decay as 1/sqrt(t). Its peak, at t = w, is (d_model * w)^-0.5. Dividing by the
    peak gives the same shape with its maximum at base_lr:

        lr = base_lr * min(sqrt(w / t), t / w)

    so the paper's schedule (d_model=512, w=4000) is base_lr = (512 * 4000) ** -0.5 ~ 7.0e-4.
    The peak is at step w - 1, the w-th optimizer step.
    """
    _check_steps("inverse_sqrt_lr", warmup_steps=warmup_steps)
    if warmup_steps < 1:
        raise ValueError(f"inverse_sqrt_lr: invalid warmup_steps={warmup_steps}; "
                         "expected warmup_steps >= 1")
    if step < 0:
        raise ValueError(f"inverse_sqrt_lr: invalid step={step}; expected step >= 0")
    t = step + 1
    return base_lr * min(math.sqrt(warmup_steps / t), t / warmup_steps)


class InverseSqrt(LRScheduler):
    """Linear warmup to the base rate, then decay as 1/sqrt(step) (see `inverse_sqrt_lr`)."""

    def __init__(self, optimizer, warmup_steps: int, last_epoch: int = -1):
        _check_steps("InverseSqrt", warmup_steps=warmup_steps)
        if warmup_steps < 1:
            raise ValueError(f"InverseSqrt: invalid warmup_steps={warmup_steps}; "
                             "expected warmup_steps >= 1")
        self.warmup_steps = warmup_steps
        super().__init__(optimizer, last_epoch)

    def get_lr(self) -> list[float]:
        return [inverse_sqrt_lr(self.last_epoch, base, self.warmup_steps)
                for base in self.base_lrs]


def _min_lrs(min_lr, optimizer, where: str) -> list[float]:
    """One floor per parameter group: `min_lr` repeated, or the list given (its length
    checked against the groups)."""
    n = len(optimizer.param_groups)
    if isinstance(min_lr, (list, tuple)):
        if len(min_lr) != n:
            raise ValueError(f"{where}: min_lr has {len(min_lr)} rates for {n} parameter "
                             f"groups; give one rate, or one per group")
        return [float(x) for x in min_lr]
    return [min_lr] * n


def _check_steps(where: str, **steps) -> None:
    for name, value in steps.items():
        if isinstance(value, bool) or not isinstance(value, numbers.Integral) or value < 0:
            raise ValueError(f"{where}: invalid {name}={value!r}; expected an integer >= 0")


def _check_cosine_args(base_lr, warmup_steps, total_steps, min_lr,
                       where: str = "warmup_cosine_lr") -> None:
    _check_steps(where, warmup_steps=warmup_steps, total_steps=total_steps)
    if total_steps < warmup_steps:
        raise ValueError(f"{where}: total_steps={total_steps} is less than "
                         f"warmup_steps={warmup_steps}; expected total_steps >= warmup_steps")
    if not base_lr >= 0:
        raise ValueError(f"{where}: invalid base_lr={base_lr}; expected base_lr >= 0")
    if not min_lr >= 0:
        raise ValueError(f"{where}: invalid min_lr={min_lr}; expected min_lr >= 0")
