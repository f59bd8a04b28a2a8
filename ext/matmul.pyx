"""Matrix products on tinyllm's own threads: c (M, N) = a (M, K) @ b (K, N), float32 or float64.

The compiled twin of `matmul` in tinyllm/kernels/reference.py (NumPy's ``a @ b``); every
linear layer's forward and backward products go through it.

    matmul(a, b, bias)      BLAS, one block of rows per OpenMP thread (a product with few
                            rows: of its transpose); each thread writes its block's bias
                            first, BLAS adds the product
    few_rows_matmul(x, w)   1..32 float32 rows of a C-contiguous weight: few_rows.h

Why not NumPy's ``a @ b`` on BLAS threads: a training step alternates matrix products with the
compiled row and attention kernels, which run on OpenMP threads, and two thread pools on the
same cores fight -- after each product OpenBLAS's idle workers spin on the cores the next
OpenMP region wants, and OpenMP's idle workers spin while OpenBLAS works. Measured on 2 cores:
the `base` GPT training step got *slower* with the second core (471 -> 576 ms). Here one pool
does both: the product is cut into one block of output rows per OpenMP thread, and each
thread calls single-threaded BLAS on its block.

One block per thread, each one BLAS call: fewer, larger calls are faster (measured, one
thread, (1536, 320) @ (320, 960): 10.9 ms whole, 13.8 ms in blocks of 192 rows).

The result does not depend on the thread count. BLAS computes each output element as a sum
over K in an order that does not depend on where the element's block starts -- provided the
blocks start where BLAS's own tiling of the whole product would (OpenBLAS's float32 and
float64 kernels tile by 16 and 24 rows) and the product stays out of OpenBLAS's kernels for
small products (up to 100^3 multiply-adds), which round differently. So blocks are whole
multiples of 48 rows, never smaller than 128^3 multiply-adds, and a product small enough to
stay whole on one thread stays whole on any number. Measured with OpenBLAS 0.3's Haswell and
SkylakeX kernels (OPENBLAS_CORETYPE), 900 random products each (rows 40-1600, both dtypes,
three layouts), 1 and 2 threads: blocks of multiples of 48 or 96 rows gave the same bits,
of 32 or 64 rows other bits in a quarter to a third of them. 48 rather than 96 balances the
threads better: a 320-wide layer's weight gradient (320 rows) splits 144/176, not 192/128
(GPT `medium` step on 2 threads: ~500 -> ~480 ms). Where rows are too few to share (fewer
than 96: the weight gradient of a narrow layer), a float32 product is computed as its
transpose, whose rows are its columns (`_few_rows_product`); float64 ones stay whole.
Cutting by columns is not safe: BLAS's column blocks need not keep the whole product's bits
(OpenBLAS's Haswell kernels change them). A test keeps checking a few of each kind.

a and b may be C-contiguous or transposed views of C-contiguous arrays (``w.T``): BLAS reads
them in place with its transpose flag. Anything else is copied first.

BLAS comes from scipy.linalg.cython_blas (sgemm/dgemm, called without the GIL). That library
must stay single-threaded, or every OpenMP thread would start BLAS threads of its own:
`tinyllm.kernels.blas` keeps it at one thread. This module imports nothing from tinyllm.

Few rows (generation at a small batch): BLAS's GEMM packs (copies) the whole weight for a
product that reads it once; few_rows.h streams the weight once, in memory order, with AVX-512,
AVX2+FMA or portable C (quantized_simd.h's level, which `_set_simd_level` lowers for tests).
At 1 or 2 rows (decoding at batch 1: the product is a read of the weight) its output columns
are split over threads from parallel.h's TL_STREAM_MIN_NS on: a token's products come one
after another, so the threads are awake and a split pays sooner than the general 0.1 ms
rule allows. Measured (2 cores, 16 cold weights each): one row, 630 us on
one thread, 476 on two over the four GPT `medium` shapes; eight rows, 713 and 799 us -- with
more rows the product is arithmetic, not a read, and a second thread gained nothing.
"""

import numpy as np

cimport numpy as cnp
from cython.parallel cimport prange
from libc.string cimport memcpy
from scipy.linalg.cython_blas cimport dgemm, sgemm

include "parallel.pxi"

cnp.import_array()

cdef extern from "quantized_simd.h" nogil:
    int tl_qsimd_level()
    int tl_qsimd_set_level(int level)

cdef extern from "few_rows.h" nogil:
    void tl_few_rows(const float *x, Py_ssize_t ldx, Py_ssize_t m, const float *w,
                     Py_ssize_t ldw, Py_ssize_t n_in, Py_ssize_t n_out, float *y, Py_ssize_t ldy)
    const int TL_FEW_ROWS_PASS

ctypedef fused real:
    float
    double

cdef enum:
    TILE = 48                       # blocks of rows are whole multiples of this
    MIN_BLOCK_MULADDS = 2097152     # 128^3: OpenBLAS's small-product kernels stop at 100^3
    COLS_TILE = 64                  # few_rows_matmul's column blocks: whole AVX-512 vectors
    STREAM_MAX_ROWS = 2             # ... split over threads only up to this many rows


cdef inline void _gemm(char ta, char tb, int m, int n, int k, const real *a, int lda,
                       const real *b, int ldb, real *c, int ldc,
                       const real *bias) noexcept nogil:
    """Row-major c (m, n) = op(a) op(b) (+ bias (n,) on every row, when not NULL), as
    column-major c^T = op(b)^T op(a)^T (+ c^T, the bias written there first)."""
    cdef real one = 1, beta = 0
    cdef Py_ssize_t r
    if bias != NULL:
        for r in range(m):
            memcpy(c + r * ldc, bias, n * sizeof(real))
        beta = 1
    if real is float:
        sgemm(&tb, &ta, &n, &m, &k, &one, <float *>b, &ldb, <float *>a, &lda, &beta, c, &ldc)
    else:
        dgemm(&tb, &ta, &n, &m, &k, &one, <double *>b, &ldb, <double *>a, &lda, &beta, c, &ldc)


cdef inline bint _transposed(cnp.ndarray x):
    """True when x is a transposed view of a C-contiguous array (and not C-contiguous)."""
    return not x.flags.c_contiguous


cdef cnp.ndarray _blas_ready(x):
    """x itself when BLAS can read it (C-contiguous or a transposed C-contiguous), else a copy."""
    if x.flags.c_contiguous or x.T.flags.c_contiguous:
        return x
    return np.ascontiguousarray(x)


def _block_starts(Py_ssize_t n, Py_ssize_t blocks):
    """Starts of `blocks` blocks of n rows, whole TILEs but the last, + [n]."""
    cdef Py_ssize_t tiles = (n + TILE - 1) // TILE
    return np.array([min(n, tiles * i // blocks * TILE) for i in range(blocks)] + [n], np.intp)


def _product(cnp.ndarray a, cnp.ndarray b, real[:, ::1] c, const real[::1] bias):
    """c = a @ b (+ bias) for BLAS-ready a (m, k), b (k, n): one block of rows per thread,
    each writing its block's bias first (so the bias costs no pass of its own on one thread);
    a float32 product with too few rows to share goes through its transpose."""
    cdef Py_ssize_t m = a.shape[0], k = a.shape[1], n = b.shape[1], i, s0, s1
    cdef bint ta = _transposed(a), tb = _transposed(b)
    if not (m >= 2 * TILE or real is double or n < 2 * TILE):
        _few_rows_product(a, b, c, bias)
        return
    cdef int lda = <int>(m if ta else k), ldb = <int>(k if tb else n)
    cdef char fa = b'T' if ta else b'N', fb = b'T' if tb else b'N'
    cdef const real *pa = <const real *>cnp.PyArray_DATA(a)
    cdef const real *pb = <const real *>cnp.PyArray_DATA(b)
    cdef double muladds = <double>m * n * k
    cdef int nt = _threads(muladds * TL_NS_PER_GEMM_MULADD)
    nt = <int>max(1, min(<double>nt, muladds / MIN_BLOCK_MULADDS, <double>(m // TILE)))
    cdef Py_ssize_t[::1] starts = _block_starts(m, nt)
    cdef const real *pbias = &bias[0] if bias is not None else NULL
    for i in prange(nt, nogil=True, schedule="static", num_threads=nt):
        s0 = starts[i]      # rows s0:s1 of c are rows s0:s1 of op(a) times op(b)
        s1 = starts[i + 1]
        _gemm(fa, fb, <int>(s1 - s0), <int>n, <int>k, pa + (s0 if ta else s0 * k), lda,
              pb, ldb, &c[s0, 0], <int>n, pbias)


def _few_rows_product(cnp.ndarray a, cnp.ndarray b, real[:, ::1] c, const real[::1] bias):
    """c = a @ b (+ bias) for float32 a (m, k) with too few rows to share (m < 2 TILE) and
    b (k, n) with enough columns (n >= 2 TILE): the weight gradient of a narrow layer.

    Computed as its transpose, c^T (n, m) = b^T a^T, cut by *rows* over the threads, then
    copied back (m n values beside m n k multiply-adds). Cutting c by columns instead would
    hand BLAS blocks along the dimension its kernels tile differently by block size: OpenBLAS
    0.3 with its Haswell kernels gave a column block other bits than the whole product
    (differences of 2e-6 relative, on every shape tried), so results changed with the thread
    count. A product of this shape is computed this way on any number of threads."""
    t = np.empty((c.shape[1], c.shape[0]), np.asarray(c).dtype)     # (n, m)
    _product(b.T, a.T, t, None)
    if bias is None:
        np.asarray(c)[...] = t.T
    else:
        np.add(t.T, np.asarray(bias), out=np.asarray(c))


def matmul(a, b, bias=None):
    """c (M, N) = a (M, K) @ b (K, N) (+ bias (N,), C-contiguous): 2-D float32 or float64
    arrays of one dtype."""
    if a.ndim != 2 or b.ndim != 2 or a.shape[1] != b.shape[0] or a.dtype != b.dtype:
        raise ValueError(f"matmul: needs 2-D arrays (M, K) and (K, N) of one dtype, got "
                         f"{a.shape} {a.dtype} and {b.shape} {b.dtype}")
    if bias is not None and (bias.shape != (b.shape[1],) or bias.dtype != a.dtype):
        raise ValueError(f"matmul: bias must be ({b.shape[1]},) {a.dtype}, got {bias.shape} "
                         f"{bias.dtype}")
    if a.dtype != np.float32 and a.dtype != np.float64:
        raise TypeError(f"matmul: float32 or float64 arrays only, got {a.dtype}")
    c = np.empty((a.shape[0], b.shape[1]), a.dtype)
    if c.size == 0:
        return c
    if a.shape[1] == 0:
        c[...] = 0 if bias is None else bias
        return c
    _product(_blas_ready(a), _blas_ready(b), c, bias)
    return c


def few_rows_matmul(const float[:, ::1] x, const float[:, ::1] w):
    """y (m, out) = x (m, in) @ w (in, out), float32, w read once in memory order (see
    few_rows.h); passes of up to 8 rows; the output columns in one block per thread (whole
    COLS_TILE columns: each column's sum is the same whatever block holds it)."""
    cdef Py_ssize_t m = x.shape[0], n_in = x.shape[1], n_out = w.shape[1], r, k, t, o0, o1
    if w.shape[0] != n_in:
        raise ValueError(f"few_rows_matmul: x has {n_in} columns but w has {w.shape[0]} rows")
    if m == 0 or n_out == 0 or n_in == 0:
        return np.zeros((m, n_out), dtype=np.float32)
    out = np.empty((m, n_out), dtype=np.float32)
    cdef float[:, ::1] y = out
    cdef int nt = 1
    if m <= STREAM_MAX_ROWS:
        nt = tl_threads_for(<double>m * n_in * n_out * TL_NS_PER_STREAM_MULADD,
                            TL_STREAM_MIN_NS * _min_ns / TL_PARALLEL_MIN_NS)
    nt = <int>max(1, min(nt, (n_out + COLS_TILE - 1) // COLS_TILE))
    cdef Py_ssize_t width = (n_out + nt * COLS_TILE - 1) // (nt * COLS_TILE) * COLS_TILE
    for t in prange(nt, nogil=True, schedule="static", num_threads=nt):
        o0 = t * width
        o1 = min(n_out, o0 + width)
        r = 0
        while r < m and o0 < o1:
            k = min(<Py_ssize_t>TL_FEW_ROWS_PASS, m - r)
            tl_few_rows(&x[r, 0], n_in, k, &w[0, o0], n_out, n_in, o1 - o0, &y[r, o0], n_out)
            r = r + k
    return out


def simd_level():
    """The instruction set few_rows_matmul uses: 2 AVX-512, 1 AVX2+FMA, 0 portable C."""
    return tl_qsimd_level()


def _set_simd_level(int level):
    """Use at most `level` from now on (tests run every level the CPU has); returns the level
    in use."""
    return tl_qsimd_set_level(level)
