"""`kernels.matmul`, every linear layer's product, on every backend against NumPy's product.

The compiled one cuts the product into blocks of rows (or columns) over OpenMP threads, each
a single-threaded BLAS call, and streams the weight once for 2..32 float32 rows
(few_rows.h, at every instruction-set level this CPU has). What is proven here: the same
values as ``a @ b`` for every layout BLAS reads in place (C-contiguous, a transposed view) and
those it must copy (strided views), with ragged blocks; the same bits at 1 and 2 threads;
BLAS kept single-threaded (else every OpenMP thread would start BLAS threads); the errors.

Tolerances: float32 rtol 1e-5 with an absolute floor of 1e-5 x the largest |expected| (the
blocks may sum in another order than NumPy's BLAS), float64 1e-12.
"""

import numpy as np
import pytest
from threadpoolctl import threadpool_limits

from tinyllm import kernels

BACKENDS = kernels.available_backends()
TOL = {np.float32: (1e-5, 1e-5), np.float64: (1e-12, 1e-12)}


def compiled():
    try:
        from tinyllm.kernels import _matmul
    except ImportError:
        pytest.skip("compiled kernels not built")
    return _matmul


def close(actual, expected, dtype):
    rtol, atol = TOL[dtype]
    assert actual.dtype == np.dtype(dtype) and actual.shape == expected.shape
    scale = max(1.0, float(np.abs(expected).max()))
    np.testing.assert_allclose(actual, expected, rtol=rtol, atol=atol * scale)


def layouts(x):
    """x (r, c) as BLAS may meet it: C-contiguous, a transposed view, a strided view."""
    return {"C": np.ascontiguousarray(x), "T": np.ascontiguousarray(x.T).T,
            "strided": np.repeat(x, 2, axis=1)[:, ::2]}


@pytest.fixture(params=[False, True], ids=["one-thread", "threads"])
def threads(request):
    """Run the compiled product's threaded path on small inputs too, then restore."""
    try:
        from tinyllm.kernels import _matmul
    except ImportError:
        yield
        return
    old = _matmul.set_parallel_threshold(0 if request.param else 1e30)
    yield
    _matmul.set_parallel_threshold(old)


@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("m, k, n", [(1, 5, 7), (3, 8, 40), (33, 17, 5), (40, 64, 100),
                                     (100, 3, 37), (130, 70, 130)])
def test_matmul_equals_numpy_in_every_layout(backend, dtype, m, k, n, threads):
    """Rows above and below the few-rows range, blocks that are not whole tiles, more columns
    than rows (through the transpose) and the reverse, every layout of both operands."""
    rng = np.random.default_rng(m * 1000 + n)
    a = rng.standard_normal((m, k)).astype(dtype)
    b = rng.standard_normal((k, n)).astype(dtype)
    want = a.astype(np.float64) @ b.astype(np.float64)
    mm = kernels.get_backend(backend).matmul
    for la, a2 in layouts(a).items():
        for lb, b2 in layouts(b).items():
            got = mm(a2, b2)
            assert got.flags.c_contiguous, (la, lb)
            close(got, want.astype(dtype), dtype)


@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("m", [1, 3, 40, 300])
def test_a_bias_is_added_to_every_row(backend, m, threads):
    """matmul(a, b, bias) = a @ b + bias: few rows, one block, blocks of rows; a float64 bias
    is rounded to a float32 product's dtype (as `y += bias` does); a wrong shape is refused."""
    rng = np.random.default_rng(m)
    mm = kernels.get_backend(backend).matmul
    a = rng.standard_normal((m, 64)).astype(np.float32)
    b = rng.standard_normal((64, 200)).astype(np.float32)
    bias = rng.standard_normal(200)
    got = mm(a, b, bias)
    assert got.dtype == np.float32
    close(got, (a.astype(np.float64) @ b + bias).astype(np.float32), np.float32)
    bias_m = rng.standard_normal(m).astype(np.float32)
    close(mm(b.T.copy(), a.T, bias_m), (b.T.astype(np.float64) @ a.T + bias_m)
          .astype(np.float32), np.float32)
    with pytest.raises(ValueError, match=r"bias must have shape \(200,\), got \(3,\)"):
        mm(a, b, bias[:3])


def test_the_result_does_not_depend_on_the_thread_count():
    """Products large enough to be split (the module's rule, not a forced split) give the
    same bits on 1 and 2 threads: cut by rows, float32 with few rows (computed through the
    transpose), ragged blocks, float32 and float64, plain and transposed operands."""
    _matmul = compiled()
    rng = np.random.default_rng(3)
    checked = 0
    for dtype in (np.float32, np.float64):
        for m, k, n in [(1536, 96, 192), (1000, 100, 250), (64, 512, 1024), (300, 512, 170),
                        (194, 559, 290), (1200, 300, 97), (128, 768, 384), (100, 900, 333),
                        (320, 1536, 960), (90, 700, 300)]:
            a = rng.standard_normal((m, k)).astype(dtype)
            b = rng.standard_normal((k, n)).astype(dtype)
            bias = rng.standard_normal(n).astype(dtype)
            pairs = [(a, b), (b.T, a.T), (a.T.copy().T, b)]
            with threadpool_limits(limits={"openmp": 1, "blas": 1}):
                want = [_matmul.matmul(x, y) for x, y in pairs] + [_matmul.matmul(a, b, bias)]
            with threadpool_limits(limits={"openmp": 2, "blas": 1}):
                got = [_matmul.matmul(x, y) for x, y in pairs] + [_matmul.matmul(a, b, bias)]
            for g, w in zip(got, want):
                assert np.array_equal(g, w), (dtype, m, k, n)
                checked += 1
    assert checked == 80


def test_forced_splits_of_random_products_keep_their_bits():
    """Every product split as far as the tiling allows (threshold 0): random shapes from 40
    rows up, both dtypes, three layouts, 1 and 2 threads equal bit for bit."""
    _matmul = compiled()
    rng = np.random.default_rng(7)
    saved = _matmul.set_parallel_threshold(0)
    try:
        for _ in range(12):
            for dtype in (np.float32, np.float64):
                m, k, n = (int(rng.integers(40, 700)), int(rng.integers(8, 900)),
                           int(rng.integers(8, 900)))
                a = rng.standard_normal((m, k)).astype(dtype)
                b = rng.standard_normal((k, n)).astype(dtype)
                for x, y in [(a, b), (a.T.copy().T, b), (a, b.T.copy().T)]:
                    with threadpool_limits(limits={"openmp": 1, "blas": 1}):
                        want = _matmul.matmul(x, y)
                    with threadpool_limits(limits={"openmp": 2, "blas": 1}):
                        assert np.array_equal(_matmul.matmul(x, y), want), (dtype, m, k, n)
    finally:
        _matmul.set_parallel_threshold(saved)


def test_few_rows_float32_products_go_through_the_transpose():
    """A float32 product with under 96 rows and 96+ columns (a narrow layer's weight
    gradient) is computed as (b^T a^T)^T: the same bits as that transposed product on one
    thread, with and without a bias, so no thread count cuts it by columns."""
    _matmul = compiled()
    rng = np.random.default_rng(4)
    a = rng.standard_normal((64, 768)).astype(np.float32)
    b = rng.standard_normal((768, 384)).astype(np.float32)
    bias = rng.standard_normal(384).astype(np.float32)
    with threadpool_limits(limits={"openmp": 1, "blas": 1}):
        want = _matmul.matmul(np.ascontiguousarray(b.T), np.ascontiguousarray(a.T)).T
    for n in (1, 2):
        with threadpool_limits(limits={"openmp": n, "blas": 1}):
            assert np.array_equal(_matmul.matmul(a, b), want)
            assert np.array_equal(_matmul.matmul(a, b, bias), want + bias)


@pytest.mark.parametrize("backend", BACKENDS)
def test_empty_products_and_mixed_dtypes(backend):
    """Zero rows, columns or inner size give zeros of the right shape; float32 @ float64 is
    promoted as NumPy does (the twin's product)."""
    mm = kernels.get_backend(backend).matmul
    assert mm(np.ones((0, 4), np.float32), np.ones((4, 3), np.float32)).shape == (0, 3)
    assert mm(np.ones((2, 4)), np.ones((4, 0))).shape == (2, 0)
    z = mm(np.ones((5, 0), np.float32), np.ones((0, 40), np.float32))
    assert z.shape == (5, 40) and z.dtype == np.float32 and not z.any()
    mixed = mm(np.ones((3, 4), np.float32), np.ones((4, 2)))
    assert mixed.dtype == np.float64 and np.array_equal(mixed, np.full((3, 2), 4.0))


@pytest.mark.parametrize("backend", BACKENDS)
def test_bad_input_is_refused_with_the_shapes(backend):
    mm = kernels.get_backend(backend).matmul
    with pytest.raises(ValueError, match=r"2-D arrays \(M, K\) and \(K, N\).*\(3, 4\).*\(5, 2\)"):
        mm(np.ones((3, 4)), np.ones((5, 2)))
    with pytest.raises(ValueError, match="2-D arrays"):
        mm(np.ones((2, 3, 4)), np.ones((4, 2)))
    with pytest.raises(TypeError, match="float32 or float64 array, got dtype int64"):
        mm(np.ones((2, 2), np.int64), np.ones((2, 2)))


def test_blas_is_kept_single_threaded_where_the_kernels_call_it():
    """The library scipy.linalg.cython_blas links runs on one thread once tinyllm's kernels
    are imported: the OpenMP threads of a product call it, and each must not start BLAS
    threads of its own (measured: 7x slower when they do)."""
    compiled()
    from threadpoolctl import threadpool_info

    from tinyllm.kernels.blas import kernel_blas_path
    libs = [i for i in threadpool_info() if i["filepath"] == kernel_blas_path()]
    assert libs and all(i["num_threads"] == 1 for i in libs)


# ------------------------------------------------------------------ few rows
def _simd_levels():
    """The instruction-set levels few_rows_matmul can run on this CPU (none without the
    compiled kernels)."""
    try:
        from tinyllm.kernels import _matmul
    except ImportError:
        return []
    return list(range(_matmul.simd_level() + 1))


@pytest.mark.parametrize("level", _simd_levels())
@pytest.mark.parametrize("rows, n_in, n_out", [(1, 8, 16), (3, 13, 37), (8, 64, 96),
                                               (9, 130, 70), (17, 4, 5), (2, 0, 4)])
def test_few_rows_matmul_at_every_instruction_set_level(level, rows, n_in, n_out):
    """x @ w for w stored (in, out): AVX-512, AVX2 and portable C against float64, with tails
    of outputs (past the last vector), of weight rows (past the last four) and of input rows
    (past a pass of eight)."""
    from tinyllm.kernels import _matmul
    rng = np.random.default_rng(7)
    x = rng.standard_normal((rows, n_in)).astype(np.float32)
    w = rng.standard_normal((n_in, n_out)).astype(np.float32)
    try:
        assert _matmul._set_simd_level(level) == level
        close(_matmul.few_rows_matmul(x, w), x.astype(np.float64) @ w.astype(np.float64),
              np.float32)
    finally:
        _matmul._set_simd_level(2)


def test_few_rows_are_streamed_and_the_rest_goes_to_blas():
    """kernels.matmul streams 1..FEW_ROWS_MAX float32 rows of a C-contiguous weight through
    few_rows_matmul (its own sums: close to NumPy's); more rows, float64 and a transposed
    weight go to BLAS (the module's product exactly)."""
    _matmul = compiled()
    kern = kernels.get_backend("cython")
    rng = np.random.default_rng(8)
    w = rng.standard_normal((48, 40)).astype(np.float32)
    for rows in (1, 2, 5, kernels.FEW_ROWS_MAX):
        x = rng.standard_normal((rows, 48)).astype(np.float32)
        assert np.array_equal(kern.matmul(x, w), _matmul.few_rows_matmul(x, w))
        close(kern.matmul(x, w), (x.astype(np.float64) @ w).astype(np.float32), np.float32)
    with threadpool_limits(limits={"openmp": 1, "blas": 1}):
        for x, ww in [(rng.standard_normal((kernels.FEW_ROWS_MAX + 1, 48)).astype(np.float32),
                       w),
                      (rng.standard_normal((3, 48)), w.astype(np.float64)),
                      (rng.standard_normal((3, 48)).astype(np.float32),
                       np.ascontiguousarray(w.T).T)]:
            assert np.array_equal(kern.matmul(x, ww), _matmul.matmul(x, ww))


def test_few_rows_split_over_threads_give_the_same_bits():
    """Output columns in blocks of whole vectors per thread: the same sums as one thread,
    with ragged blocks and a tail past the last vector."""
    _matmul = compiled()
    rng = np.random.default_rng(9)
    old = _matmul.set_parallel_threshold(0)
    try:
        for rows, n_in, n_out in [(1, 320, 960), (2, 100, 1001), (1, 64, 70), (8, 64, 300)]:
            x = rng.standard_normal((rows, n_in)).astype(np.float32)
            w = rng.standard_normal((n_in, n_out)).astype(np.float32)
            with threadpool_limits(limits={"openmp": 1}):
                one = _matmul.few_rows_matmul(x, w)
            with threadpool_limits(limits={"openmp": 2}):
                assert np.array_equal(_matmul.few_rows_matmul(x, w), one), (rows, n_in, n_out)
            close(one, x.astype(np.float64) @ w, np.float32)
    finally:
        _matmul.set_parallel_threshold(old)
