"""Compute-optimal accounting (tinyllm.scaling.accounting): each step's settings, how an
IsoFLOP budget is counted (in full or as 6N), the warmup and beta2 reaching the runs, the
choice of beta2, the study's resume and command."""

import math

import pytest

from tinyllm.scaling import accounting as acc
from tinyllm.scaling.ladder import Rung
from tinyllm.scaling.plan import StudyError, isoflop_steps


def test_each_step_adds_one_correction():
    assert acc.step_settings("kaplan", 0.999) == {"isoflop_count": "6n",
                                                  "warmup_steps": acc.KAPLAN_WARMUP,
                                                  "beta2": 0.95}
    assert acc.step_settings("head", 0.999)["isoflop_count"] == "full"
    assert acc.step_settings("head", 0.999)["warmup_steps"] == acc.KAPLAN_WARMUP
    assert acc.step_settings("warmup", 0.999) == {"isoflop_count": "full",
                                                  "warmup_steps": None, "beta2": 0.95}
    assert acc.step_settings("beta2", 0.999)["beta2"] == 0.999
    with pytest.raises(StudyError, match="unknown accounting step 'chinchilla'; accepted: "
                       "kaplan, head, warmup, beta2"):
        acc.step_settings("chinchilla")


def test_a_6n_budget_buys_more_steps_than_the_full_count():
    """6 N leaves out attention and the head, so the same budget trains a rung longer, by the
    ratio of the two counts."""
    rung = Rung.from_width(16)
    full = isoflop_steps(rung, 1e10, 38, 64, 32)
    six_n = isoflop_steps(rung, 1e10, 38, 64, 32, count="6n")
    ratio = rung.flops_per_token(38, 64) / (6 * rung.non_embedding_params())
    assert six_n / full == pytest.approx(ratio, rel=0.01) and ratio > 1.5
    with pytest.raises(StudyError, match="unknown IsoFLOP count 'kaplan'; accepted: full, 6n"):
        isoflop_steps(rung, 1e10, 38, 64, 32, count="kaplan")


def test_step_plans_carry_warmup_and_beta2_to_every_run():
    budget = acc.get_budget("default")
    kaplan = acc.step_plan(budget, "kaplan")
    tuned = acc.step_plan(budget, "beta2", 0.999)
    assert {s.sweep for s in kaplan.specs} == {"isoflop"} and len(kaplan.specs) == 20
    assert all(s.warmup_steps == min(acc.KAPLAN_WARMUP, s.steps) and s.beta2 == 0.95
               for s in kaplan.specs)
    assert all(s.warmup_steps == min(100, s.steps // 10) and s.beta2 == 0.999
               for s in tuned.specs)
    steps = {s.run_id: s.steps for s in tuned.specs}
    assert all(steps.get(s.run_id, 0) < s.steps for s in kaplan.specs)   # 6N: longer runs


def test_best_beta2_wins_most_widths_ties_to_the_larger():
    rows = [{"width": w, "beta2": b, "val_loss_nats": loss} for w, b, loss in [
        (16, 0.95, 2.0), (16, 0.99, 1.9), (16, 0.999, 1.95),
        (48, 0.95, 1.8), (48, 0.99, 1.7), (48, 0.999, 1.6),
        (96, 0.95, 1.5), (96, 0.99, 1.4), (96, 0.999, 1.4)]]
    assert acc.best_beta2(rows) == 0.999          # w48 and (a tie, to the larger) w96
    assert acc.best_beta2(rows[:3]) == 0.99
    with pytest.raises(StudyError, match="no beta2 runs"):
        acc.best_beta2([])


def test_tiny_study_runs_resumes_and_reports(tmp_path, monkeypatch):
    budget = acc.get_budget("tiny")
    rows = acc.run_accounting(budget, tmp_path, jobs=0)
    assert [r["step"] for r in rows] == [*acc.STEPS, "beta2-runs"]
    assert len(rows[-1]["runs"]) == len(budget.beta2_widths) * len(acc.BETA2S)
    for r in rows[:-1]:                      # the tiny curves may have no minimum: said so
        assert r.get("note") or math.isfinite(r["a"])
    text = (tmp_path / "summary.txt").read_text()
    assert "kaplan" in text and "beta2 tuning" in text

    def no_training(*args, **kwargs):
        raise AssertionError("a finished run was trained again")
    monkeypatch.setattr("tinyllm.scaling.runner.run_one", no_training)
    again = acc.run_accounting(budget, tmp_path, jobs=0)
    assert again[-1] == rows[-1]


def test_unknown_budget_and_missing_results_are_refused(tmp_path):
    with pytest.raises(StudyError, match="unknown accounting budget 'huge'; accepted: tiny, "
                       "default"):
        acc.get_budget("huge")
    with pytest.raises(StudyError, match="does not hold the four steps' IsoFLOP sweeps"):
        acc.load_accounting(tmp_path)


@pytest.mark.parametrize("argv, message", [
    (["--budget", "nope"], "unknown accounting budget 'nope'; accepted: tiny, default"),
    (["--jobs", "0"], "--jobs 0 must be 1 or more"),
    (["--plot", "/nonexistent/dir"], "does not hold the four steps' IsoFLOP sweeps"),
])
def test_command_refuses_bad_input(argv, message, capsys):
    from tinyllm.cli import main

    assert main(["accounting-study", *argv]) == 2
    assert message in capsys.readouterr().err


def test_a_study_written_before_these_settings_resumes_and_another_is_refused(tmp_path):
    """study.json from before warmup_steps / beta2 / isoflop_count existed is the same study
    (it used the values they default to); a study with another beta2 is not."""
    import json

    from tinyllm.scaling.plan import BUDGETS, plan_study, replace_settings
    from tinyllm.scaling.store import ResultsStore

    plan = plan_study(BUDGETS["tiny"], ["markov"], task=False)
    store = ResultsStore(tmp_path)
    store.open(plan)
    meta = json.loads((tmp_path / "study.json").read_text())
    for key in ("warmup_steps", "beta2"):
        del meta["budget"][key]
    for key in ("markov", "text"):
        del meta["budget"][key]["isoflop_count"]
    (tmp_path / "study.json").write_text(json.dumps(meta))
    store.open(plan)                                            # accepted: the same study
    other = plan_study(replace_settings(BUDGETS["tiny"], beta2=0.95), ["markov"], task=False)
    with pytest.raises(StudyError, match="other settings than this one"):
        store.open(other)


def test_shipped_study_is_complete_and_counts_as_each_step_says():
    """The shipped study: beta2 chosen by its own tuning runs and used by the last step; each
    step's 20 IsoFLOP runs spend their budget as the step counts it (6N for kaplan, in full
    after); every step has a frontier; counting the head lowers the tokens per parameter."""
    import json

    from tinyllm.scaling.results import load_results

    rows = {r["step"]: r for r in acc.load_accounting("shipped", n_boot=20)}
    meta = json.loads((acc.SHIPPED / "study.json").read_text())
    assert meta["beta2"] == acc.best_beta2(rows["beta2-runs"]["runs"]) == 0.999
    for step in acc.STEPS:
        settings = acc.step_settings(step, meta["beta2"])
        budget = json.loads((acc.SHIPPED / step / "study.json").read_text())["budget"]
        assert budget["beta2"] == settings["beta2"]
        assert budget["warmup_steps"] == settings["warmup_steps"]
        runs = load_results(acc.SHIPPED / step).rows("isoflop", "hmm")
        assert len(runs) == 20
        spent = "flops_6n" if settings["isoflop_count"] == "6n" else "flops"
        for r in runs:                                  # whole steps: within half a step
            assert abs(r[spent] / r["flops_budget"] - 1) < 0.5 / r["steps"] + 1e-9
        assert math.isfinite(rows[step]["a"]) and len(rows[step]["minima"]) >= 2
    assert rows["kaplan"]["tokens_per_param"] > rows["head"]["tokens_per_param"]
