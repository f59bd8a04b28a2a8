"""GPT and BERT against Hugging Face transformers, weight for weight.

Each model is built by `transformers` from a small random config (no download), saved with
`save_pretrained`, loaded with tinyllm's `from_pretrained`, and both compute the logits and
the gradient of the same loss with respect to every parameter. Figures are relative errors,
max |ours - theirs| / max |theirs| per tensor:

- float64: <= 1e-6 required (observed ~1e-15: only summation order differs);
- float32: <= 1e-4 required (observed ~1e-7 on logits, <= 3e-5 on gradients).

The key projection's bias (BERT's `attention.self.key.bias`) gets no gradient in exact
arithmetic (adding the same q.b_k to every score of a query leaves its softmax unchanged), so
both libraries' values are rounding noise; it is checked to be tiny instead.

Dropout is off (probabilities 0) and Hugging Face runs its eager attention. The loss on the
Hugging Face side is computed here, in the model's dtype (its built-in LM loss upcasts the
logits to float32, which would cap the float64 comparison at ~1e-8).
"""

import numpy as np
import pytest

from tinyllm.autograd.gradcheck import max_relative_error
from tinyllm.models import GPT, BertForMaskedLM, BertForSequenceClassification

torch = pytest.importorskip("torch")
transformers = pytest.importorskip("transformers")

TOLERANCE = {"float64": 1e-6, "float32": 1e-4}
RNG = np.random.default_rng(2024)
V, T, B = 61, 12, 3


def _hf_gpt():
    cfg = transformers.GPT2Config(
        vocab_size=V, n_positions=16, n_embd=32, n_layer=2, n_head=4, resid_pdrop=0.0,
        embd_pdrop=0.0, attn_pdrop=0.0, bos_token_id=None, eos_token_id=None,
        attn_implementation="eager")
    return transformers.GPT2LMHeadModel(cfg)


def _bert_config(**kw):
    return transformers.BertConfig(
        vocab_size=V, hidden_size=32, num_hidden_layers=2, num_attention_heads=4,
        intermediate_size=48, max_position_embeddings=16, type_vocab_size=2,
        hidden_dropout_prob=0.0, attention_probs_dropout_prob=0.0,
        attn_implementation="eager", **kw)


def _inputs():
    x = RNG.integers(1, V, (B, T))
    segments = (np.arange(T) >= T // 2).astype(np.int64)[None].repeat(B, 0)
    mask = np.ones((B, T), dtype=np.int64)
    mask[1, 9:] = 0                                        # two padded sequences
    mask[2, 5:] = 0
    labels = np.where(RNG.random((B, T)) < 0.3, RNG.integers(0, V, (B, T)), -100)
    labels[:, 0] = RNG.integers(0, V, B)                  # at least one label per row
    return x, segments, mask, labels


def _compare(ours, theirs, ours_out, theirs_out, dtype):
    """Relative errors of the logits and of every parameter's gradient."""
    logit_err = max_relative_error(ours_out.data, theirs_out.detach().numpy())
    grads = {name: p.grad.numpy() for name, p in theirs.named_parameters()}
    scale = max(np.abs(g).max() for g in grads.values())
    grad_errs = {}
    for name, p in ours.named_parameters():
        if name.endswith("attention.self.key.bias"):
            noise = 1e-12 if dtype == "float64" else 1e-5
            assert np.abs(p.grad).max() <= noise * scale, name
            assert np.abs(grads[name]).max() <= noise * scale, name
            continue
        grad_errs[name] = max_relative_error(p.grad, grads[name])
    return logit_err, grad_errs


def gpt_parity(tmp_path, dtype):
    torch.manual_seed(0)
    hf = _hf_gpt().eval()
    hf.save_pretrained(tmp_path)
    hf = hf.to(getattr(torch, dtype))
    ours = GPT.from_pretrained(tmp_path, dtype=dtype)
    x, _, _, labels = _inputs()
    logits, loss = ours(x, labels)
    theirs = hf(torch.tensor(x)).logits
    theirs_loss = torch.nn.functional.cross_entropy(theirs.reshape(-1, V),
                                                    torch.tensor(labels).reshape(-1))
    assert abs(loss.item() - theirs_loss.item()) <= TOLERANCE[dtype] * abs(theirs_loss.item())
    loss.backward()
    theirs_loss.backward()
    return _compare(ours, hf, logits, theirs, dtype)


def bert_parity(tmp_path, dtype, head="mlm"):
    torch.manual_seed(0)
    if head == "mlm":
        hf, cls = transformers.BertForMaskedLM(_bert_config()), BertForMaskedLM
    else:
        hf = transformers.BertForSequenceClassification(_bert_config(num_labels=3))
        cls = BertForSequenceClassification
    hf.eval().save_pretrained(tmp_path)
    hf = hf.to(getattr(torch, dtype))
    ours = cls.from_pretrained(tmp_path, dtype=dtype)
    x, segments, mask, labels = _inputs()
    if head != "mlm":
        labels = np.array([0, 2, 1])
    logits, loss = ours(x, segments, mask, labels=labels)
    theirs = hf(torch.tensor(x), token_type_ids=torch.tensor(segments),
                attention_mask=torch.tensor(mask)).logits
    theirs_loss = torch.nn.functional.cross_entropy(theirs.reshape(-1, theirs.shape[-1]),
                                                    torch.tensor(labels).reshape(-1))
    assert abs(loss.item() - theirs_loss.item()) <= TOLERANCE[dtype] * abs(theirs_loss.item())
    loss.backward()
    theirs_loss.backward()
    return _compare(ours, hf, logits, theirs, dtype)


@pytest.mark.parametrize("dtype", ["float64", "float32"])
@pytest.mark.parametrize("model", ["gpt", "bert_mlm", "bert_classifier"])
def test_logits_and_every_gradient_match(tmp_path, model, dtype):
    if model == "gpt":
        logit_err, grad_errs = gpt_parity(tmp_path, dtype)
    else:
        logit_err, grad_errs = bert_parity(tmp_path, dtype, "mlm" if model == "bert_mlm"
                                           else "classifier")
    assert logit_err <= TOLERANCE[dtype]
    worst = max(grad_errs, key=grad_errs.get)
    assert grad_errs[worst] <= TOLERANCE[dtype], (worst, grad_errs[worst])


def test_transformers_reads_what_tinyllm_writes(tmp_path):
    ours = GPT.from_pretrained(_save(_hf_gpt(), tmp_path / "hf"))
    ours.save(tmp_path / "ours")
    back = transformers.GPT2LMHeadModel.from_pretrained(tmp_path / "ours",
                                                        attn_implementation="eager").eval()
    x = RNG.integers(0, V, (2, 7))
    with torch.no_grad():
        theirs = back(torch.tensor(x)).logits.numpy()
    assert max_relative_error(ours(x).logits.data, theirs) <= 1e-5

    bert = BertForMaskedLM.from_pretrained(_save(transformers.BertForMaskedLM(_bert_config()),
                                                 tmp_path / "hf_bert"))
    bert.save(tmp_path / "ours_bert")
    back = transformers.BertForMaskedLM.from_pretrained(tmp_path / "ours_bert",
                                                        attn_implementation="eager").eval()
    with torch.no_grad():
        theirs = back(torch.tensor(x)).logits.numpy()
    assert max_relative_error(bert(x).logits.data, theirs) <= 1e-5


def test_greedy_generation_matches_transformers(tmp_path):
    torch.manual_seed(1)
    hf = _hf_gpt().eval()
    ours = GPT.from_pretrained(_save(hf, tmp_path), dtype="float64")
    hf = hf.double()
    prompt = RNG.integers(0, V, (2, 4))
    theirs = hf.generate(torch.tensor(prompt), max_new_tokens=10, do_sample=False,
                         attention_mask=torch.ones(2, 4, dtype=torch.long),
                         pad_token_id=0).numpy()
    assert np.array_equal(ours.generate(prompt, 10, do_sample=False), theirs)


def _save(model, path):
    model.eval().save_pretrained(path)
    return path


def test_attention_maps_match_transformers(tmp_path):
    """GPT.attentions equals what GPT2LMHeadModel returns with output_attentions=True."""
    hf = _hf_gpt()
    ours = GPT.from_pretrained(_save(hf, tmp_path), dtype="float64")
    x = RNG.integers(1, V, (B, T))
    with torch.no_grad():
        theirs = hf.double()(torch.from_numpy(x), output_attentions=True).attentions
    maps = ours.attentions(x)
    assert len(maps) == len(theirs) == 2
    for mine, hf_map in zip(maps, theirs):
        assert mine.shape == (B, 4, T, T)
        assert max_relative_error(mine, hf_map.numpy()) <= TOLERANCE["float64"]
        np.testing.assert_allclose(mine.sum(-1), 1.0, atol=1e-12)      # rows are distributions
        assert not np.triu(mine, k=1).any()                            # causal: no look-ahead
