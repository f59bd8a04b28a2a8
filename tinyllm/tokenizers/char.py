"""Character-level tokenizer: one id per distinct character of the training text.

The simplest tokenizer there is, and the right one for the synthetic Markov corpus, whose
entropy rate is stated per character. Ids ``0 .. R-1`` are the training text's characters in
code-point order; the special tokens follow.

Characters never seen in training follow the ``unk`` policy: ``"replace"`` (default) maps them
to ``[UNK]``; ``"error"`` raises, naming the character and its position. Round trips
``decode(encode(s)) == s`` therefore hold for text drawn from the training characters.

>>> tok = CharTokenizer(special_tokens=["[UNK]"]).train("abcab")
>>> tok.encode("cab?")
[2, 0, 1, 3]
>>> tok.decode([2, 0, 1])
'cab'
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable

from .base import Tokenizer, TokenizerFileError, check_valid_unicode
from .special import DEFAULT_SPECIAL_TOKENS, UNK

UNK_POLICIES = ("replace", "error")


class CharTokenizer(Tokenizer):
    """One token per character; unseen characters become ``[UNK]`` or raise (``unk="error"``)."""

    type_name = "char"

    def __init__(
        self, special_tokens: Iterable[str] = DEFAULT_SPECIAL_TOKENS, unk: str = "replace"
    ):
        super().__init__(special_tokens)
        if unk not in UNK_POLICIES:
            raise ValueError(f"unk must be one of {UNK_POLICIES}, got {unk!r}")
        self.unk = unk
        self._set_chars([])

    def _set_chars(self, chars: list[str]) -> None:
        self._chars = list(chars)
        self._stoi = {c: i for i, c in enumerate(self._chars)}
        self._assign_special_ids()

    def _vocab_changed(self) -> None:
        self._piece_list = self._chars + self._special_list

    @property
    def num_regular_tokens(self) -> int:
        return len(self._chars)

    @property
    def chars(self) -> list[str]:
        """The regular vocabulary: character ``i`` has id ``i``."""
        return list(self._chars)

    def train(self, text: str, vocab_size: int | None = None) -> CharTokenizer:
        """Take the vocabulary from the characters of ``text``.

        With ``vocab_size`` (specials included), keep only the most frequent characters
        (ties broken by code point); the rest become ``[UNK]``.
        """
        if not isinstance(text, str):
            raise TypeError(f"train() expects str, got {type(text).__name__}")
        if not text:
            raise ValueError("cannot train on empty text: it has no characters to learn")
        check_valid_unicode(text, "training text")
        counts = Counter(text)
        if vocab_size is None:
            chars = sorted(counts)
        else:
            n_special = len(self._special_list)
            if isinstance(vocab_size, bool) or not isinstance(vocab_size, int):
                raise TypeError(f"vocab_size must be an int or None, got {vocab_size!r}")
            if vocab_size <= n_special:
                raise ValueError(
                    f"vocab_size={vocab_size} leaves no room for characters: the "
                    f"{n_special} special tokens take {n_special} ids, so it must be at least "
                    f"{n_special + 1}"
                )
            by_freq = sorted(counts, key=lambda c: (-counts[c], c))
            chars = sorted(by_freq[: vocab_size - n_special])
        self._set_chars(chars)
        return self

    def encode_ordinary(self, text: str) -> list[int]:
        stoi = self._stoi
        try:
            return [stoi[c] for c in text]
        except KeyError:
            pass  # an unseen character: apply the [UNK] policy below
        unk_id = self._special.get(UNK) if self.unk == "replace" else None
        if unk_id is not None:
            return [stoi.get(c, unk_id) for c in text]
        if not self._chars:
            raise ValueError("this CharTokenizer has no vocabulary yet: call train(text) first")
        pos, ch = next((i, c) for i, c in enumerate(text) if c not in stoi)
        why = (
            "unk='error' was chosen"
            if self.unk == "error"
            else "this tokenizer has no [UNK] special token to stand for it"
        )
        raise ValueError(
            f"character {ch!r} (U+{ord(ch):04X}) at position {pos} is not in the vocabulary of "
            f"{len(self._chars)} characters, and {why}. Train on text that contains it, or "
            "use unk='replace' with [UNK] among the special tokens"
        )

    def _pieces(self) -> list[str]:
        return self._piece_list

    def _state(self) -> dict:
        return {"unk": self.unk, "chars": list(self._chars)}

    @classmethod
    def _from_state(cls, data: dict, where: str) -> CharTokenizer:
        unk = data.get("unk", "replace")
        if unk not in UNK_POLICIES:
            raise TokenizerFileError(f'{where}: "unk" must be one of {UNK_POLICIES}, got {unk!r}')
        chars = data.get("chars")
        if not isinstance(chars, list):
            raise TokenizerFileError(f'{where}: "chars" must be a list of characters')
        for i, c in enumerate(chars):
            if not isinstance(c, str) or len(c) != 1:
                raise TokenizerFileError(
                    f'{where}: "chars"[{i}] is {c!r}; each entry must be one character'
                )
        if len(set(chars)) != len(chars):
            dup = next(c for c in chars if chars.count(c) > 1)
            raise TokenizerFileError(f'{where}: character {dup!r} appears twice in "chars"')
        tok = cls(special_tokens=(), unk=unk)
        tok._set_chars(chars)
        return tok
