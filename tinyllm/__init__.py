"""tinyllm: a small, readable language-model library on NumPy.

>>> import tinyllm
>>> x = tinyllm.tensor([1.0, 2.0, 3.0], requires_grad=True)
>>> (x * x).sum().backward()
>>> x.grad
array([2., 4., 6.], dtype=float32)
"""

from . import functional, nn, threads
from ._memory import keep_freed_memory
from ._version import __version__
from .autograd import (
    Function,
    Tensor,
    default_dtype,
    enable_grad,
    get_default_dtype,
    is_grad_enabled,
    manual_seed,
    no_grad,
    set_default_dtype,
)
from .autograd.dtype import bool_, float32, float64, int64
from .autograd.ops.elementwise import abs, exp, log, masked_fill, sigmoid, sqrt, tanh, where
from .autograd.ops.matmul import matmul
from .autograd.ops.reduce import max, mean, sum, var
from .autograd.ops.shape import (
    cat,
    chunk,
    flatten,
    permute,
    reshape,
    split,
    squeeze,
    stack,
    transpose,
    unsqueeze,
)
from .creation import arange, full, ones, ones_like, rand, randn, tensor, zeros, zeros_like
from .threads import get_num_threads, set_num_threads

# Reuse freed memory from step to step (glibc only; TINYLLM_KEEP_FREED_MEMORY=0 turns it off).
KEEPS_FREED_MEMORY = keep_freed_memory()

__all__ = [
    "Function", "Tensor", "__version__", "abs", "arange", "bool_", "cat", "chunk",
    "default_dtype", "enable_grad", "exp", "flatten", "float32", "float64", "full",
    "functional", "get_default_dtype", "get_num_threads", "int64", "is_grad_enabled", "log",
    "manual_seed",
    "masked_fill",
    "matmul", "max", "mean", "nn", "no_grad", "ones", "ones_like", "permute", "rand", "randn",
    "reshape", "set_default_dtype", "set_num_threads", "sigmoid", "split", "sqrt", "squeeze",
    "stack", "sum",
    "tanh", "tensor", "threads", "transpose", "unsqueeze", "var", "where", "zeros", "zeros_like",
]
