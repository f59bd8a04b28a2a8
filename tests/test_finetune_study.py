"""The fine-tuning study (tinyllm.finetuning): baselines, the tiny study end to end with
resume, the shipped results, ULMFiT's comparison and the plot command."""

from __future__ import annotations

import dataclasses
import json
import math
import shutil
from pathlib import Path

import numpy as np
import pytest

from tinyllm.finetuning import (
    ALL,
    BUDGETS,
    RUN_COLUMNS,
    LogisticRegression,
    StudyError,
    TfidfFeatures,
    fit_logreg,
    fit_majority,
    labels_to_match,
    load_results,
    plan_study,
    run_study,
    runner,
)
from tinyllm.finetuning.plan import Budget, corpus_text, finetune_steps, text_digest
from tinyllm.finetuning.results import Results
from tinyllm.finetuning.store import PRETRAIN_COLUMNS, ResultsStore
from tinyllm.tasks import ClassificationTask, Example


def _toy_task() -> ClassificationTask:
    """Two labels told apart by their letters: a-words vs z-words (linearly separable)."""
    rng = np.random.default_rng(0)

    def text(letters):
        return "".join(rng.choice(list(letters), size=12))

    def examples(n, start):
        return [Example(text("abc"), "a") if (i + start) % 3 else Example(text("xyz"), "z")
                for i in range(n)]

    return ClassificationTask("toy", ["a", "z"], examples(30, 0), examples(9, 1),
                              examples(12, 2))


# ---------------------------------------------------------------------- baselines
def test_majority_class_scores_the_majority_fraction():
    task = _toy_task()
    model = fit_majority(task)
    gold = task.label_ids("test")
    counts = np.bincount(task.label_ids("train"), minlength=2)
    assert model.label == counts.argmax() == 0                     # "a" is 2 in 3 in training
    assert model.scores(task, "test")["accuracy"] == pytest.approx(np.mean(gold == 0))


def test_logistic_regression_separates_a_separable_task():
    task = _toy_task()
    model = fit_logreg(task, ngram_range=(1, 2), steps=60)
    assert model.scores(task, "test")["accuracy"] == 1.0
    assert model.scores(task, "test")["macro_f1"] == 1.0
    again = fit_logreg(task, ngram_range=(1, 2), steps=60)        # deterministic
    np.testing.assert_array_equal(model.model.weight.data, again.model.weight.data)


def test_logistic_regression_gradient_is_the_analytic_one():
    """autograd == closed form == central differences, float64, on a 5 x 4 problem, K=3."""
    rng = np.random.default_rng(1)
    x = rng.normal(size=(5, 4))
    y = np.array([0, 2, 1, 2, 0])
    model = LogisticRegression(4, 3, dtype=np.float64)
    model.weight.data[:] = rng.normal(size=(3, 4))
    model.bias.data[:] = rng.normal(size=3)
    model.loss(x, y).backward()
    dweight, dbias = model.analytic_gradient(x, y)
    np.testing.assert_allclose(model.weight.grad, dweight, rtol=1e-10, atol=1e-12)
    np.testing.assert_allclose(model.bias.grad, dbias, rtol=1e-10, atol=1e-12)
    eps = 1e-6
    for param, grad in ((model.weight, dweight), (model.bias, dbias)):
        numeric = np.zeros_like(param.data)
        for i in np.ndindex(param.data.shape):
            saved = param.data[i]
            param.data[i] = saved + eps
            up = model.loss(x, y).item()
            param.data[i] = saved - eps
            down = model.loss(x, y).item()
            param.data[i] = saved
            numeric[i] = (up - down) / (2 * eps)
        np.testing.assert_allclose(grad, numeric, rtol=1e-6, atol=1e-9)


def test_tfidf_rows_follow_the_formula():
    features = TfidfFeatures((1, 1), max_features=10).fit(["aab", "b"])
    assert list(features.vocabulary) == ["b", "a"]                  # df 2, then df 1
    np.testing.assert_allclose(features.idf, [1.0, math.log(3 / 2) + 1])
    row = features.transform(["aab"])[0]
    expected = np.array([1.0, 2 * (math.log(3 / 2) + 1)])
    np.testing.assert_allclose(row, expected / np.linalg.norm(expected), rtol=1e-6)
    with pytest.raises(ValueError, match="ngram_range"):
        TfidfFeatures((3, 2))


# ---------------------------------------------------------------------- the plan
def test_plan_steps_budgets_and_refusals():
    b = BUDGETS["default"]
    assert finetune_steps(b, 32) == b.min_steps
    assert finetune_steps(b, 10_000) == b.max_steps
    assert finetune_steps(b, 512) == math.ceil(b.epochs * 512 / b.batch_size)
    with pytest.raises(StudyError, match="babi"):
        plan_study(BUDGETS["tiny"], tasks=["babi"])
    with pytest.raises(StudyError, match="accepted"):
        plan_study(dataclasses.replace(BUDGETS["tiny"], sizes=("huge",)))


# ---------------------------------------------------------------------- the tiny study
@pytest.fixture(scope="module")
def tiny_study(tmp_path_factory):
    root = tmp_path_factory.mktemp("ft-tiny")
    plan = plan_study(BUDGETS["tiny"])
    report = run_study(plan, root, jobs=0)
    return plan, root, report


def test_tiny_study_writes_every_run(tiny_study):
    plan, root, report = tiny_study
    assert not report.failed
    store = ResultsStore(root)
    rows = store.rows()
    assert {r["run_id"] for r in rows} == {s.run_id for s in plan.runs}
    assert {r["run_id"] for r in store.rows("pretrain")} == {p.run_id for p in plan.pretrain}
    header = (root / "runs.csv").read_text().splitlines()[0].split(",")
    assert tuple(header) == RUN_COLUMNS
    assert tuple((root / "pretrain.csv").read_text().splitlines()[0].split(",")) == \
        PRETRAIN_COLUMNS
    for r in rows:
        assert 0.0 <= r["test_accuracy"] <= 1.0
        if r["method"] in ("pretrained", "scratch"):
            assert r["pretrain_tokens"] == plan.pretrain[0].tokens
    markov = [r for r in rows if r["task"] == "markov-source"]
    assert {r["bayes_test_accuracy"] for r in markov} == {plan.tasks["markov-source"]
                                                          .bayes_test_accuracy}
    assert not list((root / "_work").iterdir())                     # scratch dirs removed


def test_tiny_study_resumes_without_redoing_runs(tiny_study):
    plan, root, _ = tiny_study
    store = ResultsStore(root)
    again = run_study(plan, root, jobs=0)
    assert again.finished == [] and len(again.skipped) == len(plan.runs) + len(plan.pretrain)
    # lose one run (as if the study had stopped before writing it): only it runs again
    rows = store.rows()
    lost = next(r["run_id"] for r in rows if r["method"] == "pretrained")
    from tinyllm.finetuning.store import RUN_COLUMNS as columns
    from tinyllm.scaling.store import csv_text

    (root / "runs.csv").write_text(csv_text([r for r in rows if r["run_id"] != lost], columns))
    resumed = run_study(plan, root, jobs=0)
    assert resumed.finished == [lost] and not resumed.failed
    # a pre-trained model that is gone is trained again, the same, when a run still needs it
    before = {r["run_id"]: r for r in store.rows("pretrain")}[f"pretrain-{plan.pretrain[0].size}"]
    shutil.rmtree(store.pretrain_dir / plan.pretrain[0].size)
    rows = store.rows()
    lost = next(r["run_id"] for r in rows if r["size"] == plan.pretrain[0].size)
    (root / "runs.csv").write_text(csv_text([r for r in rows if r["run_id"] != lost], columns))
    resumed = run_study(plan, root, jobs=0)
    assert resumed.finished == [before["run_id"], lost] and not resumed.failed
    after = {r["run_id"]: r for r in store.rows("pretrain")}[before["run_id"]]
    assert after["val_loss_nats"] == before["val_loss_nats"]
    assert len(load_results(root).meta["sessions"]) == 4


def test_a_results_directory_refuses_another_study(tiny_study):
    _, root, _ = tiny_study
    other = plan_study(dataclasses.replace(BUDGETS["tiny"], lr=5e-4))
    with pytest.raises(StudyError, match="budget settings"):
        run_study(other, root, jobs=0)


def test_a_bpe_study_with_mean_pooling(tmp_path, monkeypatch):
    """The text budget's path: BPE tokens of the budget's vocabulary, the classification head
    reading the mean of every token's state (pretrained and scratch alike), logreg reading
    `logreg_chars` characters."""
    from tinyllm.training import finetune

    budget = dataclasses.replace(
        BUDGETS["tiny"], sizes=("nano",), tasks=("pydoc-topics",), tokenizer="bpe",
        pretrain_options=(("vocab_size", 300),), pooling="mean", logreg_chars=48)
    configs = []

    def recording(source, **options):
        configs.append(original(source, **options))
        return configs[-1]

    original = finetune.finetune_config
    monkeypatch.setattr(finetune, "finetune_config", recording)
    plan = plan_study(budget)
    assert not run_study(plan, tmp_path, jobs=0).failed
    tokenizer = json.loads((tmp_path / "pretrain" / "nano" / "tokenizer.json").read_text())
    assert tokenizer["type"] == "bpe"
    assert {r["vocab_size"] for r in ResultsStore(tmp_path).rows("pretrain")} == {300}
    assert sorted(c.pooling for c in configs) == ["mean"] * len(configs) and len(configs) == 4
    assert {c.from_scratch for c in configs} == {False, True}
    logreg = [r for r in ResultsStore(tmp_path).rows() if r["method"] == "logreg"]
    assert {r["block_size"] for r in logreg} == {48}
    assert all(r["features"].endswith("first 48 chars") for r in logreg)


def test_a_question_answering_study_trains_gpt_and_bert(tmp_path, monkeypatch):
    """bAbI in the study: a GPT and a BERT pre-trained per size on the word-level "babi"
    text; GPT writing the answer and BERT pointing at it, each pre-trained and from
    scratch; exact match as the accuracy; no classification baselines; its tables."""
    from tinyllm.finetuning.report import full_report

    plan = plan_study(BUDGETS["tiny-qa"])
    assert {p.run_id for p in plan.pretrain} == {"pretrain-nano", "pretrain-bert-nano"}
    report = run_study(plan, tmp_path, jobs=0)
    assert not report.failed
    rows = {r["method"]: r for r in ResultsStore(tmp_path).rows()}
    assert set(rows) == {"pretrained", "scratch", "extractive", "extractive-scratch"}
    assert rows["extractive"]["params"] != rows["pretrained"]["params"]      # BERT vs GPT
    for r in rows.values():
        assert 0.0 <= r["test_accuracy"] <= 1.0 and r["test_examples"] == 1000
    pre = {r["run_id"]: r for r in ResultsStore(tmp_path).rows("pretrain")}
    assert pre["pretrain-bert-nano"]["model"] == "bert"
    # the GPT in two stages: the "babi" text, then from there the "babi-tasks" text
    first, second = (json.loads((tmp_path / "pretrain" / name / "train_config.json").read_text())
                     for name in ("nano-stage1", "nano"))
    assert Path(first["data"]).name == "corpus.txt" and first["init_from"] is None
    assert Path(second["data"]).name == "continue.txt"
    assert Path(second["init_from"]).name == "nano-stage1"
    for config in (first, second):
        assert config["beta2"] == 0.95 and config["model_overrides"] == {
            "tie_word_embeddings": False}
    second_text = corpus_text(plan.budget, stage=2)
    assert (tmp_path / "pretrain" / "continue.txt").read_text() == second_text
    assert pre["pretrain-nano"]["steps"] == 4 + 3 and pre["pretrain-nano"]["tokens"] == 7 * 512
    assert pre["pretrain-bert-nano"]["steps"] == 3             # BERT: one stage
    assert not (tmp_path / "pretrain" / "bert-nano-stage1").exists()
    # interrupted in the second stage: the first is kept, the second trained again
    stage1 = tmp_path / "pretrain" / "nano-stage1" / "last.safetensors"
    before = stage1.stat().st_mtime_ns
    shutil.rmtree(tmp_path / "pretrain" / "nano")
    (tmp_path / "pretrain.csv").unlink()
    assert not run_study(plan, tmp_path, jobs=0).failed
    assert stage1.stat().st_mtime_ns == before
    assert (tmp_path / "pretrain" / "nano" / "model").is_dir()
    assert rows["extractive"]["pretrain_tokens"] == pre["pretrain-bert-nano"]["tokens"]
    # study.json records the second stage's text, and a study whose text differs is refused
    meta = load_results(tmp_path).meta
    assert meta["continue_text"] == {"corpora": ["babi-tasks"], "chars": len(second_text),
                                     "sha256": text_digest(second_text)}
    monkeypatch.setattr(runner, "corpus_text", lambda budget, stage=1: (
        corpus_text(budget) if stage == 1 else second_text + "Mary went to the garden.\n"))
    with pytest.raises(StudyError, match="second pre-training stage's text"):
        run_study(plan, tmp_path, jobs=0)
    text = full_report(load_results(tmp_path))
    assert "babi1-10k: test accuracy (exact match)" in text and "word tokens" in text
    assert "pre-training on babi, then (GPT) babi-tasks (word tokens;" in text
    assert "labels extractive-scratch needs to match extractive's" in text


# ---------------------------------------------------------------------- shipped results
def _shipped_folders():
    from tinyllm.finetuning.results import SHIPPED_ROOT

    return sorted(p for p in SHIPPED_ROOT.iterdir() if (p / "study.json").is_file())


@pytest.mark.parametrize("root", _shipped_folders(), ids=lambda p: p.name)
def test_shipped_results_hold_every_planned_run(root):
    """Every run the plan of the shipped budget asks for has its row (the budget rebuilt
    from study.json), with an accuracy in [0, 1], and every size its pre-training row."""
    results = load_results(root)
    assert results.budget == root.name
    header = (root / "runs.csv").read_text().splitlines()[0].split(",")
    assert tuple(header) == RUN_COLUMNS
    meta = results.meta["budget"]
    budget = Budget(**{k: tuple(v) if isinstance(v, list) else v for k, v in meta.items()})
    plan = plan_study(budget)
    rows = {r["run_id"]: r for r in results.runs}
    assert len(results.sizes()) >= 3
    for spec in plan.runs:
        assert spec.run_id in rows, spec.run_id
        assert 0 <= rows[spec.run_id]["test_accuracy"] <= 1
    assert {r["run_id"] for r in results.pretrain} == {p.run_id for p in plan.pretrain}
    assert results.meta["wall_s"] > 0
    # the texts it was pre-trained on are the ones this code builds for its budget
    assert results.meta["pretrain_corpus"]["sha256"] == text_digest(corpus_text(budget))
    if budget.continue_corpora:
        assert results.meta["continue_text"]["sha256"] == text_digest(
            corpus_text(budget, stage=2))
    else:
        assert "continue_text" not in results.meta


def test_labels_to_match_interpolates_in_log_labels():
    meta = {"budget": {"tasks": ["t"], "sizes": ["s"], "label_budgets": [32, 128, 512, ALL]}}
    runs = []
    for budget, n, pre, scratch in ((32, 32, 0.6, 0.4), (128, 128, 0.7, 0.5),
                                    (512, 512, 0.8, 0.7), (ALL, 2048, 0.85, 0.8)):
        for method, acc in (("pretrained", pre), ("scratch", scratch)):
            runs.append({"task": "t", "method": method, "size": "s", "label_budget": budget,
                         "train_examples": n, "test_accuracy": acc, "params": 10})
    results = Results(None, meta, runs)
    m = labels_to_match(results, "t", "s", 32)           # 0.6: between 128 (0.5) and 512 (0.7)
    assert m["labels"] == 256 and m["ratio"] == pytest.approx(8.0)
    m = labels_to_match(results, "t", "s", ALL)          # 0.85: never
    assert m["labels"] is None and "never" in m["note"]
    runs.append({"task": "t", "method": "majority", "size": None, "label_budget": 32,
                 "train_examples": 32, "test_accuracy": 0.6})
    m = labels_to_match(results, "t", "s", 32)           # no better than the majority class
    assert m["labels"] is None and "majority" in m["note"]


# ---------------------------------------------------------------------- the command
def test_plot_command_writes_its_pngs(tmp_path, capsys):
    pytest.importorskip("matplotlib")
    from tinyllm.cli import main

    assert main(["finetune-study", "--plot", "shipped", "--plot-dir", str(tmp_path)]) == 0
    for name in ("accuracy_vs_labels", "accuracy_vs_params"):
        assert (tmp_path / f"{name}.png").stat().st_size > 1000
        assert (tmp_path / f"{name}.svg").is_file()
    out = capsys.readouterr().out
    assert "labels scratch needs to match pretrained's" in out and "Bayes-optimal" in out
    assert "labels generative-scratch needs to match generative's" in out
    assert "chance" in out                        # the ULMFiT table flags chance-level cells


def test_command_rejects_an_unknown_results_directory(tmp_path, capsys):
    from tinyllm.cli import main

    assert main(["finetune-study", "--plot", str(tmp_path)]) == 2
    assert "no study.json" in capsys.readouterr().err
    assert main(["finetune-study", "--jobs", "-1", "--out", str(tmp_path / "x")]) == 2
    assert "--jobs -1" in capsys.readouterr().err and not (tmp_path / "x").exists()


def test_estimate_prints_the_plan_and_a_time(tmp_path, capsys):
    """--estimate plans and times a budget without training (the QA budget: GPT and BERT,
    word tokens) and writes nothing."""
    from tinyllm.cli import main

    out = tmp_path / "study"
    assert main(["finetune-study", "--budget", "tiny-qa", "--estimate", "--out", str(out)]) == 0
    assert not out.exists()
    out = capsys.readouterr().out
    assert "budget 'tiny-qa': GPT and BERT sizes nano (context 128 word tokens)" in out
    assert "babi1-10k: questions, 10000 train" in out and "estimated" in out
