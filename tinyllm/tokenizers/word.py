"""Word-level tokenizer: one id per distinct word, digit, ideograph, punctuation mark or space run.

The tokenizer of the translation tasks, where a sentence is a few dozen words and every token
should be one a person can read. ``WORD_PATTERN`` cuts text into pieces:

- a *word*: a run of letters of any script but the CJK ideographs, with ONE leading space
  attached, as in GPT-2: ``" jump"`` (after a space) and ``"jump"`` (at the start of a line) are
  two different tokens. Letters joined by underscores make one word (SCAN's ``I_TURN_LEFT``),
  and combining accents (U+0300-U+036F and the other combining-diacritic blocks) stay with their
  letter, so a decomposed ``"de\\u0301cembre"`` is one word too (the vowel signs of other
  scripts, such as Devanagari's, are not letters to ``re``: they become pieces of their own);
- a *digit*: each its own token, so no number is ever unknown (``"2023"`` is four tokens);
- a *CJK ideograph*: each its own token (``"三千零五"`` is four), with 〇 and the other
  ideographic numerals of U+3005-U+303A;
- *whitespace*: a run, less its last space when a word follows (that space belongs to the word);
- anything else (punctuation, symbols, emoji, a lone underscore): one character each.

Every character falls in exactly one branch, so the pieces concatenate back to the text, and
``decode(encode(s)) == s`` for every ``s`` whose pieces were all seen in training: exact-match
scores of translations are exact. A piece never seen becomes ``[UNK]`` (and decodes to that
marker), or raises with ``unk="error"``.

Ids ``0 .. R-1`` are the training pieces by falling count, ties in code-point order; the special
tokens follow (``[PAD] [UNK] ... <|endoftext|>`` by default, as for every tinyllm tokenizer).

>>> split_words("jump twice, 5 décembre")
['jump', ' twice', ',', ' ', '5', ' décembre']
>>> tok = WordTokenizer().train(["jump twice after walk left", "walk twice"])
>>> [tok.id_to_token(i) for i in tok.encode("walk twice")]
['walk', ' twice']
>>> tok.decode(tok.encode("run twice"))
'[UNK] twice'
"""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Iterable, Sequence

from .base import Tokenizer, TokenizerFileError, check_valid_unicode
from .char import UNK_POLICIES
from .special import DEFAULT_SPECIAL_TOKENS, UNK

# CJK ideographs: the unified blocks (Extension A, the main block, the compatibility
# ideographs, the supplementary planes 2-3) and the ideographic marks and numerals 々〆〇, 〡-〩,
# 〸-〺. They are "word" characters to ``re``; the word branch excludes them.
_CJK = r"\u3005-\u3007\u3021-\u3029\u3038-\u303a\u3400-\u4dbf\u4e00-\u9fff\uf900-\ufaff" \
       r"\U00020000-\U0003ffff"
# A letter: a word character that is not a digit, an underscore or a CJK ideograph.
_LETTER = rf"[^\W\d_{_CJK}]"
# Combining diacritical marks (they are not word characters to ``re``).
_MARK = r"[\u0300-\u036f\u1ab0-\u1aff\u1dc0-\u1dff\u20d0-\u20ff\ufe20-\ufe2f]"
_WORD = rf" ?{_LETTER}(?:{_LETTER}|{_MARK})*(?:_{_LETTER}(?:{_LETTER}|{_MARK})*)*"

#: The pre-tokenizer: a word (one leading space attached), a digit, a CJK ideograph, a
#: whitespace run (leaving its last space to a following word), or any other single character.
WORD_PATTERN = rf"{_WORD}|\d|[{_CJK}]|\s+(?!\S)|\s+|\S"
_WORD_RE = re.compile(WORD_PATTERN)


def split_words(text: str) -> list[str]:
    """Cut ``text`` into the pieces ``WordTokenizer`` gives ids to; they join back to ``text``.

    >>> split_words("I_TURN_LEFT I_WALK")
    ['I_TURN_LEFT', ' I_WALK']
    >>> split_words("二〇二三年 5. März")
    ['二', '〇', '二', '三', '年', ' ', '5', '.', ' März']
    """
    return _WORD_RE.findall(text)


class WordTokenizer(Tokenizer):
    """One token per distinct piece of ``split_words``; unseen pieces become ``[UNK]`` or raise
    (``unk="error"``)."""

    type_name = "word"
    piece_kind = "words"

    def __init__(
        self, special_tokens: Iterable[str] = DEFAULT_SPECIAL_TOKENS, unk: str = "replace"
    ):
        super().__init__(special_tokens)
        if unk not in UNK_POLICIES:
            raise ValueError(f"unk must be one of {UNK_POLICIES}, got {unk!r}")
        self.unk = unk
        self._set_pieces([])

    def _set_pieces(self, pieces: list[str]) -> None:
        self._words = list(pieces)
        self._stoi = {p: i for i, p in enumerate(self._words)}
        self._assign_special_ids()

    def _vocab_changed(self) -> None:
        self._piece_list = self._words + self._special_list

    @property
    def num_regular_tokens(self) -> int:
        return len(self._words)

    @property
    def pieces(self) -> list[str]:
        """The regular vocabulary: piece ``i`` has id ``i``."""
        return list(self._words)

    # ------------------------------------------------------------------ training

    def train(self, text: str | Sequence[str], min_frequency: int = 1,
              max_vocab: int | None = None, *, vocab_size: int | None = None) -> WordTokenizer:
        """Take the vocabulary from the pieces of ``text`` (one string, or a list of strings
        whose pieces are counted one string at a time).

        Pieces seen fewer than ``min_frequency`` times are left out; ``max_vocab`` (specials
        included; ``vocab_size`` is the base class's name for it) keeps only the most frequent.
        The rest become ``[UNK]``.
        """
        texts = self._training_texts(text)
        counts: Counter = Counter()
        for t in texts:
            counts.update(split_words(t))
        if not counts:
            raise ValueError("cannot train on empty text: it has no words to learn")
        if isinstance(min_frequency, bool) or not isinstance(min_frequency, int) \
                or min_frequency < 1:
            raise ValueError(f"min_frequency must be a positive integer, got {min_frequency!r}")
        cap = self._vocab_cap(max_vocab, vocab_size)
        ranked = sorted((p for p, c in counts.items() if c >= min_frequency),
                        key=lambda p: (-counts[p], p))
        if not ranked:
            raise ValueError(
                f"no piece occurs min_frequency={min_frequency} times (the most frequent, "
                f"{max(counts, key=counts.get)!r}, occurs {max(counts.values())} times); "
                "lower min_frequency or train on more text")
        if cap is not None:
            ranked = ranked[: cap - len(self._special_list)]
        self._set_pieces(ranked)
        return self

    @staticmethod
    def _training_texts(text) -> list[str]:
        if isinstance(text, str):
            texts = [text]
        elif isinstance(text, Sequence) and all(isinstance(t, str) for t in text):
            texts = list(text)
        else:
            raise TypeError(f"train() expects str or a list of str, got {type(text).__name__}")
        for i, t in enumerate(texts):
            check_valid_unicode(t, "training text" if len(texts) == 1 else f"training text {i}")
        return texts

    def _vocab_cap(self, max_vocab, vocab_size) -> int | None:
        if max_vocab is not None and vocab_size is not None and max_vocab != vocab_size:
            raise ValueError(f"max_vocab={max_vocab!r} and vocab_size={vocab_size!r} name the "
                             "same limit; give one of them")
        cap = max_vocab if max_vocab is not None else vocab_size
        if cap is None:
            return None
        if isinstance(cap, bool) or not isinstance(cap, int):
            raise TypeError(f"max_vocab must be an int or None, got {cap!r}")
        n_special = len(self._special_list)
        if cap <= n_special:
            raise ValueError(
                f"max_vocab={cap} leaves no room for words: the {n_special} special tokens take "
                f"{n_special} ids, so it must be at least {n_special + 1}")
        return cap

    # ------------------------------------------------------------------ encoding

    def split_pieces(self, text: str) -> list[str]:
        return split_words(text)

    def encode_ordinary(self, text: str) -> list[int]:
        pieces = split_words(text)
        stoi = self._stoi
        try:
            return [stoi[p] for p in pieces]
        except KeyError:
            pass  # an unseen piece: apply the [UNK] policy below
        unk_id = self._special.get(UNK) if self.unk == "replace" else None
        if unk_id is not None:
            return [stoi.get(p, unk_id) for p in pieces]
        if not self._words:
            raise ValueError("this WordTokenizer has no vocabulary yet: call train(text) first")
        pos = 0
        for p in pieces:
            if p not in stoi:
                break
            pos += len(p)
        why = ("unk='error' was chosen" if self.unk == "error"
               else "this tokenizer has no [UNK] special token to stand for it")
        raise ValueError(
            f"piece {p!r} at character {pos} is not in the vocabulary of {len(self._words)} "
            f"pieces, and {why}. Train on text that contains it, or use unk='replace' with "
            "[UNK] among the special tokens")

    def _pieces(self) -> list[str]:
        return self._piece_list

    # ------------------------------------------------------------------ file

    def _state(self) -> dict:
        return {"unk": self.unk, "pattern": WORD_PATTERN, "pieces": list(self._words)}

    @classmethod
    def _from_state(cls, data: dict, where: str) -> WordTokenizer:
        unk = data.get("unk", "replace")
        if unk not in UNK_POLICIES:
            raise TokenizerFileError(f'{where}: "unk" must be one of {UNK_POLICIES}, got {unk!r}')
        pattern = data.get("pattern", WORD_PATTERN)
        if pattern != WORD_PATTERN:
            raise TokenizerFileError(
                f'{where}: "pattern" {str(pattern)[:80]!r} is not this tinyllm\'s WORD_PATTERN; '
                "the pieces were cut by another rule, so this file cannot be read as it is")
        pieces = data.get("pieces")
        if not isinstance(pieces, list):
            raise TokenizerFileError(f'{where}: "pieces" must be a list of strings')
        seen: set[str] = set()
        for i, p in enumerate(pieces):
            if not isinstance(p, str) or split_words(p) != [p]:
                raise TokenizerFileError(
                    f'{where}: "pieces"[{i}] is {p!r}; each entry must be one piece of '
                    "split_words (a word, a digit, an ideograph, a whitespace run or one "
                    "other character)")
            if p in seen:
                raise TokenizerFileError(f'{where}: piece {p!r} appears twice in "pieces"')
            seen.add(p)
        tok = cls(special_tokens=(), unk=unk)
        tok._set_pieces(pieces)
        return tok
