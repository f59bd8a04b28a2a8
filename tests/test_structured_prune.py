"""Structured pruning of GPT feed-forward neurons: the Taylor importance, a pruned model equal
to the original with those neurons silenced, smaller matrices that Hugging Face reads,
`tinyllm compress --method prune-ffn` (tinyllm.compress.structured)."""

import json

import numpy as np
import pytest

import tinyllm
from tinyllm.cli import main
from tinyllm.compress.structured import ffn_importance, prune_ffn
from tinyllm.models import GPT, GPTConfig
from tinyllm.models.lstm import LSTMLM, LSTMConfig

RNG = np.random.default_rng(0)


def _gpt():
    with tinyllm.default_dtype(np.float64):
        return GPT(GPTConfig(vocab_size=15, n_positions=8, n_embd=8, n_layer=2, n_head=2),
                   seed=0)


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
    with pytest.raises(ValueError, match="structured FFN pruning is for GPT models"):
        ffn_importance(lstm, _batches(1))


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
