"""The quantized-weight linear kernel on every backend against its NumPy twin, and
F.quantized_linear's gradients (x and bias) by finite differences in float64.

Tolerances: float32 rtol 1e-5 with an absolute floor of 1e-5 x the largest |expected| (the
kernel sums in another order than BLAS), float64 rtol 1e-12, atol 1e-12 x the scale.
"""

import numpy as np
import pytest

import tinyllm
import tinyllm.functional as F
from tinyllm import kernels
from tinyllm.autograd.gradcheck import gradcheck
from tinyllm.bench import use_backend
from tinyllm.kernels import reference
from tinyllm.nn.quantized import quantize_weight

BACKENDS = kernels.available_backends()
TOL = {np.float32: (1e-5, 1e-5), np.float64: (1e-12, 1e-12)}
SCHEMES = [("int8-tensor", 0), ("int8-channel", 0), ("int4-g32", 32), ("int4-g64", 64)]


def close(actual, expected, dtype):
    rtol, atol = TOL[dtype]
    assert actual.dtype == np.dtype(dtype) and actual.shape == expected.shape
    scale = max(1.0, float(np.abs(expected).max()))
    np.testing.assert_allclose(actual, expected, rtol=rtol, atol=atol * scale)


def _stored(name, out_f=24, in_f=128, seed=0):
    w = np.random.default_rng(seed).standard_normal((out_f, in_f))
    return quantize_weight(w, name)


@pytest.fixture(params=BACKENDS)
def kern(request):
    return kernels.get_backend(request.param)


@pytest.fixture(params=[False, True], ids=["one-thread", "threads"])
def threads(request):
    """Run the compiled kernel's threaded path on small inputs too, then restore."""
    try:
        from tinyllm.kernels import _quantized
    except ImportError:
        yield
        return
    old = _quantized.set_parallel_threshold(1 if request.param else old_threshold())
    yield
    _quantized.set_parallel_threshold(old)


def old_threshold():
    """The module's threshold now (set_parallel_threshold returns the old one)."""
    from tinyllm.kernels import _quantized
    old = _quantized.set_parallel_threshold(0)
    _quantized.set_parallel_threshold(old)
    return old


@pytest.mark.parametrize("name, group", SCHEMES)
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("shape", [(1, 128), (3, 128), (2, 4, 128),     # the kernel's rows
                                   (kernels.QUANTIZED_KERNEL_MAX_ROWS + 1, 128)])  # BLAS
@pytest.mark.parametrize("with_bias", [True, False])
def test_quantized_linear_matches_the_twin(kern, threads, name, group, dtype, shape, with_bias):
    q, scale = _stored(name)
    rng = np.random.default_rng(1)
    x = rng.standard_normal(shape).astype(dtype)
    bias = rng.standard_normal(24).astype(dtype) if with_bias else None
    expected = x @ reference.dequantize(q, scale, group, np.float64).T.astype(dtype)
    if with_bias:
        expected = expected + bias
    close(kern.quantized_linear(x, q, scale, group, bias), expected, dtype)
    close(reference.quantized_linear(x, q, scale, group, bias), expected, dtype)


def test_the_kernel_dequantizes_exactly_what_the_twin_does():
    """Rows of the identity read W back: y = e_i @ W^T is W's column i, float64, exact."""
    for name, group in SCHEMES:
        q, scale = _stored(name, out_f=8, in_f=64, seed=2)
        eye = np.eye(64)[:5]
        for kern in map(kernels.get_backend, BACKENDS):
            got = kern.quantized_linear(eye, q, scale, group)
            want = reference.dequantize(q, scale, group, np.float64)[:, :5].T
            assert np.array_equal(got, want), (name, kern.name)


def _simd_levels():
    """The instruction-set levels of the float32 products this CPU can run (none without the
    compiled kernels)."""
    try:
        from tinyllm.kernels import _quantized
    except ImportError:
        return []
    return list(range(_quantized.simd_level() + 1))


@pytest.mark.parametrize("level", _simd_levels())
@pytest.mark.parametrize("name, group, out_f, in_f", [
    ("int8-channel", 0, 26, 130),      # a tail of inputs past the last full vector, 2 rows past
    ("int8-tensor", 0, 8, 48),         # the last group of 4 output features
    ("int4-g32", 32, 26, 96), ("int4-g64", 64, 12, 192), ("int4-g128", 128, 9, 256)])
def test_every_instruction_set_level_computes_the_same_products(level, name, group, out_f, in_f):
    """AVX-512, AVX2 and portable C (quantized_simd.h) against the twin, float32; and the
    identity's rows read each stored weight back exactly at every level."""
    from tinyllm.kernels import _quantized
    q, scale = _stored(name, out_f=out_f, in_f=in_f, seed=5)
    x = np.random.default_rng(6).standard_normal((3, in_f)).astype(np.float32)
    expected = x @ reference.dequantize(q, scale, group, np.float64).T.astype(np.float32)
    eye = np.eye(in_f, dtype=np.float32)[:4]
    try:
        assert _quantized._set_simd_level(level) == level
        close(_quantized.quantized_linear(x, q, scale.astype(np.float32), group), expected,
              np.float32)
        got = _quantized.quantized_linear(eye, q, scale.astype(np.float32), group)
        want = reference.dequantize(q, scale, group, np.float32)[:, :4].T
        assert np.array_equal(got, want)
    finally:
        _quantized._set_simd_level(2)


@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("name, group", [("int8-channel", 0), ("int4-g32", 32)])
def test_gradients_of_input_and_bias_by_finite_differences(backend, name, group):
    q, scale = _stored(name, out_f=6, in_f=64, seed=3)
    rng = np.random.default_rng(4)
    with use_backend(backend), tinyllm.default_dtype(np.float64):
        x = tinyllm.tensor(rng.standard_normal((2, 3, 64)), requires_grad=True)
        b = tinyllm.tensor(rng.standard_normal(6), requires_grad=True)
        assert gradcheck(lambda x, b: F.quantized_linear(x, q, scale, group, b), x, b)
        x.grad = None
        y = F.quantized_linear(x, q, scale, group, b)
        (y * y).sum().backward()
        w = reference.dequantize(q, scale, group, np.float64)
        np.testing.assert_allclose(x.grad, (2 * y.data) @ w, rtol=1e-12)


def test_a_wrong_input_width_is_refused():
    q, scale = _stored("int4-g32", in_f=64)
    with pytest.raises(ValueError, match="input has 32 features .* the weight expects 64"):
        F.quantized_linear(tinyllm.ones(2, 32), q, scale, 32)
