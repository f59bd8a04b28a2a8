"""`tinyllm train --init-from SOURCE`: continued language-model training from a run or a
model directory, into a new run, the source untouched."""

import numpy as np
import pytest

from tinyllm.cli import main
from tinyllm.models.checkpoint import CheckpointError
from tinyllm.training import TrainConfig, Trainer, load_checkpoint
from tinyllm.training.sources import load_source

TEXT = "the cat sat on the mat. a dog ran to the log. " * 300


@pytest.fixture()
def source(tmp_path):
    corpus = tmp_path / "first.txt"
    corpus.write_text(TEXT)
    config = TrainConfig(data=str(corpus), preset="nano", steps=6, eval_interval=3,
                         eval_iters=2, batch_size=4, sample_tokens=0, out=str(tmp_path / "runs"))
    return Trainer(config, quiet=True).train().run_dir


def _snapshot(directory):
    return {p: p.read_bytes() for p in sorted(directory.rglob("*")) if p.is_file()}


def test_init_from_a_run_starts_from_its_weights_in_a_new_run(source, tmp_path):
    before = _snapshot(source)
    other = tmp_path / "second.txt"
    other.write_text("a cat ran on the log. " * 300)         # only characters the source knows
    out = tmp_path / "runs"
    assert main(["train", "--init-from", str(source), "--data", str(other), "--steps", "4",
                 "--eval-interval", "2", "--eval-iters", "2", "--batch-size", "4",
                 "--out", str(out), "--quiet"]) == 0
    run = out / "gpt-nano-first-on-second"
    assert (run / "last.safetensors").is_file()
    assert _snapshot(source) == before                          # the source is untouched
    meta = load_checkpoint(run / "last.safetensors")[1]
    assert meta["train_config"]["init_from"] == str(source)
    assert meta["tokenizer"] == load_checkpoint(source / "best.safetensors")[1]["tokenizer"]


def test_the_new_run_begins_with_the_source_weights(source, tmp_path):
    config = TrainConfig(data=str(source.parent.parent / "first.txt"), init_from=str(source),
                         steps=2, eval_interval=2, eval_iters=1, batch_size=4, sample_tokens=0,
                         out=str(tmp_path / "b"))
    trainer = Trainer(config, quiet=True)
    best = load_checkpoint(source / "best.safetensors")[0]
    for name, value in trainer.model.state_dict().items():
        assert np.array_equal(value, best["model." + name]), name


def test_the_new_run_records_the_source_tokenizer(tmp_path, capsys):
    """A word-level source continued without --tokenizer: the new run says (and records) the
    word tokenizer it reads with, not the default character one."""
    corpus = tmp_path / "words.txt"
    corpus.write_text(TEXT)
    first = Trainer(TrainConfig(data=str(corpus), preset="nano", tokenizer="word", steps=2,
                                eval_interval=2, eval_iters=1, batch_size=4, sample_tokens=0,
                                out=str(tmp_path / "a")), quiet=True).train().run_dir
    assert main(["train", "--init-from", str(first), "--data", str(corpus), "--steps", "2",
                 "--eval-interval", "2", "--eval-iters", "1", "--batch-size", "4",
                 "--out", str(tmp_path / "b"), "--name", "again"]) == 0
    said = capsys.readouterr()
    assert "word tokenizer" in said.out + said.err
    meta = load_checkpoint(tmp_path / "b" / "again" / "last.safetensors")[1]
    assert meta["train_config"]["tokenizer"] == "word"


def test_init_from_a_model_directory(source, tmp_path):
    loaded = load_source(source / "model")
    assert loaded.kind == "model directory" and loaded.family.name == "gpt"
    config = TrainConfig(data=str(source.parent.parent / "first.txt"),
                         init_from=str(source / "model"), steps=2, eval_interval=2,
                         eval_iters=1, batch_size=4, sample_tokens=0, out=str(tmp_path / "c"))
    assert Trainer(config, quiet=True).train().status == "finished"


@pytest.mark.parametrize("extra, message", [
    (["--preset", "tiny"], "takes the model's size from it; drop --preset"),
    (["--model", "lstm"], "holds a gpt model, but this run trains a lstm"),
])
def test_init_from_refuses_contradictions(source, tmp_path, capsys, extra, message):
    args = ["train", "--init-from", str(source), "--data", str(source.parent.parent /
            "first.txt"), "--out", str(tmp_path / "x"), "--quiet", *extra]
    assert main(args) == 2
    assert message in capsys.readouterr().err


def test_text_the_source_cannot_read_is_refused_before_training(source, tmp_path, capsys):
    other = tmp_path / "zebra.txt"
    other.write_text("ZEBRA! " * 500)
    assert main(["train", "--init-from", str(source), "--data", str(other),
                 "--out", str(tmp_path / "y"), "--quiet"]) == 2
    err = capsys.readouterr().err
    assert "characters the tokenizer of" in err and "'!ABERZ'" in err
    assert not (tmp_path / "y" / "gpt-nano-first-on-zebra").exists()


def test_a_source_that_is_neither_is_refused(tmp_path, capsys):
    (tmp_path / "empty").mkdir()
    with pytest.raises(CheckpointError, match="neither a tinyllm run directory"):
        load_source(tmp_path / "empty")
    assert main(["train", "--init-from", str(tmp_path / "empty"), "--out",
                 str(tmp_path / "z"), "--quiet"]) == 2
    assert "neither a tinyllm run directory" in capsys.readouterr().err
