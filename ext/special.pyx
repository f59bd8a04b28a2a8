# cython: language_level=3
"""Special functions the NumPy twin has to build from series: erf (for exact GELU).

C99's libm `erf` is accurate to an ulp or two; NumPy has no vectorised erf, so the twin in
reference.py sums a Taylor series and a continued fraction, ~60 array passes. Here it is one.
"""

import numpy as np

cimport cython
from cython.parallel cimport prange
from libc.math cimport erf as c_erf

include "parallel.pxi"


@cython.boundscheck(False)
@cython.wraparound(False)
def erf(x):
    """erf of every element of a float32 or float64 array (computed in double precision)."""
    x = np.asarray(x)
    if x.dtype != np.float32 and x.dtype != np.float64:
        raise TypeError(f"erf: expected a float32 or float64 array, got dtype {x.dtype}")
    flat = np.ascontiguousarray(x).reshape(-1)
    out = np.empty_like(flat)
    cdef Py_ssize_t i, n = flat.shape[0]
    cdef int nt = _threads(n * TL_NS_PER_ERF)
    cdef float[::1] x32, o32
    cdef double[::1] x64, o64
    if flat.dtype == np.float32:
        x32, o32 = flat, out
        for i in prange(n, nogil=True, schedule="static", num_threads=nt):
            o32[i] = <float>c_erf(<double>x32[i])
    else:
        x64, o64 = flat, out
        for i in prange(n, nogil=True, schedule="static", num_threads=nt):
            o64[i] = c_erf(x64[i])
    return out.reshape(x.shape)
