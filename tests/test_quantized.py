"""Weight quantization: the quantizer's exact properties, the layer, and whole models saved
and loaded (tinyllm.nn.quantized)."""

import json

import numpy as np
import pytest

import tinyllm
import tinyllm.functional as F
from tinyllm.models import GPT, GPTConfig
from tinyllm.models.checkpoint import CheckpointError, read_safetensors_with_metadata
from tinyllm.models.seq2seq import Seq2SeqConfig, Seq2SeqTransformer
from tinyllm.nn import Conv1D, Linear
from tinyllm.nn.quantized import (
    QuantizedLinear,
    QuantScheme,
    dequantize_weight,
    pack_int4,
    quantize_model,
    quantize_weight,
    quantized_layers,
    unpack_int4,
    weight_bytes,
)

RNG = np.random.default_rng(0)
SCHEMES = ["int8-tensor", "int8-channel", "int4-g32", "int4-g64", "int4-g128"]


def _signed_scales(scale, scheme, shape):
    s = scale.astype(np.float64)
    return np.repeat(s, scheme.group_size, axis=1) if scheme.group_size else np.broadcast_to(
        s[:, None], shape)


def _scales_per_weight(scale, scheme, shape):
    """Each weight's scale, (out, in)."""
    s = np.abs(scale.astype(np.float64))
    if scheme.group_size:
        return np.repeat(s, scheme.group_size, axis=1)
    return np.broadcast_to(s[:, None], shape)


@pytest.mark.parametrize("name", SCHEMES)
def test_rounding_error_is_at_most_half_a_step(name):
    """Every weight comes back within half its scale (the uniform quantizer's bound); a weight
    on the grid comes back exactly."""
    scheme = QuantScheme.parse(name)
    w = RNG.standard_normal((6, 256)) * RNG.uniform(0.1, 3, (6, 1))
    q, scale = quantize_weight(w, scheme)
    back = dequantize_weight(q, scale, scheme, np.float64)
    step = _scales_per_weight(scale, scheme, w.shape)
    assert back.shape == w.shape
    # scales are rounded to float32 / float16 after they are chosen: allow that much slack
    slack = 1 + 2e-3
    clipped = (w / np.where(step == 0, 1, _signed_scales(scale, scheme, w.shape))
               > (7.5 if scheme.bits == 4 else 127.5))
    assert not clipped.any() if scheme.bits == 8 else clipped.mean() < 0.05
    err = np.abs(back - w)
    assert (err[~clipped] <= step[~clipped] / 2 * slack + 1e-12).all()
    assert (err[clipped] <= step[clipped] * slack).all()          # int4's +m clipped to +7
    again_q, again_s = quantize_weight(back, scheme)
    assert np.array_equal(dequantize_weight(again_q, again_s, scheme, np.float64), back)


def test_int8_scales_are_the_absmax_over_127_of_the_tensor_or_of_each_row():
    w = np.array([[1.0, -2.54, 0.5], [0.0, 0.127, -0.01]])
    q, s = quantize_weight(w, "int8-tensor")
    assert s.shape == (1,) and s[0] == np.float32(2.54 / 127)
    assert q.dtype == np.int8 and q[0, 1] == -127 and q[1, 0] == 0
    q, s = quantize_weight(w, "int8-channel")
    assert np.allclose(s, [2.54 / 127, 0.127 / 127]) and s.dtype == np.float32
    assert q[0, 1] == -127 and q[1, 1] == 127 and q[1, 2] == -10
    # an outlier spoils the other rows' resolution with one scale, not with one per row
    w = RNG.standard_normal((8, 64)) * 0.01
    w[0, 0] = 10.0
    err = {n: np.abs(dequantize_weight(*quantize_weight(w, n), n, np.float64) - w)[1:].max()
           for n in ("int8-tensor", "int8-channel")}
    assert err["int8-channel"] < err["int8-tensor"] / 50


def test_int4_is_q4_0_the_largest_weight_of_a_group_is_minus_8_steps():
    w = np.zeros((1, 32))
    w[0, :4] = [0.8, -0.3, 0.1, 0.79]
    q, s = quantize_weight(w, "int4-g32")
    assert s.dtype == np.float16 and s.shape == (1, 1) and s[0, 0] == np.float16(-0.1)
    values = unpack_int4(q, 32)[0]
    assert values[0] == -8 and values[1] == 3 and values[2] == -1 and values[3] == -8
    # a group holding +m and -m: -m would be +8 steps, clipped to 7 (an error of one step)
    w = np.zeros((1, 32))
    w[0, :2] = [1.0, -1.0]
    values = unpack_int4(quantize_weight(w, "int4-g32")[0], 32)[0]
    assert values[0] == -8 and values[1] == 7


def test_int4_packing_round_trips_every_value_two_to_a_byte_in_q4_0_order():
    q = np.tile(np.arange(-8, 8, dtype=np.int8), (2, 4))               # (2, 64)
    packed = pack_int4(q, 32)
    assert packed.dtype == np.uint8 and packed.shape == (2, 32)
    # group 0 holds inputs 0..31: byte 0 = input 0 (-8 -> 0) low, input 16 (-8 -> 0) high;
    # byte 1 = input 1 (-7 -> 1) low, input 17 (-7 -> 1) high
    assert packed[0, 0] == 0 and packed[0, 1] == (1 | (1 << 4))
    assert np.array_equal(unpack_int4(packed, 32), q)
    q = RNG.integers(-8, 8, (3, 128)).astype(np.int8)
    for g in (32, 64, 128):
        assert np.array_equal(unpack_int4(pack_int4(q, g), g), q)
    assert not np.array_equal(unpack_int4(pack_int4(q, 32), 64), q)   # the group size counts


def test_bad_schemes_and_shapes_are_refused_naming_the_value():
    with pytest.raises(ValueError, match="unknown quantization scheme 'int3'.*int8-tensor"):
        QuantScheme.parse("int3")
    with pytest.raises(ValueError, match="group size 48 is not accepted; accepted: 32, 64, 128"):
        QuantScheme.parse("int4-g48")
    with pytest.raises(ValueError, match="group size 64 does not divide the input dimension 96"):
        quantize_weight(np.ones((4, 96)), "int4-g64")
    tinyllm.manual_seed(0)
    small = GPT(GPTConfig(vocab_size=40, n_positions=8, n_embd=64, n_layer=1, n_head=4))
    with pytest.raises(ValueError, match="c_attn: group size 128 does not divide the input "
                                         "dimension 64 .*divides it \\(32, 64\\)"):
        quantize_model(small, "int4-g128")
    assert not quantized_layers(small)            # checked before any layer is replaced
    with pytest.raises(ValueError, match="NaN or infinity"):
        quantize_weight(np.full((2, 32), np.nan), "int8-tensor")
    layer = QuantizedLinear(64, 4, "int8-channel")
    with pytest.raises(ValueError, match="weight must be int8 of shape"):
        layer.set_quantized(np.zeros((4, 64), np.uint8), np.ones(4, np.float32))


@pytest.mark.parametrize("name", SCHEMES)
@pytest.mark.parametrize("layer_type", [Linear, Conv1D])
def test_the_layer_computes_x_times_the_dequantized_weight(name, layer_type):
    tinyllm.manual_seed(1)
    with tinyllm.default_dtype(np.float64):
        layer = layer_type(128, 5)
        x = tinyllm.tensor(RNG.standard_normal((2, 3, 128)))
        qlayer = QuantizedLinear.from_float(layer, name)
        w = layer.weight.data.T if layer_type is Conv1D else layer.weight.data
        wq = dequantize_weight(*quantize_weight(w, name), name, np.float64)
        expected = F.linear(x, tinyllm.tensor(wq), layer.bias).data
        assert np.allclose(qlayer(x).data, expected, rtol=1e-13, atol=1e-13)
        assert qlayer.fan_in_fan_out == (layer_type is Conv1D)
        # within the weight error's effect: |y - y_q| <= sum_i |x_i| |w_i - q_i s_i|
        bound = np.abs(x.data) @ np.abs(wq - w).T
        assert (np.abs(qlayer(x).data - layer(x).data) <= bound + 1e-12).all()
    assert [n for n, _ in qlayer.named_parameters()] == ["bias"]
    assert not qlayer.bias.requires_grad


def _gpt():
    tinyllm.manual_seed(0)
    return GPT(GPTConfig(vocab_size=40, n_positions=16, n_embd=128, n_layer=2, n_head=4), seed=0)


@pytest.mark.parametrize("name", SCHEMES)
def test_a_quantized_gpt_saves_and_loads_as_integers_with_its_scheme(name, tmp_path):
    model = _gpt().eval()
    ids = RNG.integers(0, 40, (2, 16))
    dense = model(ids).logits.data
    dense_bytes = weight_bytes(model)
    names = quantize_model(model, name)
    assert "lm_head" not in names                 # tied to the embedding: stays float
    assert len(names) == 2 * 4 and all(n.startswith("transformer.h.") for n in names)
    logits = model(ids).logits.data
    # the logits move by a few percent of their range at most (random weights, no outliers)
    assert np.abs(logits - dense).max() < (0.25 if "int4" in name else 0.05) * np.abs(dense).max()
    assert not np.array_equal(logits, dense)
    model.save(tmp_path)
    arrays, meta = read_safetensors_with_metadata(tmp_path / "model.safetensors")
    assert meta["tinyllm_quantization"] == name
    q = arrays["transformer.h.0.attn.c_attn.weight"]
    assert q.dtype == (np.int8 if "int8" in name else np.uint8)
    assert q.shape == ((384, 128) if "int8" in name else (384, 64))
    config = json.loads((tmp_path / "config.json").read_text())
    assert config["quantization_config"]["scheme"] == name
    loaded = GPT.load(tmp_path)
    assert [n for n, _ in quantized_layers(loaded)] == names
    assert np.array_equal(loaded(ids).logits.data, logits)
    assert weight_bytes(loaded) == weight_bytes(model) < dense_bytes


def test_int8_weights_take_a_quarter_of_float32_plus_their_scales():
    model = _gpt()
    layers = [m for n, m in model.named_modules() if isinstance(m, Conv1D)]
    float_bytes = sum(m.weight.data.nbytes for m in layers)
    quantize_model(model, "int8-channel")
    q = quantized_layers(model)
    q_bytes = sum(m.qweight.nbytes for _, m in q)
    scale_bytes = sum(m.weight_scale.nbytes for _, m in q)
    assert q_bytes * 4 == float_bytes and scale_bytes == 4 * sum(m.out_features for _, m in q)
    int4 = _gpt()
    quantize_model(int4, "int4-g32")
    assert sum(m.qweight.nbytes + m.weight_scale.nbytes for _, m in quantized_layers(int4)) \
        == float_bytes * 4.5 / 32                 # Q4_0's 4.5 bits per weight


def test_requantizing_and_unreadable_quantized_files_are_refused(tmp_path):
    model = _gpt()
    quantize_model(model, "int8-tensor")
    with pytest.raises(ValueError, match="already quantized \\(int8-tensor\\)"):
        quantize_model(model, "int4-g64")
    model.save(tmp_path)
    config = json.loads((tmp_path / "config.json").read_text())
    config["quantization_config"]["scheme"] = "int5"
    (tmp_path / "config.json").write_text(json.dumps(config))
    with pytest.raises(CheckpointError, match="cannot be read: .*unknown quantization scheme"):
        GPT.load(tmp_path)


def test_an_encoder_decoder_quantizes_every_projection_but_the_tied_head(tmp_path):
    config = Seq2SeqConfig.from_preset("micro", vocab_size=40, pad_token_id=0, eos_token_id=1,
                                       decoder_start_token_id=0)
    model = Seq2SeqTransformer(config, seed=0).eval()
    src = RNG.integers(2, 40, (2, 7))
    dense = model.generate(src, max_new_tokens=6)
    names = quantize_model(model, "int8-channel")
    assert "lm_head" not in names and len(names) == 4 + 2 + 8 + 2
    model.save(tmp_path)
    loaded = Seq2SeqTransformer.load(tmp_path)
    out = model.generate(src, max_new_tokens=6)
    assert np.array_equal(loaded.generate(src, max_new_tokens=6), out)
    assert out.shape == dense.shape
