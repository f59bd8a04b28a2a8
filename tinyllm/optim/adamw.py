"""Adam and AdamW (Kingma & Ba 2015; Loshchilov & Hutter 2019), as in PyTorch.

One step t = 1, 2, ... for each parameter p with gradient g (gamma = lr, lambda = weight_decay):

    g = -g                                        if maximize
    p = p * (1 - gamma * lambda)                  AdamW: decoupled weight decay
    g = g + lambda * p                            Adam: L2 penalty, coupled through g
    m = beta1 * m + (1 - beta1) * g               first moment (running mean of g)
    v = beta2 * v + (1 - beta2) * g * g           second moment (running mean of g^2)
    v_max = max(v_max, v)                         if amsgrad, and v_max replaces v below
    p = p - (gamma / (1 - beta1^t)) * m / (sqrt(v) / sqrt(1 - beta2^t) + eps)

The last line is the bias-corrected update gamma * m_hat / (sqrt(v_hat) + eps), written the
way PyTorch evaluates it (step size lr / bias_correction1; the denominator is
sqrt(v) / sqrt(bias_correction2) + eps), so the two libraries agree to rounding.

Why decoupled: with Adam's L2 penalty the decay term is divided by sqrt(v) like the rest of
the gradient, so weights with large gradients are barely decayed. AdamW shrinks every weight
by the same factor, independent of its gradient history.

>>> import numpy as np, tinyllm
>>> from tinyllm.optim import AdamW
>>> w = tinyllm.tensor([1.0, -1.0], requires_grad=True)
>>> opt = AdamW([w], lr=0.1, weight_decay=0.0)
>>> w.grad = np.array([3.0, -0.5], dtype=np.float32)
>>> opt.step()              # the first step moves every weight by about lr
>>> np.round(w.data, 4)
array([ 0.9, -0.9], dtype=float32)
"""

from __future__ import annotations

import numpy as np

from .. import kernels
from ..kernels.reference import AdamHyper
from .optimizer import Optimizer


class Adam(Optimizer):
    """Adam: `torch.optim.Adam`, with L2 weight decay unless `decoupled_weight_decay=True`."""

    def __init__(self, params, lr: float = 1e-3, betas: tuple[float, float] = (0.9, 0.999),
                 eps: float = 1e-8, weight_decay: float = 0, amsgrad: bool = False, *,
                 maximize: bool = False, decoupled_weight_decay: bool = False):
        defaults = dict(lr=lr, betas=tuple(betas), eps=eps, weight_decay=weight_decay,
                        amsgrad=amsgrad, maximize=maximize,
                        decoupled_weight_decay=decoupled_weight_decay)
        super().__init__(params, defaults)

    def _validate_group(self, group):
        name = type(self).__name__
        lr, eps, wd = group["lr"], group["eps"], group["weight_decay"]
        if not lr >= 0.0:
            raise ValueError(f"{name}: invalid learning rate lr={lr}; expected lr >= 0")
        if not eps >= 0.0:
            raise ValueError(f"{name}: invalid eps={eps}; expected eps >= 0")
        betas = group["betas"]
        if len(betas) != 2:
            raise ValueError(f"{name}: betas must be a pair (beta1, beta2), got {betas!r}")
        for i, beta in enumerate(betas):
            if not 0.0 <= beta < 1.0:
                raise ValueError(f"{name}: invalid beta parameter at index {i}: {beta}; "
                                 "expected 0 <= beta < 1")
        if not wd >= 0.0:
            raise ValueError(f"{name}: invalid weight_decay={wd}; expected weight_decay >= 0")

    def _update(self, p, group) -> None:
        """One Adam(W) update of `p` in place: the equations of the module docstring."""
        data, g = p.data, p.grad
        lr, wd, eps = group["lr"], group["weight_decay"], group["eps"]
        beta1, beta2 = group["betas"]
        state = self.state[p]
        if not state:
            state["step"] = 0
            state["exp_avg"] = np.zeros_like(data)
            state["exp_avg_sq"] = np.zeros_like(data)
        if group["amsgrad"] and "max_exp_avg_sq" not in state:  # also if turned on later
            state["max_exp_avg_sq"] = np.zeros_like(data)
        state["step"] += 1
        hyper = AdamHyper(lr=lr, beta1=beta1, beta2=beta2, eps=eps, weight_decay=wd,
                          decoupled=group["decoupled_weight_decay"],
                          maximize=group["maximize"], step=state["step"])
        vmax = state["max_exp_avg_sq"] if group["amsgrad"] else None
        # One pass per element when compiled (kernels.adam_update); NumPy's twin works in two
        # scratch arrays the optimizer keeps.
        kernels.adam_update(data, g, state["exp_avg"], state["exp_avg_sq"], vmax, hyper,
                            self._buffers(data, 2))


class AdamW(Adam):
    """AdamW: Adam with decoupled weight decay (`torch.optim.AdamW`; default decay 0.01)."""

    def __init__(self, params, lr: float = 1e-3, betas: tuple[float, float] = (0.9, 0.999),
                 eps: float = 1e-8, weight_decay: float = 1e-2, amsgrad: bool = False, *,
                 maximize: bool = False):
        super().__init__(params, lr=lr, betas=betas, eps=eps, weight_decay=weight_decay,
                         amsgrad=amsgrad, maximize=maximize, decoupled_weight_decay=True)
