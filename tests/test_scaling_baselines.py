"""Baselines of the scaling study: n-grams and matched LSTMs on the study's own data."""

import json

import numpy as np
import pytest

from tinyllm.cli import main
from tinyllm.data import load_corpus, train_val_split
from tinyllm.models import LSTMLM, LSTMConfig, NGramLM
from tinyllm.scaling import BUDGETS, WIDTHS, Rung, StudyError, plan_study
from tinyllm.scaling import baselines as bl
from tinyllm.scaling.results import read_baselines
from tinyllm.scaling.store import ResultsStore, csv_text, load_meta, read_csv
from tinyllm.scaling.tuning import MAX_EXPONENT
from tinyllm.tokenizers import CharTokenizer

TEXT = "".join(f"def f{i % 7}(x):\n    return x * {i % 5} + {i % 3}\n" for i in range(400))


@pytest.fixture
def study(tmp_path):
    """A results directory with the tiny budget's study.json for a small text corpus."""
    path = tmp_path / "notes.txt"
    path.write_text(TEXT, encoding="utf-8")
    plan = plan_study(BUDGETS["tiny"], [str(path)], task=False)
    ResultsStore(tmp_path / "study").open(plan)
    return tmp_path / "study", path


@pytest.mark.parametrize("width", WIDTHS)
def test_matched_lstm_size(width):
    rung = Rung.from_width(width)
    layers, hidden = bl.match_lstm(rung, 109)
    model = LSTMLM(LSTMConfig(vocab_size=109, hidden_size=hidden, num_layers=layers))
    n = model.num_params(non_embedding=True)
    assert n == bl.lstm_non_embedding(hidden, layers, 109)
    target = rung.non_embedding_params()
    assert abs(n - target) / target < 0.07
    for other in (hidden - 1, hidden + 1):   # the nearest the hidden size can get
        assert abs(n - target) <= abs(bl.lstm_non_embedding(other, layers, 109) - target)
    assert layers == (1 if rung.non_embedding_params() < 400_000 else 2)


def test_lstm_lr_rule():
    assert bl.lstm_lr(2_000) == pytest.approx(1e-2)
    assert bl.lstm_lr(1_000_000) == pytest.approx(3e-3)
    assert 3e-3 < bl.lstm_lr(50_000) < 1e-2


def test_run_baselines_and_resume(study, monkeypatch):
    root, path = study
    rows = bl.run_baselines(root, lstm_widths=[12], orders=(1, 2), jobs=0)
    assert [r["run_id"] for r in rows] == ["ngram-notes-o1", "ngram-notes-o2",
                                           "lstm-notes-w12-l1"]
    on_disk = read_baselines(root / "baselines.csv")
    assert [r["run_id"] for r in on_disk] == [r["run_id"] for r in rows]
    # The n-gram scores the trainer's own validation split.
    text = load_corpus(str(path)).text
    ids = np.asarray(CharTokenizer().train(text).encode(text))
    train, val = train_val_split(ids, 0.1)
    assert on_disk[1]["val_loss_nats"] == pytest.approx(
        NGramLM(2, on_disk[1]["vocab_size"]).fit(train).cross_entropy(val))
    assert on_disk[1]["params"] == on_disk[1]["params_non_embedding"] > on_disk[0]["params"]
    # The LSTM sees the size sweep's token budget.
    lstm = on_disk[2]
    s = json.loads((root / "study.json").read_text())["budget"]["text"]
    assert lstm["tokens"] == s["size_steps"] * s["batch_size"] * s["block_size"]
    assert lstm["gpt_non_embedding_params"] == Rung.from_width(12).non_embedding_params()
    assert np.isfinite(lstm["val_loss_nats"]) and lstm["wall_s"] > 0
    assert not (root / "_baselines_work").exists()

    # Resume: nothing is redone; a missing row is redone alone.
    def boom(*args, **kwargs):
        raise AssertionError("a finished row was trained again")

    monkeypatch.setattr(bl, "lstm_row", boom)
    assert bl.run_baselines(root, lstm_widths=[12], orders=(1, 2), jobs=0) == []
    kept = [r for r in read_csv(root / "baselines.csv") if r["run_id"] != "ngram-notes-o1"]
    (root / "baselines.csv").write_text(csv_text(kept, bl.BASELINE_RUN_COLUMNS))
    again = bl.run_baselines(root, lstm_widths=[12], orders=(1, 2), jobs=0)
    assert [r["run_id"] for r in again] == ["ngram-notes-o1"]
    assert len(read_csv(root / "baselines.csv")) == 3


def test_errors(study, tmp_path, capsys):
    root, _ = study
    with pytest.raises(StudyError, match="accepted: notes"):
        bl.run_baselines(root, corpora=["markov"])
    with pytest.raises(StudyError, match="not a rung"):
        bl.run_baselines(root, lstm_widths=[40])
    with pytest.raises(StudyError, match="accepted: 1..5"):
        bl.run_baselines(root, orders=(6,), lstm_widths=[])
    assert main(["scaling", "--baselines-run", str(tmp_path / "missing")]) == 2
    err = capsys.readouterr().err
    assert "no study.json" in err and len(err.strip().splitlines()) == 1


def test_cli_baselines_run(study, capsys):
    root, _ = study
    assert main(["scaling", "--baselines-run", str(root), "--max-width", "12",
                 "--jobs", "0"]) == 0
    assert "row(s) written" in capsys.readouterr().out
    models = {r["model"] for r in read_baselines(root / "baselines.csv")}
    assert models == {"n-gram", "LSTM"}


def test_tuned_lstms_bracket_their_rate_and_resume(study, monkeypatch):
    """With tune_lr each LSTM is trained at powers of 2 of `lstm_lr` until its best rate has
    a tried neighbour on each side; the results read back its best; a rerun trains nothing."""
    root, _ = study
    rows = bl.run_baselines(root, lstm_widths=[12, 16], orders=(), jobs=0, tune_lr=True)
    tried = bl.lstm_tried(rows)
    assert set(tried) == {("notes", "w12-l1"), ("notes", "w16-l1")}
    for losses in tried.values():
        best = min(losses, key=losses.get)
        assert {0, 1} <= set(losses)
        assert all(k in losses or abs(k) > MAX_EXPONENT for k in (best - 1, best + 1))
    for row in rows:
        rule = bl.lstm_lr(bl.lstm_non_embedding(row["hidden_size"], row["num_layers"],
                                                row["vocab_size"]))
        assert row["lr"] == pytest.approx(rule * 2.0 ** bl.lstm_exponent(row))
        assert row["run_id"].startswith("lstm-notes-w1")
    assert len({r["run_id"] for r in rows}) == len(rows)
    best = bl.best_baselines(read_csv(root / "baselines.csv"))
    assert sorted(r["val_loss_nats"] for r in best) == sorted(
        min(losses.values()) for losses in tried.values())

    def boom(*args, **kwargs):
        raise AssertionError("a finished LSTM was trained again")

    monkeypatch.setattr(bl, "lstm_row", boom)
    assert bl.run_baselines(root, lstm_widths=[12, 16], orders=(), jobs=0, tune_lr=True) == []
    # without tuning, the rule's run is there already: nothing to do either
    assert bl.run_baselines(root, lstm_widths=[12, 16], orders=(), jobs=0) == []


def test_best_baselines_keeps_one_lstm_per_rung():
    rows = [{"model": "n-gram", "corpus": "a", "rung": None, "val_loss_nats": 2.0},
            {"model": "LSTM", "corpus": "a", "rung": "w12-l1", "val_loss_nats": 2.2},
            {"model": "LSTM", "corpus": "a", "rung": "w12-l1", "val_loss_nats": 2.1},
            {"model": "LSTM", "corpus": "b", "rung": "w12-l1", "val_loss_nats": 2.3}]
    assert bl.best_baselines(rows) == [rows[0], rows[2], rows[3]]
    own = [{"model": "LSTM", "corpus": "a", "params": 9000, "val_loss_nats": 2.4},
           {"model": "LSTM", "corpus": "a", "params": 90000, "val_loss_nats": 2.0}]
    assert bl.best_baselines(own) == own           # a CSV of one's own: no rung, all kept
    n, layers, vocab = 20, 1, 10
    rule = bl.lstm_lr(bl.lstm_non_embedding(n, layers, vocab))
    tuned = [{"model": "LSTM", "corpus": "a", "rung": "w12-l1", "hidden_size": n,
              "num_layers": layers, "vocab_size": vocab, "lr": rule * 2.0 ** k,
              "val_loss_nats": loss} for k, loss in ((0, 2.3), (1, 2.1), (2, 2.2))]
    assert bl.best_baselines(tuned) == [tuned[1]]
    assert bl.best_baselines(tuned, rule=True) == [tuned[0]]


def test_baselines_summary_says_where_each_model_passes_the_other(tmp_path):
    from tinyllm.scaling.report import baselines_summary
    from tinyllm.scaling.results import Results

    def gpt(rung, n, loss):
        return {"run_id": f"size-a-{rung}", "sweep": "size", "corpus": "a", "rung": rung,
                "non_embedding_params": n, "val_loss_nats": loss}

    size = [gpt("w12-l1", 1_000, 2.5), gpt("w24-l1", 5_000, 2.1), gpt("w48-l2", 50_000, 1.7)]
    base = [{"model": "n-gram", "corpus": "a", "order": 3, "val_loss_nats": 1.9},
            {"model": "n-gram", "corpus": "a", "order": 2, "val_loss_nats": 2.2},
            {"model": "LSTM", "corpus": "a", "rung": "w12-l1", "val_loss_nats": 2.3, "lr": 1e-2},
            {"model": "LSTM", "corpus": "a", "rung": "w24-l1", "val_loss_nats": 1.95, "lr": 1e-2},
            {"model": "LSTM", "corpus": "a", "rung": "w48-l2", "val_loss_nats": 1.8, "lr": 5e-3}]
    r = Results(tmp_path, {"corpora": {"a": {}}}, {"size": size, "isoflop": [], "task": []},
                [], base)
    text = baselines_summary(r)
    assert "best n-gram: order 3, 1.9000" in text
    assert "the Transformer is below the LSTM from w48-l2 on" in text
    assert "the Transformer is below the best n-gram from w48-l2 on" in text
    assert "the LSTM is below the best n-gram from w48-l2 on" in text
    assert "1.9500  1.00e-02" in text
    r.baselines = base[2:]
    r.baselines[1] = {**base[3], "val_loss_nats": 2.0}
    r.sweeps["size"][1] = gpt("w24-l1", 5_000, 1.99)
    text = baselines_summary(r)
    assert "the Transformer is below the LSTM at w24-l1, w48-l2" not in text
    assert "the Transformer is below the LSTM from w24-l1 on" in text
    assert "best n-gram" not in text
    r.baselines = []
    assert baselines_summary(r) == ""


def test_first_below_names_a_crossing_that_does_not_hold():
    from tinyllm.scaling.report import _first_below

    assert _first_below("x", [("a", False), ("b", True), ("c", True)]) == "x from b on"
    assert _first_below("x", [("a", True), ("b", False), ("c", True)]) == "x at a, c"
    assert _first_below("x", [("a", False)]) == "x at no rung"


def test_an_interrupted_lstm_starts_over(study):
    """A run directory left by an interrupted try (a killed worker) is replaced, not an error."""
    root, path = study
    work = root / "_baselines_work"
    stale = work / bl.lstm_run_id("notes", Rung.from_width(12))
    stale.mkdir(parents=True)
    (stale / "train_config.json").write_text("{}")
    meta = json.loads((root / "study.json").read_text())
    row = bl.lstm_row("notes", str(path), Rung.from_width(12), meta["budget"]["text"], meta,
                      meta["corpora"]["notes"]["vocab_size"], str(work))
    assert np.isfinite(row["val_loss_nats"]) and not stale.exists()


def test_the_shipped_v2_lstms_are_tuned_rung_by_rung():
    """The shipped v2 study's baselines: a parameter-matched LSTM for every rung of both
    corpora, each at a learning rate bracketed by worse ones on both sides (as the
    Transformer's), the 5-gram and its lower orders beside them."""
    from tinyllm.scaling import shipped
    from tinyllm.scaling.tuning import best_exponent

    rows = read_csv(shipped("v2") / "baselines.csv")
    widths = load_meta(shipped("v2"))["budget"]["widths"]
    tried = bl.lstm_tried(rows)
    assert set(tried) == {(c, Rung.from_width(w).name) for c in ("hmm", "english")
                          for w in widths}
    for key, losses in tried.items():
        k = best_exponent(losses)
        assert all(np.isfinite(v) for v in losses.values()), key
        assert (k - 1 in losses or k - 1 < -MAX_EXPONENT) and (
            k + 1 in losses or k + 1 > MAX_EXPONENT), (key, losses)
    best = [r for r in bl.best_baselines(rows) if r["model"] == "LSTM"]
    assert len(best) == len(tried)
    orders = sorted((r["corpus"], r["order"]) for r in rows if r["model"] == "n-gram")
    assert orders == [(c, o) for c in ("english", "hmm") for o in range(1, 6)]


def test_a_failed_lstm_counts_as_the_worst_rate_and_the_search_goes_on(study, monkeypatch):
    """An LSTM that fails (here: its 2x rate) is reported, not retried in the search, and
    counted as the worst rate; the rest of the search goes on and is written."""
    root, _ = study
    real = bl.lstm_row

    def flaky(*args):
        if args[-1] == 1:
            raise FloatingPointError("loss is nan")
        return real(*args)

    monkeypatch.setattr(bl, "lstm_row", flaky)
    said = []
    with pytest.raises(RuntimeError, match=r"1 LSTM run\(s\) failed .*lstm-notes-w12-l1-lr2x: "
                                            r"FloatingPointError: loss is nan"):
        bl.run_baselines(root, lstm_widths=[12], orders=(), jobs=0, tune_lr=True,
                         log=said.append)
    assert any(line.startswith("FAILED lstm-notes-w12-l1-lr2x") for line in said)
    tried = bl.lstm_tried(read_csv(root / "baselines.csv"))[("notes", "w12-l1")]
    assert 0 in tried and 1 not in tried and -1 in tried     # the search went the other way
