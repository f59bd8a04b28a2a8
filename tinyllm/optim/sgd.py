"""Stochastic gradient descent with momentum, Nesterov momentum and weight decay, as in PyTorch.

One step, for each parameter p with gradient g (mu = momentum, tau = dampening,
lambda = weight_decay, gamma = lr):

    g = -g                          if maximize
    g = g + lambda * p              if weight_decay != 0   (L2 penalty, coupled)
    b = g                           on the first step      (if momentum != 0)
    b = mu * b + (1 - tau) * g      afterwards
    g = g + mu * b                  if nesterov, else  g = b
    p = p - gamma * g

This is PyTorch's formulation: the learning rate multiplies the velocity rather than being
folded into it (Sutskever et al. 2013 put it inside), which only matters when lr changes.

>>> import numpy as np, tinyllm
>>> from tinyllm.optim import SGD
>>> w = tinyllm.tensor([1.0, -2.0], requires_grad=True)
>>> opt = SGD([w], lr=0.1, momentum=0.9)
>>> w.grad = np.array([1.0, 1.0], dtype=np.float32)
>>> opt.step()
>>> w.data
array([ 0.9, -2.1], dtype=float32)
"""

from __future__ import annotations

import numpy as np

from .optimizer import Optimizer


class SGD(Optimizer):
    """Stochastic gradient descent, optionally with momentum: PyTorch's `torch.optim.SGD`."""

    def __init__(self, params, lr: float = 1e-3, momentum: float = 0, dampening: float = 0,
                 weight_decay: float = 0, nesterov: bool = False, *, maximize: bool = False):
        defaults = dict(lr=lr, momentum=momentum, dampening=dampening,
                        weight_decay=weight_decay, nesterov=nesterov, maximize=maximize)
        super().__init__(params, defaults)

    def _validate_group(self, group):
        lr, momentum = group["lr"], group["momentum"]
        if not lr >= 0.0:
            raise ValueError(f"SGD: invalid learning rate lr={lr}; expected lr >= 0")
        if not momentum >= 0.0:
            raise ValueError(f"SGD: invalid momentum={momentum}; expected momentum >= 0")
        if not group["weight_decay"] >= 0.0:
            raise ValueError(f"SGD: invalid weight_decay={group['weight_decay']}; "
                             "expected weight_decay >= 0")
        if group["nesterov"] and (momentum <= 0 or group["dampening"] != 0):
            raise ValueError(
                "SGD: Nesterov momentum requires a momentum and zero dampening; got "
                f"momentum={momentum}, dampening={group['dampening']} "
                "(expected momentum > 0, dampening = 0)")

    def _update(self, p, group) -> None:
        """One SGD update of `p` in place: the equations of the module docstring."""
        data, g = p.data, p.grad
        lr, momentum, wd = group["lr"], group["momentum"], group["weight_decay"]
        a, b = self._buffers(data, 2)
        # p.grad itself is never modified: a and b hold the transformed gradient.
        if group["maximize"]:
            g = np.negative(g, out=a)
        if wd != 0:
            np.multiply(data, wd, out=b)
            g = np.add(g, b, out=a)
        if momentum != 0:
            state = self.state[p]
            buf = state.get("momentum_buffer")
            if buf is None:
                buf = state["momentum_buffer"] = np.array(g, dtype=data.dtype)
            else:
                buf *= momentum
                if group["dampening"] == 0:
                    buf += g
                else:
                    buf += np.multiply(g, 1 - group["dampening"], out=b)
            if group["nesterov"]:
                np.multiply(buf, momentum, out=b)
                g = np.add(g, b, out=a)
            else:
                g = buf
        data -= np.multiply(g, lr, out=b)
