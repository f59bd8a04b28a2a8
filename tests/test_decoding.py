"""Encoder-decoder decoding (tinyllm.models.decoding) on a small deterministic fake model: beam
search as wide as the search space equals exhaustive search under the same length-penalised
score; narrow beams equal a plain one-source-at-a-time beam search; greedy equals one beam;
batches equal their sources alone; sampling is reproducible and draws from the model's
(filtered) distribution; the encoder runs once per call; bad arguments are refused. Against
transformers (random MarianMTModel, float64): its generate's tokens and scores, both through a
protocol adapter over MarianMTModel and from Seq2SeqTransformer reading its directory."""

import itertools
import math
from types import SimpleNamespace

import numpy as np
import pytest

from tinyllm.autograd.grad_mode import is_grad_enabled
from tinyllm.models.decoding import (
    BeamHypotheses,
    beam_search,
    generate_seq2seq,
    greedy_search,
    sample_search,
)

EOS, PAD = 0, 3          # vocabulary {eos, 1, 2, pad}; pad also starts decoding (Marian's rule)


class FakeState:
    """The rows' source codes and the target prefixes fed so far (start token included)."""

    def __init__(self, codes: list, prefixes: list):
        self.codes, self.prefixes = codes, prefixes

    def select(self, indices):
        indices = np.asarray(indices)
        assert indices.dtype.kind == "i" and indices.ndim == 1
        return FakeState([self.codes[i] for i in indices], [self.prefixes[i] for i in indices])

    @property
    def length(self) -> int:
        return len(self.prefixes[0]) if self.prefixes else 0


class FakeSeq2Seq:
    """The protocol's three calls over next-token logits drawn from a generator seeded by
    (source tokens, whole target prefix): a fixed random table, indexed by the source's real
    tokens (padding ignored) and everything decoded so far, so that a beam reordered wrongly
    reads the wrong row. `bias` {token: b} is added to those tokens' logits."""

    def __init__(self, vocab_size=4, block_size=5, scale=1.5, bias=None, seed=0):
        self.config = SimpleNamespace(vocab_size=vocab_size, eos_token_id=EOS, pad_token_id=PAD,
                                      decoder_start_token_id=PAD, block_size=block_size)
        self.scale, self.bias, self.seed = scale, bias or {}, seed
        self.training = True
        self.encoder_calls = self.steps = 0
        self._table = {}

    def train(self, mode=True):
        self.training = mode
        return self

    def eval(self):
        return self.train(False)

    def start_decoding(self, input_ids, attention_mask=None):
        assert not self.training and not is_grad_enabled()
        self.encoder_calls += 1
        mask = np.ones_like(input_ids) if attention_mask is None else attention_mask
        codes = [tuple(int(t) for t in row[m == 1]) for row, m in zip(input_ids, mask)]
        return FakeState(codes, [() for _ in codes])

    def decode_step(self, state, tokens):
        assert not self.training and not is_grad_enabled()
        assert tokens.shape == (len(state.codes),) and tokens.dtype == np.int64
        self.steps += 1
        state.prefixes = [p + (int(t),) for p, t in zip(state.prefixes, tokens)]
        return np.stack([self.logits(c, p) for c, p in zip(state.codes, state.prefixes)])

    def logits(self, code: tuple, prefix: tuple) -> np.ndarray:
        key = (code, prefix)
        if key not in self._table:
            rng = np.random.default_rng([self.seed, *code, 99, *prefix])
            row = rng.standard_normal(self.config.vocab_size) * self.scale
            for token, b in self.bias.items():
                row[token] += b
            self._table[key] = row
        return self._table[key]

    def log_probs(self, code: tuple, prefix: tuple) -> np.ndarray:
        x = self.logits(code, prefix)
        return x - x.max() - np.log(np.exp(x - x.max()).sum())

    def sum_log_prob(self, code, tokens) -> float:
        code = tuple(int(t) for t in code)
        prefix = (PAD,) + tuple(int(t) for t in tokens)
        return sum(self.log_probs(code, prefix[:i + 1])[prefix[i + 1]]
                   for i in range(len(tokens)))


SOURCES = [np.array([1, 2, 1]), np.array([2]), np.array([1, 1, 2, 2, 1]), np.array([2, 1])]


def batch(sources):
    """Right-padded ids (B, S) and their attention mask."""
    width = max(len(s) for s in sources)
    ids = np.full((len(sources), width), PAD, dtype=np.int64)
    mask = np.zeros_like(ids)
    for i, s in enumerate(sources):
        ids[i, :len(s)], mask[i, :len(s)] = s, 1
    return ids, mask


def every_sequence(vocab_size: int, max_len: int):
    """All outputs of at most `max_len` tokens: those ending at their first eos, and those of
    `max_len` tokens without one."""
    words = [t for t in range(vocab_size) if t != EOS]
    for n in range(max_len):
        for body in itertools.product(words, repeat=n):
            yield body + (EOS,)
    yield from itertools.product(words, repeat=max_len)


def exhaustive(model, source, max_len, length_penalty):
    """Every sequence with its score sum(log p) / len ** length_penalty, best first."""
    code = tuple(int(t) for t in source)
    scored = [(model.sum_log_prob(code, s) / len(s) ** length_penalty, s)
              for s in every_sequence(model.config.vocab_size, max_len)]
    return sorted(scored, key=lambda x: -x[0])


def strip(row, pad=PAD):
    """A returned row's tokens, up to and including its first eos; after that eos the row must
    hold only pad."""
    row = [int(t) for t in row]
    if EOS not in row:
        return tuple(row)
    end = row.index(EOS) + 1
    assert all(t == pad for t in row[end:]), row
    return tuple(row[:end])


def reference_beam_search(model, source, k, max_len, length_penalty, early_stopping):
    """One source, plain lists: the beam search the module docstring describes."""
    code = tuple(int(t) for t in source)
    finished = []                                          # (score, tokens), best first
    running = [((), 0.0)]
    for t in range(max_len):
        cands = [(s + lp_, seq + (w,)) for seq, s in running
                 for w, lp_ in enumerate(model.log_probs(code, (PAD,) + seq))]
        cands = sorted(cands, key=lambda c: -c[0])[:2 * k]
        last = t + 1 == max_len
        for s, seq in cands[:k]:        # only the top K of the 2K may finish
            if last or seq[-1] == EOS:
                finished.append((s / len(seq) ** length_penalty, seq))
        finished = sorted(finished, key=lambda f: -f[0])[:k]
        if last:
            break
        running = [(seq, s) for s, seq in cands if seq[-1] != EOS][:k]
        if len(finished) == k:
            if early_stopping is True:
                break
            length = max_len if early_stopping == "never" and length_penalty > 0 else t + 1
            if finished[-1][0] >= running[0][1] / length ** length_penalty:
                break
    return finished


# ----------------------------------------------------------------- beam search vs exhaustive
@pytest.mark.parametrize("length_penalty", [0.0, 1.0, 2.0, 0.6, -1.0])
def test_wide_beam_finds_the_exhaustive_best(length_penalty):
    model = FakeSeq2Seq()
    max_len, vocab = 4, model.config.vocab_size
    wide = (vocab - 1) ** (max_len - 1) * vocab    # every candidate of every step is ranked < K
    ids, mask = batch(SOURCES)
    out = beam_search(model, ids, mask, num_beams=wide, max_new_tokens=max_len,
                      length_penalty=length_penalty, early_stopping="never",
                      num_return_sequences=5)
    for i, source in enumerate(SOURCES):
        truth = exhaustive(model, source, max_len, length_penalty)
        scores = out.sequences_scores[i * 5:(i + 1) * 5]
        np.testing.assert_allclose(scores, [s for s, _ in truth[:5]], rtol=1e-12)
        assert np.all(np.diff(scores) <= 0)
        assert strip(out.sequences[i * 5]) == truth[0][1]
        for row, score in zip(out.sequences[i * 5:(i + 1) * 5], scores):
            seq = strip(row)
            assert model.sum_log_prob(SOURCES[i], seq) / len(seq) ** length_penalty == (
                pytest.approx(score, rel=1e-12))


@pytest.mark.parametrize("length_penalty", [0.0, 1.0, -1.0])
def test_wide_beam_without_never_is_exact_when_scores_only_fall(length_penalty):
    """With length_penalty <= 0 a hypothesis's score can only fall as it grows, so
    early_stopping=False's bound at the current length is exact; with length_penalty > 0 it is
    a heuristic, and its answer is at best the exhaustive one."""
    model = FakeSeq2Seq(seed=3)
    ids, mask = batch(SOURCES)
    out = beam_search(model, ids, mask, num_beams=108, max_new_tokens=4,
                      length_penalty=length_penalty, early_stopping=False)
    for i, source in enumerate(SOURCES):
        best = exhaustive(model, source, 4, length_penalty)[0]
        if length_penalty <= 0:
            assert strip(out.sequences[i]) == best[1]
        assert out.sequences_scores[i] <= best[0] + 1e-12


# ----------------------------------------------------------------- narrow beams
@pytest.mark.parametrize("early_stopping", [True, False, "never"])
@pytest.mark.parametrize("num_beams,length_penalty", [(2, 1.0), (3, 0.6), (2, 2.0), (3, -0.5)])
def test_narrow_beams_equal_a_one_source_reference(num_beams, length_penalty, early_stopping):
    model = FakeSeq2Seq(vocab_size=5, block_size=6, seed=11)
    ids, mask = batch(SOURCES)
    out = beam_search(model, ids, mask, num_beams=num_beams, max_new_tokens=5,
                      length_penalty=length_penalty, early_stopping=early_stopping,
                      num_return_sequences=num_beams)
    for i, source in enumerate(SOURCES):
        ref = reference_beam_search(model, source, num_beams, 5, length_penalty,
                                    early_stopping)
        got = out.sequences[i * num_beams:(i + 1) * num_beams]
        assert [strip(r) for r in got] == [seq for _, seq in ref]
        np.testing.assert_allclose(out.sequences_scores[i * num_beams:(i + 1) * num_beams],
                                   [s for s, _ in ref], rtol=1e-12)


def test_early_stopping_true_stops_first_and_can_miss_the_best():
    """True stops once num_beams hypotheses are held, False when the best running beam cannot
    beat them at today's length, "never" at the longest length: fewest steps first, and over
    several sources True returns a worse answer at least once."""
    ids, mask = batch(SOURCES)
    steps, scores = {}, {}
    for mode in (True, False, "never"):
        model = FakeSeq2Seq(vocab_size=5, block_size=8, seed=5)
        out = beam_search(model, ids, mask, num_beams=2, max_new_tokens=8, length_penalty=2.0,
                          early_stopping=mode)
        steps[mode], scores[mode] = model.steps, out.sequences_scores
    assert steps[True] <= steps[False] <= steps["never"]
    assert steps[True] < steps["never"]
    assert np.all(scores[True] <= scores["never"] + 1e-12)
    assert np.any(scores[True] < scores["never"] - 1e-9)


def test_num_return_sequences_are_the_top_hypotheses_in_order():
    model = FakeSeq2Seq()
    ids, mask = batch(SOURCES[:2])
    out = beam_search(model, ids, mask, num_beams=6, max_new_tokens=4, length_penalty=1.0,
                      early_stopping="never", num_return_sequences=4)
    assert out.sequences.shape[0] == 8 and out.sequences_scores.shape == (8,)
    for i in range(2):
        ref = reference_beam_search(model, SOURCES[i], 6, 4, 1.0, "never")[:4]
        assert [strip(r) for r in out.sequences[4 * i:4 * i + 4]] == [s for _, s in ref]
        assert np.all(np.diff(out.sequences_scores[4 * i:4 * i + 4]) < 0)
    top1 = beam_search(model, ids, mask, num_beams=6, max_new_tokens=4, length_penalty=1.0,
                       early_stopping="never")
    np.testing.assert_array_equal(top1.sequences_scores, out.sequences_scores[::4])


def test_a_search_space_smaller_than_the_answers_asked_for_gets_empty_rows():
    model = FakeSeq2Seq()
    out = beam_search(model, np.array([[1, 2]]), num_beams=6, max_new_tokens=1,
                      num_return_sequences=6)      # only 4 one-token outputs exist
    assert np.isfinite(out.sequences_scores[:4]).all()
    assert np.isneginf(out.sequences_scores[4:]).all()
    assert (out.sequences[4:] == PAD).all()


def test_beam_hypotheses_keeps_the_best_and_knows_when_it_is_done():
    hyps = BeamHypotheses(num_beams=2, length_penalty=1.0, early_stopping=False, max_length=5)
    hyps.add(np.array([4, 0]), -3.0)          # -1.5
    assert not hyps.is_done(best_running_sum=-100.0, cur_len=2)   # not full yet
    hyps.add(np.array([7, 8, 0]), -3.0)       # -1.0
    hyps.add(np.array([5, 6, 7, 0]), -8.0)    # -2.0: worse than both, dropped
    assert [s for s, _ in hyps.beams] == [-1.0, -1.5]
    assert hyps.is_done(best_running_sum=-4.5, cur_len=3)         # -1.5 cannot beat -1.5
    assert not hyps.is_done(best_running_sum=-4.4, cur_len=3)
    never = BeamHypotheses(2, 1.0, "never", max_length=5)
    never.beams = list(hyps.beams)
    assert not never.is_done(best_running_sum=-4.5, cur_len=3)    # -4.5 / 5 could beat it
    assert never.is_done(best_running_sum=-7.5, cur_len=3)
    eager = BeamHypotheses(2, 1.0, True, max_length=5)
    eager.beams = list(hyps.beams)
    assert eager.is_done(best_running_sum=0.0, cur_len=1)


# ----------------------------------------------------------------- greedy, batching, lengths
@pytest.mark.parametrize("early_stopping", [True, False])
def test_greedy_equals_one_beam(early_stopping):
    model = FakeSeq2Seq(vocab_size=5, block_size=6, seed=2)
    ids, mask = batch(SOURCES)
    greedy = greedy_search(model, ids, mask, max_new_tokens=6)
    one = beam_search(model, ids, mask, num_beams=1, max_new_tokens=6,
                      early_stopping=early_stopping)
    np.testing.assert_array_equal(greedy, one.sequences)
    np.testing.assert_array_equal(generate_seq2seq(model, ids, mask, max_new_tokens=6), greedy)
    for row, source in zip(greedy, SOURCES):   # each token is the argmax after its prefix
        seq, code = strip(row), tuple(source)
        for i, token in enumerate(seq):
            assert token == np.argmax(model.log_probs(code, (PAD,) + seq[:i]))


@pytest.mark.parametrize("kwargs", [{}, {"num_beams": 3, "num_return_sequences": 2},
                                    {"num_beams": 4, "length_penalty": 2.0,
                                     "early_stopping": "never"}])
def test_a_batch_equals_its_sources_alone(kwargs):
    model = FakeSeq2Seq(vocab_size=5, block_size=6, seed=8)
    ids, mask = batch(SOURCES)
    together = generate_seq2seq(model, ids, mask, max_new_tokens=6, **kwargs)
    rows = len(together) // len(SOURCES)
    for i, source in enumerate(SOURCES):
        alone = generate_seq2seq(model, source[None], max_new_tokens=6, **kwargs)
        got = together[i * rows:(i + 1) * rows]
        assert [strip(r) for r in got] == [strip(r) for r in alone]


@pytest.mark.parametrize("kwargs", [{}, {"num_beams": 3}, {"do_sample": True, "seed": 0}])
def test_max_new_tokens_and_pad_after_eos(kwargs):
    ids, mask = batch(SOURCES)
    never_ends = FakeSeq2Seq(bias={EOS: -50.0}, block_size=9)
    out = generate_seq2seq(never_ends, ids, mask, max_new_tokens=7, **kwargs)
    assert out.shape == (len(SOURCES), 7) and not (out == EOS).any()
    ends_at_once = FakeSeq2Seq(bias={EOS: 50.0})
    np.testing.assert_array_equal(generate_seq2seq(ends_at_once, ids, mask, **kwargs),
                                  np.full((len(SOURCES), 1), EOS))
    model = FakeSeq2Seq(vocab_size=5, block_size=6, bias={PAD: -50.0}, seed=1)
    out = generate_seq2seq(model, ids, mask, **kwargs)   # max_new_tokens: block_size
    assert out.shape[1] <= 6 and out.dtype == np.int64
    ended = [list(row) for row in out if EOS in row]
    assert ended
    for row in ended:
        assert all(t == PAD for t in row[row.index(EOS) + 1:])
    lengths = (out != PAD).sum(axis=1)     # the model never chooses pad here
    assert out.shape[1] == lengths.max()   # as wide as its longest row


# ----------------------------------------------------------------- sampling
def filtered_probs(logits, temperature=1.0, top_k=None, top_p=None):
    """The distribution sampling should follow, written out independently of the library."""
    p = np.exp((logits - logits.max()) / temperature)
    p /= p.sum()
    ranked = np.argsort(-p)
    keep = np.zeros(len(p), bool)
    mass = 0.0
    for n, tok in enumerate(ranked):
        if (top_k is not None and n >= top_k) or (top_p is not None and mass >= top_p):
            break
        keep[tok] = True
        mass += p[tok]
    p = np.where(keep, p, 0.0)
    return p / p.sum()


def chi2_critical(df: int, z: float = 3.09) -> float:
    """The chi-square quantile at upper tail z (3.09: p = 0.001), Wilson-Hilferty."""
    return df * (1 - 2 / (9 * df) + z * math.sqrt(2 / (9 * df))) ** 3


@pytest.mark.parametrize("options", [{}, {"temperature": 0.6}, {"top_k": 2},
                                     {"top_p": 0.7, "temperature": 1.3}])
def test_sample_frequencies_follow_the_model(options):
    model = FakeSeq2Seq(vocab_size=4, block_size=4, seed=21)
    source = np.array([[2, 1]])
    n = 3000
    out = sample_search(model, source, max_new_tokens=2, num_return_sequences=n, seed=123,
                        **options)
    assert out.shape[0] == n
    counts: dict = {}
    for row in out:
        key = strip(row)
        counts[key] = counts.get(key, 0) + 1
    expected = {}
    first = filtered_probs(model.logits((2, 1), (PAD,)), **options)
    for a in range(4):
        if a == EOS:
            expected[(EOS,)] = first[EOS]
            continue
        second = filtered_probs(model.logits((2, 1), (PAD, a)), **options)
        for b in range(4):
            expected[(a, b)] = first[a] * second[b]
    assert set(counts) <= {k for k, p in expected.items() if p > 0}
    support = [k for k, p in expected.items() if p > 0]
    chi2 = sum((counts.get(k, 0) - n * expected[k]) ** 2 / (n * expected[k]) for k in support)
    assert chi2 < chi2_critical(len(support) - 1), (chi2, counts)


def test_sampling_is_reproducible_and_top_k_1_is_greedy():
    model = FakeSeq2Seq(vocab_size=5, block_size=6, seed=13)
    ids, mask = batch(SOURCES)
    a = generate_seq2seq(model, ids, mask, do_sample=True, seed=7, num_return_sequences=3)
    b = generate_seq2seq(model, ids, mask, do_sample=True, seed=7, num_return_sequences=3)
    c = generate_seq2seq(model, ids, mask, do_sample=True, seed=8, num_return_sequences=3)
    np.testing.assert_array_equal(a, b)
    assert a.shape[0] == 3 * len(SOURCES) and not np.array_equal(a, c)
    top1 = generate_seq2seq(model, ids, mask, do_sample=True, top_k=1, seed=1)
    np.testing.assert_array_equal(top1, greedy_search(model, ids, mask))


# ----------------------------------------------------------------- protocol use
@pytest.mark.parametrize("kwargs", [{}, {"num_beams": 4, "num_return_sequences": 2},
                                    {"do_sample": True, "num_return_sequences": 3}])
def test_the_encoder_runs_once_and_the_mode_is_restored(kwargs):
    model = FakeSeq2Seq(vocab_size=5, block_size=6)
    ids, mask = batch(SOURCES)
    out = generate_seq2seq(model, ids, mask, **kwargs)   # the fake asserts eval and no_grad
    assert model.encoder_calls == 1
    assert model.steps <= out.shape[1] and model.training and is_grad_enabled()
    model.eval()
    generate_seq2seq(model, ids, mask, **kwargs)
    assert not model.training and model.encoder_calls == 2


# ----------------------------------------------------------------- bad arguments
@pytest.mark.parametrize("kwargs,message", [
    ({"num_beams": 0}, "num_beams must be a positive integer, got 0"),
    ({"num_beams": -2}, "num_beams must be a positive integer, got -2"),
    ({"num_beams": 2.0}, "num_beams must be a positive integer, got 2.0"),
    ({"num_beams": 2, "num_return_sequences": 3}, "num_return_sequences=3 is more than "
                                                  "num_beams=2"),
    ({"num_return_sequences": 0}, "num_return_sequences must be a positive integer, got 0"),
    ({"num_return_sequences": 2}, "greedy decoding has one answer per source"),
    ({"max_new_tokens": 0}, "max_new_tokens must be a positive integer, got 0"),
    ({"max_new_tokens": 6}, "max_new_tokens=6 exceeds the model's block_size of 5"),
    ({"do_sample": True, "temperature": 0}, "temperature must be a positive number, got 0"),
    ({"do_sample": True, "temperature": -1.0}, "temperature must be a positive number"),
    ({"do_sample": True, "top_k": 0}, "top_k must be a positive integer, got 0"),
    ({"do_sample": True, "top_p": 0.0}, r"top_p must be in \(0, 1\] or None, got 0.0"),
    ({"do_sample": True, "top_p": 1.5}, r"top_p must be in \(0, 1\]"),
    ({"do_sample": True, "num_beams": 2}, "beam sampling"),
    ({"do_sample": "yes"}, "do_sample must be True or False"),
    ({"num_beams": 2, "early_stopping": "always"}, "unknown early_stopping 'always'; "
                                                   "accepted: True, False, never"),
    ({"num_beams": 2, "length_penalty": float("nan")}, "length_penalty must be a finite"),
    ({"do_sample": True, "seed": 1.5}, "seed must be an integer or None"),
])
def test_bad_arguments_are_refused(kwargs, message):
    model = FakeSeq2Seq()
    with pytest.raises(ValueError, match=message):
        generate_seq2seq(model, np.array([[1, 2]]), **kwargs)
    assert model.encoder_calls == 0


@pytest.mark.parametrize("ids,mask,message", [
    (np.array([1, 2]), None, r"input_ids must have shape \(B, T\)"),
    (np.zeros((1, 0), np.int64), None, "at least one source of at least one token"),
    (np.array([[1, 4]]), None, "input_ids holds id 4, outside the vocabulary of size 4"),
    (np.array([[1, 2]]), np.array([[1, 1, 0]]), r"attention_mask has shape \(1, 3\)"),
    (np.array([[1, 2]]), np.array([[1, 2]]), "only 1 \\(token\\) and 0 \\(padding\\)"),
    (np.array([[1, 2], [2, 1]]), np.array([[1, 1], [0, 0]]), "row 1 is all padding"),
])
def test_bad_inputs_are_refused(ids, mask, message):
    with pytest.raises(ValueError, match=message):
        generate_seq2seq(FakeSeq2Seq(), ids, mask)


def test_sampling_arguments_without_sampling_warn():
    with pytest.warns(UserWarning, match="top_k=5 only apply with do_sample=True"):
        generate_seq2seq(FakeSeq2Seq(), np.array([[1, 2]]), top_k=5)


# ----------------------------------------------------------------- parity with transformers
def tiny_marian(seed=0):
    """A random float64 MarianMTModel whose outputs vary: its embeddings and output bias are
    drawn large enough to move the argmax, eos is made likelier and pad unlikely (a random
    model otherwise repeats one token to the end)."""
    torch = pytest.importorskip("torch")
    transformers = pytest.importorskip("transformers")
    torch.manual_seed(seed)
    cfg = transformers.MarianConfig(
        vocab_size=16, d_model=16, encoder_layers=2, decoder_layers=2,
        encoder_attention_heads=2, decoder_attention_heads=2, encoder_ffn_dim=32,
        decoder_ffn_dim=32, max_position_embeddings=32, pad_token_id=15,
        decoder_start_token_id=15, eos_token_id=0, forced_eos_token_id=None, dropout=0.0,
        init_std=0.3, scale_embedding=True)
    hf = transformers.MarianMTModel(cfg).double().eval()
    with torch.no_grad():
        hf.model.shared.weight.normal_(0.0, 0.5)
        hf.final_logits_bias.normal_(0.0, 1.0)
        hf.final_logits_bias[0, 0] += 1.0     # eos
        hf.final_logits_bias[0, 15] -= 6.0    # pad
    return hf


class MarianState:
    def __init__(self, encoded, mask, prefix):
        self.encoded, self.mask, self.prefix = encoded, mask, prefix

    def select(self, indices):
        i = np.asarray(indices)
        return MarianState(self.encoded[i], self.mask[i], self.prefix[i])


class MarianProtocol:
    """The decoding protocol over a transformers MarianMTModel: the encoder once, then the
    decoder over each row's whole prefix (no cache: slow and simple, which is the point)."""

    def __init__(self, hf):
        self.hf, c = hf, hf.config
        self.config = SimpleNamespace(vocab_size=c.vocab_size, eos_token_id=c.eos_token_id,
                                      pad_token_id=c.pad_token_id, block_size=32,
                                      decoder_start_token_id=c.decoder_start_token_id)

    @property
    def training(self):
        return self.hf.training

    def train(self, mode=True):
        self.hf.train(mode)
        return self

    def eval(self):
        return self.train(False)

    def start_decoding(self, input_ids, attention_mask=None):
        import torch
        ids = torch.as_tensor(input_ids)
        mask = torch.ones_like(ids) if attention_mask is None else torch.as_tensor(attention_mask)
        with torch.no_grad():
            encoded = self.hf.get_encoder()(input_ids=ids, attention_mask=mask)
        return MarianState(encoded.last_hidden_state, mask, torch.zeros((len(ids), 0), dtype=int))

    def decode_step(self, state, tokens):
        import torch
        state.prefix = torch.cat([state.prefix, torch.as_tensor(tokens)[:, None]], dim=1)
        with torch.no_grad():
            out = self.hf(encoder_outputs=(state.encoded,), attention_mask=state.mask,
                          decoder_input_ids=state.prefix, use_cache=False)
        return out.logits[:, -1].numpy()


def marian_sources():
    rng = np.random.default_rng(0)
    ids = rng.integers(1, 15, size=(4, 7))
    mask = np.ones_like(ids)
    for row, n in ((1, 4), (2, 6)):
        ids[row, n:], mask[row, n:] = 15, 0
    return ids, mask


def hf_generate(hf, ids, mask, **options):
    """transformers' generate with nothing added: no forced bos/eos, no minimum length, no
    n-gram blocking; returns (tokens without the start token, scores or None)."""
    import torch
    from transformers import GenerationConfig
    config = GenerationConfig(
        do_sample=False, decoder_start_token_id=15, pad_token_id=15, eos_token_id=0,
        bos_token_id=None, forced_bos_token_id=None, forced_eos_token_id=None, min_length=0,
        no_repeat_ngram_size=0, repetition_penalty=1.0, return_dict_in_generate=True,
        output_scores=True, **options)
    out = hf.generate(input_ids=torch.as_tensor(ids), attention_mask=torch.as_tensor(mask),
                      generation_config=config)
    scores = getattr(out, "sequences_scores", None)
    return out.sequences[:, 1:].numpy(), None if scores is None else scores.numpy()


def teacher_forced_scores(hf, ids, mask, sequences, length_penalty, copies):
    """sum(log p) / length ** length_penalty of each row, read by one float64 forward."""
    import torch
    src = np.repeat(ids, copies, axis=0)
    m = np.repeat(mask, copies, axis=0)
    lengths = np.array([len(strip(r, pad=15)) for r in sequences])
    labels = sequences.copy()
    decoder_in = np.concatenate([np.full((len(labels), 1), 15), labels[:, :-1]], axis=1)
    with torch.no_grad():
        logits = hf(input_ids=torch.as_tensor(src), attention_mask=torch.as_tensor(m),
                    decoder_input_ids=torch.as_tensor(decoder_in)).logits.numpy()
    logp = logits - logits.max(-1, keepdims=True)
    logp = logp - np.log(np.exp(logp).sum(-1, keepdims=True))
    picked = np.take_along_axis(logp, labels[..., None], axis=-1)[..., 0]
    real = np.arange(labels.shape[1])[None] < lengths[:, None]
    return (picked * real).sum(1) / lengths.astype(float) ** length_penalty


@pytest.mark.parametrize("length_penalty,early_stopping", [
    (0.6, True), (0.6, False), (1.0, False), (1.0, "never"), (2.0, True), (2.0, "never")])
def test_beam_search_matches_transformers_generate(length_penalty, early_stopping):
    hf = tiny_marian()
    ids, mask = marian_sources()
    want, want_scores = hf_generate(hf, ids, mask, num_beams=4, length_penalty=length_penalty,
                                    early_stopping=early_stopping, num_return_sequences=2,
                                    max_new_tokens=10)
    got = beam_search(MarianProtocol(hf), ids, mask, num_beams=4, max_new_tokens=10,
                      length_penalty=length_penalty, early_stopping=early_stopping,
                      num_return_sequences=2)
    np.testing.assert_array_equal(got.sequences, want)
    # transformers keeps its beam scores in float32; ours are float64 sums of float64 logs.
    np.testing.assert_allclose(got.sequences_scores, want_scores, rtol=2e-6)
    exact = teacher_forced_scores(hf, ids, mask, got.sequences, length_penalty, 2)
    np.testing.assert_allclose(got.sequences_scores, exact, rtol=1e-12)


def test_greedy_matches_transformers_generate():
    hf = tiny_marian(seed=1)
    ids, mask = marian_sources()
    want, _ = hf_generate(hf, ids, mask, num_beams=1, max_new_tokens=10)
    np.testing.assert_array_equal(
        generate_seq2seq(MarianProtocol(hf), ids, mask, max_new_tokens=10), want)


BEAM_CASES = [(0.6, True), (0.6, False), (1.0, False), (1.0, "never"), (2.0, True),
              (2.0, "never")]


def test_seq2seq_transformer_generate_matches_transformers(tmp_path):
    """Seq2SeqTransformer read from transformers' save_pretrained directory, in float64:
    greedy and beam search give transformers' tokens, and scores equal to its float32 ones
    and to a float64 teacher-forced forward of the same sequences (1e-12)."""
    hf = tiny_marian(seed=1)
    import torch

    from tinyllm.models import Seq2SeqTransformer
    from tinyllm.models.seq2seq import sinusoidal_table

    hf.save_pretrained(tmp_path)
    ours = Seq2SeqTransformer.from_pretrained(tmp_path, dtype="float64")
    with torch.no_grad():   # transformers rounds its table through float32; give it ours
        for side in (hf.model.encoder, hf.model.decoder):
            side.embed_positions.weight.copy_(
                torch.from_numpy(sinusoidal_table(*side.embed_positions.weight.shape)))
    ids, mask = marian_sources()
    want, _ = hf_generate(hf, ids, mask, num_beams=1, max_new_tokens=12)
    np.testing.assert_array_equal(ours.generate(ids, mask, max_new_tokens=12), want)
    for length_penalty, early_stopping in BEAM_CASES:
        options = dict(num_beams=4, length_penalty=length_penalty,
                       early_stopping=early_stopping, num_return_sequences=2)
        want, want_scores = hf_generate(hf, ids, mask, max_new_tokens=12, **options)
        np.testing.assert_array_equal(ours.generate(ids, mask, max_new_tokens=12, **options),
                                      want)
        got = beam_search(ours, ids, mask, max_new_tokens=12, **options)
        np.testing.assert_array_equal(got.sequences, want)
        np.testing.assert_allclose(got.sequences_scores, want_scores, rtol=2e-6)
        exact = teacher_forced_scores(hf, ids, mask, got.sequences, length_penalty, 2)
        np.testing.assert_allclose(got.sequences_scores, exact, rtol=1e-12)


# ----------------------------------------------------------------- both families
class ForwardScorer:
    """Next-token log-probabilities from a model's full forward over the whole target prefix
    (teacher forcing): the reference its incremental `decode_step` must agree with."""

    def __init__(self, model):
        self.model = model

    def log_probs(self, code: tuple, prefix: tuple) -> np.ndarray:
        out = self.model(np.array([code]), decoder_input_ids=np.array([prefix]))
        x = out.logits.data[0, -1].astype(np.float64)
        return x - x.max() - np.log(np.exp(x - x.max()).sum())


def small_family_model(family: str):
    """A float64 model of each encoder-decoder family, its weights drawn wide enough that
    hypotheses end at different lengths."""
    import tinyllm
    from tinyllm.models import (
        LSTMSeq2Seq,
        LSTMSeq2SeqConfig,
        Seq2SeqConfig,
        Seq2SeqTransformer,
    )

    with tinyllm.default_dtype("float64"):
        if family == "lstm":
            config = LSTMSeq2SeqConfig(vocab_size=6, hidden_size=8, num_layers=2,
                                       max_positions=6, pad_token_id=PAD, eos_token_id=EOS,
                                       init_range=0.6)
            return LSTMSeq2Seq(config, seed=3)
        config = Seq2SeqConfig(vocab_size=6, d_model=8, encoder_layers=2, decoder_layers=2,
                               encoder_attention_heads=2, decoder_attention_heads=2,
                               encoder_ffn_dim=16, decoder_ffn_dim=16,
                               max_position_embeddings=8, init_std=0.5, pad_token_id=PAD,
                               eos_token_id=EOS)
        return Seq2SeqTransformer(config, seed=3)


@pytest.mark.parametrize("early_stopping", [True, False, "never"])
@pytest.mark.parametrize("family", ["lstm", "transformer"])
def test_both_families_decode_through_the_same_search(family, early_stopping):
    """Beam search over each family's incremental decoding (state, cache, select) equals the
    one-source reference reading the model's full forward; generate's greedy is one beam."""
    model = small_family_model(family)
    ids, mask = batch(SOURCES)
    got = beam_search(model, ids, mask, num_beams=3, max_new_tokens=6, length_penalty=0.8,
                      early_stopping=early_stopping, num_return_sequences=3)
    assert model.training                         # the mode it had, restored
    scorer = ForwardScorer(model.eval())
    lengths = set()
    for i, source in enumerate(SOURCES):
        ref = reference_beam_search(scorer, source, 3, 6, 0.8, early_stopping)
        assert [strip(r) for r in got.sequences[3 * i:3 * i + 3]] == [s for _, s in ref]
        np.testing.assert_allclose(got.sequences_scores[3 * i:3 * i + 3],
                                   [s for s, _ in ref], rtol=1e-12)
        lengths |= {len(s) for _, s in ref}
    assert len(lengths) > 1                       # some hypotheses end before the limit
    np.testing.assert_array_equal(
        model.generate(ids, mask, max_new_tokens=6),
        beam_search(model, ids, mask, num_beams=1, max_new_tokens=6).sequences)
