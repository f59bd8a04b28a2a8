"""The task heads against Hugging Face transformers, weight for weight: BERT's question
answering, pre-training and sequence classification heads, and GPT-2's sequence classifier.

As in test_models_parity.py: each model is built by `transformers` from a small random config
(sizes unlike the presets and unlike each other; no download), saved with `save_pretrained`
and loaded with tinyllm's `from_pretrained`; both compute the outputs, the loss (here
transformers' own, from the labels, so its conventions are what is checked: clamped and
ignored answer positions, the summed pre-training losses, regression) and the gradient of
that loss with respect to every parameter. Figures are relative errors, max |ours - theirs| /
max |theirs| per tensor:

- float64: <= 1e-6 required (observed <= 5e-15: only summation order differs);
- float32: <= 1e-4 required (observed <= 3e-7 on outputs, <= 4e-6 on gradients).

The batches hold padding: an attention mask for BERT; for GPT-2's classifier, rows of
different lengths padded with `pad_token_id` (on the right, and on the left with a mask),
plus a pad id inside a row (the rule is "the rightmost token that is not padding").

Some biases get no gradient in exact arithmetic, so both libraries' values are rounding
noise, checked to be tiny instead: BERT's key bias (`attention.self.key.bias`: the same q.b_k
added to every score of a query), and for the span head `qa_outputs.bias` and the last
layer's output LayerNorm bias (each adds the same number to every position's start score, and
to every end score, which leaves their softmax over positions unchanged).
The other direction is checked too: what tinyllm's `save` writes, the matching transformers
class reads with no weight missing or left over and computes the same outputs.
"""

import numpy as np
import pytest

from tinyllm.autograd.gradcheck import max_relative_error
from tinyllm.models import (
    BertConfig,
    BertForPreTraining,
    BertForQuestionAnswering,
    BertForSequenceClassification,
    GPT2ForSequenceClassification,
    GPTConfig,
)

torch = pytest.importorskip("torch")
transformers = pytest.importorskip("transformers")

TOLERANCE = {"float64": 1e-6, "float32": 1e-4}
KEY_BIAS = "attention.self.key.bias"
B, T = 4, 14
BERT_V, GPT_V, GPT_PAD = 53, 47, 3


def _bert_config(**kw):
    return transformers.BertConfig(**{
        **dict(vocab_size=BERT_V, hidden_size=24, num_hidden_layers=2, num_attention_heads=3,
               intermediate_size=40, max_position_embeddings=20, type_vocab_size=3,
               layer_norm_eps=1e-7, initializer_range=0.05, pad_token_id=1,
               hidden_dropout_prob=0.0, attention_probs_dropout_prob=0.0,
               attn_implementation="eager"), **kw})


def _gpt_config(**kw):
    return transformers.GPT2Config(**{
        **dict(vocab_size=GPT_V, n_positions=18, n_embd=20, n_layer=3, n_head=5, n_inner=36,
               layer_norm_epsilon=1e-6, initializer_range=0.04, resid_pdrop=0.0,
               embd_pdrop=0.0, attn_pdrop=0.0, bos_token_id=None, eos_token_id=None,
               pad_token_id=GPT_PAD, num_labels=3, attn_implementation="eager"), **kw})


def _bert_inputs(rng):
    ids = rng.integers(2, BERT_V, (B, T))
    segments = np.zeros((B, T), dtype=np.int64)
    segments[:, T // 2:] = 1
    segments[3, T - 3:] = 2
    mask = np.ones((B, T), dtype=np.int64)
    mask[1, 10:] = 0                                       # padded rows
    mask[2, 6:] = 0
    ids[mask == 0] = 1                                     # pad_token_id
    return ids, segments, mask


def _gpt_inputs(rng, left_padding=False):
    """Rows of 14, 9, 5 and 11 tokens padded with GPT_PAD; row 0 has a pad id inside."""
    ids = rng.integers(4, GPT_V, (B, T))
    mask = np.ones((B, T), dtype=np.int64)
    for row, n in enumerate((T, 9, 5, 11)):
        if left_padding:
            ids[row, :T - n], mask[row, :T - n] = GPT_PAD, 0
        else:
            ids[row, n:], mask[row, n:] = GPT_PAD, 0
    ids[0, 2] = GPT_PAD
    return ids, mask


def _as_torch(kwargs):
    return {k: torch.tensor(v) for k, v in kwargs.items()}


def _load_both(hf, cls, tmp_path, dtype, **overrides):
    hf.eval().save_pretrained(tmp_path)
    hf = hf.to(getattr(torch, dtype))
    return hf, cls.from_pretrained(tmp_path, dtype=dtype, **overrides)


def _measure(ours, hf, ours_out, theirs_out, fields, dtype, zero=(KEY_BIAS,)):
    """Backward through both losses; the worst relative errors of the outputs, the loss and
    every parameter's gradient, except those named (by their ends) in `zero`, whose
    gradients are zero in exact arithmetic and are checked to be tiny in both."""
    out_err = max(max_relative_error(getattr(ours_out, f).data,
                                     getattr(theirs_out, f).detach().numpy()) for f in fields)
    loss_diff = abs(ours_out.loss.item() - theirs_out.loss.item())
    ours_out.loss.backward()
    theirs_out.loss.backward()
    grads = {name: p.grad.numpy() for name, p in hf.named_parameters()}
    scale = max(np.abs(g).max() for g in grads.values())
    grad_errs = {}
    for name, p in ours.named_parameters():
        if name.endswith(zero):
            noise = 1e-12 if dtype == "float64" else 1e-5
            assert np.abs(p.grad).max() <= noise * scale, name
            assert np.abs(grads[name]).max() <= noise * scale, name
            continue
        grad_errs[name] = max_relative_error(p.grad, grads[name])
    assert set(grad_errs) | {n for n, _ in ours.named_parameters()} == set(grads)
    worst = max(grad_errs, key=grad_errs.get)
    return {"outputs": out_err, "loss": loss_diff / abs(theirs_out.loss.item()),
            "worst_grad": worst, "grad": grad_errs[worst]}


# ----------------------------------------------------------------- one function per head
def bert_qa(tmp_path, dtype, rng):
    torch.manual_seed(0)
    hf, ours = _load_both(transformers.BertForQuestionAnswering(_bert_config()),
                          BertForQuestionAnswering, tmp_path, dtype)
    ids, segments, mask = _bert_inputs(rng)
    # beyond the sequence (ignored, as T after clamping), negative (clamped to 0), exactly T
    start = np.array([3, T + 7, -3, 5])
    end = np.array([6, 9, T, 12])
    ours_out = ours(ids, segments, mask, start_positions=start, end_positions=end)
    theirs = hf(**_as_torch(dict(input_ids=ids, token_type_ids=segments, attention_mask=mask,
                                 start_positions=start, end_positions=end)))
    last_ln = f"layer.{ours.config.num_hidden_layers - 1}.output.LayerNorm.bias"
    return _measure(ours, hf, ours_out, theirs, ("start_logits", "end_logits"), dtype,
                    zero=(KEY_BIAS, "qa_outputs.bias", last_ln))


def bert_pretraining(tmp_path, dtype, rng):
    torch.manual_seed(1)
    hf, ours = _load_both(transformers.BertForPreTraining(_bert_config(hidden_act="gelu_new")),
                          BertForPreTraining, tmp_path, dtype)
    ids, segments, mask = _bert_inputs(rng)
    labels = np.where(rng.random((B, T)) < 0.3, rng.integers(0, BERT_V, (B, T)), -100)
    labels[:, 1] = rng.integers(0, BERT_V, B)             # at least one label per row
    nsp = np.array([0, 1, 1, 0])
    ours_out = ours(ids, segments, mask, labels=labels, next_sentence_label=nsp)
    theirs = hf(**_as_torch(dict(input_ids=ids, token_type_ids=segments, attention_mask=mask,
                                 labels=labels, next_sentence_label=nsp)))
    return _measure(ours, hf, ours_out, theirs,
                    ("prediction_logits", "seq_relationship_logits"), dtype)


def bert_classifier(tmp_path, dtype, rng, num_labels=4):
    torch.manual_seed(2)
    hf, ours = _load_both(
        transformers.BertForSequenceClassification(_bert_config(num_labels=num_labels)),
        BertForSequenceClassification, tmp_path, dtype)
    ids, segments, mask = _bert_inputs(rng)
    if num_labels == 1:                                    # regression
        labels = rng.normal(size=B).astype(dtype)
    else:
        labels = np.array([0, 3, 1, 2])
    ours_out = ours(ids, segments, mask, labels=labels)
    theirs = hf(**_as_torch(dict(input_ids=ids, token_type_ids=segments, attention_mask=mask,
                                 labels=labels)))
    return _measure(ours, hf, ours_out, theirs, ("logits",), dtype)


def gpt2_classifier(tmp_path, dtype, rng, num_labels=3, left_padding=False):
    torch.manual_seed(3)
    hf, ours = _load_both(
        transformers.GPT2ForSequenceClassification(_gpt_config(num_labels=num_labels)),
        GPT2ForSequenceClassification, tmp_path, dtype)
    assert ours.config.pad_token_id == GPT_PAD and ours.config.num_labels == num_labels
    ids, mask = _gpt_inputs(rng, left_padding)
    labels = rng.normal(size=B).astype(dtype) if num_labels == 1 else np.array([2, 0, 1, 2])
    inputs = dict(input_ids=ids, labels=labels)
    if left_padding:
        inputs["attention_mask"] = mask
    ours_out = ours(**inputs)
    theirs = hf(**_as_torch(inputs))
    return _measure(ours, hf, ours_out, theirs, ("logits",), dtype)


def gpt2_classifier_one_row_no_pad(tmp_path, dtype, rng):
    """Without a pad_token_id the last position is classified (a batch of one only)."""
    torch.manual_seed(4)
    hf, ours = _load_both(
        transformers.GPT2ForSequenceClassification(_gpt_config(pad_token_id=None)),
        GPT2ForSequenceClassification, tmp_path, dtype)
    assert ours.config.pad_token_id is None
    inputs = dict(input_ids=rng.integers(0, GPT_V, (1, T)), labels=np.array([1]))
    ours_out = ours(**inputs)
    theirs = hf(**_as_torch(inputs))
    return _measure(ours, hf, ours_out, theirs, ("logits",), dtype)


CASES = {
    "bert_qa": bert_qa,
    "bert_pretraining": bert_pretraining,
    "bert_classifier": bert_classifier,
    "bert_regression": lambda p, d, r: bert_classifier(p, d, r, num_labels=1),
    "gpt2_classifier": gpt2_classifier,
    "gpt2_classifier_left_padding": lambda p, d, r: gpt2_classifier(p, d, r, left_padding=True),
    "gpt2_regression": lambda p, d, r: gpt2_classifier(p, d, r, num_labels=1),
    "gpt2_classifier_one_row": gpt2_classifier_one_row_no_pad,
}


@pytest.mark.parametrize("dtype", ["float64", "float32"])
@pytest.mark.parametrize("case", CASES)
def test_outputs_loss_and_every_gradient_match(tmp_path, case, dtype):
    errs = CASES[case](tmp_path, dtype, np.random.default_rng(7))
    assert errs["outputs"] <= TOLERANCE[dtype], errs
    assert errs["loss"] <= TOLERANCE[dtype], errs
    assert errs["grad"] <= TOLERANCE[dtype], errs


# ----------------------------------------------------------------- tinyllm -> transformers
def _perturbed(model, seed):
    """The model with every parameter moved off its initial value (biases are 0 at first,
    LayerNorm weights 1), so a weight saved under a wrong name cannot go unnoticed."""
    rng = np.random.default_rng(seed)
    for p in model.parameters():
        p.data += rng.normal(0.0, 0.05, p.shape).astype(p.dtype)
    return model.eval()


TINY_BERT = dict(vocab_size=BERT_V, hidden_size=24, num_hidden_layers=2, num_attention_heads=3,
                 intermediate_size=40, max_position_embeddings=20, type_vocab_size=3,
                 pad_token_id=1)


@pytest.mark.parametrize("cls, fields", [
    (BertForQuestionAnswering, ("start_logits", "end_logits")),
    (BertForPreTraining, ("prediction_logits", "seq_relationship_logits")),
    (BertForSequenceClassification, ("logits",)),
    (GPT2ForSequenceClassification, ("logits",)),
])
def test_transformers_reads_what_tinyllm_writes(tmp_path, cls, fields):
    rng = np.random.default_rng(8)
    if cls is GPT2ForSequenceClassification:
        config = GPTConfig(vocab_size=GPT_V, n_positions=18, n_embd=20, n_layer=3, n_head=5,
                           n_inner=36, num_labels=5, pad_token_id=GPT_PAD)
        ids, _ = _gpt_inputs(rng)
        inputs = dict(input_ids=ids)
    else:
        config = BertConfig(**TINY_BERT, num_labels=5 if "Classification" in cls.__name__
                            else 2)
        ids, segments, mask = _bert_inputs(rng)
        inputs = dict(input_ids=ids, token_type_ids=segments, attention_mask=mask)
    ours = _perturbed(cls(config, seed=0), seed=1)
    ours.save(tmp_path)
    hf_cls = getattr(transformers, cls.hf_architecture)
    back, info = hf_cls.from_pretrained(tmp_path, attn_implementation="eager",
                                        output_loading_info=True)
    assert not info["missing_keys"] and not info["unexpected_keys"], info
    with torch.no_grad():
        theirs = back.eval()(**_as_torch(inputs))
    ours_out = ours(**inputs)
    for field in fields:
        err = max_relative_error(getattr(ours_out, field).data,
                                 getattr(theirs, field).numpy())
        assert err <= 1e-5, (field, err)
