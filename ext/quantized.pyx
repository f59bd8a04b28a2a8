"""Linear layers with quantized weights for a few input rows, as generation makes them:
y = x W^T + b with W read as int8 or packed 4-bit.

The compiled twin of `quantized_linear` in tinyllm/kernels/reference.py, which dequantizes W
and calls BLAS. Here no float copy of W is made: each output feature's row of integers is
read once per input row and converted in registers (quantized_rows.h), so at batch 1 the
layer reads 1 byte (int8) or about half a byte (4-bit) per weight instead of 4. For many
input rows BLAS on the dequantized matrix is faster; `tinyllm.kernels` sends those to the
twin (see QUANTIZED_KERNEL_MAX_ROWS there).

    quantized_linear(x (N, in), qweight, scale, group_size, bias | None) -> y (N, out)
      int8:  qweight int8 (out, in), scale (1,) or (out,)        group_size 0
      int4:  qweight uint8 (out, in / 2), scale (out, in / g)    group_size g (even);
             in each group, byte j holds input j (low nibble) and j + g/2 (high), + 8

x, scale and bias are C-contiguous float32 or float64 of one dtype (the scales converted by
the caller); the output has x's dtype. Output features are split over threads when
parallel.h's rule says the call is long enough. Four output features are computed together
(one load of each input for all four, four independent sums); for float32 inputs, with
AVX-512 or AVX2 intrinsics where the CPU has them (quantized_simd.h).
"""

import numpy as np

from cython.parallel cimport prange
from libc.stdint cimport int8_t, uint8_t

include "parallel.pxi"

cdef extern from "quantized_rows.h" nogil:
    float tl_q8_dot_f32(const float *x, const int8_t *q, Py_ssize_t n)
    double tl_q8_dot_f64(const double *x, const int8_t *q, Py_ssize_t n)
    void tl_q8_dots_f32(const float *x, const int8_t *q, Py_ssize_t ld, Py_ssize_t n,
                        float *out)
    void tl_q8_dots_f64(const double *x, const int8_t *q, Py_ssize_t ld, Py_ssize_t n,
                        double *out)
    float tl_q4_dot_f32(const float *x, const uint8_t *p, const float *s, Py_ssize_t n,
                        Py_ssize_t g)
    double tl_q4_dot_f64(const double *x, const uint8_t *p, const double *s, Py_ssize_t n,
                         Py_ssize_t g)
    void tl_q4_dots_f32(const float *x, const uint8_t *p, Py_ssize_t ld, const float *s,
                        Py_ssize_t ls, Py_ssize_t n, Py_ssize_t g, float *out)
    void tl_q4_dots_f64(const double *x, const uint8_t *p, Py_ssize_t ld, const double *s,
                        Py_ssize_t ls, Py_ssize_t n, Py_ssize_t g, double *out)

cdef extern from "quantized_simd.h" nogil:
    void tl_q8_dots4(const float *x, const int8_t *q, Py_ssize_t ld, Py_ssize_t n, float *out)
    void tl_q4_dots4(const float *x, const uint8_t *p, Py_ssize_t ld, const float *s,
                     Py_ssize_t ls, Py_ssize_t n, Py_ssize_t g, float *out)
    int tl_qsimd_level()
    int tl_qsimd_set_level(int level)

cdef enum:
    ROWS = 4    # output features per call of the *_dots functions

ctypedef fused real:
    float
    double


def _int8(const real[:, ::1] x, const int8_t[:, ::1] q, const real[::1] scale, bias):
    cdef Py_ssize_t n_rows = x.shape[0], n_in = x.shape[1], n_out = q.shape[0], blk, o, r, k
    cdef Py_ssize_t n_blocks = (n_out + ROWS - 1) // ROWS
    cdef bint per_row = scale.shape[0] > 1
    out = np.empty((n_rows, n_out), dtype=np.float32 if real is float else np.float64)
    cdef real[:, ::1] y = out
    cdef real[::1] b
    cdef bint has_bias = bias is not None
    if has_bias:
        b = bias
    cdef int nt = _threads(<double>n_rows * n_out * n_in * TL_NS_PER_QMULADD)
    if n_rows == 0 or n_out == 0:
        return out
    for blk in prange(n_blocks, nogil=True, schedule="static", num_threads=nt):
        o = blk * ROWS
        for r in range(n_rows):
            if o + ROWS <= n_out:
                if real is float:
                    tl_q8_dots4(&x[r, 0], &q[o, 0], n_in, n_in, &y[r, o])
                else:
                    tl_q8_dots_f64(&x[r, 0], &q[o, 0], n_in, n_in, &y[r, o])
            else:
                for k in range(n_out - o):
                    if real is float:
                        y[r, o + k] = tl_q8_dot_f32(&x[r, 0], &q[o + k, 0], n_in)
                    else:
                        y[r, o + k] = tl_q8_dot_f64(&x[r, 0], &q[o + k, 0], n_in)
            for k in range(min(ROWS, n_out - o)):
                y[r, o + k] = y[r, o + k] * (scale[o + k] if per_row else scale[0]) \
                    + (b[o + k] if has_bias else 0)
    return out


def _int4(const real[:, ::1] x, const uint8_t[:, ::1] p, const real[:, ::1] scale,
          Py_ssize_t group_size, bias):
    cdef Py_ssize_t n_rows = x.shape[0], n_in = x.shape[1], n_out = p.shape[0], blk, o, r, k
    cdef Py_ssize_t n_blocks = (n_out + ROWS - 1) // ROWS, ld = p.shape[1]
    cdef Py_ssize_t ls = scale.shape[1]
    out = np.empty((n_rows, n_out), dtype=np.float32 if real is float else np.float64)
    cdef real[:, ::1] y = out
    cdef real[::1] b
    cdef bint has_bias = bias is not None
    if has_bias:
        b = bias
    cdef int nt = _threads(<double>n_rows * n_out * n_in * TL_NS_PER_QMULADD)
    if n_rows == 0 or n_out == 0:
        return out
    for blk in prange(n_blocks, nogil=True, schedule="static", num_threads=nt):
        o = blk * ROWS
        for r in range(n_rows):
            if o + ROWS <= n_out:
                if real is float:
                    tl_q4_dots4(&x[r, 0], &p[o, 0], ld, &scale[o, 0], ls, n_in, group_size,
                                &y[r, o])
                else:
                    tl_q4_dots_f64(&x[r, 0], &p[o, 0], ld, &scale[o, 0], ls, n_in, group_size,
                                   &y[r, o])
            else:
                for k in range(n_out - o):
                    if real is float:
                        y[r, o + k] = tl_q4_dot_f32(&x[r, 0], &p[o + k, 0], &scale[o + k, 0],
                                                    n_in, group_size)
                    else:
                        y[r, o + k] = tl_q4_dot_f64(&x[r, 0], &p[o + k, 0], &scale[o + k, 0],
                                                    n_in, group_size)
            if has_bias:
                for k in range(min(ROWS, n_out - o)):
                    y[r, o + k] = y[r, o + k] + b[o + k]
    return out


def simd_level():
    """The instruction set the float32 products use: 2 AVX-512, 1 AVX2+FMA, 0 portable C."""
    return tl_qsimd_level()


def _set_simd_level(int level):
    """Use at most `level` from now on (tests run every level the CPU has); returns the level
    in use."""
    return tl_qsimd_set_level(level)


def quantized_linear(x, qweight, scale, group_size, bias=None):
    """y (N, out) = x (N, in) @ W^T + bias, W stored as described in the module doc."""
    if group_size:
        return _int4(x, qweight, scale, group_size, bias)
    return _int8(x, qweight, scale, bias)
