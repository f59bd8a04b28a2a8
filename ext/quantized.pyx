"""Linear layers with quantized weights: y = x W^T + b, W read as int8 or packed 4-bit.

The compiled twin of `quantized_linear` in tinyllm/kernels/reference.py, which dequantizes W
and calls BLAS. Here no float copy of W is made: each output feature's row of integers is
read once per input row and converted in registers (quantized_rows.h), so at batch 1 the
layer reads 1 byte (int8) or about half a byte (4-bit) per weight instead of 4. For many
input rows BLAS on the dequantized matrix is faster; `tinyllm.kernels` sends those to the
twin (see QUANTIZED_KERNEL_MAX_ROWS there).

    quantized_linear(x (N, in), qweight, scale, group_size, bias | None) -> y (N, out)
      int8:  qweight int8 (out, in), scale (1,) or (out,)        group_size 0
      int4:  qweight uint8 (out, in / 2), scale (out, in / g)    group_size g (even)

x, scale and bias are C-contiguous float32 or float64 of one dtype (the scales converted by
the caller); the output has x's dtype. Output features are split over threads when
parallel.h's rule says the call is long enough.
"""

import numpy as np

from cython.parallel cimport prange
from libc.stdint cimport int8_t, uint8_t

include "parallel.pxi"

cdef extern from "quantized_rows.h" nogil:
    float tl_q8_dot_f32(const float *x, const int8_t *q, Py_ssize_t n)
    double tl_q8_dot_f64(const double *x, const int8_t *q, Py_ssize_t n)
    float tl_q4_dot_f32(const float *x, const uint8_t *p, const float *s, Py_ssize_t n,
                        Py_ssize_t g)
    double tl_q4_dot_f64(const double *x, const uint8_t *p, const double *s, Py_ssize_t n,
                         Py_ssize_t g)

ctypedef fused real:
    float
    double


def _int8(const real[:, ::1] x, const int8_t[:, ::1] q, const real[::1] scale, bias):
    cdef Py_ssize_t n_rows = x.shape[0], n_in = x.shape[1], n_out = q.shape[0], o, r
    cdef bint per_row = scale.shape[0] > 1
    out = np.empty((n_rows, n_out), dtype=np.float32 if real is float else np.float64)
    cdef real[:, ::1] y = out
    cdef real[::1] b
    cdef bint has_bias = bias is not None
    cdef real s, acc
    if has_bias:
        b = bias
    cdef int nt = _threads(<double>n_rows * n_out * n_in * TL_NS_PER_ELEMENT)
    if n_rows == 0 or n_out == 0:
        return out
    for o in prange(n_out, nogil=True, schedule="static", num_threads=nt):
        s = scale[o] if per_row else scale[0]
        for r in range(n_rows):
            if real is float:
                acc = tl_q8_dot_f32(&x[r, 0], &q[o, 0], n_in)
            else:
                acc = tl_q8_dot_f64(&x[r, 0], &q[o, 0], n_in)
            y[r, o] = acc * s + (b[o] if has_bias else 0)
    return out


def _int4(const real[:, ::1] x, const uint8_t[:, ::1] p, const real[:, ::1] scale,
          Py_ssize_t group_size, bias):
    cdef Py_ssize_t n_rows = x.shape[0], n_in = x.shape[1], n_out = p.shape[0], o, r
    out = np.empty((n_rows, n_out), dtype=np.float32 if real is float else np.float64)
    cdef real[:, ::1] y = out
    cdef real[::1] b
    cdef bint has_bias = bias is not None
    cdef real acc
    if has_bias:
        b = bias
    cdef int nt = _threads(<double>n_rows * n_out * n_in * TL_NS_PER_ELEMENT)
    if n_rows == 0 or n_out == 0:
        return out
    for o in prange(n_out, nogil=True, schedule="static", num_threads=nt):
        for r in range(n_rows):
            if real is float:
                acc = tl_q4_dot_f32(&x[r, 0], &p[o, 0], &scale[o, 0], n_in, group_size)
            else:
                acc = tl_q4_dot_f64(&x[r, 0], &p[o, 0], &scale[o, 0], n_in, group_size)
            y[r, o] = acc + (b[o] if has_bias else 0)
    return out


def quantized_linear(x, qweight, scale, group_size, bias=None):
    """y (N, out) = x (N, in) @ W^T + bias, W stored as described in the module doc."""
    if group_size:
        return _int4(x, qweight, scale, group_size, bias)
    return _int8(x, qweight, scale, bias)
