"""Byte-level byte-pair encoding (BPE), as in GPT-2, on the standard library alone.

Ids ``0..255`` are the 256 byte values, so *any* string encodes (as its UTF-8 bytes) and
``decode(encode(s)) == s`` for every valid Unicode string. Training repeatedly finds the most
frequent adjacent pair of ids and gives it a new id (the *merge* ``(a, b) -> 256 + m``), until
the vocabulary reaches the requested size. Encoding applies the learned merges in rank order:
the pair that was merged first is merged first.

Pre-tokenization. Before counting pairs, text is cut into chunks (words, numbers, punctuation,
whitespace) by ``PRETOKENIZE_PATTERN``, and merges never cross a chunk boundary; this keeps
" dog", " dog." and " dog!" from becoming three unrelated tokens. GPT-2's pattern needs the
third-party ``regex`` module for ``\\p{L}``; the standard ``re`` spells "letter" as
``[^\\W\\d_]`` (word characters that are neither digits nor underscore). Every character falls
in exactly one branch, so the chunks always concatenate back to the text.

Speed. A naive trainer recounts all pairs after every merge (minutes on 1 MB). Here the text is
cut into chunks once and identical chunks are counted together (a 1 MB text has ~30k distinct
chunks, not ~250k); a merge then visits only the places where the merged pair occurs and
updates the counts of its neighbouring pairs, and a heap with lazy deletion finds the best
pair. Encoding caches each distinct chunk's ids, since most words repeat; chunks too long to
rescan (text without spaces) are merged through a heap, in O(n log n) but at only ~0.2 MB/s.

File. ``save`` writes JSON whose ``"merges"`` list (one ``[left_id, right_id]`` per line, merge
``m`` creating id ``256 + m``) defines the tokenizer; ``"vocab"`` previews each merged token as
text (bytes that are not UTF-8 shown as ``\\xNN``) and must agree with the merges.

>>> tok = BPETokenizer(special_tokens=["<|endoftext|>"]).train("low lower lowest " * 20, 264)
>>> [tok.id_to_token(i) for i in tok.encode(" lowest lower low")]
[' lowest', ' lower', ' low']
>>> tok.decode(tok.encode("lowest 🙂")) == "lowest 🙂"
True
"""

from __future__ import annotations

import heapq
import re
import warnings
from collections import Counter
from collections.abc import Iterable

from .base import Tokenizer, TokenizerFileError, check_valid_unicode
from .special import DEFAULT_SPECIAL_TOKENS, special_pattern

#: GPT-2's pre-tokenizer in standard-library ``re``: contractions, letters (with one leading
#: space), numbers of up to 3 digits, punctuation runs (``_`` included), then whitespace, where
#: ``\s+(?!\S)`` leaves the last space of a run to start the next word.
PRETOKENIZE_PATTERN = r"'(?:[sdmt]|ll|ve|re)| ?[^\W\d_]+| ?\d{1,3}| ?(?:[^\s\w]|_)+|\s+(?!\S)|\s+"

#: The pre-tokenizer patterns a tokenizer *file* may name. A regular expression can take
#: exponential time on a short input (``(a+)+$``), so a file cannot bring its own; a pattern
#: built in Python (``BPETokenizer(pattern=...)``) is the caller's own choice.
KNOWN_PATTERNS = (PRETOKENIZE_PATTERN,)

#: The longest token (in bytes) a tokenizer file may define: merges double a token's length
#: at most, so a short file of self-doubling merges could otherwise ask for gigabytes.
MAX_TOKEN_BYTES = 1024

# Distinct chunks remembered by encode(); cleared when full so memory stays bounded.
_CACHE_LIMIT = 1 << 18
# Chunks longer than this (in bytes) are encoded with a heap instead of repeated scans.
_LONG_CHUNK = 48


def pretokenize(text: str, pattern: str = PRETOKENIZE_PATTERN) -> list[str]:
    """Cut ``text`` into the chunks BPE merges within.

    >>> pretokenize("Hello, world! It's 12345 ok")
    ['Hello', ',', ' world', '!', ' It', "'s", ' 123', '45', ' ok']
    """
    return re.findall(pattern, text)


def _merge(ids: list[int], a: int, b: int, new: int) -> list[int]:
    """Replace every non-overlapping occurrence of ``(a, b)`` in ``ids``, left to right."""
    out = []
    i, n = 0, len(ids)
    while i < n:
        if i < n - 1 and ids[i] == a and ids[i + 1] == b:
            out.append(new)
            i += 2
        else:
            out.append(ids[i])
            i += 1
    return out


def _encode_short_chunk(ids: list[int], ranks: dict[tuple[int, int], int]) -> list[int]:
    """Merge the lowest-ranked pair everywhere, left to right; repeat until none is left."""
    while len(ids) > 1:
        best_pair, best_rank = None, None
        for pair in zip(ids, ids[1:]):
            rank = ranks.get(pair)
            if rank is not None and (best_rank is None or rank < best_rank):
                best_pair, best_rank = pair, rank
        if best_pair is None:
            break
        ids = _merge(ids, best_pair[0], best_pair[1], best_rank)
    return ids


def _encode_long_chunk(ids: list[int], ranks: dict[tuple[int, int], int]) -> list[int]:
    """Same result as ``_encode_short_chunk``, in O(n log n) for long chunks.

    A heap holds (rank, position) for every adjacent pair that has a merge. Popping the
    lowest rank first, leftmost first among equal ranks, applies merges in the same order
    as "merge every occurrence of the best pair, left to right, then repeat": a merge with
    rank r only creates pairs that contain the new id r, and their ranks are above r.
    """
    n = len(ids)
    if n < 2:
        return list(ids)
    tok = list(ids)  # -1 marks a position merged into its left neighbour
    prv = list(range(-1, n - 1))
    nxt = list(range(1, n + 1))
    nxt[-1] = -1
    get, push, pop = ranks.get, heapq.heappush, heapq.heappop
    # Entries are rank * 2**32 + position: one int compares faster than a (rank, p) tuple.
    heap = [r << 32 | p for p, r in enumerate(map(get, zip(tok, tok[1:]))) if r is not None]
    heapq.heapify(heap)
    while heap:
        entry = pop(heap)
        rank, p = entry >> 32, entry & 0xFFFFFFFF
        q = nxt[p]
        if q == -1 or get((tok[p], tok[q])) != rank:
            continue  # stale: a neighbour changed since this entry was pushed
        tok[p] = rank
        tok[q] = -1
        right = nxt[q]
        nxt[p] = right
        if right != -1:
            prv[right] = p
            r = get((rank, tok[right]))
            if r is not None:
                push(heap, r << 32 | p)
        left = prv[p]
        if left != -1:
            r = get((tok[left], rank))
            if r is not None:
                push(heap, r << 32 | left)
    return [t for t in tok if t != -1]


class BPETokenizer(Tokenizer):
    """Byte-level BPE: 256 byte tokens, learned merges, then special tokens."""

    type_name = "bpe"
    byte_level = True

    def __init__(
        self,
        special_tokens: Iterable[str] = DEFAULT_SPECIAL_TOKENS,
        pattern: str = PRETOKENIZE_PATTERN,
    ):
        super().__init__(special_tokens)
        try:
            self._regex = re.compile(pattern)
        except re.error as exc:
            raise ValueError(
                f"pattern {pattern!r} is not a valid regular expression: {exc}"
            ) from None
        self.pattern = pattern
        self._set_merges([])

    # ------------------------------------------------------------------ vocabulary

    def _set_merges(self, merges: list[tuple[int, int]]) -> None:
        self.merges: list[tuple[int, int]] = [tuple(m) for m in merges]
        # A merge's rank is its new id: lower ids were learned earlier and apply first.
        self._ranks = {pair: 256 + m for m, pair in enumerate(self.merges)}
        vocab = [bytes([i]) for i in range(256)]
        for a, b in self.merges:
            vocab.append(vocab[a] + vocab[b])
        self._vocab = vocab
        self._cache: dict[str, list[int]] = {}
        self._assign_special_ids()

    def _vocab_changed(self) -> None:
        self._piece_list = self._vocab + [t.encode("utf-8") for t in self._special_list]
        self._bytes_to_id = None

    @property
    def num_regular_tokens(self) -> int:
        return 256 + len(self.merges)

    def token_bytes(self, token_id: int) -> bytes:
        """The bytes one id stands for (a special token's are its UTF-8 text)."""
        (token_id,) = self._check_ids([token_id])
        return self._piece_list[token_id]

    def _pieces(self) -> list[bytes]:
        return self._piece_list

    # ------------------------------------------------------------------ training

    def train(self, text: str, vocab_size: int = 2048, *, min_frequency: int = 2) -> BPETokenizer:
        """Learn merges from ``text`` until ``vocab_size`` ids (bytes + merges + specials).

        Special-token text in ``text`` is cut out first, so no merge ever spans it. Training
        stops early, with a warning, when no pair occurs ``min_frequency`` times any more.
        """
        if not isinstance(text, str):
            raise TypeError(f"train() expects str, got {type(text).__name__}")
        check_valid_unicode(text, "training text")
        n_special = len(self._special_list)
        if isinstance(vocab_size, bool) or not isinstance(vocab_size, int):
            raise TypeError(f"vocab_size must be an int, got {vocab_size!r}")
        if vocab_size < 256 + n_special:
            raise ValueError(
                f"vocab_size={vocab_size} is too small: byte-level BPE needs 256 byte tokens "
                f"plus {n_special} special tokens, so at least {256 + n_special}"
            )
        if not isinstance(min_frequency, int) or min_frequency < 1:
            raise ValueError(f"min_frequency must be a positive int, got {min_frequency!r}")
        n_merges = vocab_size - 256 - n_special
        merges = _learn_merges(self._chunk_counts(text), n_merges, min_frequency)
        if len(merges) < n_merges:
            warnings.warn(
                f"BPE training stopped after {len(merges)} of {n_merges} merges: no pair of "
                f"tokens occurs {min_frequency}+ times any more, so vocab_size is "
                f"{256 + len(merges) + n_special}, not {vocab_size}. Train on more text or "
                "lower min_frequency",
                stacklevel=2,
            )
        self._set_merges(merges)
        return self

    def _chunk_counts(self, text: str) -> Counter:
        if self._special_list:
            pieces = special_pattern(self._special_list).split(text)[::2]
        else:
            pieces = [text]
        counts: Counter = Counter()
        for piece in pieces:
            counts.update(self._regex.findall(piece))
        return counts

    # ------------------------------------------------------------------ encoding

    def _encode_chunk(self, ids: list[int]) -> list[int]:
        """Apply merges in rank order to one chunk's byte ids."""
        if len(ids) > _LONG_CHUNK:
            return _encode_long_chunk(ids, self._ranks)
        return _encode_short_chunk(ids, self._ranks)

    def encode_ordinary(self, text: str) -> list[int]:
        check_valid_unicode(text)
        cache = self._cache
        out: list[int] = []
        for chunk in self._regex.findall(text):
            ids = cache.get(chunk)
            if ids is None:
                ids = self._encode_chunk(list(chunk.encode("utf-8")))
                if len(cache) >= _CACHE_LIMIT:
                    cache.clear()
                cache[chunk] = ids
            out.extend(ids)
        return out

    # ------------------------------------------------------------------ save / load

    def _state(self) -> dict:
        preview = {
            str(256 + m): self._vocab[256 + m].decode("utf-8", errors="backslashreplace")
            for m in range(len(self.merges))
        }
        return {
            "pattern": self.pattern,
            "merges": [list(m) for m in self.merges],
            "vocab": preview,
        }

    @classmethod
    def _from_state(cls, data: dict, where: str) -> BPETokenizer:
        pattern = data.get("pattern", PRETOKENIZE_PATTERN)
        if not isinstance(pattern, str):
            raise TokenizerFileError(f'{where}: "pattern" must be a string, got {pattern!r}')
        try:
            re.compile(pattern)       # compiling is safe; only matching can run away
        except re.error as exc:
            raise TokenizerFileError(f"{where}: pattern {pattern!r} is not a valid regular "
                                     f"expression: {exc}") from None
        if pattern not in KNOWN_PATTERNS:
            raise TokenizerFileError(
                f'{where}: "pattern" {pattern[:80]!r} is not a pre-tokenizer tinyllm knows to be '
                "safe (a hostile regular expression can make encoding run forever); accepted: "
                "tinyllm's PRETOKENIZE_PATTERN. To use your own, build the tokenizer in Python "
                "with BPETokenizer(pattern=...)")
        merges = data.get("merges")
        if not isinstance(merges, list):
            raise TokenizerFileError(f'{where}: "merges" must be a list of [left_id, right_id]')
        lengths = [1] * 256                       # bytes per token, bytes then merges
        for m, pair in enumerate(merges):
            ok = (
                isinstance(pair, list)
                and len(pair) == 2
                and all(isinstance(i, int) and not isinstance(i, bool) for i in pair)
            )
            # A merge may only use ids that exist before it: bytes and earlier merges.
            if not ok or not all(0 <= i < 256 + m for i in pair):
                raise TokenizerFileError(
                    f"{where}: merge {m} is {pair!r}; each merge must be [left_id, right_id] "
                    f"with ids in 0..{256 + m - 1} (bytes and earlier merges)"
                )
            lengths.append(lengths[pair[0]] + lengths[pair[1]])
            if lengths[-1] > MAX_TOKEN_BYTES:
                raise TokenizerFileError(
                    f"{where}: merge {m} ({pair!r}) makes a token of {lengths[-1]:,} bytes; "
                    f"accepted: tokens of at most {MAX_TOKEN_BYTES} bytes")
        try:
            tok = cls(special_tokens=(), pattern=pattern)
        except ValueError as exc:
            raise TokenizerFileError(f"{where}: {exc}") from None
        tok._set_merges(merges)
        # "vocab" is a readable preview derived from the merges; a mismatch means an edited file.
        preview = data.get("vocab")
        if preview is not None:
            if not isinstance(preview, dict):
                raise TokenizerFileError(f'{where}: "vocab" must be an object {{id: text}}')
            expected = tok._state()["vocab"]
            wrong = set(preview) ^ set(expected)
            wrong |= {k for k in expected if preview.get(k) != expected[k]}
            if wrong:
                first = min(wrong, key=lambda k: (len(k), k))  # numeric order for digit strings
                raise TokenizerFileError(
                    f'{where}: "vocab" disagrees with "merges" at id {first}: the merges define '
                    'the vocabulary and "vocab" only previews it; fix or delete "vocab"'
                )
        return tok


def _learn_merges(
    chunk_counts: Counter, n_merges: int, min_frequency: int
) -> list[tuple[int, int]]:
    """The BPE training loop: incremental pair counts over distinct chunks.

    All distinct chunks are laid end to end as one array of byte ids, each position knowing
    its chunk's count; ``prv``/``nxt`` link the live positions of a chunk (-1 ends a chunk),
    so a merge deletes a position in O(1). ``where[pair]`` holds the positions where
    ``pair`` starts. A merge visits only the occurrences of the merged pair and adjusts the
    counts of the pairs on either side, so a run costs about the size of the distinct text,
    not (merges x text) as a recount would, even for text without spaces (one huge chunk).
    """
    tok: list[int] = []  # token id at each position; -1 once merged into its left neighbour
    freq: list[int] = []  # count of the chunk each position belongs to
    prv: list[int] = []
    nxt: list[int] = []
    for chunk, f in chunk_counts.items():
        data = chunk.encode("utf-8")
        start, n = len(tok), len(data)
        tok.extend(data)
        freq.extend([f] * n)
        prv.extend(range(start - 1, start + n - 1))
        prv[start] = -1
        nxt.extend(range(start + 1, start + n + 1))
        nxt[-1] = -1
    pair_counts: dict[tuple[int, int], int] = {}
    where: dict[tuple[int, int], set[int]] = {}
    for p, q in enumerate(nxt):
        if q != -1:
            pair = (tok[p], tok[q])
            pair_counts[pair] = pair_counts.get(pair, 0) + freq[p]
            where.setdefault(pair, set()).add(p)

    changed: set[tuple[int, int]] = set()

    def add(pair: tuple[int, int], delta: int, pos: int | None = None) -> None:
        pair_counts[pair] = pair_counts.get(pair, 0) + delta
        changed.add(pair)
        if pos is not None:
            where.setdefault(pair, set()).add(pos)

    # Max-heap via negated counts; ties go to the smallest pair, so training is deterministic.
    # Entries go stale when a count changes; a popped entry is used only if it is current.
    heap = [(-c, a, b) for (a, b), c in pair_counts.items()]
    heapq.heapify(heap)
    merges: list[tuple[int, int]] = []
    while len(merges) < n_merges and heap:
        neg, a, b = heapq.heappop(heap)
        if pair_counts.get((a, b), 0) != -neg:
            continue
        if -neg < min_frequency:
            break
        new = 256 + len(merges)
        merges.append((a, b))
        changed.clear()
        # Left to right within each chunk, as encoding does: in "aaa" only the first (a, a).
        for p in sorted(where.pop((a, b))):
            q = nxt[p]
            if tok[p] != a or q == -1 or tok[q] != b:
                continue  # stale: this position was changed by an earlier merge
            f, left, right = freq[p], prv[p], nxt[q]
            if left != -1:
                add((tok[left], a), -f)
                add((tok[left], new), f, left)
            if right != -1:
                add((b, tok[right]), -f)
                add((new, tok[right]), f, p)
            tok[p], tok[q] = new, -1
            nxt[p] = right
            if right != -1:
                prv[right] = p
        del pair_counts[(a, b)]  # every occurrence is merged now
        for pair in changed:
            c = pair_counts.get(pair, 0)
            if c > 0:
                heapq.heappush(heap, (-c, pair[0], pair[1]))
            elif pair in pair_counts:
                del pair_counts[pair]
    return merges
