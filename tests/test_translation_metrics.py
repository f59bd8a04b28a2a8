"""Tests for tinyllm.tasks.translation_metrics: BLEU by hand, and sacrebleu on random corpora."""

import doctest
import math
import random

import pytest

from tinyllm.tasks import translation_metrics as tm
from tinyllm.tasks.translation_metrics import (
    brevity_penalty,
    chrf,
    closest_ref_length,
    compute_bleu,
    corpus_bleu,
    exact_match,
    modified_precision,
    ngram_counts,
    sentence_bleu,
    tokenize_13a,
    tokenize_char,
    tokenize_zh,
)

# Words that exercise every 13a rule: numbers with . , -, apostrophes, hyphens, SGML escapes,
# <skipped>, brackets, accents, and punctuation glued to words.
WORDS = ["the", "cat", "sat", "on", "mat", "The", "a", "dog", "it's", "well-known", "3.14",
         "1,000", "12-3", "x.", "end,", ",", ".", "!", "?", "(", ")", '"', "&quot;", "&amp;lt;",
         "<skipped>", "-", "--", "...", "$5", "e.g.", "U.S.", "naïve", "über", "l'école", "5.",
         ".5", "a-\nb", "jump", "twice", "I_TURN_LEFT", "{x}", "[y]", "@home", "50%", "#1"]
# Chinese text, with the characters sacrebleu's zh table adds (“ ” — €), an Extension B
# ideograph it leaves out, and mixed Latin text and numbers.
ZH_WORDS = ["我", "有", "三", "个", "苹果", "。", "，", "3.5", "2023年", "“", "”", "—", "abc",
            "hello,", "€5", "\U00020000", "〇", "三千零五", "十二月", "５", "（", "）", "x.y", "…"]
SEPARATORS = [" ", " ", " ", " ", "", "  ", "\t"]


def _sentence(rng, words, max_len):
    n = rng.choice([0, 1, 2, rng.randint(0, max_len)])
    parts = [rng.choice(words) for _ in range(n)]
    return "".join(p + rng.choice(SEPARATORS) for p in parts).strip(" ") if parts else ""


def _perturb(rng, sentence, words):
    """A reference that shares some n-grams with the hypothesis, so precisions are not all 0."""
    tokens = sentence.split()
    out = []
    for tok in tokens:
        r = rng.random()
        if r < 0.15:
            continue
        out.append(rng.choice(words) if r < 0.35 else tok)
        if rng.random() < 0.1:
            out.append(rng.choice(words))
    return " ".join(out)


def random_corpus(seed, words=WORDS, n=25, max_len=14):
    rng = random.Random(seed)
    hyps = [_sentence(rng, words, max_len) for _ in range(n)]
    n_refs = rng.choice([1, 2, 3])
    streams = [[_perturb(rng, h, words) if rng.random() < 0.8 else _sentence(rng, words, max_len)
                for h in hyps] for _ in range(n_refs)]
    if n_refs > 1:                       # a missing k-th reference for some sentences
        streams[-1][rng.randrange(n)] = None
    return hyps, streams


@pytest.fixture(scope="module")
def sacrebleu():
    return pytest.importorskip("sacrebleu")


# ---------------------------------------------------------------------- BLEU by hand


def test_papineni_clipped_precision():
    # Papineni et al. (2002), section 2.1: "the" occurs at most twice in one reference.
    hyp = "the the the the the the the".split()
    refs = ["the cat is on the mat".split(), "there is a cat on the mat".split()]
    assert modified_precision(hyp, refs, 1) == (2, 7)
    assert modified_precision(hyp, refs, 2) == (0, 6)
    # The clip is the largest count in ONE reference, not the sum over references.
    assert modified_precision("the the the".split(), [["the", "a"], ["the", "b"]], 1) == (1, 3)


def test_hand_computed_bleu():
    score = corpus_bleu(["the cat sat on the mat"], [["the cat is on the mat"]])
    assert score.counts == (5, 3, 1, 0) and score.totals == (6, 5, 4, 3)
    # "exp" smoothing: the first order without a match gets 1 / (2 * total).
    p = [5 / 6, 3 / 5, 1 / 4, 1 / (2 * 3)]
    assert score.score == pytest.approx(100 * math.exp(sum(map(math.log, p)) / 4), rel=1e-12)
    assert score.bp == 1.0 and (score.sys_len, score.ref_len) == (6, 6)
    floor = corpus_bleu(["the cat sat on the mat"], [["the cat is on the mat"]],
                        smooth_method="floor")
    p[3] = 0.1 / 3
    assert floor.score == pytest.approx(100 * math.exp(sum(map(math.log, p)) / 4), rel=1e-12)
    assert corpus_bleu(["the cat sat on the mat"], [["the cat is on the mat"]],
                       smooth_method="none").score == 0.0
    addk = corpus_bleu(["the cat sat on the mat"], [["the cat is on the mat"]],
                       smooth_method="add-k")
    p = [5 / 6, 4 / 6, 2 / 5, 1 / 4]       # +1 on the matches and totals of orders 2..4
    assert addk.score == pytest.approx(100 * math.exp(sum(map(math.log, p)) / 4), rel=1e-12)


def test_brevity_penalty_cases():
    assert brevity_penalty(10, 10) == 1.0
    assert brevity_penalty(12, 10) == 1.0
    assert brevity_penalty(5, 10) == pytest.approx(math.exp(-1))
    assert brevity_penalty(0, 5) == 0.0
    # The closest reference length; the shorter one on a tie.
    assert closest_ref_length(5, [3, 7, 9]) == 3
    assert closest_ref_length(8, [3, 7, 9]) == 7
    assert closest_ref_length(8, [9, 3]) == 9
    # The penalty is a corpus one: a short and a long sentence balance out.
    s = corpus_bleu(["a b", "c d e f g h"], [["a b c d", "c d e f"]])
    assert (s.sys_len, s.ref_len, s.bp) == (8, 8, 1.0)
    short = corpus_bleu(["a b c d"], [["a b c d e f g h"]])     # every precision is 1
    assert short.bp == pytest.approx(math.exp(1 - 8 / 4))
    assert short.score == pytest.approx(100 * math.exp(-1), rel=1e-12)
    # Of several references, the one closest in length sets r.
    assert corpus_bleu(["a b c"], [["a b c d e f"], ["a b c x"]]).ref_len == 4


def test_empty_hypotheses_and_short_sentences():
    empty = corpus_bleu(["", ""], [["a b", "c"]])
    assert (empty.score, empty.bp, empty.sys_len, empty.ref_len) == (0.0, 0.0, 0, 3)
    assert empty.totals == (0, 0, 0, 0)
    # Corpus BLEU has no 4-gram in a corpus of 3-word sentences: 0 unless the order is effective.
    assert corpus_bleu(["a b c"], [["a b c"]]).score == 0.0
    effective = corpus_bleu(["a b c"], [["a b c"]], use_effective_order=True)
    assert effective.score == pytest.approx(100.0)
    assert sentence_bleu("a b c", ["a b c"]).score == pytest.approx(100.0)
    assert sentence_bleu("", ["a"]).score == 0.0


def test_ngram_counts_and_lowercase():
    assert ngram_counts(["a", "a"], 2) == {("a",): 2, ("a", "a"): 1}
    assert corpus_bleu(["THE CAT"], [["the cat"]], lowercase=True,
                       use_effective_order=True).score == pytest.approx(100.0)
    assert corpus_bleu(["THE CAT"], [["the cat"]]).counts == (0, 0, 0, 0)


def test_str_like_sacrebleu():
    s = compute_bleu([14, 10, 6, 3], [20, 19, 18, 17], 21, 20)
    assert str(s).startswith("BLEU = ")
    assert str(s).endswith("(BP = 1.000 ratio = 1.050 hyp_len = 21 ref_len = 20)")
    assert "70.0/52.6/33.3/17.6" in str(s)


# ---------------------------------------------------------------------- tokenizers


def test_13a_rules():
    assert tokenize_13a("Hello, world!") == ["Hello", ",", "world", "!"]
    assert tokenize_13a("1,000.50 and 3-4") == ["1,000.50", "and", "3", "-", "4"]
    assert tokenize_13a("well-known isn't") == ["well-known", "isn't"]
    assert tokenize_13a("&quot;x&quot; &amp;lt;") == ['"', "x", '"', "<"]
    assert tokenize_13a("a<skipped>b hy-\nphen\nnext") == ["ab", "hyphen", "next"]
    assert tokenize_13a("end.") == ["end", "."]
    assert tokenize_zh("end 3.") == ["end", "3."]     # zh does not pad the line's ends
    assert tokenize_char("a b\tc") == ["a", "b", "c"]
    assert tm.bleu_tokenize(" Cat. ", "13a", lowercase=True) == ["cat", "."]


@pytest.mark.parametrize("seed", range(4))
def test_tokenizers_match_sacrebleu(sacrebleu, seed):
    from sacrebleu.tokenizers.tokenizer_13a import Tokenizer13a
    from sacrebleu.tokenizers.tokenizer_char import TokenizerChar
    from sacrebleu.tokenizers.tokenizer_zh import TokenizerZh

    rng = random.Random(seed)
    alphabet = "".join(map(chr, range(0x20, 0x7F))) + "\n\téü中文，。“”—€𠀀"
    texts = ["".join(rng.choice(alphabet) for _ in range(rng.randint(0, 40)))
             for _ in range(300)]
    texts += [_sentence(rng, WORDS + ZH_WORDS, 14) for _ in range(300)]
    ref_13a, ref_zh, ref_char = Tokenizer13a(), TokenizerZh(), TokenizerChar()
    for text in texts:
        assert " ".join(tokenize_13a(text)) == ref_13a(text), text
        assert " ".join(tokenize_zh(text)) == ref_zh(text), text
        assert tokenize_char(text) == ref_char(text).split(), text


def test_zh_table_matches_sacrebleu_code_point_by_code_point(sacrebleu):
    from sacrebleu.tokenizers.tokenizer_zh import TokenizerZh

    theirs = TokenizerZh._is_chinese_char
    ours = tm.is_zh_char
    mismatches = [cp for cp in range(0x40000) if ours(chr(cp)) != theirs(chr(cp))]
    assert mismatches == []
    assert ours("中") and ours("“") and not ours("\U00020000") and not ours("a")


# ---------------------------------------------------------------------- against sacrebleu


def _assert_same_bleu(ours, theirs, smooth_method):
    assert ours.score == pytest.approx(theirs.score, abs=1e-9)
    assert (ours.sys_len, ours.ref_len) == (theirs.sys_len, theirs.ref_len)
    assert ours.bp == pytest.approx(theirs.bp, abs=1e-12)
    if smooth_method != "add-k":     # sacrebleu reports add-k's smoothed counts; we report raw
        assert list(ours.counts) == list(theirs.counts)
        assert list(ours.totals) == list(theirs.totals)
        assert str(ours) == str(theirs)


@pytest.mark.parametrize("tokenize", ["13a", "none", "zh", "char"])
@pytest.mark.parametrize("smooth_method", ["exp", "floor", "add-k", "none"])
@pytest.mark.parametrize("seed", range(5))
def test_corpus_bleu_matches_sacrebleu(sacrebleu, tokenize, smooth_method, seed):
    words = ZH_WORDS + WORDS[:10] if tokenize == "zh" else WORDS
    hyps, refs = random_corpus(seed, words)
    lowercase = seed % 2 == 1
    ours = corpus_bleu(hyps, refs, tokenize=tokenize, smooth_method=smooth_method,
                       lowercase=lowercase)
    theirs = sacrebleu.corpus_bleu(hyps, refs, tokenize=tokenize, smooth_method=smooth_method,
                                   lowercase=lowercase, force=True)
    _assert_same_bleu(ours, theirs, smooth_method)


@pytest.mark.parametrize("seed", range(3))
def test_corpus_bleu_of_good_translations_matches_sacrebleu(sacrebleu, seed):
    # Mostly-correct hypotheses: every order has matches, so the score is far from 0.
    rng = random.Random(100 + seed)
    refs = [_sentence(rng, WORDS, 20) or "a" for _ in range(40)]
    hyps = [_perturb(rng, r, WORDS) for r in refs]
    ours, theirs = corpus_bleu(hyps, [refs]), sacrebleu.corpus_bleu(hyps, [refs])
    assert theirs.score > 20
    _assert_same_bleu(ours, theirs, "exp")


@pytest.mark.parametrize("seed", range(4))
def test_sentence_bleu_matches_sacrebleu(sacrebleu, seed):
    hyps, refs = random_corpus(seed)
    for i, hyp in enumerate(hyps):
        sentence_refs = [stream[i] for stream in refs if stream[i] is not None]
        ours = sentence_bleu(hyp, sentence_refs)
        theirs = sacrebleu.sentence_bleu(hyp, sentence_refs)
        _assert_same_bleu(ours, theirs, "exp")


@pytest.mark.parametrize("seed", range(5))
@pytest.mark.parametrize("words", ["latin", "zh"])
def test_chrf_matches_sacrebleu(sacrebleu, seed, words):
    hyps, refs = random_corpus(seed, ZH_WORDS if words == "zh" else WORDS)
    ours, theirs = chrf(hyps, refs), sacrebleu.corpus_chrf(hyps, refs)
    assert ours.score == pytest.approx(theirs.score, abs=1e-9)
    assert str(ours) == str(theirs)
    # The non-default switches against sacrebleu's CHRF class.
    metric = sacrebleu.metrics.CHRF(char_order=4, beta=1, lowercase=True, whitespace=True)
    ours = chrf(hyps, refs, char_order=4, beta=1, lowercase=True, remove_whitespace=False)
    assert ours.score == pytest.approx(metric.corpus_score(hyps, refs).score, abs=1e-9)


def test_chrf_by_hand():
    # "ab" vs "ab": both orders match fully; "abc" vs "abd": P = R = (2/3 + 1/2) / 2.
    assert chrf(["ab"], [["ab"]], char_order=2).score == pytest.approx(100.0)
    s = chrf(["abc"], [["abd"]], char_order=2)
    assert s.precision == pytest.approx(100 * (2 / 3 + 1 / 2) / 2)
    assert s.score == pytest.approx(s.precision)         # P = R: the F-score is P
    assert chrf([""], [["abc"]]).score == 0.0
    # Spaces are removed: word boundaries do not matter.
    assert chrf(["a bc"], [["ab c"]]).score == pytest.approx(100.0)


# ---------------------------------------------------------------------- exact match


def test_exact_match():
    assert exact_match(["jump twice ", "walk", "\trun\n"], ["jump twice", "run", "run"]) == \
        pytest.approx(2 / 3)
    assert exact_match(["Walk"], ["walk"]) == 0.0          # case matters
    assert exact_match(["a  b"], ["a b"]) == 0.0           # inner spaces matter
    assert exact_match([""], [" "]) == 1.0


# ---------------------------------------------------------------------- errors


@pytest.mark.parametrize("call, error, message", [
    (lambda: corpus_bleu(["a", "b", "c"], [["a", "b"]]), ValueError,
     r"3 hypotheses but reference stream 0 has 2 references"),
    (lambda: corpus_bleu([], [[]]), ValueError, r"empty corpus"),
    (lambda: corpus_bleu(["a"], [["a"]], tokenize="intl"), ValueError,
     r"unknown tokenizer 'intl'; accepted: 13a, none, zh, char"),
    (lambda: corpus_bleu(["a"], [["a"]], smooth_method="add-one"), ValueError,
     r"unknown smooth_method 'add-one'; accepted: exp, floor, add-k, none"),
    (lambda: corpus_bleu(["a", "b"], ["a", "b"]), TypeError, r"with one reference each, pass"),
    (lambda: corpus_bleu(["a"], []), ValueError, r"no reference stream"),
    (lambda: corpus_bleu("a b", [["a b"]]), TypeError, r"wrap a single sentence in a list"),
    (lambda: corpus_bleu(["a", 3], [["a", "b"]]), TypeError, r"hypotheses\[1\] is a int"),
    (lambda: corpus_bleu(["a", "b"], [["a", None]]), ValueError, r"hypothesis 1 has no ref"),
    (lambda: sentence_bleu("a", "a"), TypeError, r"wrap it in a list"),
    (lambda: sentence_bleu("a", []), ValueError, r"non-empty list"),
    (lambda: chrf(["a"], [["a", "b"]]), ValueError, r"1 hypotheses but reference stream 0"),
    (lambda: chrf([], [[]]), ValueError, r"empty corpus"),
    (lambda: exact_match(["a", "b"], ["a"]), ValueError, r"2 hypotheses but 1 references"),
    (lambda: exact_match([], []), ValueError, r"empty corpus"),
    (lambda: tm.bleu_tokenize("a", "moses"), ValueError, r"accepted: 13a, none, zh, char"),
])
def test_errors_say_what_was_wrong(call, error, message):
    with pytest.raises(error, match=message):
        call()


def test_doctests():
    result = doctest.testmod(tm)
    assert result.attempted > 5 and result.failed == 0
