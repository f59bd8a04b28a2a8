"""NGramLM: normalisation, hand-computed Kneser-Ney values, back-off, the Markov corpus's
entropy rate, generation, and errors."""

import itertools
import math

import numpy as np
import pytest

from tinyllm.data import load_corpus
from tinyllm.models.ngram import NGramLM

A, B, C = 0, 1, 2
TINY = [A, B, A, B, C]          # "a b a b c"


@pytest.fixture(scope="module")
def markov():
    corpus = load_corpus("markov", length=50_000)
    source = corpus.metadata["source"]
    index = {ch: i for i, ch in enumerate(source.alphabet)}
    ids = np.array([index[ch] for ch in corpus.text])
    return corpus, len(source.alphabet), ids[:45_000], ids[45_000:]


# ----------------------------------------------------------------- normalisation
@pytest.mark.parametrize("discount", [0.75, 0.3, "estimate", "modified"])
@pytest.mark.parametrize("order", [1, 2, 3, 4])
def test_every_context_sums_to_one(order, discount):
    v = 4
    rng = np.random.default_rng(order)
    lm = NGramLM(order, v, discount).fit(rng.integers(0, v - 1, 300))  # id 3 never seen
    for n in range(order):                   # every context of every length, unseen included
        for ctx in itertools.product(range(v), repeat=n):
            p = lm.next_token_distribution(list(ctx))
            assert p.shape == (v,) and p.dtype == np.float64
            assert abs(p.sum() - 1.0) <= 1e-9 and (p > 0).all()


def test_order_one_is_absolute_discounting_with_a_uniform_floor():
    # P(w) = max(c(w) - D, 0) / N + D * types / N / V
    ids = [0, 0, 0, 1, 2, 2]
    lm = NGramLM(1, 5, discount=0.5).fit(ids)
    n, types, v = 6, 3, 5
    counts = np.array([3, 1, 2, 0, 0])
    expected = np.maximum(counts - 0.5, 0) / n + 0.5 * types / n / v
    np.testing.assert_allclose(lm.next_token_distribution([]), expected, rtol=1e-14)
    np.testing.assert_allclose(lm.next_token_distribution([4, 1]), expected, rtol=1e-14)
    assert lm.num_params() == 3


# ----------------------------------------------------------------- hand-computed values
def test_bigram_kneser_ney_by_hand():
    """"a b a b c", D = 1/2.

    Unigrams use continuation counts N1+(. w), the start counting as a left neighbour:
    a: {start, b} = 2, b: {a} = 1, c: {b} = 1; total 4, 3 types, gamma = 0.5 * 3 / 4:
        P1 = (N1+ - 0.5) / 4 + 0.375 / 3 = [0.5, 0.25, 0.25].
    After a: c(a b) = 2, one type, gamma = 0.5 * 1 / 2 = 0.25:
        P(b | a) = 1.5 / 2 + 0.25 * 0.25 = 0.8125, P(a | a) = 0.25 * 0.5 = 0.125, ...
    After b: c(b a) = c(b c) = 1, two types, gamma = 0.5:
        P(a | b) = 0.5 / 2 + 0.5 * 0.5 = 0.5, P(c | b) = 0.25 + 0.125 = 0.375, ...
    After c (only ever the last token): no continuation seen, so P(. | c) = P1.
    """
    lm = NGramLM(2, 3, discount=0.5).fit(TINY)
    np.testing.assert_allclose(lm.next_token_distribution([]), [0.5, 0.25, 0.25], rtol=1e-14)
    np.testing.assert_allclose(lm.next_token_distribution([A]), [0.125, 0.8125, 0.0625],
                               rtol=1e-14)
    np.testing.assert_allclose(lm.next_token_distribution([B]), [0.5, 0.125, 0.375],
                               rtol=1e-14)
    np.testing.assert_allclose(lm.next_token_distribution([C]), [0.5, 0.25, 0.25], rtol=1e-14)
    assert lm.num_params() == 3 + 3          # unigrams a, b, c; bigrams ab, ba, bc
    assert lm.log_prob([A], B) == pytest.approx(math.log(0.8125), rel=1e-14)


def test_trigram_kneser_ney_by_hand():
    """The same text at order 3: the middle order now uses continuation counts too.

    N1+(. a b) = {start, b} = 2, N1+(. b a) = {a} = 1, N1+(. b c) = {a} = 1, which give
    the same P2 as above. Trigrams aba, bab, abc once each:
        after a b: P(a) = 0.5 / 2 + 0.5 * P2(a | b) = 0.5,  P(c) = 0.25 + 0.5 * 0.375,
                   P(b) = 0.5 * 0.125
        after b a: P(b) = 0.5 / 1 + 0.5 * P2(b | a) = 0.90625, P(a) = 0.5 * 0.125, ...
    """
    lm = NGramLM(3, 3, discount=0.5).fit(TINY)
    np.testing.assert_allclose(lm.next_token_distribution([A, B]), [0.5, 0.0625, 0.4375],
                               rtol=1e-14)
    np.testing.assert_allclose(lm.next_token_distribution([B, A]), [0.0625, 0.90625, 0.03125],
                               rtol=1e-14)
    # An unseen context backs off to its longest seen suffix.
    np.testing.assert_allclose(lm.next_token_distribution([C, A]),
                               lm.next_token_distribution([A]), rtol=1e-14)
    np.testing.assert_allclose(lm.next_token_distribution([B, C]), [0.5, 0.25, 0.25],
                               rtol=1e-14)
    assert lm.num_params() == 3 + 3 + 3


def test_unseen_tokens_and_contexts_fall_back():
    lm = NGramLM(3, 6, discount=0.75).fit(TINY)      # ids 3, 4, 5 never seen
    p1 = lm.next_token_distribution([])
    np.testing.assert_array_equal(lm.next_token_distribution([A, 5]), p1)
    np.testing.assert_array_equal(lm.next_token_distribution([5, A]),
                                  lm.next_token_distribution([A]))
    assert p1[3] == p1[4] == p1[5] > 0                # only the uniform floor
    assert math.isfinite(lm.cross_entropy([5, 4, A, B, 3]))


def test_modified_discounts_are_estimated_per_order(markov):
    _, v, train, _ = markov
    lm = NGramLM(3, v, discount="modified").fit(train)
    for k in (1, 2, 3):
        d1, d2, d3 = lm.discounts[k]
        assert 0 < d1 <= 1 and 0 < d2 <= 2 and 0 < d3 <= 3


# ----------------------------------------------------------------- held-out loss
def test_cross_entropy_matches_the_distributions(markov):
    _, v, train, val = markov
    lm = NGramLM(3, v).fit(train)
    ids = val[:300]
    slow = -np.mean([lm.log_prob(ids[max(0, t - 2):t], int(ids[t])) for t in range(1, len(ids))])
    assert lm.cross_entropy(ids) == pytest.approx(slow, rel=1e-12)


def test_markov_corpus_approaches_its_entropy_rate(markov):
    """The source is an order-2 Markov chain: a trigram model has exactly the right context,
    so its held-out loss comes within a few percent of the entropy rate; shorter contexts
    cannot see the structure."""
    corpus, v, train, val = markov
    h = corpus.entropy_rate_nats
    losses = {n: NGramLM(n, v).fit(train).cross_entropy(val) for n in range(1, 6)}
    assert losses[1] > losses[2] > losses[3]
    assert abs(losses[3] / h - 1) < 0.03
    assert losses[5] < 1.1 * h                     # longer contexts only add sparsity
    assert NGramLM(3, v, "modified").fit(train).cross_entropy(val) / h - 1 < 0.03


def test_generate_is_seeded_and_follows_the_chain(markov):
    _, v, train, _ = markov
    lm = NGramLM(3, v).fit(train)
    a = lm.generate(train[:2], 200, seed=1)
    assert a.dtype == np.int64 and len(a) == 202 and (a[:2] == train[:2]).all()
    assert (a == lm.generate(train[:2], 200, seed=1)).all()
    assert lm.cross_entropy(a) < 1.2 * lm.cross_entropy(train[:2000])
    greedy = lm.generate([], 5, do_sample=False)
    assert greedy[0] == lm.next_token_distribution([]).argmax()


# ----------------------------------------------------------------- errors
@pytest.mark.parametrize("order", [0, 6, 2.0, True])
def test_bad_order(order):
    with pytest.raises(ValueError, match="order must be an integer in 1..5"):
        NGramLM(order, 10)


@pytest.mark.parametrize("discount", [0, 1.5, -0.1, "kneser"])
def test_bad_discount(discount):
    with pytest.raises(ValueError, match="discount"):
        NGramLM(2, 10, discount)


def test_bad_ids():
    lm = NGramLM(2, 3)
    with pytest.raises(RuntimeError, match="call fit"):
        lm.next_token_distribution([0])
    with pytest.raises(ValueError, match=r"token id 3 is outside the vocabulary of size 3 "
                                         r"\(accepted: 0..2\)"):
        lm.fit([0, 1, 3])
    with pytest.raises(ValueError, match="token id -1"):
        lm.fit([0, -1])
    with pytest.raises(TypeError, match="integers"):
        lm.fit([0.5, 1.0])
    with pytest.raises(ValueError, match="1-D"):
        lm.fit([[0, 1]])
    lm.fit([0, 1, 2])
    with pytest.raises(ValueError, match="token id 7"):
        lm.next_token_distribution([7])
    with pytest.raises(ValueError, match="next_token 3"):
        lm.log_prob([0], 3)
    with pytest.raises(ValueError, match="at least 2"):
        lm.cross_entropy([1])
