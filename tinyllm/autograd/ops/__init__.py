"""The ops: each a `Function` subclass plus a PyTorch-named function that applies it."""

from . import elementwise, matmul, nn, reduce, shape

__all__ = ["elementwise", "matmul", "nn", "reduce", "shape"]
