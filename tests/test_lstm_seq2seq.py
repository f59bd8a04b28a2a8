"""LSTMSeq2Seq and AdditiveAttention: float64 gradient checks, parity with PyTorch (the
attention composed from torch ops, the whole model reimplemented on torch.nn.LSTM with the same
weights), incremental decoding against teacher forcing, padding invariance, beam-search state
selection, presets against the Transformer's sizes, FLOPs against the products run,
checkpoints, and errors. `generate` is left to tinyllm.models.decoding's tests."""

import json

import numpy as np
import pytest
from matmul_counter import MatmulCounter

import tinyllm
from tinyllm.autograd.gradcheck import gradcheck, max_relative_error
from tinyllm.models import (
    GPT,
    PRESETS,
    CheckpointError,
    GPTConfig,
    LSTMSeq2Seq,
    LSTMSeq2SeqConfig,
    get_family,
    shift_tokens_right,
)
from tinyllm.models.checkpoint import read_safetensors
from tinyllm.nn import AdditiveAttention
from tinyllm.optim import AdamW
from tinyllm.tokenizers import CharTokenizer

RNG = np.random.default_rng(11)
V = 13

# The encoder-decoder Transformer's parameter counts at vocab_size=256 (the `seq2seq`
# family's presets: Marian's layout, d_model 16 .. 256, shared embedding, final logits bias).
TRANSFORMER_PARAMS = {"nano": 12_032, "micro": 38_144, "tiny": 133_376, "mini": 547_072,
                      "small": 1_421_568, "base": 4_202_752}


def f64(*shape, requires_grad=True):
    return tinyllm.tensor(RNG.standard_normal(shape), requires_grad=requires_grad)


def small_config(**overrides):
    fields = dict(vocab_size=V, hidden_size=4, num_layers=2, attention_size=5,
                  max_positions=8, pad_token_id=0, eos_token_id=1,
                  decoder_start_token_id=2, init_range=0.5)
    return LSTMSeq2SeqConfig(**{**fields, **overrides})


def model64(config=None, seed=0) -> LSTMSeq2Seq:
    with tinyllm.default_dtype("float64"):
        return LSTMSeq2Seq(small_config() if config is None else config, seed=seed)


def batch():
    """Three sources (B, S) = (3, 6): full, right-padded and left-padded; targets (3, 4)."""
    src = RNG.integers(3, V, (3, 6))
    mask = np.ones((3, 6), dtype=np.int64)
    mask[1, 4:] = 0
    mask[2, :2] = 0
    src[mask == 0] = 0
    labels = RNG.integers(3, V, (3, 4))
    labels[1, 3] = -100
    return src, mask, labels


# ----------------------------------------------------------------- additive attention
def attention64(q=3, k=4, a=5) -> AdditiveAttention:
    with tinyllm.default_dtype("float64"):
        return AdditiveAttention(q, k, a)


@pytest.mark.parametrize("query_shape", [(2, 3), (2, 3, 3)])
def test_additive_attention_gradcheck_with_a_mask(query_shape):
    attn = attention64()
    query, keys = f64(*query_shape), f64(2, 5, 4)
    mask = np.array([[False] * 5, [False, False, True, False, True]])
    params = list(attn.parameters())
    assert len(params) == 3

    def fn(query, keys, *_):
        context, weights = attn(query, keys, key_padding_mask=mask)
        return tinyllm.cat([context.reshape(-1), weights.reshape(-1)])

    assert gradcheck(fn, query, keys, *params)
    # the keys' projection passed in from project_keys: the same function of the same inputs
    assert gradcheck(lambda q, k, *_: attn(q, k, mask, attn.project_keys(k))[0],
                     query, keys, *params)


def test_additive_attention_equals_the_formula_in_torch():
    torch = pytest.importorskip("torch")
    attn = attention64()
    query, keys = f64(2, 3, 3), f64(2, 5, 4)
    mask = np.array([[False, True, False, False, False], [False] * 4 + [True]])
    weight = RNG.standard_normal((2, 3, 4))
    context, weights = attn(query, keys, mask)
    ((context * tinyllm.tensor(weight)).sum() + (weights * weights).sum()).backward()

    t = {name: torch.tensor(p.data, requires_grad=True) for name, p in attn.named_parameters()}
    t_q, t_k = (torch.tensor(x.data, requires_grad=True) for x in (query, keys))
    hidden = torch.tanh((t_q @ t["query_proj.weight"].T)[:, :, None, :]
                        + (t_k @ t["key_proj.weight"].T)[:, None, :, :])   # (B, T, S, A)
    scores = (hidden * t["v"]).sum(-1).masked_fill(torch.tensor(mask)[:, None], -torch.inf)
    t_weights = torch.softmax(scores, dim=-1)
    t_context = t_weights @ t_k
    ((t_context * torch.tensor(weight)).sum() + (t_weights * t_weights).sum()).backward()

    pairs = [(context.data, t_context), (weights.data, t_weights), (query.grad, t_q.grad),
             (keys.grad, t_k.grad)]
    pairs += [(p.grad, t[name].grad) for name, p in attn.named_parameters()]
    for ours, theirs in pairs:
        assert max_relative_error(ours, theirs.detach().numpy()) < 1e-13


def test_additive_attention_masks_and_shapes():
    attn = AdditiveAttention(query_dim=6, key_dim=3, attn_dim=4)
    keys = tinyllm.randn(2, 5, 3)
    mask = np.array([[False, False, True, True, True], [False] * 5])
    context, weights = attn(tinyllm.randn(2, 6), keys, mask)
    assert context.shape == (2, 3) and weights.shape == (2, 5)
    assert np.all(weights.data[0, 2:] == 0) and np.allclose(weights.data.sum(-1), 1)
    expected = np.einsum("bs,bsk->bk", weights.data, keys.data)
    assert np.allclose(context.data, expected, atol=1e-6)
    assert [n for n, _ in attn.named_parameters()] == [
        "query_proj.weight", "key_proj.weight", "v"]
    assert attn.project_keys(keys).shape == (2, 5, 4)


def test_additive_attention_errors():
    attn = AdditiveAttention(6, 3, 4)
    q, keys = tinyllm.randn(2, 6), tinyllm.randn(2, 5, 3)
    with pytest.raises(ValueError, match=r"keys must be \(B, S, 3\) .* got shape \(2, 5, 4\)"):
        attn(q, tinyllm.randn(2, 5, 4))
    with pytest.raises(ValueError, match=r"query must be \(B, 6\) or \(B, T, 6\) .* B=2; got "
                                         r"shape \(3, 6\)"):
        attn(tinyllm.randn(3, 6), keys)
    with pytest.raises(ValueError, match=r"key_padding_mask must be boolean \(B, S\) = "
                                         r"\(2, 5\).* dtype int64"):
        attn(q, keys, np.zeros((2, 5), dtype=np.int64))
    with pytest.raises(ValueError, match="row 1 of key_padding_mask is all padding"):
        attn(q, keys, np.array([[False] * 5, [True] * 5]))
    with pytest.raises(ValueError, match=r"projected_keys has shape \(2, 5, 3\), expected "
                                         r"\(2, 5, 4\)"):
        attn(q, keys, projected_keys=tinyllm.randn(2, 5, 3))
    with pytest.raises(ValueError, match="attn_dim must be a positive integer"):
        AdditiveAttention(6, 3, 0)


# ----------------------------------------------------------------- gradients
def test_loss_gradcheck_every_parameter():
    """Central differences of the loss against backward, for a few elements of every
    parameter, with source padding on the right and on the left and an ignored label."""
    model = model64()
    src, mask, labels = batch()

    def loss():
        return model(src, attention_mask=mask, labels=labels).loss

    model.zero_grad()
    loss().backward()
    eps, checked = 1e-6, 0
    rng = np.random.default_rng(0)
    with tinyllm.no_grad():
        for name, p in model.named_parameters():
            flat, grad = p.data.reshape(-1), p.grad.reshape(-1)
            assert np.shares_memory(flat, p.data)
            for i in rng.choice(flat.size, size=min(4, flat.size), replace=False):
                saved = flat[i]
                flat[i] = saved + eps
                up = loss().item()
                flat[i] = saved - eps
                down = loss().item()
                flat[i] = saved
                numeric = (up - down) / (2 * eps)
                assert abs(grad[i] - numeric) <= 1e-8 + 1e-6 * abs(numeric), (name, i)
                checked += 1
    assert len(list(model.parameters())) == 36 and checked == 4 * 36


# ----------------------------------------------------------------- parity with PyTorch
def torch_reference(torch, model, src, mask, labels):
    """The same network written with torch.nn.LSTM (a PackedSequence for the padded source)
    and torch ops, on copies of the model's weights; returns (logits, loss, parameters) with
    the parameters keyed by the model's names."""
    from torch.nn.utils.rnn import pack_padded_sequence, pad_packed_sequence

    c = model.config
    h = c.hidden_size
    enc = torch.nn.LSTM(h, h, c.num_layers, batch_first=True, bidirectional=True,
                        dtype=torch.float64)
    dec = torch.nn.LSTM(2 * h, h, c.num_layers, batch_first=True, dtype=torch.float64)
    enc.load_state_dict({k: torch.tensor(v) for k, v in model.encoder.state_dict().items()})
    dec.load_state_dict({k: torch.tensor(v) for k, v in model.decoder.state_dict().items()})
    p = {name: torch.tensor(t.data, requires_grad=True) for name, t in model.named_parameters()
         if not name.startswith(("encoder.", "decoder."))}
    p.update({f"encoder.{k}": v for k, v in enc.named_parameters()})
    p.update({f"decoder.{k}": v for k, v in dec.named_parameters()})

    def linear(name, x):
        bias = p.get(f"{name}.bias")
        return x @ p[f"{name}.weight"].T + (0 if bias is None else bias)

    emb = p["embedding.weight"]
    lengths = torch.tensor(mask.sum(1))
    packed = pack_padded_sequence(emb[torch.tensor(src)], lengths, batch_first=True,
                                  enforce_sorted=False)
    out, (h_n, c_n) = enc(packed)
    out, _ = pad_packed_sequence(out, batch_first=True, total_length=src.shape[1])
    keys = linear("encoder_proj", out)                                 # (B, S, H)
    state = (torch.tanh(linear("init_h", torch.cat([h_n[0::2], h_n[1::2]], -1))),
             linear("init_c", torch.cat([c_n[0::2], c_n[1::2]], -1)))
    tgt = torch.tensor(shift_tokens_right(labels, c.pad_token_id, c.decoder_start_token_id))
    pad = torch.tensor(mask == 0)
    feed, feeds = torch.zeros(len(src), h, dtype=torch.float64), []
    for t in range(tgt.shape[1]):
        step, state = dec(torch.cat([emb[tgt[:, t]], feed], -1)[:, None], state)
        query = step[:, 0]                                             # (B, H)
        hidden = torch.tanh(linear("attention.query_proj", query)[:, None]
                            + linear("attention.key_proj", keys))      # (B, S, A)
        scores = (hidden @ p["attention.v"]).masked_fill(pad, -torch.inf)
        context = (torch.softmax(scores, -1)[:, :, None] * keys).sum(1)   # (B, H)
        feed = torch.tanh(linear("combine", torch.cat([query, context], -1)))
        feeds.append(feed)
    logits = torch.stack(feeds, 1) @ emb.T + p["lm_head.bias"]         # (B, T, V)
    loss = torch.nn.functional.cross_entropy(logits.reshape(-1, c.vocab_size),
                                             torch.tensor(labels).reshape(-1))
    return logits, loss, p


def test_matches_a_pytorch_reimplementation_values_and_gradients():
    torch = pytest.importorskip("torch")
    model = model64()
    src, mask, labels = batch()
    mask[2], src[2] = 1, RNG.integers(3, V, 6)        # right padding only: a PackedSequence
    mask[0, 5] = 0
    out = model(src, attention_mask=mask, labels=labels)
    out.loss.backward()
    t_logits, t_loss, t_params = torch_reference(torch, model, src, mask, labels)
    t_loss.backward()
    assert max_relative_error(out.logits.data, t_logits.detach().numpy()) < 1e-12
    assert abs(out.loss.item() - t_loss.item()) < 1e-12
    names = [name for name, _ in model.named_parameters()]
    assert sorted(names) == sorted(t_params)
    for name, p in model.named_parameters():
        assert max_relative_error(p.grad, t_params[name].grad.numpy()) < 1e-10, name


# ----------------------------------------------------------------- padding and decoding
def test_a_padded_source_row_equals_the_row_alone():
    model = model64()
    src, mask, labels = batch()
    out = model(src, attention_mask=mask, labels=labels, output_attentions=True)
    (attn,) = out.cross_attentions
    assert attn.shape == (3, 1, 4, 6)
    weights = attn[:, 0]                                               # (B, T, S)
    padded = np.broadcast_to((mask == 0)[:, None, :], weights.shape)
    assert np.all(weights[padded] == 0) and np.allclose(weights.sum(-1), 1)
    for row in (1, 2):                                  # right, then left padding
        real = mask[row] == 1
        alone = model(src[row:row + 1, real], labels=labels[row:row + 1],
                      output_attentions=True)
        assert max_relative_error(out.logits.data[row], alone.logits.data[0]) < 1e-13
        assert max_relative_error(weights[row][:, real], alone.cross_attentions[0][0, 0]) < 1e-13
    # whatever the padded positions hold changes nothing
    other = src.copy()
    other[mask == 0] = 7
    again = model(other, attention_mask=mask, labels=labels)
    assert np.array_equal(again.logits.data, out.logits.data)


def test_incremental_decoding_equals_teacher_forcing():
    model = model64().eval()
    src, mask, labels = batch()
    tgt = shift_tokens_right(labels, model.config.pad_token_id,
                             model.config.decoder_start_token_id)
    full = model(src, attention_mask=mask, decoder_input_ids=tgt).logits.data   # (B, T, V)
    state = model.start_decoding(src, mask)
    assert state.length == 0 and state.batch_size == 3
    assert tgt[0, 0] == model.config.decoder_start_token_id
    for t in range(tgt.shape[1]):
        step = model.decode_step(state, tgt[:, t])
        assert isinstance(step, np.ndarray) and step.shape == (3, V)
        assert max_relative_error(step, full[:, t]) < 1e-13
        assert state.length == t + 1


def test_select_reorders_and_expands_rows():
    model = model64().eval()
    src, mask, labels = batch()
    tgt = shift_tokens_right(labels, 0, model.config.decoder_start_token_id)
    state = model.start_decoding(src, mask)
    for t in range(2):
        model.decode_step(state, tgt[:, t])
    rows = np.array([2, 0, 0, 1])
    picked = state.select(rows)
    assert picked.length == 2 and picked.batch_size == 4 and state.batch_size == 3
    full = model(src[rows], attention_mask=mask[rows], decoder_input_ids=tgt[rows]).logits.data
    for t in range(2, tgt.shape[1]):
        assert max_relative_error(model.decode_step(picked, tgt[rows, t]), full[:, t]) < 1e-13
    # beams of the same sources reordered among themselves share the encoder's arrays
    beams = model.start_decoding(src, mask).select(np.repeat(np.arange(3), 2))
    swapped = beams.select(np.array([1, 0, 3, 2, 5, 4]))
    assert swapped.keys is beams.keys and swapped.projected_keys is beams.projected_keys
    moved = beams.select(np.array([2, 2, 0, 1, 5, 4]))
    assert moved.keys is not beams.keys
    assert np.array_equal(moved.keys, beams.keys[[2, 2, 0, 1, 5, 4]])
    with pytest.raises(ValueError, match=r"row 6 does not exist in a state of 6 rows"):
        beams.select(np.array([0, 6]))
    with pytest.raises(ValueError, match="indices must be a 1-D array of row numbers"):
        beams.select(np.array([[0, 1]]))


def test_labels_teacher_force_the_shifted_target():
    model = model64()
    src, mask, labels = batch()
    out = model(src, attention_mask=mask, labels=labels)
    tgt = shift_tokens_right(labels, 0, model.config.decoder_start_token_id)
    explicit = model(src, attention_mask=mask, decoder_input_ids=tgt, labels=labels)
    assert np.array_equal(out.logits.data, explicit.logits.data)
    logits = out.logits.data
    keep = labels != -100
    logp = logits - np.log(np.exp(logits).sum(-1, keepdims=True))
    nll = -np.take_along_axis(logp, np.where(keep, labels, 0)[..., None], -1)[..., 0]
    assert abs(out.loss.item() - nll[keep].mean()) < 1e-12
    assert out.cross_attentions is None
    assert model(src, attention_mask=mask, decoder_input_ids=tgt).loss is None


def test_dropout_only_in_training():
    model = model64(small_config(dropout=0.4))
    src, mask, labels = batch()
    tinyllm.manual_seed(0)
    a = model(src, attention_mask=mask, labels=labels).logits.data
    b = model(src, attention_mask=mask, labels=labels).logits.data
    model.eval()
    c = model(src, attention_mask=mask, labels=labels).logits.data
    plain = model64(small_config())
    plain.load_state_dict(model.state_dict())
    assert not np.allclose(a, b)
    assert np.array_equal(c, plain(src, attention_mask=mask, labels=labels).logits.data)


def test_training_learns_to_copy():
    """100 AdamW steps on copying three tokens (then eos): the attention finds the source
    position each target position needs and the loss falls far below chance, log V."""
    model = LSTMSeq2Seq(small_config(hidden_size=32, num_layers=1, attention_size=32,
                                     init_range=0.1), seed=0)
    opt = AdamW(model.parameters(), lr=2e-2, weight_decay=0.0)
    rng = np.random.default_rng(0)
    losses = []
    for _ in range(100):
        src = rng.integers(3, V, (16, 3))
        labels = np.concatenate([src, np.ones((16, 1), dtype=np.int64)], axis=1)
        loss = model(src, labels=labels).loss
        opt.zero_grad()
        loss.backward()
        opt.step()
        losses.append(loss.item())
    assert losses[0] > 0.95 * np.log(V) and np.mean(losses[-10:]) < 0.25 * np.log(V)


# ----------------------------------------------------------------- presets, size, cost
@pytest.mark.parametrize("name", list(TRANSFORMER_PARAMS))
def test_presets_match_the_transformers_sizes(name):
    config = LSTMSeq2SeqConfig.from_preset(name)
    assert config.vocab_size == 256
    n = config.param_count()
    assert abs(n / TRANSFORMER_PARAMS[name] - 1) < 0.003
    model = LSTMSeq2Seq(config, seed=0)
    assert model.num_params() == n
    assert model.num_params(non_embedding=True) == n - 256 * config.hidden_size


def test_the_docstring_table_is_what_the_code_computes():
    import tinyllm.models.lstm_seq2seq as module

    rows = [line.split() for line in module.__doc__.splitlines()
            if line.split()[:1] and line.split()[0] in TRANSFORMER_PARAMS]
    assert [r[0] for r in rows] == list(TRANSFORMER_PARAMS)
    for name, layers, h, a, max_positions, params, theirs, flops in rows:
        config = LSTMSeq2SeqConfig.from_preset(name)
        assert (config.num_layers, config.hidden_size, config.attention_size,
                config.max_positions) == (int(layers), int(h), int(a), int(max_positions))
        assert int(params.replace(",", "")) == config.param_count()
        assert int(theirs.replace(",", "")) == TRANSFORMER_PARAMS[name]
        model = LSTMSeq2Seq(config, seed=0)
        assert int(flops.replace(",", "")) == model.flops_per_token(training=False)


def test_param_count_formula_on_odd_shapes():
    for fields in (dict(num_layers=1), dict(num_layers=3, attention_size=2),
                   dict(hidden_size=7, vocab_size=5, pad_token_id=4, eos_token_id=None)):
        config = small_config(**fields)
        assert LSTMSeq2Seq(config, seed=0).num_params() == config.param_count()


def test_family_is_registered():
    family = get_family("lstm-seq2seq")
    assert family.objective == "seq2seq" and not family.can_generate
    assert PRESETS["lstm-seq2seq"] is family.presets and list(family.presets) == list(
        TRANSFORMER_PARAMS)
    tok = CharTokenizer().train("abcdef")
    config = family.make_config("nano", vocab_size=tok.vocab_size, block_size=16,
                                dropout=0.1, tokenizer=tok)
    assert config.block_size == config.max_positions == 16 and config.dropout == 0.1
    assert config.pad_token_id == config.decoder_start_token_id == tok.pad_token_id
    assert config.eos_token_id == tok.eos_token_id
    assert family.build(config, seed=0).config is config


@pytest.mark.parametrize("seq_len", [6, 3])
def test_flops_per_token_equals_the_products_run(monkeypatch, seq_len):
    model = LSTMSeq2Seq(small_config(), seed=0)
    counter = MatmulCounter(monkeypatch)
    n_b = 2
    src = RNG.integers(3, V, (n_b, seq_len))
    labels = RNG.integers(3, V, (n_b, seq_len))
    loss = model(src, labels=labels).loss
    c = model.config
    # init_h and init_c run once per sequence, not per token: left out of the per-token count
    per_sequence = 2 * 2 * c.num_layers * n_b * (2 * c.hidden_size) * c.hidden_size
    tokens = n_b * seq_len
    assert counter.forward == model.flops_per_token(False, seq_len) * tokens + per_sequence
    loss.backward()
    assert counter.forward + counter.backward == (model.flops_per_token(True, seq_len) * tokens
                                                  + 3 * per_sequence)
    assert model.flops_per_token() == model.flops_per_token(seq_len=c.max_positions)
    parts = model.flops_breakdown(seq_len=5)
    assert parts["attention.scores"] == 2 * 5 * 5 and parts["lm_head"] == 2 * 4 * V


# ----------------------------------------------------------------- checkpoints
def test_save_load_round_trip(tmp_path):
    model = model64()
    src, mask, labels = batch()
    path = model.save(tmp_path / "lstm-s2s")
    config = json.loads((path / "config.json").read_text())
    assert config["model_type"] == "lstm-seq2seq" and config["architectures"] == ["LSTMSeq2Seq"]
    keys = set(read_safetensors(path / "model.safetensors"))
    assert "embedding.weight" in keys and "lm_head.weight" not in keys   # tied: stored once
    assert "encoder.weight_ih_l1_reverse" in keys and "attention.v" in keys
    loaded = LSTMSeq2Seq.load(path, dtype="float64")
    assert loaded.config == model.config
    assert loaded.lm_head.weight is loaded.embedding.weight
    a = model(src, attention_mask=mask, labels=labels)
    b = loaded(src, attention_mask=mask, labels=labels)
    assert np.array_equal(a.logits.data, b.logits.data)
    GPT(GPTConfig(vocab_size=V, n_layer=1, n_head=1, n_embd=4, n_positions=8)).save(
        tmp_path / "gpt")
    with pytest.raises(CheckpointError, match="expected model_type 'lstm-seq2seq'"):
        LSTMSeq2Seq.load(tmp_path / "gpt")


# ----------------------------------------------------------------- errors
@pytest.mark.parametrize("fields, message", [
    (dict(hidden_size=0), "hidden_size must be a positive integer, got 0"),
    (dict(attention_size=-1), "attention_size must be a positive integer"),
    (dict(dropout=1.0), r"dropout must be a probability in \[0, 1\), got 1.0"),
    (dict(init_range=0), "init_range must be a positive number"),
    (dict(pad_token_id=13), r"pad_token_id=13 is outside the vocabulary \(accepted: 0..12\)"),
    (dict(eos_token_id=-1), "eos_token_id must be a non-negative integer, got -1"),
    (dict(decoder_start_token_id=20), "decoder_start_token_id=20 is outside the vocabulary"),
    (dict(pad_token_id=None), "pad_token_id must be a non-negative integer, got None"),
])
def test_config_errors(fields, message):
    with pytest.raises(ValueError, match=message):
        small_config(**fields)


def test_config_defaults():
    config = LSTMSeq2SeqConfig(hidden_size=6, pad_token_id=3)
    assert config.attention_size == 6 and config.decoder_start_token_id == 3
    assert LSTMSeq2SeqConfig.from_dict(config.to_dict()) == config


def test_bad_inputs_are_refused_clearly():
    model = LSTMSeq2Seq(small_config(), seed=0)
    src, mask, labels = batch()
    with pytest.raises(ValueError, match="pass decoder_input_ids, or labels"):
        model(src, attention_mask=mask)
    with pytest.raises(ValueError, match=r"labels hold id 13, outside the vocabulary of size 13"):
        model(src, labels=np.full((3, 4), 13))
    with pytest.raises(ValueError, match="labels must be integer token ids of shape"):
        model(src, labels=labels.astype(float))
    with pytest.raises(ValueError, match=r"input_ids has 9 positions, more than the context "
                                         r"of 8"):
        model(RNG.integers(3, V, (3, 9)), labels=labels)
    tgt = np.where(labels == -100, 0, labels)
    with pytest.raises(ValueError, match="decoder_input_ids has 2 rows but input_ids has 3"):
        model(src, decoder_input_ids=tgt[:2])
    with pytest.raises(ValueError, match="decoder_input_ids must hold at least one position"):
        model(src, decoder_input_ids=np.zeros((3, 0), dtype=np.int64))
    with pytest.raises(ValueError, match="input_ids must hold at least one position"):
        model(np.zeros((3, 0), dtype=np.int64), labels=labels)
    empty = mask.copy()
    empty[1] = 0
    with pytest.raises(ValueError, match="row 1 of attention_mask is all padding"):
        model(src, attention_mask=empty, labels=labels)
    with pytest.raises(ValueError, match=r"attention_mask has shape \(3, 5\)"):
        model(src, attention_mask=mask[:, :5], labels=labels)
    left = np.ones((3, 4), dtype=np.int64)
    left[0, 0] = 0
    with pytest.raises(ValueError, match=r"padding before a token; .* \(right padding\)"):
        model(src, decoder_input_ids=tgt, decoder_attention_mask=left)
    right = np.ones((3, 4), dtype=np.int64)
    right[0, 3] = 0
    assert model(src, decoder_input_ids=tgt,
                 decoder_attention_mask=right).logits.shape == (3, 4, V)
    state = model.start_decoding(src, mask)
    with pytest.raises(ValueError, match=r"tokens must be \(3,\), one per row"):
        model.decode_step(state, np.array([2, 2]))
    with pytest.raises(ValueError, match="tokens holds id 13"):
        model.decode_step(state, np.array([2, 2, 13]))
    with pytest.raises(TypeError, match="needs a LSTMSeq2SeqConfig"):
        LSTMSeq2Seq(GPTConfig())
