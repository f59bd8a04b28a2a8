"""PyTorch-named functions, as in `torch.nn.functional` (import it as `F`).

>>> import tinyllm.functional as F
>>> F.softmax(tinyllm.tensor([[1.0, 2.0, 3.0]]), dim=-1)
"""

from .autograd.ops.attention import scaled_dot_product_attention
from .autograd.ops.elementwise import relu, sigmoid, tanh
from .autograd.ops.nn import (
    cross_entropy,
    dropout,
    embedding,
    gelu,
    kl_div,
    layer_norm,
    linear,
    linear_relu,
    log_softmax,
    quantized_linear,
    softmax,
)

__all__ = [
    "cross_entropy", "dropout", "embedding", "gelu", "kl_div", "layer_norm", "linear",
    "linear_relu", "log_softmax",
    "quantized_linear", "relu", "scaled_dot_product_attention", "sigmoid", "softmax", "tanh",
]
