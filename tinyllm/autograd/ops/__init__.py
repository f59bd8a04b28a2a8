"""The ops: each a `Function` subclass plus a PyTorch-named function that applies it."""

from . import attention, elementwise, matmul, nn, reduce, rnn, shape

__all__ = ["attention", "elementwise", "matmul", "nn", "reduce", "rnn", "shape"]
