"""The encoder-decoder Transformer: config, presets, sizes and costs, incremental decoding,
checkpoints, attention weights and input checks (parity with transformers is in
test_seq2seq_parity.py, cross-attention's gradients in test_cross_attention.py).

Incremental decoding is compared with the full forward pass in float64: relative error
(max |a - b| / max |b|) <= 1e-12 at every position.
"""

import json
import re

import numpy as np
import pytest
from matmul_counter import MatmulCounter

import tinyllm
from tinyllm.autograd.dtype import default_dtype
from tinyllm.autograd.gradcheck import gradcheck, max_relative_error
from tinyllm.models import (
    PRESETS,
    CheckpointError,
    Seq2SeqConfig,
    Seq2SeqLMOutput,
    Seq2SeqTransformer,
    get_family,
    seq2seq,
    shift_tokens_right,
)
from tinyllm.models.checkpoint import read_safetensors, save_safetensors
from tinyllm.nn import ACTIVATIONS

V, PAD, EOS, START = 23, 0, 1, 0
B, S, T = 3, 7, 6


def tiny_config(**kw):
    return Seq2SeqConfig(**{**dict(vocab_size=V, d_model=12, encoder_layers=2, decoder_layers=3,
                                   encoder_attention_heads=3, decoder_attention_heads=2,
                                   encoder_ffn_dim=20, decoder_ffn_dim=16,
                                   max_position_embeddings=10, pad_token_id=PAD,
                                   eos_token_id=EOS, activation_function="swish",
                                   init_std=0.3), **kw})


def perturbed(model, seed=1):
    """Biases, LayerNorms and the output bias off their initial 0 / 1, so each one counts."""
    rng = np.random.default_rng(seed)
    for p in model.parameters():
        p.data += rng.normal(0.0, 0.1, p.shape).astype(p.dtype)
    return model.eval()


@pytest.fixture(scope="module")
def model64():
    with default_dtype(np.float64):
        return perturbed(Seq2SeqTransformer(tiny_config(), seed=0))


def batch(rng=None):
    """Sources of 7, 4 and 6 tokens padded to S = 7, their mask, and targets (B, T)."""
    rng = np.random.default_rng(5) if rng is None else rng
    src = rng.integers(2, V, (B, S))
    mask = np.ones((B, S), dtype=np.int64)
    for row, n in enumerate((S, 4, 6)):
        src[row, n:], mask[row, n:] = PAD, 0
    tgt = rng.integers(2, V, (B, T))
    tgt[:, 0] = START
    return src, mask, tgt


# ----------------------------------------------------------------- config and presets
def _docstring_table():
    """preset -> (parameters, forward FLOPs per token) as the module docstring states them."""
    rows = re.findall(r"^(\w+)\s+\d+\s+\d+\s+\d+\s+\d+\s+([\d,]+)\s+([\d,]+)$",
                      seq2seq.__doc__, flags=re.M)
    return {name: (int(p.replace(",", "")), int(f.replace(",", ""))) for name, p, f in rows}


EXPECTED_PARAMS = {"nano": 12_032, "micro": 38_144, "tiny": 133_376, "mini": 547_072,
                   "small": 1_421_568, "base": 4_202_752}


@pytest.mark.parametrize("name", EXPECTED_PARAMS)
def test_preset_parameter_counts(name):
    config = Seq2SeqConfig.from_preset(name)
    assert config.vocab_size == 256 and config.encoder_layers == config.decoder_layers
    assert config.encoder_ffn_dim == config.decoder_ffn_dim == 4 * config.d_model
    model = Seq2SeqTransformer(config, seed=0)
    assert EXPECTED_PARAMS[name] == config.param_count() == model.num_params()
    assert _docstring_table()[name] == (model.num_params(),
                                        model.flops_per_token(training=False))
    # another vocabulary: one embedding row and one output bias per token
    other = Seq2SeqConfig.from_preset(name, vocab_size=300)
    assert other.param_count() - config.param_count() == 44 * (config.d_model + 1)
    assert model.num_params(non_embedding=True) == model.num_params() - 256 * config.d_model


def test_presets_are_registered_with_the_gpt_widths():
    family = get_family("seq2seq")
    assert family.config_class is Seq2SeqConfig and family.model_class is Seq2SeqTransformer
    assert family.hf_class == "MarianMTModel" and family.objective == "seq2seq"
    assert list(_docstring_table()) == list(PRESETS["seq2seq"])
    for name, fields in PRESETS["seq2seq"].items():
        assert fields["d_model"] == PRESETS["gpt"][name]["n_embd"]
        assert fields["encoder_attention_heads"] == PRESETS["gpt"][name]["n_head"]
    assert Seq2SeqConfig().d_model == 128 and Seq2SeqConfig().block_size == 64   # small


def test_config_fields_and_round_trip():
    c = Seq2SeqConfig(vocab_size=50, pad_token_id=7, eos_token_id=3)
    assert c.decoder_start_token_id == 7                    # Marian: decoding starts at pad
    assert Seq2SeqConfig(vocab_size=50, pad_token_id=7, decoder_start_token_id=9
                         ).decoder_start_token_id == 9
    d = c.to_dict()
    assert d["model_type"] == "marian" and d["architectures"] == ["MarianMTModel"]
    assert d["activation_function"] == "relu" and d["scale_embedding"] is True
    assert Seq2SeqConfig.from_dict(d) == c
    assert c.block_size == c.max_position_embeddings == 64
    for name in ("silu", "swish", "gelu"):
        assert Seq2SeqConfig(activation_function=name).activation_function == name


@pytest.mark.parametrize("fields, message", [
    (dict(d_model=30, encoder_attention_heads=4), "d_model=30 is not divisible by "
                                                  "encoder_attention_heads=4"),
    (dict(d_model=16, decoder_attention_heads=7), "d_model=16 is not divisible by "
                                                  "decoder_attention_heads=7"),
    (dict(activation_function="tanh"), r"activation_function='tanh' is not supported; "
                                       r"accepted: .*silu, swish"),
    (dict(dropout=1.0), "dropout must be a probability"),
    (dict(attention_dropout=-0.1), "attention_dropout must be a probability"),
    (dict(pad_token_id=256), r"pad_token_id=256 is outside the vocabulary \(accepted: 0..255\)"),
    (dict(eos_token_id=-1), "eos_token_id must be a non-negative integer"),
    (dict(decoder_start_token_id=300), "decoder_start_token_id=300 is outside"),
    (dict(encoder_layers=0), "encoder_layers must be a positive integer, got 0"),
    (dict(decoder_ffn_dim=2.5), "decoder_ffn_dim must be a positive integer"),
    (dict(scale_embedding="yes"), "scale_embedding must be true or false"),
    (dict(tie_word_embeddings=False), "tie_word_embeddings=False .* is not implemented"),
    (dict(share_encoder_decoder_embeddings=False), "share_encoder_decoder_embeddings=False"),
    (dict(init_std=0), "init_std must be a positive number"),
])
def test_config_errors_say_what_is_accepted(fields, message):
    with pytest.raises(ValueError, match=f"Seq2SeqConfig: {message}"):
        Seq2SeqConfig(**fields)


def test_config_unknown_keys_and_presets():
    with pytest.raises(ValueError, match=r"unknown keys \['d_modle'\]"):
        Seq2SeqConfig.from_dict({"d_modle": 8})
    with pytest.raises(ValueError, match="unknown preset 'huge'; accepted: nano, micro"):
        Seq2SeqConfig.from_preset("huge")


def test_family_makes_configs_from_a_tokenizer():
    from tinyllm.tokenizers import CharTokenizer

    tok = CharTokenizer().train("abcdef")
    config = get_family("seq2seq").make_config("micro", vocab_size=tok.vocab_size,
                                               block_size=24, dropout=0.1, tokenizer=tok)
    assert config.pad_token_id == config.decoder_start_token_id == tok.pad_token_id
    assert config.eos_token_id == tok.eos_token_id and config.max_position_embeddings == 24
    assert config.dropout == config.attention_dropout == config.activation_dropout == 0.1


# ----------------------------------------------------------------- initialisation
def test_initialisation_is_marians():
    config = Seq2SeqConfig.from_preset("tiny", vocab_size=300, pad_token_id=5, init_std=0.05)
    model = Seq2SeqTransformer(config, seed=3)
    shared = model.model.shared.weight
    assert model.lm_head.weight is shared
    assert model.model.encoder.embed_tokens is model.model.decoder.embed_tokens
    assert np.all(shared.data[5] == 0) and np.all(model.final_logits_bias.data == 0)
    assert model.final_logits_bias.shape == (1, 300)
    weights = np.concatenate([p.data.ravel() for n, p in model.named_parameters()
                              if n.endswith("proj.weight") or ".fc" in n and "weight" in n])
    assert abs(weights.std() / 0.05 - 1) < 0.02 and abs(weights.mean()) < 1e-3
    for name, p in model.named_parameters():
        if name.endswith("bias") and name != "final_logits_bias":
            assert np.all(p.data == (0.0)), name
        if "layer_norm.weight" in name:
            assert np.all(p.data == 1.0), name
    same = Seq2SeqTransformer(config, seed=3)
    assert all(np.array_equal(a, b) for a, b in zip(model.state_dict().values(),
                                                    same.state_dict().values()))
    other = Seq2SeqTransformer(config, seed=4)
    assert not np.array_equal(other.model.shared.weight.data, shared.data)


def test_position_table_is_marians_layout():
    table = seq2seq.sinusoidal_table(6, 5)                 # odd width: 3 sines, 2 cosines
    p = np.arange(6)[:, None]
    w = 10000.0 ** (-2 * np.arange(3) / 5)
    np.testing.assert_allclose(table[:, :3], np.sin(p * w), rtol=0, atol=1e-15)
    np.testing.assert_allclose(table[:, 3:], np.cos(p * w[:2]), rtol=0, atol=1e-15)
    model = Seq2SeqTransformer(tiny_config(), seed=0)
    assert not any("embed_positions" in n for n in model.state_dict())


# ----------------------------------------------------------------- forward and loss
def test_labels_teacher_forcing_equals_shifted_decoder_input(model64):
    src, mask, tgt = batch()
    labels = np.concatenate([tgt[:, 1:], np.full((B, 1), EOS)], axis=1)
    labels[1, 3:] = -100
    out = model64(src, mask, labels=labels)
    assert isinstance(out, Seq2SeqLMOutput) and out.cross_attentions is None
    assert out.logits.shape == (B, T, V)
    shifted = shift_tokens_right(labels, PAD, START)
    assert np.array_equal(shifted[:, 0], [START] * B) and np.all(shifted[1, 4:] == PAD)
    same = model64(src, mask, decoder_input_ids=shifted, labels=labels)
    assert np.array_equal(out.logits.data, same.logits.data)
    logp = out.logits.data - np.log(np.exp(out.logits.data).sum(-1, keepdims=True))
    keep = labels != -100
    nll = -np.take_along_axis(logp, np.where(keep, labels, 0)[..., None], -1)[..., 0]
    assert abs(out.loss.item() - nll[keep].mean()) <= 1e-12


def test_shift_tokens_right():
    assert shift_tokens_right(np.array([[5, 6, 2, -100]]), 0, 0).tolist() == [[0, 5, 6, 2]]
    assert shift_tokens_right([[5, -100, 7]], 3, 9).tolist() == [[9, 5, 3]]
    with pytest.raises(ValueError, match="pad_token_id is None"):
        shift_tokens_right(np.array([[5]]), None, 0)
    with pytest.raises(ValueError, match=r"integer ids of shape \(B, T\)"):
        shift_tokens_right(np.array([5, 6]), 0, 0)


def test_padding_and_future_targets_do_not_change_the_output(model64):
    """A padded source position (any id) and a later target token change nothing before."""
    src, mask, tgt = batch()
    out = model64(src, mask, decoder_input_ids=tgt).logits.data
    src2, tgt2 = src.copy(), tgt.copy()
    src2[1, 4:] = 9                                    # padding positions of row 1
    tgt2[:, 4] = 3                                     # target position 4
    out2 = model64(src2, mask, decoder_input_ids=tgt2).logits.data
    assert np.array_equal(out[:, :4], out2[:, :4]) and not np.allclose(out[:, 4], out2[:, 4])
    src2[1, 3] = 9                                     # a real token of row 1 does count
    out3 = model64(src2, mask, decoder_input_ids=tgt).logits.data
    assert np.array_equal(out3[[0, 2]], out[[0, 2]]) and not np.allclose(out3[1], out[1])


def test_output_attentions(model64):
    src, mask, tgt = batch()
    out = model64(src, mask, decoder_input_ids=tgt, output_attentions=True)
    assert len(out.cross_attentions) == model64.config.decoder_layers
    for w in out.cross_attentions:
        assert isinstance(w, np.ndarray) and w.shape == (B, 2, T, S)
        np.testing.assert_allclose(w.sum(-1), 1.0, rtol=0, atol=1e-12)
        assert np.all(w[mask[:, None, None, :].repeat(T, 2).repeat(2, 1) == 0] == 0)
        assert np.all(w[:, :, :, 0] > 0)
    plain = model64(src, mask, decoder_input_ids=tgt)
    assert np.array_equal(plain.logits.data, out.logits.data)


def test_dropout_only_while_training():
    model = Seq2SeqTransformer(tiny_config(dropout=0.3, attention_dropout=0.2,
                                           activation_dropout=0.1), seed=0)
    src, mask, tgt = batch()
    a, b = (model(src, mask, decoder_input_ids=tgt).logits.data for _ in range(2))
    assert not np.allclose(a, b)
    model.eval()
    a, b = (model(src, mask, decoder_input_ids=tgt).logits.data for _ in range(2))
    assert np.array_equal(a, b)


@pytest.mark.parametrize("kwargs, error, message", [
    (dict(input_ids=[[1, 2, V]]), ValueError, rf"input_ids holds id {V}, outside the vocabulary"),
    (dict(input_ids=[[1.0, 2.0]]), TypeError, "input_ids must hold integer token ids"),
    (dict(input_ids=np.ones((1, 11), int)), ValueError, "input_ids has 11 positions, more than "
                                                        "the context of 10"),
    (dict(decoder_input_ids=np.ones((1, 11), int)), ValueError, "decoder_input_ids has 11 "
                                                                "positions"),
    (dict(labels=np.ones((1, 11), int), decoder_input_ids=None), ValueError,
     "decoder_input_ids has 11 positions"),
    (dict(attention_mask=np.ones((1, 4), int)), ValueError,
     r"attention_mask has shape \(1, 4\), expected \(B, T\) = \(1, 3\)"),
    (dict(attention_mask=np.full((1, 3), 2)), ValueError, "must hold only 1 .* and 0"),
    (dict(decoder_attention_mask=np.ones((1, 5), int)), ValueError,
     r"decoder_attention_mask has shape \(1, 5\), expected \(B, T\) = \(1, 2\)"),
    (dict(labels=[[3, V + 4]]), ValueError, rf"labels hold id {V + 4}, outside the vocabulary "
                                            r"\(accepted: 0..22, or -100 to ignore\)"),
    (dict(labels=[[3, 4, 5]]), ValueError, r"labels have shape \(1, 3\), expected .*\(1, 2\)"),
    (dict(decoder_input_ids=None), ValueError, "give decoder_input_ids .* or labels"),
    (dict(decoder_input_ids=np.ones((2, 2), int)), ValueError, "2 target rows for 1 source"),
])
def test_bad_inputs_are_named(kwargs, error, message):
    model = Seq2SeqTransformer(tiny_config(), seed=0)
    inputs = {"input_ids": [[4, 5, 6]], "decoder_input_ids": [[0, 7]], **kwargs}
    with pytest.raises(error, match=message):
        model(**inputs)


# ----------------------------------------------------------------- sizes and costs
@pytest.mark.parametrize("seq_len", [10, 5])
def test_flops_per_token_equal_the_products_run(monkeypatch, seq_len):
    model = Seq2SeqTransformer(tiny_config(), seed=0)
    counter = MatmulCounter(monkeypatch)
    rng = np.random.default_rng(0)
    src, tgt = rng.integers(0, V, (B, seq_len)), rng.integers(0, V, (B, seq_len))
    loss = model(src, labels=tgt).loss
    tokens = B * seq_len
    assert counter.forward == model.flops_per_token(training=False, seq_len=seq_len) * tokens
    loss.backward()
    assert counter.forward + counter.backward == model.flops_per_token(seq_len=seq_len) * tokens
    assert model.flops_per_token() == model.flops_per_token(seq_len=10)
    parts = model.flops_breakdown()
    assert parts["lm_head"] == 2 * 12 * V
    assert parts["decoder.encoder_attn.scores"] == 3 * 2 * 10 * 12     # Ld * 2 S C


def test_memory_estimate_grows_with_the_batch():
    c = Seq2SeqConfig.from_preset("nano")
    assert c.train_memory_bytes(8, 64) > c.train_memory_bytes(4, 64) > 16 * c.param_count()


# ----------------------------------------------------------------- incremental decoding
def test_incremental_decoding_equals_the_full_forward(model64):
    src, mask, tgt = batch()
    full = model64(src, mask, decoder_input_ids=tgt).logits.data       # (B, T, V)
    state = model64.start_decoding(src, mask)
    assert state.length == 0 and state.batch_size == B
    for t in range(T):
        logits = model64.decode_step(state, tgt[:, t])                 # (B, V)
        assert logits.shape == (B, V) and state.length == t + 1
        assert max_relative_error(logits, full[:, t]) <= 1e-12, t
    assert np.array_equal(state.encoder_hidden_states.data, model64.encode(src, mask).data)


def test_the_encoder_and_cross_projections_run_once(monkeypatch, model64):
    calls = {"encoder": 0, "cross_k": 0, "self_k": 0}

    def counting(key, fn):
        def wrapped(*args, **kwargs):
            calls[key] += 1
            return fn(*args, **kwargs)
        return wrapped

    monkeypatch.setattr(model64.model.encoder, "forward",
                        counting("encoder", model64.model.encoder.forward))
    for layer in model64.model.decoder.layers:
        for attn, key in ((layer.encoder_attn, "cross_k"), (layer.self_attn, "self_k")):
            monkeypatch.setattr(attn.k_proj, "forward", counting(key, attn.k_proj.forward))
    src, mask, tgt = batch()
    state = model64.start_decoding(src, mask)
    assert calls == {"encoder": 1, "cross_k": 3, "self_k": 0}
    for t in range(4):
        model64.decode_step(state, tgt[:, t])
    beams = state.select(np.repeat(np.arange(B), 2))
    model64.decode_step(beams, np.repeat(tgt[:, 4], 2))
    assert calls == {"encoder": 1, "cross_k": 3, "self_k": 5 * 3}


def test_select_reorders_and_repeats_rows(model64):
    src, mask, tgt = batch()
    state = model64.start_decoding(src, mask)
    for t in range(2):
        model64.decode_step(state, tgt[:, t])
    rows = np.array([2, 0, 0, 1])
    picked = state.select(rows)
    assert picked.batch_size == 4 and picked.length == 2
    assert np.array_equal(picked.source_index, rows)
    fresh = model64.start_decoding(src[rows], mask[rows])
    for t in range(2):
        model64.decode_step(fresh, tgt[rows, t])
    for t in range(2, T):
        a = model64.decode_step(picked, tgt[rows, t])
        b = model64.decode_step(fresh, tgt[rows, t])
        assert max_relative_error(a, b) <= 1e-12
    # the original state is untouched and goes on by itself
    assert state.length == 2
    full = model64(src, mask, decoder_input_ids=tgt).logits.data
    assert max_relative_error(model64.decode_step(state, tgt[:, 2]), full[:, 2]) <= 1e-12


def test_select_shares_the_encoder_side_when_rows_keep_their_source(model64):
    src, mask, tgt = batch()
    beams = model64.start_decoding(src, mask).select(np.repeat(np.arange(B), 2))  # 2 beams
    model64.decode_step(beams, np.full(2 * B, START))
    swapped = beams.select(np.array([1, 0, 3, 2, 4, 5]))     # beams swap within a source
    assert swapped.cross_kv is beams.cross_kv
    assert swapped.encoder_hidden_states is beams.encoder_hidden_states
    assert swapped.source_padding is beams.source_padding
    k_old, k_new = beams.cache[0].k.data, swapped.cache[0].k.data
    assert np.array_equal(k_new[0], k_old[1]) and np.array_equal(k_new[1], k_old[0])
    moved = beams.select(np.array([2, 0, 3, 2, 4, 5]))       # row 0 now decodes source 1
    assert moved.cross_kv is not beams.cross_kv
    assert np.array_equal(moved.source_padding, beams.source_padding[[2, 0, 3, 2, 4, 5]])


@pytest.mark.parametrize("indices", [np.array([0, 3]), np.array([-1]), np.array([[0]]),
                                     np.array([0.0])])
def test_select_refuses_bad_rows(model64, indices):
    state = model64.start_decoding(*batch()[:2])
    with pytest.raises(ValueError, match=r"select: indices must be a 1-D array of row numbers "
                                         r"in 0..2"):
        state.select(indices)


def test_decode_step_checks_and_keeps_the_mode():
    model = Seq2SeqTransformer(tiny_config(dropout=0.5), seed=0)      # training mode
    src, mask, tgt = batch()
    state = model.start_decoding(src, mask)
    a = model.decode_step(state, tgt[:, 0])
    assert model.training                                              # restored
    b = model.decode_step(model.start_decoding(src, mask), tgt[:, 0])
    assert np.array_equal(a, b)                                        # no dropout inside
    with pytest.raises(ValueError, match=r"tokens must have shape \(B,\) = \(3,\)"):
        model.decode_step(state, tgt[:2, 1])
    with pytest.raises(ValueError, match="tokens holds id 23, outside the vocabulary"):
        model.decode_step(state, np.full(B, V))
    for t in range(1, 10):
        model.decode_step(state, tgt[:, t % T])
    with pytest.raises(ValueError, match="10 target positions decoded already, the most "
                                         "max_position_embeddings=10 allows"):
        model.decode_step(state, tgt[:, 0])
    with pytest.raises(ValueError, match="input_ids has 11 positions"):
        model.start_decoding(np.ones((1, 11), int))


# ----------------------------------------------------------------- checkpoints
def test_save_load_round_trip(tmp_path, model64):
    model64.save(tmp_path / "m")
    keys = set(read_safetensors(tmp_path / "m" / "model.safetensors"))
    assert keys == {n for n, _ in model64.named_parameters()}
    assert "model.shared.weight" in keys and "final_logits_bias" in keys
    assert "lm_head.weight" not in keys and not any("embed_tokens" in k for k in keys)
    config = json.loads((tmp_path / "m" / "config.json").read_text())
    assert config["model_type"] == "marian" and config["architectures"] == ["MarianMTModel"]
    assert config["forced_eos_token_id"] == EOS and config["dtype"] == "float64"
    loaded = Seq2SeqTransformer.load(tmp_path / "m", dtype=np.float64)
    assert loaded.config == model64.config
    src, mask, tgt = batch()
    assert np.array_equal(loaded(src, mask, decoder_input_ids=tgt).logits.data,
                          model64(src, mask, decoder_input_ids=tgt).logits.data)


def test_older_files_with_position_tables_and_without_the_output_bias(tmp_path):
    model = perturbed(Seq2SeqTransformer(tiny_config(), seed=0))
    model.save(tmp_path)
    state = read_safetensors(tmp_path / "model.safetensors")
    del state["final_logits_bias"]
    for side in ("encoder", "decoder"):
        state[f"model.{side}.embed_positions.weight"] = np.ones((10, 12), np.float32)
    save_safetensors(tmp_path / "model.safetensors", state, {"format": "pt"})
    loaded = Seq2SeqTransformer.from_pretrained(tmp_path)
    assert np.all(loaded.final_logits_bias.data == 0)
    model.final_logits_bias.data[...] = 0
    src, mask, tgt = batch()
    assert np.array_equal(loaded(src, mask, decoder_input_ids=tgt).logits.data,
                          model(src, mask, decoder_input_ids=tgt).logits.data)


@pytest.mark.parametrize("option, value, accepted", [
    ("decoder_vocab_size", 99, "one shared vocabulary"),
    ("encoder_layerdrop", 0.1, "no LayerDrop"),
    ("share_encoder_decoder_embeddings", False, "one embedding for all three"),
])
def test_unsupported_marian_options_are_refused(tmp_path, option, value, accepted):
    Seq2SeqTransformer(tiny_config(), seed=0).save(tmp_path)
    config = json.loads((tmp_path / "config.json").read_text())
    config[option] = value
    (tmp_path / "config.json").write_text(json.dumps(config))
    with pytest.raises(CheckpointError, match=f"{option}.*{accepted}"):
        Seq2SeqTransformer.from_pretrained(tmp_path)


# ----------------------------------------------------------------- activations
@pytest.mark.parametrize("name", ["silu", "swish"])
def test_swish_is_x_sigmoid_x_with_its_gradient(name):
    x = tinyllm.tensor(np.linspace(-30, 30, 13).reshape(1, 13), requires_grad=True,
                       dtype="float64")
    y = ACTIVATIONS[name](x)
    np.testing.assert_allclose(y.data, x.data / (1 + np.exp(-x.data)), rtol=1e-15, atol=0)
    assert gradcheck(ACTIVATIONS[name], x)
    torch = pytest.importorskip("torch")
    expected = torch.nn.functional.silu(torch.tensor(x.data)).numpy()
    assert max_relative_error(y.data, expected) <= 1e-15


def test_a_source_of_only_padding_gives_zero_weights_not_nan(model64):
    src, mask, tgt = batch()
    mask[2] = 0
    out = model64(src, mask, decoder_input_ids=tgt, output_attentions=True)
    assert np.isfinite(out.logits.data).all()
    assert all(np.all(w[2] == 0) and np.allclose(w[:2].sum(-1), 1) for w in out.cross_attentions)


def test_weight_decay_spares_the_embedding_the_biases_and_the_norms():
    from tinyllm.optim import param_groups_for_weight_decay

    model = Seq2SeqTransformer(tiny_config(), seed=0)
    decay, no_decay = param_groups_for_weight_decay(model, weight_decay=0.1)
    assert all(n.endswith(("proj.weight", "fc1.weight", "fc2.weight"))
               for n in decay["param_names"])
    assert {"model.shared.weight", "final_logits_bias"} <= set(no_decay["param_names"])
    assert len(decay["params"]) + len(no_decay["params"]) == len(list(model.parameters()))
