"""GPT: construction, presets, forward and loss, generation with and without the KV cache,
parameter and FLOP counts (against a count of the products actually run), checkpoints."""

import json

import numpy as np
import pytest
from matmul_counter import MatmulCounter

import tinyllm
from tinyllm.autograd.gradcheck import max_relative_error
from tinyllm.models import (
    GPT,
    PRESETS,
    CheckpointError,
    GPT2ForSequenceClassification,
    GPTConfig,
    get_family,
)
from tinyllm.models.checkpoint import read_safetensors
from tinyllm.nn import KVCache, StateDictError

V = 37
RNG = np.random.default_rng(11)


def tiny_config(**kw):
    return GPTConfig(**{**dict(vocab_size=V, n_positions=12, n_embd=16, n_layer=2, n_head=4),
                        **kw})


@pytest.fixture(scope="module")
def model():
    return GPT(tiny_config(), seed=0).eval()


def ids(b, t):
    return RNG.integers(0, V, (b, t))


# ----------------------------------------------------------------- construction
def test_names_are_gpt2s(model):
    names = [n for n, _ in model.named_parameters()]
    assert names[:4] == ["transformer.wte.weight", "transformer.wpe.weight",
                         "transformer.h.0.ln_1.weight", "transformer.h.0.ln_1.bias"]
    assert "transformer.h.1.attn.c_attn.weight" in names and names[-2:] == [
        "transformer.ln_f.weight", "transformer.ln_f.bias"]
    assert model.transformer.h[0].attn.c_attn.weight.shape == (16, 48)     # (in, out)
    assert "lm_head.weight" in model.state_dict()
    assert model.lm_head.weight is model.transformer.wte.weight


def test_initialisation_is_gpt2s_and_seeded():
    cfg = tiny_config(n_embd=64, n_layer=8, n_positions=64, vocab_size=512)
    m = GPT(cfg, seed=3)
    assert abs(m.transformer.wte.weight.data.std() - 0.02) < 1e-3
    assert abs(m.transformer.h[0].mlp.c_proj.weight.data.std() - 0.02 / 4) < 3e-4
    assert not m.transformer.h[0].attn.c_attn.bias.data.any()
    assert np.all(m.transformer.h[0].ln_1.weight.data == 1)
    again = GPT(cfg, seed=3)
    assert all(np.array_equal(a.data, b.data)
               for a, b in zip(m.parameters(), again.parameters()))
    tinyllm.manual_seed(5)
    a = GPT(tiny_config())
    tinyllm.manual_seed(5)
    assert np.array_equal(a.lm_head.weight.data, GPT(tiny_config()).lm_head.weight.data)


def test_untied_head():
    m = GPT(tiny_config(tie_word_embeddings=False), seed=0)
    assert m.lm_head.weight is not m.transformer.wte.weight
    assert m.num_params() == GPT(tiny_config(), seed=0).num_params() + V * 16


@pytest.mark.parametrize("name", PRESETS["gpt"])
def test_presets_build_and_validate(name):
    cfg = GPTConfig.from_preset(name)
    assert cfg.n_embd % cfg.n_head == 0


def test_preset_sizes_span_four_orders_of_magnitude():
    sizes = {name: GPT(GPTConfig.from_preset(name), seed=0).num_params()
             for name in ("nano", "small", "medium")}
    assert 1e4 <= sizes["nano"] < 2e4
    assert 7e5 < sizes["small"] < 9e5
    assert 0.9e7 < sizes["medium"] < 1.1e7


@pytest.mark.parametrize("kwargs, message", [
    (dict(n_embd=30, n_head=4), "n_embd=30 is not divisible by n_head=4"),
    (dict(n_layer=0), "n_layer must be a positive integer, got 0"),
    (dict(resid_pdrop=1.0), r"resid_pdrop must be a probability in \[0, 1\)"),
    (dict(activation_function="mish"), "activation_function='mish' is not supported"),
])
def test_bad_configs(kwargs, message):
    with pytest.raises(ValueError, match=message):
        tiny_config(**kwargs)


def test_unknown_preset_and_keys():
    with pytest.raises(ValueError, match="unknown preset 'huge'; accepted: nano"):
        GPTConfig.from_preset("huge")
    with pytest.raises(ValueError, match=r"unknown keys \['n_ctx'\]"):
        GPTConfig.from_dict({"n_ctx": 3})


# ----------------------------------------------------------------- forward
def test_forward_shapes_and_initial_loss(model):
    x, y = ids(3, 12), ids(3, 12)
    logits, loss = model(x, y)
    assert logits.shape == (3, 12, V)
    assert abs(loss.item() - np.log(V)) < 0.1                 # near-uniform at initialisation
    assert model(x).loss is None
    y[0, :5] = -100
    ref = tinyllm.functional.cross_entropy(logits.reshape(-1, V), y.reshape(-1))
    assert model(x, y).loss.item() == pytest.approx(ref.item(), rel=1e-6)


def test_backward_reaches_every_parameter():
    m = GPT(tiny_config(), seed=0)
    m(ids(2, 12), ids(2, 12)).loss.backward()
    for name, p in m.named_parameters():
        assert p.grad is not None and p.grad.shape == p.shape, name
        assert np.abs(p.grad).max() > 0, name


def test_causality(model):
    x = ids(1, 10)
    y = x.copy()
    y[0, 6:] = (y[0, 6:] + 1) % V
    a, b = model(x).logits.data, model(y).logits.data
    assert np.allclose(a[:, :6], b[:, :6], atol=1e-6) and not np.allclose(a[:, 6:], b[:, 6:])


@pytest.mark.parametrize("bad, exc, message", [
    (lambda: np.zeros((1, 13), dtype=np.int64), ValueError,
     "13 positions.* longer than the context n_positions=12"),
    (lambda: np.full((1, 3), V), ValueError, f"holds id {V}, outside the vocabulary of size {V}"),
    (lambda: np.full((1, 3), -1), ValueError, "holds id -1"),
    (lambda: np.zeros((1, 3)), TypeError, "integer token ids"),
    (lambda: np.zeros(3, dtype=np.int64), ValueError, r"shape \(B, T\)"),
])
def test_bad_inputs(model, bad, exc, message):
    with pytest.raises(exc, match=message):
        model(bad())


def test_bad_targets(model):
    with pytest.raises(ValueError, match=r"targets have shape \(2, 3\), expected .* \(2, 4\)"):
        model(ids(2, 4), ids(2, 3))


# ----------------------------------------------------------------- KV cache and generation
def test_cached_logits_equal_full_pass(model):
    x = ids(2, 9)
    full = model(x).logits.data
    cache = KVCache(2)
    pieces = [model(x[:, :4], kv_cache=cache).logits.data,
              model(x[:, 4:5], kv_cache=cache).logits.data,
              model(x[:, 5:], kv_cache=cache).logits.data]
    assert max_relative_error(np.concatenate(pieces, 1), full) < 1e-5
    with pytest.raises(ValueError, match=r"13 positions \(9 cached \+ 4 new\)"):
        model(x[:, :4], kv_cache=cache)


def test_greedy_with_and_without_cache_agree_beyond_the_context(model):
    prompt = ids(2, 5)
    with_cache = model.generate(prompt, 15, do_sample=False)           # 20 > n_positions=12
    without = model.generate(prompt, 15, do_sample=False, use_cache=False)
    assert with_cache.shape == (2, 20)
    assert np.array_equal(with_cache, without)
    assert np.array_equal(with_cache[:, :5], prompt)
    assert np.array_equal(model.generate(prompt, 15, temperature=0), with_cache)


def test_sampling_is_seeded_and_filters(model):
    prompt = ids(1, 3)
    a = model.generate(prompt, 8, seed=1)
    assert np.array_equal(a, model.generate(prompt, 8, seed=1))
    assert not np.array_equal(a, model.generate(prompt, 8, seed=2, temperature=5.0))
    greedy = model.generate(prompt, 8, do_sample=False)
    assert np.array_equal(model.generate(prompt, 8, top_k=1, seed=4), greedy)
    assert np.array_equal(model.generate(prompt, 8, top_p=1e-6, seed=4), greedy)
    one_row = model.generate(prompt[0], 4, seed=1)
    assert one_row.shape == (7,) and one_row.dtype == np.int64


def test_top_k_and_top_p_keep_the_right_tokens():
    from tinyllm.models.sampling import sample as _sample

    logits = np.log(np.array([[0.5, 0.3, 0.15, 0.05]]))
    rng = np.random.default_rng(0)
    draws = {int(_sample(logits, 1.0, 2, None, rng)[0]) for _ in range(200)}
    assert draws == {0, 1}
    draws = {int(_sample(logits, 1.0, None, 0.7, rng)[0]) for _ in range(200)}
    assert draws == {0, 1}                        # 0.5 < 0.7 <= 0.5 + 0.3
    draws = {int(_sample(logits, 1.0, None, 0.81, rng)[0]) for _ in range(300)}
    assert draws == {0, 1, 2}


def test_eos_stops_generation_and_modes_are_restored(model):
    prompt = ids(1, 2)
    greedy = model.generate(prompt, 6, do_sample=False)
    eos = int(greedy[0, 2])                        # the first generated token
    out = model.generate(prompt, 6, do_sample=False, eos_token_id=eos)
    assert out.shape == (1, 3) and out[0, -1] == eos
    model.train()
    model.generate(prompt, 1)
    assert model.training
    model.eval()


@pytest.mark.parametrize("kwargs, message", [
    (dict(temperature=-1.0), "temperature must be >= 0"),
    (dict(top_k=0), "top_k must be a positive integer"),
    (dict(top_p=1.5), r"top_p must be in \(0, 1\]"),
    (dict(eos_token_id=V), "eos_token_id 37 is outside the vocabulary"),
    (dict(max_new_tokens=-1), "max_new_tokens must be a non-negative integer"),
])
def test_bad_generation_arguments(model, kwargs, message):
    kwargs = {"max_new_tokens": 2, **kwargs}
    with pytest.raises(ValueError, match=message):
        model.generate(ids(1, 2), **kwargs)


def test_generate_needs_a_prompt(model):
    with pytest.raises(ValueError, match="at least one token"):
        model.generate(np.zeros((1, 0), dtype=np.int64), 3)


# ----------------------------------------------------------------- size and cost
def test_num_params_by_hand(model):
    c, t, L, i = 16, 12, 2, 64
    per_layer = 2 * c + (c * 3 * c + 3 * c) + (c * c + c) + 2 * c + (c * i + i) + (i * c + c)
    assert model.num_params() == V * c + t * c + L * per_layer + 2 * c
    assert model.num_params(non_embedding=True) == L * per_layer + 2 * c


@pytest.mark.parametrize("seq_len", [12, 5])
def test_flops_per_token_equals_the_products_run(monkeypatch, seq_len):
    m = GPT(tiny_config(n_inner=24), seed=0)
    counter = MatmulCounter(monkeypatch)
    batch = 3
    loss = m(ids(batch, seq_len), ids(batch, seq_len)).loss
    tokens = batch * seq_len
    assert counter.forward == m.flops_per_token(training=False, seq_len=seq_len) * tokens
    loss.backward()
    assert counter.forward + counter.backward == m.flops_per_token(seq_len=seq_len) * tokens
    assert m.flops_per_token() == m.flops_per_token(seq_len=12)
    parts = m.flops_breakdown()
    assert parts["lm_head"] == 2 * 16 * V and parts["attn.scores"] == 2 * 2 * 12 * 16


# ----------------------------------------------------------------- checkpoints
def test_save_load_round_trip(tmp_path, model):
    model.save(tmp_path / "ckpt")
    keys = set(read_safetensors(tmp_path / "ckpt" / "model.safetensors"))
    assert "lm_head.weight" not in keys                   # tied: stored once, as GPT-2 does
    assert keys == {n for n, _ in model.named_parameters()}
    config = json.loads((tmp_path / "ckpt" / "config.json").read_text())
    assert config["model_type"] == "gpt2" and config["architectures"] == ["GPT2LMHeadModel"]
    loaded = GPT.load(tmp_path / "ckpt")
    assert loaded.config == model.config
    x = ids(2, 7)
    assert np.array_equal(loaded(x).logits.data, model(x).logits.data)
    assert loaded.lm_head.weight is loaded.transformer.wte.weight
    as64 = GPT.load(tmp_path / "ckpt", dtype=np.float64)
    assert as64.dtype == np.float64


def test_truncated_file_fails_clearly(tmp_path, model):
    model.save(tmp_path)
    path = tmp_path / "model.safetensors"
    path.write_bytes(path.read_bytes()[:-100])
    with pytest.raises(CheckpointError, match="truncated, damaged or not a safetensors file"):
        GPT.load(tmp_path)


def test_wrong_shape_fails_clearly(tmp_path, model):
    GPT(tiny_config(n_embd=8, n_head=2), seed=0).save(tmp_path)
    config = json.loads((tmp_path / "config.json").read_text())
    config["n_embd"] = 16
    (tmp_path / "config.json").write_text(json.dumps(config))
    with pytest.raises(StateDictError, match=r"expected shape \(37, 16\), given \(37, 8\)"):
        GPT.load(tmp_path)


def test_other_architecture_and_missing_files(tmp_path):
    from tinyllm.models import BERT, BertConfig

    BERT(BertConfig(vocab_size=20, hidden_size=8, num_hidden_layers=1, num_attention_heads=2,
                    max_position_embeddings=8), seed=0).save(tmp_path / "bert")
    with pytest.raises(CheckpointError, match="holds a model of type 'bert' "
                       r"\(BertForMaskedLM\); expected model_type 'gpt2'"):
        GPT.from_pretrained(tmp_path / "bert")
    with pytest.raises(CheckpointError, match="is not a directory"):
        GPT.load(tmp_path / "nowhere")
    (tmp_path / "pickled").mkdir()
    (tmp_path / "pickled" / "config.json").write_text('{"model_type": "gpt2"}')
    (tmp_path / "pickled" / "pytorch_model.bin").write_bytes(b"\x80")
    with pytest.raises(CheckpointError, match="pickle file, which tinyllm does not load"):
        GPT.from_pretrained(tmp_path / "pickled")
    (tmp_path / "pickled" / "config.json").write_text("{not json")
    with pytest.raises(CheckpointError, match="not valid JSON"):
        GPT.from_pretrained(tmp_path / "pickled")


def test_original_gpt2_key_names_load(tmp_path, model):
    """OpenAI's GPT-2 files have no `transformer.` prefix and carry causal-mask buffers."""
    from safetensors.numpy import save_file

    state = {n.removeprefix("transformer."): p.data for n, p in model.named_parameters()}
    state["h.0.attn.bias"] = np.tril(np.ones((1, 1, 12, 12), dtype=np.float32))
    save_file(state, str(tmp_path / "model.safetensors"))
    (tmp_path / "config.json").write_text(json.dumps(model.config.to_dict()))
    loaded = GPT.from_pretrained(tmp_path)
    x = ids(1, 5)
    assert np.array_equal(loaded(x).logits.data, model(x).logits.data)


def test_unsupported_hf_option_is_refused(tmp_path, model):
    model.save(tmp_path)
    config = json.loads((tmp_path / "config.json").read_text())
    config["scale_attn_by_inverse_layer_idx"] = True
    (tmp_path / "config.json").write_text(json.dumps(config))
    with pytest.raises(CheckpointError, match="scale_attn_by_inverse_layer_idx=True"):
        GPT.from_pretrained(tmp_path)


# ----------------------------------------------------------------- sequence classification
PAD = 0


@pytest.fixture(scope="module")
def clf():
    return GPT2ForSequenceClassification(tiny_config(num_labels=3, pad_token_id=PAD),
                                         seed=0).eval()


def real_ids(b, t):
    return RNG.integers(1, V, (b, t))                       # no PAD


def test_config_fields_for_the_classifier_keep_the_language_model_unchanged():
    cfg = tiny_config()
    assert cfg.num_labels == 2 and cfg.pad_token_id is None
    assert GPT(cfg, seed=0).num_params() == GPT(tiny_config(num_labels=7), seed=0).num_params()
    with pytest.raises(ValueError, match="num_labels must be a positive integer, got 0"):
        tiny_config(num_labels=0)
    with pytest.raises(ValueError, match=f"pad_token_id={V} is outside the vocabulary "
                       rf"\(accepted: 0..{V - 1}, or None\)"):
        tiny_config(pad_token_id=V)
    with pytest.raises(ValueError, match="pad_token_id must be a non-negative integer"):
        tiny_config(pad_token_id=-1)


def test_classifier_names_shapes_and_loss(clf):
    names = [n for n, _ in clf.named_parameters()]
    assert names[0] == "transformer.wte.weight" and names[-1] == "score.weight"
    assert "lm_head.weight" not in clf.state_dict() and clf.score.bias is None
    assert clf.score.weight.shape == (3, 16)           # nn.Linear (out, in), not Conv1D
    assert get_family("gpt").head("sequence-classification") is GPT2ForSequenceClassification
    x = real_ids(4, 7)
    x[1, 4:] = PAD
    labels = np.array([0, 2, 1, 1])
    logits, loss = clf(x, labels=labels)
    assert logits.shape == (4, 3) and clf(x).loss is None
    ref = tinyllm.functional.cross_entropy(logits, labels)
    assert loss.item() == pytest.approx(ref.item(), rel=1e-6)
    m = GPT2ForSequenceClassification(tiny_config(num_labels=3, pad_token_id=PAD), seed=1)
    m(x, labels=labels).loss.backward()
    for name, p in m.named_parameters():
        assert p.grad is not None and p.grad.shape == p.shape, name


def test_regression_is_mean_squared_error():
    reg = GPT2ForSequenceClassification(tiny_config(num_labels=1, pad_token_id=PAD), seed=0)
    x, target = real_ids(3, 5), np.array([0.5, -1.0, 2.0])
    logits, loss = reg(x, labels=target)
    assert logits.shape == (3, 1)
    assert loss.item() == pytest.approx(np.mean((logits.data[:, 0] - target) ** 2), rel=1e-5)


def test_classifier_reads_the_last_token_that_is_not_padding(clf):
    x = real_ids(1, 6)
    padded = np.concatenate([x, np.full((1, 3), PAD)], axis=1)  # right padding
    assert max_relative_error(clf(padded).logits.data, clf(x).logits.data) < 1e-5
    rows = np.array([[5, PAD, 6, PAD, PAD],                    # a pad id inside a row
                     [PAD, PAD, PAD, PAD, PAD],                # all padding: position 0
                     [PAD, PAD, 7, 8, 9],                      # left padding
                     [1, 2, 3, 4, 5]])
    assert clf.last_token_index(rows).tolist() == [2, 0, 4, 4]
    one = GPT2ForSequenceClassification(tiny_config(), seed=0)  # no pad_token_id
    assert one.last_token_index(rows[:1]).tolist() == [4]


def test_attention_mask_hides_left_padding(clf):
    x = real_ids(2, 8)
    x[:, :3] = PAD
    mask = np.ones_like(x)
    mask[:, :3] = 0
    masked = clf(x, attention_mask=mask).logits.data
    assert not np.allclose(masked, clf(x).logits.data)
    other = x.copy()
    other[:, :3] = real_ids(2, 3)                              # what is hidden does not count
    assert max_relative_error(clf(other, attention_mask=mask).logits.data, masked) < 1e-5


def test_mean_pooling_classifies_the_mean_of_the_real_tokens():
    """classifier_pooling "mean": score(mean of the final states of the tokens that are not
    padding), the same whatever right padding follows or the attention mask hides."""
    cfg = tiny_config(num_labels=3, pad_token_id=PAD, classifier_pooling="mean")
    mean = GPT2ForSequenceClassification(cfg, seed=0).eval()
    x = real_ids(2, 6)
    states = mean.transformer(x).data                               # (B, T, C)
    expected = states.mean(axis=1) @ mean.score.weight.data.T      # (B, K)
    assert max_relative_error(mean(x).logits.data, expected) < 1e-5
    padded = np.concatenate([x, np.full((2, 4), PAD)], axis=1)     # right padding
    assert max_relative_error(mean(padded).logits.data, expected) < 1e-5
    hidden = np.concatenate([x, real_ids(2, 3)], axis=1)           # masked real tokens
    mask = np.concatenate([np.ones((2, 6)), np.zeros((2, 3))], axis=1)
    assert max_relative_error(mean(hidden, attention_mask=mask).logits.data, expected) < 1e-5
    assert mean.mean_weights(np.array([[PAD, PAD]]), None).tolist() == [[0.0, 0.0]]
    no_pad = GPT2ForSequenceClassification(cfg.replace(pad_token_id=None), seed=0).eval()
    assert max_relative_error(no_pad(x).logits.data, expected) < 1e-5   # a batch of 2: fine
    # the same weights read by the last token classify differently
    last = GPT2ForSequenceClassification(cfg.replace(classifier_pooling="last"), seed=0).eval()
    assert not np.allclose(last(x).logits.data, expected)
    with pytest.raises(ValueError, match="unknown classifier_pooling 'max'; accepted: last, "
                                         "mean"):
        tiny_config(classifier_pooling="max")


def test_mean_pooling_gradients_match_finite_differences():
    """float64: the loss's gradient with respect to score, the last LayerNorm and the token
    embeddings (which reach the loss through every pooled position) by central differences."""
    from tinyllm.autograd.gradcheck import numerical_grad

    m = GPT2ForSequenceClassification(
        tiny_config(num_labels=3, pad_token_id=PAD, classifier_pooling="mean"), seed=0).double()
    x = real_ids(3, 5)
    x[1, 3:] = PAD
    labels = np.array([0, 2, 1])

    def loss() -> float:
        return m(x, labels=labels).loss.item()

    m.zero_grad()
    m(x, labels=labels).loss.backward()
    params = dict(m.named_parameters())
    for name in ("score.weight", "transformer.ln_f.weight", "transformer.wte.weight"):
        p = params[name]
        numeric = numerical_grad(loss, p, 1e-6)
        assert max_relative_error(p.grad, numeric) < 1e-6, name


def test_a_model_transformers_would_misread_is_saved_as_tinyllms_own(tmp_path):
    """A config that `transformers` would read and ignore part of (mean pooling, muP away from
    its base width, pruned heads) is saved with model_type "tinyllm-gpt2"; tinyllm reads it
    back whole, and GPT-2's own configs keep "gpt2"."""
    from tinyllm.training.inference import family_of_directory

    cases = {"mean": (tiny_config(num_labels=3, pad_token_id=PAD, classifier_pooling="mean"),
                      ["classifier_pooling"]),
             "last": (tiny_config(num_labels=3, pad_token_id=PAD), []),
             "mup": (tiny_config(mup_base_width=8), ["mup_base_width"]),
             "mup-at-base": (tiny_config(mup_base_width=16), []),
             "pruned": (tiny_config(pruned_heads={1: [0]}), ["pruned_heads"])}
    x = real_ids(2, 6)
    for name, (cfg, own) in cases.items():
        assert cfg.tinyllm_only_fields() == own, name
        cls = GPT2ForSequenceClassification if name in ("mean", "last") else GPT
        model = cls(cfg, seed=0).eval()
        model.save(tmp_path / name)
        saved = json.loads((tmp_path / name / "config.json").read_text())
        assert saved["model_type"] == ("tinyllm-gpt2" if own else "gpt2"), name
        assert saved["architectures"] == [cls.hf_architecture]
        assert family_of_directory(tmp_path / name).name == "gpt"
        back = cls.from_pretrained(tmp_path / name).eval()
        assert back.config == cfg, name
        np.testing.assert_array_equal(back(x).logits.data, model(x).logits.data)


def test_transformers_refuses_a_mean_pooled_classifier(tmp_path):
    """AutoModelForSequenceClassification would build the last-token head from these weights:
    it refuses the model_type instead."""
    transformers = pytest.importorskip("transformers")
    pytest.importorskip("torch")
    cfg = tiny_config(num_labels=3, pad_token_id=PAD, classifier_pooling="mean")
    GPT2ForSequenceClassification(cfg, seed=0).save(tmp_path)
    with pytest.raises(ValueError, match="tinyllm-gpt2"):
        transformers.AutoModelForSequenceClassification.from_pretrained(tmp_path)


@pytest.mark.parametrize("call, exc, message", [
    (lambda m: GPT2ForSequenceClassification(tiny_config(), seed=0)(real_ids(2, 4)), ValueError,
     "a batch of 2 sequences needs config.pad_token_id .* it is None"),
    (lambda m: m(real_ids(2, 13)), ValueError, "13 positions, more than the context of 12"),
    (lambda m: m(real_ids(2, 4), labels=np.array([0, 1, 2])), ValueError,
     r"GPT: labels have shape \(3,\), expected \(B,\) = \(2,\)"),
    (lambda m: m(real_ids(2, 4), labels=np.array([0.0, 1.0])), TypeError,
     "labels must be class ids .* num_labels=3, got dtype float64; multi-label"),
    (lambda m: m(real_ids(2, 4), labels=np.array([0, 3])), ValueError,
     "target 3 is out of range for 3 classes"),
    (lambda m: m(real_ids(2, 4), attention_mask=np.ones((2, 5))), ValueError,
     r"GPT: attention_mask has shape \(2, 5\), expected \(B, T\) = \(2, 4\)"),
    (lambda m: m(real_ids(2, 4), attention_mask=np.full((2, 4), 2)), ValueError,
     "only 1 \\(token\\) and 0"),
])
def test_classifier_bad_inputs(clf, call, exc, message):
    with pytest.raises(exc, match=message):
        call(clf)


@pytest.mark.parametrize("seq_len", [12, 5])
def test_classifier_flops_per_token_equal_the_products_run(monkeypatch, seq_len):
    m = GPT2ForSequenceClassification(tiny_config(n_inner=24, num_labels=3, pad_token_id=PAD),
                                      seed=0)
    counter = MatmulCounter(monkeypatch)
    batch = 3
    loss = m(real_ids(batch, seq_len), labels=np.array([0, 1, 2])).loss
    tokens = batch * seq_len
    assert counter.forward == pytest.approx(
        m.flops_per_token(training=False, seq_len=seq_len) * tokens, rel=1e-12)
    loss.backward()
    assert counter.forward + counter.backward == pytest.approx(
        m.flops_per_token(seq_len=seq_len) * tokens, rel=1e-12)
    assert "lm_head" not in m.flops_breakdown()


def test_classifier_from_a_language_model_directory_and_back(tmp_path, model):
    model.save(tmp_path / "lm")
    with pytest.warns(UserWarning, match="score.weight not in .*newly initialised"):
        clf = GPT2ForSequenceClassification.from_pretrained(tmp_path / "lm", num_labels=4,
                                                            pad_token_id=PAD)
    assert clf.score.weight.shape == (4, 16) and clf.config.pad_token_id == PAD
    assert np.array_equal(clf.transformer.wte.weight.data, model.transformer.wte.weight.data)
    clf.save(tmp_path / "clf")
    config = json.loads((tmp_path / "clf" / "config.json").read_text())
    assert config["architectures"] == ["GPT2ForSequenceClassification"]
    assert config["num_labels"] == 4 and config["pad_token_id"] == PAD
    assert set(read_safetensors(tmp_path / "clf" / "model.safetensors")) == {
        n for n, _ in clf.named_parameters()}
    again = GPT2ForSequenceClassification.load(tmp_path / "clf")
    x = real_ids(2, 5)
    assert np.array_equal(again(x).logits.data, clf(x).logits.data)
    lm = GPT.from_pretrained(tmp_path / "clf")          # the classifier's score is left out
    assert np.array_equal(lm(x).logits.data, model(x).logits.data)
