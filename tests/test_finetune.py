"""`tinyllm finetune`: a pre-trained run, a classification head, a labelled task; a new run
that trains, resumes bit for bit, evaluates and predicts, the source untouched."""

import json
import re
from pathlib import Path

import numpy as np
import pytest

from tinyllm.cli import main
from tinyllm.tokenizers import CharTokenizer, WordTokenizer
from tinyllm.training import TrainConfig, Trainer, load_checkpoint
from tinyllm.training.finetune import FineTuner, finetune_config
from tinyllm.training.inference import load_run
from tinyllm.training.sources import check_encodable

WORDS = ["cat", "dog", "mat", "log", "sat", "ran", "the", "a", "on", "to"]


def _text(rng, n):
    return " ".join(rng.choice(WORDS, size=n))


@pytest.fixture(scope="module")
def corpus(tmp_path_factory):
    root = tmp_path_factory.mktemp("ft")
    rng = np.random.default_rng(0)
    text = "\n".join(_text(rng, 8) for _ in range(600))
    path = root / "text.txt"
    path.write_text(text)
    # a task any model can learn: is "cat" in the text?
    rows = ["text,label"]
    for _ in range(240):
        words = list(rng.choice(WORDS[1:], size=5))
        label = "cat" if rng.random() < 0.5 else "none"
        if label == "cat":
            words[rng.integers(0, 5)] = "cat"
        rows.append(f"{' '.join(words)},{label}")
    task = root / "task.csv"
    task.write_text("\n".join(rows) + "\n")
    return root, path, task


@pytest.fixture(scope="module", params=["gpt", "bert"])
def source(request, corpus):
    root, text, _ = corpus
    config = TrainConfig(model=request.param, data=str(text), preset="nano", steps=4,
                         eval_interval=4, eval_iters=1, batch_size=4, block_size=32,
                         sample_tokens=0, out=str(root / "runs"))
    return Trainer(config, quiet=True).train().run_dir


def _snapshot(directory):
    return {p: p.read_bytes() for p in sorted(directory.rglob("*")) if p.is_file()}


def _config(source, corpus, tmp_path, **changes):
    options = dict(task=f"csv:{corpus[2]}", steps=30, eval_interval=10, batch_size=8,
                   lr=3e-3, out=str(tmp_path))
    return finetune_config(source, **{**options, **changes})


def test_finetuning_learns_the_task_in_a_new_run(source, corpus, tmp_path, capsys):
    before = _snapshot(source)
    args = ["finetune", str(source), "--task", f"csv:{corpus[2]}", "--steps", "150",
            "--eval-interval", "50", "--batch-size", "8", "--lr", "0.003", "--out",
            str(tmp_path), "--quiet"]
    assert main(args) == 0
    out = capsys.readouterr().out
    assert "test accuracy" in out
    run = tmp_path / f"{source.name}-task"
    assert _snapshot(source) == before                               # the source untouched
    records = [json.loads(line) for line in (run / "metrics.jsonl").read_text().splitlines()]
    evals = [r for r in records if r["kind"] == "eval"]
    assert len(evals) == 3 and evals[-1]["val_accuracy"] > 0.7
    meta = load_checkpoint(run / "last.safetensors")[1]
    assert meta["run_kind"] == "finetune" and meta["labels"] == ["cat", "none"]
    capsys.readouterr()
    assert main(["eval", str(run)]) == 0
    report = capsys.readouterr().out
    assert "accuracy" in report and "confusion matrix" in report
    assert main(["predict", str(run), "--text", "the cat sat on the mat"]) == 0
    label, prob = capsys.readouterr().out.split()
    assert label in ("cat", "none") and 0.5 <= float(prob) <= 1


def test_finetuning_resumes_bit_for_bit(source, corpus, tmp_path):
    full = FineTuner(_config(source, corpus, tmp_path / "a"), quiet=True)
    full.train()
    part = FineTuner(_config(source, corpus, tmp_path / "b"), quiet=True)
    part.train(until=15)
    FineTuner.resume(part.run_dir, quiet=True).train()
    a = load_checkpoint(full.run_dir / "last.safetensors")[0]
    b = load_checkpoint(part.run_dir / "last.safetensors")[0]
    assert a.keys() == b.keys() and all(np.array_equal(a[k], b[k]) for k in a)


@pytest.mark.parametrize("freeze", ["body", "embeddings"])
def test_frozen_weights_do_not_move(source, corpus, tmp_path, freeze):
    tuner = FineTuner(_config(source, corpus, tmp_path, freeze=freeze, steps=5), quiet=True)
    start = {k: v.copy() for k, v in tuner.model.state_dict().items()}
    tuner.train()
    end = tuner.model.state_dict()
    head = tuner.model.optional_prefixes
    for name, value in end.items():
        frozen = (not name.startswith(head)) if freeze == "body" else (
            "embed" in name or name.split(".")[-2] in ("wte", "wpe"))
        assert np.array_equal(value, start[name]) == frozen, name


def test_a_label_budget_trains_on_that_many_examples(source, corpus, tmp_path):
    tuner = FineTuner(_config(source, corpus, tmp_path, train_examples=16, steps=2), quiet=True)
    assert len(tuner.task.train) == 16 and tuner.run_dir.name.endswith("-n16")
    assert set(tuner.task.label_counts("train").values()) != {0}



def test_scores_are_taken_without_dropout(source, corpus, tmp_path):
    """The scores after training (what `tinyllm finetune` and the study report) are the
    evaluation-mode model's: the same twice, though the model trained with dropout 0.3 and
    is left in training mode."""
    tuner = FineTuner(_config(source, corpus, tmp_path, steps=2, dropout=0.3), quiet=True)
    tuner.train()
    assert tuner.model.training
    first, again = tuner.scores("test"), tuner.scores("test")
    assert first["loss"] == again["loss"] and tuner.model.training
    tuner.model.eval()
    assert tuner.objective.scores(tuner.model, "test", 8)["loss"] == first["loss"]


def test_a_shorter_block_keeps_the_first_position_rows(source, corpus, tmp_path):
    """--block-size below the source's context (32 here) fine-tunes with the first rows of the
    source's position table (BERT's and GPT's alike), the rest of the body unchanged."""
    tuner = FineTuner(_config(source, corpus, tmp_path, block_size=24, steps=1), quiet=True)
    from tinyllm.training.sources import load_source

    body = load_source(source).state
    mine = tuner.model.state_dict()
    cropped = [name for name, value in body.items() if name in mine
               and mine[name].shape != value.shape]
    assert len(cropped) == 1 and mine[cropped[0]].shape[0] == 24
    assert np.array_equal(mine[cropped[0]], body[cropped[0]][:24])
    assert tuner.model.config.block_size == 24
    assert tuner.train().status == "finished"

def test_bad_inputs_are_one_line(source, corpus, tmp_path, capsys):
    def error(*args):
        assert main(["finetune", *args, "--out", str(tmp_path), "--quiet"]) == 2
        err = capsys.readouterr().err
        assert err.count("\n") == 1, err
        return err

    assert "unknown task" in error(str(source), "--task", "sentiment140")
    assert "neither a tinyllm run directory" in error(str(tmp_path), "--task",
                                                       f"csv:{corpus[2]}")
    assert "needs a SOURCE" in error("--task", f"csv:{corpus[2]}")
    odd = tmp_path / "odd.csv"
    odd.write_text("text,label\nZEBRA!,x\nzebra?,y\n" * 5)
    assert "never saw" in error(str(source), "--task", f"csv:{odd}")


def test_a_family_without_the_head_is_refused(corpus, tmp_path, capsys):
    root, text, task = corpus
    config = TrainConfig(model="lstm", data=str(text), preset="nano", steps=2, eval_interval=2,
                         eval_iters=1, batch_size=2, sample_tokens=0, out=str(tmp_path))
    lstm = Trainer(config, quiet=True).train().run_dir
    assert main(["finetune", str(lstm), "--task", f"csv:{task}", "--out", str(tmp_path),
                 "--quiet"]) == 2
    assert "'lstm' has no sequence-classification head" in capsys.readouterr().err


def test_lora_trains_only_adapters_and_the_head_and_saves_the_adapter_alone(source, corpus,
                                                                          tmp_path, capsys):
    tuner = FineTuner(_config(source, corpus, tmp_path, lora_rank=4, steps=10), quiet=True)
    trained = {n for n, p in tuner.model.named_parameters() if p.requires_grad}
    head = tuple(tuner.model.optional_prefixes)
    assert trained and all("lora_" in n or n.startswith(head) for n in trained)
    start = {k: v.copy() for k, v in tuner.model.state_dict().items()}
    tuner.train()
    moved = {k for k, v in tuner.model.state_dict().items() if not np.array_equal(v, start[k])}
    assert moved <= trained and any("lora_B" in k for k in moved)
    run = tuner.run_dir
    assert (run / "adapter" / "adapter_config.json").is_file()
    adapter = (run / "adapter" / "adapter_model.safetensors").stat().st_size
    assert adapter < (run / "model" / "model.safetensors").stat().st_size / 4
    capsys.readouterr()
    assert main(["eval", str(run)]) == 0 and "accuracy" in capsys.readouterr().out
    head_class = type(tuner.model)
    merged = head_class.from_pretrained(run / "model")           # the merged weights load
    assert merged.num_params() == sum(v.size for k, v in start.items() if "lora_" not in k)


def test_from_scratch_keeps_the_architecture_and_not_the_weights(source, corpus, tmp_path):
    tuner = FineTuner(_config(source, corpus, tmp_path, from_scratch=True, steps=2), quiet=True)
    best = load_checkpoint(source / "best.safetensors")[0]
    body = {k: v for k, v in tuner.model.state_dict().items() if "model." + k in best}
    assert body and not all(np.array_equal(v, best["model." + k]) for k, v in body.items())
    assert tuner.run_dir.name.endswith("-scratch")


@pytest.mark.parametrize("tokenizer, expected", [
    (CharTokenizer().train("where is mary?"),
     "4 characters the tokenizer of src never saw: 'JWno'"),
    (WordTokenizer().train("where is mary?"),
     "2 words the tokenizer of src never saw: ' John', 'Where'"),
])
def test_unseen_pieces_are_named_as_the_tokenizer_cuts_them(tokenizer, expected):
    text = "Where is John?"
    with pytest.raises(ValueError, match=re.escape(expected)):
        check_encodable(tokenizer, tokenizer.encode(text), text, "the task", Path("src"))
    check_encodable(tokenizer, tokenizer.encode("where is mary?"), "where is mary?", "the task",
                    Path("src"))     # nothing unseen: no error


# ---------------------------------------------------------------------- generative classifier
@pytest.fixture(scope="module")
def gpt_source(corpus):
    root, text, _ = corpus
    config = TrainConfig(model="gpt", data=str(text), preset="nano", steps=40,
                         eval_interval=40, eval_iters=1, batch_size=8, block_size=32,
                         sample_tokens=0, out=str(root / "gpt-runs"))
    return Trainer(config, quiet=True).train().run_dir


def test_the_generative_classifier_is_bayes_rule_over_the_lm(gpt_source, corpus, tmp_path):
    """Its logits are log P(k) + sum over the text's tokens of log P_LM(token | label k's line
    and the tokens before), recomputed here from the model's logits one text at a time."""
    from tinyllm.training.task_objectives import GenerativeClassification

    tuner = FineTuner(_config(gpt_source, corpus, tmp_path, classifier="generative",
                              steps=2), quiet=True)
    objective, model, tok = tuner.objective, tuner.model, tuner.tokenizer
    model.eval()                                                      # no dropout
    assert isinstance(objective, GenerativeClassification)
    task = objective.task
    logits = objective.logits(model, "test", batch_size=7, n=9)                   # (9, K)
    counts = np.bincount(task.label_ids("train"), minlength=task.num_labels) + 1
    for i, ex in enumerate(task.test[:9]):
        for k, label in enumerate(task.labels):
            prefix, body = tok.encode(f"{label}\n"), tok.encode(f"{ex.text}\n")
            ids = np.array([prefix + body])
            out = model(ids[:, :-1]).logits.data[0]                               # (T, V)
            logp = out - np.logaddexp.reduce(out, axis=-1, keepdims=True)
            want = sum(logp[len(prefix) - 1 + j, t] for j, t in enumerate(body))
            want += np.log(counts[k] / counts.sum())
            assert logits[i, k] == pytest.approx(want, rel=1e-5, abs=1e-4)
    batch = objective.encode("train", [0, 1])
    for labels, ex in zip(batch["labels"], task.train[:2]):            # the text alone counts
        assert tok.decode(labels[labels != -100]) == ex.text + "\n"


def test_the_generative_classifier_learns_evaluates_and_predicts(gpt_source, corpus, tmp_path,
                                                                 capsys):
    """Only a text with "cat" holds a "c": the LM must learn that the label's line decides
    whether a "c" may follow (the nano model needs ~1,000 steps to)."""
    args = ["finetune", str(gpt_source), "--task", f"csv:{corpus[2]}", "--classifier",
            "generative", "--steps", "1200", "--eval-interval", "600", "--batch-size", "8",
            "--lr", "0.01", "--out", str(tmp_path), "--name", "gen", "--quiet"]
    assert main(args) == 0
    run = tmp_path / "gen"
    evals = [json.loads(line) for line in (run / "metrics.jsonl").read_text().splitlines()]
    assert [r for r in evals if r["kind"] == "eval"][-1]["val_accuracy"] > 0.8
    capsys.readouterr()
    assert main(["eval", str(run)]) == 0 and "confusion matrix" in capsys.readouterr().out
    assert main(["predict", str(run), "--text", "the cat sat on the mat"]) == 0
    label, prob = capsys.readouterr().out.split()
    assert label == "cat" and 0.5 <= float(prob) <= 1


def test_the_generative_classifier_refuses_what_it_cannot_do(source, corpus, tmp_path, capsys):
    def error(*args):
        assert main(["finetune", str(source), "--task", f"csv:{corpus[2]}", "--classifier",
                     "generative", *args, "--out", str(tmp_path), "--quiet"]) == 2
        err = capsys.readouterr().err
        assert err.count("\n") == 1, err
        return err

    if source.name.startswith("bert"):
        assert "needs a causal language model" in error("--steps", "1")
    else:
        assert "nothing to train" in error("--freeze", "body")


def test_mean_pooling_fine_tunes_saves_and_reloads(source, corpus, tmp_path, capsys):
    """--pooling mean: the GPT's head reads the mean of every token's state; the run's model
    keeps the choice (eval and predict read it back). A BERT, or the generative classifier,
    has no such choice: one line, exit 2, nothing written."""
    args = ["finetune", str(source), "--task", f"csv:{corpus[2]}", "--pooling", "mean",
            "--steps", "150", "--eval-interval", "150", "--batch-size", "8", "--lr", "0.003",
            "--out", str(tmp_path), "--name", "mean", "--quiet"]
    if source.name.startswith("bert"):
        assert main(args) == 2
        assert "pooling 'mean' is how a GPT's classification head reads a text; a bert on " \
               "'csv:" in capsys.readouterr().err
        assert not list(tmp_path.iterdir())
        return
    assert main(args) == 0
    run = tmp_path / "mean"
    model, _, config = load_run(run)
    assert config.pooling == "mean" and model.config.classifier_pooling == "mean"
    assert json.loads((run / "model" / "config.json").read_text())["classifier_pooling"] \
        == "mean"
    evals = [json.loads(line) for line in (run / "metrics.jsonl").read_text().splitlines()]
    assert [r for r in evals if r["kind"] == "eval"][-1]["val_accuracy"] > 0.7
    capsys.readouterr()
    assert main(["predict", str(run), "--text", "the cat sat on the mat"]) == 0
    assert capsys.readouterr().out.split()[0] in ("cat", "none")
    assert main(args[:-5] + ["--classifier", "generative", "--out", str(tmp_path / "g"),
                             "--quiet"]) == 2
    assert "(GenerativeClassification) has no such choice" in capsys.readouterr().err
    assert not (tmp_path / "g").exists()


def test_the_vocabulary_check_reads_the_strings_as_encoded(corpus):
    """A source that never saw a newline can still read a task of single texts (nothing joins
    them with one), and a word-level check never glues two examples into one word."""
    from tinyllm.models import get_family
    from tinyllm.tasks import load_task
    from tinyllm.training.task_objectives import SequenceClassification

    task = load_task(f"csv:{corpus[2]}")
    for tokenizer in (CharTokenizer().train(" ".join(WORDS)), WordTokenizer().train(
            "\n".join(ex.text for ex in task.train + task.validation + task.test))):
        objective = SequenceClassification(task, tokenizer, get_family("gpt"), 32)
        texts = objective.texts()
        assert texts == [ex.text for ex in objective.examples()]
        ids = [i for text in texts for i in tokenizer.encode(text)]
        check_encodable(tokenizer, ids, texts, "the task", Path("src"))       # no error
