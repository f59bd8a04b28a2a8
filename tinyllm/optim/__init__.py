"""Optimizers, learning-rate schedules and gradient clipping, with PyTorch's names and semantics.

A training step with all three::

    groups = param_groups_for_weight_decay(model, weight_decay=0.1)
    opt = AdamW(groups, lr=6e-4, betas=(0.9, 0.95))
    sched = WarmupCosine(opt, warmup_steps=100, total_steps=5000, min_lr=6e-5)
    for k in range(5000):
        loss = model(x, y)
        opt.zero_grad()
        loss.backward()
        clip_grad_norm_(model.parameters(), max_norm=1.0)
        opt.step()
        sched.step()

The optimizers update `p.data` in place from `p.grad`, in the parameter's dtype, and skip
parameters whose gradient is None. Tests check several steps against `torch.optim`.
"""

from .adamw import Adam, AdamW
from .clip import clip_grad_norm_
from .groups import is_no_decay, param_groups_for_weight_decay, scale_group_lrs
from .optimizer import Optimizer
from .schedules import (
    ConstantLR,
    InverseSqrt,
    LambdaLR,
    LRScheduler,
    WarmupCosine,
    WarmupStableDecay,
    inverse_sqrt_lr,
    warmup_cosine_lr,
    warmup_stable_decay_lr,
)
from .sgd import SGD
from .swa_utils import AveragedModel

__all__ = [
    "SGD", "Adam", "AdamW", "AveragedModel", "ConstantLR", "InverseSqrt", "LRScheduler", "LambdaLR",
    "Optimizer", "WarmupCosine", "WarmupStableDecay", "clip_grad_norm_", "inverse_sqrt_lr",
    "is_no_decay", "param_groups_for_weight_decay", "scale_group_lrs", "warmup_cosine_lr",
    "warmup_stable_decay_lr",
]
