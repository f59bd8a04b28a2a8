"""Fused elementwise and row kernels: GELU and LayerNorm, forward and backward.

The compiled twins of the functions of the same names in kernels/reference.py. Every function
takes C-contiguous arrays of one dtype, float32 or float64; `tinyllm.kernels` checks and
reshapes inputs before calling here, so use it rather than this module.

    gelu_forward(x (n,), tanh) -> y (n,)
    gelu_backward(x (n,), dy (n,), tanh) -> dx (n,)
    layer_norm_forward(x (N, D), w (D,) | None, b (D,) | None, eps) -> y (N, D), mean (N,), rstd (N,)
    layer_norm_backward(x, dy, mean, rstd, w | None) -> dx (N, D), dw (D,), db (D,)

The loops are in fused_rows.h (C, for the SIMD pragmas and multi-versioning); this file
splits the work into chunks and spreads them over threads when parallel.h's rule says
there is enough of it.
"""

import numpy as np

from cython.parallel cimport prange

include "parallel.pxi"

cdef extern from "fused_rows.h" nogil:
    void tl_gelu_tanh_fwd_f32(const float *x, float *y, Py_ssize_t n)
    void tl_gelu_tanh_fwd_f64(const double *x, double *y, Py_ssize_t n)
    void tl_gelu_tanh_bwd_f32(const float *x, const float *dy, float *dx, Py_ssize_t n)
    void tl_gelu_tanh_bwd_f64(const double *x, const double *dy, double *dx, Py_ssize_t n)
    void tl_gelu_erf_fwd_f32(const float *x, float *y, Py_ssize_t n)
    void tl_gelu_erf_fwd_f64(const double *x, double *y, Py_ssize_t n)
    void tl_gelu_erf_bwd_f32(const float *x, const float *dy, float *dx, Py_ssize_t n)
    void tl_gelu_erf_bwd_f64(const double *x, const double *dy, double *dx, Py_ssize_t n)
    void tl_layer_norm_fwd_f32(const float *x, const float *w, const float *b, float *y,
                               float *mean, float *rstd, Py_ssize_t d, double eps)
    void tl_layer_norm_fwd_f64(const double *x, const double *w, const double *b, double *y,
                               double *mean, double *rstd, Py_ssize_t d, double eps)
    void tl_layer_norm_bwd_f32(const float *x, const float *dy, const float *w, float mean,
                               float rstd, float *dx, float *dw, float *db, Py_ssize_t d)
    void tl_layer_norm_bwd_f64(const double *x, const double *dy, const double *w, double mean,
                               double rstd, double *dx, double *dw, double *db, Py_ssize_t d)

cdef enum:
    LN_GROUP = 64       # rows whose LayerNorm dw, db one partial sum holds

ctypedef fused real:
    float
    double

def gelu_forward(const real[::1] x, bint tanh):
    """GELU of every element: the tanh form when `tanh`, else the exact (erf) form."""
    cdef Py_ssize_t n = x.shape[0]
    out = np.empty(n, dtype=np.float32 if real is float else np.float64)
    cdef real[::1] y = out
    cdef int nt = _threads(n * TL_NS_PER_ELEMENT)
    cdef Py_ssize_t c, lo, hi, chunk = (n + nt - 1) // nt if n else 0
    if n == 0:
        return out
    for c in prange(nt, nogil=True, schedule="static", num_threads=nt):
        lo = c * chunk
        hi = min(n, lo + chunk)
        if lo >= hi:
            continue
        if real is float:
            if tanh:
                tl_gelu_tanh_fwd_f32(&x[lo], &y[lo], hi - lo)
            else:
                tl_gelu_erf_fwd_f32(&x[lo], &y[lo], hi - lo)
        else:
            if tanh:
                tl_gelu_tanh_fwd_f64(&x[lo], &y[lo], hi - lo)
            else:
                tl_gelu_erf_fwd_f64(&x[lo], &y[lo], hi - lo)
    return out


def gelu_backward(const real[::1] x, const real[::1] dy, bint tanh):
    """dL/dx of GELU given the forward's input x and dL/dy (same length)."""
    cdef Py_ssize_t n = x.shape[0]
    if dy.shape[0] != n:
        raise ValueError(f"gelu_backward: x and dy differ in size ({n} and {dy.shape[0]})")
    out = np.empty(n, dtype=np.float32 if real is float else np.float64)
    cdef real[::1] dx = out
    cdef int nt = _threads(n * TL_NS_PER_ELEMENT)
    cdef Py_ssize_t c, lo, hi, chunk = (n + nt - 1) // nt if n else 0
    if n == 0:
        return out
    for c in prange(nt, nogil=True, schedule="static", num_threads=nt):
        lo = c * chunk
        hi = min(n, lo + chunk)
        if lo >= hi:
            continue
        if real is float:
            if tanh:
                tl_gelu_tanh_bwd_f32(&x[lo], &dy[lo], &dx[lo], hi - lo)
            else:
                tl_gelu_erf_bwd_f32(&x[lo], &dy[lo], &dx[lo], hi - lo)
        else:
            if tanh:
                tl_gelu_tanh_bwd_f64(&x[lo], &dy[lo], &dx[lo], hi - lo)
            else:
                tl_gelu_erf_bwd_f64(&x[lo], &dy[lo], &dx[lo], hi - lo)
    return out


def layer_norm_forward(const real[:, ::1] x, const real[::1] w, const real[::1] b, double eps):
    """Normalise each row of x (N, D), scale by w and shift by b (either may be None)."""
    cdef Py_ssize_t i, n = x.shape[0], d = x.shape[1]
    cdef int nt = _threads(n * d * TL_NS_PER_ELEMENT)
    dtype = np.float32 if real is float else np.float64
    out, mean_a, rstd_a = np.empty((n, d), dtype=dtype), np.empty(n, dtype), np.empty(n, dtype)
    cdef real[:, ::1] y = out
    cdef real[::1] mean = mean_a, rstd = rstd_a
    cdef const real *wp = &w[0] if w is not None else NULL
    cdef const real *bp = &b[0] if b is not None else NULL
    if (w is not None and w.shape[0] != d) or (b is not None and b.shape[0] != d):
        raise ValueError(f"layer_norm_forward: weight/bias must have {d} elements")
    if d == 0:
        return out, mean_a, rstd_a
    for i in prange(n, nogil=True, schedule="static", num_threads=nt):
        if real is float:
            tl_layer_norm_fwd_f32(&x[i, 0], wp, bp, &y[i, 0], &mean[i], &rstd[i], d, eps)
        else:
            tl_layer_norm_fwd_f64(&x[i, 0], wp, bp, &y[i, 0], &mean[i], &rstd[i], d, eps)
    return out, mean_a, rstd_a


def layer_norm_backward(const real[:, ::1] x, const real[:, ::1] dy, const real[::1] mean,
                        const real[::1] rstd, const real[::1] w):
    """(dx, dw, db) of layer_norm_forward; w may be None (then dw is still returned)."""
    cdef Py_ssize_t n = x.shape[0], d = x.shape[1]
    if dy.shape[0] != n or dy.shape[1] != d or mean.shape[0] != n or rstd.shape[0] != n:
        raise ValueError("layer_norm_backward: x, dy, mean and rstd disagree in shape")
    dtype = np.float32 if real is float else np.float64
    cdef int nt = _threads(n * d * TL_NS_PER_ELEMENT)
    out = np.empty((n, d), dtype=dtype)
    # dw and db are sums over rows. Each group of LN_GROUP rows sums into its own row of
    # these (no races), and the groups' sums are added in order afterwards: the groups depend
    # on n alone, so the result does not depend on the number of threads.
    cdef Py_ssize_t groups = max(1, (n + LN_GROUP - 1) // LN_GROUP)
    partial_w, partial_b = np.zeros((groups, d), dtype), np.zeros((groups, d), dtype)
    cdef real[:, ::1] dx = out, pw = partial_w, pb = partial_b
    cdef const real *wp = &w[0] if w is not None else NULL
    cdef Py_ssize_t c, i, lo, hi
    if n == 0 or d == 0:
        return out, np.zeros(d, dtype), np.zeros(d, dtype)
    for c in prange(groups, nogil=True, schedule="static", num_threads=nt):
        lo = c * LN_GROUP
        hi = min(n, lo + LN_GROUP)
        for i in range(lo, hi):
            if real is float:
                tl_layer_norm_bwd_f32(&x[i, 0], &dy[i, 0], wp, mean[i], rstd[i], &dx[i, 0],
                                      &pw[c, 0], &pb[c, 0], d)
            else:
                tl_layer_norm_bwd_f64(&x[i, 0], &dy[i, 0], wp, mean[i], rstd[i], &dx[i, 0],
                                      &pw[c, 0], &pb[c, 0], d)
    return out, partial_w.sum(axis=0), partial_b.sum(axis=0)
