"""Reference solutions of the course exercises (tinyllm.exercises), in plain NumPy.

For the tests and the instructors only: not shipped in the package, never imported by the
student notebooks. Each function has the signature its notebook asks for; the notebook test
injects this file's source into a notebook to show the notebook passes once filled in, so
every solution uses only NumPy and the standard library.

Shapes: B batch, T positions, hs head size, D normalised features.
"""

import numpy as np


def _reduce_to(grad, shape):
    """Sum ``grad`` over the axes broadcasting added or stretched, giving ``shape``."""
    grad = grad.sum(axis=tuple(range(grad.ndim - len(shape))))
    stretched = tuple(i for i, n in enumerate(shape) if n == 1 and grad.shape[i] != 1)
    return grad.sum(axis=stretched, keepdims=True)


def mul_backward(a, b, dout):
    """out = a * b (broadcasting) -> (da, db), each of its input's shape."""
    return _reduce_to(dout * b, np.shape(a)), _reduce_to(dout * a, np.shape(b))


def sum_backward(x_shape, dim, keepdim, dout):
    """out = x.sum(dim, keepdim) -> dx: dout copied back over the summed axes."""
    ndim = len(x_shape)
    dims = range(ndim) if dim is None else [dim] if np.isscalar(dim) else dim
    axes = sorted(d % ndim for d in dims)
    if not keepdim:
        dout = np.expand_dims(dout, tuple(axes))
    return np.broadcast_to(dout, x_shape).copy()


def softmax_backward(y, dout, dim=-1):
    """y = softmax(x, dim) -> dx = y * (dout - sum(dout * y, dim))."""
    return y * (dout - np.sum(dout * y, axis=dim, keepdims=True))


def log_softmax_backward(y, dout, dim=-1):
    """y = log_softmax(x, dim) -> dx = dout - exp(y) * sum(dout, dim)."""
    return dout - np.exp(y) * np.sum(dout, axis=dim, keepdims=True)


def layer_norm_forward(x, weight, bias, eps=1e-5):
    """y = (x - mean) / sqrt(var + eps) * weight + bias over the last axis; (y, cache)."""
    mean = x.mean(axis=-1, keepdims=True)
    rstd = 1.0 / np.sqrt(((x - mean) ** 2).mean(axis=-1, keepdims=True) + eps)
    xhat = (x - mean) * rstd
    return xhat * weight + bias, (xhat, rstd, weight)


def layer_norm_backward(dout, cache):
    """(dx, dweight, dbias); dx = rstd * (dxhat - mean(dxhat) - xhat * mean(dxhat * xhat))."""
    xhat, rstd, weight = cache
    batch_axes = tuple(range(dout.ndim - 1))
    dweight = (dout * xhat).sum(axis=batch_axes)
    dbias = dout.sum(axis=batch_axes)
    dxhat = dout * weight
    dx = rstd * (dxhat - dxhat.mean(axis=-1, keepdims=True)
                 - xhat * (dxhat * xhat).mean(axis=-1, keepdims=True))
    return dx, dweight, dbias


def attention_forward(q, k, v):
    """Causal attention head: softmax(q k^T / sqrt(hs), masked) v; q, k, v (..., T, hs)."""
    T, hs = q.shape[-2], q.shape[-1]
    scale = 1.0 / np.sqrt(hs)
    scores = scale * q @ np.swapaxes(k, -1, -2)                    # (..., T, T)
    causal = np.tril(np.ones((T, T), dtype=bool))
    scores = np.where(causal, scores, -np.inf)
    e = np.exp(scores - scores.max(axis=-1, keepdims=True))
    att = e / e.sum(axis=-1, keepdims=True)                        # (..., T, T)
    return att @ v, (q, k, v, att, scale)


def attention_backward(dout, cache):
    """(dq, dk, dv) of the causal head, from its cache."""
    q, k, v, att, scale = cache
    dv = np.swapaxes(att, -1, -2) @ dout                           # (..., T, hs)
    datt = dout @ np.swapaxes(v, -1, -2)                           # (..., T, T)
    dscores = att * (datt - np.sum(datt * att, axis=-1, keepdims=True))
    dq = scale * dscores @ k
    dk = scale * np.swapaxes(dscores, -1, -2) @ q
    return dq, dk, dv


def bpe_merge(ids, pair, new_id):
    """Replace each non-overlapping (a, b) in ids, left to right, by new_id."""
    out, i = [], 0
    while i < len(ids):
        if i + 1 < len(ids) and (ids[i], ids[i + 1]) == tuple(pair):
            out.append(new_id)
            i += 2
        else:
            out.append(ids[i])
            i += 1
    return out


def most_frequent_pair(ids):
    """The most frequent adjacent pair (overlapping pairs count); ties: the smallest pair."""
    counts = {}
    for pair in zip(ids, ids[1:]):
        counts[pair] = counts.get(pair, 0) + 1
    if not counts:
        return None
    return min(counts, key=lambda pair: (-counts[pair], pair))


def adamw_step(p, g, m, v, t, lr=1e-3, betas=(0.9, 0.999), eps=1e-8, weight_decay=1e-2):
    """One AdamW step t (from 1) -> (p, m, v): decoupled decay, bias-corrected moments."""
    beta1, beta2 = betas
    p = p * (1 - lr * weight_decay)
    m = beta1 * m + (1 - beta1) * g
    v = beta2 * v + (1 - beta2) * g * g
    m_hat = m / (1 - beta1 ** t)
    v_hat = v / (1 - beta2 ** t)
    return p - lr * m_hat / (np.sqrt(v_hat) + eps), m, v


def top_p_filter(logits, p):
    """Softmax, then keep the smallest most-probable set whose mass reaches p; renormalise."""
    logits = np.asarray(logits, dtype=np.float64)
    probs = np.exp(logits - logits.max(axis=-1, keepdims=True))
    probs = probs / probs.sum(axis=-1, keepdims=True)
    if p >= 1.0:
        return probs
    order = np.argsort(-probs, axis=-1, kind="stable")
    sorted_probs = np.take_along_axis(probs, order, axis=-1)
    keep_sorted = np.cumsum(sorted_probs, axis=-1) - sorted_probs < p
    keep = np.zeros_like(keep_sorted)
    np.put_along_axis(keep, order, keep_sorted, axis=-1)
    kept = np.where(keep, probs, 0.0)
    return kept / kept.sum(axis=-1, keepdims=True)
