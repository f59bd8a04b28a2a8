"""`tinyllm attention`: a trained GPT's attention maps drawn to an image, and its bad inputs."""

import pytest

from tinyllm.cli import main

pytest.importorskip("matplotlib")


@pytest.fixture(scope="module")
def run(tmp_path_factory):
    root = tmp_path_factory.mktemp("attention")
    text = root / "text.txt"
    text.write_text("the cat sat on the mat. " * 200, encoding="utf-8")
    assert main(["train", "--data", str(text), "--preset", "nano", "--steps", "5",
                 "--out", str(root / "runs"), "--name", "gpt", "--quiet"]) == 0
    return root / "runs" / "gpt"


def test_draws_every_layer_and_head(run, tmp_path, capsys):
    out = tmp_path / "maps.png"
    assert main(["attention", str(run), "--text", "the cat", "--out", str(out)]) == 0
    assert out.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert "attention maps of 7 tokens, 2 layers x 2 heads" in capsys.readouterr().out


def test_one_head_as_svg(run, tmp_path):
    out = tmp_path / "one.svg"
    assert main(["attention", str(run), "--text", "mat", "--layer", "-1", "--head", "1",
                 "--out", str(out)]) == 0
    assert out.read_text().lstrip().startswith("<?xml")


@pytest.mark.parametrize("args, message", [
    (["--text", ""], "--text is empty"),
    (["--text", "the", "--layer", "2"], "--layer 2 is out of range: the model has 2 layers, "
                                        "accepted 0..1"),
    (["--text", "the", "--head", "-3"], "--head -3 is out of range"),
    (["--text", "the", "--out", "maps.txt"], "give an image file name ending in .png"),
    (["--text", "zebra"], "never saw: 'brz'"),
    (["--text", "the cat " * 40], "longer than the model's context"),
])
def test_bad_input_is_one_line(run, tmp_path, capsys, args, message):
    # a later --out (in args) overrides the first
    assert main(["attention", str(run), "--out", str(tmp_path / "m.png"), *args]) == 2
    err = capsys.readouterr().err
    assert message in err and err.count("\n") == 1


def test_not_a_run(tmp_path, capsys):
    assert main(["attention", str(tmp_path / "missing"), "--text", "a"]) == 2
    assert "is not a directory" in capsys.readouterr().err
