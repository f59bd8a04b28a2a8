"""Count the matrix-product FLOPs a model really performs, by wrapping the ops that multiply.

Every product of an (m, k) by a (k, n) matrix counts 2 m k n (one multiply and one add per
term). The wrappers read the shapes of the arrays each op receives and the gradients it
returns, so the count is what ran, not what a formula says.
"""

import numpy as np

from tinyllm.autograd.ops.attention import PackedSelfAttention, ScaledDotProductAttention
from tinyllm.autograd.ops.matmul import MatMul
from tinyllm.autograd.ops.nn import Linear
from tinyllm.autograd.ops.rnn import LSTMLayer


class MatmulCounter:
    def __init__(self, monkeypatch):
        self.forward = 0
        self.backward = 0
        self._patch(monkeypatch, Linear, self._linear_forward, self._linear_backward)
        self._patch(monkeypatch, MatMul, self._matmul_forward, self._matmul_backward)
        self._patch(monkeypatch, ScaledDotProductAttention, self._attention_forward,
                    self._attention_backward)
        self._patch(monkeypatch, PackedSelfAttention, self._packed_forward,
                    self._packed_backward)
        self._patch(monkeypatch, LSTMLayer, self._lstm_forward, self._lstm_backward)

    def _patch(self, monkeypatch, cls, count_forward, count_backward):
        original_forward, original_backward = cls.forward, cls.backward

        def forward(fn, *arrays, **params):
            self.forward += count_forward(fn, *arrays)
            return original_forward(fn, *arrays, **params)

        def backward(fn, dout):
            grads = original_backward(fn, dout)
            self.backward += count_backward(fn, grads if isinstance(grads, tuple) else (grads,))
            return grads

        monkeypatch.setattr(cls, "forward", forward)
        monkeypatch.setattr(cls, "backward", backward)

    @staticmethod
    def _linear_forward(fn, x, weight, bias=None):
        rows = int(np.prod(x.shape[:-1]))
        return 2 * rows * weight.shape[0] * weight.shape[1]

    @staticmethod
    def _linear_backward(fn, grads):
        one = 2 * int(np.prod(fn.x.shape[:-1])) * fn.weight.shape[0] * fn.weight.shape[1]
        return one * sum(g is not None for g in grads[:2])          # dx and dweight

    @staticmethod
    def _matmul_forward(fn, a, b):
        out = np.broadcast_shapes(a.shape[:-2], b.shape[:-2])
        return 2 * int(np.prod(out)) * a.shape[-2] * a.shape[-1] * b.shape[-1]

    @classmethod
    def _matmul_backward(cls, fn, grads):
        return cls._matmul_forward(fn, fn.a, fn.b) * sum(g is not None for g in grads)

    @staticmethod
    def _attention_forward(fn, q, k, v, *rest):
        batch = int(np.prod(np.broadcast_shapes(q.shape[:-2], k.shape[:-2], v.shape[:-2])))
        n_q, n_k = q.shape[-2], k.shape[-2]
        return 2 * batch * n_q * n_k * q.shape[-1] + 2 * batch * n_q * n_k * v.shape[-1]

    @classmethod
    def _attention_backward(cls, fn, grads):
        c = fn.cache
        # dv and d(probs) are each the size of P @ v; dq and dk each the size of q @ k^T.
        return 2 * cls._attention_forward(fn, c.q, c.k, c.v)

    @staticmethod
    def _packed_flops(shape):
        # q @ k^T and P @ v over all heads: B T T (nh hs) multiply-adds each, whatever nh
        b, t, c3 = shape
        return 2 * 2 * b * t * t * (c3 // 3)

    @classmethod
    def _packed_forward(cls, fn, qkv):
        return cls._packed_flops(qkv.shape)

    @classmethod
    def _packed_backward(cls, fn, grads):
        return 2 * cls._packed_flops(fn.shape)          # as _attention_backward

    @staticmethod
    def _lstm_forward(fn, x, h0, c0, w_ih, w_hh, *rest):
        # every step's input projection (T B rows by I -> 4H) and recurrent one (H -> 4H)
        rows = x.shape[0] * x.shape[1]
        return 2 * rows * w_ih.shape[0] * (w_ih.shape[1] + w_hh.shape[1])

    @staticmethod
    def _lstm_backward(fn, grads):
        dx, _, _, dw_ih, dw_hh = grads[:5]
        rows, n_in = fn.x2.shape
        g4, hidden = fn.w_hh.shape
        per_input, per_state = 2 * rows * g4 * n_in, 2 * rows * g4 * hidden
        # dh_{t-1} = da_t @ w_hh runs at every step, needed or not
        return (per_state + per_input * ((dx is not None) + (dw_ih is not None))
                + per_state * (dw_hh is not None))
