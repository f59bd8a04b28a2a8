"""The ``Tokenizer`` base class: train, encode, decode, save and load, with special tokens.

A tokenizer maps text to a list of integer ids and back. Every tinyllm tokenizer has the same
id layout::

    0 .. R-1            regular tokens (characters for CharTokenizer; bytes and merges for BPE;
                        words for WordTokenizer)
    R .. R+S-1          special tokens, in the order they were given ([PAD], [UNK], ...)

so ``vocab_size == R + S``. Subclasses provide the regular part (``num_regular_tokens``,
``encode_ordinary``, ``_pieces``) and their JSON state; this class handles special tokens,
id checking, and the versioned JSON file.

>>> from tinyllm.tokenizers import CharTokenizer
>>> tok = CharTokenizer().train("hello world")
>>> ids = tok.encode("hello")
>>> tok.decode(ids)
'hello'
>>> tok.encode("[SEP]", allowed_special="all") == [tok.sep_token_id]
True
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterable
from pathlib import Path
from typing import Any, ClassVar

import numpy as np

from .._io import atomic_write
from .special import (
    CLS,
    DEFAULT_SPECIAL_TOKENS,
    ENDOFTEXT,
    MASK,
    PAD,
    SEP,
    UNK,
    parse_allowed_special,
    parse_disallowed_special,
    special_pattern,
    validate_special_tokens,
)

#: The value of the "format" field of every tokenizer file.
FILE_FORMAT = "tinyllm-tokenizer"
#: The file version this code writes; it reads versions in ``SUPPORTED_VERSIONS``.
FILE_VERSION = 1
SUPPORTED_VERSIONS = (1,)


class TokenizerFileError(ValueError):
    """A tokenizer file (or dict) is malformed: the message says which field and why."""


def check_valid_unicode(text: str, what: str = "text") -> None:
    """Raise when ``text`` holds a lone surrogate, which no UTF-8 byte sequence can represent."""
    try:
        text.encode("utf-8")
    except UnicodeEncodeError as exc:
        ch = text[exc.start]
        raise ValueError(
            f"{what} contains the lone surrogate U+{ord(ch):04X} at position {exc.start}; "
            "it is not a valid Unicode character and has no UTF-8 encoding"
        ) from None


class Tokenizer:
    """Base class of all tinyllm tokenizers; ``Tokenizer.load(path)`` returns the right subclass."""

    #: The "type" field written to the JSON file; each concrete subclass sets its own.
    type_name: ClassVar[str] = ""
    #: True when ``_pieces()`` holds bytes (byte-level tokenizers), False when it holds str.
    byte_level: ClassVar[bool] = False
    #: What ``split_pieces`` cuts text into (messages about unseen pieces name them so).
    piece_kind: ClassVar[str] = "characters"
    _registry: ClassVar[dict[str, type[Tokenizer]]] = {}

    def __init_subclass__(cls, **kwargs):
        super().__init_subclass__(**kwargs)
        if cls.type_name:
            Tokenizer._registry[cls.type_name] = cls

    def __init__(self, special_tokens: Iterable[str] = DEFAULT_SPECIAL_TOKENS):
        self._special_list: list[str] = validate_special_tokens(special_tokens)
        self._special: dict[str, int] = {}
        self._id_to_special: dict[int, str] = {}
        self._split_patterns: dict[frozenset[str], Any] = {}

    # ------------------------------------------------------------------ subclass interface

    def split_pieces(self, text: str) -> list[str]:
        """``text`` cut into the pieces the vocabulary looks up one by one, each of which is
        one token or ``[UNK]``: characters (a word-level tokenizer: words)."""
        return list(text)

    @property
    def num_regular_tokens(self) -> int:
        """Number of ordinary (non-special) tokens; they take ids ``0 .. R-1``."""
        raise NotImplementedError

    def train(self, text: str, vocab_size: int | None = None):
        """Learn the regular vocabulary from ``text``; returns ``self`` so calls chain."""
        raise NotImplementedError

    def encode_ordinary(self, text: str) -> list[int]:
        """Encode ``text`` treating special-token text as ordinary characters."""
        raise NotImplementedError

    def _pieces(self) -> list:
        """The text (str) or bytes of every id, specials included, indexed by id."""
        raise NotImplementedError

    def _state(self) -> dict:
        """The subclass's own JSON fields (everything but format, version, type, specials)."""
        raise NotImplementedError

    @classmethod
    def _from_state(cls, data: dict, where: str) -> Tokenizer:
        """Rebuild a tokenizer from ``data`` (already checked for format/version/type)."""
        raise NotImplementedError

    # ------------------------------------------------------------------ vocabulary

    def _assign_special_ids(self) -> None:
        """Place the special tokens right after the regular vocabulary (call after training)."""
        base = self.num_regular_tokens
        self._special = {tok: base + i for i, tok in enumerate(self._special_list)}
        self._id_to_special = {i: tok for tok, i in self._special.items()}
        self._split_patterns.clear()
        self._vocab_changed()

    def _vocab_changed(self) -> None:
        """Hook: rebuild decode tables after the ids moved."""

    @property
    def vocab_size(self) -> int:
        """Total number of ids: regular tokens plus special tokens."""
        return self.num_regular_tokens + len(self._special_list)

    def __len__(self) -> int:
        return self.vocab_size

    @property
    def special_tokens(self) -> dict[str, int]:
        """A copy of the special-token table, ``{text: id}``, in id order."""
        return dict(self._special)

    @property
    def special_ids(self) -> frozenset[int]:
        """The set of ids that belong to special tokens."""
        return frozenset(self._id_to_special)

    def add_special_tokens(self, tokens: Iterable[str]) -> list[int]:
        """Append user-defined special tokens (after the existing ones); return their ids.

        Tokens that are already special keep their id.
        """
        new = validate_special_tokens(tokens)
        for tok in new:
            if tok not in self._special_list:
                self._special_list.append(tok)
        self._assign_special_ids()
        return [self._special[tok] for tok in new]

    def _special_id(self, tok: str) -> int | None:
        return self._special.get(tok)

    pad_token_id = property(lambda self: self._special_id(PAD), doc="Id of [PAD], or None.")
    unk_token_id = property(lambda self: self._special_id(UNK), doc="Id of [UNK], or None.")
    cls_token_id = property(lambda self: self._special_id(CLS), doc="Id of [CLS], or None.")
    sep_token_id = property(lambda self: self._special_id(SEP), doc="Id of [SEP], or None.")
    mask_token_id = property(lambda self: self._special_id(MASK), doc="Id of [MASK], or None.")
    eos_token_id = property(
        lambda self: self._special_id(ENDOFTEXT), doc="Id of `<|endoftext|>`, or None."
    )

    def require_special(self, tok: str) -> int:
        """The id of special token ``tok``; a clear error when this tokenizer lacks it."""
        if tok not in self._special:
            raise ValueError(
                f"this tokenizer has no special token {tok!r}; its special tokens are "
                f"{self._special_list}. Add it with add_special_tokens([{tok!r}])"
            )
        return self._special[tok]

    def id_to_token(self, token_id: int) -> str:
        """The text of one id (bytes that are not valid UTF-8 are shown as ``\\xNN``)."""
        (token_id,) = self._check_ids([token_id])
        piece = self._pieces()[token_id]
        if isinstance(piece, bytes):
            return piece.decode("utf-8", errors="backslashreplace")
        return piece

    # ------------------------------------------------------------------ encode / decode

    def encode(
        self,
        text: str,
        *,
        allowed_special: str | Iterable[str] = "none",
        disallowed_special: str | Iterable[str] = (),
    ) -> list[int]:
        """Encode ``text`` to a list of ids.

        ``allowed_special``: "none" (default), "all", or a set of special-token strings. Only
        those become their special id when their text occurs in ``text``; any other special
        text is encoded as ordinary characters. ``disallowed_special``: "all" or a set of
        special tokens whose text makes ``encode`` raise instead (tiktoken's default is "all").

        >>> from tinyllm.tokenizers import CharTokenizer
        >>> tok = CharTokenizer().train("ab[]SEP")
        >>> len(tok.encode("a[SEP]b")), len(tok.encode("a[SEP]b", allowed_special={"[SEP]"}))
        (7, 3)
        """
        if not isinstance(text, str):
            raise TypeError(f"encode() expects str, got {type(text).__name__}")
        known = tuple(self._special_list)
        allowed = parse_allowed_special(allowed_special, known)
        disallowed = parse_disallowed_special(disallowed_special, known, allowed)
        if disallowed:
            found = special_pattern(disallowed).search(text)
            if found:
                raise ValueError(
                    f"text contains the special token {found.group()!r} at position "
                    f"{found.start()}, and it is disallowed. Pass allowed_special="
                    f"{{{found.group()!r}}} to encode it as a special token, or leave it out of "
                    "disallowed_special to encode it as plain text"
                )
        if not allowed:
            return self.encode_ordinary(text)
        pattern = self._split_patterns.get(allowed)
        if pattern is None:
            pattern = self._split_patterns[allowed] = special_pattern(allowed)
        ids: list[int] = []
        # re.split with one capturing group alternates: text, special, text, special, ...
        for i, part in enumerate(pattern.split(text)):
            if i % 2:
                ids.append(self._special[part])
            elif part:
                ids.extend(self.encode_ordinary(part))
        return ids

    def encode_batch(self, texts: Iterable[str], **kwargs) -> list[list[int]]:
        """``[encode(t, **kwargs) for t in texts]``."""
        return [self.encode(t, **kwargs) for t in texts]

    def _check_ids(self, ids) -> list[int]:
        """Return ``ids`` as a list of Python ints after checking each is in the vocabulary."""
        arr = np.asarray(ids)
        if arr.ndim != 1:
            raise TypeError(
                f"expected a 1-D sequence of token ids, got an array of shape {arr.shape}"
            )
        if arr.size == 0:
            return []
        if arr.dtype.kind not in "iu":
            raise TypeError(f"token ids must be integers, got dtype {arr.dtype}")
        size = self.vocab_size
        bad = np.flatnonzero((arr < 0) | (arr >= size))
        if bad.size:
            pos = int(bad[0])
            raise ValueError(
                f"token id {int(arr[pos])} at position {pos} is outside the vocabulary: "
                f"vocab_size is {size}, so ids must be in 0..{size - 1}"
            )
        return arr.tolist()

    def decode(self, ids) -> str:
        """Turn ids (list or 1-D integer array) back into text.

        Special ids decode to their own text, so ``decode(encode(s, allowed_special="all"))``
        is ``s`` too.
        """
        ids = self._check_ids(ids)
        pieces = self._pieces()
        if self.byte_level:
            # Byte tokens may split a character; only the joined bytes are valid UTF-8.
            return b"".join([pieces[i] for i in ids]).decode("utf-8", errors="replace")
        return "".join([pieces[i] for i in ids])

    def decode_batch(self, batch) -> list[str]:
        """``[decode(ids) for ids in batch]``."""
        return [self.decode(ids) for ids in batch]

    # ------------------------------------------------------------------ save / load

    def to_dict(self) -> dict:
        """The tokenizer as a JSON-ready dict (the same content ``save`` writes)."""
        return {
            "format": FILE_FORMAT,
            "version": FILE_VERSION,
            "type": self.type_name,
            **self._state(),
            "special_tokens": dict(self._special),
        }

    def to_json(self) -> str:
        """The tokenizer as human-readable JSON text: one merge or vocabulary entry per line."""
        return _dumps_readable(self.to_dict())

    def save(self, path: str | os.PathLike) -> Path:
        """Write the tokenizer to ``path`` as versioned JSON (no pickle); returns the path."""
        return atomic_write(path, self.to_json())

    @classmethod
    def from_dict(cls, data: dict, *, where: str = "tokenizer dict") -> Tokenizer:
        """Rebuild a tokenizer from ``to_dict()`` output; ``where`` names it in errors."""
        if not isinstance(data, dict):
            raise TokenizerFileError(f"{where}: expected a JSON object, got {type(data).__name__}")
        if data.get("format") != FILE_FORMAT:
            raise TokenizerFileError(
                f'{where}: not a tinyllm tokenizer file (its "format" field is '
                f"{data.get('format')!r}; expected {FILE_FORMAT!r})"
            )
        version = data.get("version")
        if version not in SUPPORTED_VERSIONS:
            raise TokenizerFileError(
                f"{where}: unsupported tokenizer file version {version!r}; this tinyllm reads "
                f"version{'s' if len(SUPPORTED_VERSIONS) > 1 else ''} "
                f"{', '.join(map(str, SUPPORTED_VERSIONS))}"
            )
        kind = data.get("type")
        sub = Tokenizer._registry.get(kind) if isinstance(kind, str) else None
        if sub is None:
            raise TokenizerFileError(
                f"{where}: unknown tokenizer type {kind!r}; known types are "
                f"{sorted(Tokenizer._registry)}"
            )
        if cls is not Tokenizer and not issubclass(sub, cls):
            raise TokenizerFileError(
                f"{where}: holds a {kind!r} tokenizer, not a {cls.type_name!r} one; "
                "use Tokenizer.load to get whichever type the file holds"
            )
        tok = sub._from_state(data, where)
        tok._load_special_tokens(data.get("special_tokens"), where)
        return tok

    def _load_special_tokens(self, table, where: str) -> None:
        if not isinstance(table, dict):
            raise TokenizerFileError(
                f'{where}: "special_tokens" must be an object {{text: id}}, got {table!r}'
            )
        for tok, i in table.items():
            if not isinstance(i, int) or isinstance(i, bool):
                raise TokenizerFileError(
                    f"{where}: special token {tok!r} has id {i!r}; ids must be integers"
                )
        ordered = sorted(table, key=table.get)
        base = self.num_regular_tokens
        expected = list(range(base, base + len(ordered)))
        if [table[t] for t in ordered] != expected:
            raise TokenizerFileError(
                f"{where}: special-token ids {sorted(table.values())} must be exactly "
                f"{base}..{base + len(ordered) - 1}, right after the {base} regular tokens"
            )
        try:
            self._special_list = validate_special_tokens(ordered)
        except ValueError as exc:
            raise TokenizerFileError(f"{where}: {exc}") from None
        self._assign_special_ids()

    @classmethod
    def load(cls, path: str | os.PathLike) -> Tokenizer:
        """Read a file written by ``save``; ``Tokenizer.load`` returns whichever type it holds."""
        path = Path(path)
        raw = path.read_bytes()
        try:
            text = raw.decode("utf-8")
        except UnicodeDecodeError as exc:
            raise TokenizerFileError(
                f"{path}: not UTF-8 text (byte 0x{raw[exc.start]:02x} at offset {exc.start}); "
                "a tokenizer file is JSON written by Tokenizer.save"
            ) from None
        try:
            data = json.loads(text)
        except json.JSONDecodeError as exc:
            raise TokenizerFileError(
                f"{path}: not valid JSON ({exc.msg} at line {exc.lineno}, column {exc.colno})"
            ) from None
        return cls.from_dict(data, where=str(path))

    def __repr__(self) -> str:
        return (
            f"{type(self).__name__}(vocab_size={self.vocab_size}, "
            f"special_tokens={self._special_list})"
        )


def _dumps_readable(data: dict) -> str:
    """JSON with one top-level key per line and one list item / dict entry per line."""
    lines = []
    for key, value in data.items():
        if isinstance(value, (list, dict)) and len(value) > 0:
            if isinstance(value, dict):
                items = [
                    f"    {json.dumps(k, ensure_ascii=False)}: {json.dumps(v, ensure_ascii=False)}"
                    for k, v in value.items()
                ]
                opener, closer = "{", "}"
            else:
                items = [f"    {json.dumps(v, ensure_ascii=False)}" for v in value]
                opener, closer = "[", "]"
            body = ",\n".join(items)
            lines.append(f"  {json.dumps(key)}: {opener}\n{body}\n  {closer}")
        else:
            lines.append(f"  {json.dumps(key)}: {json.dumps(value, ensure_ascii=False)}")
    return "{\n" + ",\n".join(lines) + "\n}\n"
