"""Fused neural-network ops with hand-written backward passes.

Each is one graph node instead of a chain of primitives: less memory, less overhead, and
the derivative is written out where a student can read it. A test shows each equals the same
computation composed from primitive ops.

Shapes: N rows, C classes (or features), D normalised features.
"""

from __future__ import annotations

import math

import numpy as np

from ... import kernels
from ..._checks import choice
from ..function import Function
from ..random import default_generator
from ..tensor import Tensor
from ._util import normalize_dim


# ------------------------------------------------------------------ softmax family
def _last_axis(kernel, x: np.ndarray, axis: int, *more: np.ndarray) -> np.ndarray:
    """Run a last-axis row kernel along `axis` by moving that axis last and back."""
    if axis == x.ndim - 1:
        return kernel(x, *more)
    moved = [np.moveaxis(a, axis, -1) for a in (x, *more)]
    return np.moveaxis(kernel(*moved), -1, axis)


class Softmax(Function):
    """y = exp(x - max) / sum(exp(x - max));  dx = y * (dy - sum(dy * y))."""

    def forward(self, x, axis):
        self.axis = axis
        self.out = _last_axis(kernels.softmax_forward, x, axis)
        return self.out

    def backward(self, dout):
        return _last_axis(kernels.softmax_backward, self.out, self.axis, dout)


class LogSoftmax(Function):
    """y = x - logsumexp(x);  dx = dy - softmax(x) * sum(dy)."""

    def forward(self, x, axis):
        self.axis = axis
        self.out = _last_axis(kernels.log_softmax_forward, x, axis)
        return self.out

    def backward(self, dout):
        return _last_axis(kernels.log_softmax_backward, self.out, self.axis, dout)


def _float_input(op: str, x: Tensor) -> None:
    if x.dtype.kind != "f":
        raise TypeError(f"{op}: needs a floating tensor, got {x.dtype}")


def softmax(input: Tensor, dim: int) -> Tensor:  # noqa: A002 - PyTorch's argument name
    _float_input("softmax", input)
    (axis,) = normalize_dim("softmax", dim, input.ndim)
    return Softmax.apply(input, axis=axis)


def log_softmax(input: Tensor, dim: int) -> Tensor:  # noqa: A002
    _float_input("log_softmax", input)
    (axis,) = normalize_dim("log_softmax", dim, input.ndim)
    return LogSoftmax.apply(input, axis=axis)


# ------------------------------------------------------------------ cross-entropy
class CrossEntropy(Function):
    """Mean (or sum) over rows of -[(1-e) log p_target + e * mean_c log p_c].

    dlogits = softmax(logits) - (1 - e) * onehot(target) - e / C, zero on ignored rows.
    """

    def forward(self, logits, target, ignore_index, reduction, label_smoothing):
        n, c = logits.shape                                         # (N, C)
        self.target, self.reduction, self.eps = target, reduction, label_smoothing
        self.valid = target != ignore_index                         # (N,)
        safe_target = np.where(self.valid, target, 0)
        self.logp = kernels.log_softmax_forward(logits)             # (N, C)
        nll = -self.logp[np.arange(n), safe_target]                 # (N,)
        if label_smoothing:
            nll = (1 - label_smoothing) * nll - label_smoothing * self.logp.mean(axis=1)
        losses = np.where(self.valid, nll, 0).astype(logits.dtype)
        self.count = int(self.valid.sum())
        if reduction == "none":
            return losses
        if reduction == "sum":
            return np.asarray(losses.sum(), dtype=logits.dtype)
        with np.errstate(invalid="ignore", divide="ignore"):
            return np.asarray(losses.sum() / self.count, dtype=logits.dtype)

    def backward(self, dout):
        n, c = self.logp.shape
        dlogits = np.exp(self.logp)                                 # softmax, (N, C)
        rows = np.arange(n)
        dlogits[rows, np.where(self.valid, self.target, 0)] -= 1 - self.eps
        if self.eps:
            dlogits -= self.eps / c
        dlogits[~self.valid] = 0
        if self.reduction == "none":
            scale = dout[:, None]
        elif self.reduction == "sum":
            scale = dout
        else:
            scale = dout / self.count if self.count else dout * np.nan
        return (dlogits * scale).astype(self.logp.dtype, copy=False)


def kl_div(input: Tensor, target, reduction: str = "mean",  # noqa: A002
           log_target: bool = False) -> Tensor:
    """KL(target || q) with `input` = log q, as `torch.nn.functional.kl_div`: pointwise
    target * (log target - input), 0 where target is 0; reduced by "sum", "mean" (over every
    element), "batchmean" (the sum divided by input.shape[0]: the KL divergence per row when
    rows are distributions) or "none". With log_target=True `target` holds log-probabilities.

    `target` is a constant (an array, or a Tensor whose gradient is not taken): what
    distillation needs, the teacher's probabilities.
    """
    choice("reduction", reduction, ("mean", "sum", "batchmean", "none"), where="kl_div")
    _float_input("kl_div", input)
    t = np.asarray(target.data if isinstance(target, Tensor) else target, dtype=input.dtype)
    if t.shape != input.shape:
        raise ValueError(f"kl_div: target of shape {t.shape} does not match input of shape "
                         f"{input.shape}")
    if log_target:
        p, log_p = np.exp(t), t
    else:
        if (t < 0).any():
            raise ValueError("kl_div: target probabilities must be >= 0 (pass log_target=True "
                             "for log-probabilities)")
        log_p = np.log(np.where(t > 0, t, 1))                     # 0 log 0 = 0
        p = t
    pointwise = Tensor(p * log_p) - input * Tensor(p)               # p (log p - log q)
    if reduction == "none":
        return pointwise
    total = pointwise.sum()
    if reduction == "sum":
        return total
    return total / (input.shape[0] if reduction == "batchmean" else max(input.data.size, 1))


def cross_entropy(input: Tensor, target, ignore_index: int = -100,  # noqa: A002
                  reduction: str = "mean", label_smoothing: float = 0.0) -> Tensor:
    """Cross-entropy between logits `input` (N, C) or (N, C, d1, ...) and class indices.

    As `torch.nn.functional.cross_entropy`: targets equal to `ignore_index` count for nothing,
    `reduction='mean'` divides by the number of counted targets.
    """
    choice("reduction", reduction, ("mean", "sum", "none"), where="cross_entropy")
    _float_input("cross_entropy", input)
    if not 0.0 <= label_smoothing <= 1.0:
        raise ValueError(f"cross_entropy: label_smoothing must be in [0, 1], "
                         f"got {label_smoothing}")
    t = target.data if isinstance(target, Tensor) else np.asarray(target)
    if t.dtype.kind not in "iu":
        raise TypeError(f"cross_entropy: target must hold integer class indices, got {t.dtype}")
    logits = input
    if input.ndim == 1:                       # one sample: (C,) with a scalar target
        logits, t = input.reshape(1, -1), t.reshape(1)
    elif input.ndim > 2:                      # (N, C, d1, ...) -> (N * d1 * ..., C)
        logits = input.permute(0, *range(2, input.ndim), 1).reshape(-1, input.shape[1])
    expected = (input.shape[0], *input.shape[2:]) if input.ndim > 1 else ()
    if (t.shape if input.ndim > 1 else t.shape[1:]) != expected:
        raise ValueError(f"cross_entropy: target of shape {tuple(t.shape)} does not match input "
                         f"of shape {input.shape} (expected target shape {expected})")
    t = t.reshape(-1).astype(np.int64, copy=False)
    n_classes = logits.shape[1]
    bad = (t != ignore_index) & ((t < 0) | (t >= n_classes))
    if bad.any():
        raise ValueError(f"cross_entropy: target {int(t[bad][0])} is out of range for "
                         f"{n_classes} classes (accepted: 0..{n_classes - 1}, or "
                         f"ignore_index={ignore_index})")
    loss = CrossEntropy.apply(logits, target=t, ignore_index=ignore_index,
                              reduction=reduction, label_smoothing=label_smoothing)
    if reduction == "none" and input.ndim != 2:
        loss = loss.reshape(expected)
    return loss


# ------------------------------------------------------------------ layer norm
class LayerNorm(Function):
    """y = (x - mean) * rstd * weight + bias over the last D features.

    dx = rstd * (dxhat - mean(dxhat) - xhat * mean(dxhat * xhat)),  dxhat = dy * weight.
    Saves x, mean and rstd (N values each), not the normalised x. The arithmetic is
    `kernels.layer_norm_forward` / `layer_norm_backward` (one fused loop per row when compiled).
    """

    def forward(self, x, weight, bias, n_dims, eps):
        self.shape, self.param_shape = x.shape, x.shape[x.ndim - n_dims:]
        d = math.prod(self.param_shape)
        x2 = x.reshape(-1, d)                                       # (N, D)
        w = None if weight is None else weight.reshape(-1)
        b = None if bias is None else bias.reshape(-1)
        y, self.mean, self.rstd = kernels.layer_norm_forward(x2, w, b, eps)   # (N, D), (N,)
        self.x2, self.weight = x2, w
        return y.reshape(x.shape)

    def backward(self, dout):
        d2 = dout.reshape(self.x2.shape).astype(self.x2.dtype, copy=False)      # (N, D)
        dx, dweight, dbias = kernels.layer_norm_backward(self.x2, d2, self.mean, self.rstd,
                                                         self.weight)
        dx = dx.reshape(self.shape) if self.needs_input_grad[0] else None
        dweight = dweight.reshape(self.param_shape) if self.needs_input_grad[1] else None
        dbias = dbias.reshape(self.param_shape) if self.needs_input_grad[2] else None
        return dx, dweight, dbias


def layer_norm(input: Tensor, normalized_shape, weight: Tensor | None = None,  # noqa: A002
               bias: Tensor | None = None, eps: float = 1e-5) -> Tensor:
    """Normalise over the trailing `normalized_shape` dims, then scale and shift."""
    shape = (normalized_shape,) if isinstance(normalized_shape, int) else tuple(normalized_shape)
    if tuple(input.shape[input.ndim - len(shape):]) != shape or len(shape) > input.ndim:
        raise ValueError(f"layer_norm: normalized_shape {shape} does not match the input's "
                         f"trailing dimensions (input shape {input.shape})")
    for name, p in (("weight", weight), ("bias", bias)):
        if p is not None and tuple(p.shape) != shape:
            raise ValueError(f"layer_norm: {name} has shape {p.shape}, expected {shape}")
    return LayerNorm.apply(input, weight, bias, n_dims=len(shape), eps=eps)


# ------------------------------------------------------------------ GELU
class Gelu(Function):
    """GELU(x) = x * Phi(x) (exact, via erf) or its tanh approximation (GPT-2's).

    The formulas and their derivatives are `kernels.gelu_forward` / `gelu_backward`; the
    backward recomputes them from x, so only x is kept.
    """

    def forward(self, x, approximate):
        self.x, self.approximate = x, approximate
        return kernels.gelu_forward(x, approximate)

    def backward(self, dout):
        return kernels.gelu_backward(self.x, dout, self.approximate)


def gelu(input: Tensor, approximate: str = "none") -> Tensor:  # noqa: A002
    choice("approximate", approximate, ("none", "tanh"), where="gelu")
    return Gelu.apply(input, approximate=approximate)


# ------------------------------------------------------------------ dropout
class Dropout(Function):
    def forward(self, x, p, generator):
        keep = generator.random(x.shape) >= p
        self.scale = (keep / (1.0 - p)).astype(x.dtype) if p < 1 else np.zeros_like(x)
        return x * self.scale

    def backward(self, dout):
        return dout * self.scale


def dropout(input: Tensor, p: float = 0.5, training: bool = True,  # noqa: A002
            generator: np.random.Generator | None = None) -> Tensor:
    """Zero each element with probability `p` and scale the rest by 1/(1-p) (when training)."""
    if not 0.0 <= p <= 1.0:
        raise ValueError(f"dropout: probability has to be between 0 and 1, but got {p}")
    if not training or p == 0.0:
        return input
    return Dropout.apply(input, p=p, generator=generator or default_generator())


# ------------------------------------------------------------------ embedding and linear
class Embedding(Function):
    """out = weight[idx];  dweight[i] = sum of dout rows where idx == i."""

    def forward(self, weight, idx):
        self.idx, self.n_rows = idx, weight.shape[0]
        return weight[idx]                                          # (*idx.shape, C)

    def backward(self, dout):
        c = dout.shape[-1]
        idx, rows = self.idx.reshape(-1), dout.reshape(-1, c)          # (N,), (N, C)
        dweight = np.zeros((self.n_rows, c), dtype=dout.dtype)
        if idx.size == 0:
            return dweight
        order = np.argsort(idx, kind="stable")      # each id's rows together, in their order
        ids = idx[order]
        starts = np.flatnonzero(np.r_[True, ids[1:] != ids[:-1]])     # first row of each id
        if 8 * len(starts) <= len(ids):
            # Few ids, many rows each (a small vocabulary): one reduceat per id is 3-6 times
            # faster than np.add.at's element-by-element scatter (same sums up to round-off:
            # reduceat may add a group's rows in another order).
            dweight[ids[starts]] = np.add.reduceat(rows[order], starts, axis=0)
        else:
            np.add.at(dweight, idx, rows)
        return dweight


def embedding(input, weight: Tensor) -> Tensor:  # noqa: A002
    """Rows of `weight` picked by the integer indices `input` (PyTorch's argument order)."""
    idx = input.data if isinstance(input, Tensor) else np.asarray(input)
    if idx.dtype.kind not in "iu":
        raise TypeError(f"embedding: indices must be integers, got {idx.dtype}")
    n = weight.shape[0]
    if idx.size and (idx.min() < 0 or idx.max() >= n):
        bad = int(idx.min()) if idx.min() < 0 else int(idx.max())
        raise IndexError(f"embedding: index {bad} is out of range for a table of {n} rows "
                         f"(accepted: 0..{n - 1})")
    return Embedding.apply(weight, idx=idx)


class Linear(Function):
    """y = x @ weight^T + bias, weight (out, in) as in PyTorch; with `in_out`, weight is
    stored (in, out), as GPT-2's Conv1D keeps it, and y = x @ weight + bias (its gradient
    comes back (in, out)).

    Leading dims are folded into rows first: one (N, in) @ (in, out) GEMM is faster than
    NumPy's loop of small per-batch products.
    """

    def forward(self, x, weight, bias, in_out=False):
        self.in_out = in_out
        if in_out:
            weight = weight.T                                       # (out, in) view
        if x.shape[-1] != weight.shape[1]:
            raise ValueError(f"linear: input has {x.shape[-1]} features (shape {x.shape}) but "
                             f"weight expects {weight.shape[1]} (weight shape {weight.shape})")
        self.x, self.weight = x, weight
        # weight.T is (in, out): a Conv1D's own array, which kernels.matmul streams once for
        # the few rows of a generation step.
        y = kernels.matmul(x.reshape(-1, x.shape[-1]), weight.T, bias)  # (N, out)
        return y.reshape(*x.shape[:-1], weight.shape[0])            # (..., out)

    def backward(self, dout):
        x2 = self.x.reshape(-1, self.x.shape[-1])                   # (N, in)
        d2 = dout.reshape(-1, dout.shape[-1])                       # (N, out)
        dx = (kernels.matmul(d2, self.weight).reshape(self.x.shape)
              if self.needs_input_grad[0] else None)
        dweight = self._weight_grad(x2, d2) if self.needs_input_grad[1] else None
        dbias = _column_sums(d2) if self.needs_input_grad[2] else None
        if self.in_out and dweight is not None:
            dweight = dweight.T                                     # (in, out)
        return dx, dweight, dbias

    def _weight_grad(self, x2, d2):
        """dweight (out, in) = d2^T @ x2, laid out as the weight is: for a transposed view (a
        Conv1D's (in, out) array, passed as weight.T) the product is computed (in, out), so the
        parameter's gradient is contiguous, as the optimizer's one-pass kernel wants it."""
        if self.weight.flags.c_contiguous or not self.weight.T.flags.c_contiguous:
            return kernels.matmul(d2.T, x2)                         # (out, in)
        return kernels.matmul(x2.T, d2).T                           # (in, out), viewed (out, in)


class LinearReLU(Linear):
    """relu(x @ weight^T + bias) as one op (what PyTorch's fused LinearReLU module computes):
    the ReLU runs in place on the product, which no other op has seen yet, and the backward
    masks the incoming gradient (where the output is 0 the ReLU passed nothing) before the
    Linear's backward. One activation-sized array and one op fewer, forward and backward."""

    def forward(self, x, weight, bias):
        y = super().forward(x, weight, bias)                            # (..., out)
        np.maximum(y, 0, out=y)
        self.out = y
        return y

    def backward(self, dout):
        return super().backward(dout * (self.out > 0))


def _column_sums(rows: np.ndarray) -> np.ndarray:
    """rows (N, out) summed over N: ones (1, N) @ rows, a product (kernels.matmul streams it,
    split over threads), 2-4x faster than rows.sum(axis=0) for the (1024, 128)-sized
    gradients of a training step."""
    return kernels.matmul(np.ones((1, len(rows)), dtype=rows.dtype), rows)[0]


def linear(input: Tensor, weight: Tensor, bias: Tensor | None = None) -> Tensor:  # noqa: A002
    return Linear.apply(input, weight, bias)


def linear_in_out(input: Tensor, weight: Tensor,  # noqa: A002
                  bias: Tensor | None = None) -> Tensor:
    """input @ weight + bias for a weight stored (in, out) (GPT-2's Conv1D): `linear` of
    weight.T, without an op for the transpose (one op fewer per layer in a generation step)."""
    return Linear.apply(input, weight, bias, in_out=True)


def linear_relu(input: Tensor, weight: Tensor,  # noqa: A002
                bias: Tensor | None = None) -> Tensor:
    """relu(linear(input, weight, bias)), fused (see `LinearReLU`): the same values and
    gradients, a little faster."""
    return LinearReLU.apply(input, weight, bias)


class QuantizedLinear(Function):
    """y = x @ W^T + bias, W stored as integers and scales (kernels.quantized_linear).

    W is not a Tensor and gets no gradient; x and the bias do: dx = dout @ W, dbias = sum
    of dout's rows (what a frozen quantized base under a trained adapter needs).
    """

    def forward(self, x, bias, qweight, scale, group_size):
        self.stored = (qweight, scale, group_size)
        return kernels.quantized_linear(x, qweight, scale, group_size, bias)   # (..., out)

    def backward(self, dout):
        qweight, scale, group_size = self.stored
        dx = None
        if self.needs_input_grad[0]:
            w = kernels.reference.dequantize(qweight, scale, group_size, dout.dtype)  # (out, in)
            d2 = dout.reshape(-1, dout.shape[-1])          # one (N, out) GEMM, not a stack
            dx = (d2 @ w).reshape(*dout.shape[:-1], w.shape[1])                     # (..., in)
        dbias = (_column_sums(dout.reshape(-1, dout.shape[-1]))
                 if self.needs_input_grad[1] else None)
        return dx, dbias


def quantized_linear(input: Tensor, qweight: np.ndarray, scale: np.ndarray,  # noqa: A002
                     group_size: int = 0, bias: Tensor | None = None) -> Tensor:
    """`linear` with a quantized weight: int8 `qweight` (out, in) and `scale` (1,) or (out,)
    when group_size is 0, packed 4-bit `qweight` (out, in / 2) and `scale` (out, in / g)
    for groups of g inputs (see tinyllm.nn.quantized)."""
    in_features = qweight.shape[1] * (2 if group_size else 1)
    if input.shape[-1] != in_features:
        raise ValueError(f"quantized_linear: input has {input.shape[-1]} features (shape "
                         f"{input.shape}) but the weight expects {in_features}")
    return QuantizedLinear.apply(input, bias, qweight=qweight, scale=scale,
                                 group_size=group_size)
