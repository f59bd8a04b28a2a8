"""Optimizer steps in one pass: `adam_update`, the compiled twin of the NumPy Adam(W) update in
tinyllm/kernels/reference.py (whose docstring has the equations; adam_rows.h has the loop).

The twin evaluates the update as about ten whole-array NumPy operations, each a pass through
memory with a temporary; here each element of p, g, m and v is read once and written once,
and stretches of the parameter are split over OpenMP threads when parallel.h's rule says the
call is long enough. The same operations in the same precision: the same bits as the twin.

This module imports nothing from the tinyllm package.
"""

import numpy as np

from cython.parallel cimport prange

include "parallel.pxi"

cdef extern from "adam_rows.h" nogil:
    ctypedef struct tl_adam_consts_f32:
        float decay, l2, w1, one_minus_w1, beta2, w2, sqrt_bc2, eps, step_size
        int lerp_low, maximize, amsgrad
    ctypedef struct tl_adam_consts_f64:
        double decay, l2, w1, one_minus_w1, beta2, w2, sqrt_bc2, eps, step_size
        int lerp_low, maximize, amsgrad
    void tl_adam_step_f32(float *p, const float *g, float *m, float *v, float *vmax,
                          Py_ssize_t n, const tl_adam_consts_f32 *c)
    void tl_adam_step_f64(double *p, const double *g, double *m, double *v, double *vmax,
                          Py_ssize_t n, const tl_adam_consts_f64 *c)

cdef enum:
    CHUNK = 16384       # elements per stretch a thread takes at a time
    NS_PER_ELEMENT = 1  # one element's update: ~1 ns on one thread (10 flops, sqrt, divide)

ctypedef fused real:
    float
    double


def _step(real[::1] p, const real[::1] g, real[::1] m, real[::1] v, real[::1] vmax,
          tuple consts, bint lerp_low, bint maximize):
    cdef Py_ssize_t n = p.shape[0], chunks = (n + CHUNK - 1) // CHUNK, i, s0
    cdef int nt = _threads(<double>n * NS_PER_ELEMENT)
    cdef real *pm = NULL
    cdef tl_adam_consts_f32 c32
    cdef tl_adam_consts_f64 c64
    cdef bint ams = vmax is not None
    if ams:
        pm = &vmax[0]
    if real is float:
        (c32.decay, c32.l2, c32.w1, c32.one_minus_w1, c32.beta2, c32.w2, c32.sqrt_bc2, c32.eps,
         c32.step_size) = consts
        c32.lerp_low, c32.maximize, c32.amsgrad = lerp_low, maximize, ams
    else:
        (c64.decay, c64.l2, c64.w1, c64.one_minus_w1, c64.beta2, c64.w2, c64.sqrt_bc2, c64.eps,
         c64.step_size) = consts
        c64.lerp_low, c64.maximize, c64.amsgrad = lerp_low, maximize, ams
    for i in prange(chunks, nogil=True, schedule="static", num_threads=nt):
        s0 = i * CHUNK
        if real is float:
            tl_adam_step_f32(&p[s0], &g[s0], &m[s0], &v[s0], pm + s0 if ams else NULL,
                             min(<Py_ssize_t>CHUNK, n - s0), &c32)
        else:
            tl_adam_step_f64(&p[s0], &g[s0], &m[s0], &v[s0], pm + s0 if ams else NULL,
                             min(<Py_ssize_t>CHUNK, n - s0), &c64)


def adam_update(p, g, m, v, vmax, consts, bint lerp_low, bint maximize):
    """One Adam(W) step in place on flat, C-contiguous p, m, v (and vmax or None) of one
    dtype, from g; `consts` is the 9-tuple of adam_rows.h (already in p's precision)."""
    if p.size == 0:
        return
    _step(p, g, m, v, vmax, consts, lerp_low, maximize)
