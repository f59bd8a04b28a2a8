"""Row softmax and log-softmax, forward and backward: the compiled twin of kernels/reference.py.

Shapes: N rows, C columns. Every function takes C-contiguous (N, C) arrays of one dtype,
float32 or float64, works along the last axis and returns a new (N, C) array of that dtype.
`tinyllm.kernels` flattens the leading axes and makes inputs contiguous before calling here;
use it rather than this module.

The per-row loops live in softmax_rows.h (C, so they can carry the SIMD pragmas and the
multi-versioning attribute Cython cannot write); this file spreads rows over threads
(when parallel.h's rule says the batch is large enough).

>>> import numpy as np
>>> softmax_forward(np.zeros((1, 4), dtype=np.float32))
array([[0.25, 0.25, 0.25, 0.25]], dtype=float32)
"""

import numpy as np

from cython.parallel cimport prange

include "parallel.pxi"

cdef extern from "softmax_rows.h" nogil:
    void tl_softmax_fwd_f32(const float *x, float *y, Py_ssize_t n)
    void tl_softmax_fwd_f64(const double *x, double *y, Py_ssize_t n)
    void tl_softmax_bwd_f32(const float *y, const float *dy, float *dx, Py_ssize_t n)
    void tl_softmax_bwd_f64(const double *y, const double *dy, double *dx, Py_ssize_t n)
    void tl_log_softmax_fwd_f32(const float *x, float *y, Py_ssize_t n)
    void tl_log_softmax_fwd_f64(const double *x, double *y, Py_ssize_t n)
    void tl_log_softmax_bwd_f32(const float *y, const float *dy, float *dx, Py_ssize_t n)
    void tl_log_softmax_bwd_f64(const double *y, const double *dy, double *dx, Py_ssize_t n)

ctypedef fused real:
    float
    double

cdef object _new_like(const real[:, ::1] x):
    return np.empty((x.shape[0], x.shape[1]), dtype=np.float32 if real is float else np.float64)


cdef int _check_pair(const real[:, ::1] y, const real[:, ::1] dy) except -1:
    if y.shape[0] != dy.shape[0] or y.shape[1] != dy.shape[1]:
        raise ValueError(f"y and dy must have the same shape, got {(y.shape[0], y.shape[1])} "
                         f"and {(dy.shape[0], dy.shape[1])}")
    return 0


def softmax_forward(const real[:, ::1] x):
    """y = exp(x - max x) / sum exp(x - max x) for each row of an (N, C) array."""
    out = _new_like(x)
    cdef real[:, ::1] y = out                                 # (N, C)
    cdef Py_ssize_t i, rows = x.shape[0], cols = x.shape[1]
    cdef int nt = _threads(rows * cols * TL_NS_PER_ELEMENT)
    if cols == 0:
        return out
    for i in prange(rows, nogil=True, schedule="static", num_threads=nt):
        if real is float:
            tl_softmax_fwd_f32(&x[i, 0], &y[i, 0], cols)
        else:
            tl_softmax_fwd_f64(&x[i, 0], &y[i, 0], cols)
    return out


def softmax_backward(const real[:, ::1] y, const real[:, ::1] dy):
    """dx = y * (dy - sum(dy * y)) for each row; y is softmax_forward's output."""
    _check_pair(y, dy)
    out = _new_like(y)
    cdef real[:, ::1] dx = out                                # (N, C)
    cdef Py_ssize_t i, rows = y.shape[0], cols = y.shape[1]
    cdef int nt = _threads(rows * cols * TL_NS_PER_ELEMENT)
    if cols == 0:
        return out
    for i in prange(rows, nogil=True, schedule="static", num_threads=nt):
        if real is float:
            tl_softmax_bwd_f32(&y[i, 0], &dy[i, 0], &dx[i, 0], cols)
        else:
            tl_softmax_bwd_f64(&y[i, 0], &dy[i, 0], &dx[i, 0], cols)
    return out


def log_softmax_forward(const real[:, ::1] x):
    """y = (x - max x) - log(sum exp(x - max x)) for each row of an (N, C) array."""
    out = _new_like(x)
    cdef real[:, ::1] y = out                                 # (N, C)
    cdef Py_ssize_t i, rows = x.shape[0], cols = x.shape[1]
    cdef int nt = _threads(rows * cols * TL_NS_PER_ELEMENT)
    if cols == 0:
        return out
    for i in prange(rows, nogil=True, schedule="static", num_threads=nt):
        if real is float:
            tl_log_softmax_fwd_f32(&x[i, 0], &y[i, 0], cols)
        else:
            tl_log_softmax_fwd_f64(&x[i, 0], &y[i, 0], cols)
    return out


def log_softmax_backward(const real[:, ::1] y, const real[:, ::1] dy):
    """dx = dy - exp(y) * sum(dy) for each row; y is log_softmax_forward's output."""
    _check_pair(y, dy)
    out = _new_like(y)
    cdef real[:, ::1] dx = out                                # (N, C)
    cdef Py_ssize_t i, rows = y.shape[0], cols = y.shape[1]
    cdef int nt = _threads(rows * cols * TL_NS_PER_ELEMENT)
    if cols == 0:
        return out
    for i in prange(rows, nogil=True, schedule="static", num_threads=nt):
        if real is float:
            tl_log_softmax_bwd_f32(&y[i, 0], &dy[i, 0], &dx[i, 0], cols)
        else:
            tl_log_softmax_bwd_f64(&y[i, 0], &dy[i, 0], &dx[i, 0], cols)
    return out
