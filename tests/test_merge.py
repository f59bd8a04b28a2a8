"""`tinyllm merge`: a model soup is the weighted mean of its runs' weights; mismatched runs
and bad weights are refused (tinyllm.compress.merge)."""

import numpy as np
import pytest

from tinyllm.cli import main
from tinyllm.training.checkpoint import load_checkpoint
from tinyllm.training.inference import load_run


@pytest.fixture(scope="module")
def runs(tmp_path_factory):
    root = tmp_path_factory.mktemp("merge")
    f = root / "text.txt"
    f.write_text("the cat sat on the mat. a dog ran to the cat. " * 300)
    for name, seed in (("a", "1"), ("b", "2"), ("c", "3")):
        assert main(["train", "--data", str(f), "--preset", "nano", "--steps", "4",
                     "--eval-interval", "4", "--eval-iters", "1", "--seed", seed, "--out",
                     str(root), "--name", name, "--quiet"]) == 0
    assert main(["train", "--data", str(f), "--preset", "micro", "--steps", "2", "--out",
                 str(root), "--name", "wide", "--quiet"]) == 0
    return root


def test_the_soup_is_the_weighted_mean_and_the_commands_read_it(runs, tmp_path, capsys):
    out = tmp_path / "soup"
    assert main(["merge", str(runs / "a"), str(runs / "b"), str(runs / "c"), "--weights",
                 "1,1,2", "--out", str(out)]) == 0
    assert "merged 3 runs" in capsys.readouterr().out
    models = [load_run(runs / n)[0].state_dict() for n in "abc"]
    soup = load_run(out)[0].state_dict()
    for key, value in soup.items():
        expected = 0.25 * models[0][key] + 0.25 * models[1][key] + 0.5 * models[2][key]
        np.testing.assert_allclose(value, expected, rtol=1e-6, atol=1e-7)
    meta = load_checkpoint(out / "last.safetensors")[1]
    assert meta["merged_from"] == [str(runs / n) for n in "abc"] and "optimizer" not in meta
    assert main(["eval", str(out)]) == 0 and "loss" in capsys.readouterr().out
    assert main(["train", "--resume", str(out), "--quiet"]) == 2     # nothing to resume from


def test_bad_merges_are_one_line_and_write_nothing(runs, tmp_path, capsys):
    out = tmp_path / "x"
    cases = [([str(runs / "a")], "needs at least two runs"),
             ([str(runs / "a"), str(runs / "wide")], "differ in their model config"),
             ([str(runs / "a"), str(runs / "b"), "--weights", "1"], "give 2 non-negative numbers"),
             ([str(runs / "a"), str(runs / "b"), "--weights", "1,-1"], "give 2 non-negative"),
             ([str(runs / "a"), str(runs / "b"), "--weights", "1,x"], "comma-separated numbers"),
             ([str(runs / "a"), str(tmp_path)], "holds no checkpoint")]
    for args, message in cases:
        assert main(["merge", *args, "--out", str(out)]) == 2
        err = capsys.readouterr().err
        assert message in err and err.count("\n") == 1, err
        assert not out.exists()
