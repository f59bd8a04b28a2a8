"""`Tensor`: a NumPy array that remembers how it was computed, and the backward walk.

A Tensor wraps one `np.ndarray` (`.data`). When it comes out of an op whose inputs need
gradients, it keeps that op (`.grad_fn`), and `backward()` walks the graph from it:

>>> x = tensor([1.0, 2.0], requires_grad=True)
>>> y = (x * x).sum()        # y = x0^2 + x1^2
>>> y.backward()
>>> x.grad                    # dy/dx = 2x
array([2., 4.], dtype=float32)

Gradients of leaves accumulate across calls (call `zero_grad` or set `.grad = None`), exactly
as in PyTorch; the graph is freed after `backward` unless `retain_graph=True`.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np

from .dtype import get_default_dtype
from .grad_mode import no_grad

if TYPE_CHECKING:
    from .function import Function


def _to_array(data, dtype=None) -> np.ndarray:
    """NumPy array for `data` following PyTorch's dtype rules for `torch.tensor`."""
    if isinstance(data, Tensor):
        data = data.data
    if dtype is not None:
        return np.array(data, dtype=np.dtype(dtype))
    arr = np.array(data)
    if arr.dtype.kind == "f" and not isinstance(data, np.ndarray | np.floating):
        return arr.astype(get_default_dtype())  # Python floats take the default dtype
    if arr.dtype.kind in "iu":
        return arr.astype(np.int64, copy=False)
    if arr.dtype.kind not in "fb":
        raise TypeError(
            f"tensor: cannot make a tensor from data of dtype {arr.dtype}; "
            "accepted: numbers, booleans, nested lists of them, or NumPy arrays")
    return arr


class Tensor:
    """An n-dimensional array with automatic differentiation."""

    __array_priority__ = 1000  # so `ndarray * Tensor` calls Tensor.__rmul__

    def __init__(self, data, requires_grad: bool = False, dtype=None):
        self.data = _to_array(data, dtype)
        self.grad: np.ndarray | None = None
        self.grad_fn: Function | None = None
        self._retains_grad = False
        self.requires_grad = False
        if requires_grad:
            self.requires_grad_(True)

    @classmethod
    def _make(cls, data: np.ndarray, requires_grad: bool = False, grad_fn=None) -> Tensor:
        """Wrap an op's output without copying or converting it (the fast path)."""
        t = cls.__new__(cls)
        t.data = data if isinstance(data, np.ndarray) else np.asarray(data)
        t.grad = None
        t.grad_fn = grad_fn
        t._retains_grad = False
        t.requires_grad = requires_grad
        return t

    # ----------------------------------------------------------------- properties
    @property
    def shape(self) -> tuple[int, ...]:
        return self.data.shape

    @property
    def dtype(self) -> np.dtype:
        return self.data.dtype

    @property
    def ndim(self) -> int:
        return self.data.ndim

    @property
    def is_leaf(self) -> bool:
        """True for tensors made by the user (not by an op that recorded a graph)."""
        return self.grad_fn is None

    def size(self, dim: int | None = None):
        return self.data.shape if dim is None else self.data.shape[dim]

    def dim(self) -> int:
        return self.data.ndim

    def numel(self) -> int:
        return int(self.data.size)

    def __len__(self) -> int:
        return len(self.data)

    def item(self):
        """The value of a one-element tensor as a Python number."""
        if self.data.size != 1:
            raise ValueError(f"item: only one-element tensors convert to a number; "
                             f"this one has shape {self.shape}")
        return self.data.item()

    def numpy(self) -> np.ndarray:
        """The underlying array (shared, not copied), like `torch.Tensor.numpy`."""
        if self.requires_grad:
            raise RuntimeError("numpy: cannot call numpy() on a tensor that requires grad; "
                               "use tensor.detach().numpy()")
        return self.data

    def tolist(self):
        return self.data.tolist()

    def detach(self) -> Tensor:
        """The same data, cut from the graph."""
        return Tensor._make(self.data)

    def requires_grad_(self, requires_grad: bool = True) -> Tensor:
        if requires_grad and self.data.dtype.kind != "f":
            raise TypeError(f"requires_grad: only floating tensors can require gradients, "
                            f"this one is {self.dtype}")
        if not requires_grad and not self.is_leaf:
            raise RuntimeError("requires_grad_(False) is only allowed on leaf tensors; "
                               "use detach()")
        self.requires_grad = bool(requires_grad)
        return self

    def retain_grad(self) -> None:
        """Keep `.grad` for this non-leaf tensor after `backward` (leaves always keep it)."""
        if not self.requires_grad:
            raise RuntimeError("retain_grad: this tensor does not require grad")
        self._retains_grad = True

    def zero_(self) -> Tensor:
        self.data[...] = 0
        return self

    def __repr__(self) -> str:
        body = np.array2string(self.data, separator=", ", prefix="tensor(")
        extra = ""
        if self.dtype != get_default_dtype() and self.dtype != np.int64:
            extra += f", dtype={self.dtype}"
        if self.grad_fn is not None:
            extra += f", grad_fn={self.grad_fn!r}"
        elif self.requires_grad:
            extra += ", requires_grad=True"
        return f"tensor({body}{extra})"

    def __hash__(self) -> int:
        return id(self)

    def __bool__(self) -> bool:
        if self.data.size != 1:
            raise ValueError(f"the truth value of a tensor of shape {self.shape} is ambiguous")
        return bool(self.data)

    # ----------------------------------------------------------------- operators
    def __add__(self, other):
        return ops.elementwise.add(self, other)

    def __radd__(self, other):
        return ops.elementwise.add(other, self)

    def __sub__(self, other):
        return ops.elementwise.sub(self, other)

    def __rsub__(self, other):
        return ops.elementwise.sub(other, self)

    def __mul__(self, other):
        return ops.elementwise.mul(self, other)

    def __rmul__(self, other):
        return ops.elementwise.mul(other, self)

    def __truediv__(self, other):
        return ops.elementwise.div(self, other)

    def __rtruediv__(self, other):
        return ops.elementwise.div(other, self)

    def __pow__(self, exponent):
        return ops.elementwise.pow(self, exponent)

    def __rpow__(self, base):
        return ops.elementwise.pow(base, self)

    def __neg__(self):
        return ops.elementwise.neg(self)

    def __matmul__(self, other):
        return ops.matmul.matmul(self, other)

    def __rmatmul__(self, other):
        return ops.matmul.matmul(other, self)

    def __getitem__(self, index):
        return ops.shape.getitem(self, index)

    # Comparisons give boolean tensors outside the graph (they have no derivative).
    def _compare(self, other, fn):
        other = other.data if isinstance(other, Tensor) else other
        return Tensor._make(fn(self.data, other))

    def __lt__(self, other):
        return self._compare(other, np.less)

    def __le__(self, other):
        return self._compare(other, np.less_equal)

    def __gt__(self, other):
        return self._compare(other, np.greater)

    def __ge__(self, other):
        return self._compare(other, np.greater_equal)

    def eq(self, other):
        return self._compare(other, np.equal)

    def ne(self, other):
        return self._compare(other, np.not_equal)

    # ----------------------------------------------------------------- methods
    def exp(self):
        return ops.elementwise.exp(self)

    def log(self):
        return ops.elementwise.log(self)

    def sqrt(self):
        return ops.elementwise.sqrt(self)

    def tanh(self):
        return ops.elementwise.tanh(self)

    def sigmoid(self):
        return ops.elementwise.sigmoid(self)

    def relu(self):
        return ops.elementwise.relu(self)

    def abs(self):
        return ops.elementwise.abs(self)

    def pow(self, exponent):
        return ops.elementwise.pow(self, exponent)

    def matmul(self, other):
        return ops.matmul.matmul(self, other)

    def sum(self, dim=None, keepdim=False):
        return ops.reduce.sum(self, dim, keepdim)

    def mean(self, dim=None, keepdim=False):
        return ops.reduce.mean(self, dim, keepdim)

    def var(self, dim=None, *, correction=1, keepdim=False):
        return ops.reduce.var(self, dim, correction=correction, keepdim=keepdim)

    def max(self, dim=None, keepdim=False):
        return ops.reduce.max(self, dim, keepdim)

    def argmax(self, dim=None, keepdim=False):
        if dim is None:
            return Tensor._make(np.asarray(np.argmax(self.data), dtype=np.int64))
        return Tensor._make(np.argmax(self.data, axis=dim, keepdims=keepdim).astype(np.int64))

    def softmax(self, dim):
        return ops.nn.softmax(self, dim)

    def log_softmax(self, dim):
        return ops.nn.log_softmax(self, dim)

    def reshape(self, *shape):
        return ops.shape.reshape(self, *shape)

    def view(self, *shape):
        return ops.shape.reshape(self, *shape)

    def flatten(self, start_dim=0, end_dim=-1):
        return ops.shape.flatten(self, start_dim, end_dim)

    def transpose(self, dim0, dim1):
        return ops.shape.transpose(self, dim0, dim1)

    def permute(self, *dims):
        return ops.shape.permute(self, *dims)

    def unsqueeze(self, dim):
        return ops.shape.unsqueeze(self, dim)

    def squeeze(self, dim=None):
        return ops.shape.squeeze(self, dim)

    def expand(self, *shape):
        return ops.shape.expand(self, *shape)

    def split(self, split_size_or_sections, dim=0):
        return ops.shape.split(self, split_size_or_sections, dim)

    def chunk(self, chunks, dim=0):
        return ops.shape.chunk(self, chunks, dim)

    def masked_fill(self, mask, value):
        return ops.elementwise.masked_fill(self, mask, value)

    def contiguous(self):
        return self

    @property
    def T(self):  # noqa: N802 - PyTorch's name
        return ops.shape.permute(self, *reversed(range(self.ndim)))

    def to(self, dtype):
        return ops.elementwise.to_dtype(self, dtype)

    def float(self):
        return ops.elementwise.to_dtype(self, np.float32)

    def double(self):
        return ops.elementwise.to_dtype(self, np.float64)

    def long(self):
        return ops.elementwise.to_dtype(self, np.int64)

    # ----------------------------------------------------------------- backward
    def backward(self, gradient=None, retain_graph: bool = False) -> None:
        """Accumulate d(self)/d(leaf) into every leaf's `.grad`.

        `gradient` is d(loss)/d(self); it may be omitted only when `self` has one element.
        """
        if not self.requires_grad:
            raise RuntimeError("backward: this tensor does not require grad and has no grad_fn; "
                               "did you create the inputs with requires_grad=True?")
        if gradient is None:
            if self.data.size != 1:
                raise RuntimeError(
                    f"backward: grad can be implicitly created only for scalar outputs, but "
                    f"this tensor has shape {self.shape}; pass gradient= of that shape")
            grad = np.ones_like(self.data)
        else:
            grad = _to_array(gradient, self.dtype)
            if grad.shape != self.shape:
                raise ValueError(f"backward: gradient has shape {grad.shape}, "
                                 f"but the tensor has shape {self.shape}")
        run_backward(self, grad, retain_graph)


def _topological_order(root: Tensor) -> list[Tensor]:
    """Tensors of the graph under `root`, each before the inputs it was computed from.

    Iterative depth-first search, so a 10,000-op chain cannot hit Python's recursion limit.
    """
    post_order: list[Tensor] = []
    seen: set[int] = set()
    stack: list[tuple[Tensor, bool]] = [(root, False)]
    while stack:
        node, inputs_done = stack.pop()
        if inputs_done:
            post_order.append(node)
            continue
        if id(node) in seen:
            continue
        seen.add(id(node))
        stack.append((node, True))
        fn = node.grad_fn
        if fn is not None and fn.parents is not None:
            for parent in fn.parents:
                if parent is not None and parent.requires_grad and id(parent) not in seen:
                    stack.append((parent, False))
    post_order.reverse()
    return post_order


_FREED = ("backward: trying to backward through the graph a second time (its saved values "
          "were freed by the first backward). Call .backward(retain_graph=True) the first "
          "time if you need to backward twice.")


def run_backward(root: Tensor, grad: np.ndarray, retain_graph: bool = False) -> None:
    """The chain rule over the graph: push d(root)/d(node) from `root` down to the leaves."""
    pending: dict[int, np.ndarray] = {id(root): grad}
    with no_grad():
        for node in _topological_order(root):
            g = pending.pop(id(node), None)
            if g is None:
                continue
            fn = node.grad_fn
            if fn is None or node._retains_grad:
                _accumulate(node, g)
            if fn is None:
                continue
            if fn.released:
                raise RuntimeError(_FREED)
            in_grads = fn.backward(g)
            if not isinstance(in_grads, tuple):
                in_grads = (in_grads,)
            for parent, needed, pg in zip(fn.parents, fn.needs_input_grad, in_grads):
                if not needed or pg is None:
                    continue
                if pg.shape != parent.shape:
                    raise RuntimeError(f"internal error: {fn!r} returned a gradient of shape "
                                       f"{pg.shape} for an input of shape {parent.shape}")
                key = id(parent)
                pending[key] = pg if key not in pending else pending[key] + pg
            if not retain_graph:
                fn.release()


def _accumulate(t: Tensor, g: np.ndarray) -> None:
    g = g.astype(t.dtype, copy=False)
    t.grad = np.array(g, copy=True) if t.grad is None else t.grad + g


# The ops define Functions on top of `Tensor`, so they are imported once it exists.
from . import ops  # noqa: E402
