"""Scaled dot-product attention (the fused op) and multi-head attention with masks and a cache.

Gradient checks: float64 central differences, |analytic - numeric| <= 1e-7 + 1e-5 |numeric|
(tinyllm.autograd.gradcheck). Composed and PyTorch comparisons: float64, relative error
(max |a - b| / max |b|) <= 1e-10.
"""

import numpy as np
import pytest

import tinyllm
import tinyllm.functional as F
import tinyllm.nn as nn
from tinyllm import kernels
from tinyllm.autograd.gradcheck import gradcheck, max_relative_error
from tinyllm.autograd.ops import attention as attn_ops
from tinyllm.kernels import attention_reference

TOL = 1e-10
RNG = np.random.default_rng(7)


def t64(*shape):
    return tinyllm.tensor(RNG.standard_normal(shape), requires_grad=True)


B, H, L, S, E = 2, 2, 3, 4, 5
PAD = np.array([[False, False, True, True], [False, False, False, True]])  # (B, S) True = pad
BOOL_MASK = RNG.random((L, S)) > 0.4
BOOL_MASK[:, 0] = True  # every query sees at least one key
FLOAT_MASK = RNG.standard_normal((L, S)) + np.where(BOOL_MASK, 0.0, -np.inf)

# name: (q shape, k shape, v shape, keyword arguments)
CASES = {
    "plain": ((B, H, L, E), (B, H, S, E), (B, H, S, 3), {}),
    "causal_square": ((B, H, S, E), (B, H, S, E), (B, H, S, E), {"is_causal": True}),
    "causal_top_left_l_lt_s": ((B, H, L, E), (B, H, S, E), (B, H, S, E), {"is_causal": True}),
    "causal_top_left_l_gt_s": ((B, H, S, E), (B, H, L, E), (B, H, L, E), {"is_causal": True}),
    "bool_mask": ((B, H, L, E), (B, H, S, E), (B, H, S, E), {"attn_mask": BOOL_MASK}),
    "float_mask": ((B, H, L, E), (B, H, S, E), (B, H, S, E), {"attn_mask": FLOAT_MASK}),
    "key_padding_broadcast": (
        (B, H, L, E),
        (B, H, S, E),
        (B, H, S, E),
        {"attn_mask": ~PAD[:, None, None, :]},
    ),
    "custom_scale": ((B, H, L, E), (B, H, S, E), (B, H, S, E), {"scale": 0.7}),
    "three_dims": ((H, L, E), (H, S, E), (H, S, 2), {}),
    "broadcast_batch": ((B, H, L, E), (1, H, S, E), (B, 1, S, E), {}),
}


@pytest.mark.parametrize("name", CASES)
def test_gradcheck(name):
    qs, ks, vs, kw = CASES[name]
    q, k, v = t64(*qs), t64(*ks), t64(*vs)
    assert gradcheck(lambda a, b, c: F.scaled_dot_product_attention(a, b, c, **kw), q, k, v)


def test_gradcheck_non_contiguous_inputs():
    q = tinyllm.Tensor._make(
        RNG.standard_normal((B, L, H, E)).transpose(0, 2, 1, 3), requires_grad=True
    )
    k, v = t64(B, H, S, E), t64(B, H, S, E)
    assert not q.data.flags["C_CONTIGUOUS"]
    assert gradcheck(lambda a, b, c: F.scaled_dot_product_attention(a, b, c), q, k, v)


def test_gradcheck_learned_float_mask():
    q, k, v = t64(B, H, L, E), t64(B, H, S, E), t64(B, H, S, E)
    bias = t64(H, L, S)  # e.g. a learned relative bias
    assert gradcheck(
        lambda a, b, c, m: F.scaled_dot_product_attention(a, b, c, attn_mask=m), q, k, v, bias
    )


def test_gradcheck_dropout_with_fixed_generator():
    q, k, v = t64(B, H, L, E), t64(B, H, S, E), t64(B, H, S, E)

    def fn(a, b, c):  # a fresh generator per call: the same dropout mask every time
        return F.scaled_dot_product_attention(
            a, b, c, dropout_p=0.3, generator=np.random.default_rng(5)
        )

    assert gradcheck(fn, q, k, v)


def composed(q, k, v, mask=None, is_causal=False, scale=None):
    """The same attention from primitive ops (no fused node)."""
    scale = 1 / np.sqrt(q.shape[-1]) if scale is None else scale
    scores = (q @ k.transpose(-2, -1)) * scale
    if is_causal:
        mask = np.tri(q.shape[-2], k.shape[-2], dtype=bool)
    if mask is not None and mask.dtype == bool:
        scores = scores.masked_fill(~mask, -np.inf)
    elif mask is not None:
        scores = scores + tinyllm.tensor(mask)
    return F.softmax(scores, -1) @ v


@pytest.mark.parametrize(
    "name",
    [
        "plain",
        "causal_top_left_l_lt_s",
        "bool_mask",
        "float_mask",
        "key_padding_broadcast",
        "custom_scale",
    ],
)
def test_equals_composed_ops(name):
    qs, ks, vs, kw = CASES[name]
    inputs = [t64(*s) for s in (qs, ks, vs)]
    twins = [tinyllm.tensor(t.data, requires_grad=True) for t in inputs]
    out = F.scaled_dot_product_attention(*inputs, **kw)
    ref = composed(
        *twins,
        mask=kw.get("attn_mask"),
        is_causal=kw.get("is_causal", False),
        scale=kw.get("scale"),
    )
    assert max_relative_error(out.data, ref.data) <= TOL
    w = RNG.standard_normal(out.shape)
    (out * tinyllm.tensor(w)).sum().backward()
    (ref * tinyllm.tensor(w)).sum().backward()
    for a, b in zip(inputs, twins):
        assert max_relative_error(a.grad, b.grad) <= TOL


def test_fully_masked_query_gives_zeros_not_nan():
    q, k, v = t64(1, 1, L, E), t64(1, 1, S, E), t64(1, 1, S, E)
    mask = np.ones((L, S), dtype=bool)
    mask[1] = False  # query 1 may see nothing
    out = F.scaled_dot_product_attention(q, k, v, attn_mask=mask)
    assert np.all(out.data[0, 0, 1] == 0) and np.isfinite(out.data).all()
    out.sum().backward()
    assert np.all(q.grad[0, 0, 1] == 0) and np.isfinite(k.grad).all()


def test_dropout_is_reproducible_and_matches_a_drawn_mask():
    q, k, v = t64(B, H, L, E), t64(B, H, S, E), t64(B, H, S, E)
    run = [
        F.scaled_dot_product_attention(
            q, k, v, dropout_p=0.5, generator=np.random.default_rng(s)
        ).data
        for s in (1, 1, 2)
    ]
    assert np.array_equal(run[0], run[1]) and not np.array_equal(run[0], run[2])
    keep = np.random.default_rng(1).random((B, H, L, S)) >= 0.5
    probs = F.softmax((q @ k.transpose(-2, -1)) * (1 / np.sqrt(E)), -1).data
    assert max_relative_error(run[0], (probs * keep / 0.5) @ v.data) <= TOL
    no_drop = F.scaled_dot_product_attention(q, k, v, dropout_p=0.0).data
    assert max_relative_error(no_drop, probs @ v.data) <= TOL


def test_float32_stays_float32():
    q = tinyllm.randn(B, H, L, E)
    mask = np.zeros((L, S))  # a float64 mask must not upcast
    out = F.scaled_dot_product_attention(
        q, tinyllm.randn(B, H, S, E), tinyllm.randn(B, H, S, E), attn_mask=mask
    )
    assert out.dtype == np.float32


def test_kernel_dispatch_point(monkeypatch):
    calls = []

    def fwd(*args):
        calls.append("forward")
        return attn_ops.attention_forward(*args)

    def bwd(*args):
        calls.append("backward")
        return attn_ops.attention_backward(*args)

    monkeypatch.setattr(kernels, "attention_forward", fwd, raising=False)
    monkeypatch.setattr(kernels, "attention_backward", bwd, raising=False)
    q = t64(1, 1, 2, 3)
    F.scaled_dot_product_attention(q, q, q).sum().backward()
    assert calls == ["forward", "backward"]


@pytest.mark.parametrize(
    "bad, message",
    [
        (dict(attn_mask=np.ones((2, 2), dtype=bool)), "does not broadcast"),
        (dict(attn_mask=np.ones((L, S), dtype=np.int64)), "boolean"),
        (dict(attn_mask=np.ones((L, S), dtype=bool), is_causal=True), "not both"),
        (dict(dropout_p=1.0), "dropout_p"),
        (dict(scale=float("nan")), "scale"),
    ],
)
def test_bad_arguments(bad, message):
    q, k, v = t64(B, H, L, E), t64(B, H, S, E), t64(B, H, S, E)
    with pytest.raises((ValueError, TypeError), match=message):
        F.scaled_dot_product_attention(q, k, v, **bad)


def test_bad_shapes_and_dtypes():
    q, k = t64(B, H, L, E), t64(B, H, S, E)
    with pytest.raises(ValueError, match="query has 5 features"):
        F.scaled_dot_product_attention(q, t64(B, H, S, 4), t64(B, H, S, 4))
    with pytest.raises(ValueError, match="but value has 3"):
        F.scaled_dot_product_attention(q, k, t64(B, H, 3, E))
    with pytest.raises(TypeError, match="share a dtype"):
        F.scaled_dot_product_attention(q, k, tinyllm.randn(B, H, S, E))


# ----------------------------------------------------------------- multi-head attention
def test_causal_mask_is_bottom_right():
    assert np.array_equal(nn.causal_mask(3, 3), np.tri(3, 3, dtype=bool))
    assert nn.causal_mask(1, 5).all()
    assert np.array_equal(nn.causal_mask(2, 4), [[1, 1, 1, 0], [1, 1, 1, 1]])


@pytest.mark.parametrize(
    "n_queries, n_keys, align, expected",
    [
        (2, 4, "bottom-right", [[1, 1, 1, 0],
                                [1, 1, 1, 1]]),
        (2, 4, "top-left", [[1, 0, 0, 0],
                            [1, 1, 0, 0]]),
        (4, 2, "bottom-right", [[0, 0],
                                [0, 0],
                                [1, 0],
                                [1, 1]]),
        (4, 2, "top-left", [[1, 0],
                            [1, 1],
                            [1, 1],
                            [1, 1]]),
    ],
)
def test_causal_mask_alignments(n_queries, n_keys, align, expected):
    mask = nn.causal_mask(n_queries, n_keys, align=align)
    assert mask.dtype == np.bool_ and np.array_equal(mask, np.array(expected, dtype=bool))


def test_causal_mask_is_the_one_functional_uses():
    """is_causal=True is the top-left mask; nn's KV-cache attention uses the bottom-right one."""
    q, k, v = t64(B, H, L, E), t64(B, H, S, E), t64(B, H, S, E)
    top_left = nn.causal_mask(L, S, align="top-left")
    assert np.array_equal(F.scaled_dot_product_attention(q, k, v, is_causal=True).data,
                          F.scaled_dot_product_attention(q, k, v, attn_mask=top_left).data)
    assert nn.causal_mask is attention_reference.causal_mask


def test_causal_mask_rejects_an_unknown_alignment():
    with pytest.raises(ValueError, match=r"align must be one of \('top-left', 'bottom-right'\), "
                                         r"got 'bottom-left'"):
        nn.causal_mask(2, 3, align="bottom-left")


def _mha(**kw):
    with tinyllm.default_dtype(np.float64):
        tinyllm.manual_seed(0)
        m = nn.MultiHeadAttention(embed_dim=8, num_heads=2, **kw)
    for p in m.parameters():  # non-zero biases so every term is exercised
        p.data[...] = RNG.standard_normal(p.shape) * 0.5
    return m


def test_mha_kv_cache_matches_full_causal_pass():
    m = _mha(is_causal=True)
    x = tinyllm.tensor(RNG.standard_normal((2, 6, 8)))
    full = m(x).data
    cache = nn.LayerKVCache()
    parts = [
        m(x[:, :3], kv_cache=cache).data,
        m(x[:, 3:4], kv_cache=cache).data,
        m(x[:, 4:], kv_cache=cache).data,
    ]
    assert len(cache) == 6
    assert max_relative_error(np.concatenate(parts, axis=1), full) <= TOL


def test_kv_cache_buffers_grow_in_place_and_survive_a_replaced_cache():
    """Outside autograd the cache writes each step into doubling buffers: the keys equal the
    concatenation of every step's, a step within capacity reuses the buffer, and keys put in
    by a caller (beam search reorders rows) are copied into new buffers, not lost."""
    cache = nn.LayerKVCache()
    steps = [RNG.standard_normal((2, 3, t, 4)) for t in (5, 1, 1, 1, 20, 1)]
    for i, k in enumerate(steps):
        ks, vs = cache.update(tinyllm.tensor(k), tinyllm.tensor(-k))
        want = np.concatenate(steps[:i + 1], axis=2)
        assert np.array_equal(ks.data, want) and np.array_equal(vs.data, -want)
        if i == 2:
            buffer = ks.data.base
        if i == 3:
            assert ks.data.base is buffer                 # room for it: no new buffer
    rows = np.array([1, 0])
    cache.k, cache.v = tinyllm.tensor(cache.k.data[rows]), tinyllm.tensor(cache.v.data[rows])
    new = RNG.standard_normal((2, 3, 1, 4))
    ks, _ = cache.update(tinyllm.tensor(new), tinyllm.tensor(new))
    want = np.concatenate([np.concatenate(steps, axis=2)[rows], new], axis=2)
    assert np.array_equal(ks.data, want) and len(cache) == 30


def test_mha_key_padding_equals_dropping_the_keys():
    m = _mha()
    x = tinyllm.tensor(RNG.standard_normal((1, 5, 8)))
    pad = np.array([[False, False, False, True, True]])
    padded = m(x, key_padding_mask=pad).data[:, :3]
    alone = m(x[:, :3]).data
    assert max_relative_error(padded, alone) <= TOL


def test_mha_masks_combine():
    m = _mha(is_causal=True)
    x = tinyllm.tensor(RNG.standard_normal((2, 4, 8)))
    pad = np.array([[False] * 4, [False, False, False, True]])
    extra = np.ones((4, 4), dtype=bool)
    extra[3, 1] = False
    as_bool = m(x, attn_mask=extra, key_padding_mask=pad).data
    as_float = m(x, attn_mask=np.where(extra, 0.0, -np.inf), key_padding_mask=pad).data
    # The same, built by hand and passed to the fused op.
    allowed = np.tri(4, 4, dtype=bool) & extra & ~pad[:, None, None, :]
    q, k, v = (nn.attention.split_heads(t, 2) for t in m.c_attn(x).split(8, dim=2))
    y = F.scaled_dot_product_attention(q, k, v, attn_mask=allowed)
    ref = m.c_proj(nn.attention.merge_heads(y)).data
    assert max_relative_error(as_bool, ref) <= TOL
    assert max_relative_error(as_float, ref) <= TOL


def test_mha_gradcheck_with_cache_and_padding():
    m = _mha(is_causal=True)
    x = tinyllm.tensor(RNG.standard_normal((2, 3, 8)), requires_grad=True)
    pad = np.array([[False] * 5, [True, False, False, False, False]])
    past = tinyllm.tensor(RNG.standard_normal((2, 2, 8)))

    def fn(inp, *params):
        cache = nn.LayerKVCache()
        m(past, kv_cache=cache)
        return m(inp, key_padding_mask=pad, kv_cache=cache)

    assert gradcheck(fn, x, *m.parameters())


@pytest.mark.parametrize(
    "kwargs, message",
    [
        (dict(key_padding_mask=np.zeros((2, 3), dtype=bool)), r"expected \(B, S\) = \(2, 4\)"),
        (dict(key_padding_mask=np.zeros((2, 4))), "boolean"),
        (dict(attn_mask=np.ones((3, 4), dtype=bool)), r"broadcasts to \(B, nh, T, S\)"),
    ],
)
def test_mha_bad_masks(kwargs, message):
    m = _mha()
    with pytest.raises((ValueError, TypeError), match=message):
        m(tinyllm.tensor(RNG.standard_normal((2, 4, 8))), **kwargs)


@pytest.mark.parametrize(
    "mask, error, message",
    [
        (np.ones((4, 4), dtype=np.int64), TypeError,
         "attn_mask must be boolean (True = may attend) or floating (added to the scores), "
         "got int64"),
        (np.ones((3, 4), dtype=bool), ValueError,
         "attn_mask of shape (3, 4) does not broadcast to the attention scores; accepted: a "
         "shape that broadcasts to (..., L, S) = (2, 2, 4, 4), e.g. (4, 4) for the whole batch"),
    ],
)
def test_one_mask_check_for_nn_and_the_op(mask, error, message):
    """MultiHeadAttention and F.scaled_dot_product_attention reject a mask with one message."""
    with pytest.raises(error) as from_nn:
        _mha()(tinyllm.tensor(RNG.standard_normal((2, 4, 8))), attn_mask=mask)
    q = t64(2, 2, 4, 5)
    with pytest.raises(error) as from_op:
        F.scaled_dot_product_attention(q, q, q, attn_mask=mask)
    assert str(from_op.value) == f"scaled_dot_product_attention: {message}"
    assert str(from_nn.value) == f"attend: {message}".replace("(..., L, S)", "(B, nh, T, S)")



def test_mha_bad_construction_and_input():
    with pytest.raises(ValueError, match="embed_dim=10 is not divisible by num_heads=4"):
        nn.MultiHeadAttention(10, 4)
    with pytest.raises(ValueError, match=r"expected input \(B, T, C\) with C = 8"):
        _mha()(tinyllm.randn(2, 3, 6))


# ----------------------------------------------------------------- PyTorch parity
@pytest.mark.parametrize("name", CASES)
def test_torch_parity(name):
    torch = pytest.importorskip("torch")
    qs, ks, vs, kw = CASES[name]
    arrays = [RNG.standard_normal(s) for s in (qs, ks, vs)]
    ours = [tinyllm.tensor(a, requires_grad=True) for a in arrays]
    theirs = [torch.tensor(a, requires_grad=True) for a in arrays]
    tkw = {
        key: torch.tensor(val) if isinstance(val, np.ndarray) else val for key, val in kw.items()
    }
    if name == "broadcast_batch":  # PyTorch wants the batch dims spelled out
        theirs_in = [t.expand(B, H, *t.shape[2:]) for t in theirs]
    else:
        theirs_in = theirs
    out = F.scaled_dot_product_attention(*ours, **kw)
    ref = torch.nn.functional.scaled_dot_product_attention(*theirs_in, **tkw)
    assert max_relative_error(out.data, ref.detach().numpy()) <= TOL
    w = RNG.standard_normal(out.shape)
    (out * tinyllm.tensor(w)).sum().backward()
    (ref * torch.tensor(w)).sum().backward()
    for a, b in zip(ours, theirs):
        assert max_relative_error(a.grad, b.grad.numpy()) <= TOL


def test_torch_parity_fully_masked_row():
    torch = pytest.importorskip("torch")
    arrays = [RNG.standard_normal((1, 1, L, E)) for _ in range(3)]
    mask = np.ones((L, L), dtype=bool)
    mask[2] = False
    out = F.scaled_dot_product_attention(*(tinyllm.tensor(a) for a in arrays), attn_mask=mask)
    ref = torch.nn.functional.scaled_dot_product_attention(
        *(torch.tensor(a) for a in arrays), attn_mask=torch.tensor(mask)
    )
    assert max_relative_error(out.data, ref.numpy()) <= TOL
