"""LoRA adapters: gradients, freezing, merging, saving, and parity with Hugging Face peft.

Tolerances: gradient checks use tinyllm.autograd.gradcheck's (1e-7 + 1e-5 |numeric|, float64);
merging is exact up to rounding (float64 relative error <= 1e-10); peft parity, as in
test_models_parity.py: float64 <= 1e-6 (observed ~1e-15), float32 <= 1e-4 (observed ~1e-7).
"""

import json

import numpy as np
import pytest

import tinyllm
import tinyllm.nn as nn
from tinyllm.autograd.gradcheck import gradcheck, max_relative_error
from tinyllm.models import GPT, BertConfig, BertForSequenceClassification, GPTConfig
from tinyllm.models.checkpoint import CheckpointError
from tinyllm.models.lora_io import (
    ADAPTER_CONFIG_NAME,
    ADAPTER_WEIGHTS_NAME,
    PEFT_PREFIX,
    load_adapter,
    save_adapter,
)
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


# ------------------------------------------------------------------ saving and loading
def test_save_load_round_trip(tmp_path):
    model = nn.apply_lora(_gpt(), 4, 8, GPT_TARGETS, seed=0)
    _randomize(model)
    x = _ids()
    expected = model(x).logits.data
    save_adapter(model, tmp_path / "adapter", base_model_name_or_path="gpt2-tiny")
    assert sorted(p.name for p in (tmp_path / "adapter").iterdir()) == [
        ADAPTER_CONFIG_NAME, ADAPTER_WEIGHTS_NAME]
    config = json.loads((tmp_path / "adapter" / ADAPTER_CONFIG_NAME).read_text())
    assert config["peft_type"] == "LORA" and config["task_type"] == "CAUSAL_LM"
    assert (config["r"], config["lora_alpha"], config["target_modules"]) == (4, 8, GPT_TARGETS)
    assert config["fan_in_fan_out"] is True and config["bias"] == "none"
    assert config["base_model_name_or_path"] == "gpt2-tiny"

    fresh = load_adapter(_gpt(), tmp_path / "adapter")   # same base weights (seed 0)
    assert np.array_equal(fresh(x).logits.data, expected)
    assert nn.get_nb_trainable_parameters(fresh) == nn.get_nb_trainable_parameters(model)
    again = nn.apply_lora(_gpt(), 4, 8, GPT_TARGETS)     # adapted already: loads into it
    assert np.array_equal(load_adapter(again, tmp_path / "adapter")(x).logits.data, expected)


def test_adapter_file_is_kilobytes(tmp_path):
    model = GPT(GPTConfig.from_preset("small", vocab_size=65), seed=0)
    model.save(tmp_path / "base")
    nn.apply_lora(model, r=8, lora_alpha=16, target_modules=["c_attn"])
    save_adapter(model, tmp_path / "adapter")
    size = (tmp_path / "adapter" / ADAPTER_WEIGHTS_NAME).stat().st_size
    full = (tmp_path / "base" / "model.safetensors").stat().st_size
    assert 16_384 * 4 <= size < 80_000                # 16,384 float32 numbers and a header
    assert size < full / 40


def _saved(tmp_path, r=4):
    model = nn.apply_lora(_gpt(), r, 8, ["c_attn"], seed=0)
    _randomize(model)
    return save_adapter(model, tmp_path / f"adapter_r{r}")


def _rewrite(directory, edit):
    from safetensors.numpy import load_file, save_file
    path = directory / ADAPTER_WEIGHTS_NAME
    arrays = load_file(path)
    edit(arrays)
    save_file(arrays, path)


def test_loading_an_adapter_of_another_rank_is_refused(tmp_path):
    directory = _saved(tmp_path, r=4)
    model = nn.apply_lora(_gpt(), 8, 8, ["c_attn"])
    with pytest.raises(CheckpointError, match=r"adapter_config.json: r=4, but the LoRA layers "
                                              r"of GPT have r=8"):
        load_adapter(model, directory)
    config = json.loads((directory / ADAPTER_CONFIG_NAME).read_text())
    (directory / ADAPTER_CONFIG_NAME).write_text(json.dumps({**config, "r": 8}))
    plain = _gpt()
    names = list(plain.state_dict())
    with pytest.raises(CheckpointError, match=r"adapter_model.safetensors does not fit(.|\n)*"
                                              r"c_attn.lora_A.weight: shape \(4, 32\), but "
                                              r"the model's is \(8, 32\)"):
        load_adapter(plain, directory)
    assert list(plain.state_dict()) == names           # left without an adapter
    assert all(p.requires_grad for p in plain.parameters())


def test_missing_and_unexpected_keys_are_named(tmp_path):
    directory = _saved(tmp_path)
    key = PEFT_PREFIX + "transformer.h.1.attn.c_attn.lora_B.weight"

    def drop_and_add(arrays):
        del arrays[key]
        arrays[PEFT_PREFIX + "transformer.h.9.attn.c_attn.lora_A.weight"] = np.zeros((4, 32))
    _rewrite(directory, drop_and_add)
    with pytest.raises(CheckpointError) as info:
        load_adapter(_gpt(), directory)
    message = str(info.value)
    assert ADAPTER_WEIGHTS_NAME in message
    assert f"missing key {key}" in message
    assert "unexpected key base_model.model.transformer.h.9.attn.c_attn.lora_A.weight" in message


@pytest.mark.parametrize("kwargs, match", [
    (dict(r=0), "r must be a positive integer, got 0"),
    (dict(r=-2), "r must be a positive integer, got -2"),
    (dict(r=2.5), "r must be a positive integer, got 2.5"),
    (dict(lora_alpha=0), "lora_alpha must be a positive number, got 0"),
    (dict(lora_alpha=-1.0), "lora_alpha must be a positive number, got -1.0"),
    (dict(lora_dropout=1.0), r"lora_dropout must be a probability in \[0, 1\), got 1.0"),
    (dict(target_modules=["c_attn", "c_atn"]),
     r"target_modules \['c_atn'\] match no layer of GPT; its Linear/Conv1D layers are named "
     r"c_attn, c_fc, c_proj, lm_head"),
    (dict(target_modules="h\\.9\\..*"), "match no layer of GPT"),
    (dict(target_modules=["attn"]), "match transformer.h.0.attn, a MultiHeadAttention; LoRA "
                                    "wraps Linear and Conv1D layers only"),
    (dict(target_modules=[]), "target_modules must be a non-empty list"),
    (dict(modules_to_save=["head"]), r"modules_to_save \['head'\] match no module of GPT"),
])
def test_bad_arguments(kwargs, match):
    args = dict(r=4, lora_alpha=8, target_modules=["c_attn"]) | kwargs
    with pytest.raises(ValueError, match=match):
        nn.apply_lora(_gpt(), **args)


def test_regex_targets_match_whole_names_as_in_peft():
    model = nn.apply_lora(_gpt(), 2, 2, r"transformer\.h\.1\.mlp\.c_.*")
    assert [name for name, _ in nn.lora_layers(model)] == ["transformer.h.1.mlp.c_fc",
                                                            "transformer.h.1.mlp.c_proj"]


def test_adapting_twice_and_saving_without_an_adapter_are_refused(tmp_path):
    model = nn.apply_lora(_gpt(), 2, 2, ["c_attn"])
    with pytest.raises(ValueError, match="has LoRA adapters already"):
        nn.apply_lora(model, 2, 2, ["c_fc"])
    with pytest.raises(ValueError, match="GPT has no LoRA adapter; apply_lora"):
        save_adapter(_gpt(), tmp_path)
    with pytest.raises(ValueError, match="unknown task_type 'LM'"):
        save_adapter(model, tmp_path, task_type="LM")


@pytest.mark.parametrize("edit, match", [
    ({"peft_type": "IA3"}, "peft_type is 'IA3'; tinyllm reads LoRA adapters only"),
    ({"use_dora": True}, "use_dora=True is a peft option tinyllm does not implement"),
    ({"rank_pattern": {"c_attn": 2}}, "rank_pattern="),
    ({"init_lora_weights": "pissa"}, "init_lora_weights='pissa' changes the base weights"),
    ({"r": None}, "does not fit GPT: apply_lora: r must be a positive integer, got None"),
])
def test_adapter_configs_tinyllm_cannot_honour_are_refused(tmp_path, edit, match):
    directory = _saved(tmp_path)
    path = directory / ADAPTER_CONFIG_NAME
    path.write_text(json.dumps({**json.loads(path.read_text()), **edit}))
    with pytest.raises(CheckpointError, match=match):
        load_adapter(_gpt(), directory)


def test_missing_or_damaged_files_are_reported(tmp_path):
    with pytest.raises(CheckpointError, match="is not a directory"):
        load_adapter(_gpt(), tmp_path / "nowhere")
    directory = _saved(tmp_path)
    (directory / ADAPTER_CONFIG_NAME).write_text("{not json")
    with pytest.raises(CheckpointError, match="is not valid JSON"):
        load_adapter(_gpt(), directory)
    directory = _saved(tmp_path)
    (directory / ADAPTER_WEIGHTS_NAME).unlink()
    with pytest.raises(CheckpointError, match="adapter_model.safetensors does not exist"):
        load_adapter(_gpt(), directory)


# ------------------------------------------------------------------ parity with peft
TOLERANCE = {"float64": 1e-6, "float32": 1e-4}


def _bert_config(**kw):
    return BertConfig(vocab_size=V, hidden_size=32, num_hidden_layers=2, num_attention_heads=4,
                      intermediate_size=48, max_position_embeddings=16, num_labels=3, **kw)


def _hf_base(kind, directory):
    """A random small transformers model saved to `directory`, and its class."""
    torch = pytest.importorskip("torch")
    transformers = pytest.importorskip("transformers")
    torch.manual_seed(0)
    if kind == "gpt":
        cls = transformers.GPT2LMHeadModel
        cfg = transformers.GPT2Config(vocab_size=V, n_positions=16, n_embd=32, n_layer=2,
                                      n_head=4, resid_pdrop=0.0, embd_pdrop=0.0,
                                      attn_pdrop=0.0, bos_token_id=None, eos_token_id=None)
    else:
        cls = transformers.BertForSequenceClassification
        cfg = transformers.BertConfig(vocab_size=V, hidden_size=32, num_hidden_layers=2,
                                      num_attention_heads=4, intermediate_size=48,
                                      max_position_embeddings=16, num_labels=3,
                                      hidden_dropout_prob=0.0,
                                      attention_probs_dropout_prob=0.0)
    cls(cfg).eval().save_pretrained(directory)
    return cls


def _hf_load(cls, directory, dtype):
    import torch
    return cls.from_pretrained(directory, attn_implementation="eager").to(
        getattr(torch, dtype)).eval()


def _ours(kind, directory, dtype):
    cls = GPT if kind == "gpt" else BertForSequenceClassification
    return cls.from_pretrained(directory, dtype=dtype).eval()


def _settings(kind):
    """Fresh lists each time: peft's LoraConfig adds "score" to a SEQ_CLS modules_to_save."""
    if kind == "gpt":
        return dict(r=4, lora_alpha=8, target_modules=list(GPT_TARGETS))
    return dict(r=4, lora_alpha=6, target_modules=BERT_TARGETS + ["dense"],
                modules_to_save=["classifier"])


def _check_counts(ours, theirs):
    """Trainable counts agree; peft's total also counts its copy of each module to save."""
    copies = sum(p.data.size for name, p in nn.named_lora_parameters(ours) if "lora_" not in name)
    trainable, total = theirs.get_nb_trainable_parameters()
    assert nn.get_nb_trainable_parameters(ours) == (trainable, total - copies)


def _compare(kind, ours, theirs):
    """Relative error of tinyllm's adapted logits against peft's; the adapter must matter."""
    import torch
    x = _ids(7)
    mask = np.ones_like(x)
    mask[1, 8:] = 0
    if kind == "gpt":
        mine = ours(x).logits.data

        def run():
            return theirs(torch.tensor(x)).logits.numpy()
    else:
        mine = ours(x, attention_mask=mask).logits.data

        def run():
            return theirs(torch.tensor(x), attention_mask=torch.tensor(mask)).logits.numpy()
    with torch.no_grad():
        reference = run()
        with theirs.disable_adapter():
            base = run()
    assert max_relative_error(mine, base) > 1e-2          # B is not zero
    return max_relative_error(mine, reference)


@pytest.mark.parametrize("dtype", ["float64", "float32"])
@pytest.mark.parametrize("kind", ["gpt", "bert"])
def test_peft_loads_what_tinyllm_saves(tmp_path, kind, dtype):
    peft = pytest.importorskip("peft")
    cls = _hf_base(kind, tmp_path / "base")
    ours = nn.apply_lora(_ours(kind, tmp_path / "base", dtype), seed=0, **_settings(kind))
    _randomize(ours)
    save_adapter(ours, tmp_path / "adapter", base_model_name_or_path=str(tmp_path / "base"))
    theirs = peft.PeftModel.from_pretrained(_hf_load(cls, tmp_path / "base", dtype),
                                            tmp_path / "adapter", is_trainable=True).eval()
    assert _compare(kind, ours, theirs) <= TOLERANCE[dtype]
    _check_counts(ours, theirs)


@pytest.mark.parametrize("dtype", ["float64", "float32"])
@pytest.mark.parametrize("kind", ["gpt", "bert"])
def test_tinyllm_loads_what_peft_saves(tmp_path, kind, dtype):
    peft = pytest.importorskip("peft")
    import torch
    cls = _hf_base(kind, tmp_path / "base")
    settings = _settings(kind)
    config = peft.LoraConfig(task_type="CAUSAL_LM" if kind == "gpt" else "SEQ_CLS",
                             fan_in_fan_out=kind == "gpt", **settings)
    theirs = peft.get_peft_model(_hf_load(cls, tmp_path / "base", dtype), config).eval()
    with torch.no_grad():
        for p in theirs.parameters():
            if p.requires_grad:                       # lora_A, lora_B, the classifier copy
                p.normal_(0.0, 0.1)
    theirs.save_pretrained(tmp_path / "adapter")
    ours = load_adapter(_ours(kind, tmp_path / "base", dtype), tmp_path / "adapter")
    assert _compare(kind, ours, theirs) <= TOLERANCE[dtype]
    _check_counts(ours, theirs)


@pytest.mark.parametrize("kind", ["gpt", "bert"])
def test_adapter_config_fields_are_peft_fields_with_peft_values(tmp_path, kind):
    peft = pytest.importorskip("peft")
    cls = _hf_base(kind, tmp_path / "base")
    settings = _settings(kind)
    task = "CAUSAL_LM" if kind == "gpt" else "SEQ_CLS"
    theirs = peft.get_peft_model(_hf_load(cls, tmp_path / "base", "float32"),
                                 peft.LoraConfig(task_type=task, fan_in_fan_out=kind == "gpt",
                                                 **settings))
    theirs.save_pretrained(tmp_path / "peft")
    save_adapter(nn.apply_lora(_ours(kind, tmp_path / "base", "float32"), **_settings(kind)),
                 tmp_path / "ours", base_model_name_or_path=str(tmp_path / "base"))
    peft_config = json.loads((tmp_path / "peft" / ADAPTER_CONFIG_NAME).read_text())
    our_config = json.loads((tmp_path / "ours" / ADAPTER_CONFIG_NAME).read_text())
    assert set(our_config) <= set(peft_config)
    for field in ("target_modules", "modules_to_save"):     # peft keeps them as sets
        assert set(our_config.pop(field) or ()) <= set(peft_config.pop(field) or ())
    assert our_config == {k: peft_config[k] for k in our_config}
    from safetensors import safe_open
    keys = {}
    for name in ("peft", "ours"):
        with safe_open(str(tmp_path / name / ADAPTER_WEIGHTS_NAME), framework="np") as f:
            keys[name] = {k: f.get_tensor(k).shape for k in f.keys()}
    assert keys["ours"] == keys["peft"]
