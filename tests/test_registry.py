"""The models registry: each family declared once; the trainer, inference and CLI ask it."""

import dataclasses
import re

import numpy as np
import pytest

from tinyllm.cli import build_parser
from tinyllm.models import (
    GPT,
    PRESETS,
    GPTConfig,
    family_names,
    get_family,
    register_family,
    registry,
)
from tinyllm.models.checkpoint import CheckpointError
from tinyllm.models.registry import ModelFamily
from tinyllm.tokenizers import CharTokenizer
from tinyllm.training import TrainConfig, Trainer, load_checkpoint, save_checkpoint
from tinyllm.training.inference import generate_text, load_run
from tinyllm.training.objectives import objective_for


def test_families_in_registration_order():
    # gpt (the default) first; families added later are appended after these
    assert family_names()[:5] == ("gpt", "bert", "lstm", "seq2seq", "lstm-seq2seq")
    assert [get_family(n).objective for n in family_names()[:5]] == [
        "causal-lm", "masked-lm", "causal-lm", "seq2seq", "seq2seq"]


def test_unknown_family_is_an_error_naming_the_accepted_ones():
    accepted = re.escape(", ".join(family_names()))       # every registered family, in order
    with pytest.raises(ValueError, match=f"unknown model family 'gtp'; accepted: {accepted}$"):
        get_family("gtp")
    with pytest.raises(ValueError, match=f"unknown model 'gtp'; accepted: {accepted}$"):
        TrainConfig(model="gtp")


def test_the_seq2seq_objective_takes_the_loss_of_pairs_and_refuses_a_stream():
    from tinyllm.models import Seq2SeqConfig, Seq2SeqTransformer

    objective = objective_for(get_family("seq2seq"))
    model = Seq2SeqTransformer(Seq2SeqConfig.from_preset("nano", vocab_size=9), seed=0)
    batch = {"input_ids": np.array([[3, 4, 5]]), "attention_mask": np.array([[1, 1, 0]]),
             "labels": np.array([[6, 7, -100, -100]])}
    assert objective.loss(model, batch).item() == model(**batch).loss.item() > 0
    for method in ("min_tokens", "batcher", "eval_batches", "sample"):
        with pytest.raises(ValueError, match=r"\(source, target\) pairs of a translation task"):
            getattr(objective, method)(np.arange(100), None, 2, 8, 0)


def test_a_family_registers_once():
    with pytest.raises(ValueError, match="'gpt' is registered already"):
        register_family(get_family("gpt"))


def test_unknown_objective_is_refused():
    with pytest.raises(ValueError, match="unknown objective 'seq3seq'"):
        ModelFamily(name="x", config_class=GPTConfig, model_class=GPT, objective="seq3seq",
                    presets={}, description="")


def test_presets_view_reads_the_registry():
    assert list(PRESETS) == list(family_names())
    assert "lstm" in PRESETS and "rnn" not in PRESETS
    for name in family_names():
        assert PRESETS[name] is get_family(name).presets


@pytest.mark.parametrize("name", family_names())
def test_family_declares_what_the_trainer_needs(name):
    family = get_family(name)
    fields = {f.name for f in dataclasses.fields(family.config_class)}
    assert family.context_field in fields
    assert set(family.dropout_fields) <= fields and set(family.token_id_fields) <= fields
    tok = CharTokenizer().train("abcdef")
    config = family.make_config("nano", vocab_size=tok.vocab_size, block_size=16,
                                dropout=0.25, tokenizer=tok)
    assert config.block_size == getattr(config, family.context_field) == 16
    assert all(getattr(config, f) == 0.25 for f in family.dropout_fields)
    assert all(getattr(config, f) == getattr(tok, a) for f, a in family.token_id_fields.items())
    preset = family.make_config("nano", vocab_size=tok.vocab_size)
    assert preset.block_size == family.presets["nano"][family.context_field]
    model = family.build(config, seed=0)
    assert isinstance(model, family.model_class) and model.num_params() > 0
    assert family.config_from_dict(config.to_dict()) == config
    assert objective_for(family).name == family.objective


def test_cli_model_choices_come_from_the_registry():
    sub = next(a for a in build_parser()._actions if a.dest == "command")
    model = next(a for a in sub.choices["train"]._actions if a.dest == "model")
    assert tuple(model.choices) == family_names()


def test_a_new_family_trains_saves_and_generates_with_no_other_edit(tmp_path, monkeypatch):
    """Registering a family is all the trainer, `load_run` and `generate` need."""
    relu_presets = {"nano": dict(n_layer=1, n_head=2, n_embd=16, n_positions=16,
                                 activation_function="relu")}
    family = ModelFamily(name="gpt-relu", config_class=GPTConfig, model_class=GPT,
                         objective="causal-lm", presets=relu_presets, description="test",
                         dropout_fields=("resid_pdrop",))
    monkeypatch.setitem(registry._FAMILIES, family.name, family)
    config = TrainConfig(model="gpt-relu", preset="nano", data="markov", steps=4,
                         warmup_steps=1, eval_interval=2, eval_iters=1, batch_size=2,
                         sample_tokens=3, out=str(tmp_path))
    result = Trainer(config, quiet=True).train()
    assert result.status == "finished" and result.run_dir.name == "gpt-relu-nano-markov"
    model, _, saved = load_run(result.run_dir)
    assert saved.model == "gpt-relu" and model.config.activation_function == "relu"
    assert len(generate_text(result.run_dir, "ab", max_new_tokens=3, temperature=0)) == 5


def test_a_checkpoint_of_an_unknown_family_is_refused(tmp_path):
    run = tmp_path / "run"
    run.mkdir()
    meta = {"train_config": TrainConfig().to_dict(), "model_type": "transformer-xl",
            "model_config": {}, "tokenizer": CharTokenizer().train("ab").to_dict()}
    save_checkpoint(run / "last.safetensors", {"model.w": np.zeros(2, np.float32)}, meta)
    assert load_checkpoint(run / "last.safetensors")[1]["model_type"] == "transformer-xl"
    with pytest.raises(CheckpointError, match="unknown model family 'transformer-xl'"):
        load_run(run)


def test_generate_refuses_a_masked_lm_naming_the_causal_families(tmp_path):
    config = TrainConfig(model="bert", preset="nano", data="markov", steps=2, warmup_steps=1,
                         eval_interval=2, eval_iters=1, batch_size=2, block_size=16,
                         sample_tokens=3, out=str(tmp_path))
    run = Trainer(config, quiet=True).train().run_dir
    with pytest.raises(ValueError, match=r"needs a causal language model \(gpt, lstm\)"):
        generate_text(run, "ab")


def test_task_heads_come_from_the_registry():
    from tinyllm.models import BertForSequenceClassification

    assert get_family("bert").head("sequence-classification") is BertForSequenceClassification
    with pytest.raises(ValueError, match="'lstm' has no sequence-classification head; the "
                                         "families that have one: .*bert"):
        get_family("lstm").head("sequence-classification")
    with pytest.raises(ValueError, match="unknown head kinds"):
        ModelFamily(name="x", config_class=GPTConfig, model_class=GPT, objective="causal-lm",
                    presets={}, description="", heads={"translation": GPT})
