"""GELU and LayerNorm kernels on every backend against their NumPy twins, and through autograd.

Shapes: ``(..., D)``; LayerNorm normalises the last axis. Tolerances: float32 rtol 1e-5 with
an absolute floor of 1e-5 x the largest |expected|: the twin's tanh-GELU backward computes
1 - tanh^2 in float32, which cancels to ~1e-7 absolute where tanh is near -1 (times x du, up
to ~1e-5), while the compiled form (via a sigmoid) does not; float64 rtol 1e-11, atol 1e-12 x
the scale.
"""

import numpy as np
import pytest

import tinyllm
import tinyllm.functional as F
from tinyllm import kernels
from tinyllm.autograd.gradcheck import gradcheck
from tinyllm.kernels import reference

BACKENDS = kernels.available_backends()
DTYPES = [np.float32, np.float64]
TOL = {np.float32: (1e-5, 1e-5), np.float64: (1e-11, 1e-12)}
SHAPES = [(7,), (3, 33), (2, 5, 64), (300, 257)]   # the last: the multi-threaded path too


def close(actual, expected, dtype):
    rtol, atol = TOL[dtype]
    assert actual.dtype == np.dtype(dtype) and actual.shape == expected.shape
    scale = max(1.0, float(np.abs(expected).max())) if expected.size else 1.0
    np.testing.assert_allclose(actual, expected, rtol=rtol, atol=atol * scale)


@pytest.fixture(params=BACKENDS)
def kern(request):
    return kernels.get_backend(request.param)


@pytest.fixture
def parallel_always():
    """Make the compiled kernels split even tiny inputs over threads, then restore."""
    try:
        from tinyllm.kernels import _fused
    except ImportError:
        yield
        return
    old = _fused.set_parallel_threshold(1)
    yield
    _fused.set_parallel_threshold(old)


@pytest.mark.parametrize("approximate", ["tanh", "none"])
@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("shape", SHAPES)
def test_gelu_matches_twin(kern, shape, dtype, approximate):
    rng = np.random.default_rng(0)
    x = (3 * rng.standard_normal(shape)).astype(dtype)
    dy = rng.standard_normal(shape).astype(dtype)
    close(kern.gelu_forward(x, approximate), reference.gelu_forward(x, approximate), dtype)
    close(kern.gelu_backward(x, dy, approximate),
          reference.gelu_backward(x, dy, approximate), dtype)


@pytest.mark.parametrize("dtype", DTYPES)
def test_gelu_extremes_and_threads(kern, dtype, parallel_always):
    x = np.array([-np.inf, -100.0, -10.0, -1e-8, 0.0, 1e-8, 10.0, 100.0, np.inf], dtype)
    x = np.tile(x, 50)
    dy = np.ones_like(x)
    for form in ("tanh", "none"):
        with np.errstate(invalid="ignore", over="ignore"):  # the twin's inf * 0 at +-inf
            expected = reference.gelu_forward(x, form)
            got = kern.gelu_forward(x, form)
        finite = np.isfinite(x)
        close(got[finite], expected[finite], dtype)
        close(kern.gelu_backward(x[finite], dy[finite], form),
              reference.gelu_backward(x[finite], dy[finite], form), dtype)


def test_gelu_rejects_unknown_form(kern):
    with pytest.raises(ValueError, match="approximate"):
        kern.gelu_forward(np.zeros(3), "fast")


@pytest.mark.parametrize("affine", ["both", "weight", "bias", "none"])
@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("shape", SHAPES)
def test_layer_norm_matches_twin(kern, shape, dtype, affine):
    rng = np.random.default_rng(1)
    d = shape[-1]
    x = (2 + 3 * rng.standard_normal(shape)).astype(dtype)
    dy = rng.standard_normal(shape).astype(dtype)
    w = rng.standard_normal(d).astype(dtype) if affine in ("both", "weight") else None
    b = rng.standard_normal(d).astype(dtype) if affine in ("both", "bias") else None
    got = kern.layer_norm_forward(x, w, b, 1e-5)
    want = reference.layer_norm_forward(x, w, b, 1e-5)
    for g, e in zip(got, want):
        close(g, e, dtype)
    got = kern.layer_norm_backward(x, dy, want[1], want[2], w)
    want = reference.layer_norm_backward(x, dy, want[1], want[2], w)
    for g, e in zip(got, want):
        close(g, e, dtype)


def test_layer_norm_threads_split_rows(kern, parallel_always):
    rng = np.random.default_rng(2)
    x, dy = rng.standard_normal((2, 37, 19)), rng.standard_normal((2, 37, 19))
    w = rng.standard_normal(19)
    _, mean, rstd = reference.layer_norm_forward(x, w, None, 1e-5)
    for g, e in zip(kern.layer_norm_backward(x, dy, mean, rstd, w),
                    reference.layer_norm_backward(x, dy, mean, rstd, w)):
        close(g, e, np.float64)


@pytest.mark.parametrize("approximate", ["tanh", "none"])
def test_gelu_op_gradcheck(approximate):
    x = tinyllm.tensor(np.random.default_rng(3).standard_normal((3, 11)) * 2,
                       requires_grad=True)
    assert gradcheck(lambda t: F.gelu(t, approximate=approximate), x)


def test_layer_norm_op_gradcheck():
    rng = np.random.default_rng(4)
    x = tinyllm.tensor(rng.standard_normal((2, 3, 9)), requires_grad=True)
    w = tinyllm.tensor(rng.standard_normal(9), requires_grad=True)
    b = tinyllm.tensor(rng.standard_normal(9), requires_grad=True)
    assert gradcheck(lambda t, w, b: F.layer_norm(t, 9, w, b), x, w, b)


def test_compiled_backend_has_every_kernel():
    if "cython" not in BACKENDS:
        pytest.skip(kernels.compiled_reason())
    assert "NumPy twins for" not in kernels.backend_reason() or kernels.backend() != "cython"
