"""The `tinyllm` command: help, errors as one line with exit code 2, train -> generate -> eval."""

import subprocess
import sys

import pytest

from tinyllm.cli import main


def test_no_command_prints_help(capsys):
    assert main([]) == 2
    assert "tinyllm train" in capsys.readouterr().out


@pytest.mark.parametrize("sub", ["train", "generate", "eval", "info"])
def test_help_has_description(sub, capsys):
    with pytest.raises(SystemExit) as exc:
        main([sub, "--help"])
    assert exc.value.code == 0
    assert sub in capsys.readouterr().out


def test_unknown_preset_is_one_line(capsys):
    assert main(["train", "--preset", "huge"]) == 2
    err = capsys.readouterr().err.strip()
    assert err == ("tinyllm train: error: unknown preset 'huge'; accepted: nano, micro, tiny, "
                   "mini, small, base, medium")


def test_unknown_corpus_lists_known(capsys, tmp_path):
    assert main(["train", "--data", "wikipedia", "--out", str(tmp_path)]) == 2
    err = capsys.readouterr().err
    assert "pydoc" in err and err.count("\n") == 1


def test_unknown_option_exits_2(capsys):
    with pytest.raises(SystemExit) as exc:
        main(["train", "--bogus", "1"])
    assert exc.value.code == 2


def test_resume_rejects_other_options(capsys, tmp_path):
    assert main(["train", "--resume", str(tmp_path), "--preset", "tiny"]) == 2
    assert ("only --steps, --grad-accum, --distributed, --bucket-mb, --shard-optimizer may "
            "change, got --preset" in capsys.readouterr().err)


def test_resume_missing_dir(capsys, tmp_path):
    assert main(["train", "--resume", str(tmp_path / "missing")]) == 2
    assert "not a directory" in capsys.readouterr().err


def test_train_generate_eval_round_trip(tmp_path, capsys):
    f = tmp_path / "text.txt"
    f.write_text("the cat sat on the mat. " * 400)
    out = str(tmp_path / "runs")
    assert main(["train", "--data", str(f), "--preset", "nano", "--steps", "20",
                 "--warmup-steps", "2", "--eval-interval", "10", "--out", out, "--quiet"]) == 0
    printed = capsys.readouterr().out
    assert "done: 20 steps" in printed and "tinyllm generate" in printed
    run = tmp_path / "runs" / "gpt-nano-text"
    assert main(["generate", str(run), "--prompt", "the ", "--max-new-tokens", "10",
                 "--temperature", "0"]) == 0
    assert capsys.readouterr().out.startswith("the ")
    assert main(["generate", str(run), "--max-new-tokens", "5", "--seed", "0"]) == 0
    assert len(capsys.readouterr().out) > 0                 # an empty prompt starts a paragraph
    assert main(["eval", str(run)]) == 0
    assert "bits/char" in capsys.readouterr().out
    assert main(["generate", str(run), "--prompt", "Zebra!"]) == 2
    assert "never saw" in capsys.readouterr().err


def test_info(capsys):
    assert main(["info"]) == 0
    out = capsys.readouterr().out
    assert "kernels:" in out and "small" in out


def test_python_dash_m():
    r = subprocess.run([sys.executable, "-m", "tinyllm", "--version"], capture_output=True,
                       text=True)
    assert r.returncode == 0 and r.stdout.startswith("tinyllm ")
