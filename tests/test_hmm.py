"""The hidden Markov source (`tinyllm.data.hmm`, corpus "hmm") and its estimated floor.

Exact answers: the forward algorithm's likelihood equals the sum over every hidden path; an HMM
whose states write their own symbol is a Markov chain, whose entropy rate is exact, and the
estimate's interval must hold it; a window of one character has the entropy of the stationary
emission distribution.
"""

import itertools
import math

import numpy as np
import pytest

from tinyllm.data import load_corpus
from tinyllm.data.hmm import HiddenMarkovSource


def _small(seed=0, **kw):
    return HiddenMarkovSource.random(**{"states": 3, "alphabet": "ab", "branching": 2,
                                        "emit_branching": 2, "epsilon": 0.2, "seed": seed,
                                        **kw})


def _entropy(p):
    p = p[p > 0]
    return float(-(p * np.log(p)).sum())


def test_forward_likelihood_equals_the_sum_over_every_hidden_path():
    src = _small()
    T, E, pi = src.transitions, src.emissions, src.stationary()
    for text in ("abbab", "aaaaa", "b"):
        x = src.encode(text)
        total = 0.0
        for path in itertools.product(range(3), repeat=len(x)):
            p = pi[path[0]] * E[path[0], x[0]]
            for t in range(1, len(x)):
                p *= T[path[t - 1], path[t]] * E[path[t], x[t]]
            total += p
        assert src.log_likelihood(text) == pytest.approx(math.log(total), rel=1e-12)


def test_float32_beliefs_give_the_float64_losses():
    src = HiddenMarkovSource.random(states=200, alphabet=16, seed=7)
    codes = src.sample_codes(8, 300, seed=8)
    np.testing.assert_allclose(src.forward_losses(codes, dtype=np.float32),
                               src.forward_losses(codes), rtol=1e-4, atol=1e-5)


def test_a_source_whose_states_write_themselves_has_the_markov_chain_rate():
    """Identity emissions: the text is the hidden chain, whose rate is sum_s pi_s H(T_s)."""
    rng = np.random.default_rng(3)
    T = rng.dirichlet(np.ones(6) * 0.5, size=6) * 0.9 + 0.1 / 6
    src = HiddenMarkovSource("abcdef", T, np.eye(6))
    exact = float(src.stationary() @ np.array([_entropy(row) for row in T]))
    est = src.entropy_rate(chains=64, length=1024, burn_in=16)
    assert abs(est.nats - exact) < 1.5 * est.half_width, (est, exact)
    assert est.half_width < 0.02


def test_a_window_of_one_character_has_the_stationary_emission_entropy():
    src = HiddenMarkovSource.random(states=20, alphabet=8, seed=1)
    exact = _entropy(src.stationary() @ src.emissions)
    est = src.window_entropy(1, windows=40_000)
    assert abs(est.nats - exact) < 1.5 * est.half_width + 1e-3, (est, exact)


def test_longer_windows_fall_toward_the_rate():
    src = HiddenMarkovSource.random(states=64, alphabet=16, seed=2)
    rate = src.entropy_rate(chains=64, length=1024, burn_in=256)
    short, long = src.window_entropy(4, windows=4096), src.window_entropy(64, windows=1024)
    assert short.nats > long.nats > rate.nats - rate.half_width
    assert str(rate).startswith(f"{rate.nats:.4f} +- ")


def test_samples_follow_the_stationary_emission_distribution():
    src = HiddenMarkovSource.random(states=20, alphabet=8, seed=4)
    expected = src.stationary() @ src.emissions                        # (A,)
    text = src.sample(100_000, seed=5)
    freq = np.bincount(src.encode(text), minlength=8) / len(text)
    np.testing.assert_allclose(freq, expected, atol=0.01)
    codes = src.sample_codes(2000, 50, seed=6)
    np.testing.assert_allclose(np.bincount(codes.ravel(), minlength=8) / codes.size,
                               expected, atol=0.01)


def test_zipf_makes_a_few_states_common():
    def top_share(zipf):
        pi = np.sort(HiddenMarkovSource.random(states=256, zipf=zipf, seed=0).stationary())
        return pi[-10:].sum()
    assert top_share(1.0) > 3 * top_share(0.0)


def test_the_corpus_carries_its_estimated_rate(tmp_path, monkeypatch):
    monkeypatch.setenv("TINYLLM_CACHE", str(tmp_path))
    corpus = load_corpus("hmm", states=32, alphabet=8, length=3000, seed=1)
    rate = corpus.metadata["entropy_rate"]
    assert len(corpus.text) == 3000 and set(corpus.text) <= set("abcdefgh")
    assert corpus.entropy_rate_bits == pytest.approx(rate.nats / math.log(2))
    assert rate.relative_half_width < 0.004
    again = load_corpus("hmm", states=32, alphabet=8, length=3000, seed=1)
    assert again.text == corpus.text and again.entropy_rate_bits == corpus.entropy_rate_bits


def test_the_estimate_is_kept_on_disk_and_a_bad_cache_is_ignored(tmp_path, monkeypatch):
    from tinyllm.data.corpora import _hmm_source_and_rate

    monkeypatch.setenv("TINYLLM_CACHE", str(tmp_path))
    settings = (24, 8, 3, 3, 0.01, 1.0, 5)
    _hmm_source_and_rate.cache_clear()
    _, first = _hmm_source_and_rate(*settings)
    [cached] = tmp_path.glob("hmm-rate-*.json")
    _hmm_source_and_rate.cache_clear()
    cached.write_text('{"estimate": {"nats": 9.0, "half_width": 0.1, "tokens": 5}}')
    assert _hmm_source_and_rate(*settings)[1].nats == 9.0      # read back, not recomputed
    _hmm_source_and_rate.cache_clear()
    cached.write_text("not json")
    assert _hmm_source_and_rate(*settings)[1] == first          # damaged: computed again
    _hmm_source_and_rate.cache_clear()


@pytest.mark.parametrize("options, message", [
    ({"states": 1}, "states must be at least 2"),
    ({"branching": 0}, "branching must be an int in 1..8"),
    ({"emit_branching": 9}, "emit_branching must be an int in 1..8"),
    ({"epsilon": 0.0}, "epsilon must be in \\(0, 1\\]"),
    ({"zipf": -1}, "zipf must be a number in \\[0, 4\\]"),
])
def test_bad_settings_are_refused(options, message):
    with pytest.raises(ValueError, match=message):
        HiddenMarkovSource.random(**{"states": 8, "alphabet": 8, **options})


def test_bad_input_is_refused():
    src = _small()
    with pytest.raises(ValueError, match="text holds 'z', which is not in the alphabet 'ab'"):
        src.log_likelihood("abz")
    with pytest.raises(ValueError, match="codes must be \\(N, L\\)"):
        src.forward_losses(np.zeros(4, dtype=int))
    with pytest.raises(ValueError, match="chains >= 2 and 0 <= burn_in < length"):
        src.entropy_rate(chains=4, length=10, burn_in=10)
    with pytest.raises(TypeError, match="accepts states, alphabet"):
        load_corpus("hmm", order=2)
