"""Per-layer quantization errors and the loss per scheme (tinyllm.compress.analysis)."""

import numpy as np

import tinyllm
from tinyllm.compress.analysis import (
    layer_report,
    loss_by_scheme,
    loss_by_sparsity,
    mean_loss,
    record_inputs,
)
from tinyllm.models import GPT, GPTConfig
from tinyllm.nn.quantized import quantizable_layers, quantized_layers

RNG = np.random.default_rng(0)


def _gpt(n_embd=64):
    return GPT(GPTConfig(vocab_size=30, n_positions=16, n_embd=n_embd, n_layer=2, n_head=4),
               seed=0).eval()


def test_recorded_inputs_are_what_each_layer_saw():
    model = _gpt()
    ids = RNG.integers(0, 30, (2, 16))
    names = quantizable_layers(model)
    seen = record_inputs(model, ids, names)
    assert set(seen) == set(names)
    assert seen["transformer.h.0.mlp.c_proj"].shape == (32, 256)      # (B T, 4C)
    # the first block's attention reads ln_1 of the token + position embeddings
    emb = model.transformer.wte.weight.data[ids] + model.transformer.wpe.weight.data[:16]
    expected = model.transformer.h[0].ln_1(tinyllm.tensor(emb)).data.reshape(32, 64)
    np.testing.assert_allclose(seen["transformer.h.0.attn.c_attn"], expected, rtol=1e-6)
    assert not any("forward" in vars(model.get_submodule(n)) for n in names)  # unwrapped


def test_an_outlier_weight_is_reported_and_hurts_per_tensor_scales_most():
    model = _gpt()
    layer = model.transformer.h[1].mlp.c_fc                           # Conv1D (in, out)
    layer.weight.data[3, 5] = 40 * np.abs(layer.weight.data).max()
    rows = {r["layer"]: r for r in layer_report(model, RNG.integers(0, 30, (2, 16)))}
    assert len(rows) == len(quantizable_layers(model))
    hit, calm = rows["transformer.h.1.mlp.c_fc"], rows["transformer.h.0.mlp.c_fc"]
    w = layer.weight.data.astype(np.float64)
    assert np.isclose(hit["weight_outlier"], np.abs(w).max() / np.sqrt(np.mean(w ** 2)))
    assert hit["weight_outlier"] > 10 * calm["weight_outlier"]
    # one scale for the tensor: the outlier coarsens every weight; a scale per output row
    # confines it to its row, a scale per 32 inputs to its group
    assert hit["int8-tensor w_err"] > 5 * hit["int8-channel w_err"]
    assert hit["int4-g32 w_err"] < hit["int4-g64 w_err"]
    assert hit["int4-g128 w_err"] is None                # 64 inputs: no group of 128
    for r in rows.values():
        assert 0 < r["int8-channel w_err"] < r["int4-g64 w_err"] < 0.5
        assert r["input_outlier"] >= 1


def test_loss_by_scheme_orders_the_schemes_and_skips_what_cannot_quantize():
    model = _gpt(n_embd=64)               # the attention layers' 64 inputs: no groups of 128
    batches = [(RNG.integers(0, 30, (4, 16)), RNG.integers(0, 30, (4, 16))) for _ in range(2)]
    losses = loss_by_scheme(model, batches, ("int8-channel", "int4-g32", "int4-g128"))
    assert losses["float32"] == mean_loss(model, batches)
    assert losses["int4-g128"] is None
    assert abs(losses["int8-channel"] - losses["float32"]) < 0.005 * losses["float32"]
    assert abs(losses["int4-g32"] - losses["float32"]) < 0.05 * losses["float32"]
    assert not quantized_layers(model)                  # the model itself stays float


def test_the_sparsity_curve_starts_at_the_dense_loss_and_leaves_the_model_alone():
    model = _gpt()
    batches = [(RNG.integers(0, 30, (4, 16)), RNG.integers(0, 30, (4, 16)))]
    before = {k: v.copy() for k, v in model.state_dict().items()}
    curve = loss_by_sparsity(model, batches, (0.0, 0.5, 0.95))
    assert curve[0.0] == mean_loss(model, batches)
    assert curve[0.95] != curve[0.0]
    assert all(np.array_equal(v, before[k]) for k, v in model.state_dict().items())
