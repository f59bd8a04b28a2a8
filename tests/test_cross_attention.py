"""Cross-attention's gradients against central finite differences, on every kernel backend.

Cross-attention lets T decoder positions (queries) attend S encoder positions (keys and
values), T != S, with the source's padded positions hidden; the decoder's self-attention
hides padded target positions too. Checked in float64 with tinyllm.autograd.gradcheck: an
element passes when |analytic - numeric| <= 1e-7 + 1e-5 |numeric| (eps = 1e-6), for the
inputs (decoder and encoder states) and every weight, on the NumPy twin of the attention
kernel and on the compiled one where it is built.
"""

import numpy as np
import pytest

import tinyllm
from tinyllm import kernels
from tinyllm.autograd.dtype import default_dtype
from tinyllm.autograd.gradcheck import gradcheck, max_relative_error
from tinyllm.bench import use_backend
from tinyllm.models import Seq2SeqConfig, Seq2SeqTransformer
from tinyllm.models.seq2seq import (
    Seq2SeqAttention,
    Seq2SeqDecoderLayer,
    attention_weights,
)

B, T, S, C, NH = 2, 3, 5, 6, 2
SOURCE_PAD = np.array([[False, False, False, True, True],       # (B, S) True = padding
                       [False, False, False, False, True]])
TARGET_PAD = np.array([[False, False, True],                     # (B, T)
                       [False, False, False]])


@pytest.fixture(params=kernels.available_backends())
def backend(request):
    with use_backend(request.param):
        yield request.param


def t64(rng, *shape):
    return tinyllm.tensor(rng.standard_normal(shape), requires_grad=True)


def _perturb(module, rng):
    """Move every parameter off its start (biases 0, LayerNorm 1) so each one matters."""
    for p in module.parameters():
        p.data += rng.normal(0.0, 0.3, p.shape)
    return module


def test_cross_attention_inputs_and_weights(backend):
    rng = np.random.default_rng(0)
    with default_dtype(np.float64):
        attn = _perturb(Seq2SeqAttention(C, NH), rng)
    x, h = t64(rng, B, T, C), t64(rng, B, S, C)

    def fn(x, h, *params):
        return attn(x, key_value=attn.project_kv(h), key_padding_mask=SOURCE_PAD)[0]

    assert fn(x, h).shape == (B, T, C)
    assert gradcheck(fn, x, h, *attn.parameters())


def test_padded_source_positions_get_no_gradient(backend):
    rng = np.random.default_rng(1)
    with default_dtype(np.float64):
        attn = Seq2SeqAttention(C, NH)
    x, h = t64(rng, B, T, C), t64(rng, B, S, C)
    y, weights = attn(x, key_value=attn.project_kv(h), key_padding_mask=SOURCE_PAD,
                      need_weights=True)
    (y * tinyllm.tensor(rng.standard_normal(y.shape))).sum().backward()
    assert np.all(h.grad[SOURCE_PAD] == 0) and np.all(np.abs(h.grad[~SOURCE_PAD]) > 0)
    assert weights.shape == (B, NH, T, S)
    assert np.all(weights[np.broadcast_to(SOURCE_PAD[:, None, None, :], weights.shape)] == 0)
    np.testing.assert_allclose(weights.sum(-1), 1.0, rtol=0, atol=1e-12)


def test_weights_are_what_the_output_is_made_of(backend):
    """The returned weights (computed apart, outside the graph) times the values give the
    attention's output before out_proj."""
    rng = np.random.default_rng(2)
    with default_dtype(np.float64):
        attn = _perturb(Seq2SeqAttention(C, NH), rng)
    x, h = t64(rng, B, T, C), t64(rng, B, S, C)
    k, v = attn.project_kv(h)
    y, weights = attn(x, key_value=(k, v), key_padding_mask=SOURCE_PAD, need_weights=True)
    mixed = (weights @ v.data).transpose(0, 2, 1, 3).reshape(B, T, C)   # (B, T, C)
    expected = mixed @ attn.out_proj.weight.data.T + attn.out_proj.bias.data
    assert max_relative_error(y.data, expected) <= 1e-12
    causal = attention_weights(x.data[:, None], x.data[:, None], is_causal=True)
    assert np.all(np.triu(causal[0, 0], k=1) == 0)


def test_decoder_layer_with_padding_on_both_sides(backend):
    rng = np.random.default_rng(3)
    config = Seq2SeqConfig(vocab_size=11, d_model=C, decoder_attention_heads=NH,
                           encoder_attention_heads=NH, decoder_ffn_dim=7,
                           activation_function="swish")
    with default_dtype(np.float64):
        layer = _perturb(Seq2SeqDecoderLayer(config), rng)
    y, h = t64(rng, B, T, C), t64(rng, B, S, C)

    def fn(y, h, *params):
        kv = layer.encoder_attn.project_kv(h)
        return layer(y, kv, source_padding=SOURCE_PAD, target_padding=TARGET_PAD)[0]

    assert gradcheck(fn, y, h, *layer.parameters())


def test_whole_model_loss_gradient(backend):
    """The loss through encoder, cross-attention and the tied head, with padded sources and
    targets, against finite differences in the weights that only the full model has: the
    shared embedding (read by both sides and the head), the output bias, and the first
    decoder layer's cross-attention.

    The padding id's embedding row gets no gradient from its lookups (PyTorch's padding_idx),
    only from the head; finite differences agree because every padded position is masked
    out, so those lookups do not change the loss. (The decoder starts from id 2 here: with
    Marian's usual start id, the padding id, the first lookup would count.)"""
    rng = np.random.default_rng(4)
    config = Seq2SeqConfig(vocab_size=7, d_model=4, encoder_layers=1, decoder_layers=1,
                           encoder_attention_heads=2, decoder_attention_heads=2,
                           encoder_ffn_dim=5, decoder_ffn_dim=6, max_position_embeddings=8,
                           pad_token_id=0, eos_token_id=1, decoder_start_token_id=2,
                           init_std=0.5)
    with default_dtype(np.float64):
        model = _perturb(Seq2SeqTransformer(config, seed=0), rng)
    src = np.array([[2, 3, 4, 5, 0], [6, 2, 3, 0, 0]])
    mask = (src != 0).astype(np.int64)
    labels = np.array([[3, 4, 1, -100], [5, 1, -100, -100]])
    cross = model.model.decoder.layers[0].encoder_attn
    params = [model.model.shared.weight, model.final_logits_bias, cross.q_proj.weight,
              cross.k_proj.weight, cross.v_proj.weight]

    def fn(*params):
        return model(src, attention_mask=mask, labels=labels,
                     decoder_attention_mask=(labels != -100).astype(np.int64)).loss

    assert gradcheck(fn, *params)
