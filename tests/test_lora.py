"""LoRA adapters: gradients, freezing, merging, saving, and parity with Hugging Face peft.

Tolerances: gradient checks use tinyllm.autograd.gradcheck's (1e-7 + 1e-5 |numeric|, float64);
merging is exact up to rounding (float64 relative error <= 1e-10).
"""

import numpy as np
import pytest

import tinyllm
import tinyllm.nn as nn
from tinyllm.autograd.gradcheck import gradcheck, max_relative_error
from tinyllm.models import GPT, BertConfig, BertForSequenceClassification, GPTConfig
from tinyllm.optim import AdamW

V, T, B = 61, 12, 3
GPT_TARGETS = ["c_attn", "c_proj", "c_fc"]
BERT_TARGETS = ["query", "key", "value"]


def _gpt(dtype="float64", seed=0):
    with tinyllm.default_dtype(dtype):
        return GPT(GPTConfig(vocab_size=V, n_positions=16, n_embd=32, n_layer=2, n_head=4),
                   seed=seed)


def _ids(seed=1):
    return np.random.default_rng(seed).integers(0, V, (B, T))


def _randomize(model, seed=0, scale=0.1):
    """Random A and B (B non-zero, so the adapter changes the output)."""
    rng = np.random.default_rng(seed)
    for _, p in nn.named_lora_parameters(model):
        p.data = (scale * rng.standard_normal(p.shape)).astype(p.dtype)


# ------------------------------------------------------------------ the layer
@pytest.mark.parametrize("layer_cls", [nn.Linear, nn.Conv1D])
def test_gradcheck_through_a_lora_layer(layer_cls):
    with tinyllm.default_dtype("float64"):
        layer = nn.LoRALinear(layer_cls(5, 4), r=3, lora_alpha=6,
                              generator=np.random.default_rng(0))
    layer.lora_B.weight.data = np.random.default_rng(1).standard_normal((4, 3))
    x = tinyllm.tensor(np.random.default_rng(2).standard_normal((2, 3, 5)), requires_grad=True)
    a, b = layer.lora_A.weight, layer.lora_B.weight
    assert gradcheck(lambda x, a, b: layer(x), x, a, b)
    base = layer.base_layer.weight
    base.requires_grad_(True)
    assert gradcheck(lambda w: layer(x), base)       # the base path is the plain layer's


@pytest.mark.parametrize("layer_cls", [nn.Linear, nn.Conv1D])
def test_layer_computes_base_plus_scaled_low_rank_update(layer_cls):
    with tinyllm.default_dtype("float64"):
        base = layer_cls(6, 5)
        layer = nn.LoRALinear(base, r=2, lora_alpha=3)
    layer.lora_B.weight.data = np.random.default_rng(0).standard_normal((5, 2))
    x = np.random.default_rng(1).standard_normal((4, 6))
    w = base.weight.data.T if layer_cls is nn.Conv1D else base.weight.data   # (out, in)
    a, b = layer.lora_A.weight.data, layer.lora_B.weight.data
    expected = x @ w.T + base.bias.data + x @ a.T @ b.T * 1.5
    assert max_relative_error(layer(tinyllm.tensor(x)).data, expected) <= 1e-12
    assert layer.fan_in_fan_out == (layer_cls is nn.Conv1D)
    bound = 1 / np.sqrt(6)                            # kaiming-uniform, a = sqrt(5)
    assert np.abs(a).max() <= bound and np.abs(a).max() > bound / 2


def test_dropout_acts_on_the_adapter_path_only_and_only_while_training():
    with tinyllm.default_dtype("float64"):
        layer = nn.LoRALinear(nn.Linear(8, 8), r=4, lora_alpha=4, lora_dropout=0.5)
    x = tinyllm.tensor(np.random.default_rng(0).standard_normal((3, 8)))
    assert np.array_equal(layer(x).data, layer.base_layer(x).data)   # B = 0: dropout unseen
    layer.lora_B.weight.data[:] = 1.0
    train = layer(x).data
    layer.eval()
    plain = layer(x).data
    layer.lora_dropout.p = 0.0
    assert np.array_equal(layer(x).data, plain)
    assert not np.allclose(train, plain)


# ------------------------------------------------------------------ apply_lora on a model
def test_fresh_adapter_leaves_logits_and_base_names_unchanged():
    model = _gpt()
    names = list(model.state_dict())
    before = model(_ids()).logits.data
    nn.apply_lora(model, r=4, lora_alpha=8, target_modules=GPT_TARGETS, seed=0)
    assert np.array_equal(model(_ids()).logits.data, before)
    after = list(model.state_dict())
    assert [n for n in after if "lora_" not in n] == names
    added = [n for n in after if "lora_" in n]
    assert added[:2] == ["transformer.h.0.attn.c_attn.lora_A.weight",
                         "transformer.h.0.attn.c_attn.lora_B.weight"]
    assert len(added) == 2 * 4 * 2                    # A, B x 4 layers per block x 2 blocks
    assert not any("base_layer" in n for n in after)
    assert list(nn.lora_state_dict(model)) == added
    assert isinstance(model.transformer.h[0].mlp.c_fc, nn.LoRALinear)
    assert model.lora_config.r == 4 and model.lora_config.scaling == 2.0


def test_only_the_adapter_trains():
    model = _gpt()
    nn.apply_lora(model, 4, 8, GPT_TARGETS, seed=0)
    _randomize(model)
    frozen = {n: p.data.copy() for n, p in model.named_parameters() if "lora_" not in n}
    adapter = {n: p.data.copy() for n, p in nn.named_lora_parameters(model)}
    x = _ids()
    model(x, targets=np.roll(x, -1, axis=1)).loss.backward()
    for name, p in model.named_parameters():
        assert p.requires_grad == (name in adapter), name
        assert (p.grad is not None) == (name in adapter), name
    AdamW(model.parameters(), lr=1e-2, weight_decay=0.1).step()
    for name, p in model.named_parameters():
        if name in adapter:
            assert not np.array_equal(p.data, adapter[name]), name
        else:
            assert np.array_equal(p.data, frozen[name]), name


def test_modules_to_save_train_in_full_beside_the_adapter():
    with tinyllm.default_dtype("float64"):
        model = BertForSequenceClassification(_bert_config(), seed=0)
    nn.apply_lora(model, 2, 4, BERT_TARGETS, modules_to_save=["classifier"], seed=0)
    trainable = [n for n, p in model.named_parameters() if p.requires_grad]
    assert trainable[-2:] == ["classifier.weight", "classifier.bias"]
    assert list(nn.lora_state_dict(model))[-2:] == trainable[-2:]
    assert nn.get_nb_trainable_parameters(model)[0] == 2 * 3 * 2 * (32 + 32) + 3 * 32 + 3


def test_parameter_counts_for_the_small_preset():
    counts = {}
    for targets in (("c_attn",), tuple(GPT_TARGETS)):
        model = GPT(GPTConfig.from_preset("small", vocab_size=65), seed=0)
        base = model.num_params()
        nn.apply_lora(model, r=8, lora_alpha=16, target_modules=targets)
        counts[targets] = nn.get_nb_trainable_parameters(model)
        assert counts[targets][1] == base + counts[targets][0]
    c, n_layer, r = 128, 4, 8
    assert counts[("c_attn",)][0] == n_layer * r * (c + 3 * c)                     # 16,384
    assert counts[tuple(GPT_TARGETS)][0] == n_layer * r * (4 * c + 2 * c + 10 * c)   # 65,536


# ------------------------------------------------------------------ merging
def test_merge_gives_the_same_logits_and_plain_layers():
    model = _gpt()
    names = list(model.state_dict())
    nn.apply_lora(model, 4, 8, GPT_TARGETS, seed=0)
    _randomize(model)
    x = _ids()
    adapted = model(x).logits.data
    nn.merge_lora(model, unload=False)
    assert max_relative_error(model(x).logits.data, adapted) <= 1e-10
    assert nn.get_nb_trainable_parameters(model)[0] == 0      # a merged adapter is frozen
    nn.unmerge_lora(model)
    assert max_relative_error(model(x).logits.data, adapted) <= 1e-10
    assert nn.get_nb_trainable_parameters(model)[0] == 2 * 4 * (128 + 64 + 2 * 160)  # 2 blocks
    nn.merge_lora(model)
    assert max_relative_error(model(x).logits.data, adapted) <= 1e-10
    assert list(model.state_dict()) == names
    assert type(model.transformer.h[1].attn.c_attn) is nn.Conv1D
    assert not nn.lora_layers(model) and not hasattr(model, "lora_config")


def test_merge_into_bert_linear_layers():
    with tinyllm.default_dtype("float64"):
        model = BertForSequenceClassification(_bert_config(), seed=0)
    nn.apply_lora(model, 3, 5, BERT_TARGETS + ["dense"], seed=0)
    _randomize(model)
    model.eval()
    x = _ids()
    adapted = model(x).logits.data
    nn.merge_lora(model)
    assert max_relative_error(model(x).logits.data, adapted) <= 1e-10
    assert type(model.bert.encoder.layer[0].attention.self.query) is nn.Linear


def test_merging_a_tied_weight_is_refused():
    model = nn.apply_lora(_gpt(), 2, 2, ["lm_head"])
    with pytest.raises(ValueError, match="lm_head.weight is one tied parameter with "
                                         "transformer.wte.weight"):
        nn.merge_lora(model)


def _bert_config(**kw):
    return BertConfig(vocab_size=V, hidden_size=32, num_hidden_layers=2, num_attention_heads=4,
                      intermediate_size=48, max_position_embeddings=16, num_labels=3, **kw)
