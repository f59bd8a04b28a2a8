"""Magnitude pruning: exact counts, global vs per-layer thresholds, Zhu & Gupta's cubic
schedule, gradual pruning in training, `tinyllm compress --method prune` (tinyllm.nn.prune)."""

import json

import numpy as np
import pytest

from tinyllm.cli import main
from tinyllm.models import GPT, GPTConfig
from tinyllm.nn.prune import (
    GradualPruner,
    cubic_sparsity,
    magnitude_masks,
    masks_from_zeros,
    prunable_weights,
    prune_model,
    sparsity_of,
)
from tinyllm.training.inference import load_run


def _gpt():
    return GPT(GPTConfig(vocab_size=20, n_positions=8, n_embd=16, n_layer=2, n_head=2), seed=0)


def test_global_pruning_removes_exactly_the_smallest_weights_of_all_layers():
    model = _gpt()
    weights = {n: p.data.copy() for n, p in prunable_weights(model).items()}
    assert set(weights) == {f"transformer.h.{i}.{m}.weight" for i in (0, 1)
                            for m in ("attn.c_attn", "attn.c_proj", "mlp.c_fc", "mlp.c_proj")}
    masks = prune_model(model, 0.3)
    flat = np.concatenate([np.abs(w).ravel() for w in weights.values()])
    n_drop = round(0.3 * flat.size)
    threshold = np.sort(flat)[n_drop - 1]
    for name, w in weights.items():
        kept = prunable_weights(model)[name].data
        assert np.array_equal(kept, np.where(masks[name], w, 0))
        assert (np.abs(w[~masks[name]]) <= threshold).all()
        assert (np.abs(w[masks[name]]) >= threshold).all()
    assert sum(int((~m).sum()) for m in masks.values()) == n_drop
    assert sparsity_of(model) == pytest.approx(n_drop / flat.size)
    assert model.transformer.wte.weight.data.all()         # embeddings are not pruned


def test_per_layer_pruning_takes_the_same_fraction_everywhere_and_global_does_not():
    model = _gpt()
    model.transformer.h[1].mlp.c_fc.weight.data *= 0.01    # one layer of small weights
    per_layer = magnitude_masks(model, 0.5, scope="layer")
    for m in per_layer.values():
        assert (~m).sum() == round(0.5 * m.size)
    glob = magnitude_masks(model, 0.5, scope="global")
    assert (~glob["transformer.h.1.mlp.c_fc.weight"]).all()  # the global threshold takes it all
    with pytest.raises(ValueError, match="sparsity=1.0 is out of range; accepted: 0 <= "):
        magnitude_masks(model, 1.0)
    with pytest.raises(ValueError, match="unknown scope 'rows'"):
        magnitude_masks(model, 0.5, scope="rows")


def test_the_cubic_schedule_of_zhu_and_gupta():
    s = [cubic_sparsity(t, 0.8, start=10, end=110) for t in (0, 10, 35, 60, 110, 200)]
    assert s[0] == s[1] == 0 and s[4] == s[5] == 0.8
    assert s[2] == pytest.approx(0.8 * (1 - 0.75 ** 3))      # a quarter of the way
    assert s[3] == pytest.approx(0.8 * (1 - 0.5 ** 3))       # half way: 87.5% of the target
    assert cubic_sparsity(60, 0.9, 10, 110, initial=0.5) == pytest.approx(0.9 - 0.4 * 0.125)
    with pytest.raises(ValueError, match="accepted: 0 <= start < end"):
        cubic_sparsity(5, 0.5, start=10, end=10)


def test_gradual_pruning_holds_pruned_weights_at_zero_and_reaches_the_target():
    model = _gpt()
    pruner = GradualPruner(model, 0.6, start=0, end=20, every=5)
    rng = np.random.default_rng(0)
    for step in range(1, 26):
        for p in prunable_weights(model).values():       # a stand-in for an optimizer step
            p.data += 0.01 * rng.standard_normal(p.shape).astype(p.dtype)
        pruner.after_step(step)
        expected = cubic_sparsity(step - step % 5 if step < 20 else 20, 0.6, 0, 20)
        assert sparsity_of(model) == pytest.approx(expected, abs=1e-3)
    assert sparsity_of(model) == pytest.approx(0.6, abs=1e-3)
    masks = masks_from_zeros(model)
    assert GradualPruner(model, 0.6, 0, 20).masks.keys() == masks.keys()


@pytest.fixture(scope="module")
def text(tmp_path_factory):
    f = tmp_path_factory.mktemp("prune") / "text.txt"
    f.write_text("the cat sat on the mat. a dog ran to the cat. " * 300)
    return f


def test_training_with_prune_to_ends_at_that_sparsity_and_resumes(text, tmp_path, capsys):
    args = ["train", "--data", str(text), "--preset", "nano", "--steps", "16",
            "--warmup-steps", "2", "--eval-interval", "8", "--eval-iters", "2",
            "--prune-to", "0.5", "--prune-end", "12", "--prune-every", "4", "--out",
            str(tmp_path), "--name", "pruned", "--quiet"]
    assert main(args) == 0
    model, _, config = load_run(tmp_path / "pruned", "last")
    assert config.prune_to == 0.5 and config.prune_start == 0
    assert sparsity_of(model) == pytest.approx(0.5, abs=1e-3)
    assert main(["train", "--resume", str(tmp_path / "pruned"), "--steps", "20",
                 "--quiet"]) == 0
    model, _, _ = load_run(tmp_path / "pruned", "last")
    assert sparsity_of(model) == pytest.approx(0.5, abs=1e-3)    # still held at zero
    bad = [(["--prune-to", "1.2"], "prune_to=1.2 is out of range"),
           (["--prune-to", "0.5", "--prune-end", "99"], "accepted: 0 <= prune_start < "
                                                        "prune_end <= steps=16"),
           (["--prune-every", "3"], "--prune-every is a setting of --prune-to")]
    for extra, message in bad:
        assert main(["train", "--data", str(text), "--preset", "nano", "--steps", "16",
                     "--out", str(tmp_path), "--quiet", *extra]) == 2
        err = capsys.readouterr().err
        assert message in err and err.count("\n") == 1, err


def test_compress_prune_writes_a_sparse_model_the_commands_read(text, tmp_path, capsys):
    assert main(["train", "--data", str(text), "--preset", "nano", "--steps", "6",
                 "--out", str(tmp_path), "--name", "dense", "--quiet"]) == 0
    out = tmp_path / "sparse"
    assert main(["compress", str(tmp_path / "dense"), "--method", "prune", "--sparsity",
                 "0.4", "--scope", "layer", "--out", str(out)]) == 0
    assert "40.0% of the weights of 8 layers are zero" in capsys.readouterr().out
    assert "quantization_config" not in json.loads((out / "config.json").read_text())
    model = GPT.load(out)
    assert sparsity_of(model) == pytest.approx(0.4, abs=1e-3)
    assert main(["eval", str(out)]) == 0
    for extra, message in ((["--sparsity", "1"], "sparsity=1.0 is out of range"),
                           ([], "--method prune needs --sparsity"),
                           (["--sparsity", "0.5", "--group-size", "32"], "--group-size is "
                                                                          "for --method int4")):
        assert main(["compress", str(tmp_path / "dense"), "--method", "prune", *extra,
                     "--out", str(tmp_path / "x")]) == 2
        assert message in capsys.readouterr().err
    assert main(["compress", str(tmp_path / "dense"), "--method", "int8-tensor",
                 "--sparsity", "0.5", "--out", str(tmp_path / "x")]) == 2
    assert "--sparsity is for --method prune" in capsys.readouterr().err
    assert not (tmp_path / "x").exists()
