"""The encoder-decoder Transformer against Hugging Face's MarianMTModel, weight for weight.

As in test_heads_parity.py: `transformers` builds each model from a small random MarianConfig
(sizes unlike the presets, unlike MarianConfig's defaults and unlike each other: an odd
width, more decoder than encoder layers and the reverse, head counts that differ between
encoder and decoder, ReLU, swish and GELU; no download), `save_pretrained` writes it and
`Seq2SeqTransformer.from_pretrained` reads it; both compute the logits, the cross-attention
weights, transformers' own loss from the labels (-100 ignored; the decoder input shifted from
them, or given) and the gradient of that loss with respect to every parameter. Sources and
targets are padded (masks on both sides).
Figures are relative errors, max |ours - theirs| / max |theirs| per tensor:

====================== ======== ========= ========= =========== ==================
case                   dtype    logits    loss      cross-attn  worst gradient
====================== ======== ========= ========= =========== ==================
relu_scaled            float64  4.0e-16   0         3.5e-16     1.2e-15
swish_unscaled         float64  2.6e-16   0         2.0e-16     2.3e-15
gelu_marian_ids        float64  3.1e-16   0         3.4e-16     1.6e-15
relu_scaled            float32  1.7e-7    0         2.4e-7      9.0e-7
swish_unscaled         float32  1.4e-7    0         2.2e-7      5.3e-7
gelu_marian_ids        float32  1.6e-7    0         1.8e-7      9.1e-7
====================== ======== ========= ========= =========== ==================

(measured once, compiled kernels active; the worst gradients are the decoder's query
projections'. The test requires <= 1e-12 in float64 and, as
test_heads_parity.py, <= 1e-5 on outputs and <= 1e-4 on gradients in float32).

Two things are set up so that only the arithmetic differs:

- Hugging Face computes its sinusoidal table in float64 and rounds it through float32 even in
  a float64 model; tinyllm keeps float64. The float64 comparison gives transformers tinyllm's
  table (checked first to equal its own to float32 precision, the layout included); the
  float32 comparison uses transformers' table as it is.
- `final_logits_bias` is a buffer in transformers (zero, never trained) and a parameter
  here (Marian's trained output bias); it is drawn at random on both sides, and its
  gradient is taken from transformers by letting that buffer require one.

The key projections' biases (`self_attn.k_proj.bias`, `encoder_attn.k_proj.bias`) get no
gradient in exact arithmetic (q.b_k is added to every score of a query, which its softmax
ignores): both libraries' values are rounding noise, checked to be tiny instead.
The other direction is checked too: what tinyllm's `save` writes, MarianMTModel reads with
no weight missing or left over and computes the same logits.
"""

import numpy as np
import pytest

from tinyllm.autograd.gradcheck import max_relative_error
from tinyllm.models import Seq2SeqConfig, Seq2SeqTransformer
from tinyllm.models.seq2seq import sinusoidal_table

torch = pytest.importorskip("torch")
transformers = pytest.importorskip("transformers")

OUTPUT_TOL = {"float64": 1e-12, "float32": 1e-5}
GRAD_TOL = {"float64": 1e-12, "float32": 1e-4}
ZERO_GRAD = ("self_attn.k_proj.bias", "encoder_attn.k_proj.bias")
POSITION_TABLES = {"model.encoder.embed_positions.weight",
                   "model.decoder.embed_positions.weight"}
B, S, T = 4, 11, 8

CASES = {
    # odd width (21), 3 encoder heads and 7 decoder heads, Le = 2 < Ld = 3, ReLU, scaled
    "relu_scaled": dict(
        vocab_size=37, d_model=21, encoder_layers=2, decoder_layers=3,
        encoder_attention_heads=3, decoder_attention_heads=7, encoder_ffn_dim=29,
        decoder_ffn_dim=33, max_position_embeddings=20, activation_function="relu",
        scale_embedding=True, init_std=0.1, pad_token_id=3, eos_token_id=2,
        decoder_start_token_id=3),
    # Marian's own activation, no embedding scale, Le = 3 > Ld = 1, a start id that is
    # not the padding id; the decoder input is given, not shifted from the labels
    "swish_unscaled": dict(
        vocab_size=41, d_model=24, encoder_layers=3, decoder_layers=1,
        encoder_attention_heads=6, decoder_attention_heads=2, encoder_ffn_dim=40,
        decoder_ffn_dim=20, max_position_embeddings=16, activation_function="swish",
        scale_embedding=False, init_std=0.07, pad_token_id=0, eos_token_id=1,
        decoder_start_token_id=5),
    # exact GELU, Marian's own ids (padding the last id, eos 0), equal layer counts
    "gelu_marian_ids": dict(
        vocab_size=29, d_model=18, encoder_layers=2, decoder_layers=2,
        encoder_attention_heads=2, decoder_attention_heads=3, encoder_ffn_dim=26,
        decoder_ffn_dim=30, max_position_embeddings=24, activation_function="gelu",
        scale_embedding=True, init_std=0.12, pad_token_id=28, eos_token_id=0,
        decoder_start_token_id=28),
}


def _hf_model(case: str, seed: int):
    torch.manual_seed(seed)
    config = transformers.MarianConfig(**CASES[case], dropout=0.0, attention_dropout=0.0,
                                       activation_dropout=0.0, attn_implementation="eager")
    hf = transformers.MarianMTModel(config).eval()
    with torch.no_grad():
        hf.final_logits_bias.normal_(0.0, 0.5)
    return hf


def _inputs(case: str, rng):
    """Padded sources (rows of 11, 7, 4 and 9 tokens), targets with padding and -100."""
    cfg = CASES[case]
    v, pad = cfg["vocab_size"], cfg["pad_token_id"]
    src = rng.integers(0, v, (B, S))
    mask = np.ones((B, S), dtype=np.int64)
    for row, n in enumerate((S, 7, 4, 9)):
        src[row, n:], mask[row, n:] = pad, 0
    labels = rng.integers(0, v, (B, T))
    target_mask = np.ones((B, T), dtype=np.int64)
    for row, n in enumerate((T, 5, 3, 6)):
        labels[row, n:], target_mask[row, n:] = -100, 0
    inputs = dict(input_ids=src, attention_mask=mask, labels=labels,
                  decoder_attention_mask=target_mask)
    if case == "swish_unscaled":
        decoder_ids = rng.integers(0, v, (B, T))
        decoder_ids[:, 0] = cfg["decoder_start_token_id"]
        inputs["decoder_input_ids"] = decoder_ids
    return inputs


def _load_both(case, dtype, tmp_path):
    hf = _hf_model(case, seed=len(case))
    hf.save_pretrained(tmp_path)
    hf = hf.to(getattr(torch, dtype))
    if dtype == "float64":
        for side in (hf.model.encoder, hf.model.decoder):
            table = side.embed_positions.weight
            ours = sinusoidal_table(*table.shape)
            # transformers' own table: the same numbers, through float32
            assert np.abs(table.detach().numpy() - ours).max() <= 1e-7
            with torch.no_grad():
                table.copy_(torch.from_numpy(ours))
    ours = Seq2SeqTransformer.from_pretrained(tmp_path, dtype=dtype)
    ours.final_logits_bias.data[...] = hf.final_logits_bias.detach().numpy()
    hf.final_logits_bias.requires_grad_(True)
    return hf, ours


def _measure(case, dtype, tmp_path):
    hf, ours = _load_both(case, dtype, tmp_path)
    inputs = _inputs(case, np.random.default_rng(11))
    out = ours(**inputs, output_attentions=True)
    theirs = hf(**{k: torch.tensor(v) for k, v in inputs.items()}, output_attentions=True)
    assert len(out.cross_attentions) == len(theirs.cross_attentions) == len(hf.model.decoder.layers)
    errs = {
        "logits": max_relative_error(out.logits.data, theirs.logits.detach().numpy()),
        "loss": abs(out.loss.item() - theirs.loss.item()) / abs(theirs.loss.item()),
        "cross_attentions": max(max_relative_error(a, b.detach().numpy())
                                for a, b in zip(out.cross_attentions, theirs.cross_attentions)),
    }
    out.loss.backward()
    theirs.loss.backward()
    grads = {name: p.grad.numpy() for name, p in hf.named_parameters() if p.requires_grad}
    grads["final_logits_bias"] = hf.final_logits_bias.grad.numpy()
    scale = max(np.abs(g).max() for g in grads.values())
    grad_errs = {}
    for name, p in ours.named_parameters():
        if name.endswith(ZERO_GRAD):
            noise = 1e-12 if dtype == "float64" else 1e-5
            assert np.abs(p.grad).max() <= noise * scale, name
            assert np.abs(grads[name]).max() <= noise * scale, name
            continue
        grad_errs[name] = max_relative_error(p.grad, grads[name])
    ours_names = {name for name, _ in ours.named_parameters()}
    assert ours_names == set(grads), set(grads) ^ ours_names   # every parameter compared
    worst = max(grad_errs, key=grad_errs.get)
    return errs, worst, grad_errs[worst]


@pytest.mark.parametrize("dtype", ["float64", "float32"])
@pytest.mark.parametrize("case", CASES)
def test_logits_loss_attentions_and_every_gradient_match(tmp_path, case, dtype):
    errs, worst, grad_err = _measure(case, dtype, tmp_path)
    assert max(errs.values()) <= OUTPUT_TOL[dtype], errs
    assert grad_err <= GRAD_TOL[dtype], (worst, grad_err)


def test_the_files_hold_no_position_table_and_load_without_warnings(tmp_path, recwarn):
    from safetensors.numpy import load_file

    _hf_model("relu_scaled", seed=0).save_pretrained(tmp_path)
    names = set(load_file(str(tmp_path / "model.safetensors")))
    assert not names & POSITION_TABLES and "final_logits_bias" in names
    ours = Seq2SeqTransformer.from_pretrained(tmp_path)
    assert ours.config.activation_function == "relu" and ours.config.decoder_layers == 3
    assert not [w for w in recwarn if "newly initialised" in str(w.message)]


def _perturbed(model, seed):
    """Every parameter moved off its initial value (biases start at 0, LayerNorm at 1), so a
    weight saved under a wrong name cannot go unnoticed."""
    rng = np.random.default_rng(seed)
    for p in model.parameters():
        p.data += rng.normal(0.0, 0.05, p.shape).astype(p.dtype)
    return model.eval()


@pytest.mark.parametrize("case", CASES)
def test_transformers_reads_what_tinyllm_writes(tmp_path, case):
    config = Seq2SeqConfig(**CASES[case])
    ours = _perturbed(Seq2SeqTransformer(config, seed=0), seed=1)
    ours.save(tmp_path)
    back, info = transformers.MarianMTModel.from_pretrained(
        tmp_path, attn_implementation="eager", output_loading_info=True)
    assert not info["missing_keys"] and not info["unexpected_keys"], info
    assert back.config.activation_function == config.activation_function
    assert back.config.scale_embedding == config.scale_embedding
    inputs = _inputs(case, np.random.default_rng(12))
    with torch.no_grad():
        theirs = back.eval()(**{k: torch.tensor(v) for k, v in inputs.items()})
    out = ours(**inputs)
    assert max_relative_error(out.logits.data, theirs.logits.numpy()) <= 1e-5
    assert abs(out.loss.item() - theirs.loss.item()) <= 1e-5 * abs(theirs.loss.item())
