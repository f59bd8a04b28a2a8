"""Weight averaging along a run: stochastic weight averaging and an exponential moving
average of the parameters, as PyTorch's `torch.optim.swa_utils.AveragedModel`.

    averaged = AveragedModel(model, mode="ema", decay=0.999)
    for step ...:
        opt.step()
        averaged.update_parameters(model)
    averaged.module                     # a model with the averaged weights

    swa   w_avg <- w_avg + (w - w_avg) / (n + 1)      the plain mean of the n + 1 points seen
    ema   w_avg <- decay w_avg + (1 - decay) w        recent points weigh more

The first update copies the weights (n = 0), as PyTorch does. Why it helps (Izmailov et al.
2018): late in training SGD/AdamW bounces around a wide, flat region of low loss; the mean
of the points it visits sits nearer the region's centre, where the loss is lower and
changes less between training and validation data. The model's other state (none here
besides parameters: no batch-norm statistics) needs no update.
"""

from __future__ import annotations

import copy

from .._checks import choice

MODES = ("swa", "ema")


class AveragedModel:
    """A copy of `model` whose parameters are the running average of `model`'s."""

    def __init__(self, model, mode: str = "swa", decay: float = 0.999):
        choice("mode", mode, MODES, where="AveragedModel")
        if not 0 < decay < 1:
            raise ValueError(f"AveragedModel: decay={decay} is out of range; accepted: "
                             "0 < decay < 1")
        self.mode, self.decay = mode, float(decay)
        self.module = copy.deepcopy(model)
        for p in self.module.parameters():
            p.grad = None
            p.requires_grad_(False)
        self.n_averaged = 0

    def update_parameters(self, model) -> None:
        """Fold `model`'s current parameters into the average."""
        for avg, p in zip(self.module.parameters(), model.parameters(), strict=True):
            if self.n_averaged == 0:
                avg.data[...] = p.data
            elif self.mode == "swa":
                avg.data += (p.data - avg.data) / (self.n_averaged + 1)
            else:
                avg.data *= self.decay
                avg.data += (1 - self.decay) * p.data
        self.n_averaged += 1
