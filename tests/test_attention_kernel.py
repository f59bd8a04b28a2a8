"""The attention kernel (blockwise, online softmax) on every backend against the NumPy pair.

Shapes (B, nh, L, E) for q, (B, nh, S, E) for k, (B, nh, S, Ev) for v. L and S are chosen
not to be multiples of the compiled kernel's blocks (64 queries, 256 keys). Tolerances:
float32 atol 2e-5, float64 1e-12 (the kernel sums in blocks and rescales, so agreement is to
rounding).
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
ATOL = {np.float32: 2e-5, np.float64: 1e-12}
CASES = [  # (B, nh, L, S, E, Ev)
    (1, 1, 1, 1, 4, 4),
    (2, 3, 70, 70, 16, 16),
    (1, 2, 130, 130, 8, 5),
    (2, 1, 5, 9, 4, 6),          # L < S: top-left causal alignment
    (1, 1, 150, 67, 32, 32),     # L > S
    (2, 3, 1, 300, 32, 24),      # one query (a decoding step) over two blocks of keys
    (1, 2, 65, 65, 8, 8),        # a last block of one query row
    (1, 2, 300, 300, 8, 8),      # several blocks of keys for the later queries
]


def inputs(case, dtype, seed=0):
    b, h, n_q, n_k, e, ev = case
    rng = np.random.default_rng(seed)
    q = rng.standard_normal((b, h, n_q, e)).astype(dtype)
    k = rng.standard_normal((b, h, n_k, e)).astype(dtype)
    v = rng.standard_normal((b, h, n_k, ev)).astype(dtype)
    dout = rng.standard_normal((b, h, n_q, ev)).astype(dtype)
    return q, k, v, dout


def check(kern, q, k, v, dout, mask, causal, dtype, scale=None):
    out, cache = kern.attention_forward(q, k, v, mask, scale, causal, 0.0, None)
    ref_out, ref_cache = reference.attention_forward(q, k, v, mask, scale, causal, 0.0, None)
    assert out.dtype == np.dtype(dtype) and out.shape == ref_out.shape
    np.testing.assert_allclose(out, ref_out, atol=ATOL[dtype], rtol=0)
    grads = kern.attention_backward(dout, cache)[:3]
    want = reference.attention_backward(dout, ref_cache)[:3]
    for g, w in zip(grads, want):
        assert g.dtype == np.dtype(dtype) and g.shape == w.shape
        np.testing.assert_allclose(g, w, atol=10 * ATOL[dtype], rtol=0)


@pytest.fixture(params=BACKENDS)
def kern(request):
    return kernels.get_backend(request.param)


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("case", CASES)
@pytest.mark.parametrize("causal", [True, False])
def test_matches_twin(kern, case, dtype, causal):
    check(kern, *inputs(case, dtype), None, causal, dtype)


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("case", CASES[1:])
def test_boolean_mask_with_dead_rows(kern, case, dtype):
    q, k, v, dout = inputs(case, dtype, seed=1)
    rng = np.random.default_rng(2)
    mask = rng.random((case[0], 1, case[2], case[3])) > 0.4    # broadcasts over heads
    mask[:, :, 0] = False                                      # a query that sees nothing
    check(kern, q, k, v, dout, mask, False, dtype, scale=0.3)


def test_dead_rows_are_zero(kern):
    q, k, v, dout = inputs((1, 1, 3, 4, 2, 2), np.float64)
    mask = np.zeros((3, 4), bool)
    out, cache = kern.attention_forward(q, k, v, mask, None, False, 0.0, None)
    assert np.all(out == 0)
    assert all(np.all(g == 0) for g in kern.attention_backward(dout, cache)[:3])


def test_unsupported_cases_fall_back(kern):
    """Float masks and dropout go to the NumPy pair, which also returns dscores."""
    q, k, v, dout = inputs((1, 2, 6, 6, 4, 4), np.float64)
    fmask = np.random.default_rng(0).standard_normal((6, 6))
    out, cache = kern.attention_forward(q, k, v, fmask, None, False, 0.0, None)
    ref_out, _ = reference.attention_forward(q, k, v, fmask, None, False, 0.0, None)
    np.testing.assert_allclose(out, ref_out, atol=1e-12)
    assert kern.attention_backward(dout, cache)[3].shape == (1, 2, 6, 6)
    out, cache = kern.attention_forward(q, k, v, None, None, True, 0.5,
                                        np.random.default_rng(0))
    assert out.shape == q.shape


@pytest.mark.parametrize("causal", [True, False])
def test_parallel_heads_match(causal):
    if "cython" not in BACKENDS:
        pytest.skip(kernels.compiled_reason())
    from tinyllm.kernels import _attention

    old = _attention.set_parallel_threshold(0)
    try:
        check(kernels.get_backend("cython"), *inputs((3, 3, 77, 77, 8, 8), np.float64), None,
              causal, np.float64)
    finally:
        _attention.set_parallel_threshold(old)


@pytest.mark.parametrize("causal", [True, False])
def test_gradcheck_through_op(causal):
    rng = np.random.default_rng(5)
    q, k, v = (tinyllm.tensor(rng.standard_normal((1, 2, 67, 3)), requires_grad=True)
               for _ in range(3))
    assert gradcheck(lambda q, k, v: F.scaled_dot_product_attention(q, k, v, is_causal=causal),
                     q, k, v)


def test_gradcheck_through_op_bool_mask():
    rng = np.random.default_rng(6)
    q, k, v = (tinyllm.tensor(rng.standard_normal((2, 1, 5, 3)), requires_grad=True)
               for _ in range(3))
    mask = rng.random((2, 1, 5, 5)) > 0.3
    assert gradcheck(lambda q, k, v: F.scaled_dot_product_attention(q, k, v, attn_mask=mask),
                     q, k, v)


def test_active_backend_is_used_by_the_op():
    """The op's node keeps the cache of the active backend's forward (FlashCache when compiled)."""
    q = tinyllm.tensor(np.random.default_rng(7).standard_normal((1, 2, 5, 4)), requires_grad=True)
    node = F.scaled_dot_product_attention(q, q, q, is_causal=True).grad_fn
    _, want = kernels.attention_forward(q.data, q.data, q.data, None, None, True, 0.0, None)
    assert type(node.cache) is type(want)
    if kernels.backend() == "cython":
        assert not isinstance(node.cache, reference.AttentionCache)


def test_twin_dropout_needs_a_generator():
    """The kernels take no global state: the op hands them tinyllm's generator."""
    q, k, v, _ = inputs((1, 1, 3, 3, 2, 2), np.float64)
    with pytest.raises(ValueError, match="dropout_p=0.5 needs a generator"):
        reference.attention_forward(q, k, v, None, None, False, 0.5, None)
    tinyllm.manual_seed(3)
    a = F.scaled_dot_product_attention(*(tinyllm.tensor(x) for x in (q, k, v)), dropout_p=0.5)
    tinyllm.manual_seed(3)
    b = F.scaled_dot_product_attention(*(tinyllm.tensor(x) for x in (q, k, v)), dropout_p=0.5,
                                       generator=tinyllm.autograd.random.default_generator())
    np.testing.assert_array_equal(a.data, b.data)


def test_compiled_kernel_refuses_what_it_does_not_support():
    """Called directly, the compiled pair says what it takes (tinyllm.kernels routes the rest)."""
    if "cython" not in BACKENDS:
        pytest.skip(kernels.compiled_reason())
    from tinyllm.kernels import _attention

    q, k, v, dout = inputs((1, 1, 3, 3, 2, 2), np.float64)
    assert not _attention.supports(q, k, v, np.zeros((3, 3)), 0.0)
    with pytest.raises(ValueError, match="boolean mask or none; got .* mask float64"):
        _attention.attention_forward(q, k, v, np.zeros((3, 3)))
    _, cache = reference.attention_forward(q, k, v)
    with pytest.raises(TypeError, match="expected this kernel's FlashCache, got AttentionCache"):
        _attention.attention_backward(dout, cache)


@pytest.mark.parametrize("dtype", DTYPES)
def test_keys_and_values_read_in_place_from_a_cache_buffer(kern, dtype):
    """k, v as a KV cache holds them -- the first S positions of (B, nh, capacity, E)
    buffers, each head contiguous, heads `capacity` rows apart -- give the same bits as
    contiguous copies, with and without a mask; the backward too."""
    q, _, _, dout = inputs((2, 3, 1, 40, 16, 16), dtype)
    rng = np.random.default_rng(5)
    buffers = rng.standard_normal((2, 2, 3, 64, 16)).astype(dtype)
    k, v = buffers[0][:, :, :40], buffers[1][:, :, :40]
    assert not k.flags.c_contiguous
    mask = rng.random((2, 1, 1, 40)) > 0.3
    for m in (None, mask):
        got, got_cache = kern.attention_forward(q, k, v, m, None, False, 0.0, None)
        want, want_cache = kern.attention_forward(q, k.copy(), v.copy(), m, None, False, 0.0,
                                                  None)
        assert np.array_equal(got, want)
        for g, w in zip(kern.attention_backward(dout, got_cache)[:3],
                        kern.attention_backward(dout, want_cache)[:3]):
            assert np.array_equal(g, w)
