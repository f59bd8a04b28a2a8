"""Decoding helpers shared by the language models' `generate`: checks, greedy or sampled tokens.

Shapes: B rows being generated, V vocabulary.
"""

from __future__ import annotations

from contextlib import contextmanager

import numpy as np

from ..autograd.random import default_generator
from ..autograd.tensor import Tensor
from .base import as_ids


def start_generation(idx, vocab_size: int, max_new_tokens, temperature, top_k, top_p,
                     eos_token_id, seed, do_sample: bool):
    """Check `generate`'s arguments; return (ids (B, T) int64, one_row, rng, greedy)."""
    ids = np.asarray(idx.data if isinstance(idx, Tensor) else idx)
    one_row = ids.ndim == 1
    ids = as_ids("idx", ids[None] if one_row else ids, vocab_size)
    if ids.shape[1] == 0:
        raise ValueError("generate: idx must hold at least one token to continue from")
    check_sampling(max_new_tokens, temperature, top_k, top_p, eos_token_id, vocab_size)
    rng = np.random.default_rng(seed) if seed is not None else default_generator()
    return ids, one_row, rng, not do_sample or temperature == 0

@contextmanager
def generating(model, streamer=None):
    """`with generating(model, streamer):` runs a generation loop in evaluation mode (the
    model's mode is restored after) and ends the streamer however the loop stops."""
    was_training = model.training
    model.eval()
    try:
        yield
    finally:
        model.train(was_training)
        if streamer is not None:
            streamer.end()


def next_tokens(last_logits: np.ndarray, greedy: bool, temperature, top_k, top_p,
                rng: np.random.Generator, finished: np.ndarray,
                eos_token_id: int | None, streamer=None) -> np.ndarray:
    """The next id of each row from its last logits (B, V); rows that already emitted
    `eos_token_id` keep repeating it, and `finished` (B,) is updated in place. A streamer's
    `put` receives the ids (B,)."""
    last = last_logits.astype(np.float64)                              # (B, V)
    nxt = last.argmax(axis=-1) if greedy else sample(last, temperature, top_k, top_p, rng)
    if eos_token_id is not None:
        nxt = np.where(finished, eos_token_id, nxt)
        finished |= nxt == eos_token_id
    if streamer is not None:
        streamer.put(nxt)
    return nxt


def check_sampling(max_new_tokens, temperature, top_k, top_p, eos_token_id, vocab_size):
    if not isinstance(max_new_tokens, int | np.integer) or max_new_tokens < 0:
        raise ValueError(f"generate: max_new_tokens must be a non-negative integer, "
                         f"got {max_new_tokens!r}")
    if not temperature >= 0:
        raise ValueError(f"generate: temperature must be >= 0 (0 = greedy), got {temperature}")
    if top_k is not None and (not isinstance(top_k, int | np.integer) or top_k <= 0):
        raise ValueError(f"generate: top_k must be a positive integer or None, got {top_k!r}")
    if top_p is not None and not 0.0 < top_p <= 1.0:
        raise ValueError(f"generate: top_p must be in (0, 1] or None, got {top_p!r}")
    if eos_token_id is not None and not 0 <= eos_token_id < vocab_size:
        raise ValueError(f"generate: eos_token_id {eos_token_id} is outside the vocabulary "
                         f"(accepted: 0..{vocab_size - 1})")


def top_p_filter(probs: np.ndarray, top_p: float) -> np.ndarray:
    """Nucleus filtering of probability rows (B, V): keep the most likely tokens (ties: the
    lower index first) while the mass before each is below `top_p` -- the smallest set whose
    mass reaches `top_p`, the token that crosses it included -- zero the rest, renormalise.

    >>> top_p_filter(np.array([[0.2, 0.4, 0.1, 0.3]]), 0.6)
    array([[0.        , 0.57142857, 0.        , 0.42857143]])
    """
    if top_p >= 1.0:
        return probs
    order = np.argsort(-probs, axis=-1, kind="stable")                 # (B, V)
    sorted_p = np.take_along_axis(probs, order, axis=-1)
    drop_sorted = np.cumsum(sorted_p, axis=-1) - sorted_p >= top_p
    drop = np.zeros_like(drop_sorted)
    np.put_along_axis(drop, order, drop_sorted, axis=-1)
    kept = np.where(drop, 0.0, probs)
    return kept / kept.sum(axis=-1, keepdims=True)


def sample(logits: np.ndarray, temperature: float, top_k, top_p,
            rng: np.random.Generator) -> np.ndarray:
    """One token per row of `logits` (B, V), drawn from the filtered, tempered softmax."""
    logits = logits / temperature                                      # (B, V)
    if top_k is not None and top_k < logits.shape[-1]:
        kth = np.partition(logits, -top_k, axis=-1)[:, -top_k, None]   # (B, 1)
        logits = np.where(logits < kth, -np.inf, logits)
    probs = np.exp(logits - logits.max(axis=-1, keepdims=True))
    probs /= probs.sum(axis=-1, keepdims=True)                         # (B, V)
    if top_p is not None:
        probs = top_p_filter(probs, top_p)                             # (B, V)
    cdf = np.cumsum(probs, axis=-1)                                    # (B, V)
    u = rng.random((len(probs), 1)) * cdf[:, -1:]
    return np.minimum((cdf <= u).sum(axis=-1), probs.shape[-1] - 1)
