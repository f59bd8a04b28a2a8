"""Shape ops: they move or select elements, so each backward moves the gradient back.

reshape/view, transpose, permute, unsqueeze, squeeze, expand, indexing, cat, stack, split, chunk.
"""

from __future__ import annotations

import numpy as np

from ..function import Function
from ..tensor import Tensor
from ._util import normalize_dim, unbroadcast


class Reshape(Function):
    def forward(self, x, shape):
        self.in_shape = x.shape
        try:
            return np.reshape(x, shape)
        except ValueError:
            raise ValueError(f"reshape: cannot reshape a tensor of shape {x.shape} "
                             f"({x.size} elements) into shape {tuple(shape)}") from None

    def backward(self, dout):
        return np.reshape(dout, self.in_shape)


class Permute(Function):
    def forward(self, x, dims):
        # dims is a short tuple: its inverse in plain Python (np.argsort would first convert
        # it to an array, a few microseconds per call in a generation step).
        self.inverse = tuple(sorted(range(len(dims)), key=dims.__getitem__))
        return x.transpose(dims)

    def backward(self, dout):
        return np.transpose(dout, self.inverse)


class Expand(Function):
    def forward(self, x, shape):
        self.in_shape = x.shape
        return np.broadcast_to(x, shape)

    def backward(self, dout):
        return unbroadcast(dout, self.in_shape)


class GetItem(Function):
    """x[index] for slices, integers, None, Ellipsis and integer or boolean arrays."""

    def forward(self, x, index):
        self.in_shape, self.index = x.shape, index
        try:
            return x[index]
        except IndexError as exc:
            raise IndexError(f"index: {exc} (tensor shape {x.shape})") from None

    def backward(self, dout):
        dx = np.zeros(self.in_shape, dtype=dout.dtype)
        if _is_basic(self.index):
            dx[self.index] = dout  # basic indexing selects each element at most once
        else:
            np.add.at(dx, self.index, dout)  # integer arrays may repeat an element
        return dx


def _is_basic(index) -> bool:
    parts = index if isinstance(index, tuple) else (index,)
    return all(isinstance(p, int | np.integer | slice) or p is None or p is Ellipsis
               for p in parts)


class Cat(Function):
    def forward(self, *arrays, axis):
        self.axis = axis
        self.bounds = np.cumsum([a.shape[axis] for a in arrays])[:-1]
        return np.concatenate(arrays, axis=axis)

    def backward(self, dout):
        return tuple(np.split(dout, self.bounds, axis=self.axis))


class Stack(Function):
    def forward(self, *arrays, axis):
        self.axis = axis
        return np.stack(arrays, axis=axis)

    def backward(self, dout):
        return tuple(np.moveaxis(dout, self.axis, 0))


def reshape(x: Tensor, *shape) -> Tensor:
    shape = tuple(shape[0]) if len(shape) == 1 and not isinstance(shape[0], int) else shape
    return Reshape.apply(x, shape=shape)


view = reshape


def flatten(x: Tensor, start_dim: int = 0, end_dim: int = -1) -> Tensor:
    if x.ndim == 0:
        return reshape(x, 1)
    (s,), (e,) = normalize_dim("flatten", start_dim, x.ndim), normalize_dim("flatten", end_dim,
                                                                             x.ndim)
    return reshape(x, x.shape[:s] + (-1,) + x.shape[e + 1:])


def permute(x: Tensor, *dims) -> Tensor:
    dims = tuple(dims[0]) if len(dims) == 1 and not isinstance(dims[0], int) else dims
    if len(dims) != x.ndim:
        raise ValueError(f"permute: got {len(dims)} dims {dims} for a tensor with {x.ndim} "
                         "dimensions")
    axes = tuple(d % x.ndim for d in dims)
    if sorted(axes) != list(range(x.ndim)):
        raise ValueError(f"permute: dims {dims} are not a permutation of 0..{x.ndim - 1}")
    return Permute.apply(x, dims=axes)


def transpose(x: Tensor, dim0: int, dim1: int) -> Tensor:
    (a,), (b,) = normalize_dim("transpose", dim0, x.ndim), normalize_dim("transpose", dim1,
                                                                          x.ndim)
    dims = list(range(x.ndim))
    dims[a], dims[b] = dims[b], dims[a]
    return Permute.apply(x, dims=tuple(dims))


def unsqueeze(x: Tensor, dim: int) -> Tensor:
    (axis,) = normalize_dim("unsqueeze", dim, x.ndim + 1)
    return Reshape.apply(x, shape=x.shape[:axis] + (1,) + x.shape[axis:])


def squeeze(x: Tensor, dim=None) -> Tensor:
    axes = normalize_dim("squeeze", dim, x.ndim)
    if axes is None:
        axes = tuple(i for i, n in enumerate(x.shape) if n == 1)
    shape = tuple(n for i, n in enumerate(x.shape) if not (i in axes and n == 1))
    return Reshape.apply(x, shape=shape)


def expand(x: Tensor, *shape) -> Tensor:
    shape = tuple(shape[0]) if len(shape) == 1 and not isinstance(shape[0], int) else shape
    lead = len(shape) - x.ndim
    full = tuple(x.shape[i - lead] if n == -1 else n for i, n in enumerate(shape))
    try:
        np.broadcast_shapes(x.shape, full)
    except ValueError:
        raise ValueError(f"expand: cannot expand shape {x.shape} to {shape}") from None
    return Expand.apply(x, shape=full)


def getitem(x: Tensor, index) -> Tensor:
    if isinstance(index, Tensor):
        index = index.data
    elif isinstance(index, tuple):
        index = tuple(i.data if isinstance(i, Tensor) else i for i in index)
    elif isinstance(index, list):
        index = np.asarray(index)
    return GetItem.apply(x, index=index)


def _check_same_shapes(op: str, tensors, axis: int | None) -> None:
    first = tensors[0].shape
    for t in tensors[1:]:
        a = [n for i, n in enumerate(first) if i != axis]
        b = [n for i, n in enumerate(t.shape) if i != axis]
        if len(t.shape) != len(first) or a != b:
            where = "" if axis is None else f" except in dim {axis}"
            raise ValueError(f"{op}: tensors must have the same shape{where}; "
                             f"got {first} and {t.shape}")


def cat(tensors, dim: int = 0) -> Tensor:
    tensors = list(tensors)
    if not tensors:
        raise ValueError("cat: expected a non-empty sequence of tensors")
    (axis,) = normalize_dim("cat", dim, tensors[0].ndim)
    _check_same_shapes("cat", tensors, axis)
    return Cat.apply(*tensors, axis=axis)


def stack(tensors, dim: int = 0) -> Tensor:
    tensors = list(tensors)
    if not tensors:
        raise ValueError("stack: expected a non-empty sequence of tensors")
    _check_same_shapes("stack", tensors, None)
    (axis,) = normalize_dim("stack", dim, tensors[0].ndim + 1)
    return Stack.apply(*tensors, axis=axis)


def split(x: Tensor, split_size_or_sections, dim: int = 0) -> tuple[Tensor, ...]:
    """Pieces of `split_size_or_sections` elements along `dim` (an int, or a list of sizes)."""
    (axis,) = normalize_dim("split", dim, x.ndim)
    n = x.shape[axis]
    if isinstance(split_size_or_sections, int | np.integer):
        size = int(split_size_or_sections)
        if size <= 0:
            raise ValueError(f"split: split size must be positive, got {size}")
        sizes = [min(size, n - s) for s in range(0, n, size)]
    else:
        sizes = [int(s) for s in split_size_or_sections]
        if sum(sizes) != n:
            raise ValueError(f"split: sizes {sizes} sum to {sum(sizes)}, but dim {dim} has "
                             f"{n} elements")
    pieces, start = [], 0
    for s in sizes:
        index = (slice(None),) * axis + (slice(start, start + s),)
        pieces.append(getitem(x, index))
        start += s
    return tuple(pieces)


def chunk(x: Tensor, chunks: int, dim: int = 0) -> tuple[Tensor, ...]:
    """`chunks` nearly equal pieces along `dim` (the last may be smaller), as torch.chunk."""
    if chunks <= 0:
        raise ValueError(f"chunk: chunks must be positive, got {chunks}")
    (axis,) = normalize_dim("chunk", dim, x.ndim)
    size = -(-x.shape[axis] // chunks)
    return split(x, max(size, 1), dim)
