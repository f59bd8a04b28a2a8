"""`LSTM`: a multi-layer long short-term memory network, as `torch.nn.LSTM`.

Shapes: B batch, T time steps, I input features (`input_size`), H hidden size, L layers.

Parameters carry PyTorch's names and layout, so a `torch.nn.LSTM` state dict loads as it is:
`weight_ih_l{k}` (4H, I) for layer 0 and (4H, H) above it, `weight_hh_l{k}` (4H, H),
`bias_ih_l{k}` and `bias_hh_l{k}` (4H,), the gate rows stacked in the order i, f, g, o.
Every one starts U(-1/sqrt(H), 1/sqrt(H)), as in PyTorch. Each layer runs as one fused op
(`tinyllm.autograd.ops.rnn`, whose docstring has the equations and the backward pass).

>>> lstm = LSTM(input_size=8, hidden_size=16, num_layers=2)
>>> output, (h_n, c_n) = lstm(tinyllm.randn(4, 10, 8))
>>> output.shape, h_n.shape, c_n.shape
((4, 10, 16), (2, 4, 16), (2, 4, 16))

As in PyTorch, `h_n` and `c_n` are (L, B, H) whatever `batch_first` says, an unbatched
input (T, I) gives (T, H) and (L, H), and `dropout` acts between layers, not after the last.
"""

from __future__ import annotations

import math

import numpy as np

from .. import functional as F
from .._checks import positive_int
from ..autograd.ops.rnn import lstm_layer
from ..autograd.ops.shape import stack
from ..autograd.tensor import Tensor
from . import init
from .module import Module, Parameter


class LSTM(Module):
    """`LSTM(input_size, hidden_size, num_layers=1, bias=True, batch_first=True, dropout=0.0)`.

    `forward(x, hx=None)` -> `(output, (h_n, c_n))`: x (B, T, I) (or (T, B, I) with
    batch_first=False), hx = (h_0, c_0) each (L, B, H) or None for zeros; output (B, T, H)
    is the last layer's hidden state at every step.

    Note `batch_first=True` is the default here (PyTorch's is False): every tinyllm model
    holds batches as (B, T).
    """

    def __init__(self, input_size: int, hidden_size: int, num_layers: int = 1, bias: bool = True,
                 batch_first: bool = True, dropout: float = 0.0):
        super().__init__()
        self.input_size = positive_int("input_size", input_size, where="LSTM")
        self.hidden_size = h = positive_int("hidden_size", hidden_size, where="LSTM")
        self.num_layers = positive_int("num_layers", num_layers, where="LSTM")
        if not isinstance(dropout, int | float) or not 0.0 <= dropout < 1.0:
            raise ValueError(f"LSTM: dropout must be a probability in [0, 1), got {dropout!r}")
        self.bias, self.batch_first, self.dropout = bool(bias), bool(batch_first), float(dropout)
        for k in range(self.num_layers):
            n_in = input_size if k == 0 else h
            setattr(self, f"weight_ih_l{k}", Parameter(init.empty(4 * h, n_in)))
            setattr(self, f"weight_hh_l{k}", Parameter(init.empty(4 * h, h)))
            if self.bias:
                setattr(self, f"bias_ih_l{k}", Parameter(init.empty(4 * h)))
                setattr(self, f"bias_hh_l{k}", Parameter(init.empty(4 * h)))
        self.reset_parameters()

    def reset_parameters(self, generator: np.random.Generator | None = None) -> None:
        """Every parameter U(-1/sqrt(H), 1/sqrt(H)), as PyTorch initialises them."""
        bound = 1 / math.sqrt(self.hidden_size)
        for p in self.parameters():
            init.uniform_(p, -bound, bound, generator=generator)

    def layer_params(self, k: int) -> tuple[Tensor, Tensor, Tensor | None, Tensor | None]:
        """(weight_ih, weight_hh, bias_ih, bias_hh) of layer `k` (biases None if bias=False)."""
        return tuple(getattr(self, f"{name}_l{k}", None)
                     for name in ("weight_ih", "weight_hh", "bias_ih", "bias_hh"))

    def forward(self, x: Tensor, hx: tuple[Tensor, Tensor] | None = None):
        """(output, (h_n, c_n)) for input `x`; see the class docstring for the shapes."""
        unbatched = x.ndim == 2
        if x.ndim not in (2, 3):
            raise ValueError(f"LSTM: input must be (B, T, {self.input_size}) or unbatched "
                             f"(T, {self.input_size}); got shape {x.shape}")
        if unbatched:
            x = x.unsqueeze(0 if self.batch_first else 1)
        if x.shape[-1] != self.input_size:
            raise ValueError(f"LSTM: input has {x.shape[-1]} features (shape {x.shape}), "
                             f"expected input_size={self.input_size}")
        n_b = x.shape[0 if self.batch_first else 1]
        h0, c0 = self._initial_state(hx, n_b, unbatched)
        out, h_n, c_n = x, [], []
        for k in range(self.num_layers):
            if k > 0 and self.dropout:
                out = F.dropout(out, self.dropout, self.training)
            state = None if h0 is None else (h0[k], c0[k])             # (B, H) each
            states = lstm_layer(out, state, *self.layer_params(k),
                                batch_first=self.batch_first)          # (2, B, T, H)
            out = states[0]                                            # (B, T, H)
            last = (slice(None), -1) if self.batch_first else (-1,)
            h_n.append(states[(0, *last)])                             # (B, H)
            c_n.append(states[(1, *last)])                             # (B, H)
        h_n, c_n = stack(h_n), stack(c_n)                              # (L, B, H)
        if unbatched:
            out = out.squeeze(0 if self.batch_first else 1)            # (T, H)
            h_n, c_n = h_n.squeeze(1), c_n.squeeze(1)                  # (L, H)
        return out, (h_n, c_n)

    def _initial_state(self, hx, n_b: int, unbatched: bool):
        if hx is None:
            return None, None
        if not isinstance(hx, tuple | list) or len(hx) != 2:
            raise TypeError("LSTM: hx must be a tuple (h_0, c_0) of tensors, or None")
        expected = (self.num_layers, self.hidden_size) if unbatched else (
            self.num_layers, n_b, self.hidden_size)
        for name, t in zip(("h_0", "c_0"), hx):
            if tuple(t.shape) != expected:
                raise ValueError(f"LSTM: {name} has shape {tuple(t.shape)}, expected "
                                 f"{expected} (num_layers, batch, hidden_size)")
        h0, c0 = (t if isinstance(t, Tensor) else Tensor(t) for t in hx)
        if unbatched:
            h0, c0 = h0.unsqueeze(1), c0.unsqueeze(1)                  # (L, 1, H)
        return h0, c0

    def extra_repr(self) -> str:
        return (f"{self.input_size}, {self.hidden_size}, num_layers={self.num_layers}, "
                f"bias={self.bias}, batch_first={self.batch_first}, dropout={self.dropout}")
