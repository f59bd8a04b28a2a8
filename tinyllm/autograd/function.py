"""`Function`: one differentiable op, written as a forward/backward pair on NumPy arrays.

An op subclasses `Function`, computes its output from plain arrays in `forward`, keeps only what
its derivative needs, and returns one gradient per input from `backward`:

>>> class Square(Function):
...     def forward(self, x):
...         self.x = x
...         return x * x
...     def backward(self, dout):
...         return 2 * self.x * dout
>>> y = Square.apply(tensor([3.0], requires_grad=True))

`Function.apply` runs `forward` and, when any input needs a gradient (and grad mode is on),
records the call in the graph so `Tensor.backward` can walk it later.
"""

from __future__ import annotations

import numpy as np

from .grad_mode import is_grad_enabled
from .tensor import Tensor


class Function:
    """Base class of every op: override `forward(*arrays, **params)` and `backward(dout)`."""

    # Filled in by `apply` when the call is recorded in the graph.
    parents: tuple[Tensor | None, ...] | None = None
    needs_input_grad: tuple[bool, ...] = ()
    released = False

    def forward(self, *arrays: np.ndarray | None, **params) -> np.ndarray:
        raise NotImplementedError

    def backward(self, dout: np.ndarray):
        """Return the gradient for each input (an array or None), as a tuple or a lone array."""
        raise NotImplementedError

    @classmethod
    def apply(cls, *inputs: Tensor | None, **params) -> Tensor:
        """Run the op on `inputs` (Tensors, or None for an absent optional input)."""
        fn = cls()
        arrays = [None if t is None else t.data for t in inputs]
        record = is_grad_enabled() and any(t is not None and t.requires_grad for t in inputs)
        if record:
            fn.needs_input_grad = tuple(t is not None and t.requires_grad for t in inputs)
        out = fn.forward(*arrays, **params)
        if not record:
            return Tensor._make(out)
        fn.parents = inputs
        return Tensor._make(out, requires_grad=True, grad_fn=fn)

    def release(self) -> None:
        """Drop the saved arrays and the links to the inputs: the graph below is freed."""
        self.__dict__.clear()
        self.parents = None
        self.released = True

    def __repr__(self) -> str:
        return f"<{type(self).__name__}Backward>"
