"""The size-quality frontier study (tinyllm.scaling.frontier): the tiny budget end to end and
resumed, the Pareto frontier and the sparse byte count against answers worked by hand, the
shipped results, and `tinyllm frontier-study`'s bad input."""

import json

import numpy as np
import pytest

from tinyllm.cli import main
from tinyllm.models import GPT, GPTConfig
from tinyllm.nn.prune import prunable_weights
from tinyllm.nn.quantized import weight_bytes
from tinyllm.scaling import frontier
from tinyllm.scaling.frontier import (
    COLUMNS,
    FAMILIES,
    get_budget,
    load_frontier,
    pareto_front,
    run_frontier,
    sparse_bytes,
)


@pytest.fixture(scope="module")
def tiny_study(tmp_path_factory):
    root = tmp_path_factory.mktemp("frontier")
    rows = run_frontier(get_budget("tiny"), root, jobs=1, log=lambda m: None)
    return root, rows


def test_the_tiny_study_measures_every_family_on_every_rung(tiny_study):
    root, rows = tiny_study
    assert {r["family"] for r in rows} == set(FAMILIES)
    by = {(r["rung"], r["method"]): r for r in rows}
    for rung in ("w16-l1", "w32-l1"):
        dense = by[rung, "float32"]
        assert dense["loss_change"] == 0.0
        assert by[rung, "int8-channel"]["bytes"] < dense["bytes"]
        assert by[rung, "prune-75%"]["bytes"] < by[rung, "prune-50%"]["bytes"] < dense["bytes"]
        assert by[rung, "prune-75%"]["sparsity"] == pytest.approx(0.75, abs=0.01)
        ffn = by[rung, "prune-ffn-25%"]
        assert ffn["bytes"] < dense["bytes"] and ffn["step_ms"] > 0 and ffn["dense_step_ms"] > 0
    assert by["w32-l1", "int4-g32"]["bytes"] < by["w32-l1", "int8-channel"]["bytes"]
    assert ("w16-l1", "int4-g32") not in by                  # 32 does not divide 16
    assert ("w16-l1", "distilled") in by and ("w32-l1", "distilled") not in by   # the teacher
    assert ("w32-l1", "prune-heads-25%") not in by           # 2 heads: a quarter is none
    for rung in ("w16-l1", "w32-l1"):                         # the recovery steps' control
        assert by[rung, "float32+recovery"]["bytes"] == by[rung, "float32"]["bytes"]
    # What was written reads back the same.
    assert load_frontier(root) == [{k: r[k] for k in COLUMNS} for r in rows]
    assert json.loads((root / "study.json").read_text())["budget"]["name"] == "tiny"
    assert "Pareto frontier" in (root / "summary.txt").read_text()


def test_a_finished_study_is_not_run_again(tiny_study, monkeypatch):
    root, rows = tiny_study

    def refuse(*args, **kwargs):
        raise AssertionError("a finished rung was trained again")
    monkeypatch.setattr(frontier, "_train", refuse)
    assert run_frontier(get_budget("tiny"), root, jobs=1, log=lambda m: None) == rows


def test_the_pareto_front_keeps_what_nothing_beats():
    rows = [{"bytes": b, "val_loss": v, "id": i} for i, (b, v) in enumerate(
        [(100, 3.0), (50, 3.5), (200, 2.5), (120, 3.2), (60, 3.4), (200, 2.4), (300, 2.6)])]
    assert [r["id"] for r in pareto_front(rows)] == [1, 4, 0, 5]


def test_sparse_bytes_count_nonzeros_and_a_bitmap():
    model = GPT(GPTConfig(vocab_size=11, n_positions=8, n_embd=8, n_layer=1, n_head=2), seed=0)
    weights = prunable_weights(model)
    dense = weight_bytes(model)
    assert sparse_bytes(model) == dense - sum(w.data.nbytes for w in weights.values()) + sum(
        4 * w.data.size + -(-w.data.size // 8) for w in weights.values())
    w = next(iter(weights.values()))
    w.data[...] = 0
    assert sparse_bytes(model) == dense - sum(x.data.size * 4 for x in weights.values()) + sum(
        (0 if x is w else 4 * x.data.size) + -(-x.data.size // 8) for x in weights.values())


def test_the_shipped_study_reads_and_holds_every_rung():
    rows = load_frontier("shipped")
    rungs = {r["rung"] for r in rows}
    assert rungs == {f"w{w}-l{max(1, round(w / 32))}" for w in get_budget("default").widths}
    assert all(r["family"] in FAMILIES and r["bytes"] > 0 and np.isfinite(r["val_loss"])
               for r in rows)
    for rung in rungs:                                         # every rung has its baseline
        assert sum(r["rung"] == rung and r["method"] == "float32" for r in rows) == 1


@pytest.mark.parametrize("argv, message", [
    (["frontier-study", "--budget", "huge"], "unknown frontier budget 'huge'"),
    (["frontier-study", "--jobs", "0"], "--jobs 0 must be 1 or more"),
    (["frontier-study", "--plot", "{tmp}"], "holds no frontier.csv"),
])
def test_bad_input_is_one_line_and_exit_2(argv, message, tmp_path, capsys):
    argv = [a.replace("{tmp}", str(tmp_path)) for a in argv]
    assert main(argv) == 2
    err = capsys.readouterr().err
    assert message in err and "Traceback" not in err
