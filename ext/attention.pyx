"""Fused scaled-dot-product attention, forward and backward, blockwise with an online softmax.

The compiled twin of `attention_forward` / `attention_backward` in
tinyllm/kernels/attention_reference.py, the whole-matrix NumPy pair whose docstring has the
equations. Shapes: q (..., L, E), k (..., S, E), v (..., S, Ev); the batch dims `...` (usually
B, nh) are folded into one, BH.

Forward, for each head and each block of BR queries (FlashAttention, Dao et al. 2022)::

    m = -inf, l = 0, acc = 0                       per query row
    for each block of BC keys (only those a causal query can see):
        s   = scale * q_blk @ k_blk^T              (BR, BC)       BLAS (one query: dots)
        s   = -inf where masked
        m'  = max(m, rowmax s);  p = exp(s - m')
        l   = l * exp(m - m') + rowsum p
        acc = acc * exp(m - m') + p @ v_blk        (BR, Ev)       BLAS (one query: rows)
        m   = m'
    out = acc / l;  lse = m + log l                the row's log-sum-exp

Why this is exact: after every block acc / l is the softmax-weighted mean of the values seen so
far, because rescaling by exp(m - m') turns sums of exp(s - m) into sums of exp(s - m').
Blocks above the causal diagonal are never computed (about half of the work for L = S).

Memory: the forward keeps out and lse (L values per head) -- not the (L, S) probabilities the
NumPy twin keeps: for B=8, nh=8, T=256 float32, 64 KiB instead of 16 MiB. The backward
recomputes s and p = exp(s - lse) block by block, with delta = rowsum(dout * out)::

    dv_blk += p^T @ dout_blk;  dp = dout_blk @ v_blk^T;  ds = p * (dp - delta)
    dq_blk += scale * ds @ k_blk;  dk_blk += scale * ds^T @ q_blk

Each thread needs only a few (BR, BC) blocks of scratch.

Block sizes: BR = 64 queries, BC = 256 keys. Up to a context of 256 a query block sees its
keys in one block -- two BLAS calls per query block forward and five backward, not two and
five per 64 keys. Measured (1 thread, (8, 8, 256, 64) fwd+bwd, causal; OpenBLAS Haswell
kernels): BC = 64 29.8 ms, 128 28.7 ms, 256 26.9 ms (BR = 32 or 128 with BC = 256: 29.7 and
31.1 ms). In the GPT `medium` training step (T = 128) the kernel's time did not change
measurably (415 vs 420 ms per 5 steps, one thread). The FLOPs are the same (whole 64-row
diagonal blocks).

Matmuls: BLAS via scipy.linalg.cython_blas (sgemm/dgemm called without the GIL from each
thread); a block of one query row (a decoding step) uses plain dot products and row sums
(attention_rows.h) instead, where a BLAS call costs more than its arithmetic (B=8, 4 heads
of 32, 36 keys: 37.6 us per layer with BLAS, 19.3 without). A hand-written matmul loop,
measured when this kernel was planned, reached about a quarter of BLAS speed; NumPy's matmul
needs the GIL and a Python call per block, so heads could not run in parallel. The BLAS the
kernels call is kept on one thread (tinyllm.kernels.blas), so the OpenMP threads over heads
never start BLAS threads of their own (no oversubscription).

Not handled here: dropout on the weights, float (additive) masks -- whose gradient needs the
full dscores --, batch dims that broadcast between q, k and v, and dtypes other than
float32/float64. `supports(...)` says whether a call is handled; `tinyllm.kernels` sends the
others to the NumPy pair. `attention_backward` returns dscores = None. This module imports
nothing from the tinyllm package: the package calls it, never the other way round.
"""

from typing import NamedTuple

import numpy as np

cimport cython
from cython.parallel cimport parallel, prange
from libc.math cimport INFINITY, log
from libc.stdlib cimport free, malloc
from libc.string cimport memset
from scipy.linalg.cython_blas cimport dgemm, sgemm


include "parallel.pxi"

cdef extern from "attention_rows.h" nogil:
    float tl_online_softmax_step_f32(float *s, Py_ssize_t n, float *m, float *l)
    double tl_online_softmax_step_f64(double *s, Py_ssize_t n, double *m, double *l)
    void tl_probs_from_lse_f32(float *s, Py_ssize_t n, float lse)
    void tl_probs_from_lse_f64(double *s, Py_ssize_t n, double lse)
    void tl_dsoftmax_row_f32(const float *p, float *dp, Py_ssize_t n, float delta)
    void tl_dsoftmax_row_f64(const double *p, double *dp, Py_ssize_t n, double delta)
    void tl_row_scores_f32(const float *q, const float *k, float *s, Py_ssize_t n,
                           Py_ssize_t e, float scale)
    void tl_row_scores_f64(const double *q, const double *k, double *s, Py_ssize_t n,
                           Py_ssize_t e, double scale)
    void tl_add_weighted_rows_f32(const float *p, const float *v, float *out, Py_ssize_t n,
                                  Py_ssize_t ev)
    void tl_add_weighted_rows_f64(const double *p, const double *v, double *out, Py_ssize_t n,
                                  Py_ssize_t ev)

ctypedef fused real:
    float
    double

cdef enum:
    BR = 64     # queries per block
    BC = 256     # keys per block

cdef inline void _gemm(char ta, char tb, int m, int n, int k, real alpha, const real *a,
                       int lda, const real *b, int ldb, real beta, real *c,
                       int ldc) noexcept nogil:
    """Row-major C (m, n) = alpha op(A) op(B) + beta C, as column-major C^T = op(B)^T op(A)^T."""
    if real is float:
        sgemm(&tb, &ta, &n, &m, &k, &alpha, <float *>b, &ldb, <float *>a, &lda, &beta, c, &ldc)
    else:
        dgemm(&tb, &ta, &n, &m, &k, &alpha, <double *>b, &ldb, <double *>a, &lda, &beta, c,
              &ldc)


cdef inline void _scores(const real *q, const real *k, real *s, Py_ssize_t i0, Py_ssize_t nr,
                         Py_ssize_t j0, Py_ssize_t nc, int e, real scale, bint causal,
                         const unsigned char[:, :, :] mask, Py_ssize_t h) noexcept nogil:
    """s (nr, BC) = scale * q[i0:i0+nr] @ k[j0:j0+nc]^T, -inf where a key is masked."""
    cdef Py_ssize_t r, c
    if nr == 1:                                 # one query (decoding): dot products
        if real is float:
            tl_row_scores_f32(q + i0 * e, k + j0 * e, s, nc, e, scale)
        else:
            tl_row_scores_f64(q + i0 * e, k + j0 * e, s, nc, e, scale)
    else:
        _gemm(c'N', c'T', <int>nr, <int>nc, e, scale, q + i0 * e, e, k + j0 * e, e, 0, s, BC)
    if causal and j0 + nc - 1 > i0:             # the block crosses the diagonal
        for r in range(nr):
            for c in range(max(0, i0 + r + 1 - j0), nc):
                s[r * BC + c] = -INFINITY
    if mask is not None:
        for r in range(nr):
            for c in range(nc):
                if not mask[h, i0 + r, j0 + c]:
                    s[r * BC + c] = -INFINITY


cdef inline Py_ssize_t _key_end(Py_ssize_t i1, Py_ssize_t n_keys, bint causal) noexcept nogil:
    """Keys [0, end) that queries [., i1) may see: causal query i sees keys 0..i."""
    return min(n_keys, i1) if causal else n_keys


cdef void _forward_head(const real *q, const real *k, const real *v, real *out, real *lse,
                        Py_ssize_t n_q, Py_ssize_t n_k, int e, int ev, real scale, bint causal,
                        const unsigned char[:, :, :] mask, Py_ssize_t h,
                        real *s, real *m, real *l) noexcept nogil:
    cdef Py_ssize_t ib, jb, i0, j0, nr, nc, r, c, kend
    cdef real alpha
    for ib in range((n_q + BR - 1) // BR):
        i0 = ib * BR
        nr = min(BR, n_q - i0)
        kend = _key_end(i0 + nr, n_k, causal)
        memset(out + i0 * ev, 0, nr * ev * sizeof(real))
        for r in range(nr):
            m[r] = -INFINITY
            l[r] = 0
        for jb in range((kend + BC - 1) // BC):
            j0 = jb * BC
            nc = min(BC, kend - j0)
            _scores(q, k, s, i0, nr, j0, nc, e, scale, causal, mask, h)
            for r in range(nr):
                if real is float:
                    alpha = tl_online_softmax_step_f32(s + r * BC, nc, &m[r], &l[r])
                else:
                    alpha = tl_online_softmax_step_f64(s + r * BC, nc, &m[r], &l[r])
                if alpha != 1:
                    for c in range(ev):
                        out[(i0 + r) * ev + c] *= alpha
            if nr == 1:
                if real is float:
                    tl_add_weighted_rows_f32(s, v + j0 * ev, out + i0 * ev, nc, ev)
                else:
                    tl_add_weighted_rows_f64(s, v + j0 * ev, out + i0 * ev, nc, ev)
            else:
                _gemm(c'N', c'N', <int>nr, ev, <int>nc, 1, s, BC, v + j0 * ev, ev, 1,
                      out + i0 * ev, ev)
        for r in range(nr):
            if l[r] > 0:
                for c in range(ev):
                    out[(i0 + r) * ev + c] /= l[r]
                lse[i0 + r] = m[r] + log(l[r])
            else:                               # no visible key: zeros, like PyTorch
                lse[i0 + r] = INFINITY


cdef void _backward_head(const real *q, const real *k, const real *v, const real *out,
                         const real *dout, const real *lse, real *dq, real *dk, real *dv,
                         Py_ssize_t n_q, Py_ssize_t n_k, int e, int ev, real scale, bint causal,
                         const unsigned char[:, :, :] mask, Py_ssize_t h,
                         real *p, real *dp, real *delta) noexcept nogil:
    cdef Py_ssize_t ib, jb, i0, j0, nr, nc, r, c, kend
    cdef real acc
    memset(dq, 0, n_q * e * sizeof(real))
    memset(dk, 0, n_k * e * sizeof(real))
    memset(dv, 0, n_k * ev * sizeof(real))
    for ib in range((n_q + BR - 1) // BR):
        i0 = ib * BR
        nr = min(BR, n_q - i0)
        kend = _key_end(i0 + nr, n_k, causal)
        for r in range(nr):                     # delta = rowsum(dout * out) = sum_j p dp
            acc = 0
            for c in range(ev):
                acc = acc + dout[(i0 + r) * ev + c] * out[(i0 + r) * ev + c]
            delta[r] = acc
        for jb in range((kend + BC - 1) // BC):
            j0 = jb * BC
            nc = min(BC, kend - j0)
            _scores(q, k, p, i0, nr, j0, nc, e, scale, causal, mask, h)
            for r in range(nr):
                if real is float:
                    tl_probs_from_lse_f32(p + r * BC, nc, lse[i0 + r])
                else:
                    tl_probs_from_lse_f64(p + r * BC, nc, lse[i0 + r])
            # dv_blk += p^T @ dout_blk                                  (nc, ev)
            _gemm(c'T', c'N', <int>nc, ev, <int>nr, 1, p, BC, dout + i0 * ev, ev, 1,
                  dv + j0 * ev, ev)
            # dp = dout_blk @ v_blk^T                                   (nr, nc)
            _gemm(c'N', c'T', <int>nr, <int>nc, ev, 1, dout + i0 * ev, ev, v + j0 * ev, ev, 0,
                  dp, BC)
            for r in range(nr):                 # ds = p * (dp - delta), into dp
                if real is float:
                    tl_dsoftmax_row_f32(p + r * BC, dp + r * BC, nc, delta[r])
                else:
                    tl_dsoftmax_row_f64(p + r * BC, dp + r * BC, nc, delta[r])
            # dq_blk += scale * ds @ k_blk;  dk_blk += scale * ds^T @ q_blk
            _gemm(c'N', c'N', <int>nr, e, <int>nc, scale, dp, BC, k + j0 * e, e, 1,
                  dq + i0 * e, e)
            _gemm(c'T', c'N', <int>nc, e, <int>nr, scale, dp, BC, q + i0 * e, e, 1,
                  dk + j0 * e, e)


cdef int _head_threads(Py_ssize_t bh, Py_ssize_t n_q, Py_ssize_t n_k,
                      Py_ssize_t e) noexcept nogil:
    """Threads for bh heads of n_q x n_k x e multiply-adds each: one head per thread at most."""
    if bh < 2:
        return 1
    return min(_threads(<double>bh * n_q * n_k * e * TL_NS_PER_MULADD), <int>bh)


def _forward(const real[:, :, ::1] q, const real[:, :, :] k, const real[:, :, :] v,
             const unsigned char[:, :, :] mask, double scale, bint causal):
    """out (BH, L, Ev) and lse (BH, L) of attention on folded heads: q contiguous, each head
    of k and v contiguous (`_heads`), the heads any distance apart."""
    cdef Py_ssize_t bh = q.shape[0], n_q = q.shape[1], n_k = k.shape[1], h
    cdef int e = <int>q.shape[2], ev = <int>v.shape[2]
    dtype = np.float32 if real is float else np.float64
    out_a, lse_a = np.empty((bh, n_q, ev), dtype), np.empty((bh, n_q), dtype)
    cdef real[:, :, ::1] out = out_a
    cdef real[:, ::1] lse = lse_a
    cdef real *s
    cdef real *m
    cdef real *l
    cdef int nt = _head_threads(bh, n_q, n_k, e)
    if bh == 0 or n_q == 0:
        return out_a, lse_a
    if n_k == 0:
        out_a[...] = 0
        lse_a[...] = np.inf
        return out_a, lse_a
    with nogil, parallel(num_threads=nt):
        s = <real *>malloc(BR * BC * sizeof(real))
        m = <real *>malloc(BR * sizeof(real))
        l = <real *>malloc(BR * sizeof(real))
        for h in prange(bh, schedule="dynamic"):
            _forward_head(&q[h, 0, 0], &k[h, 0, 0], &v[h, 0, 0], &out[h, 0, 0], &lse[h, 0],
                          n_q, n_k, e, ev, <real>scale, causal, mask, h, s, m, l)
        free(s)
        free(m)
        free(l)
    return out_a, lse_a


def _backward(const real[:, :, ::1] q, const real[:, :, ::1] k, const real[:, :, ::1] v,
              const real[:, :, ::1] out, const real[:, :, ::1] dout, const real[:, ::1] lse,
              const unsigned char[:, :, :] mask, double scale, bint causal):
    """dq, dk, dv of _forward, recomputing the probabilities from lse."""
    cdef Py_ssize_t bh = q.shape[0], n_q = q.shape[1], n_k = k.shape[1], h
    cdef int e = <int>q.shape[2], ev = <int>v.shape[2]
    dtype = np.float32 if real is float else np.float64
    dq_a, dk_a, dv_a = (np.empty((bh, n_q, e), dtype), np.empty((bh, n_k, e), dtype),
                        np.empty((bh, n_k, ev), dtype))
    cdef real[:, :, ::1] dq = dq_a, dk = dk_a, dv = dv_a
    cdef real *p
    cdef real *dp
    cdef real *delta
    cdef int nt = _head_threads(bh, n_q, n_k, e)
    if bh == 0 or n_q == 0 or n_k == 0:
        dq_a[...] = 0
        dk_a[...] = 0
        dv_a[...] = 0
        return dq_a, dk_a, dv_a
    with nogil, parallel(num_threads=nt):
        p = <real *>malloc(BR * BC * sizeof(real))
        dp = <real *>malloc(BR * BC * sizeof(real))
        delta = <real *>malloc(BR * sizeof(real))
        for h in prange(bh, schedule="dynamic"):
            _backward_head(&q[h, 0, 0], &k[h, 0, 0], &v[h, 0, 0], &out[h, 0, 0],
                           &dout[h, 0, 0], &lse[h, 0], &dq[h, 0, 0], &dk[h, 0, 0],
                           &dv[h, 0, 0], n_q, n_k, e, ev, <real>scale, causal, mask, h,
                           p, dp, delta)
        free(p)
        free(dp)
        free(delta)
    return dq_a, dk_a, dv_a


class FlashCache(NamedTuple):
    """What this kernel's backward needs: inputs, output and per-row log-sum-exp."""

    q: np.ndarray               # (BH, L, E), contiguous
    k: np.ndarray               # (BH, S, E)
    v: np.ndarray               # (BH, S, Ev)
    out: np.ndarray             # (BH, L, Ev)
    lse: np.ndarray             # (BH, L), +inf for a query that sees no key
    mask: np.ndarray | None     # (BH, L, S) uint8 view (may broadcast), or None
    scale: float
    is_causal: bool
    batch: tuple                # the batch dims `...` to restore


@cython.wraparound(True)  # Python-level code: negative indices mean what they say
def supports(q, k, v, mask, dropout_p) -> bool:
    """Whether attention_forward handles these inputs (see the module doc for what it does not)."""
    if dropout_p > 0.0 or q.dtype not in (np.float32, np.float64):
        return False
    if not q.dtype == k.dtype == v.dtype or q.ndim < 2 or not q.ndim == k.ndim == v.ndim:
        return False
    if not q.shape[:-2] == k.shape[:-2] == v.shape[:-2]:
        return False
    return mask is None or mask.dtype == np.bool_


@cython.wraparound(True)  # Python-level code: negative indices mean what they say
def _heads(x):
    """x (..., S, E) folded to (BH, S, E) without a copy where each head's (S, E) block is
    contiguous -- as in a KV cache's buffer, whose heads are `capacity` rows apart --, else
    copied."""
    x3 = x.reshape(-1, x.shape[-2], x.shape[-1])
    size = x3.itemsize
    if x3.strides[2] == size and (x3.strides[1] == x3.shape[2] * size or x3.shape[1] == 1):
        return x3
    return np.ascontiguousarray(x3)


@cython.wraparound(True)  # Python-level code: negative indices mean what they say
def attention_forward(q, k, v, mask=None, scale=None, is_causal=False):
    """out = softmax(scale * q @ k^T, masked) @ v; returns (out, cache). See the module doc."""
    if not supports(q, k, v, mask, 0.0):
        raise ValueError(
            f"attention_forward: this kernel takes float32/float64 q, k, v of one dtype and one "
            f"batch shape and a boolean mask or none; got q {q.dtype} {q.shape}, k {k.dtype} "
            f"{k.shape}, v {v.dtype} {v.shape}, mask {None if mask is None else mask.dtype} "
            "(tinyllm.kernels.attention_forward sends other inputs to the NumPy pair)")
    if scale is None:
        scale = 1.0 / np.sqrt(q.shape[-1])
    batch, n_q, n_k = q.shape[:-2], q.shape[-2], k.shape[-2]
    q3 = np.ascontiguousarray(q).reshape(-1, n_q, q.shape[-1])
    k3, v3 = _heads(k), _heads(v)
    mask3 = None
    if mask is not None:
        mask3 = np.broadcast_to(mask, (*batch, n_q, n_k)).reshape(-1, n_q, n_k).view(np.uint8)
    out, lse = _forward(q3, k3, v3, mask3, float(scale), bool(is_causal))
    cache = FlashCache(q3, k3, v3, out, lse, mask3, float(scale), bool(is_causal), batch)
    return out.reshape(*batch, n_q, v.shape[-1]), cache


@cython.wraparound(True)  # Python-level code: negative indices mean what they say
def attention_backward(dout, cache):
    """(dq, dk, dv, dscores) of attention_forward; dscores is None for this kernel's cache."""
    if not isinstance(cache, FlashCache):
        raise TypeError(f"attention_backward: expected this kernel's FlashCache, got "
                        f"{type(cache).__name__} (the NumPy pair's caches go to its own backward)")
    q3, k3, v3, out, lse, mask3, scale, causal, batch = cache
    k3, v3 = np.ascontiguousarray(k3), np.ascontiguousarray(v3)
    d3 = np.ascontiguousarray(dout, dtype=q3.dtype).reshape(out.shape)
    dq, dk, dv = _backward(q3, k3, v3, out, d3, lse, mask3, scale, causal)
    return (dq.reshape(*batch, *q3.shape[1:]), dk.reshape(*batch, *k3.shape[1:]),
            dv.reshape(*batch, *v3.shape[1:]), None)
