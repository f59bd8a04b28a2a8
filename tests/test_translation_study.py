"""The translation study (tinyllm.translation): the plan and its time, resume after a crash or a
failure, atomic rows, the tables and figures from fake rows, the command's bad inputs, and the
tiny study end to end."""

from __future__ import annotations

import dataclasses
import json
import os

import pytest

from tinyllm.models import get_family
from tinyllm.translation import (
    BUDGETS,
    FAMILIES,
    PUBLISHED,
    RUN_COLUMNS,
    SCHEMA,
    SIZES,
    TASKS,
    Results,
    StudyError,
    load_results,
    plan_study,
    run_study,
)
from tinyllm.translation.report import full_report, readme_text, summary_table, task_table
from tinyllm.translation.results import SHIPPED_ROOT
from tinyllm.translation.store import ResultsStore

#: Parameters of each preset at V=256 (the models' documented counts), for fake rows.
PARAMS = {"nano": 12_032, "micro": 38_144, "tiny": 133_376, "mini": 547_072,
          "small": 1_421_568, "base": 4_202_752}
CALLS: list[str] = []


def fake_run(spec, budget, root) -> dict:
    """A run's row without training: scores that grow with size, the LSTM a little behind."""
    CALLS.append(spec.run_id)
    em = (SIZES.index(spec.size) + 1) / 10 - (0.05 if spec.family == "lstm-seq2seq" else 0)
    return {"run_id": spec.run_id, "task": spec.task, "family": spec.family, "size": spec.size,
            "params": PARAMS[spec.size], "vocab_size": 30, "block_size": 50,
            "train_pairs": 1000, "validation_pairs": 100, "test_pairs": 200,
            "steps": spec.steps, "batch_size": spec.batch_size, "lr": spec.lr,
            "warmup_steps": spec.warmup_steps, "dropout": spec.dropout, "train_loss": 1.0,
            "val_loss": 1.1, "val_exact_match": em, "val_pairs": 64, "test_exact_match": em,
            "test_bleu": 100 * em, "test_chrf": 100 * em, "test_scored": 200,
            "bleu_tokenize": "none", "train_s": 1.0, "test_s": 0.5, "wall_s": 1.5,
            "threads": 1, "seed": spec.seed, "version": "test", "schema": SCHEMA}


def failing_run(spec, budget, root) -> dict:
    if spec.size == "micro" and spec.family == "lstm-seq2seq":
        raise RuntimeError("the loss became nan")
    return fake_run(spec, budget, root)


def _small_plan():
    return plan_study(BUDGETS["tiny"], tasks=["scan:simple", "dates"])


# ---------------------------------------------------------------------- the plan
def test_default_plan_covers_every_task_family_and_size_once():
    plan = plan_study(BUDGETS["default"])
    b = plan.budget
    assert plan.tasks == TASKS and plan.families == FAMILIES
    assert len(b.sizes) >= 4 and b.sizes == ("nano", "micro", "tiny", "mini")
    keys = [(r.task, r.family, r.size) for r in plan.runs]
    assert len(keys) == len(set(keys)) == len(TASKS) * len(FAMILIES) * len(b.sizes)
    assert len({r.run_id for r in plan.runs}) == len(plan.runs)
    for r in plan.runs:
        assert r.steps == b.steps(r.size, r.task) > 0
        assert r.warmup_steps == round(b.warmup_fraction * r.steps) > 0
        assert r.dropout == 0.0                            # every model underfits here
        assert r.eval_iters * r.batch_size <= 512 and 32 <= r.batch_size <= 64
        assert r.max_test_pairs is None                    # the whole test split is scored
        assert 5e-4 <= r.lr <= 3e-3 and r.min_lr == pytest.approx(r.lr / 10)
        width = {"seq2seq": "d_model", "lstm-seq2seq": "hidden_size"}[r.family]
        sd = dict(r.model_overrides).get("init_std",
                                         dict(r.model_overrides).get("init_range", 0) / 3**0.5)
        assert sd == pytest.approx(get_family(r.family).preset(r.size)[width] ** -0.5,
                                   rel=1e-4)
    full = plan_study(BUDGETS["full"])
    assert full.budget.sizes == b.sizes                # the same ladder, trained longer
    assert [r.dropout for r in full.runs_of(task="dates", family="seq2seq")] == [0, 0, 0, 0]
    for size in b.sizes:
        for task in TASKS:
            assert full.budget.steps(size, task) > b.steps(size, task)


def test_plan_selections_and_refusals():
    plan = plan_study(BUDGETS["tiny"], tasks=["dates", "scan:simple"], families=["seq2seq"])
    assert plan.tasks == ("scan:simple", "dates")          # put in the study's order
    assert {r.family for r in plan.runs} == {"seq2seq"}
    assert plan.runs_of(task="dates")[0].run_id == "seq2seq-nano-dates"
    with pytest.raises(StudyError, match="accepted: scan:simple"):
        plan_study(BUDGETS["tiny"], tasks=["scan:around-right"])
    with pytest.raises(StudyError, match="accepted: seq2seq, lstm-seq2seq"):
        plan_study(BUDGETS["tiny"], families=["gpt"])
    with pytest.raises(StudyError, match="accepted: nano"):
        plan_study(dataclasses.replace(BUDGETS["tiny"], sizes=("huge",)))
    with pytest.raises(StudyError, match="no steps"):
        plan_study(dataclasses.replace(BUDGETS["tiny"], sizes=("nano", "mini")))
    with pytest.raises(StudyError, match="smallest first"):
        plan_study(dataclasses.replace(BUDGETS["tiny"], sizes=("micro", "nano")))


# ---------------------------------------------------------------------- resume
def test_a_study_writes_every_row_and_never_reruns_a_finished_one(tmp_path):
    plan = _small_plan()
    CALLS.clear()
    report = run_study(plan, tmp_path, jobs=0, run=fake_run)
    assert sorted(report.finished) == sorted(CALLS) == sorted(r.run_id for r in plan.runs)
    header = (tmp_path / "runs.csv").read_text().splitlines()[0].split(",")
    assert tuple(header) == RUN_COLUMNS
    rows = ResultsStore(tmp_path).rows()
    assert {r["run_id"] for r in rows} == {r.run_id for r in plan.runs}
    CALLS.clear()
    again = run_study(plan, tmp_path, jobs=0, run=fake_run)
    assert CALLS == [] and again.finished == [] and len(again.skipped) == len(plan.runs)
    assert ResultsStore(tmp_path).rows() == rows
    meta = json.loads((tmp_path / "study.json").read_text())
    assert meta["published"] == json.loads(json.dumps(PUBLISHED))
    assert len(meta["sessions"]) == 2 and meta["budget"]["name"] == "tiny"
    log = (tmp_path / "study.log").read_text()
    assert log.count("session:") == 2 and all(r.run_id in log for r in plan.runs)


def test_an_interrupted_study_resumes_where_it_stopped(tmp_path):
    plan = _small_plan()
    CALLS.clear()
    stop_at = 3

    def interrupted(spec, budget, root):
        if len(CALLS) == stop_at:
            raise KeyboardInterrupt                          # Ctrl-C in the fourth run
        return fake_run(spec, budget, root)

    with pytest.raises(KeyboardInterrupt):
        run_study(plan, tmp_path, jobs=0, run=interrupted)
    first = list(CALLS)
    kept = ResultsStore(tmp_path).done()
    assert kept == set(first) and len(kept) == stop_at
    CALLS.clear()
    report = run_study(plan, tmp_path, jobs=0, run=fake_run)
    assert set(CALLS) == {r.run_id for r in plan.runs} - kept     # none run twice
    assert sorted(report.skipped) == sorted(first)
    assert ResultsStore(tmp_path).done() == {r.run_id for r in plan.runs}
    assert len(load_results(root=tmp_path).meta["sessions"]) == 2  # the interrupted one too


def test_a_failed_run_is_reported_and_retried_alone(tmp_path):
    plan = _small_plan()
    report = run_study(plan, tmp_path, jobs=0, run=failing_run)
    failed = {r.run_id for r in plan.runs if r.size == "micro" and r.family == "lstm-seq2seq"}
    assert set(report.failed) == failed and "nan" in next(iter(report.failed.values()))
    assert ResultsStore(tmp_path).done() == {r.run_id for r in plan.runs} - failed
    assert "FAILED" in (tmp_path / "study.log").read_text()
    CALLS.clear()
    run_study(plan, tmp_path, jobs=0, run=fake_run)
    assert set(CALLS) == failed


def test_a_half_written_row_is_impossible(tmp_path, monkeypatch):
    plan = _small_plan()
    run_study(plan, tmp_path, jobs=0, run=fake_run)
    store = ResultsStore(tmp_path)
    before = store.csv_path.read_bytes()
    row = dict(fake_run(plan.runs[0], plan.budget, tmp_path), run_id="extra")
    import tinyllm._io as io_module

    def crash(*args):
        raise KeyboardInterrupt                              # killed between write and rename

    monkeypatch.setattr(io_module.os, "replace", crash)
    with pytest.raises(KeyboardInterrupt):
        store.add(row)
    monkeypatch.undo()
    assert store.csv_path.read_bytes() == before
    assert [p.name for p in tmp_path.iterdir() if p.name.endswith(".tmp")] == []
    store.add(row)
    assert "extra" in store.done() and len(store.rows()) == len(plan.runs) + 1


def test_worker_processes_write_the_same_rows(tmp_path):
    plan = plan_study(BUDGETS["tiny"], tasks=["dates"], families=["seq2seq"])
    report = run_study(plan, tmp_path, jobs=2, run=fake_run)
    assert sorted(report.finished) == sorted(r.run_id for r in plan.runs)
    assert ResultsStore(tmp_path).done() == {r.run_id for r in plan.runs}


def test_a_results_directory_refuses_another_budget(tmp_path):
    run_study(_small_plan(), tmp_path, jobs=0, run=fake_run)
    other = plan_study(dataclasses.replace(BUDGETS["tiny"], weight_decay=0.1))
    with pytest.raises(StudyError, match="other settings"):
        run_study(other, tmp_path, jobs=0, run=fake_run)
    # another selection of the same budget adds to the same study
    more = plan_study(BUDGETS["tiny"], tasks=["scan:simple"], families=["seq2seq"])
    assert run_study(more, tmp_path, jobs=0, run=fake_run).finished == []


# ---------------------------------------------------------------------- tables and figures
def _fake_results() -> Results:
    plan = plan_study(BUDGETS["default"], tasks=["scan:simple", "scan:length", "dates"])
    rows = [fake_run(s, plan.budget, None) for s in plan.runs
            if not (s.task == "dates" and s.size == "mini" and s.family == "lstm-seq2seq")]
    meta = {"budget": plan.budget.to_dict(), "tasks": list(plan.tasks),
            "families": list(plan.families), "published": json.loads(json.dumps(PUBLISHED)),
            "machine": {"python": "3.11", "numpy": "2", "cpus": 2, "kernels": "cython"},
            "sessions": [{"wall_s": 600.0, "jobs": 2}], "wall_s": 600.0,
            "tinyllm_version": "test"}
    return Results(None, json.loads(json.dumps(meta)), rows)


def test_summary_table_puts_ours_beside_the_published_figures():
    results = _fake_results()
    table = summary_table(results)
    lines = table.splitlines()
    assert lines[0].startswith("test exact match (%)")
    assert lines[1].split()[3:] == ["|", "scan:simple", "scan:length", "dates"]
    mini_lstm = next(line for line in lines if line.startswith("LSTM") and " mini " in line)
    assert mini_lstm.split()[-3:] == ["35.0", "35.0", "-"]           # the missing run: "-"
    assert next(line for line in lines if "overall-best" in line).split()[-2:] == \
        ["99.7", "13.8"]
    assert next(line for line in lines if "top for split" in line).split()[-2:] == \
        ["99.8", "20.8"]
    assert ('Lake & Baroni 2018 (ICML, "Generalization without systematicity", section 4, '
            'mean of 5 runs)') in table
    bleu = summary_table(results, "test_bleu")
    assert "Baroni" not in bleu and "12,032" in bleu


def test_task_table_and_readme_hold_every_run():
    results = _fake_results()
    table = task_table(results, "scan:length")
    assert "length: 13.8% (overall-best model) / 20.8% (top model for the split)" in table
    assert sum(line.startswith(("Transformer", "LSTM")) for line in table.splitlines()) == 8
    report = full_report(results)
    assert "add-jump: 0.08% / 1.2%" in report and "simple: 99.7% / 99.8%" in report
    readme = readme_text(results)
    assert readme.startswith("# The translation study, default budget")
    assert summary_table(results) in readme and table in readme
    assert "wall time 10.0 min" in readme and "steps by size: nano 550" in readme
    assert "lr Transformer 0.002, LSTM 0.003" in readme and "1/sqrt(width)" in readme


def test_plots_are_written(tmp_path):
    pytest.importorskip("matplotlib")
    from tinyllm.translation.plots import plot_all

    paths = plot_all(_fake_results(), tmp_path)
    names = sorted(p.name for p in paths)
    assert names == ["bleu_vs_params.png", "bleu_vs_params.svg", "exact_match_vs_params.png",
                     "exact_match_vs_params.svg"]
    for path in paths:
        assert path.stat().st_size > 1000


# ---------------------------------------------------------------------- the command
def test_help_explains_the_command(capsys):
    from tinyllm.cli import main

    with pytest.raises(SystemExit) as exit_info:
        main(["translation-study", "--help"])
    assert exit_info.value.code == 0
    out = capsys.readouterr().out
    for word in ("--budget", "tiny, default, full", "--jobs", "--estimate", "--plot",
                 "--tasks", "--families", "scan:addprim-jump", "resumes"):
        assert word in out


@pytest.mark.parametrize("argv, message", [
    (["--budget", "huge"], "unknown budget 'huge'; accepted: tiny, default, full"),
    (["--jobs", "-1"], "--jobs -1 must be 0"),
    (["--jobs", "two"], "--jobs two must be 0"),
    (["--tasks", "scan:mcd1"], "unknown task(s) ['scan:mcd1']; accepted: scan:simple"),
    (["--tasks", ","], "--tasks ',' names nothing"),
    (["--families", "gru"], "unknown model family(ies) ['gru']"),
])
def test_bad_values_exit_2_with_one_line(argv, message, tmp_path, capsys):
    from tinyllm.cli import main

    out = tmp_path / "x"
    assert main(["translation-study", *argv, "--out", str(out), "--estimate"]) == 2
    err = capsys.readouterr().err
    assert message in err and len(err.strip().splitlines()) == 1
    assert not out.exists()


def test_plot_command_on_a_results_directory(tmp_path, capsys):
    from tinyllm.cli import main

    assert main(["translation-study", "--plot", str(tmp_path)]) == 2
    assert "no study.json" in capsys.readouterr().err
    run_study(_small_plan(), tmp_path, jobs=0, run=fake_run)
    pytest.importorskip("matplotlib")
    assert main(["translation-study", "--plot", str(tmp_path), "--plot-dir",
                 str(tmp_path / "figs")]) == 0
    out = capsys.readouterr().out
    assert "test exact match (%)" in out and "Lake & Baroni 2018" in out
    assert (tmp_path / "figs" / "exact_match_vs_params.png").stat().st_size > 1000


# ---------------------------------------------------------------------- shipped results
@pytest.mark.skipif(not (SHIPPED_ROOT / "default" / "study.json").is_file(),
                    reason="the default study has not been run into the package yet")
def test_shipped_results_hold_every_planned_run():
    results = load_results()
    plan = plan_study(BUDGETS["default"])
    assert results.budget == "default" and results.meta["budget"] == json.loads(
        json.dumps(plan.budget.to_dict()))
    header = (results.root / "runs.csv").read_text().splitlines()[0].split(",")
    assert tuple(header) == RUN_COLUMNS
    assert {r["run_id"] for r in results.runs} == {s.run_id for s in plan.runs}
    for r in results.runs:
        assert 0 <= r["test_exact_match"] <= 1 and 0 <= r["test_bleu"] <= 100 + 1e-9
        assert r["test_scored"] == r["test_pairs"]
    assert results.meta["wall_s"] <= 30 * 60 * 1.1
    assert (results.root / "README.md").is_file()


def test_no_shipped_study_is_a_clear_error(monkeypatch, tmp_path):
    import tinyllm.translation.results as results_module

    monkeypatch.setattr(results_module, "SHIPPED_ROOT", tmp_path)
    with pytest.raises(StudyError, match="no shipped translation study for budget 'full'"):
        load_results("full")
    assert os.listdir(tmp_path) == []


# ---------------------------------------------------------------------- the time it takes
def test_default_budget_takes_at_most_30_minutes_on_two_workers():
    from tinyllm.translation.estimate import PARALLEL_SLOWDOWN, estimate_seconds, run_seconds

    default = plan_study(BUDGETS["default"])
    seconds = estimate_seconds(default, jobs=2)
    assert 0.6 * 30 * 60 <= seconds <= 0.85 * 30 * 60    # uses the budget, with a margin
    alone = estimate_seconds(default, jobs=1)
    assert alone == pytest.approx(sum(run_seconds(s) for s in default.runs))
    assert alone / 2 * PARALLEL_SLOWDOWN <= seconds <= 1.05 * alone / 2 * PARALLEL_SLOWDOWN
    costs = {(s.family, s.size): run_seconds(s) for s in default.runs_of(task="scan:simple")}
    for family in FAMILIES:                               # larger is dearer per run
        assert costs[(family, "mini")] > costs[(family, "nano")]
    full = estimate_seconds(plan_study(BUDGETS["full"]), jobs=2)
    assert full > 4 * seconds


def test_the_cost_model_tables_cover_the_study():
    from tinyllm.translation.estimate import DECODE_S, STEP_S, TASK_SHAPES, task_shape

    sizes = {s for b in BUDGETS.values() for s in b.sizes}
    for family in FAMILIES:
        assert set(SIZES) <= set(get_family(family).presets)
        for size in sizes:
            assert set(STEP_S[(family, size)]) == set(TASKS)
            assert min(STEP_S[(family, size)].values()) > 0 <= DECODE_S[(family, size)][1]
    for task in ("scan:simple", "dates"):                 # the tables are the tasks' own
        table = {k: v for k, v in TASK_SHAPES[task].items() if not k.endswith("_s")}
        assert task_shape(task) == table
    assert set(TASK_SHAPES) == set(TASKS)


def test_calibration_measures_a_step_and_a_decoding_step():
    from tinyllm.translation.estimate import measure_decode, measure_step

    for family in FAMILIES:
        assert 0 < measure_step(family, "nano", "dates", batch_size=8, steps=1) < 5
        assert 0 < measure_decode(family, "nano", rows=8, steps=3) < 5


# ---------------------------------------------------------------------- end to end
def test_tiny_study_end_to_end_through_the_command(tmp_path, capsys):
    from tinyllm.cli import main

    out = tmp_path / "study"
    argv = ["translation-study", "--budget", "tiny", "--tasks", "scan:simple", "--jobs", "0",
            "--out", str(out)]
    assert main(argv) == 0
    printed = capsys.readouterr().out
    assert "estimated" in printed and "test exact match (%)" in printed
    plan = plan_study(BUDGETS["tiny"], tasks=["scan:simple"])
    rows = {r["run_id"]: r for r in ResultsStore(out).rows()}
    assert set(rows) == {s.run_id for s in plan.runs} and len(rows) == 4
    for spec in plan.runs:
        r = rows[spec.run_id]
        assert (r["family"], r["size"], r["steps"]) == (spec.family, spec.size, spec.steps)
        assert 0 <= r["test_exact_match"] <= 1 and 0 <= r["test_bleu"] <= 100
        assert r["test_scored"] == 48 and r["test_pairs"] > 48 and r["val_pairs"] == 16
        assert r["params"] > 0 and r["threads"] == 1 and r["schema"] == SCHEMA
        assert r["wall_s"] >= r["train_s"] > 0
    for family in FAMILIES:
        nano, micro = (rows[f"{family}-{s}-scan-simple"]["params"] for s in ("nano", "micro"))
        assert nano < micro
    assert "scan:simple" in (out / "README.md").read_text()
    assert not list((out / "_work").iterdir())                # run directories removed
    assert main(argv) == 0                                     # resumed: nothing to do
    assert "4 already done" in capsys.readouterr().out
