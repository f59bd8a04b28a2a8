"""BERT: names, embeddings and masks, the MLM and classification heads, sizes and FLOPs
(against the products actually run), checkpoints including older key spellings."""

import json

import numpy as np
import pytest
from matmul_counter import MatmulCounter

import tinyllm
from tinyllm.autograd.gradcheck import max_relative_error
from tinyllm.models import (
    BERT,
    GPT,
    PRESETS,
    BertConfig,
    BertForMaskedLM,
    BertForPreTraining,
    BertForQuestionAnswering,
    BertForSequenceClassification,
    CheckpointError,
    GPTConfig,
    PreTrainingOutput,
    QAOutput,
    get_family,
)
from tinyllm.models.checkpoint import read_safetensors

V = 29
RNG = np.random.default_rng(5)


def tiny_config(**kw):
    return BertConfig(**{**dict(vocab_size=V, hidden_size=16, num_hidden_layers=2,
                                num_attention_heads=4, intermediate_size=24,
                                max_position_embeddings=10, type_vocab_size=3), **kw})


@pytest.fixture(scope="module")
def mlm():
    return BertForMaskedLM(tiny_config(), seed=0).eval()


def ids(b, t, low=1):
    return RNG.integers(low, V, (b, t))


def test_names_and_ties_are_hugging_faces(mlm):
    names = [n for n, _ in mlm.named_parameters()]
    assert names[:5] == ["bert.embeddings.word_embeddings.weight",
                         "bert.embeddings.position_embeddings.weight",
                         "bert.embeddings.token_type_embeddings.weight",
                         "bert.embeddings.LayerNorm.weight", "bert.embeddings.LayerNorm.bias"]
    assert "bert.encoder.layer.1.attention.self.query.weight" in names
    assert "bert.encoder.layer.0.attention.output.LayerNorm.bias" in names
    assert names[-5:] == ["cls.predictions.transform.dense.weight",
                          "cls.predictions.transform.dense.bias",
                          "cls.predictions.transform.LayerNorm.weight",
                          "cls.predictions.transform.LayerNorm.bias", "cls.predictions.bias"]
    state = mlm.state_dict()
    assert state["cls.predictions.decoder.weight"] is state[
        "bert.embeddings.word_embeddings.weight"]
    assert state["cls.predictions.decoder.bias"] is state["cls.predictions.bias"]
    assert BERT is BertForMaskedLM
    cls_names = [n for n, _ in BertForSequenceClassification(tiny_config()).named_parameters()]
    assert cls_names[-4:] == ["bert.pooler.dense.weight", "bert.pooler.dense.bias",
                              "classifier.weight", "classifier.bias"]


def test_initialisation(mlm):
    word = mlm.bert.embeddings.word_embeddings.weight.data
    assert not word[0].any()                                   # pad_token_id = 0
    assert abs(word[1:].std() - 0.02) < 4e-3
    assert not mlm.cls.predictions.bias.data.any()


@pytest.mark.parametrize("name", PRESETS["bert"])
def test_presets(name):
    cfg = BertConfig.from_preset(name)
    assert cfg.intermediate_size == 4 * cfg.hidden_size


def test_forward_loss_and_every_gradient():
    m = BertForMaskedLM(tiny_config(), seed=1)
    x = ids(2, 8)
    labels = np.full((2, 8), -100)
    labels[:, [1, 4]] = ids(2, 2)
    logits, loss = m(x, labels=labels)
    assert logits.shape == (2, 8, V) and abs(loss.item() - np.log(V)) < 0.3
    loss.backward()
    for name, p in m.named_parameters():
        assert p.grad is not None and p.grad.shape == p.shape, name


def test_bidirectional(mlm):
    x = ids(1, 8)
    y = x.copy()
    y[0, 7] = (y[0, 7] % (V - 1)) + 1
    a, b = mlm(x).logits.data, mlm(y).logits.data
    assert not np.allclose(a[:, 0], b[:, 0])                   # position 0 sees position 7


def test_padding_is_invisible(mlm):
    x = ids(1, 8)
    mask = np.array([[1, 1, 1, 1, 1, 0, 0, 0]])
    padded = mlm(x, attention_mask=mask).logits.data[:, :5]
    other_pad = x.copy()
    other_pad[0, 5:] = 0
    again = mlm(other_pad, attention_mask=mask).logits.data[:, :5]
    alone = mlm(x[:, :5]).logits.data
    assert max_relative_error(padded, alone) < 1e-5
    assert max_relative_error(again, alone) < 1e-5


def test_token_types_change_the_output(mlm):
    x = ids(1, 6)
    segments = np.array([[0, 0, 0, 1, 1, 2]])
    assert not np.allclose(mlm(x).logits.data, mlm(x, segments).logits.data)
    assert np.allclose(mlm(x).logits.data, mlm(x, np.zeros_like(x)).logits.data)


@pytest.mark.parametrize("call, exc, message", [
    (lambda m: m(np.zeros((1, 11), dtype=np.int64)), ValueError,
     "11 positions, more than the context of 10"),
    (lambda m: m(np.full((1, 3), V)), ValueError, f"holds id {V}, outside the vocabulary"),
    (lambda m: m(ids(1, 3), np.full((1, 3), 3)), ValueError,
     "token_type_ids holds id 3, outside the token types of size 3"),
    (lambda m: m(ids(1, 3), np.zeros((1, 4), dtype=np.int64)), ValueError,
     r"token_type_ids have shape \(1, 4\), expected"),
    (lambda m: m(ids(2, 3), attention_mask=np.ones((2, 4))), ValueError,
     r"attention_mask has shape \(2, 4\), expected \(B, T\) = \(2, 3\)"),
    (lambda m: m(ids(1, 3), attention_mask=np.array([[1, 2, 0]])), ValueError,
     "only 1 \\(token\\) and 0"),
    (lambda m: m(ids(2, 3), labels=np.zeros((2, 2), dtype=np.int64)), ValueError,
     r"labels have shape \(2, 2\)"),
])
def test_bad_inputs(mlm, call, exc, message):
    with pytest.raises(exc, match=message):
        call(mlm)


def test_bad_config():
    with pytest.raises(ValueError, match="hidden_size=20 is not divisible by "
                       "num_attention_heads=3"):
        tiny_config(hidden_size=20, num_attention_heads=3)
    with pytest.raises(ValueError, match="pad_token_id=40 is outside the vocabulary"):
        tiny_config(pad_token_id=40)


def test_sequence_classification_and_regression():
    clf = BertForSequenceClassification(tiny_config(num_labels=3), seed=0)
    x = ids(4, 6)
    logits, loss = clf(x, labels=np.array([0, 2, 1, 1]))
    assert logits.shape == (4, 3) and loss.item() > 0
    loss.backward()
    assert clf.classifier.weight.grad is not None and clf.bert.pooler.dense.weight.grad.any()
    reg = BertForSequenceClassification(tiny_config(num_labels=1), seed=0)
    target = np.array([0.5, -1.0, 2.0, 0.0])
    logits, loss = reg(x, labels=target)
    expected = np.mean((logits.data[:, 0] - target) ** 2)
    assert loss.item() == pytest.approx(expected, rel=1e-5)
    with pytest.raises(ValueError, match=r"labels have shape \(3,\), expected \(B,\) = \(4,\)"):
        clf(x, labels=np.zeros(3, dtype=np.int64))


def test_num_params_by_hand(mlm):
    c, i, t, L, types = 16, 24, 10, 2, 3
    emb = V * c + t * c + types * c
    layer = 4 * (c * c + c) + (c * i + i) + (i * c + c) + 4 * c
    head = c * c + c + 2 * c + V
    assert mlm.num_params() == emb + 2 * c + L * layer + head
    assert mlm.num_params(non_embedding=True) == 2 * c + L * layer + head


@pytest.mark.parametrize("cls", [BertForMaskedLM, BertForSequenceClassification])
def test_flops_per_token_equals_the_products_run(monkeypatch, cls):
    m = cls(tiny_config(num_labels=3), seed=0)
    counter = MatmulCounter(monkeypatch)
    batch, seq_len = 2, 8
    x = ids(batch, seq_len)
    labels = x if cls is BertForMaskedLM else np.array([0, 2])
    loss = m(x, labels=labels).loss
    tokens = batch * seq_len
    assert counter.forward == pytest.approx(
        m.flops_per_token(training=False, seq_len=seq_len) * tokens, rel=1e-12)
    loss.backward()
    assert counter.forward + counter.backward == pytest.approx(
        m.flops_per_token(seq_len=seq_len) * tokens, rel=1e-12)


def test_save_load_round_trip(tmp_path, mlm):
    mlm.save(tmp_path)
    keys = set(read_safetensors(tmp_path / "model.safetensors"))
    assert "cls.predictions.decoder.weight" not in keys and "cls.predictions.bias" in keys
    loaded = BertForMaskedLM.load(tmp_path)
    x = ids(2, 5)
    assert np.array_equal(loaded(x).logits.data, mlm(x).logits.data)
    assert loaded.cls.predictions.decoder.bias is loaded.cls.predictions.bias


def test_fine_tuning_start_from_a_masked_lm_directory(tmp_path, mlm):
    mlm.save(tmp_path)
    with pytest.warns(UserWarning, match="classifier.weight.*newly initialised"):
        clf = BertForSequenceClassification.from_pretrained(tmp_path, num_labels=4)
    assert clf.classifier.weight.shape == (4, 16)
    assert np.array_equal(clf.bert.embeddings.word_embeddings.weight.data,
                          mlm.bert.embeddings.word_embeddings.weight.data)


def test_legacy_gamma_beta_and_extra_heads(tmp_path, mlm):
    """Original BERT checkpoints spell LayerNorm weights gamma/beta and carry the NSP head."""
    from safetensors.numpy import save_file

    state = {n.replace("LayerNorm.weight", "LayerNorm.gamma").replace("LayerNorm.bias",
                                                                        "LayerNorm.beta"): p.data
             for n, p in mlm.named_parameters()}
    state["cls.seq_relationship.weight"] = np.zeros((2, 16), dtype=np.float32)
    state["bert.embeddings.position_ids"] = np.arange(10)[None]
    save_file(state, str(tmp_path / "model.safetensors"))
    (tmp_path / "config.json").write_text(json.dumps(mlm.config.to_dict()))
    loaded = BertForMaskedLM.from_pretrained(tmp_path)
    x = ids(1, 4)
    assert np.array_equal(loaded(x).logits.data, mlm(x).logits.data)


def test_gpt_directory_is_refused(tmp_path):
    GPT(GPTConfig(vocab_size=10, n_positions=4, n_embd=8, n_layer=1, n_head=2)).save(tmp_path)
    with pytest.raises(CheckpointError, match="type 'gpt2' \\(GPT2LMHeadModel\\); expected "
                       "model_type 'bert'"):
        BertForMaskedLM.from_pretrained(tmp_path)


def test_float64_conversion(mlm):
    m64 = BertForMaskedLM(tiny_config(), seed=0).double().eval()
    x = ids(1, 5)
    with tinyllm.no_grad():
        assert max_relative_error(m64(x).logits.data, mlm(x).logits.data) < 1e-5


# ----------------------------------------------------------------- question answering, pre-training
def log_softmax(a):
    a = a - a.max(axis=-1, keepdims=True)
    return a - np.log(np.exp(a).sum(axis=-1, keepdims=True))


@pytest.fixture(scope="module")
def qa():
    return BertForQuestionAnswering(tiny_config(), seed=0).eval()


@pytest.fixture(scope="module")
def pretraining():
    return BertForPreTraining(tiny_config(), seed=0).eval()


def test_heads_are_registered():
    heads = get_family("bert").heads
    assert heads == {"sequence-classification": BertForSequenceClassification,
                     "question-answering": BertForQuestionAnswering,
                     "pretraining": BertForPreTraining}


def test_question_answering_names_shapes_and_span_loss(qa):
    names = [n for n, _ in qa.named_parameters()]
    assert names[-2:] == ["qa_outputs.weight", "qa_outputs.bias"]
    assert qa.qa_outputs.weight.shape == (2, 16) and qa.bert.pooler is None
    assert not any(n.startswith(("bert.pooler.", "cls.")) for n in names)
    x = ids(3, 7)
    out = qa(x, attention_mask=np.array([[1] * 7, [1] * 5 + [0] * 2, [1] * 7]))
    assert isinstance(out, QAOutput) and out.loss is None
    assert out.start_logits.shape == (3, 7) and out.end_logits.shape == (3, 7)
    # 9 and 7 (= T) are past the sequence: ignored; -2 is clamped to position 0
    start, end = np.array([2, 9, -2]), np.array([[4], [6], [7]])    # (B,) or (B, 1)
    start_logits, end_logits, loss = qa(x, start_positions=start, end_positions=end)
    ls, le = log_softmax(start_logits.data), log_softmax(end_logits.data)
    start_loss = -(ls[0, 2] + ls[2, 0]) / 2
    end_loss = -(le[0, 4] + le[1, 6]) / 2
    assert loss.item() == pytest.approx((start_loss + end_loss) / 2, rel=1e-5)
    m = BertForQuestionAnswering(tiny_config(), seed=1)
    m(x, start_positions=start, end_positions=end).loss.backward()
    for name, p in m.named_parameters():
        assert p.grad is not None and p.grad.shape == p.shape, name


@pytest.mark.parametrize("kwargs, exc, message", [
    (dict(start_positions=np.array([1, 2])), ValueError,
     "needs both start_positions and end_positions; got only start_positions"),
    (dict(end_positions=np.array([1, 2])), ValueError, "got only end_positions"),
    (dict(start_positions=np.array([1, 2, 3]), end_positions=np.array([1, 2])), ValueError,
     r"start_positions have shape \(3,\), expected \(B,\) = \(2,\)"),
    (dict(start_positions=np.zeros((2, 2), dtype=np.int64), end_positions=np.array([1, 2])),
     ValueError, r"start_positions have shape \(2, 2\)"),
    (dict(start_positions=np.array([1, 2]), end_positions=np.array([1.0, 2.0])), TypeError,
     "end_positions must be integers, got dtype float64"),
])
def test_question_answering_bad_positions(qa, kwargs, exc, message):
    with pytest.raises(exc, match=message):
        qa(ids(2, 5), **kwargs)


def test_question_answering_needs_two_labels():
    with pytest.raises(ValueError, match="num_labels=3, but the span head scores a start and "
                       "an end .*accepted: num_labels=2"):
        BertForQuestionAnswering(tiny_config(num_labels=3))


def test_pretraining_names_ties_shapes_and_loss(pretraining):
    names = [n for n, _ in pretraining.named_parameters()]
    assert "bert.pooler.dense.weight" in names
    assert names[-2:] == ["cls.seq_relationship.weight", "cls.seq_relationship.bias"]
    state = pretraining.state_dict()
    assert state["cls.predictions.decoder.weight"] is state[
        "bert.embeddings.word_embeddings.weight"]
    assert state["cls.predictions.decoder.bias"] is state["cls.predictions.bias"]
    x = ids(3, 6)
    out = pretraining(x)
    assert isinstance(out, PreTrainingOutput) and out.loss is None
    assert out.prediction_logits.shape == (3, 6, V)
    assert out.seq_relationship_logits.shape == (3, 2)
    labels = np.full((3, 6), -100)
    labels[:, 2] = ids(3, 1)[:, 0]
    nsp = np.array([0, 1, 1])
    mlm_logits, nsp_logits, loss = pretraining(x, labels=labels, next_sentence_label=nsp)
    lp, ln = log_softmax(mlm_logits.data), log_softmax(nsp_logits.data)
    expected = -lp[np.arange(3), 2, labels[:, 2]].mean() - ln[np.arange(3), nsp].mean()
    assert loss.item() == pytest.approx(expected, rel=1e-5)
    m = BertForPreTraining(tiny_config(), seed=1)
    m(x, labels=labels, next_sentence_label=nsp).loss.backward()
    for name, p in m.named_parameters():
        assert p.grad is not None and p.grad.shape == p.shape, name


@pytest.mark.parametrize("kwargs, exc, message", [
    (dict(labels=np.zeros((2, 4), dtype=np.int64)), ValueError,
     "needs both labels .* and next_sentence_label; got only labels"),
    (dict(next_sentence_label=np.array([0, 1])), ValueError, "got only next_sentence_label"),
    (dict(labels=np.zeros((2, 4), dtype=np.int64), next_sentence_label=np.array([0, 1, 1])),
     ValueError, r"next_sentence_label have shape \(3,\), expected \(B,\) = \(2,\)"),
    (dict(labels=np.zeros((2, 4), dtype=np.int64), next_sentence_label=np.array([0, 2])),
     ValueError, "target 2 is out of range for 2 classes"),
    (dict(labels=np.zeros((2, 3), dtype=np.int64), next_sentence_label=np.array([0, 1])),
     ValueError, r"labels have shape \(2, 3\)"),
])
def test_pretraining_bad_labels(pretraining, kwargs, exc, message):
    with pytest.raises(exc, match=message):
        pretraining(ids(2, 4), **kwargs)


@pytest.mark.parametrize("cls", [BertForQuestionAnswering, BertForPreTraining])
def test_head_flops_per_token_equal_the_products_run(monkeypatch, cls):
    m = cls(tiny_config(), seed=0)
    counter = MatmulCounter(monkeypatch)
    batch, seq_len = 2, 8
    x = ids(batch, seq_len)
    if cls is BertForQuestionAnswering:
        loss = m(x, start_positions=np.array([1, 3]), end_positions=np.array([2, 5])).loss
    else:
        loss = m(x, labels=x, next_sentence_label=np.array([0, 1])).loss
    tokens = batch * seq_len
    assert counter.forward == pytest.approx(
        m.flops_per_token(training=False, seq_len=seq_len) * tokens, rel=1e-12)
    loss.backward()
    assert counter.forward + counter.backward == pytest.approx(
        m.flops_per_token(seq_len=seq_len) * tokens, rel=1e-12)


def test_heads_start_from_a_masked_lm_directory(tmp_path, mlm):
    mlm.save(tmp_path / "mlm")
    word = mlm.bert.embeddings.word_embeddings.weight.data
    with pytest.warns(UserWarning, match=r"^[^,]*qa_outputs.weight, qa_outputs.bias not in"):
        qa = BertForQuestionAnswering.from_pretrained(tmp_path / "mlm")
    assert np.array_equal(qa.bert.embeddings.word_embeddings.weight.data, word)
    with pytest.warns(UserWarning, match="bert.pooler.dense.weight, bert.pooler.dense.bias, "
                      "cls.seq_relationship.weight, cls.seq_relationship.bias not in"):
        pre = BertForPreTraining.from_pretrained(tmp_path / "mlm")
    x = ids(2, 5)
    assert np.array_equal(pre(x).prediction_logits.data, mlm(x).logits.data)


def test_heads_from_a_pretraining_directory(tmp_path, pretraining):
    """Each head keeps what it shares with the pre-trained model and drops the rest."""
    pretraining.save(tmp_path)
    config = json.loads((tmp_path / "config.json").read_text())
    assert config["architectures"] == ["BertForPreTraining"]
    x = ids(2, 5)
    again = BertForPreTraining.load(tmp_path)
    assert all(np.array_equal(a.data, b.data) for a, b in zip(again(x)[:2], pretraining(x)[:2]))
    mlm = BertForMaskedLM.from_pretrained(tmp_path)                   # no warning
    assert np.array_equal(mlm(x).logits.data, pretraining(x).prediction_logits.data)
    with pytest.warns(UserWarning, match=r"^[^,]*classifier.weight, classifier.bias not in"):
        clf = BertForSequenceClassification.from_pretrained(tmp_path, num_labels=3)
    assert np.array_equal(clf.bert.pooler.dense.weight.data,
                          pretraining.bert.pooler.dense.weight.data)
    with pytest.warns(UserWarning, match=r"^[^,]*qa_outputs.weight, qa_outputs.bias not in"):
        BertForQuestionAnswering.from_pretrained(tmp_path)


def test_classifier_and_span_heads_read_each_others_directories(tmp_path, qa):
    qa.save(tmp_path / "qa")
    with pytest.warns(UserWarning, match="bert.pooler.dense.weight.*classifier.bias not in"):
        BertForSequenceClassification.from_pretrained(tmp_path / "qa")
    again = BertForQuestionAnswering.load(tmp_path / "qa")
    x = ids(2, 5)
    assert np.array_equal(again(x).start_logits.data, qa(x).start_logits.data)
    BertForSequenceClassification(tiny_config(num_labels=3), seed=0).save(tmp_path / "clf")
    with pytest.raises(ValueError, match="num_labels=3, but the span head"):
        BertForQuestionAnswering.from_pretrained(tmp_path / "clf")
    with pytest.warns(UserWarning, match="qa_outputs.weight"):
        BertForQuestionAnswering.from_pretrained(tmp_path / "clf", num_labels=2)
