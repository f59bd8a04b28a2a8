"""Structured pruning of GPT feed-forward neurons and attention heads: the Taylor importance
(a head's equals the derivative of the loss by a gate on its output, by finite differences),
a pruned model equal to the original with those neurons or heads silenced, smaller matrices
that Hugging Face reads (neurons) or that tinyllm saves and loads (heads), `tinyllm compress
--method prune-ffn | prune-heads` (tinyllm.compress.structured)."""

import json

import numpy as np
import pytest

import tinyllm
from tinyllm.cli import main
from tinyllm.compress.structured import ffn_importance, head_importance, prune_ffn, prune_heads
from tinyllm.models import GPT, GPTConfig
from tinyllm.models.lstm import LSTMLM, LSTMConfig
from tinyllm.nn.quantized import quantize_model
from tinyllm.training.inference import load_causal_lm

RNG = np.random.default_rng(0)


def _gpt(**kw):
    cfg = dict(vocab_size=15, n_positions=8, n_embd=8, n_layer=2, n_head=2) | kw
    with tinyllm.default_dtype(np.float64):
        return GPT(GPTConfig(**cfg), seed=0)


def _batches(n=2):
    return [(RNG.integers(0, 15, (3, 8)), RNG.integers(0, 15, (3, 8))) for _ in range(n)]


def test_importance_is_the_first_order_change_of_the_loss():
    """|sum a_j g_j| predicts what zeroing neuron j does to the loss, to first order; and
    the estimate leaves the weights and gradients as they were."""
    model, batches = _gpt(), _batches(1)
    before = {k: v.copy() for k, v in model.state_dict().items()}
    scores = ffn_importance(model, batches)
    assert [s.shape for s in scores] == [(32,), (32,)]
    assert all(np.array_equal(v, before[k]) for k, v in model.state_dict().items())
    assert all(p.grad is None for p in model.parameters())
    x, y = batches[0]
    base = model(x, y).loss.item()
    c_proj = model.transformer.h[1].mlp.c_proj
    for j in np.argsort(-scores[1])[:3]:
        saved = c_proj.weight.data[j].copy()
        c_proj.weight.data[j] = 0                  # silence neuron j of layer 1
        change = abs(model(x, y).loss.item() - base)
        c_proj.weight.data[j] = saved
        assert change == pytest.approx(scores[1][j], rel=0.2, abs=1e-4)


def test_the_pruned_model_equals_the_original_with_those_neurons_silenced():
    model, batches = _gpt(), _batches()
    scores = ffn_importance(model, batches)
    pruned, kept = prune_ffn(model, 0.25, scores)
    assert pruned.config.n_inner == 24 and [len(k) for k in kept] == [24, 24]
    assert pruned.transformer.h[0].mlp.c_fc.weight.shape == (8, 24)
    for i, keep in enumerate(kept):             # the 24 most important, in order
        assert set(keep) == set(np.argsort(-scores[i], kind="stable")[:24])
        mlp = model.transformer.h[i].mlp
        dropped = np.setdiff1d(np.arange(32), keep)
        mlp.c_proj.weight.data[dropped] = 0
    x = RNG.integers(0, 15, (2, 8))
    np.testing.assert_allclose(pruned(x).logits.data, model(x).logits.data, rtol=1e-12,
                               atol=1e-12)
    same, _ = prune_ffn(_gpt(), 0.0, scores)
    np.testing.assert_array_equal(same(x).logits.data, _gpt()(x).logits.data)
    with pytest.raises(ValueError, match="would remove all 32 neurons"):
        prune_ffn(model, 0.99, scores)


def test_a_pruned_gpt_is_a_plain_gpt2_for_transformers(tmp_path):
    transformers = pytest.importorskip("transformers")
    torch = pytest.importorskip("torch")
    model = _gpt()
    pruned, _ = prune_ffn(model, 0.5, ffn_importance(model, _batches()))
    pruned.save(tmp_path)
    assert json.loads((tmp_path / "config.json").read_text())["n_inner"] == 16
    ref = transformers.GPT2LMHeadModel.from_pretrained(tmp_path, dtype=torch.float64).eval()
    x = RNG.integers(0, 15, (2, 8))
    with torch.no_grad():
        theirs = ref(torch.tensor(x)).logits.numpy()
    np.testing.assert_allclose(pruned(x).logits.data, theirs, rtol=1e-10, atol=1e-10)


def test_other_families_are_refused():
    lstm = LSTMLM(LSTMConfig(vocab_size=15, n_embd=8, hidden_size=8, num_layers=1, n_positions=8))
    with pytest.raises(ValueError, match="structured pruning is for GPT models"):
        ffn_importance(lstm, _batches(1))
    with pytest.raises(ValueError, match="structured pruning is for GPT models"):
        head_importance(lstm, _batches(1))
    quantized = _gpt()
    quantize_model(quantized, "int8-channel")
    with pytest.raises(ValueError, match="needs the float model: transformer.h.0.attn.c_attn is "
                                         "a QuantizedLinear"):
        head_importance(quantized, _batches(1))


# ------------------------------------------------------------------ attention heads
def _silence_heads(model, pruned):
    """The dense model with heads {layer: [heads]} contributing nothing: their rows of
    c_proj set to zero."""
    hs = model.config.head_dim
    for i, heads in pruned.items():
        for h in heads:
            model.transformer.h[i].attn.c_proj.weight.data[h * hs:(h + 1) * hs] = 0
    return model


def _gated_loss(model, x, y, layer, head, gate):
    """The loss with head `head` of `layer`'s output multiplied by `gate`."""
    w = model.transformer.h[layer].attn.c_proj.weight.data
    hs = model.config.head_dim
    saved = w[head * hs:(head + 1) * hs].copy()
    w[head * hs:(head + 1) * hs] *= gate
    loss = model(x, y).loss.item()
    w[head * hs:(head + 1) * hs] = saved
    return loss


def test_head_importance_is_the_derivative_by_a_gate_on_the_head():
    """Michel et al.'s I_h = |dL/d xi_h| at xi = 1 (one batch), by central differences, then
    normalised per layer; the weights are left as they were."""
    model = _gpt(n_embd=16, n_head=4)
    batches = _batches(1)
    before = {k: v.copy() for k, v in model.state_dict().items()}
    scores = head_importance(model, batches)
    assert [s.shape for s in scores] == [(4,), (4,)]
    assert all(np.array_equal(v, before[k]) for k, v in model.state_dict().items())
    x, y = batches[0]
    eps = 1e-4                      # central differences: error O(eps^2), round-off ~1e-12
    for layer in range(2):
        fd = np.array([abs(_gated_loss(model, x, y, layer, h, 1 + eps)
                           - _gated_loss(model, x, y, layer, h, 1 - eps)) / (2 * eps)
                       for h in range(4)])
        np.testing.assert_allclose(scores[layer], fd / np.linalg.norm(fd), rtol=1e-5)


def test_the_head_pruned_model_equals_the_original_with_those_heads_silenced(tmp_path):
    model = _gpt(n_embd=16, n_head=4)
    scores = [np.array([0.1, 0.9, 0.5, 0.2]), np.array([0.3, 0.05, 0.8, 0.6])]
    pruned, removed = prune_heads(model, 0.25, scores)          # 2 of 8 heads
    assert removed == {0: [0], 1: [1]}
    assert pruned.config.pruned_heads == {0: [0], 1: [1]}
    attn = pruned.transformer.h[0].attn
    assert (attn.num_heads, attn.head_dim) == (3, 4)
    assert attn.c_attn.weight.shape == (16, 36) and attn.c_proj.weight.shape == (12, 16)
    assert pruned.num_params() == pruned.config.param_count() == model.num_params() - 2 * (
        16 * 12 + 12 + 4 * 16)
    assert sum(pruned.flops_breakdown().values()) < sum(model.flops_breakdown().values())
    x = RNG.integers(0, 15, (2, 8))
    want = _silence_heads(_gpt(n_embd=16, n_head=4), removed)(x).logits.data
    np.testing.assert_allclose(pruned(x).logits.data, want, rtol=1e-12, atol=1e-12)
    # Generation with the KV cache runs on the narrower layers.
    assert pruned.generate(x[:1, :3], 4, do_sample=False).shape == (1, 7)
    # Saved and loaded: config.json's string keys read back as layer numbers.
    pruned.save(tmp_path)
    assert json.loads((tmp_path / "config.json").read_text())["pruned_heads"] == {
        "0": [0], "1": [1]}
    np.testing.assert_allclose(GPT.load(tmp_path)(x).logits.data, pruned(x).logits.data,
                               rtol=1e-5, atol=1e-6)                 # saved in float32


def test_pruning_heads_twice_records_the_original_head_numbers():
    model = _gpt(n_embd=16, n_head=4)
    once, _ = prune_heads(model, 0.125, [np.array([0.9, 0.1, 0.5, 0.4]), np.ones(4)])
    assert once.config.pruned_heads == {0: [1]}
    # Layer 0's current heads are the original 0, 2, 3: dropping current head 1 is head 2.
    twice, removed = prune_heads(once, 1 / 7, [np.array([0.9, 0.1, 0.5]), np.ones(4)])
    assert removed == {0: [1, 2]}
    x = RNG.integers(0, 15, (2, 8))
    want = _silence_heads(_gpt(n_embd=16, n_head=4), removed)(x).logits.data
    np.testing.assert_allclose(twice(x).logits.data, want, rtol=1e-12, atol=1e-12)


def test_every_layer_keeps_a_head_and_bad_pruned_heads_are_refused():
    model = _gpt(n_embd=16, n_head=4)
    scores = [np.array([0.1, 0.2, 0.3, 0.4]), np.array([9.0, 8.0, 7.0, 6.0])]
    pruned, removed = prune_heads(model, 0.75, scores)           # 6 of 8: 3 per layer at most
    assert removed == {0: [0, 1, 2], 1: [1, 2, 3]}
    with pytest.raises(ValueError, match="would remove 7 of 8 heads"):
        prune_heads(model, 0.875, scores)
    for bad, message in (({5: [0]}, "names layer 5"), ({0: [4]}, "outside 0..3"),
                         ({0: [0, 1, 2, 3]}, "removes all 4 heads"),
                         ({0: "x"}, "not a list of head numbers"), ([1], "must be a mapping")):
        with pytest.raises(ValueError, match=message):
            GPTConfig(n_embd=16, n_head=4, n_layer=2, pruned_heads=bad)
    assert GPTConfig(n_embd=16, n_head=4, n_layer=2, pruned_heads={0: []}).pruned_heads is None


def test_compress_prune_ffn_narrows_the_mlps_and_the_commands_read_it(tmp_path, capsys):
    f = tmp_path / "text.txt"
    f.write_text("the cat sat on the mat. a dog ran to the cat. " * 300)
    assert main(["train", "--data", str(f), "--preset", "nano", "--steps", "6", "--out",
                 str(tmp_path), "--name", "dense", "--quiet"]) == 0
    out = tmp_path / "narrow"
    assert main(["compress", str(tmp_path / "dense"), "--method", "prune-ffn", "--sparsity",
                 "0.25", "--out", str(out)]) == 0
    assert "prune-ffn-0.25: 2 MLPs narrowed" in capsys.readouterr().out
    model = GPT.load(out)
    assert model.config.n_inner == 48                         # nano: 4 x 16 = 64 -> 48
    assert main(["eval", str(out)]) == 0
    assert main(["generate", str(out), "--max-new-tokens", "4", "--seed", "0"]) == 0
    capsys.readouterr()
    assert main(["compress", str(tmp_path / "dense"), "--method", "prune-ffn", "--out",
                 str(tmp_path / "x")]) == 2
    assert "--method prune-ffn needs --sparsity" in capsys.readouterr().err


def test_compress_prune_heads_and_recovery_training_read_the_smaller_model(tmp_path, capsys):
    f = tmp_path / "text.txt"
    f.write_text("the cat sat on the mat. a dog ran to the cat. " * 300)
    assert main(["train", "--data", str(f), "--preset", "micro", "--steps", "6", "--out",
                 str(tmp_path), "--name", "dense", "--quiet"]) == 0
    out = tmp_path / "fewer-heads"
    assert main(["compress", str(tmp_path / "dense"), "--method", "prune-heads", "--sparsity",
                 "0.25", "--out", str(out)]) == 0
    assert "prune-heads-0.25:" in capsys.readouterr().out
    model = GPT.load(out)
    n_heads = model.config.n_head * model.config.n_layer        # as the dense model had
    kept = sum(b.attn.num_heads for b in model.transformer.h)
    assert kept == n_heads - round(0.25 * n_heads)
    assert main(["eval", str(out)]) == 0
    assert main(["generate", str(out), "--max-new-tokens", "4", "--seed", "0"]) == 0
    # Recovery fine-tuning starts from the pruned weights and keeps the pruned shape.
    assert main(["train", "--data", str(f), "--init-from", str(out), "--steps", "3", "--out",
                 str(tmp_path), "--name", "recovered", "--quiet"]) == 0
    recovered, _, _ = load_causal_lm(tmp_path / "recovered", "test")
    assert recovered.config.pruned_heads == model.config.pruned_heads
    capsys.readouterr()
    assert main(["compress", str(tmp_path / "dense"), "--method", "prune-heads", "--sparsity",
                 "1.0", "--out", str(tmp_path / "x")]) == 2
    assert "sparsity" in capsys.readouterr().err and not (tmp_path / "x").exists()
