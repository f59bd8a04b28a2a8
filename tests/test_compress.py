"""`tinyllm compress`: a run quantized into a model directory that generate, eval and
GPT.load read; its bad inputs (tinyllm.compress)."""

import json

import numpy as np
import pytest

from tinyllm.cli import main
from tinyllm.compress import compress_run, scheme_for
from tinyllm.models import GPT
from tinyllm.nn.quantized import quantized_layers
from tinyllm.training.inference import load_run


@pytest.fixture(scope="module")
def run(tmp_path_factory):
    root = tmp_path_factory.mktemp("compress")
    f = root / "text.txt"
    f.write_text("the cat sat on the mat. a dog ran to the cat. " * 300)
    assert main(["train", "--data", str(f), "--preset", "micro", "--steps", "30",
                 "--warmup-steps", "2", "--eval-interval", "30", "--eval-iters", "2",
                 "--out", str(root / "runs"), "--quiet"]) == 0
    return root / "runs" / "gpt-micro-text"


def _snapshot(directory):
    return {p.name: p.read_bytes() for p in sorted(directory.iterdir()) if p.is_file()}


@pytest.mark.parametrize("method, extra, scheme", [
    ("int8-channel", [], "int8-channel"),
    ("int8-tensor", [], "int8-tensor"),
    ("int4", ["--group-size", "32"], "int4-g32")])
def test_a_compressed_run_generates_evaluates_and_loads(run, tmp_path, capsys, method, extra,
                                                        scheme):
    before = _snapshot(run)
    out = tmp_path / "q"
    assert main(["compress", str(run), "--method", method, *extra, "--out", str(out)]) == 0
    printed = capsys.readouterr().out
    assert printed.startswith(f"{scheme}: ") and "tinyllm eval" in printed
    assert _snapshot(run) == before                               # the source is only read
    assert {p.name for p in out.iterdir()} == {"config.json", "model.safetensors",
                                               "tokenizer.json", "train_config.json"}
    assert json.loads((out / "config.json").read_text())["quantization_config"]["scheme"] \
        == scheme
    model = GPT.load(out)
    assert quantized_layers(model) and quantized_layers(model)[0][1].scheme.name == scheme
    dense, _, _ = load_run(run)
    ids = np.arange(12)[None] % dense.config.vocab_size
    reference = dense(ids).logits.data
    gap = np.abs(model(ids).logits.data - reference).max()
    assert 0 < gap < (0.5 if scheme.startswith("int4") else 0.1) * np.abs(reference).max()
    assert main(["generate", str(out), "--prompt", "the ", "--max-new-tokens", "8",
                 "--temperature", "0"]) == 0
    assert capsys.readouterr().out.startswith("the ")
    assert main(["eval", str(run)]) == 0
    dense_loss = float(capsys.readouterr().out.split("loss ")[1].split()[0])
    assert main(["eval", str(out)]) == 0
    q_loss = float(capsys.readouterr().out.split("loss ")[1].split()[0])
    assert abs(q_loss - dense_loss) < (0.1 if scheme.startswith("int4") else 0.02) * dense_loss


def test_bad_compress_inputs_are_one_line_and_write_nothing(run, tmp_path, capsys):
    out = tmp_path / "q"
    cases = [
        (["--method", "int3"], "unknown compression method 'int3'; accepted: int8-tensor, "
                               "int8-channel, int4"),
        (["--method", "int4", "--group-size", "48"], "--group-size 48 is not accepted; "
                                                     "accepted: 32, 64, 128"),
        (["--method", "int8-channel", "--group-size", "32"], "--group-size is for --method "
                                                             "int4"),
        (["--method", "int4", "--group-size", "128"], "group size 128 does not divide the "
                                                      "input dimension 32"),
    ]
    for args, message in cases:
        assert main(["compress", str(run), *args, "--out", str(out)]) == 2
        err = capsys.readouterr().err
        assert message in err and err.count("\n") == 1
        assert not out.exists()
    assert main(["compress", str(run), "--method", "int8-tensor", "--out", str(out)]) == 0
    capsys.readouterr()
    written = _snapshot(out)
    assert main(["compress", str(run), "--method", "int4", "--out", str(out)]) == 2
    assert "exists and is not empty" in capsys.readouterr().err
    assert main(["compress", str(out), "--method", "int4", "--group-size", "32", "--out",
                 str(tmp_path / "again")]) == 2
    assert "already quantized (int8-tensor)" in capsys.readouterr().err
    assert _snapshot(out) == written and not (tmp_path / "again").exists()
    assert main(["train", "--init-from", str(out), "--steps", "2", "--out", str(tmp_path),
                 "--quiet"]) == 2
    assert "holds a quantized model (int8-tensor); training cannot continue" in \
        capsys.readouterr().err
    assert main(["compress", str(tmp_path / "nowhere"), "--method", "int4", "--out",
                 str(tmp_path / "x")]) == 2
    assert "not a directory" in capsys.readouterr().err


def test_the_report_prints_the_layers_and_the_losses_and_writes_nothing(run, capsys):
    before = _snapshot(run)
    assert main(["compress", str(run), "--report"]) == 0
    out = capsys.readouterr().out
    assert "w max/rms" in out and "transformer.h.0.mlp.c_fc" in out
    assert "loss: float32" in out and "int8-channel" in out
    assert "magnitude pruning (global, one-shot): 0%" in out
    assert _snapshot(run) == before
    assert main(["compress", str(run), "--report", "--method", "int4"]) == 2
    assert "--report writes nothing" in capsys.readouterr().err
    assert main(["compress", str(run)]) == 2
    assert "compress needs --method and --out" in capsys.readouterr().err


def test_scheme_names():
    assert scheme_for("int4").name == "int4-g64"
    assert scheme_for("int4", 128).group_size == 128
    assert scheme_for("int8-channel").bits == 8
    with pytest.raises(ValueError, match="unknown compression method"):
        compress_run("x", "fp8", "y")
