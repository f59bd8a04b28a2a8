"""Special tokens: their names, and the rules that decide when their text is a control token.

A special token is a string such as ``"[CLS]"`` or ``"<|endoftext|>"`` that owns one id of its
own. It is never split into pieces and never merged with its neighbours. The danger is that the
*text* of a special token can also appear in ordinary user input ("type <|endoftext|> to stop").
Following tiktoken, ``Tokenizer.encode`` therefore takes ``allowed_special``: only the special
tokens named there become control ids; every other occurrence is encoded as the plain text it is.

tinyllm's default is ``allowed_special="none"`` with nothing disallowed: special-token text in
the input is encoded as ordinary characters, so user text cannot inject a control token by
accident. (tiktoken's default instead *raises* on such text; pass ``disallowed_special="all"``
to get that behaviour.) Code that builds model inputs adds special ids explicitly, by id.

>>> sorted(parse_allowed_special("all", ("[PAD]", "[SEP]")))
['[PAD]', '[SEP]']
>>> parse_allowed_special("none", ("[PAD]", "[SEP]"))
frozenset()
"""

from __future__ import annotations

import re
from collections.abc import Iterable

PAD = "[PAD]"
UNK = "[UNK]"
CLS = "[CLS]"
SEP = "[SEP]"
MASK = "[MASK]"
ENDOFTEXT = "<|endoftext|>"

#: The special tokens every tinyllm tokenizer gets unless told otherwise: BERT's five and GPT's one.
DEFAULT_SPECIAL_TOKENS: tuple[str, ...] = (PAD, UNK, CLS, SEP, MASK, ENDOFTEXT)


def validate_special_tokens(tokens: Iterable[str]) -> list[str]:
    """Return ``tokens`` as a list after checking each is a non-empty, unique string."""
    if isinstance(tokens, str):
        raise TypeError(
            f"special_tokens must be a list of strings, got the single string {tokens!r}; "
            f"wrap it in a list: [{tokens!r}]"
        )
    out: list[str] = []
    for tok in tokens:
        if not isinstance(tok, str) or not tok:
            raise ValueError(f"every special token must be a non-empty string, got {tok!r}")
        if tok in out:
            raise ValueError(f"special token {tok!r} is listed twice")
        out.append(tok)
    return out


def _as_token_set(value, known: tuple[str, ...], arg: str) -> frozenset[str]:
    if isinstance(value, str) or not isinstance(value, Iterable):
        raise ValueError(
            f"{arg} must be 'all', 'none' or a set of special-token strings, got {value!r}"
        )
    chosen = frozenset(value)
    unknown = sorted(t for t in chosen if t not in known)
    if unknown:
        raise ValueError(
            f"{arg} names {unknown}, which {'is' if len(unknown) == 1 else 'are'} not special "
            f"tokens of this tokenizer; its special tokens are {list(known)}"
        )
    return chosen


def parse_allowed_special(value, known: tuple[str, ...]) -> frozenset[str]:
    """Turn ``allowed_special`` ("all", "none" or a collection) into a set of token strings."""
    if value == "all":
        return frozenset(known)
    if value == "none" or value is None:
        return frozenset()
    return _as_token_set(value, known, "allowed_special")


def parse_disallowed_special(value, known: tuple[str, ...], allowed: frozenset[str]):
    """Turn ``disallowed_special`` ("all" or a collection) into a set of token strings.

    "all" means every special token that is not in ``allowed``, as in tiktoken.
    """
    if value == "all":
        return frozenset(known) - allowed
    if value == "none" or value is None:
        return frozenset()
    return _as_token_set(value, known, "disallowed_special") - allowed


def special_pattern(tokens: Iterable[str]) -> re.Pattern[str]:
    """A regex with one capturing group that matches any of ``tokens``, longest first.

    Longest first matters when one token is a prefix of another ("<|a|>" and "<|a|>x"):
    alternation in ``re`` takes the first branch that matches, not the longest.
    """
    ordered = sorted(tokens, key=lambda t: (-len(t), t))
    return re.compile("(" + "|".join(re.escape(t) for t in ordered) + ")")
