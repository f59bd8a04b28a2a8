"""The basic layers: Linear, Conv1D (GPT-2's linear), Embedding, LayerNorm, Dropout, activations.

Shapes: `*` any leading dimensions (usually B, T), `in` / `out` features, C channels.
Each layer names its parameters as PyTorch does (`weight`, `bias`) and initialises them as
PyTorch does, from tinyllm's global generator (`tinyllm.manual_seed`); models re-initialise
with their own scheme.

>>> layer = Linear(4, 3)
>>> layer(tinyllm.randn(2, 5, 4)).shape
(2, 5, 3)
"""

from __future__ import annotations

import math

import numpy as np

from .. import functional as F
from .._checks import choice, positive_int
from ..autograd.dtype import get_default_dtype
from ..autograd.grad_mode import is_grad_enabled
from ..autograd.ops.elementwise import where
from ..autograd.ops.nn import linear_in_out
from ..autograd.tensor import Tensor
from . import init
from .module import Module, Parameter


class Linear(Module):
    """y = x @ weight^T + bias, weight (out, in) as in PyTorch's `nn.Linear`.

    x (*, in) -> y (*, out). Initialised as PyTorch: U(-1/sqrt(in), 1/sqrt(in)).
    """

    def __init__(self, in_features: int, out_features: int, bias: bool = True):
        super().__init__()
        self.in_features = positive_int("in_features", in_features, where="Linear")
        self.out_features = positive_int("out_features", out_features, where="Linear")
        self.weight = Parameter(init.empty(out_features, in_features))
        self.bias = Parameter(init.empty(out_features)) if bias else None
        init.kaiming_uniform_(self.weight, a=math.sqrt(5))
        if self.bias is not None:
            bound = 1 / math.sqrt(in_features)
            init.uniform_(self.bias, -bound, bound)

    def forward(self, x: Tensor) -> Tensor:
        return F.linear(x, self.weight, self.bias)                     # (*, out)

    def extra_repr(self) -> str:
        return (f"in_features={self.in_features}, out_features={self.out_features}, "
                f"bias={self.bias is not None}")


class Conv1D(Module):
    """y = x @ weight + bias with weight (in, out): Hugging Face GPT-2's "Conv1D".

    Despite its name it is a linear layer; only the weight's layout differs from `Linear`
    (transposed). GPT-2 checkpoints store c_attn, c_proj and c_fc this way, so keeping the
    layout makes loading a straight copy. Note the argument order (in, out) is `Linear`'s;
    Hugging Face's `Conv1D(nf, nx)` takes (out, in). Initialised N(0, 0.02^2) as GPT-2.

    x (*, in) -> y (*, out).
    """

    def __init__(self, in_features: int, out_features: int, bias: bool = True):
        super().__init__()
        self.in_features = positive_int("in_features", in_features, where="Conv1D")
        self.out_features = positive_int("out_features", out_features, where="Conv1D")
        self.weight = Parameter(init.empty(in_features, out_features))
        self.bias = Parameter(init.empty(out_features)) if bias else None
        init.normal_(self.weight, std=0.02)

    def forward(self, x: Tensor) -> Tensor:
        # F.linear of weight.T, with the transpose inside the op: x is multiplied by the
        # original contiguous array, and the gradient comes back (in, out).
        return linear_in_out(x, self.weight, self.bias)                # (*, out)

    def extra_repr(self) -> str:
        return f"in_features={self.in_features}, out_features={self.out_features}"


class Embedding(Module):
    """A lookup table: row i of `weight` (num_embeddings, embedding_dim) for each index i.

    idx `(*)` integer -> `(*, C)`. Initialised N(0, 1) as PyTorch. With `padding_idx`, that row
    starts at zero and receives no gradient (BERT's padding token), as in PyTorch.
    """

    def __init__(self, num_embeddings: int, embedding_dim: int, padding_idx: int | None = None):
        super().__init__()
        self.num_embeddings = positive_int("num_embeddings", num_embeddings, where="Embedding")
        self.embedding_dim = positive_int("embedding_dim", embedding_dim, where="Embedding")
        if padding_idx is not None:
            if not -num_embeddings <= padding_idx < num_embeddings:
                raise ValueError(f"Embedding: padding_idx {padding_idx} is outside the table "
                                 f"(accepted: 0..{num_embeddings - 1})")
            padding_idx %= num_embeddings
        self.padding_idx = padding_idx
        self.weight = Parameter(init.empty(num_embeddings, embedding_dim))
        init.normal_(self.weight)
        if padding_idx is not None:
            self.weight.data[padding_idx] = 0

    def forward(self, idx) -> Tensor:
        out = F.embedding(idx, self.weight)                            # (*, C)
        if self.padding_idx is not None and self.weight.requires_grad and is_grad_enabled():
            ids = idx.data if isinstance(idx, Tensor) else np.asarray(idx)
            pad = (ids == self.padding_idx)[..., None]                 # (*, 1)
            if pad.any():
                # The padding row's lookups come from a detached copy: no gradient reaches it.
                out = where(pad, out.detach(), out)
        return out

    def extra_repr(self) -> str:
        pad = "" if self.padding_idx is None else f", padding_idx={self.padding_idx}"
        return f"{self.num_embeddings}, {self.embedding_dim}{pad}"


class LayerNorm(Module):
    """Normalise the last dims to zero mean and unit variance, then scale and shift.

    y = (x - mean) / sqrt(var + eps) * weight + bias; weight starts at 1, bias at 0.
    """

    def __init__(self, normalized_shape, eps: float = 1e-5, elementwise_affine: bool = True,
                 bias: bool = True):
        super().__init__()
        shape = (normalized_shape,) if isinstance(normalized_shape, int) else tuple(
            normalized_shape)
        for n in shape:
            positive_int("normalized_shape", n, where="LayerNorm")
        if not eps > 0:
            raise ValueError(f"LayerNorm: eps must be positive, got {eps}")
        self.normalized_shape, self.eps = shape, float(eps)
        self.weight = Parameter(np.ones(shape, get_default_dtype())) if elementwise_affine \
            else None
        self.bias = Parameter(init.empty(*shape)) if elementwise_affine and bias else None

    def forward(self, x: Tensor) -> Tensor:
        return F.layer_norm(x, self.normalized_shape, self.weight, self.bias, self.eps)

    def extra_repr(self) -> str:
        return f"{self.normalized_shape}, eps={self.eps}"


class Dropout(Module):
    """Zero each element with probability p while training (scaling the rest by 1/(1-p))."""

    def __init__(self, p: float = 0.5):
        super().__init__()
        if not 0.0 <= p <= 1.0:
            raise ValueError(f"Dropout: p must be in [0, 1], got {p}")
        self.p = float(p)

    def forward(self, x: Tensor) -> Tensor:
        return F.dropout(x, self.p, self.training)

    def extra_repr(self) -> str:
        return f"p={self.p}"


# Activation names, as Hugging Face configs spell them, mapped to tinyllm functions.
ACTIVATIONS = {
    "gelu": lambda x: F.gelu(x),                                       # exact, via erf (BERT)
    "gelu_new": lambda x: F.gelu(x, approximate="tanh"),               # GPT-2's tanh form
    "gelu_pytorch_tanh": lambda x: F.gelu(x, approximate="tanh"),
    "gelu_fast": lambda x: F.gelu(x, approximate="tanh"),              # same formula, refactored
    "gelu_tanh": lambda x: F.gelu(x, approximate="tanh"),
    "relu": F.relu,
    # x * sigmoid(x) (Ramachandran et al.'s swish, PyTorch's SiLU): Marian's activation.
    # Composed from two ops, so its gradient is theirs: sigmoid(x) (1 + x (1 - sigmoid(x))).
    "silu": lambda x: x * F.sigmoid(x),
    "swish": lambda x: x * F.sigmoid(x),
}


def get_activation(name: str):
    """The activation function named `name` (see `ACTIVATIONS`)."""
    choice("name", name, tuple(ACTIVATIONS), where="activation")
    return ACTIVATIONS[name]


class GELU(Module):
    """GELU(x) = x * Phi(x); approximate='tanh' is GPT-2's form."""

    def __init__(self, approximate: str = "none"):
        super().__init__()
        choice("approximate", approximate, ("none", "tanh"), where="GELU")
        self.approximate = approximate

    def forward(self, x: Tensor) -> Tensor:
        return F.gelu(x, approximate=self.approximate)


class ReLU(Module):
    def forward(self, x: Tensor) -> Tensor:
        return F.relu(x)
