"""erf on every backend against math.erf, float32 and float64 (exact GELU depends on it)."""

import math

import numpy as np
import pytest

from tinyllm import kernels

X = np.concatenate([np.linspace(-7, 7, 2801), [0.0, -0.0, 2.9999999, 3.0, -3.0, 30.0, -np.inf,
                                               np.inf, 1e-300]])
EXPECTED = np.array([math.erf(v) for v in X])


@pytest.mark.parametrize("backend", kernels.available_backends())
@pytest.mark.parametrize("dtype, tol", [(np.float64, 1e-13), (np.float32, 1e-7)])
def test_erf_matches_libm(backend, dtype, tol):
    erf = kernels.get_backend(backend).erf
    got = erf(X.astype(dtype))
    assert got.dtype == dtype and got.shape == X.shape
    np.testing.assert_allclose(got, EXPECTED.astype(dtype), rtol=0, atol=tol)


@pytest.mark.parametrize("backend", kernels.available_backends())
def test_erf_keeps_shape_of_noncontiguous_input(backend):
    x = np.random.default_rng(0).standard_normal((4, 6)).T
    got = kernels.get_backend(backend).erf(x)
    np.testing.assert_allclose(got, kernels.reference.erf(np.ascontiguousarray(x)), atol=1e-13)
    assert got.shape == (6, 4)


def test_erf_rejects_integers():
    with pytest.raises(TypeError, match="float32 or float64"):
        kernels.reference.erf(np.arange(3))
