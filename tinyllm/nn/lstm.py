"""`LSTM`: a multi-layer long short-term memory network, as `torch.nn.LSTM`.

Shapes: B batch, T time steps, I input features (`input_size`), H hidden size, L layers,
D directions (2 if `bidirectional`, else 1).

Parameters carry PyTorch's names and layout, so a `torch.nn.LSTM` state dict loads as it is:
`weight_ih_l{k}` (4H, I) for layer 0 and (4H, D H) above it, `weight_hh_l{k}` (4H, H),
`bias_ih_l{k}` and `bias_hh_l{k}` (4H,), the gate rows stacked in the order i, f, g, o; a
bidirectional LSTM adds the same four with the suffix `_reverse` for the direction that reads
the sequence backwards. Every one starts U(-1/sqrt(H), 1/sqrt(H)), as in PyTorch. Each layer
and direction runs as one fused op (`tinyllm.autograd.ops.rnn`, whose docstring has the
equations and the backward pass); the reverse direction is the same op on the time-reversed
input, its outputs reversed back.

Rows of different lengths (`forward(x, lengths=...)`) behave as PyTorch's
`pack_padded_sequence(x, lengths, enforce_sorted=False)`: a row of length n_b reads only its
first n_b steps, the reverse direction starts at step n_b - 1, the outputs past n_b are zero
and h_n, c_n are the states at the row's last real step, so a padded row gives exactly what
it gives alone.

>>> lstm = LSTM(input_size=8, hidden_size=16, num_layers=2)
>>> output, (h_n, c_n) = lstm(tinyllm.randn(4, 10, 8))
>>> output.shape, h_n.shape, c_n.shape
((4, 10, 16), (2, 4, 16), (2, 4, 16))

As in PyTorch, `h_n` and `c_n` are (D L, B, H) whatever `batch_first` says (layer k's
directions at rows D k .. D k + D - 1), the output is (B, T, D H) (both directions'
states concatenated), an unbatched input (T, I) gives (T, D H) and (D L, H), and `dropout`
acts between layers, not after the last.
"""

from __future__ import annotations

import math

import numpy as np

from .. import functional as F
from .._checks import positive_int
from ..autograd.ops.rnn import lstm_layer
from ..autograd.ops.shape import cat, stack
from ..autograd.tensor import Tensor
from . import init
from .module import Module, Parameter


class LSTM(Module):
    """`LSTM(input_size, hidden_size, num_layers=1, bias=True, batch_first=True, dropout=0.0,
    bidirectional=False)`.

    `forward(x, hx=None, lengths=None)` -> `(output, (h_n, c_n))`: x (B, T, I) (or (T, B, I)
    with batch_first=False), hx = (h_0, c_0) each (D L, B, H) or None for zeros, lengths (B,)
    each row's number of real steps (1..T) or None for all T; output (B, T, D H) is the last
    layer's hidden state at every step.

    Note `batch_first=True` is the default here (PyTorch's is False): every tinyllm model
    holds batches as (B, T).
    """

    def __init__(self, input_size: int, hidden_size: int, num_layers: int = 1, bias: bool = True,
                 batch_first: bool = True, dropout: float = 0.0, bidirectional: bool = False):
        super().__init__()
        self.input_size = positive_int("input_size", input_size, where="LSTM")
        self.hidden_size = h = positive_int("hidden_size", hidden_size, where="LSTM")
        self.num_layers = positive_int("num_layers", num_layers, where="LSTM")
        if not isinstance(dropout, int | float) or not 0.0 <= dropout < 1.0:
            raise ValueError(f"LSTM: dropout must be a probability in [0, 1), got {dropout!r}")
        self.bias, self.batch_first, self.dropout = bool(bias), bool(batch_first), float(dropout)
        self.bidirectional = bool(bidirectional)
        self.num_directions = 2 if self.bidirectional else 1
        for k in range(self.num_layers):
            n_in = input_size if k == 0 else self.num_directions * h
            for suffix in ("", "_reverse")[:self.num_directions]:
                setattr(self, f"weight_ih_l{k}{suffix}", Parameter(init.empty(4 * h, n_in)))
                setattr(self, f"weight_hh_l{k}{suffix}", Parameter(init.empty(4 * h, h)))
                if self.bias:
                    setattr(self, f"bias_ih_l{k}{suffix}", Parameter(init.empty(4 * h)))
                    setattr(self, f"bias_hh_l{k}{suffix}", Parameter(init.empty(4 * h)))
        self.reset_parameters()

    def reset_parameters(self, generator: np.random.Generator | None = None) -> None:
        """Every parameter U(-1/sqrt(H), 1/sqrt(H)), as PyTorch initialises them."""
        bound = 1 / math.sqrt(self.hidden_size)
        for p in self.parameters():
            init.uniform_(p, -bound, bound, generator=generator)

    def layer_params(self, k: int, reverse: bool = False
                     ) -> tuple[Tensor, Tensor, Tensor | None, Tensor | None]:
        """(weight_ih, weight_hh, bias_ih, bias_hh) of layer `k`'s forward direction, or of its
        reverse one (biases None if bias=False)."""
        suffix = "_reverse" if reverse else ""
        return tuple(getattr(self, f"{name}_l{k}{suffix}", None)
                     for name in ("weight_ih", "weight_hh", "bias_ih", "bias_hh"))

    def forward(self, x: Tensor, hx: tuple[Tensor, Tensor] | None = None, lengths=None):
        """(output, (h_n, c_n)) for input `x`; see the class docstring for the shapes."""
        unbatched = x.ndim == 2
        if x.ndim not in (2, 3):
            raise ValueError(f"LSTM: input must be (B, T, {self.input_size}) or unbatched "
                             f"(T, {self.input_size}); got shape {x.shape}")
        if unbatched:
            if lengths is not None:
                raise ValueError("LSTM: lengths needs a batched input (B, T, I); got an "
                                 f"unbatched one of shape {x.shape}")
            x = x.unsqueeze(0 if self.batch_first else 1)
        if x.shape[-1] != self.input_size:
            raise ValueError(f"LSTM: input has {x.shape[-1]} features (shape {x.shape}), "
                             f"expected input_size={self.input_size}")
        n_b, n_t = (x.shape[0], x.shape[1]) if self.batch_first else (x.shape[1], x.shape[0])
        lengths = self._check_lengths(lengths, n_b, n_t)
        h0, c0 = self._initial_state(hx, n_b, unbatched)
        last = self._last_step_index(lengths, n_b, n_t)
        reverse = self._reversal_index(lengths, n_b, n_t)
        keep = None if lengths is None else self._step_mask(lengths, n_t, x.dtype)
        out, h_n, c_n = x, [], []
        for k in range(self.num_layers):
            if k > 0 and self.dropout:
                out = F.dropout(out, self.dropout, self.training)
            outs = []
            for d in range(self.num_directions):
                j = k * self.num_directions + d
                state = None if h0 is None else (h0[j], c0[j])         # (B, H) each
                seq = out if d == 0 else out[reverse]                  # (B, T, I)
                states = lstm_layer(seq, state, *self.layer_params(k, reverse=d == 1),
                                    batch_first=self.batch_first)      # (2, B, T, H)
                h_n.append(states[(0, *last)])                         # (B, H)
                c_n.append(states[(1, *last)])                         # (B, H)
                # the reversal is its own inverse: it puts step t's state back at step t
                outs.append(states[0] if d == 0 else states[0][reverse])   # (B, T, H)
            out = outs[0] if len(outs) == 1 else cat(outs, dim=-1)     # (B, T, D H)
            if keep is not None:
                out = out * keep                                       # zero past each row
        h_n, c_n = stack(h_n), stack(c_n)                              # (D L, B, H)
        if unbatched:
            out = out.squeeze(0 if self.batch_first else 1)            # (T, D H)
            h_n, c_n = h_n.squeeze(1), c_n.squeeze(1)                  # (D L, H)
        return out, (h_n, c_n)

    def _check_lengths(self, lengths, n_b: int, n_t: int) -> np.ndarray | None:
        if lengths is None:
            return None
        arr = np.asarray(lengths.data if isinstance(lengths, Tensor) else lengths)
        if arr.dtype.kind not in "iu" or arr.shape != (n_b,):
            raise ValueError(f"LSTM: lengths must be {n_b} integers (one per row), got "
                             f"shape {arr.shape} and dtype {arr.dtype}")
        if arr.min() < 1 or arr.max() > n_t:
            bad = int(arr.min()) if arr.min() < 1 else int(arr.max())
            raise ValueError(f"LSTM: lengths holds {bad}; a row's length must be in "
                             f"1..{n_t} (the input's time steps)")
        return arr.astype(np.int64)

    def _last_step_index(self, lengths, n_b: int, n_t: int) -> tuple:
        """The index, after the state axis, of each row's state at its last real step."""
        if lengths is None:
            return (slice(None), -1) if self.batch_first else (-1,)
        rows = np.arange(n_b)
        return (rows, lengths - 1) if self.batch_first else (lengths - 1, rows)

    def _reversal_index(self, lengths, n_b: int, n_t: int) -> tuple:
        """The index that reverses each row's first n_b steps and leaves the padding after
        them where it is (so the reverse direction starts at the row's last real step)."""
        if lengths is None:
            return (slice(None), slice(None, None, -1)) if self.batch_first else (
                slice(None, None, -1),)
        t = np.arange(n_t)[None, :]                                    # (1, T)
        n = lengths[:, None]                                           # (B, 1)
        steps = np.where(t < n, n - 1 - t, t)                          # (B, T)
        rows = np.arange(n_b)[:, None]                                 # (B, 1)
        return (rows, steps) if self.batch_first else (steps.T, rows.T)

    def _step_mask(self, lengths, n_t: int, dtype) -> np.ndarray:
        keep = (np.arange(n_t)[None, :] < lengths[:, None]).astype(dtype)   # (B, T)
        return keep[:, :, None] if self.batch_first else keep.T[:, :, None]

    def _initial_state(self, hx, n_b: int, unbatched: bool):
        if hx is None:
            return None, None
        if not isinstance(hx, tuple | list) or len(hx) != 2:
            raise TypeError("LSTM: hx must be a tuple (h_0, c_0) of tensors, or None")
        n_states = self.num_directions * self.num_layers
        expected = (n_states, self.hidden_size) if unbatched else (
            n_states, n_b, self.hidden_size)
        what = "num_directions * num_layers" if self.bidirectional else "num_layers"
        for name, t in zip(("h_0", "c_0"), hx):
            if tuple(t.shape) != expected:
                raise ValueError(f"LSTM: {name} has shape {tuple(t.shape)}, expected "
                                 f"{expected} ({what}, batch, hidden_size)")
        h0, c0 = (t if isinstance(t, Tensor) else Tensor(t) for t in hx)
        if unbatched:
            h0, c0 = h0.unsqueeze(1), c0.unsqueeze(1)                  # (D L, 1, H)
        return h0, c0

    def extra_repr(self) -> str:
        return (f"{self.input_size}, {self.hidden_size}, num_layers={self.num_layers}, "
                f"bias={self.bias}, batch_first={self.batch_first}, dropout={self.dropout}"
                + (", bidirectional=True" if self.bidirectional else ""))
