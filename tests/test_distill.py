"""Knowledge distillation: the loss as Hinton et al. define it, `tinyllm train --distill-from`,
and its bad inputs (tinyllm.training.objectives.Distillation)."""

import json

import numpy as np
import pytest

import tinyllm
from tinyllm.cli import main
from tinyllm.models import GPT, GPTConfig
from tinyllm.training import Trainer
from tinyllm.training.objectives import CausalLM, Distillation

RNG = np.random.default_rng(0)


def _log_softmax(z):
    z = z - z.max(-1, keepdims=True)
    return z - np.log(np.exp(z).sum(-1, keepdims=True))


@pytest.mark.parametrize("temperature, alpha", [(1.0, 0.5), (2.0, 0.9), (4.0, 1.0),
                                                (2.0, 0.0)])
def test_the_loss_is_alpha_t2_kl_plus_the_hard_cross_entropy(temperature, alpha):
    with tinyllm.default_dtype(np.float64):
        config = GPTConfig(vocab_size=11, n_positions=8, n_embd=16, n_layer=1, n_head=2)
        student, teacher = GPT(config, seed=0), GPT(config, seed=1)
    x, y = RNG.integers(0, 11, (3, 8)), RNG.integers(0, 11, (3, 8))
    loss = Distillation(CausalLM, teacher, temperature, alpha).loss(student, (x, y)).item()
    zs = student(x).logits.data.reshape(-1, 11)
    zt = teacher(x).logits.data.reshape(-1, 11)
    p = np.exp(_log_softmax(zt / temperature))
    kl = (p * (np.log(p) - _log_softmax(zs / temperature))).sum(-1).mean()
    ce = -_log_softmax(zs)[np.arange(24), y.reshape(-1)].mean()
    assert loss == pytest.approx(alpha * temperature ** 2 * kl + (1 - alpha) * ce, rel=1e-12)
    # the student's gradient is that loss's gradient (the teacher gets none)
    out = Distillation(CausalLM, teacher, temperature, alpha).loss(student, (x, y))
    out.backward()
    assert all(p.grad is None for p in teacher.parameters())
    assert student.lm_head.weight.grad is not None


def test_an_ensemble_teaches_the_mean_of_its_softened_distributions():
    with tinyllm.default_dtype(np.float64):
        config = GPTConfig(vocab_size=11, n_positions=8, n_embd=16, n_layer=1, n_head=2)
        student, a, b = (GPT(config, seed=s) for s in (0, 1, 2))
    x, y = RNG.integers(0, 11, (2, 8)), RNG.integers(0, 11, (2, 8))
    t = 2.0
    loss = Distillation(CausalLM, [a, b], t, 1.0).loss(student, (x, y)).item()
    p = np.mean([np.exp(_log_softmax(m(x).logits.data.reshape(-1, 11) / t)) for m in (a, b)],
                axis=0)
    log_q = _log_softmax(student(x).logits.data.reshape(-1, 11) / t)
    assert loss == pytest.approx(t * t * (p * (np.log(p) - log_q)).sum(-1).mean(), rel=1e-12)


def test_a_student_as_good_as_its_teacher_pays_only_the_hard_loss():
    """KL(p || p) = 0: a student equal to the teacher gets (1 - alpha) CE."""
    config = GPTConfig(vocab_size=11, n_positions=8, n_embd=16, n_layer=1, n_head=2)
    teacher = GPT(config, seed=1)
    x, y = RNG.integers(0, 11, (2, 8)), RNG.integers(0, 11, (2, 8))
    loss = Distillation(CausalLM, teacher, 3.0, 0.7).loss(teacher, (x, y)).item()
    assert loss == pytest.approx(0.3 * teacher(x, y).loss.item(), rel=1e-5, abs=1e-6)


@pytest.fixture(scope="module")
def teacher_run(tmp_path_factory):
    root = tmp_path_factory.mktemp("distill")
    f = root / "text.txt"
    f.write_text("the cat sat on the mat. a dog ran to the cat. " * 300)
    assert main(["train", "--data", str(f), "--preset", "micro", "--steps", "40",
                 "--warmup-steps", "2", "--eval-interval", "40", "--eval-iters", "2",
                 "--out", str(root / "runs"), "--quiet"]) == 0
    return f, root / "runs" / "gpt-micro-text"


def test_distilling_a_run_trains_a_student_and_reports_plain_cross_entropy(teacher_run,
                                                                          tmp_path, capsys):
    text, teacher = teacher_run
    assert main(["train", "--data", str(text), "--preset", "nano", "--steps", "12",
                 "--warmup-steps", "2", "--eval-interval", "6", "--eval-iters", "2",
                 "--distill-from", str(teacher), "--temperature", "2", "--alpha", "0.7",
                 "--out", str(tmp_path), "--name", "student", "--quiet"]) == 0
    run = tmp_path / "student"
    saved = json.loads((run / "train_config.json").read_text())
    assert saved["distill_from"] == str(teacher) and saved["distill_alpha"] == 0.7
    assert (run / "tokenizer.json").read_text() == (teacher / "tokenizer.json").read_text()
    # an ensemble of two teachers (here the same run twice) trains too
    assert main(["train", "--data", str(text), "--preset", "nano", "--steps", "2",
                 "--distill-from", f"{teacher},{teacher}", "--out", str(tmp_path), "--name",
                 "ensemble", "--quiet"]) == 0
    evals = [json.loads(line) for line in (run / "metrics.jsonl").read_text().splitlines()
             if '"eval"' in line]
    assert len(evals) == 2 and evals[-1]["val_loss"] < evals[0]["val_loss"] + 1.0
    assert main(["train", "--resume", str(run), "--steps", "18", "--quiet"]) == 0
    capsys.readouterr()
    # the validation loss it reports is the student's plain cross-entropy
    trainer = Trainer.resume(run, quiet=True)
    assert isinstance(trainer.objective, Distillation) and trainer.step == 18
    c = trainer.config
    batches = CausalLM.eval_batches(trainer.val_ids, None, c.batch_size, trainer.block_size,
                                    c.eval_iters, seed=c.seed + 1)
    trainer.model.eval()
    ce = np.mean([CausalLM.loss(trainer.model, b).item() for b in batches])
    assert trainer.evaluate()["val_loss"] == pytest.approx(ce, rel=1e-6)


def test_bad_distillation_inputs_are_one_line(teacher_run, tmp_path, capsys):
    text, teacher = teacher_run
    base = ["train", "--data", str(text), "--preset", "nano", "--steps", "4", "--out",
            str(tmp_path), "--quiet"]
    cases = [
        (["--distill-from", str(teacher), "--temperature", "0"], "temperature=0.0 is out of "
                                                                "range"),
        (["--distill-from", str(teacher), "--alpha", "1.5"], "alpha=1.5 is out of range"),
        (["--temperature", "2"], "--temperature is a setting of --distill-from"),
        (["--distill-from", str(tmp_path / "nothing")], "not a directory"),
        (["--distill-from", str(teacher), "--model", "bert"], "--distill-from trains a causal "
                                                             "language model"),
        (["--distill-from", str(teacher), "--preset", "base"], "the teacher reads at most 64 "
                                                              "positions, but this run's "
                                                              "windows are"),
    ]
    for args, message in cases:
        assert main(base + args) == 2, args
        err = capsys.readouterr().err
        assert message in err and err.count("\n") == 1, err
    # a student continued from a source whose tokenizer is not the teacher's
    other = tmp_path / "other.txt"
    other.write_text("zebras quietly jump over foxes! " * 200)
    assert main(["train", "--data", str(other), "--preset", "nano", "--steps", "2",
                 "--out", str(tmp_path), "--name", "src", "--quiet"]) == 0
    assert main(["train", "--data", str(text), "--init-from", str(tmp_path / "src"),
                 "--steps", "2", "--distill-from", str(teacher), "--out", str(tmp_path),
                 "--quiet"]) == 2
    assert "the teacher's tokenizer (CharTokenizer" in capsys.readouterr().err
