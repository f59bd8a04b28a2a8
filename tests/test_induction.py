"""Induction heads (tinyllm.scaling.induction): each score against a hand-built case whose
value is known, and the experiment itself -- a two-layer attention-only model forms an
induction head on repeated random tokens, a one-layer model cannot."""

import numpy as np
import pytest

from tinyllm.scaling.induction import (
    AttentionOnlyLM,
    best_heads,
    copying_scores,
    duplicate_token_scores,
    in_context_score,
    induction_stream,
    per_position_loss,
    phase_change,
    prefix_matching_scores,
    previous_token_scores,
    repeated_segments,
    repeated_tokens,
    train_and_track,
)


class FixedMaps:
    """Stands in for a model: attention_maps returns the maps it was given."""

    def __init__(self, *maps):
        self.maps = list(maps)

    def attention_maps(self, idx):
        return self.maps


def causal_uniform(b, h, t):
    w = np.tril(np.ones((t, t)))
    return np.broadcast_to(w / w.sum(axis=1, keepdims=True), (b, h, t, t))


def test_repeated_tokens_are_two_equal_halves():
    x = repeated_tokens(11, 7, 5, np.random.default_rng(0))
    assert x.shape == (5, 14) and x.max() < 11
    assert np.array_equal(x[:, :7], x[:, 7:])


def test_prefix_matching_of_an_ideal_induction_head_is_one():
    """A head whose query at L + i looks only at i + 1 scores 1; a uniform causal head scores
    the mean of 1 / (L + i + 1); the scores come back per layer and head."""
    b, length = 2, 6
    t = 2 * length
    ideal = np.zeros((b, 1, t, t))
    for i in range(1, length):
        ideal[:, 0, length + i, i + 1] = 1.0
    uniform = causal_uniform(b, 1, t)
    scores = prefix_matching_scores(FixedMaps(np.concatenate([ideal, uniform], axis=1)),
                                    np.zeros((b, t), dtype=int))
    want_uniform = np.mean([1 / (length + i + 1) for i in range(1, length)])
    np.testing.assert_allclose(scores, [[1.0, want_uniform]])


def test_duplicate_token_score_of_a_head_that_finds_the_earlier_occurrence_is_one():
    length = 5
    t = 2 * length
    dup = causal_uniform(1, 1, t).copy()
    dup[0, 0, length:] = 0
    for i in range(length):
        dup[0, 0, length + i, i] = 1.0
    np.testing.assert_allclose(duplicate_token_scores(FixedMaps(dup), np.zeros((1, t), int)),
                               [[1.0]])


def test_repeated_segments_say_one_segment_twice_in_every_row():
    sample = repeated_segments(1000, lengths=(3, 7))
    rows = sample(np.random.default_rng(4), 50, 20)
    assert rows.shape == (50, 20) and rows.max() < 1000
    for row in rows:
        assert any(np.array_equal(row[s:s + h], row[s + h:s + 2 * h])
                   for h in range(3, 8) for s in range(0, 20 - 2 * h + 1))
    with pytest.raises(ValueError, match="up to 7 tokens said twice does not fit rows of 12"):
        sample(np.random.default_rng(0), 1, 12)


def test_previous_token_score_of_a_previous_token_head_is_one():
    t = 9
    prev = np.zeros((1, 1, t, t))
    prev[0, 0, 0, 0] = 1
    for i in range(1, t):
        prev[0, 0, i, i - 1] = 1
    scores = previous_token_scores(FixedMaps(prev, causal_uniform(1, 1, t)),
                                   np.zeros((1, t), dtype=int))
    np.testing.assert_allclose(scores[:, 0], [1.0, np.mean([1 / (i + 1) for i in range(1, t)])])


def test_copying_score_is_plus_one_for_a_copying_head_and_minus_one_for_its_negative():
    """W_O = W_V^T makes W_O W_E^T W_E W_V positive semidefinite (every eigenvalue >= 0:
    score 1); W_O = -W_V^T flips every sign (score -1)."""
    model = AttentionOnlyLM(vocab_size=13, n_layer=1, n_head=2, n_embd=8, n_positions=8)
    attn = model.h[0].attn
    c, hs = 8, 4
    rng = np.random.default_rng(1)
    for h, sign in ((0, 1.0), (1, -1.0)):
        w_v = rng.standard_normal((c, hs))
        attn.c_attn.weight.data[:, 2 * c + h * hs: 2 * c + (h + 1) * hs] = w_v
        attn.c_proj.weight.data[h * hs:(h + 1) * hs] = sign * w_v.T
    np.testing.assert_allclose(copying_scores(model), [[1.0, -1.0]], atol=1e-9)


def test_in_context_score_is_late_loss_minus_early_loss():
    losses = np.linspace(3.0, 1.0, 100)                  # falls along the context
    score = in_context_score(losses)
    assert score == pytest.approx(losses[90:].mean() - losses[10:20].mean())
    assert score < 0
    assert in_context_score(np.full(50, 2.0)) == 0.0


def test_induction_stream_repeats_each_segment_after_a_gap():
    rng = np.random.default_rng(3)
    stream = induction_stream(50, 30, np.random.default_rng(3), lengths=(5, 5), gaps=(2, 2))
    assert len(stream) == 30 * 12
    blocks = stream.reshape(30, 12)
    assert np.array_equal(blocks[:, :5], blocks[:, 7:])
    assert len(induction_stream(50, 30, rng)) != len(induction_stream(50, 30, rng))


def test_per_position_loss_is_the_models_cross_entropy():
    model = AttentionOnlyLM(vocab_size=7, n_layer=1, n_head=1, n_embd=4, n_positions=6)
    idx = np.random.default_rng(2).integers(0, 7, (3, 6))
    logits = model(idx[:, :-1]).data.astype(np.float64)
    p = np.exp(logits - logits.max(-1, keepdims=True))
    p /= p.sum(-1, keepdims=True)
    want = -np.log(np.take_along_axis(p, idx[:, 1:, None], -1)[..., 0]).mean(0)
    np.testing.assert_allclose(per_position_loss(model, idx), want, rtol=1e-5)


def test_phase_change_finds_the_steep_part_of_a_fall():
    steps = np.arange(0, 1000, 10)
    scores = -0.5 / (1 + np.exp(-(steps - 400) / 20.0))  # falls by 0.5 around step 400
    first, last, total = phase_change(steps, scores)
    # 10% and 90% of a logistic fall lie at 400 -/+ 20 ln 9 = 356 and 444
    assert 350 <= first <= 360 and 440 <= last <= 450
    assert total == pytest.approx(scores.min() - scores[0])
    assert phase_change([0, 1, 2], [1.0, 1.0, 1.0]) == (0, 0, 0.0)


def test_best_heads_orders_by_score():
    assert best_heads(np.array([[0.1, 0.7], [0.9, 0.2]]), top=2) == [(1, 0, 0.9), (0, 1, 0.7)]


def test_bad_shapes_are_refused():
    with pytest.raises(ValueError, match="n_layer must be a positive integer"):
        AttentionOnlyLM(vocab_size=5, n_layer=0, n_head=1, n_embd=4, n_positions=4)
    model = AttentionOnlyLM(vocab_size=5, n_layer=1, n_head=1, n_embd=4, n_positions=4)
    with pytest.raises(ValueError, match=r"T <= n_positions=4, got shape \(1, 5\)"):
        model(np.zeros((1, 5), dtype=int))
    with pytest.raises(ValueError, match="do not fit the context of 16"):
        train_and_track(np.zeros(1000, dtype=int), 5, n_layer=1, context=16, repeat_length=9)
    with pytest.raises(ValueError, match="need more than context"):
        train_and_track(np.zeros(100, dtype=int), 5, n_layer=1, context=64)


def test_training_records_every_score_at_every_evaluation():
    """A few steps from a sampler and from a stream: one record per evaluation, each score
    of shape (n_layer, n_head), the loss falling from log V on data with repeats."""
    for source in (repeated_segments(32, lengths=(4, 8)),
                   induction_stream(32, 400, np.random.default_rng(5))):
        run = train_and_track(source, 32, n_layer=2, n_head=2, n_embd=16, context=24,
                              steps=6, batch_size=8, eval_every=3, repeat_length=6,
                              eval_batch=8)
        assert run.steps == [0, 3, 6]
        for scores in (run.prefix_matching, run.previous_token, run.duplicate_token,
                       run.copying):
            assert np.array(scores).shape == (3, 2, 2)
        assert abs(run.val_loss[0] - np.log(32)) < 0.1
        assert len(run.icl_score) == 3 and run.seconds > 0
