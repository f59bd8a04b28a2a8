"""`kernels.adam_update`, the one-pass Adam(W) step, against its NumPy twin: the same bits.

The twin is the update tinyllm.optim.Adam has always computed (its agreement with
torch.optim.Adam / AdamW is tests/test_optim.py's); here the compiled kernel must reproduce
it exactly -- every option, both dtypes, several steps, on one thread and split over threads,
and in stretches that do not fill the last chunk. Arrays it cannot take (strided, mixed
dtypes) go to the twin.
"""

import itertools

import numpy as np
import pytest

from tinyllm import kernels
from tinyllm.kernels.reference import AdamHyper

OPTIONS = list(itertools.product(
    [np.float32, np.float64],               # dtype
    [0.0, 0.1],                             # weight decay
    [True, False],                          # decoupled (AdamW) or L2 (Adam)
    [False, True],                          # maximize
    [False, True],                          # amsgrad
    [0.9, 0.3]))                            # beta1: 1 - beta1 below and above 0.5


def compiled():
    try:
        from tinyllm.kernels import _optim
    except ImportError:
        pytest.skip("compiled kernels not built")
    return _optim


def _run(update, dtype, wd, decoupled, maximize, amsgrad, beta1, n=40_001, steps=3):
    rng = np.random.default_rng(0)
    p = rng.standard_normal(n).astype(dtype)
    m, v = np.zeros_like(p), np.zeros_like(p)
    vmax = np.zeros_like(p) if amsgrad else None
    for step in range(1, steps + 1):
        g = rng.standard_normal(n).astype(dtype) * (10.0 ** -step)
        g[::97] = 0                                           # zero gradients, v's floor
        hyper = AdamHyper(lr=1e-2, beta1=beta1, beta2=0.99, eps=1e-8, weight_decay=wd,
                          decoupled=decoupled, maximize=maximize, step=step)
        g_before = g.copy()
        update(p, g, m, v, vmax, hyper)
        assert np.array_equal(g, g_before)                    # the gradient is never touched
    return p, m, v, vmax


@pytest.mark.parametrize("dtype, wd, decoupled, maximize, amsgrad, beta1", OPTIONS)
@pytest.mark.parametrize("threaded", [False, True], ids=["one-thread", "threads"])
def test_the_kernel_equals_the_twin_to_the_bit(dtype, wd, decoupled, maximize, amsgrad, beta1,
                                               threaded):
    _optim = compiled()
    old = _optim.set_parallel_threshold(0 if threaded else 1e30)
    try:
        got = _run(kernels.get_backend("cython").adam_update, dtype, wd, decoupled, maximize,
                   amsgrad, beta1)
    finally:
        _optim.set_parallel_threshold(old)
    want = _run(kernels.reference.adam_update, dtype, wd, decoupled, maximize, amsgrad, beta1)
    for name, a, b in zip(("p", "m", "v", "vmax"), got, want):
        if b is None:
            assert a is None
            continue
        assert a.dtype == np.dtype(dtype)
        np.testing.assert_array_equal(a, b, err_msg=name)


@pytest.mark.parametrize("backend", kernels.available_backends())
def test_arrays_the_kernel_cannot_take_go_to_the_twin(backend):
    """A strided parameter view and a float64 gradient for a float32 parameter: the same
    result as the twin computes (NumPy promotes; the parameter keeps its dtype)."""
    update = kernels.get_backend(backend).adam_update
    hyper = AdamHyper(lr=0.1, beta1=0.9, beta2=0.999, eps=1e-8, weight_decay=0.01,
                      decoupled=True, maximize=False, step=1)
    rng = np.random.default_rng(1)
    base = rng.standard_normal((6, 8)).astype(np.float32)
    g = rng.standard_normal((6, 4))
    results = []
    for fn in (update, kernels.reference.adam_update):
        p = base.copy()[:, ::2]                                 # strided
        m, v = np.zeros((6, 4), np.float32), np.zeros((6, 4), np.float32)
        fn(p, g, m, v, None, hyper)
        results.append((p.copy(), m, v))
    for a, b in zip(*results):
        np.testing.assert_array_equal(a, b)
    assert results[0][0].dtype == np.float32
    assert np.allclose(results[0][0], base[:, ::2] * (1 - 0.1 * 0.01) - 0.1 * np.sign(g),
                       atol=1e-5)                               # the first step moves by lr
