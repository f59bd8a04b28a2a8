"""The maximal-update parametrisation (muP, `GPTConfig.mup_base_width`) and its sweep.

Proven: at the base width muP is the standard model bit for bit; the forward pass equals a
hand computation with muP's attention scale and output multiplier; the initialisation and the
learning rates scale as Yang et al.'s Table 3 says; the classic coordinate check (how much a
block's output moves in the first Adam steps stays put as the width grows under muP, and grows
under the standard parametrisation); the trainer's groups, floors and resume; the sweep's
optimum finder on a known parabola, its resume and its tables.
"""

import math

import numpy as np
import pytest

import tinyllm
from tinyllm.models import GPTConfig
from tinyllm.models.gpt import GPT, GPT2ForSequenceClassification
from tinyllm.optim import (
    AdamW,
    WarmupCosine,
    WarmupStableDecay,
    param_groups_for_weight_decay,
    scale_group_lrs,
)
from tinyllm.scaling import mup
from tinyllm.scaling.plan import StudyError


def _config(width, base=None, **extra):
    return GPTConfig(vocab_size=40, n_embd=width, n_head=4, n_layer=2, n_positions=16,
                     mup_base_width=base, **extra)


def _ids(shape=(3, 12), seed=0):
    return np.random.default_rng(seed).integers(0, 40, shape)


# ---------------------------------------------------------------------- the config
def test_width_multiplier_and_attention_scale():
    c = _config(64, base=16)
    assert c.mup_width_mult == 4.0
    assert c.attention_scale == pytest.approx(1 / math.sqrt(16 * 4))   # 1/sqrt(head_dim * m)
    assert _config(64).mup_width_mult == 1.0 and _config(64).attention_scale is None
    # 1/head_dim up to the constant sqrt(head_dim at the base width)
    assert c.attention_scale == pytest.approx(math.sqrt(16 / 4) / c.head_dim)


@pytest.mark.parametrize("bad", [0, -8, 2.5, "32", True])
def test_bad_base_width_is_refused(bad):
    with pytest.raises((ValueError, TypeError), match="mup_base_width"):
        _config(32, base=bad)


def test_config_round_trips_through_a_directory(tmp_path):
    model = GPT(_config(32, base=16), seed=0)
    model.save(tmp_path / "m")
    again = GPT.from_pretrained(tmp_path / "m")
    assert again.config.mup_base_width == 16
    ids = _ids()
    np.testing.assert_array_equal(again(ids).logits.data, model(ids).logits.data)


# ---------------------------------------------------------------------- the model
def test_at_the_base_width_mup_is_the_standard_model():
    ids = _ids()
    mup_model, standard = GPT(_config(32, base=32), seed=3), GPT(_config(32), seed=3)
    np.testing.assert_array_equal(mup_model(ids).logits.data, standard(ids).logits.data)
    assert mup_model.lr_multipliers() == {}


def _hand_attention(block, h, heads, scale):
    """A causal attention layer computed in NumPy from its weights: h (B, T, C) Tensor."""
    b, t, c = h.shape
    qkv = block.attn.c_attn(h).data                                     # (B, T, 3C)
    q, k, v = (qkv[..., i * c:(i + 1) * c].reshape(b, t, heads, c // heads)
               .transpose(0, 2, 1, 3) for i in range(3))               # (B, nh, T, hs)
    scores = q @ k.transpose(0, 1, 3, 2) * scale + np.triu(np.full((t, t), -np.inf), 1)
    p = np.exp(scores - scores.max(-1, keepdims=True))
    p /= p.sum(-1, keepdims=True)                                       # (B, nh, T, T)
    y = (p @ v).transpose(0, 2, 1, 3).reshape(b, t, c)
    return block.attn.c_proj(tinyllm.tensor(y)), p


def test_forward_equals_a_hand_computation():
    """Attention scores times 1/sqrt(hs m), logits divided by m; the attention maps the model
    reports use the same scale."""
    model = GPT(_config(32, base=8), seed=1)                  # m = 4, head size 8
    ids = _ids((2, 6))
    t = model.transformer
    x = t.wte(ids) + t.wpe(np.arange(6))
    maps = []
    for block in t.h:
        a, p = _hand_attention(block, block.ln_1(x), 4, 1 / math.sqrt(8 * 4))
        maps.append(p)
        x = x + a
        x = x + block.mlp(block.ln_2(x))
    logits = t.ln_f(x).data @ t.wte.weight.data.T / 4
    np.testing.assert_allclose(model(ids).logits.data, logits, rtol=1e-5, atol=1e-6)
    for got, want in zip(model.attentions(ids), maps):
        np.testing.assert_allclose(got, want, rtol=1e-5, atol=1e-6)


def test_the_classifier_divides_its_logits_by_m():
    c = _config(32, base=16, pad_token_id=0, num_labels=3)
    clf = GPT2ForSequenceClassification(c, seed=0)
    ids = _ids((2, 5)) + 1
    x = clf.transformer(ids).data[:, -1]
    np.testing.assert_allclose(clf(ids).logits.data, x @ clf.score.weight.data.T / 2,
                               rtol=1e-5, atol=1e-7)


def test_initialisation_scales_hidden_weights_only():
    wide = GPT(_config(256, base=32), seed=0)                 # m = 8
    named = dict(wide.named_parameters())
    assert np.std(named["transformer.h.0.attn.c_attn.weight"].data) == pytest.approx(
        0.02 / math.sqrt(8), rel=0.02)
    assert np.std(named["transformer.h.0.mlp.c_fc.weight"].data) == pytest.approx(
        0.02 / math.sqrt(8), rel=0.02)
    assert np.std(named["transformer.h.1.mlp.c_proj.weight"].data) == pytest.approx(
        0.02 / math.sqrt(8) / math.sqrt(4), rel=0.02)
    assert np.std(named["transformer.wte.weight"].data) == pytest.approx(0.02, rel=0.05)
    multipliers = wide.lr_multipliers()
    assert set(multipliers) == {n for n in named if n.endswith(
        ("c_attn.weight", "c_proj.weight", "c_fc.weight"))}
    assert set(multipliers.values()) == {1 / 8}


def _block_outputs(model, ids):
    """What each attention and MLP branch adds to the residual stream, (B, T, C) arrays."""
    t = model.transformer
    x = t.wte(ids) + t.wpe(np.arange(ids.shape[1]))
    out = []
    for block in t.h:
        a = block.attn(block.ln_1(x))
        x = x + a
        f = block.mlp(block.ln_2(x))
        x = x + f
        out += [a.data.copy(), f.data.copy()]
    return out


def _moves(width, base):
    """Mean |change| of every branch's output after 3 AdamW steps at lr 1e-2."""
    model = GPT(GPTConfig(vocab_size=64, n_embd=width, n_head=4, n_layer=2, n_positions=32,
                          mup_base_width=base), seed=0)
    ids = np.random.default_rng(0).integers(0, 64, (8, 32))
    groups = scale_group_lrs(param_groups_for_weight_decay(model, 0.0),
                             model.lr_multipliers(), 1e-2)
    opt = AdamW(groups, lr=1e-2, weight_decay=0.0)
    before = _block_outputs(model, ids)
    for _ in range(3):
        opt.zero_grad()
        model(ids, targets=ids).loss.backward()
        opt.step()
    return np.array([np.abs(b - a).mean() for a, b in zip(before, _block_outputs(model, ids))])


def test_coordinate_check():
    """The check of Yang et al.: under the standard parametrisation the first layer's branches
    move ~20-100x more at width 256 than at 32 with the same learning rate; under muP about as
    much (within 2x)."""
    standard = _moves(256, None) / _moves(32, None)
    mup_ratio = _moves(256, 32) / _moves(32, 32)
    assert np.all(standard[:2] > 5), standard
    assert np.all((mup_ratio > 0.5) & (mup_ratio < 2)), mup_ratio


# ---------------------------------------------------------------------- optimizer and trainer
def test_scale_group_lrs_splits_groups_by_factor():
    named = [("a.c_fc.weight", tinyllm.zeros(4, 4, requires_grad=True)),
             ("a.c_fc.bias", tinyllm.zeros(4, requires_grad=True)),
             ("b.c_fc.weight", tinyllm.zeros(4, 4, requires_grad=True))]
    groups = param_groups_for_weight_decay(named, 0.1)
    assert scale_group_lrs(groups, {}, 0.01) is groups
    out = scale_group_lrs(groups, {"a.c_fc.weight": 0.5, "b.c_fc.weight": 0.5}, 0.01)
    assert [(g["param_names"], g["lr"], g["weight_decay"]) for g in out] == [
        (["a.c_fc.weight", "b.c_fc.weight"], 0.005, 0.1), (["a.c_fc.bias"], 0.01, 0.0)]
    with pytest.raises(ValueError, match="a.c_fc.weight is 0"):
        scale_group_lrs(groups, {"a.c_fc.weight": 0}, 0.01)


@pytest.mark.parametrize("schedule", [WarmupCosine, WarmupStableDecay])
def test_schedules_take_one_floor_per_group(schedule):
    w = [tinyllm.zeros(2, requires_grad=True) for _ in range(2)]
    opt = AdamW([{"params": [w[0]], "lr": 1.0}, {"params": [w[1]], "lr": 0.25}])
    sched = schedule(opt, warmup_steps=1, total_steps=4, min_lr=[0.1, 0.025])
    for _ in range(5):
        sched.step()
    assert sched.get_last_lr() == pytest.approx([0.1, 0.025])
    with pytest.raises(ValueError, match="min_lr has 1 rates for 2 parameter groups"):
        schedule(opt, warmup_steps=1, total_steps=4, min_lr=[0.1])


def _train_config(tmp_path, steps, name="run"):
    from tinyllm.training import TrainConfig

    return TrainConfig(data="shakespeare", tokenizer="char", steps=steps, batch_size=4,
                       block_size=16, lr=1e-2, min_lr=1e-3, eval_interval=2, eval_iters=1,
                       sample_tokens=0, out=str(tmp_path), name=name, warmup_steps=1,
                       model_overrides=dict(n_layer=1, n_head=2, n_embd=32, n_positions=16,
                                            mup_base_width=8))


def test_trainer_trains_hidden_weights_at_lr_over_m_and_resumes_exactly(tmp_path):
    from tinyllm.training import Trainer

    straight = Trainer(_train_config(tmp_path, 4, "straight"), quiet=True)
    by_name = {n: g for g in straight.optimizer.param_groups for n in g["param_names"]}
    assert by_name["transformer.h.0.attn.c_attn.weight"]["initial_lr"] == pytest.approx(1e-2 / 4)
    assert by_name["transformer.wte.weight"]["initial_lr"] == pytest.approx(1e-2)
    straight.train()
    floors = {g["lr_multiplier"]: g["lr"] for g in straight.optimizer.param_groups}
    assert floors == pytest.approx({0.25: 1e-3 / 4, 1.0: 1e-3})   # each group's own floor
    halves = Trainer(_train_config(tmp_path, 4, "halves"), quiet=True)
    halves.train(until=2)                                     # stops at the step-2 checkpoint
    resumed = Trainer.resume(tmp_path / "halves", quiet=True)
    resumed.train()
    for (name, a), (_, b) in zip(straight.model.named_parameters(),
                                 resumed.model.named_parameters()):
        np.testing.assert_array_equal(a.data, b.data, err_msg=name)


# ---------------------------------------------------------------------- the sweep
def _rows(curves):
    return [{"parametrization": p, "width": w, "log2_lr": x, "val_loss": y}
            for (p, w), pts in curves.items() for x, y in pts]


def test_optimum_is_the_vertex_of_the_parabola_near_the_best_point():
    xs = [-13.0, -12.0, -11.0, -10.0, -9.0]
    curves = {("standard", 32): [(x, (x + 10.3) ** 2) for x in xs],
              ("standard", 256): [(x, (x + 11.8) ** 2) for x in xs],
              ("mup", 256): [(x, 1.0 + (x + 10.0) ** 2) for x in xs]}
    rows = _rows(curves)
    assert mup.optimum(rows, "standard", 32) == pytest.approx(-10.3)
    assert mup.optimum(rows, "standard", 256) == pytest.approx(-11.8)
    assert mup.drift(rows, "standard") == pytest.approx(2 ** -1.5)
    # muP's base width borrows the standard runs (the same model)
    assert mup.optimum(rows, "mup", 32) == pytest.approx(-10.3)
    assert mup.drift(rows, "mup") == pytest.approx(2 ** 0.3)


def test_optimum_at_the_grid_edge_and_with_divergence():
    rows = _rows({("standard", 8): [(-9.0, 3.0), (-8.0, 2.0), (-7.0, math.nan)]})
    assert mup.optimum(rows, "standard", 8) == -8.0          # no right neighbour: the grid's
    assert mup.optimum(_rows({("standard", 8): [(-9.0, math.nan)]}), "standard", 8) is None


def test_tiny_sweep_runs_resumes_and_reports(tmp_path):
    budget = mup.get_budget("tiny")
    rows = mup.run_sweep(budget, tmp_path, jobs=0)
    assert len(rows) == len(budget.runs()) == 6              # muP at the base width: none
    assert {r["status"] for r in rows} == {"finished"}
    again = mup.run_sweep(budget, tmp_path, jobs=0)          # nothing left to train
    assert [r["val_loss"] for r in again] == [r["val_loss"] for r in rows]
    assert mup.load_mup(tmp_path) == again
    text = (tmp_path / "summary.txt").read_text()
    assert "standard: best rate at width 16 / at width 8" in text
    assert "\nmup           8 " in text                       # borrowed from the standard runs


def test_unknown_budget_and_missing_results_are_refused(tmp_path):
    with pytest.raises(StudyError, match="unknown muP budget 'huge'; accepted: tiny, default"):
        mup.get_budget("huge")
    with pytest.raises(StudyError, match="holds no runs.csv"):
        mup.load_mup(tmp_path)


def test_command_trains_resumes_and_plots(tmp_path, capsys):
    from tinyllm.cli import main

    out = tmp_path / "sweep"
    assert main(["mup-study", "--budget", "tiny", "--out", str(out), "--jobs", "1"]) == 0
    first = capsys.readouterr().out
    assert "0 run(s) done, 6 to go" in first and "best lr" in first
    assert main(["mup-study", "--budget", "tiny", "--out", str(out), "--jobs", "1"]) == 0
    assert "6 run(s) done, 0 to go" in capsys.readouterr().out
    assert main(["mup-study", "--plot", str(out)]) == 0
    assert "mup: best rate at width 16 / at width 8" in capsys.readouterr().out


@pytest.mark.parametrize("argv, message", [
    (["--budget", "nope"], "unknown muP budget 'nope'; accepted: tiny, default"),
    (["--jobs", "0"], "--jobs 0 must be 1 or more"),
])
def test_command_refuses_bad_input(argv, message, capsys):
    from tinyllm.cli import main

    assert main(["mup-study", *argv]) == 2
    assert message in capsys.readouterr().err
