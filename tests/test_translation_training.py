"""Translation runs: `tinyllm train --model seq2seq|lstm-seq2seq --data TASK`, resume, eval,
`tinyllm translate`, and their bad-input cases (one line, exit 2)."""

import numpy as np
import pytest

from tinyllm.cli import main
from tinyllm.training import TrainConfig, Trainer, load_checkpoint
from tinyllm.training.translation import TranslationTrainer, evaluate_translation, translate

SYMBOLS = list("abcdef")


@pytest.fixture(scope="module")
def reverse_task(tmp_path_factory):
    """source<TAB>target: a few symbols, and the same symbols reversed and in upper case."""
    root = tmp_path_factory.mktemp("mt")
    rng = np.random.default_rng(0)
    lines = set()
    while len(lines) < 600:
        words = list(rng.choice(SYMBOLS, size=rng.integers(2, 5)))
        lines.add(f"{' '.join(words)}\t{' '.join(w.upper() for w in reversed(words))}")
    path = root / "reverse.tsv"
    path.write_text("\n".join(sorted(lines)) + "\n")
    return path


def _config(path, out, model="seq2seq", **kw):
    options = dict(model=model, preset="micro", data=f"tsv:{path}", steps=300,
                   batch_size=32, lr=3e-3, eval_interval=150, eval_iters=2, out=str(out),
                   seed=0)
    return TrainConfig(**{**options, **kw})


def test_a_seq2seq_config_makes_a_translation_trainer(reverse_task, tmp_path):
    trainer = Trainer(_config(reverse_task, tmp_path, steps=2), quiet=True)
    assert isinstance(trainer, TranslationTrainer)
    assert trainer.config.tokenizer == "word"
    assert trainer.run_dir.name == "seq2seq-micro-reverse"
    # trained on each source and target apart: no line break the model could learn to write
    assert not any("\n" in piece for piece in trainer.tokenizer.pieces)


@pytest.mark.parametrize("model, lr", [("seq2seq", 3e-3), ("lstm-seq2seq", 1e-2)])
def test_both_families_learn_to_reverse(model, lr, reverse_task, tmp_path, capsys):
    config = _config(reverse_task, tmp_path, model=model, preset="tiny", lr=lr)
    result = Trainer(config, quiet=True).train()
    assert result.status == "finished"
    assert result.last_eval["val_exact_match"] >= 0.9, result.last_eval
    scores = evaluate_translation(result.run_dir, "test", num_beams=3)
    assert scores["exact_match"] >= 0.9 and scores["bleu"] > 80
    assert translate(result.run_dir, ["a b c d"], num_beams=2) == ["D C B A"]


def test_resume_continues_bit_for_bit(reverse_task, tmp_path):
    whole = Trainer(_config(reverse_task, tmp_path / "a", steps=12, eval_interval=6),
                    quiet=True)
    whole.train()
    half = Trainer(_config(reverse_task, tmp_path / "b", steps=12, eval_interval=6),
                   quiet=True)
    half.train(until=6)
    resumed = Trainer.resume(half.run_dir, quiet=True)
    assert isinstance(resumed, TranslationTrainer)
    resumed.train()
    a, _ = load_checkpoint(whole.run_dir / "last.safetensors")
    b, _ = load_checkpoint(resumed.run_dir / "last.safetensors")
    for key in a:
        np.testing.assert_array_equal(a[key], b[key], err_msg=key)


def test_the_command_trains_translates_and_scores(reverse_task, tmp_path, capsys, monkeypatch):
    out = tmp_path / "runs"
    assert main(["train", "--model", "seq2seq", "--preset", "nano", "--data",
                 f"tsv:{reverse_task}", "--steps", "4", "--eval-interval", "4",
                 "--eval-iters", "1", "--out", str(out), "--quiet"]) == 0
    printed = capsys.readouterr().out
    assert "exact match" in printed and "tinyllm translate" in printed
    run = out / "seq2seq-nano-reverse"
    assert main(["translate", str(run), "--text", "a b", "--beam", "2"]) == 0
    assert capsys.readouterr().out.count("\n") == 1
    monkeypatch.setattr("sys.stdin", __import__("io").StringIO("a b\n\nc d e\n"))
    assert main(["translate", str(run)]) == 0
    assert capsys.readouterr().out.count("\n") == 2          # blank lines are skipped
    assert main(["eval", str(run), "--split", "validation"]) == 0
    assert "BLEU" in capsys.readouterr().out


def _error(args, capsys) -> str:
    assert main(args) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1, err
    return err


def test_bad_inputs_are_one_line(reverse_task, tmp_path, capsys):
    bad = tmp_path / "bad.tsv"
    bad.write_text("a b\tb a\nno tab here\n")
    assert "bad.tsv:2" in _error(["train", "--model", "seq2seq", "--data", f"tsv:{bad}",
                                  "--out", str(tmp_path)], capsys)
    assert "foo" in _error(["train", "--model", "seq2seq", "--data", "scan:foo", "--out",
                            str(tmp_path)], capsys)
    err = _error(["train", "--model", "seq2seq", "--data", f"tsv:{reverse_task}",
                  "--block-size", "3", "--out", str(tmp_path)], capsys)
    assert "positions" in err and "3" in err
    with pytest.raises(SystemExit) as exc:
        main(["translate", str(tmp_path), "--beam", "0"])
    assert exc.value.code == 2
    # a decoder-only run cannot translate
    text = tmp_path / "text.txt"
    text.write_text("abc def " * 200)
    assert main(["train", "--preset", "nano", "--data", str(text), "--steps", "2",
                 "--eval-interval", "2", "--eval-iters", "1", "--out", str(tmp_path),
                 "--quiet"]) == 0
    capsys.readouterr()
    err = _error(["translate", str(tmp_path / "gpt-nano-text"), "--text", "abc"], capsys)
    assert "encoder-decoder" in err and "gpt" in err
    run = tmp_path / "seq2seq-nano-reverse"
    assert main(["train", "--model", "seq2seq", "--preset", "nano", "--data",
                 f"tsv:{reverse_task}", "--steps", "2", "--eval-interval", "2",
                 "--eval-iters", "1", "--out", str(tmp_path), "--quiet"]) == 0
    capsys.readouterr()
    assert "empty" in _error(["translate", str(run), "--text", "  "], capsys)
    assert "positions" in _error(["translate", str(run), "--text", "a " * 200], capsys)
