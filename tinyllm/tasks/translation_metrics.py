"""Translation metrics: BLEU and chrF as sacrebleu computes them by default, and exact match.

BLEU (Papineni et al., 2002) compares the n-grams (n = 1..4) of each hypothesis with those of
its references, after a tokenizer (``"13a"`` by default) has cut both into words:

- *modified precision* ``p_n``: every hypothesis n-gram counts as a match at most as many times
  as it occurs in one reference (the most in any reference); the matches and the n-grams are
  summed over the whole corpus before dividing.
- *brevity penalty* ``BP = exp(1 - r / c)`` when the hypotheses are shorter than the
  references (``c`` hypothesis tokens, ``r`` the summed length of the reference closest in
  length to each hypothesis, the shorter on a tie), else 1.
- ``BLEU = BP * exp(mean_n log p_n)``, reported in percent (0-100).

An order without a single match would make BLEU 0; ``smooth_method`` says what to do (Chen and
Cherry, 2014): ``"exp"`` (the default, mteval's) gives the k-th such order the precision
``1 / (2^k * total_n)``; ``"floor"`` gives it ``smooth_value / total_n`` (0.1); ``"add-k"``
adds ``smooth_value`` (1) to the matches and totals of the orders n >= 2; ``"none"`` leaves it
0. A corpus with no unigram match scores 0 whatever the smoothing. ``sentence_bleu`` scores one
sentence with the *effective order*: orders longer than the hypothesis are left out of the mean.

>>> hyp = ["the cat sat on the mat"]
>>> refs = [["the cat is on the mat"]]     # one reference stream: refs[k][i] is for hyp[i]
>>> print(corpus_bleu(hyp, refs))
BLEU = 37.99 83.3/60.0/25.0/16.7 (BP = 1.000 ratio = 1.000 hyp_len = 6 ref_len = 6)

The clip, from the paper: seven "the" against "the cat is on the mat" (two "the") match twice.

>>> modified_precision("the the the the the the the".split(), ["the cat is on the mat".split()], 1)
(2, 7)

Tokenizers (``TOKENIZERS``): ``"13a"`` is mteval-v13a's (WMT's) rules: undo four SGML escapes,
then split off punctuation, keeping ``3.14``, ``1,000`` and words with ``'`` or ``-`` whole;
``"zh"`` makes each Chinese character (and the other characters of sacrebleu's Chinese table)
its own token, then applies the same punctuation rules; ``"char"`` makes every
non-space character a token; ``"none"`` splits at whitespace only.

>>> tokenize_13a("Hello, world! It's 3.14 (well-known).")
['Hello', ',', 'world', '!', "It's", '3.14', '(', 'well-known', ')', '.']
>>> tokenize_zh("我有3.5个苹果。")
['我', '有', '3.5', '个', '苹', '果', '。']

chrF (Popović, 2015) is the F-score of character n-grams (n = 1..6, spaces removed): the
precisions and recalls of the orders present are averaged over the corpus statistics, then
``chrF = (1 + beta^2) P R / (beta^2 P + R)`` with ``beta = 2`` (recall counts four times as much
as precision), in percent. With several references, each sentence takes the statistics of
the reference it scores best against.

>>> round(chrf(hyp, refs).score, 2)
64.58
>>> exact_match(["jump twice ", "walk"], ["jump twice", "run"])
0.5
"""

from __future__ import annotations

import math
import numbers
import re
from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import dataclass

__all__ = [
    "BLEUScore",
    "CHRFScore",
    "MAX_NGRAM_ORDER",
    "SMOOTH_METHODS",
    "TOKENIZERS",
    "bleu_tokenize",
    "brevity_penalty",
    "chrf",
    "closest_ref_length",
    "compute_bleu",
    "corpus_bleu",
    "exact_match",
    "is_zh_char",
    "modified_precision",
    "ngram_counts",
    "sentence_bleu",
    "tokenize_13a",
    "tokenize_char",
    "tokenize_none",
    "tokenize_zh",
]

#: BLEU-4: n-grams of orders 1 to 4.
MAX_NGRAM_ORDER = 4
#: Smoothing method -> its default ``smooth_value`` (None: the method takes no value).
SMOOTH_METHODS: dict[str, float | None] = {"exp": None, "floor": 0.1, "add-k": 1, "none": None}


# ---------------------------------------------------------------------- tokenizers

# mteval-v13a's punctuation class: every printable ASCII character that is neither a letter nor
# a digit, except the four that depend on their neighbours (' , - .). The space in it is
# harmless: whitespace is collapsed at the end.
_13A_SYMBOLS = "".join(c for c in map(chr, range(0x20, 0x7F))
                       if not c.isalnum() and c not in "',-.")
_13A_RULES = (
    (re.compile(f"([{re.escape(_13A_SYMBOLS)}])"), r" \1 "),
    (re.compile(r"([^0-9])([.,])"), r"\1 \2 "),   # a period or comma after a non-digit
    (re.compile(r"([.,])([^0-9])"), r" \1 \2"),   # a period or comma before a non-digit
    (re.compile(r"([0-9])(-)"), r"\1 \2 "),       # a hyphen after a digit
)
# mteval's "language-independent" part, in its order (so "&amp;lt;" becomes "<").
_13A_UNESCAPE = (("&quot;", '"'), ("&amp;", "&"), ("&lt;", "<"), ("&gt;", ">"))


def _punctuation_rules(text: str) -> list[str]:
    for pattern, replacement in _13A_RULES:
        text = pattern.sub(replacement, text)
    return text.split()


def tokenize_13a(text: str) -> list[str]:
    """mteval-v13a's tokens: drop ``<skipped>`` and end-of-line hyphens, join lines, undo
    ``&quot; &amp; &lt; &gt;``, then split off punctuation (``.`` and ``,`` only away from digits,
    ``-`` only after a digit).

    >>> tokenize_13a("1,000.5 km - that's 3-4 &quot;days&quot;")
    ['1,000.5', 'km', '-', "that's", '3', '-', '4', '"', 'days', '"']
    """
    text = text.replace("<skipped>", "").replace("-\n", "").replace("\n", " ")
    if "&" in text:
        for escaped, char in _13A_UNESCAPE:
            text = text.replace(escaped, char)
    return _punctuation_rules(f" {text} ")


# sacrebleu's table of "Chinese" characters: the CJK ideograph blocks, CJK punctuation, full-width
# forms, radicals, strokes, Bopomofo, enclosed and compatibility CJK, and some symbol blocks. Its
# rows for Extension B (U+20000-U+2A6D6) and the Compatibility Supplement (U+2F800-U+2FA1D) are
# written with four-digit escapes, so they stand for U+2001-U+2A6D (general punctuation such as
# “ ” — …, currency signs, arrows, mathematical symbols, dingbats, ...) and U+2F81-U+2FA1; the
# table below is what it matches, so that scores agree, and Extension B is not in it.
_ZH_RANGES = (
    (0x2001, 0x2A6D), (0x2E80, 0x2EFF), (0x2F00, 0x2FDF), (0x2FF0, 0x2FFF), (0x3000, 0x303F),
    (0x3100, 0x312F), (0x31A0, 0x31BF), (0x31C0, 0x31EF), (0x3200, 0x32FF), (0x3300, 0x33FF),
    (0x3400, 0x4DB5), (0x4E00, 0x9FBB), (0xF900, 0xFA2D), (0xFA30, 0xFA6A), (0xFA70, 0xFAD9),
    (0xFE10, 0xFE1F), (0xFE30, 0xFE4F), (0xFF00, 0xFFEF),
)
_ZH_CHAR = re.compile("([" + "".join(f"\\U{lo:08x}-\\U{hi:08x}" for lo, hi in _ZH_RANGES) + "])")


def is_zh_char(char: str) -> bool:
    """True when the ``"zh"`` tokenizer makes ``char`` a token of its own.

    >>> is_zh_char("中"), is_zh_char("a"), is_zh_char("。")
    (True, False, True)
    """
    return _ZH_CHAR.fullmatch(char) is not None


def tokenize_zh(text: str) -> list[str]:
    """Each Chinese character its own token; the rest by 13a's punctuation rules (without its
    SGML unescaping, and without padding the ends: a final ``3.`` stays one token)."""
    return _punctuation_rules(_ZH_CHAR.sub(r" \1 ", text.strip()))


def tokenize_char(text: str) -> list[str]:
    """Every character but whitespace is a token.

    >>> tokenize_char("to be")
    ['t', 'o', 'b', 'e']
    """
    return list("".join(text.split()))


def tokenize_none(text: str) -> list[str]:
    """Whitespace-separated words, as they are."""
    return text.split()


#: BLEU's tokenizers by name.
TOKENIZERS: dict[str, Callable[[str], list[str]]] = {
    "13a": tokenize_13a,
    "none": tokenize_none,
    "zh": tokenize_zh,
    "char": tokenize_char,
}


def _check_tokenizer(tokenize: str, where: str) -> Callable[[str], list[str]]:
    if not isinstance(tokenize, str) or tokenize not in TOKENIZERS:
        raise ValueError(f"{where}: unknown tokenizer {tokenize!r}; accepted: "
                         f"{', '.join(TOKENIZERS)}")
    return TOKENIZERS[tokenize]


def bleu_tokenize(text: str, tokenize: str = "13a", lowercase: bool = False) -> list[str]:
    """The tokens BLEU counts in ``text``: lower-cased on request, trailing whitespace dropped,
    then cut by the tokenizer named ``tokenize``."""
    func = _check_tokenizer(tokenize, "bleu_tokenize")
    if lowercase:
        text = text.lower()
    return func(text.rstrip())


# ---------------------------------------------------------------------- BLEU by hand


def ngram_counts(tokens: Sequence[str], max_order: int = MAX_NGRAM_ORDER) -> Counter:
    """How often each n-gram (a tuple of tokens) of order 1..``max_order`` occurs.

    >>> ngram_counts("a b a".split(), 2)
    Counter({('a',): 2, ('b',): 1, ('a', 'b'): 1, ('b', 'a'): 1})
    """
    counts: Counter = Counter()
    for n in range(1, max_order + 1):
        counts.update(_ngrams(tokens, n))
    return counts


def _ngrams(tokens: Sequence[str], n: int) -> Counter:
    tokens = list(tokens)
    return Counter(tuple(tokens[i:i + n]) for i in range(len(tokens) - n + 1))


def _max_reference_counts(references: Sequence[Sequence[str]], max_order: int) -> Counter:
    """Each n-gram's largest count in any one reference: the clip of modified precision."""
    clip: Counter = Counter()
    for ref in references:
        for ngram, count in ngram_counts(ref, max_order).items():
            if count > clip[ngram]:
                clip[ngram] = count
    return clip


def modified_precision(hypothesis: Sequence[str], references: Sequence[Sequence[str]],
                       n: int) -> tuple[int, int]:
    """``(clipped matches, n-grams)`` of order ``n`` of one tokenized hypothesis: each n-gram
    counts at most as often as it occurs in one reference."""
    hyp = _ngrams(hypothesis, n)
    clip = Counter()
    for ref in references:
        clip |= _ngrams(ref, n)           # | keeps the larger count of each n-gram
    return sum(min(c, clip[g]) for g, c in hyp.items()), sum(hyp.values())


def closest_ref_length(hyp_len: int, ref_lens: Sequence[int]) -> int:
    """The reference length nearest ``hyp_len``; the shorter one on a tie.

    >>> closest_ref_length(5, [3, 7, 9])
    3
    """
    return min(ref_lens, key=lambda r: (abs(r - hyp_len), r))


def brevity_penalty(sys_len: int, ref_len: int) -> float:
    """``exp(1 - ref_len / sys_len)`` when the hypotheses are shorter, else 1 (0 when empty).

    >>> round(brevity_penalty(18, 20), 4)
    0.8948
    """
    if sys_len >= ref_len:
        return 1.0
    return math.exp(1 - ref_len / sys_len) if sys_len > 0 else 0.0


def _segment_statistics(hyp: list[str], refs: list[list[str]],
                        max_order: int) -> tuple[int, int, list[int], list[int]]:
    """``(hyp_len, closest ref_len, matches per order, n-grams per order)`` of one sentence."""
    clip = _max_reference_counts(refs, max_order)
    counts, totals = [0] * max_order, [0] * max_order
    for ngram, count in ngram_counts(hyp, max_order).items():
        totals[len(ngram) - 1] += count
        counts[len(ngram) - 1] += min(count, clip[ngram])
    return len(hyp), closest_ref_length(len(hyp), [len(r) for r in refs]), counts, totals


@dataclass(frozen=True)
class BLEUScore:
    """A BLEU score (``score`` in 0-100) with the statistics it came from: ``counts[n-1]``
    clipped matches and ``totals[n-1]`` n-grams of order n, ``precisions`` in percent (after
    smoothing), the brevity penalty ``bp``, and the hypothesis and reference token counts."""

    score: float
    counts: tuple[int, ...]
    totals: tuple[int, ...]
    precisions: tuple[float, ...]
    bp: float
    sys_len: int
    ref_len: int

    @property
    def ratio(self) -> float:
        """``sys_len / ref_len`` (0 when there is no reference token)."""
        return self.sys_len / self.ref_len if self.ref_len else 0.0

    def __str__(self) -> str:
        precisions = "/".join(f"{p:.1f}" for p in self.precisions)
        return (f"BLEU = {self.score:.2f} {precisions} (BP = {self.bp:.3f} ratio = "
                f"{self.ratio:.3f} hyp_len = {self.sys_len:d} ref_len = {self.ref_len:d})")


def _check_smoothing(smooth_method: str, smooth_value, where: str) -> float | None:
    if not isinstance(smooth_method, str) or smooth_method not in SMOOTH_METHODS:
        raise ValueError(f"{where}: unknown smooth_method {smooth_method!r}; accepted: "
                         f"{', '.join(SMOOTH_METHODS)}")
    if smooth_value is None:
        return SMOOTH_METHODS[smooth_method]
    if isinstance(smooth_value, bool) or not isinstance(smooth_value, numbers.Real) \
            or not 0 < smooth_value < math.inf:
        raise ValueError(f"{where}: smooth_value must be a positive number or None, "
                         f"got {smooth_value!r}")
    return smooth_value


def _log(p: float) -> float:
    return math.log(p) if p > 0 else -math.inf


def compute_bleu(counts: Sequence[int], totals: Sequence[int], sys_len: int, ref_len: int,
                 smooth_method: str = "exp", smooth_value: float | None = None,
                 use_effective_order: bool = False) -> BLEUScore:
    """BLEU from its statistics (summed over a corpus); the order is ``len(counts)``.

    With ``use_effective_order``, the mean of the log precisions runs over the orders that have
    at least one n-gram (what ``sentence_bleu`` does).

    >>> print(compute_bleu([5, 3, 1, 0], [6, 5, 4, 3], 6, 6))
    BLEU = 37.99 83.3/60.0/25.0/16.7 (BP = 1.000 ratio = 1.000 hyp_len = 6 ref_len = 6)
    """
    value = _check_smoothing(smooth_method, smooth_value, "compute_bleu")
    if len(counts) != len(totals) or not counts:
        raise ValueError(f"compute_bleu: counts and totals must be non-empty and equally long, "
                         f"got {len(counts)} and {len(totals)}")
    order = len(counts)
    bp = brevity_penalty(sys_len, ref_len)
    precisions = [0.0] * order
    stats = (tuple(counts), tuple(totals))
    if not any(counts):
        return BLEUScore(0.0, *stats, tuple(precisions), bp, sys_len, ref_len)
    halvings, used = 1.0, order
    for n in range(order):
        matched, total = counts[n], totals[n]
        if smooth_method == "add-k" and n > 0:
            matched, total = matched + value, total + value
        if total == 0:
            break  # no n-grams of this order (nor of higher ones)
        if use_effective_order:
            used = n + 1
        if matched > 0:
            precisions[n] = 100.0 * matched / total
        elif smooth_method == "exp":
            halvings *= 2
            precisions[n] = 100.0 / (halvings * total)
        elif smooth_method == "floor":
            precisions[n] = 100.0 * value / total
    score = bp * math.exp(sum(_log(p) for p in precisions[:used]) / used)
    return BLEUScore(score, *stats, tuple(precisions), bp, sys_len, ref_len)


# ---------------------------------------------------------------------- corpus checks


def _check_hypotheses(hypotheses, where: str) -> list[str]:
    if isinstance(hypotheses, str) or not isinstance(hypotheses, Sequence):
        raise TypeError(f"{where}: hypotheses must be a list of strings, got "
                        f"{type(hypotheses).__name__}" +
                        ("; wrap a single sentence in a list" if isinstance(hypotheses, str)
                         else ""))
    for i, hyp in enumerate(hypotheses):
        if not isinstance(hyp, str):
            raise TypeError(f"{where}: hypotheses[{i}] is a {type(hyp).__name__}, not a string")
    if not hypotheses:
        raise ValueError(f"{where}: got an empty corpus; accepted: at least one hypothesis")
    return list(hypotheses)


def _references_per_hypothesis(references, n_hyp: int, where: str) -> list[list[str]]:
    """Reference streams (``references[k][i]`` is the k-th reference of hypothesis i) turned
    into each hypothesis's list of references; a ``None`` entry means "no k-th reference"."""
    if isinstance(references, str) or not isinstance(references, Sequence):
        raise TypeError(f"{where}: references must be a list of reference streams (lists of "
                        f"strings), got {type(references).__name__}")
    if not references:
        raise ValueError(f"{where}: got no reference stream; accepted: at least one list of "
                         "references, one per hypothesis")
    for k, stream in enumerate(references):
        if isinstance(stream, str) or not isinstance(stream, Sequence):
            raise TypeError(
                f"{where}: references[{k}] is a {type(stream).__name__}, not a reference "
                "stream; references must be a list of streams (references[k][i] is the k-th "
                "reference of hypothesis i): with one reference each, pass [references]")
        if len(stream) != n_hyp:
            raise ValueError(
                f"{where}: {n_hyp} hypotheses but reference stream {k} has {len(stream)} "
                "references; accepted: one entry per hypothesis in every stream (references[k]"
                "[i] is the k-th reference of hypothesis i, so a list of references per "
                "hypothesis must be transposed)")
        for i, ref in enumerate(stream):
            if ref is not None and not isinstance(ref, str):
                raise TypeError(f"{where}: references[{k}][{i}] is a {type(ref).__name__}, "
                                "not a string (or None for a missing reference)")
    per_hyp = [[ref for ref in refs if ref is not None] for refs in zip(*references)]
    missing = next((i for i, refs in enumerate(per_hyp) if not refs), None)
    if missing is not None:
        raise ValueError(f"{where}: hypothesis {missing} has no reference (every stream holds "
                         "None there); accepted: at least one reference per hypothesis")
    return per_hyp


# ---------------------------------------------------------------------- BLEU


def corpus_bleu(hypotheses: Sequence[str], references: Sequence[Sequence[str]],
                tokenize: str = "13a", smooth_method: str = "exp", lowercase: bool = False, *,
                smooth_value: float | None = None,
                use_effective_order: bool = False) -> BLEUScore:
    """Corpus BLEU-4 of ``hypotheses`` against reference streams, as sacrebleu's default.

    ``references[k][i]`` is the k-th reference of ``hypotheses[i]`` (sacrebleu's layout): with
    one reference per sentence, pass ``[refs]``. A stream may hold ``None`` where a sentence has
    fewer references. The statistics are summed over the corpus, then combined once.
    """
    where = "corpus_bleu"
    hyps = _check_hypotheses(hypotheses, where)
    per_hyp = _references_per_hypothesis(references, len(hyps), where)
    _check_tokenizer(tokenize, where)
    _check_smoothing(smooth_method, smooth_value, where)
    sys_len = ref_len = 0
    counts, totals = [0] * MAX_NGRAM_ORDER, [0] * MAX_NGRAM_ORDER
    for hyp, refs in zip(hyps, per_hyp):
        h_len, r_len, c, t = _segment_statistics(
            bleu_tokenize(hyp, tokenize, lowercase),
            [bleu_tokenize(r, tokenize, lowercase) for r in refs], MAX_NGRAM_ORDER)
        sys_len, ref_len = sys_len + h_len, ref_len + r_len
        counts = [a + b for a, b in zip(counts, c)]
        totals = [a + b for a, b in zip(totals, t)]
    return compute_bleu(counts, totals, sys_len, ref_len, smooth_method, smooth_value,
                        use_effective_order)


def sentence_bleu(hypothesis: str, references: Sequence[str], tokenize: str = "13a",
                  smooth_method: str = "exp", lowercase: bool = False, *,
                  smooth_value: float | None = None,
                  use_effective_order: bool = True) -> BLEUScore:
    """BLEU of one sentence against its references (a list of strings), as sacrebleu's
    ``sentence_bleu``: "exp" smoothing and the effective order.

    >>> round(sentence_bleu("the cat", ["the cat sat"]).score, 2)
    60.65
    """
    where = "sentence_bleu"
    if not isinstance(hypothesis, str):
        raise TypeError(f"{where}: hypothesis must be a string, got {type(hypothesis).__name__}")
    if isinstance(references, str):
        raise TypeError(f"{where}: references must be a list of strings, got the single string "
                        f"{references[:40]!r}; wrap it in a list")
    if not isinstance(references, Sequence) or not references:
        raise ValueError(f"{where}: references must be a non-empty list of strings, got "
                         f"{references!r}")
    return corpus_bleu([hypothesis], [[ref] for ref in references], tokenize, smooth_method,
                       lowercase, smooth_value=smooth_value,
                       use_effective_order=use_effective_order)


# ---------------------------------------------------------------------- chrF


@dataclass(frozen=True)
class CHRFScore:
    """A chrF score (``score`` in 0-100) with the averaged character n-gram ``precision`` and
    ``recall`` (percent) it combines."""

    score: float
    precision: float
    recall: float
    char_order: int = 6
    beta: float = 2

    def __str__(self) -> str:
        return f"chrF{self.beta:g} = {self.score:.2f}"


def _char_ngrams(text: str, order: int, remove_whitespace: bool) -> list[Counter]:
    if remove_whitespace:
        text = "".join(text.split())
    return [Counter(text[i:i + n] for i in range(len(text) - n + 1))
            for n in range(1, order + 1)]


def _chrf_statistics(hyp: list[Counter], ref: list[Counter]) -> list[int]:
    """``[hyp n-grams, ref n-grams, matches]`` per order; an order the reference lacks does not
    count the hypothesis's n-grams either (sacrebleu's rule)."""
    stats = []
    for h, r in zip(hyp, ref):
        matches = sum(min(c, r[g]) for g, c in h.items() if g in r)
        stats += [sum(h.values()) if r else 0, sum(r.values()), matches]
    return stats


def _chrf_average(stats: Sequence[int], beta: float) -> tuple[float, float, float]:
    """``(chrF, P, R)`` in percent from per-order statistics; orders with no hypothesis or no
    reference n-gram are left out of the averages."""
    prec = rec = 0.0
    used = 0
    for n_hyp, n_ref, matches in zip(stats[0::3], stats[1::3], stats[2::3]):
        if n_hyp > 0 and n_ref > 0:
            prec += matches / n_hyp
            rec += matches / n_ref
            used += 1
    if used:
        prec, rec = prec / used, rec / used
    if prec + rec == 0:
        return 0.0, 100 * prec, 100 * rec
    factor = beta ** 2
    return 100 * ((1 + factor) * prec * rec / (factor * prec + rec)), 100 * prec, 100 * rec


def chrf(hypotheses: Sequence[str], references: Sequence[Sequence[str]], *,
         char_order: int = 6, beta: float = 2, lowercase: bool = False,
         remove_whitespace: bool = True) -> CHRFScore:
    """Corpus chrF of ``hypotheses`` against reference streams (laid out as in
    ``corpus_bleu``), as sacrebleu's default chrF2 (character 6-grams, no word n-grams)."""
    where = "chrf"
    hyps = _check_hypotheses(hypotheses, where)
    per_hyp = _references_per_hypothesis(references, len(hyps), where)
    if isinstance(char_order, bool) or not isinstance(char_order, int) or char_order < 1:
        raise ValueError(f"{where}: char_order must be a positive integer, got {char_order!r}")
    if isinstance(beta, bool) or not isinstance(beta, numbers.Real) or not 0 <= beta < math.inf:
        raise ValueError(f"{where}: beta must be a non-negative number, got {beta!r}")
    total = [0] * (3 * char_order)
    for hyp, refs in zip(hyps, per_hyp):
        if lowercase:
            hyp, refs = hyp.lower(), [r.lower() for r in refs]
        h = _char_ngrams(hyp, char_order, remove_whitespace)
        best, best_f = None, -1.0
        for ref in refs:     # the reference this sentence scores best against; first on a tie
            stats = _chrf_statistics(h, _char_ngrams(ref, char_order, remove_whitespace))
            f = _chrf_average(stats, beta)[0]
            if f > best_f:
                best, best_f = stats, f
        total = [a + b for a, b in zip(total, best)]
    return CHRFScore(*_chrf_average(total, beta), char_order=char_order, beta=beta)


# ---------------------------------------------------------------------- exact match


def exact_match(hypotheses: Sequence[str], references: Sequence[str]) -> float:
    """The fraction of hypotheses equal to their reference once surrounding whitespace is
    stripped (one reference per hypothesis)."""
    where = "exact_match"
    hyps = _check_hypotheses(hypotheses, where)
    if isinstance(references, str) or not isinstance(references, Sequence):
        raise TypeError(f"{where}: references must be a list of strings, got "
                        f"{type(references).__name__}")
    if len(references) != len(hyps):
        raise ValueError(f"{where}: {len(hyps)} hypotheses but {len(references)} references; "
                         "accepted: one reference per hypothesis")
    for i, ref in enumerate(references):
        if not isinstance(ref, str):
            raise TypeError(f"{where}: references[{i}] is a {type(ref).__name__}, not a string")
    return sum(h.strip() == r.strip() for h, r in zip(hyps, references)) / len(hyps)
