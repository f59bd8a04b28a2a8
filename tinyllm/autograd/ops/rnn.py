"""One LSTM layer over a whole sequence as a single op, with a hand-written backward (BPTT).

Shapes: T time steps, B batch, I input features, H hidden size, G = 4H gate rows.

PyTorch's equations and layout (`torch.nn.LSTM`): the gate rows of `w_ih` (G, I), `w_hh`
(G, H) and the biases (G,) are stacked in the order input i, forget f, cell g, output o:

    a_t = x_t @ w_ih^T + b_ih + h_{t-1} @ w_hh^T + b_hh      (B, 4H) pre-activations
    i, f, o = sigmoid(a_i), sigmoid(a_f), sigmoid(a_o);  g = tanh(a_g)
    c_t = f * c_{t-1} + i * g
    h_t = o * tanh(c_t)

Why one op for the whole sequence rather than one per step: the input projection of every
step is independent of the recurrence, so it is one (T*B, I) @ (I, G) GEMM up front, and the
backward gathers every step's gate gradient into one (T, B, G) array, so the weight gradients
are two more big GEMMs. Only h_{t-1} @ w_hh^T (and its backward, da_t @ w_hh) stay inside
the Python loop over time. The graph holds one node per layer instead of ~15 per step.

Backward through time, walking t = T..1 with dh, dc the gradients flowing back from step t+1
(plus whatever reached h_t and c_t from outside):

    dc  += dh * o * (1 - tanh(c_t)^2)
    da_i = dc * g * i (1 - i)          da_f = dc * c_{t-1} * f (1 - f)
    da_g = dc * i * (1 - g^2)          da_o = dh * tanh(c_t) * o (1 - o)
    dh_{t-1} = da_t @ w_hh             dc_{t-1} = dc * f

    dw_ih = sum_t da_t^T x_t     dw_hh = sum_t da_t^T h_{t-1}     db_ih = db_hh = sum_t da_t
    dx_t  = da_t @ w_ih

The op returns every hidden and cell state, stacked: (2, B, T, H) (or (2, T, B, H) when
`batch_first=False`); [0] is the layer's output sequence, [0, :, -1] and [1, :, -1] are
h_n and c_n. Returning all of them lets a gradient reach any state the caller uses.
"""

from __future__ import annotations

import numpy as np

from ..function import Function
from ..tensor import Tensor


def _gate_activations(a: np.ndarray, hidden: int) -> np.ndarray:
    """sigmoid on the i, f, o rows and tanh on the g rows of `a` (B, 4H), in place.

    sigmoid(x) = (1 + tanh(x / 2)) / 2: one tanh call covers all four gates, and it cannot
    overflow the way 1 / (1 + exp(-x)) does for large negative x in float32.
    """
    sig = (slice(None, 2 * hidden), slice(3 * hidden, None))     # i, f | o
    for s in sig:
        a[:, s] *= 0.5
    np.tanh(a, out=a)
    for s in sig:
        a[:, s] *= 0.5
        a[:, s] += 0.5
    return a


class LSTMLayer(Function):
    """The fused layer: inputs (x, h0, c0, w_ih, w_hh, b_ih, b_hh); h0, c0, biases optional."""

    def forward(self, x, h0, c0, w_ih, w_hh, b_ih, b_hh, batch_first):
        xt = x.transpose(1, 0, 2) if batch_first else x                # (T, B, I)
        n_t, n_b, n_in = xt.shape
        g4 = w_ih.shape[0]
        hidden = g4 // 4
        dtype = np.result_type(x, w_ih)
        self.x2 = np.ascontiguousarray(xt).reshape(n_t * n_b, n_in)    # (T*B, I)
        self.w_ih, self.w_hh, self.batch_first = w_ih, w_hh, batch_first
        self.has_bias = b_ih is not None
        # All steps' input projections (and both biases) in one GEMM.
        gates = (self.x2 @ w_ih.T).reshape(n_t, n_b, g4)               # (T, B, 4H)
        if b_ih is not None:
            gates += b_ih + b_hh
        # states[0] = h, states[1] = c; index 0 on the time axis holds the initial state.
        states = np.empty((2, n_t + 1, n_b, hidden), dtype=dtype)      # (2, T+1, B, H)
        states[0, 0] = 0 if h0 is None else h0
        states[1, 0] = 0 if c0 is None else c0
        tanh_c = np.empty((n_t, n_b, hidden), dtype=dtype)             # (T, B, H)
        w_hh_t = w_hh.T                                                # (H, 4H)
        for t in range(n_t):
            a = gates[t]                                               # (B, 4H)
            a += states[0, t] @ w_hh_t
            _gate_activations(a, hidden)
            i, f, g, o = (a[:, k * hidden:(k + 1) * hidden] for k in range(4))
            c = states[1, t + 1]
            np.multiply(f, states[1, t], out=c)
            c += i * g                                                 # c_t = f c + i g
            np.tanh(c, out=tanh_c[t])
            np.multiply(o, tanh_c[t], out=states[0, t + 1])            # h_t = o tanh(c_t)
        self.gates, self.states, self.tanh_c = gates, states, tanh_c
        out = states[:, 1:]                                            # (2, T, B, H)
        return out.transpose(0, 2, 1, 3) if batch_first else out       # (2, B, T, H)

    def backward(self, dout):
        d = dout.transpose(0, 2, 1, 3) if self.batch_first else dout   # (2, T, B, H)
        gates, states, tanh_c = self.gates, self.states, self.tanh_c
        n_t, n_b, g4 = gates.shape
        hidden = g4 // 4
        h_slices = [slice(k * hidden, (k + 1) * hidden) for k in range(4)]
        # The local derivatives of the four activations, for all steps at once.
        dact = gates * (1 - gates)                                     # sigmoid' for i, f, o
        dact[..., h_slices[2]] = 1 - gates[..., h_slices[2]] ** 2      # tanh' for g
        da = np.empty_like(gates)                                      # (T, B, 4H)
        dh = np.zeros((n_b, hidden), dtype=gates.dtype)                # from step t+1
        dc = np.zeros((n_b, hidden), dtype=gates.dtype)
        outside_c = bool(d[1].any())  # usually only h reaches a loss; skip the zero adds
        for t in range(n_t - 1, -1, -1):
            i, f, g, o = (gates[t, :, s] for s in h_slices)
            dh += d[0, t]
            if outside_c:
                dc += d[1, t]
            tc = tanh_c[t]
            dc += dh * o * (1 - tc * tc)
            da_t = da[t]
            np.multiply(dc * g, dact[t, :, h_slices[0]], out=da_t[:, h_slices[0]])
            np.multiply(dc * states[1, t], dact[t, :, h_slices[1]], out=da_t[:, h_slices[1]])
            np.multiply(dc * i, dact[t, :, h_slices[2]], out=da_t[:, h_slices[2]])
            np.multiply(dh * tc, dact[t, :, h_slices[3]], out=da_t[:, h_slices[3]])
            dc *= f                                                    # dc_{t-1}
            dh = da_t @ self.w_hh                                      # dh_{t-1}, (B, H)
        da2 = da.reshape(n_t * n_b, g4)                                # (T*B, 4H)
        need = self.needs_input_grad
        dx = dw_ih = dw_hh = db = None
        if need[0]:
            dx = (da2 @ self.w_ih).reshape(n_t, n_b, -1)               # (T, B, I)
            if self.batch_first:
                dx = dx.transpose(1, 0, 2)                             # (B, T, I)
        if need[3]:
            dw_ih = da2.T @ self.x2                                    # (4H, I)
        if need[4]:
            dw_hh = da2.T @ states[0, :-1].reshape(n_t * n_b, hidden)  # (4H, H)
        if self.has_bias and (need[5] or need[6]):
            db = da2.sum(axis=0)                                       # (4H,)
        return (dx, dh if need[1] else None, dc if need[2] else None, dw_ih, dw_hh,
                db if need[5] else None, db if need[6] else None)


def lstm_layer(input: Tensor, hx: tuple[Tensor, Tensor] | None, weight_ih: Tensor,  # noqa: A002
               weight_hh: Tensor, bias_ih: Tensor | None = None,
               bias_hh: Tensor | None = None, batch_first: bool = True) -> Tensor:
    """Run one LSTM layer over `input` (B, T, I) (or (T, B, I)); return the stacked states.

    `hx` = (h0, c0), each (B, H), or None for zeros. Returns (2, B, T, H) (time first when
    `batch_first=False`): index 0 the hidden states h_1..h_T, index 1 the cell states.
    """
    if input.ndim != 3:
        raise ValueError(f"lstm_layer: input must have 3 dimensions (batch, time, features), "
                         f"got shape {input.shape}")
    g4, n_in = weight_ih.shape
    if g4 % 4 or weight_hh.shape != (g4, g4 // 4):
        raise ValueError(f"lstm_layer: weight_ih {weight_ih.shape} and weight_hh "
                         f"{weight_hh.shape} do not fit (4H, I) and (4H, H)")
    if input.shape[-1] != n_in:
        raise ValueError(f"lstm_layer: input has {input.shape[-1]} features (shape "
                         f"{input.shape}) but weight_ih expects {n_in}")
    if input.shape[1 if batch_first else 0] == 0:
        raise ValueError(f"lstm_layer: input has no time steps (shape {input.shape})")
    if (bias_ih is None) != (bias_hh is None):
        raise ValueError("lstm_layer: pass both biases or neither")
    h0, c0 = (None, None) if hx is None else hx
    return LSTMLayer.apply(input, h0, c0, weight_ih, weight_hh, bias_ih, bias_hh,
                           batch_first=batch_first)
