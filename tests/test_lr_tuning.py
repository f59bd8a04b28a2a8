"""Learning rates tuned per rung (`tinyllm.scaling.tuning`): the bracketing search, the runs a
tuned plan asks for, the rows a tuned study's fits read, and a tiny tuned study end to end."""

import json
import math

import numpy as np
import pytest

from tinyllm.cli import main
from tinyllm.scaling import BUDGETS, load_results, plan_study, shipped
from tinyllm.scaling.estimate import estimate_seconds
from tinyllm.scaling.plan import kaplan_lr, replace_settings
from tinyllm.scaling.store import ResultsStore
from tinyllm.scaling.tuning import (
    MAX_EXPONENT,
    lr_exponent,
    next_exponents,
    select_tuned,
    tried_exponents,
    tuned_exponents,
    tuning_rounds,
    tuning_table,
)

TINY = BUDGETS["tiny"]


def test_next_exponents_brackets_the_best_rate():
    assert next_exponents({}) == [0, 1]
    assert next_exponents({0: 2.0}) == [1]
    assert next_exponents({0: 2.0, 1: 1.9}) == [2]           # larger is better: go up
    assert next_exponents({0: 1.9, 1: 2.0}) == [-1]          # smaller is better: go down
    assert next_exponents({-1: 2.1, 0: 1.9, 1: 2.0}) == []   # bracketed
    assert next_exponents({0: 2.0, 1: 1.9, 2: 1.8}) == [3]
    assert next_exponents({0: 2.0, 1: math.inf}) == [-1]     # a diverged rate is the worst
    assert next_exponents({0: 2.0, 1: 2.0}) == [-1]          # a tie goes to the rule's side
    top = {k: 10.0 - k for k in range(0, MAX_EXPONENT + 1)}
    assert next_exponents(top) == []                         # at the limit: stop


def _row(corpus, width, k, loss, sweep="size", n=1000):
    return {"run_id": f"{sweep}-{corpus}-w{width}-k{k}", "sweep": sweep, "corpus": corpus,
            "n_embd": width, "non_embedding_params": n, "lr": kaplan_lr(n) * 2.0 ** k,
            "val_loss_nats": loss}


def test_lr_exponent_reads_the_rate_back():
    for k in range(-MAX_EXPONENT, MAX_EXPONENT + 1):
        assert lr_exponent(_row("a", 12, k, 1.0, n=7272)) == k


def test_select_tuned_keeps_each_widths_best_rate():
    size = [_row("a", 12, 0, 2.0), _row("a", 12, 1, 1.8), _row("a", 12, 2, 1.9),
            _row("a", 24, -1, 1.7), _row("a", 24, 0, 1.6), _row("a", 24, 1, 1.65),
            _row("b", 12, 0, 3.0)]
    isoflop = [_row("a", 12, 0, 2.2, "isoflop"), _row("a", 12, 1, 2.1, "isoflop"),
               _row("a", 24, 0, 2.0, "isoflop"), _row("b", 12, 0, 3.1, "isoflop")]
    task = [_row("task", 12, 0, 1.0, "task")]
    curves = [{"run_id": r["run_id"]} for r in size + isoflop + task]
    assert tuned_exponents(size) == {("a", 12): 1, ("a", 24): 0, ("b", 12): 0}
    assert tried_exponents(size)[("a", 24)] == {-1: 1.7, 0: 1.6, 1: 1.65}
    kept, kept_curves = select_tuned({"size": size, "isoflop": isoflop, "task": task}, curves)
    assert [r["run_id"] for r in kept["size"]] == ["size-a-w12-k1", "size-a-w24-k0",
                                                   "size-b-w12-k0"]
    assert [r["run_id"] for r in kept["isoflop"]] == ["isoflop-a-w12-k1", "isoflop-a-w24-k0",
                                                      "isoflop-b-w12-k0"]
    assert kept["task"] == task
    assert {c["run_id"] for c in kept_curves} == {
        r["run_id"] for rows in kept.values() for r in rows}
    table = tuning_table(size)
    assert "1.8000*" in table and "1.6000*" in table and "3.0000*" in table


def test_a_plan_at_tuned_rates():
    plan = plan_study(TINY, ["markov"], lr_exponents={("markov", 16): 2, ("markov", 24): -1})
    for spec in plan.specs:
        rule = kaplan_lr(spec.rung.non_embedding_params())
        k = {16: 2, 24: -1}.get(spec.width, 0) if spec.sweep != "task" else 0
        assert spec.lr == pytest.approx(rule * 2.0 ** k), spec.run_id
        assert spec.run_id.endswith({2: "-lr4x", -1: "-lr0.5x", 0: spec.run_id[-3:]}[k])
    ids = [s.run_id for s in plan.specs]
    assert len(set(ids)) == len(ids)
    assert [s.run_id for s in plan_study(TINY, ["markov"]).specs] == [
        s.run_id.replace("-lr4x", "").replace("-lr0.5x", "") for s in plan.specs]


def test_the_estimate_counts_three_rates_per_rung():
    plan = plan_study(TINY, ["markov"], task=False)
    tuned = plan_study(replace_settings(TINY, tune_lr=True), ["markov"], task=False)
    size = plan_study(replace_settings(TINY, markov=replace_settings(
        TINY.markov, isoflop_budgets=())), ["markov"], task=False)
    base, more = estimate_seconds(plan), estimate_seconds(tuned)
    # two extra size sweeps; step times are measured, so allow their noise
    assert more - base == pytest.approx(2 * estimate_seconds(size), rel=0.5)


@pytest.fixture(scope="module")
def tuned_study(tmp_path_factory):
    out = tmp_path_factory.mktemp("tuned")
    code = main(["scaling", "--budget", "tiny", "--data", "markov", "--no-task", "--tune-lr",
                 "--jobs", "0", "--out", str(out), "--bootstrap", "0"])
    return out, code


def test_a_tuned_study_brackets_every_rung_and_trains_isoflop_at_it(tuned_study, capsys):
    out, code = tuned_study
    assert code == 0
    store = ResultsStore(out)
    size, isoflop = store.rows("size"), store.rows("isoflop")
    tried = tried_exponents(size)
    assert set(tried) == {("markov", w) for w in TINY.widths}
    best = tuned_exponents(size)
    for key, losses in tried.items():
        k = best[key]
        assert losses[k] == min(losses.values())
        assert all(j in losses or abs(j) > MAX_EXPONENT for j in (k - 1, k + 1)), losses
        assert {0, 1} <= set(losses)
    for row in isoflop:                       # every IsoFLOP run at its width's tuned rate
        assert lr_exponent(row) == best[("markov", row["n_embd"])], row["run_id"]
    r = load_results(out)
    assert len(r.lr_runs) == len(size) > len(r.rows("size")) == len(TINY.widths)
    chosen = {row["n_embd"]: row["val_loss_nats"] for row in r.rows("size")}
    assert chosen == {w: min(tried[("markov", w)].values()) for w in TINY.widths}
    assert {c["run_id"] for c in r.curves} <= {row["run_id"] for row in
                                               r.rows("size") + r.rows("isoflop")}
    assert json.loads((out / "study.json").read_text())["budget"]["tune_lr"] is True
    assert (out / "plots" / "lr_tuning.png").is_file() or not _has_matplotlib()


def _has_matplotlib():
    try:
        import matplotlib  # noqa: F401
    except ImportError:
        return False
    return True


def test_a_tuned_study_resumes_without_training_again(tuned_study, capsys):
    out, _ = tuned_study
    before = (out / "size.csv").read_text(), (out / "isoflop.csv").read_text()
    plan = plan_study(replace_settings(TINY, tune_lr=True), ["markov"], task=False)
    assert tuning_rounds(plan, out, jobs=0) == {}
    assert main(["scaling", "--budget", "tiny", "--data", "markov", "--no-task",
                 "--tune-lr", "--jobs", "0", "--out", str(out), "--bootstrap", "0"]) == 0
    printed = capsys.readouterr().out
    assert "0 to go" in printed and "learning rates (validation loss" in printed
    assert ((out / "size.csv").read_text(), (out / "isoflop.csv").read_text()) == before


def test_an_untuned_directory_refuses_a_tuned_study(tmp_path, capsys):
    args = ["scaling", "--budget", "tiny", "--data", "markov", "--no-task", "--jobs", "0",
            "--out", str(tmp_path), "--bootstrap", "0"]
    assert main(args) == 0
    assert main(args + ["--tune-lr"]) == 2
    assert "other settings than this one" in capsys.readouterr().err


def test_doctests():
    import doctest

    from tinyllm.scaling import tuning

    assert doctest.testmod(tuning).failed == 0


def test_a_tuned_study_read_at_the_rule(tuned_study):
    out, _ = tuned_study
    rule = load_results(out, rates="rule")
    assert all(lr_exponent(r) == 0 for r in rule.rows("size") + rule.rows("isoflop"))
    assert len(rule.rows("size")) == len(TINY.widths)
    assert {r["n_embd"] for r in rule.rows("isoflop")} <= set(TINY.widths)
    with pytest.raises(Exception, match="unknown rates 'best'; accepted: tuned, rule"):
        load_results(out, rates="best")


def test_bracket_counts_a_failed_rate_as_the_worst():
    """One key whose loss falls with the rate until 4x diverges: the search tries 1x, 2x, 4x
    (fails) and stops with 2x bracketed; the failure is reported, not retried."""
    from tinyllm.scaling.tuning import bracket

    losses, calls = {}, []

    def train(todo, round_number):
        calls.append((round_number, todo))
        failed = {}
        for key, k in todo:
            if k >= 2:
                failed[key, k] = "diverged"
            else:
                losses[k] = 2.0 - 0.1 * k
        return failed

    failed = bracket(["a"], lambda: {"a": dict(losses)} if losses else {}, train)
    assert calls == [(1, [("a", 0), ("a", 1)]), (2, [("a", 2)])]
    assert failed == {("a", 2): "diverged"}


def test_the_shipped_v2_study_tuned_every_rung():
    """Every rung of the shipped v2 study has its best rate bracketed by rates tried on both
    sides, and its IsoFLOP runs trained at its width's tuned rate."""
    r = load_results(shipped("v2"))
    assert r.meta["budget"]["tune_lr"] is True
    tried = tried_exponents(r.lr_runs)
    best = tuned_exponents(r.lr_runs)
    assert len(tried) == 2 * len(r.meta["budget"]["widths"])
    for key, losses in tried.items():
        k = best[key]
        assert k - 1 in losses and k + 1 in losses, (key, losses)
    for row in r.rows("isoflop"):
        assert lr_exponent(row) == best[(row["corpus"], row["n_embd"])]
    assert np.isfinite(r.column("size", "val_loss_nats")).all()
