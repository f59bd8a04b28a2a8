"""LSTM and LSTMLM: PyTorch's layout, float64 gradient checks, the fused op against the same
equations composed from primitive ops, parity with torch.nn.LSTM (values and every gradient),
the language model's presets, generation with a carried state, checkpoints, and training."""

import json

import numpy as np
import pytest

import tinyllm
from tinyllm.autograd.gradcheck import gradcheck, max_relative_error
from tinyllm.models import GPT, LSTMLM, PRESETS, CheckpointError, GPTConfig, LSTMConfig
from tinyllm.nn import LSTM

RNG = np.random.default_rng(7)


def f64(*shape, requires_grad=True):
    return tinyllm.tensor(RNG.standard_normal(shape), requires_grad=requires_grad)


def lstm64(*args, **kwargs) -> LSTM:
    with tinyllm.default_dtype("float64"):
        return LSTM(*args, **kwargs)


def flat(out, state):
    """One tensor of everything the LSTM returns, so one check covers all of it."""
    h_n, c_n = state
    return tinyllm.cat([out.reshape(-1), h_n.reshape(-1), c_n.reshape(-1)])


# ----------------------------------------------------------------- layout
def test_parameter_names_and_shapes_are_torchs():
    lstm = LSTM(3, 5, num_layers=2)
    assert [(n, p.shape) for n, p in lstm.named_parameters()] == [
        ("weight_ih_l0", (20, 3)), ("weight_hh_l0", (20, 5)), ("bias_ih_l0", (20,)),
        ("bias_hh_l0", (20,)), ("weight_ih_l1", (20, 5)), ("weight_hh_l1", (20, 5)),
        ("bias_ih_l1", (20,)), ("bias_hh_l1", (20,))]
    assert all(np.abs(p.data).max() <= 1 / np.sqrt(5) for p in lstm.parameters())
    assert [n for n, _ in LSTM(3, 5, bias=False).named_parameters()] == [
        "weight_ih_l0", "weight_hh_l0"]
    out, (h, c) = lstm(tinyllm.randn(4, 6, 3))
    assert out.shape == (4, 6, 5) and h.shape == c.shape == (2, 4, 5)
    assert out.dtype == np.float32 and h.dtype == np.float32


# ----------------------------------------------------------------- gradients
@pytest.mark.parametrize("num_layers, batch_first, with_hx, bias", [
    (1, False, True, True), (2, True, True, True), (2, True, False, False)])
def test_gradcheck(num_layers, batch_first, with_hx, bias):
    lstm = lstm64(3, 2, num_layers=num_layers, batch_first=batch_first, bias=bias)
    x = f64(2, 3, 3)
    hx = (f64(num_layers, 2 if batch_first else 3, 2),
          f64(num_layers, 2 if batch_first else 3, 2)) if with_hx else ()
    params = list(lstm.parameters())

    def fn(x, *rest):
        return flat(*lstm(x, tuple(rest[:2]) if with_hx else None))

    assert gradcheck(fn, x, *hx, *params)


def test_gradcheck_unbatched():
    lstm = lstm64(2, 3, num_layers=2)
    x, h, c = f64(4, 2), f64(2, 3), f64(2, 3)
    out, (h_n, c_n) = lstm(x, (h, c))
    assert out.shape == (4, 3) and h_n.shape == c_n.shape == (2, 3)
    assert gradcheck(lambda x, h, c, *p: flat(*lstm(x, (h, c))), x, h, c, *lstm.parameters())


def composed_lstm(x, h, c, w_ih, w_hh, b_ih, b_hh):
    """The textbook equations with primitive ops, one step at a time: x (B, T, I)."""
    hs = []
    for t in range(x.shape[1]):
        a = x[:, t] @ w_ih.T + b_ih + h @ w_hh.T + b_hh                # (B, 4H)
        i, f, g, o = a.chunk(4, dim=-1)
        c = f.sigmoid() * c + i.sigmoid() * g.tanh()
        h = o.sigmoid() * c.tanh()
        hs.append(h)
    return tinyllm.stack(hs, dim=1), (h, c)


def test_fused_op_equals_the_composed_equations():
    lstm = lstm64(4, 3)
    x, h, c = f64(2, 5, 4), f64(1, 2, 3), f64(1, 2, 3)
    w = RNG.standard_normal((2, 5, 3))
    out, (h_n, c_n) = lstm(x, (h, c))
    ((out * tinyllm.tensor(w)).sum() + h_n.sum() + 2 * c_n.sum()).backward()
    fused = [out.data, h_n.data[0], c_n.data[0], x.grad, h.grad, c.grad,
             *(p.grad for p in lstm.parameters())]
    for t in (x, h, c, *lstm.parameters()):
        t.grad = None
    out, (h_n, c_n) = composed_lstm(x, h[0], c[0], *lstm.parameters())
    ((out * tinyllm.tensor(w)).sum() + h_n.sum() + 2 * c_n.sum()).backward()
    composed = [out.data, h_n.data, c_n.data, x.grad, h.grad, c.grad,
                *(p.grad for p in lstm.parameters())]
    for a, b in zip(fused, composed):
        assert max_relative_error(a, b) < 1e-13


@pytest.mark.parametrize("num_layers, batch_first, with_hx", [
    (1, True, False), (2, True, True), (3, False, True)])
def test_parity_with_torch(num_layers, batch_first, with_hx):
    torch = pytest.importorskip("torch")
    ref = torch.nn.LSTM(4, 6, num_layers=num_layers, batch_first=batch_first,
                        dtype=torch.float64)
    lstm = lstm64(4, 6, num_layers=num_layers, batch_first=batch_first)
    lstm.load_state_dict({k: v.numpy() for k, v in ref.state_dict().items()})
    x = f64(3, 7, 4)
    hx = (f64(num_layers, 7 if not batch_first else 3, 6),
          f64(num_layers, 7 if not batch_first else 3, 6)) if with_hx else None
    t_x = torch.tensor(x.data, requires_grad=True)
    t_hx = tuple(torch.tensor(t.data, requires_grad=True) for t in hx) if with_hx else None
    out, (h_n, c_n) = lstm(x, hx)
    t_out, (t_h, t_c) = ref(t_x, t_hx)
    w = [RNG.standard_normal(a.shape) for a in (out, h_n, c_n)]
    sum((a * tinyllm.tensor(b)).sum() for a, b in zip((out, h_n, c_n), w)).backward()
    sum((a * torch.tensor(b)).sum() for a, b in zip((t_out, t_h, t_c), w)).backward()
    pairs = [(out.data, t_out), (h_n.data, t_h), (c_n.data, t_c), (x.grad, t_x.grad)]
    if with_hx:
        pairs += [(hx[0].grad, t_hx[0].grad), (hx[1].grad, t_hx[1].grad)]
    pairs += [(getattr(lstm, n).grad, p.grad) for n, p in ref.named_parameters()]
    assert len(pairs) >= 4 + 4 * num_layers
    for ours, theirs in pairs:
        assert max_relative_error(ours, theirs.detach().numpy()) <= 1e-10


def test_dropout_acts_between_layers_only_in_training():
    lstm = LSTM(3, 4, num_layers=2, dropout=0.5)
    x = tinyllm.randn(2, 5, 3)
    tinyllm.manual_seed(0)
    a = lstm(x)[0].data
    lstm.eval()
    b = lstm(x)[0].data
    plain = LSTM(3, 4, num_layers=2)
    plain.load_state_dict(lstm.state_dict())
    assert not np.allclose(a, b) and np.array_equal(b, plain(x)[0].data)


def test_lstm_errors():
    lstm = LSTM(3, 4, num_layers=2)
    with pytest.raises(ValueError, match="input has 5 features .* expected input_size=3"):
        lstm(tinyllm.randn(2, 6, 5))
    with pytest.raises(ValueError, match=r"h_0 has shape \(1, 2, 4\), expected \(2, 2, 4\)"):
        lstm(tinyllm.randn(2, 6, 3), (tinyllm.zeros(1, 2, 4), tinyllm.zeros(2, 2, 4)))
    with pytest.raises(TypeError, match="hx must be a tuple"):
        lstm(tinyllm.randn(2, 6, 3), tinyllm.zeros(2, 2, 4))
    with pytest.raises(ValueError, match="dropout must be a probability"):
        LSTM(3, 4, dropout=1.0)
    with pytest.raises(ValueError, match="hidden_size must be a positive integer"):
        LSTM(3, 0)


# ----------------------------------------------------------------- directions and lengths
def test_bidirectional_layout_is_torchs():
    lstm = LSTM(3, 5, num_layers=2, bidirectional=True)
    names = [(n, p.shape) for n, p in lstm.named_parameters()]
    assert names[:8] == [
        ("weight_ih_l0", (20, 3)), ("weight_hh_l0", (20, 5)), ("bias_ih_l0", (20,)),
        ("bias_hh_l0", (20,)), ("weight_ih_l0_reverse", (20, 3)),
        ("weight_hh_l0_reverse", (20, 5)), ("bias_ih_l0_reverse", (20,)),
        ("bias_hh_l0_reverse", (20,))]
    assert names[8] == ("weight_ih_l1", (20, 10)) and len(names) == 16
    out, (h, c) = lstm(tinyllm.randn(4, 6, 3))
    assert out.shape == (4, 6, 10) and h.shape == c.shape == (4, 4, 5)
    out, (h, c) = lstm(tinyllm.randn(6, 3))
    assert out.shape == (6, 10) and h.shape == (4, 5)
    assert "bidirectional=True" in repr(lstm)


def lengths_cases():
    # (num_layers, batch_first, bidirectional, with_hx, lengths)
    return [(1, True, True, False, None), (2, True, True, True, [3, 1]),
            (2, False, True, False, [2, 3]), (1, True, False, True, [1, 3])]


@pytest.mark.parametrize("num_layers, batch_first, bidirectional, with_hx, lengths",
                         lengths_cases())
def test_gradcheck_directions_and_lengths(num_layers, batch_first, bidirectional, with_hx,
                                          lengths):
    lstm = lstm64(3, 2, num_layers=num_layers, batch_first=batch_first,
                  bidirectional=bidirectional)
    d, n_b, n_t = 2 if bidirectional else 1, 2, 3
    x = f64(n_b, n_t, 3) if batch_first else f64(n_t, n_b, 3)
    hx = (f64(d * num_layers, n_b, 2), f64(d * num_layers, n_b, 2)) if with_hx else ()
    n = None if lengths is None else np.array(lengths)

    def fn(x, *rest):
        return flat(*lstm(x, tuple(rest[:2]) if with_hx else None, lengths=n))

    assert gradcheck(fn, x, *hx, *lstm.parameters())


@pytest.mark.parametrize("num_layers, batch_first, bidirectional, with_hx, lengths",
                         lengths_cases())
def test_directions_and_lengths_match_torch_packed_sequences(
        num_layers, batch_first, bidirectional, with_hx, lengths):
    """Values and every gradient against torch.nn.LSTM reading a PackedSequence."""
    torch = pytest.importorskip("torch")
    from torch.nn.utils.rnn import pack_padded_sequence, pad_packed_sequence

    ref = torch.nn.LSTM(4, 5, num_layers=num_layers, batch_first=batch_first,
                        bidirectional=bidirectional, dtype=torch.float64)
    lstm = lstm64(4, 5, num_layers=num_layers, batch_first=batch_first,
                  bidirectional=bidirectional)
    lstm.load_state_dict({k: v.numpy() for k, v in ref.state_dict().items()})
    n_b, n_t, d = 3, 6, 2 if bidirectional else 1
    n = None if lengths is None else np.array([6, 2, 4])
    x = f64(n_b, n_t, 4) if batch_first else f64(n_t, n_b, 4)
    hx = (f64(d * num_layers, n_b, 5), f64(d * num_layers, n_b, 5)) if with_hx else None
    t_x = torch.tensor(x.data, requires_grad=True)
    t_hx = tuple(torch.tensor(t.data, requires_grad=True) for t in hx) if with_hx else None
    out, (h_n, c_n) = lstm(x, hx, lengths=n)
    if n is None:
        t_out, (t_h, t_c) = ref(t_x, t_hx)
    else:
        packed = pack_padded_sequence(t_x, torch.tensor(n), batch_first=batch_first,
                                      enforce_sorted=False)
        t_packed, (t_h, t_c) = ref(packed, t_hx)
        t_out, _ = pad_packed_sequence(t_packed, batch_first=batch_first, total_length=n_t)
    w = [RNG.standard_normal(a.shape) for a in (out, h_n, c_n)]
    sum((a * tinyllm.tensor(b)).sum() for a, b in zip((out, h_n, c_n), w)).backward()
    sum((a * torch.tensor(b)).sum() for a, b in zip((t_out, t_h, t_c), w)).backward()
    pairs = [(out.data, t_out), (h_n.data, t_h), (c_n.data, t_c), (x.grad, t_x.grad)]
    if with_hx:
        pairs += [(hx[0].grad, t_hx[0].grad), (hx[1].grad, t_hx[1].grad)]
    pairs += [(getattr(lstm, k).grad, p.grad) for k, p in ref.named_parameters()]
    assert len(pairs) == 4 + 2 * with_hx + 4 * d * num_layers
    for ours, theirs in pairs:
        assert max_relative_error(ours, theirs.detach().numpy()) <= 1e-10


def test_a_padded_row_equals_the_row_alone():
    lstm = lstm64(3, 4, num_layers=2, bidirectional=True)
    x = f64(2, 5, 3, requires_grad=False)
    out, (h, c) = lstm(x, lengths=np.array([5, 2]))
    alone, (h1, c1) = lstm(x[1:, :2])
    assert np.abs(out.data[1, :2] - alone.data[0]).max() < 1e-14
    assert np.abs(h.data[:, 1] - h1.data[:, 0]).max() < 1e-14
    assert np.abs(c.data[:, 1] - c1.data[:, 0]).max() < 1e-14
    assert not out.data[1, 2:].any()           # nothing past the row's length
    x.data[1, 2:] = 1e3                        # whatever the padding holds
    assert np.array_equal(lstm(x, lengths=np.array([5, 2]))[0].data, out.data)


def test_lengths_errors():
    lstm = LSTM(3, 4)
    x = tinyllm.randn(2, 5, 3)
    with pytest.raises(ValueError, match=r"lengths must be 2 integers .* shape \(3,\)"):
        lstm(x, lengths=np.array([1, 2, 3]))
    with pytest.raises(ValueError, match=r"lengths must be 2 integers .* dtype float64"):
        lstm(x, lengths=np.array([1.0, 2.0]))
    with pytest.raises(ValueError, match=r"lengths holds 0; a row's length must be in 1\.\.5"):
        lstm(x, lengths=np.array([0, 2]))
    with pytest.raises(ValueError, match=r"lengths holds 6"):
        lstm(x, lengths=np.array([6, 2]))
    with pytest.raises(ValueError, match="lengths needs a batched input"):
        lstm(tinyllm.randn(5, 3), lengths=np.array([2]))
    with pytest.raises(ValueError, match=r"h_0 has shape \(1, 2, 4\), expected \(2, 2, 4\) "
                                         r"\(num_directions \* num_layers"):
        LSTM(3, 4, bidirectional=True)(x, (tinyllm.zeros(1, 2, 4), tinyllm.zeros(2, 2, 4)))


# ----------------------------------------------------------------- the language model
V = 23


@pytest.fixture(scope="module")
def model():
    return LSTMLM(LSTMConfig(vocab_size=V, hidden_size=16, num_layers=2), seed=0).eval()


def test_lstmlm_layout_and_tied_head(model):
    names = [n for n, _ in model.named_parameters()]
    assert names[0] == "embedding.weight" and names[1:3] == ["lstm.weight_ih_l0",
                                                            "lstm.weight_hh_l0"]
    assert names[-1] == "lm_head.bias" and "lm_head.weight" in model.state_dict()
    assert model.lm_head.weight is model.embedding.weight
    h = 16
    assert model.num_params() == V * h + 2 * (4 * h * 2 * h + 8 * h) + V
    assert model.num_params(non_embedding=True) == model.num_params() - V * h
    untied = LSTMLM(LSTMConfig(vocab_size=V, n_embd=8, hidden_size=16, num_layers=1,
                               tie_word_embeddings=False), seed=0)
    assert untied.num_params() == V * 8 + 4 * 16 * 24 + 8 * 16 + 16 * V + V


@pytest.mark.parametrize("name", PRESETS["lstm"])
def test_presets_match_gpt_sizes(name):
    lstm = LSTMLM(LSTMConfig.from_preset(name), seed=0).num_params()
    gpt = GPT(GPTConfig.from_preset(name), seed=0).num_params()
    assert abs(lstm / gpt - 1) < 0.02
    assert LSTMConfig.from_preset(name).n_positions == GPTConfig.from_preset(name).n_positions


def test_forward_and_loss(model):
    idx = RNG.integers(0, V, (3, 9))
    logits, loss = model(idx, np.roll(idx, -1, axis=1))
    assert logits.shape == (3, 9, V) and abs(loss.item() - np.log(V)) < 0.1
    longer = RNG.integers(0, V, (1, 3 * model.config.n_positions))
    assert model(longer).logits.shape[1] == longer.shape[1]       # no fixed context


def test_state_carries_across_calls(model):
    idx = RNG.integers(0, V, (2, 10))
    whole = model(idx).logits.data
    first, state = model.forward_with_state(idx[:, :6])
    rest = model(idx[:, 6:], hx=state).logits.data
    np.testing.assert_allclose(np.concatenate([first.data, rest], axis=1), whole, rtol=1e-5,
                               atol=1e-6)


def test_generate_carries_the_state(model):
    prompt = RNG.integers(0, V, (2, 5))
    out = model.generate(prompt, 8, do_sample=False)
    ids = prompt
    for _ in range(8):                           # re-read everything at every step
        nxt = model(ids).logits.data[:, -1].argmax(-1)
        ids = np.concatenate([ids, nxt[:, None]], axis=1)
    assert out.shape == (2, 13) and np.array_equal(out, ids)
    one = model.generate(prompt[0], 4, seed=3)
    assert one.shape == (9,) and np.array_equal(one, model.generate(prompt[0], 4, seed=3))
    assert np.array_equal(model.generate(prompt, 6, top_k=1, seed=0), out[:, :11])
    eos = int(out[0, 5])
    stopped = model.generate(prompt[:1], 8, do_sample=False, eos_token_id=eos)
    assert stopped.shape == (1, 6) and stopped[0, -1] == eos
    with pytest.raises(ValueError, match="top_p"):
        model.generate(prompt, 2, top_p=0.0)


def test_flops_per_token_counts_the_matmuls():
    cfg = LSTMConfig(vocab_size=V, n_embd=8, hidden_size=12, num_layers=2,
                     tie_word_embeddings=False)
    m = LSTMLM(cfg, seed=0)
    per_layer = [2 * (8 + 12) * 4 * 12, 2 * (12 + 12) * 4 * 12]
    assert m.flops_breakdown() == {"lstm.l0": per_layer[0], "lstm.l1": per_layer[1],
                                   "lm_head": 2 * 12 * V}
    assert m.flops_per_token(training=False) == sum(per_layer) + 2 * 12 * V
    assert m.flops_per_token() == 3 * m.flops_per_token(training=False)
    assert m.flops_per_token(seq_len=8) == m.flops_per_token(seq_len=64)


def test_save_and_load(tmp_path, model):
    path = model.save(tmp_path / "lstm")
    config = json.loads((path / "config.json").read_text())
    assert config["model_type"] == "lstm" and config["hidden_size"] == 16
    again = LSTMLM.load(path)
    idx = RNG.integers(0, V, (2, 7))
    np.testing.assert_array_equal(again(idx).logits.data, model(idx).logits.data)
    assert again.lm_head.weight is again.embedding.weight
    assert LSTMConfig.from_dict(model.config.to_dict()) == model.config
    GPT(GPTConfig(vocab_size=V, n_embd=8, n_layer=1, n_head=2), seed=0).save(tmp_path / "gpt")
    with pytest.raises(CheckpointError, match="model_type 'lstm'"):
        LSTMLM.load(tmp_path / "gpt")


def test_config_errors():
    with pytest.raises(ValueError, match="n_embd == hidden_size, got n_embd=8 and hidden_size"):
        LSTMConfig(n_embd=8, hidden_size=16)
    with pytest.raises(ValueError, match="unknown preset 'huge'; accepted: nano, micro"):
        LSTMConfig.from_preset("huge")
    with pytest.raises(ValueError, match="dropout must be a probability"):
        LSTMConfig(dropout=1.5)
    with pytest.raises(ValueError, match="outside the vocabulary"):
        LSTMLM(LSTMConfig(vocab_size=5, hidden_size=4, num_layers=1))(np.array([[1, 5]]))


# ----------------------------------------------------------------- training
def test_trainer_trains_an_lstm(tmp_path, monkeypatch):
    from tinyllm.cli import _check_preset
    from tinyllm.data import corpora
    from tinyllm.training import TrainConfig, Trainer
    from tinyllm.training.inference import evaluate_run, generate_text

    original = corpora.load_corpus
    monkeypatch.setattr("tinyllm.training.trainer.load_corpus",
                        lambda name, **o: original(name, **{"length": 20_000, **o}))
    monkeypatch.setattr("tinyllm.training.inference.load_corpus",
                        lambda name, **o: original(name, **{"length": 20_000, **o}))
    _check_preset("lstm", "small")
    with pytest.raises(ValueError, match="unknown preset"):
        _check_preset("lstm", "huge")
    trainer = Trainer(TrainConfig(model="lstm", preset="nano", data="markov", steps=30,
                                  warmup_steps=2, eval_interval=30, lr=1e-2, eval_iters=4,
                                  sample_tokens=10, out=str(tmp_path)), quiet=True)
    assert isinstance(trainer.model, LSTMLM) and trainer.block_size == 32
    result = trainer.train()
    lines = [json.loads(line) for line in (result.run_dir / "metrics.jsonl").open()]
    first = next(r["loss"] for r in lines if r["kind"] == "train")
    assert result.status == "finished" and result.best_val_loss < first - 0.2
    assert len(generate_text(result.run_dir, "", max_new_tokens=5, seed=0)) > 0
    assert evaluate_run(result.run_dir, max_batches=2)["loss"] < first
