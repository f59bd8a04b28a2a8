"""Token streams and batches: memmap caching, train/val split, LM windows, BERT inputs.

Letters: ``B`` batch size, ``T`` block size (context length), ``L`` BERT sequence length,
``N`` tokens in the stream. Every batch is NumPy ``int64``; the cached stream is stored in the
smallest unsigned dtype that holds the vocabulary (``uint16`` up to 65,536 ids), as nanoGPT does.

A GPT batch is ``B`` random windows of ``T + 1`` consecutive tokens; ``x`` is the first ``T``,
``y`` the last ``T``, so ``y[b, t]`` is the token that follows ``x[b, :t+1]``::

    >>> import numpy as np
    >>> x, y = get_batch(np.arange(100), batch_size=2, block_size=4, rng=0)
    >>> x.shape, bool((y == x + 1).all())
    ((2, 4), True)

A BERT batch is ``[CLS] a [SEP] b [SEP] [PAD]...`` with ``token_type_ids`` 0 for the first
segment and 1 for the second, ``attention_mask`` 1 on real tokens, and masked-LM ``labels``
that are the original id at the ~15% selected positions and -100 (``IGNORE_INDEX``, PyTorch's
``ignore_index``) elsewhere.
"""

from __future__ import annotations

import hashlib
import os
import re
from collections.abc import Iterable, Iterator
from pathlib import Path

import numpy as np

from .._checks import positive_int
from .._io import atomic_path
from ..tokenizers import CLS, MASK, PAD, SEP, Tokenizer
from ..tokenizers.special import parse_allowed_special
from .corpora import Corpus

#: Label value that losses skip (PyTorch's ``cross_entropy(ignore_index=-100)`` default).
IGNORE_INDEX = -100

_CACHE_FORMAT = b"tinyllm-token-cache-v1"


def as_generator(rng) -> np.random.Generator:
    """A ``np.random.Generator`` from a Generator (returned as is), an int seed, or None."""
    if isinstance(rng, np.random.Generator):
        return rng
    if rng is None or (isinstance(rng, (int, np.integer)) and not isinstance(rng, bool)):
        return np.random.default_rng(rng)
    raise TypeError(f"rng must be a numpy Generator, an int seed or None, got {rng!r}")


def id_dtype(vocab_size: int) -> np.dtype:
    """The smallest unsigned integer dtype that holds ids ``0 .. vocab_size-1``."""
    for dt in (np.uint8, np.uint16, np.uint32):
        if vocab_size <= np.iinfo(dt).max + 1:
            return np.dtype(dt)
    return np.dtype(np.int64)


# ---------------------------------------------------------------------- encode + cache


def cache_key(text: str, tokenizer: Tokenizer, allowed_special="none") -> str:
    """Hex digest naming the ids of ``text`` under ``tokenizer``: changes if either changes."""
    allowed = sorted(parse_allowed_special(allowed_special, tuple(tokenizer.special_tokens)))
    h = hashlib.sha256(_CACHE_FORMAT)
    for part in (tokenizer.to_json(), repr(allowed), text):
        h.update(b"\0" + part.encode("utf-8"))
    return h.hexdigest()[:20]


def encode_corpus(
    corpus: Corpus | str,
    tokenizer: Tokenizer,
    *,
    cache_dir: str | os.PathLike | None = None,
    allowed_special="none",
) -> np.ndarray:
    """Encode a corpus (or a text) once; returns the ``(N,)`` id stream.

    With ``cache_dir``, the ids are saved to ``<cache_dir>/<name>-<type><V>-<key>.npy`` (the
    key hashes the text and the tokenizer file) and returned as a read-only memmap; a later
    call with the same text and tokenizer loads that file instead of encoding again.
    Without it, nothing is written and an in-memory array comes back.
    """
    if isinstance(corpus, Corpus):
        text, name = corpus.text, corpus.name
    elif isinstance(corpus, str):
        text, name = corpus, "text"
    else:
        raise TypeError(f"corpus must be a Corpus or a str, got {type(corpus).__name__}")
    if not text:
        raise ValueError(f"corpus {name!r} is empty (0 characters); it needs at least 1")
    dtype = id_dtype(tokenizer.vocab_size)
    if cache_dir is None:
        return np.asarray(tokenizer.encode(text, allowed_special=allowed_special), dtype=dtype)
    slug = re.sub(r"[^A-Za-z0-9_.-]+", "_", name)[:40]
    key = cache_key(text, tokenizer, allowed_special)
    path = Path(cache_dir) / f"{slug}-{tokenizer.type_name}{tokenizer.vocab_size}-{key}.npy"
    if path.is_file():
        try:
            cached = np.load(path, mmap_mode="r")
            if cached.ndim == 1 and cached.dtype == dtype:
                return cached
        except (OSError, ValueError):
            pass  # a damaged cache file is rebuilt below
    ids = np.asarray(tokenizer.encode(text, allowed_special=allowed_special), dtype=dtype)
    path.parent.mkdir(parents=True, exist_ok=True)
    # Atomically, so an interrupted run never leaves a half-written cache behind.
    with atomic_path(path) as tmp, open(tmp, "wb") as f:
        np.save(f, ids)
    return np.load(path, mmap_mode="r")


def train_val_split(ids: np.ndarray, val_fraction: float = 0.1) -> tuple[np.ndarray, np.ndarray]:
    """Split a stream into (train, val): the last ``val_fraction`` of it is validation.

    Deterministic and contiguous (no shuffling), so no validation window overlaps training
    text, as in nanoGPT's 90/10 split.
    """
    if not 0 <= val_fraction < 1:
        raise ValueError(f"val_fraction must be in [0, 1), got {val_fraction!r}")
    n = len(ids)
    n_val = int(round(n * val_fraction))
    if val_fraction > 0 and (n_val == 0 or n_val == n):
        raise ValueError(
            f"cannot split {n} tokens with val_fraction={val_fraction}: one side would be empty"
        )
    return ids[: n - n_val], ids[n - n_val :]


# ---------------------------------------------------------------------- GPT batches


def _as_stream(ids) -> np.ndarray:
    """``ids`` as a 1-D integer array (a memmap stays a view of its file)."""
    arr = ids if isinstance(ids, np.ndarray) else np.asarray(ids)
    if arr.ndim != 1 or (arr.size and arr.dtype.kind not in "iu"):
        raise TypeError(
            f"expected a 1-D stream of integer token ids, got shape {arr.shape} dtype {arr.dtype}"
        )
    return arr


def _check_window(n: int, block_size, what: str = "token stream") -> None:
    """Raise unless a stream of ``n`` tokens holds one window of ``block_size`` + 1."""
    positive_int("block_size", block_size)
    if n < block_size + 1:
        raise ValueError(
            f"the {what} has {n} tokens, but one window of block_size={block_size} needs at "
            f"least {block_size + 1} (block_size inputs + 1 next-token target); use more text "
            "or a smaller block_size"
        )


def get_batch(
    ids: np.ndarray, batch_size: int, block_size: int, rng=None
) -> tuple[np.ndarray, np.ndarray]:
    """``B`` random windows: inputs ``x`` and next-token targets ``y``, both ``(B, T)`` int64."""
    ids = _as_stream(ids)
    positive_int("batch_size", batch_size)
    _check_window(len(ids), block_size)
    rng = as_generator(rng)
    starts = rng.integers(0, len(ids) - block_size, size=batch_size)  # (B,)
    windows = np.asarray(ids[starts[:, None] + np.arange(block_size + 1)], dtype=np.int64)
    return np.ascontiguousarray(windows[:, :-1]), np.ascontiguousarray(windows[:, 1:])


def eval_batches(
    ids: np.ndarray, batch_size: int, block_size: int, max_batches: int | None = None
) -> Iterator[tuple[np.ndarray, np.ndarray]]:
    """Consecutive non-overlapping windows from the start of ``ids``: a fixed validation set.

    Every batch has ``B`` rows except possibly the last.
    """
    ids = _as_stream(ids)
    positive_int("batch_size", batch_size)
    _check_window(len(ids), block_size)
    starts = np.arange(0, len(ids) - block_size, block_size)
    for k, first in enumerate(range(0, len(starts), batch_size)):
        if max_batches is not None and k >= max_batches:
            return
        s = starts[first : first + batch_size]
        windows = np.asarray(ids[s[:, None] + np.arange(block_size + 1)], dtype=np.int64)
        yield np.ascontiguousarray(windows[:, :-1]), np.ascontiguousarray(windows[:, 1:])


class _ResumableBatcher:
    """What every batcher shares: a seeded generator whose exact state saves and restores.

    Subclasses set ``seed``, ``rng`` and ``step``, and name in ``_shape_keys`` the settings a
    saved state must match.
    """

    _shape_keys: tuple[str, ...] = ()

    def __iter__(self):
        return self

    def state_dict(self) -> dict:
        """Seed, step count, batch shape and the generator's exact state, as JSON types."""
        return {"seed": self.seed, "step": self.step,
                **{key: getattr(self, key) for key in self._shape_keys},
                "rng": self.rng.bit_generator.state}

    def load_state_dict(self, state: dict) -> None:
        """Resume from ``state_dict()`` output (the batch shape must match)."""
        for key in self._shape_keys:
            if state.get(key) != getattr(self, key):
                raise ValueError(
                    f"saved {key}={state.get(key)!r} differs from this batcher's "
                    f"{key}={getattr(self, key)!r}; resuming would change the batches"
                )
        rng = np.random.default_rng()
        try:
            rng.bit_generator.state = state["rng"]
        except (KeyError, TypeError, ValueError) as exc:
            raise ValueError(f"state['rng'] is not a saved generator state: {exc}") from None
        self.rng = rng
        self.seed = state.get("seed")
        self.step = int(state.get("step", 0))


class LMBatcher(_ResumableBatcher):
    """An endless, seeded stream of GPT batches whose position can be saved and restored.

    ``state_dict()`` is JSON-ready; ``load_state_dict`` resumes bit-identically.

    >>> import numpy as np
    >>> a = LMBatcher(np.arange(50), batch_size=2, block_size=4, seed=0)
    >>> _ = next(a); state = a.state_dict(); x1, _ = next(a)
    >>> b = LMBatcher(np.arange(50), batch_size=2, block_size=4, seed=99)
    >>> b.load_state_dict(state); x2, _ = next(b)
    >>> bool((x1 == x2).all())
    True
    """

    _shape_keys = ("batch_size", "block_size")

    def __init__(self, ids: np.ndarray, batch_size: int, block_size: int, seed: int = 0):
        ids = _as_stream(ids)
        positive_int("batch_size", batch_size)
        _check_window(len(ids), block_size)
        self.ids = ids
        self.batch_size = int(batch_size)
        self.block_size = int(block_size)
        self.seed = seed
        self.rng = np.random.default_rng(seed)
        self.step = 0

    def __next__(self) -> tuple[np.ndarray, np.ndarray]:
        batch = get_batch(self.ids, self.batch_size, self.block_size, self.rng)
        self.step += 1
        return batch



# ---------------------------------------------------------------------- BERT batches


def mlm_mask(
    input_ids: np.ndarray, tokenizer: Tokenizer, rng=None, mask_prob: float = 0.15
) -> tuple[np.ndarray, np.ndarray]:
    """BERT's masked-LM corruption; returns ``(masked_input_ids, labels)``, both int64.

    Each non-special position is selected with probability ``mask_prob``. A selected position
    becomes ``[MASK]`` with probability 0.8, a random regular token with 0.1, and stays as it is
    with 0.1; its label is the original id. Every other label is ``IGNORE_INDEX`` (-100).
    Special tokens ([CLS], [SEP], [PAD], ...) are never selected.
    """
    if not 0 <= mask_prob <= 1:
        raise ValueError(f"mask_prob must be in [0, 1], got {mask_prob!r}")
    ids = np.asarray(input_ids)
    if ids.dtype.kind not in "iu":
        raise TypeError(f"input_ids must be integers, got dtype {ids.dtype}")
    rng = as_generator(rng)
    mask_id = tokenizer.require_special(MASK)
    special = np.array(sorted(tokenizer.special_ids), dtype=np.int64)
    selected = ~np.isin(ids, special) & (rng.random(ids.shape) < mask_prob)
    labels = np.where(selected, ids, IGNORE_INDEX).astype(np.int64)
    action = rng.random(ids.shape)
    out = ids.astype(np.int64, copy=True)
    out[selected & (action < 0.8)] = mask_id
    to_random = selected & (action >= 0.8) & (action < 0.9)
    regular = np.setdiff1d(np.arange(tokenizer.vocab_size), special)
    out[to_random] = regular[rng.integers(0, len(regular), size=int(to_random.sum()))]
    return out, labels


def _as_ids(segment, tokenizer: Tokenizer) -> list[int]:
    if isinstance(segment, str):
        return tokenizer.encode(segment)
    return np.asarray(segment, dtype=np.int64).ravel().tolist()


def make_pair_batch(
    pairs: Iterable, tokenizer: Tokenizer, max_length: int | None = None
) -> dict[str, np.ndarray]:
    """Pack ``(a, b)`` pairs as ``[CLS] a [SEP] b [SEP]``, padded to one length ``L``.

    ``a`` and ``b`` are strings (encoded here) or id sequences; ``b`` may be None for a single
    segment ``[CLS] a [SEP]``; a bare string is a single segment too. With ``max_length``,
    the longer segment is trimmed first until the pair fits, and every row is padded to
    ``max_length``; without it, rows pad to the longest. Returns ``input_ids``,
    ``token_type_ids`` and ``attention_mask``, each ``(B, L)`` int64.
    """
    cls_id = tokenizer.require_special(CLS)
    sep_id = tokenizer.require_special(SEP)
    pad_id = tokenizer.require_special(PAD)
    rows, types = [], []
    for item in pairs:
        a, b = (item, None) if isinstance(item, str) else item
        a = _as_ids(a, tokenizer)
        b = None if b is None else _as_ids(b, tokenizer)
        n_special = 2 if b is None else 3
        if max_length is not None:
            if max_length < n_special:
                raise ValueError(
                    f"max_length={max_length} cannot hold the {n_special} special tokens of "
                    f"{'[CLS] a [SEP]' if b is None else '[CLS] a [SEP] b [SEP]'}"
                )
            while len(a) + len(b or ()) + n_special > max_length:
                if b is not None and len(b) > len(a):
                    b = b[:-1]
                else:
                    a = a[:-1]
        ids = [cls_id, *a, sep_id] + ([] if b is None else [*b, sep_id])
        rows.append(ids)
        types.append([0] * (len(a) + 2) + [1] * (len(ids) - len(a) - 2))
    if not rows:
        raise ValueError("make_pair_batch got no pairs")
    length = max_length if max_length is not None else max(len(r) for r in rows)
    input_ids = np.full((len(rows), length), pad_id, dtype=np.int64)  # (B, L)
    token_type_ids = np.zeros((len(rows), length), dtype=np.int64)  # (B, L)
    attention_mask = np.zeros((len(rows), length), dtype=np.int64)  # (B, L)
    for i, (ids, tt) in enumerate(zip(rows, types)):
        input_ids[i, : len(ids)] = ids
        token_type_ids[i, : len(ids)] = tt
        attention_mask[i, : len(ids)] = 1
    return {
        "input_ids": input_ids,
        "token_type_ids": token_type_ids,
        "attention_mask": attention_mask,
    }


class BertBatcher(_ResumableBatcher):
    """Seeded BERT pre-training batches from a token stream: sentence pairs, NSP and MLM.

    Each row takes ``a`` from a random place in ``ids``; ``b`` is the text that follows ``a``
    (``next_sentence_label`` 0) or, with probability ``nsp_prob``, a random stretch elsewhere
    (label 1, Hugging Face's convention). Segments are stretches of the stream rather than
    sentences, so any corpus and tokenizer work. With probability ``short_seq_prob`` a row is
    shorter than ``max_length`` (as in BERT), so padding appears. ``next()`` returns a dict of
    int64 arrays: ``input_ids``, ``token_type_ids``, ``attention_mask``, ``labels`` (all
    ``(B, L)``) and ``next_sentence_label`` ``(B,)``.
    """

    _shape_keys = ("batch_size", "max_length")

    def __init__(
        self,
        ids: np.ndarray,
        tokenizer: Tokenizer,
        batch_size: int,
        max_length: int = 128,
        seed: int = 0,
        mask_prob: float = 0.15,
        nsp_prob: float = 0.5,
        short_seq_prob: float = 0.1,
    ):
        positive_int("batch_size", batch_size)
        if isinstance(max_length, bool) or not isinstance(max_length, int) or max_length < 5:
            raise ValueError(
                f"max_length must be an int of at least 5 ([CLS] a [SEP] b [SEP] with one "
                f"token each), got {max_length!r}"
            )
        if len(ids) < max_length:
            raise ValueError(
                f"the token stream has {len(ids)} tokens, but BERT rows of max_length="
                f"{max_length} need at least {max_length}; use more text or a smaller max_length"
            )
        ids = _as_stream(ids)
        for name, p in (
            ("mask_prob", mask_prob),
            ("nsp_prob", nsp_prob),
            ("short_seq_prob", short_seq_prob),
        ):
            if not 0 <= p <= 1:
                raise ValueError(f"{name} must be in [0, 1], got {p!r}")
        for tok in (CLS, SEP, PAD, MASK):
            tokenizer.require_special(tok)
        self.ids, self.tokenizer = ids, tokenizer
        self.batch_size, self.max_length = int(batch_size), max_length
        self.mask_prob, self.nsp_prob, self.short_seq_prob = mask_prob, nsp_prob, short_seq_prob
        self.seed = seed
        self.rng = np.random.default_rng(seed)
        self.step = 0

    def _pair(self) -> tuple[np.ndarray, np.ndarray, int]:
        rng, n = self.rng, len(self.ids)
        budget = self.max_length - 3  # room left for a and b after [CLS], [SEP], [SEP]
        total = budget if rng.random() >= self.short_seq_prob else int(rng.integers(2, budget + 1))
        start = int(rng.integers(0, n - total + 1))
        a_len = int(rng.integers(1, total))
        a = self.ids[start : start + a_len]
        if rng.random() >= self.nsp_prob:
            return a, self.ids[start + a_len : start + total], 0
        b_len = total - a_len
        other = int(rng.integers(0, n - b_len + 1))
        return a, self.ids[other : other + b_len], 1

    def __next__(self) -> dict[str, np.ndarray]:
        pairs, nsp = [], []
        for _ in range(self.batch_size):
            a, b, label = self._pair()
            pairs.append((a, b))
            nsp.append(label)
        batch = make_pair_batch(pairs, self.tokenizer, self.max_length)
        batch["input_ids"], batch["labels"] = mlm_mask(
            batch["input_ids"], self.tokenizer, self.rng, self.mask_prob
        )
        batch["next_sentence_label"] = np.array(nsp, dtype=np.int64)  # (B,)
        self.step += 1
        return batch


