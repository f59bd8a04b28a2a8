"""packed_self_attention: split, heads, attention and merge of a fused projection in one op.

Proven against the general path it replaces (split in three, split heads, F.scaled_dot_product_
attention, merge heads) -- values and gradients, causal and full, on every kernel backend --
and by finite differences in float64; MultiHeadAttention takes it exactly when it may.
"""

import numpy as np
import pytest

import tinyllm
from tinyllm import kernels
from tinyllm.autograd.gradcheck import gradcheck
from tinyllm.autograd.ops.attention import PackedSelfAttention, packed_self_attention
from tinyllm.bench import use_backend
from tinyllm.nn.attention import MultiHeadAttention, attend, merge_heads, split_qkv_heads


def _general(qkv, n_head, is_causal, scale=None):
    q, k, v = split_qkv_heads(qkv, n_head)
    return merge_heads(attend(q, k, v, is_causal=is_causal, scale=scale))


@pytest.mark.parametrize("backend", kernels.available_backends())
@pytest.mark.parametrize("is_causal", [True, False])
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("scale", [None, 0.3])
def test_equals_the_general_path_values_and_gradients(backend, is_causal, dtype, scale):
    rng = np.random.default_rng(0)
    x = rng.standard_normal((2, 7, 3 * 12)).astype(dtype)
    dy = rng.standard_normal((2, 7, 12)).astype(dtype)
    results = []
    with use_backend(backend):
        for fn in (packed_self_attention, _general):
            qkv = tinyllm.tensor(x, requires_grad=True)
            y = fn(qkv, 3, is_causal, scale)
            (y * tinyllm.tensor(dy)).sum().backward()
            results.append((y.data, qkv.grad))
    tol = 1e-5 if dtype == np.float32 else 1e-12
    for a, b in zip(*results):
        assert a.dtype == np.dtype(dtype)
        np.testing.assert_allclose(a, b, rtol=tol, atol=tol)


@pytest.mark.parametrize("backend", kernels.available_backends())
@pytest.mark.parametrize("is_causal", [True, False])
@pytest.mark.parametrize("scale", [None, 0.3])
def test_gradient_by_finite_differences(backend, is_causal, scale):
    rng = np.random.default_rng(1)
    qkv = tinyllm.tensor(rng.standard_normal((2, 5, 3 * 8)), requires_grad=True)
    with use_backend(backend):
        assert gradcheck(lambda t: packed_self_attention(t, 2, is_causal, scale), qkv)


def test_multi_head_attention_uses_it_exactly_when_it_may(monkeypatch):
    """Training without masks, cache or dropout: the packed op (one node); with any of them,
    the general path -- and both give the same output."""
    calls = []
    original = PackedSelfAttention.forward

    def counting(self, *args, **kwargs):
        calls.append(1)
        return original(self, *args, **kwargs)
    monkeypatch.setattr(PackedSelfAttention, "forward", counting)
    tinyllm.manual_seed(0)
    attn = MultiHeadAttention(16, 4, is_causal=True)
    x = tinyllm.randn(2, 6, 16, requires_grad=True)
    packed = attn(x)
    assert len(calls) == 1
    with tinyllm.no_grad():
        general = attn(x)                                  # no graph: the general path
    assert len(calls) == 1
    np.testing.assert_allclose(packed.data, general.data, rtol=1e-5, atol=1e-6)
    attn(x, attn_mask=np.tril(np.ones((6, 6), bool)))     # a mask: the general path
    assert len(calls) == 1
    attn.dropout = 0.1
    attn(x)                                               # dropout in training: general
    assert len(calls) == 1


def test_bad_input_is_refused():
    with pytest.raises(ValueError, match=r"qkv \(B, T, 3 \* n_head \* head_size\) with "
                                         r"n_head=2, got shape \(2, 5, 10\)"):
        packed_self_attention(tinyllm.randn(2, 5, 10), 2)
    with pytest.raises(TypeError, match="must be floating"):
        packed_self_attention(tinyllm.tensor(np.ones((1, 2, 6), np.int64)), 1)
