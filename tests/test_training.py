"""The trainer: bit-identical resume, clean interruption, NaN stop, bad resume directories."""

import json
import os
import signal
import threading

import numpy as np
import pytest

from tinyllm.models.checkpoint import CheckpointError
from tinyllm.training import TrainConfig, Trainer, load_checkpoint, unigram_entropy

TINY = dict(preset="nano", steps=12, warmup_steps=2, eval_interval=4, eval_iters=2,
            batch_size=4, sample_tokens=5, data="markov")


def _losses(run_dir):
    lines = (run_dir / "metrics.jsonl").read_text().splitlines()
    return [(r["step"], r["loss"]) for r in map(json.loads, lines) if r["kind"] == "train"]


@pytest.fixture(autouse=True)
def _small_markov(monkeypatch):
    """A short Markov corpus keeps each run to a second or two."""
    import tinyllm.data.corpora as corpora

    original = corpora.load_corpus

    def load(name, **options):
        if name == "markov":
            options.setdefault("length", 20_000)
        return original(name, **options)

    monkeypatch.setattr("tinyllm.training.trainer.load_corpus", load)


def test_resume_is_bit_identical(tmp_path):
    full = Trainer(TrainConfig(**TINY, out=str(tmp_path / "a")), quiet=True).train()
    assert full.status == "finished"
    first = Trainer(TrainConfig(**TINY, out=str(tmp_path / "b")), quiet=True)
    assert first.train(until=6).step == 6          # stops between evaluations
    resumed = Trainer.resume(first.run_dir, quiet=True).train()
    assert resumed.step == 12
    assert _losses(full.run_dir) == _losses(first.run_dir)   # exact float equality
    a = load_checkpoint(full.run_dir / "last.safetensors")[0]
    b = load_checkpoint(first.run_dir / "last.safetensors")[0]
    assert a.keys() == b.keys() and all(np.array_equal(a[k], b[k]) for k in a)


def test_same_seed_same_run(tmp_path):
    r1 = Trainer(TrainConfig(**TINY, out=str(tmp_path / "a")), quiet=True).train()
    r2 = Trainer(TrainConfig(**TINY, out=str(tmp_path / "b")), quiet=True).train()
    assert _losses(r1.run_dir) == _losses(r2.run_dir)


def test_sigint_saves_and_exits_cleanly(tmp_path, capsys):
    trainer = Trainer(TrainConfig(**{**TINY, "steps": 400}, out=str(tmp_path)), quiet=False)
    original = trainer._train_step

    def step_then_signal():
        loss = original()
        if trainer.step == 2:
            os.kill(os.getpid(), signal.SIGINT)
        return loss

    trainer._train_step = step_then_signal
    assert threading.current_thread() is threading.main_thread()
    result = trainer.train()
    assert result.status == "interrupted" and result.step == 3
    assert load_checkpoint(trainer.run_dir / "last.safetensors")[1]["step"] == 3
    err = capsys.readouterr().err
    assert "SIGINT received" in err and f"--resume {trainer.run_dir}" in err
    assert signal.getsignal(signal.SIGINT) is signal.default_int_handler


def test_nan_loss_stops_and_keeps_last_good_checkpoint(tmp_path):
    trainer = Trainer(TrainConfig(**TINY, out=str(tmp_path)), quiet=True)
    original = trainer._train_step
    trainer._train_step = lambda: float("nan") if trainer.step == 5 else original()
    result = trainer.train()
    assert result.status == "stopped" and result.step == 5
    assert load_checkpoint(trainer.run_dir / "last.safetensors")[1]["step"] == 4


def test_metrics_after_the_checkpoint_are_dropped_on_resume(tmp_path):
    trainer = Trainer(TrainConfig(**TINY, out=str(tmp_path)), quiet=True)
    trainer.train(until=6)
    with open(trainer.run_dir / "metrics.jsonl", "a") as f:   # a crash after step 6's save
        f.write(json.dumps({"step": 7, "kind": "train", "loss": 123.0}) + "\n")
    Trainer.resume(trainer.run_dir, quiet=True).train()
    steps = [s for s, _ in _losses(trainer.run_dir)]
    assert steps == list(range(1, 13))


def test_resume_missing_directory(tmp_path):
    with pytest.raises(CheckpointError, match="not a directory"):
        Trainer.resume(tmp_path / "nope")


def test_resume_truncated_checkpoint_is_refused_and_untouched(tmp_path):
    trainer = Trainer(TrainConfig(**TINY, out=str(tmp_path)), quiet=True)
    trainer.train(until=4)
    path = trainer.run_dir / "last.safetensors"
    data = path.read_bytes()
    path.write_bytes(data[: len(data) // 2])
    with pytest.raises(CheckpointError, match="truncated or corrupted"):
        Trainer.resume(trainer.run_dir)
    assert path.read_bytes() == data[: len(data) // 2]


def test_resume_edited_metadata_is_refused(tmp_path):
    trainer = Trainer(TrainConfig(**TINY, out=str(tmp_path)), quiet=True)
    trainer.train(until=4)
    path = trainer.run_dir / "last.safetensors"
    raw = path.read_bytes()
    path.write_bytes(raw.replace(b'\\"step\\":4', b'\\"step\\":"x"'))
    with pytest.raises((CheckpointError, ValueError)):
        Trainer.resume(trainer.run_dir).train()


def test_resume_from_another_model_is_refused(tmp_path):
    trainer = Trainer(TrainConfig(**TINY, out=str(tmp_path)), quiet=True)
    trainer.train(until=4)
    arrays, meta = load_checkpoint(trainer.run_dir / "last.safetensors")
    meta["model_config"]["n_embd"] = 32      # weights no longer fit the config
    from tinyllm.training.checkpoint import save_checkpoint

    save_checkpoint(trainer.run_dir / "last.safetensors", arrays, meta)
    with pytest.raises(CheckpointError, match="does not fit"):
        Trainer.resume(trainer.run_dir)


def test_block_size_larger_than_context(tmp_path):
    with pytest.raises(ValueError, match="larger than the model's context"):
        Trainer(TrainConfig(**{**TINY, "block_size": 64, "model_overrides": {"n_positions": 32}},
                            out=str(tmp_path)), quiet=True)


def test_bert_masked_lm_trains(tmp_path):
    cfg = TrainConfig(**{**TINY, "model": "bert", "steps": 8, "block_size": 32},
                      out=str(tmp_path))
    result = Trainer(cfg, quiet=True).train()
    assert result.status == "finished" and np.isfinite(result.best_val_loss)


def test_training_lowers_the_loss(tmp_path):
    cfg = TrainConfig(**{**TINY, "steps": 60, "eval_interval": 60, "lr": 3e-3},
                      out=str(tmp_path))
    trainer = Trainer(cfg, quiet=True)
    result = trainer.train()
    losses = [loss for _, loss in _losses(result.run_dir)]
    assert np.mean(losses[-10:]) < np.mean(losses[:5]) - 0.3
    assert (result.run_dir / "model" / "config.json").exists()


def test_unigram_entropy():
    assert unigram_entropy(np.array([0, 1, 0, 1]), 4) == pytest.approx(np.log(2))


@pytest.mark.parametrize("bad, message", [
    (dict(model="rnn"), "unknown model 'rnn'; accepted: gpt, bert"),
    (dict(tokenizer="words"), "unknown tokenizer 'words'"),
    (dict(steps=0), "steps must be a positive integer, got 0"),
    (dict(lr=5.0), "lr=5.0 is out of range"),
    (dict(steps=10, warmup_steps=20), "warmup_steps=20 is more than steps=10"),
    (dict(tokenizer="bpe", vocab_size=100), "vocab_size=100 is too small"),
])
def test_config_errors(bad, message):
    with pytest.raises(ValueError, match=message.replace("(", r"\(")):
        TrainConfig(**bad)


def test_bert_pretraining_objective_trains_both_heads_and_resumes(tmp_path):
    from tinyllm.models import BertForPreTraining
    from tinyllm.training.inference import load_run

    cfg = dict(TINY, model="bert", objective="mlm+nsp", steps=8, block_size=32)
    full = Trainer(TrainConfig(**cfg, out=str(tmp_path / "a")), quiet=True)
    assert isinstance(full.model, BertForPreTraining)
    start = full.model.cls.seq_relationship.weight.data.copy()
    full.train()
    assert not np.array_equal(start, full.model.cls.seq_relationship.weight.data)
    part = Trainer(TrainConfig(**cfg, out=str(tmp_path / "b")), quiet=True)
    part.train(until=4)
    Trainer.resume(part.run_dir, quiet=True).train()
    assert _losses(full.run_dir) == _losses(part.run_dir)
    assert isinstance(load_run(full.run_dir)[0], BertForPreTraining)


def test_the_pretraining_objective_needs_its_head(tmp_path):
    with pytest.raises(ValueError, match="'gpt' has no pretraining head; the families that "
                                         "have one: bert"):
        Trainer(TrainConfig(**TINY, objective="mlm+nsp", out=str(tmp_path)), quiet=True)
