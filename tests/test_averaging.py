"""Weight averaging along a run: AveragedModel (swa, ema), `tinyllm train --average`, its
checkpoint, exact resume, and bad inputs (tinyllm.optim.swa_utils)."""

import json

import numpy as np
import pytest

from tinyllm.cli import main
from tinyllm.models import GPT, GPTConfig
from tinyllm.optim import AveragedModel
from tinyllm.training import TrainConfig, Trainer
from tinyllm.training.checkpoint import load_checkpoint
from tinyllm.training.inference import load_run


def _gpt(seed=0):
    return GPT(GPTConfig(vocab_size=12, n_positions=8, n_embd=8, n_layer=1, n_head=2),
               seed=seed)


def _snapshots(model, n, rng):
    for _ in range(n):
        for p in model.parameters():
            p.data = (p.data + rng.standard_normal(p.shape)).astype(p.dtype)
        yield {k: v.copy() for k, v in model.state_dict().items()}


@pytest.mark.parametrize("mode", ["swa", "ema"])
def test_the_average_is_the_mean_or_the_exponential_average_of_the_points(mode):
    model, rng = _gpt(), np.random.default_rng(0)
    averaged = AveragedModel(model, mode=mode, decay=0.9)
    points = []
    for point in _snapshots(model, 5, rng):
        averaged.update_parameters(model)
        points.append(point)
    name = "transformer.h.0.mlp.c_fc.weight"
    if mode == "swa":
        expected = np.mean([p[name] for p in points], axis=0)
    else:
        expected = points[0][name].astype(np.float64)         # the first update copies
        for p in points[1:]:
            expected = 0.9 * expected + 0.1 * p[name]
    np.testing.assert_allclose(averaged.module.state_dict()[name], expected, rtol=1e-5,
                               atol=1e-6)
    assert averaged.n_averaged == 5
    # tied weights stay tied in the copy, and nothing is shared with the live model
    assert averaged.module.lm_head.weight is averaged.module.transformer.wte.weight
    assert not np.shares_memory(averaged.module.lm_head.weight.data, model.lm_head.weight.data)
    with pytest.raises(ValueError, match="unknown mode 'mean'"):
        AveragedModel(model, mode="mean")
    with pytest.raises(ValueError, match="decay=1.0 is out of range"):
        AveragedModel(model, mode="ema", decay=1.0)


@pytest.fixture(scope="module")
def text(tmp_path_factory):
    f = tmp_path_factory.mktemp("avg") / "text.txt"
    f.write_text("the cat sat on the mat. a dog ran to the cat. " * 300)
    return f


def _train(text, out, name, *extra):
    return main(["train", "--data", str(text), "--preset", "nano", "--warmup-steps", "2",
                 "--eval-interval", "5", "--eval-iters", "2", "--out", str(out), "--name",
                 name, "--quiet", *extra])


def test_a_run_keeps_its_average_reports_it_and_resumes_it_exactly(text, tmp_path, capsys):
    assert _train(text, tmp_path, "whole", "--steps", "10", "--average", "swa",
                  "--average-start", "4") == 0
    run = tmp_path / "whole"
    evals = [json.loads(x) for x in (run / "metrics.jsonl").read_text().splitlines()
             if '"eval"' in x]
    assert all("avg_val_loss" in e for e in evals)
    arrays, meta = load_checkpoint(run / "average.safetensors")
    assert meta["n_averaged"] == 6                           # steps 5..10
    average, _, _ = load_run(run, "average")
    last, _, _ = load_run(run, "last")
    name = "transformer.h.0.attn.c_attn.weight"
    assert not np.array_equal(average.state_dict()[name], last.state_dict()[name])
    assert main(["eval", str(run), "--checkpoint", "average"]) == 0
    assert "loss" in capsys.readouterr().out
    # stopped at step 7 and resumed: the same checkpoint (average included), bit for bit
    config = TrainConfig(data=str(text), preset="nano", steps=10, warmup_steps=2,
                         eval_interval=5, eval_iters=2, out=str(tmp_path), name="halves",
                         average="swa", average_start=4)
    Trainer(config, quiet=True).train(until=7)
    Trainer.resume(tmp_path / "halves", quiet=True).train()
    a = load_checkpoint(run / "last.safetensors")[0]
    b = load_checkpoint(tmp_path / "halves" / "last.safetensors")[0]
    assert any(k.startswith("average.") for k in a)
    assert a.keys() == b.keys() and all(np.array_equal(a[k], b[k]) for k in a)


def test_bad_averaging_inputs_are_one_line(text, tmp_path, capsys):
    cases = [(["--steps", "10", "--ema-decay", "0.9"], "--ema-decay is a setting of --average"),
             (["--steps", "10", "--average", "ema", "--ema-decay", "1.5"], "ema_decay=1.5 is "
                                                                           "out of range"),
             (["--steps", "10", "--average", "swa", "--average-start", "10"],
              "average_start=10; accepted: 0 <= average_start < steps=10")]
    for extra, message in cases:
        assert _train(text, tmp_path, "bad", *extra) == 2
        err = capsys.readouterr().err
        assert message in err and err.count("\n") == 1, err
    assert _train(text, tmp_path, "plain", "--steps", "2") == 0
    assert main(["eval", str(tmp_path / "plain"), "--checkpoint", "average"]) == 2
    assert "did not average its weights" in capsys.readouterr().err
