"""Decoding for encoder-decoders: greedy, sampled and beam search through one protocol.

Shapes: B sources, S source positions, K beams, V vocabulary, L generated positions,
A sources (or rows) still being decoded, N = B * num_return_sequences output rows.

Every encoder-decoder family (the Transformer of tinyllm.models.seq2seq, the recurrent
encoder-decoder) offers three calls, and this module needs nothing else:

    state  = model.start_decoding(input_ids, attention_mask)   runs the encoder, once
    logits = model.decode_step(state, tokens)                  (rows, V) next-token logits
    state  = state.select(rows)                                the state of those rows

>>> generate_seq2seq(model, input_ids, attention_mask, num_beams=4, max_new_tokens=20)
array([[ 37, 912,   5,   0],                 # each row ends with eos, then pad
       [ 81,   0,  58, 58]])

What the protocol saves. A translation of L tokens read by calling `model(input_ids,
decoder_input_ids)` afresh for each new token would run the encoder L times and the decoder
over 1 + 2 + ... + L positions. `start_decoding` runs the encoder once (and, in the Transformer,
projects its output to each layer's cross-attention keys and values once); each
`decode_step` then feeds one token per row and attends to the keys and values of earlier
positions kept in the state (the KV cache; in the LSTM, the recurrent state is the cache), so a
step costs one position, not the whole prefix: O(L) decoder positions instead of O(L^2).
Beam search runs all sources x beams as one batch: one `decode_step` per position for all of
them, and `state.select` copies the rows of the beams that survive.

Beam search (Hugging Face's `num_beams`, `length_penalty`, `early_stopping`):

1. Each source keeps K running beams, scored by the sum of their tokens' log-probabilities
   (the first starts at 0, the others at -inf so the first step does not pick K copies).
2. A step extends every beam by every token (K x V candidates) and ranks them; of the best 2K,
   those among the top K that end in eos become finished hypotheses, scored
   sum(log p) / (generated length ** length_penalty) -- Wu et al. (2016)'s length
   normalisation with exponent `length_penalty`; the length counts the generated tokens, eos
   included, and not the decoder's start token. The best K candidates not ending in eos run on.
3. `BeamHypotheses` keeps each source's K best hypotheses. A source is done when it holds K
   and no running beam can still beat the worst of them: `early_stopping=True` stops as soon
   as K are held; False compares the best running beam's score at the current length (a
   heuristic); "never" at the longest length it could reach when length_penalty > 0 (then the
   bound is exact: the search returns what an unbounded-time search with these beams would).
4. At `max_new_tokens`, the top K candidates are finished as they are, eos or not.
The search stops when every source is done; done sources leave the batch. Each source returns
its `num_return_sequences` best hypotheses, best first.
"""

from __future__ import annotations

import numbers
import warnings
from typing import NamedTuple

import numpy as np

from .._checks import choice, positive_int, positive_number
from ..autograd.grad_mode import no_grad
from ..autograd.random import default_generator
from ..autograd.tensor import Tensor
from .base import as_ids
from .sampling import generating, sample

EARLY_STOPPING = (True, False, "never")


class BeamSearchOutput(NamedTuple):
    """Beam search's result (Hugging Face's field names): `sequences` (N, L) int64, each
    source's `num_return_sequences` best hypotheses (best first, sources in order), without the
    decoder start token, right-padded with pad; `sequences_scores` (N,) their length-penalised
    scores, sum(log p) / (length ** length_penalty)."""

    sequences: np.ndarray
    sequences_scores: np.ndarray


class BeamHypotheses:
    """The `num_beams` best finished hypotheses of one source, and whether any running beam
    could still beat them.

    >>> hyps = BeamHypotheses(num_beams=2, length_penalty=1.0, early_stopping=False,
    ...                       max_length=5)
    >>> hyps.add(np.array([4, 0]), -3.0)           # scored -3.0 / 2 ** 1.0 = -1.5
    >>> hyps.add(np.array([7, 8, 0]), -3.0)        # -1.0
    >>> hyps.worst_score, hyps.is_done(best_running_sum=-4.5, cur_len=3)
    (-1.5, True)
    """

    def __init__(self, num_beams: int, length_penalty: float, early_stopping, max_length: int):
        self.num_beams = num_beams
        self.length_penalty = length_penalty
        self.early_stopping = early_stopping
        self.max_length = max_length
        self.beams: list[tuple[float, np.ndarray]] = []   # (score, tokens), best first

    def __len__(self) -> int:
        return len(self.beams)

    def score(self, sum_logprobs: float, length: int) -> float:
        """The length-penalised score of a hypothesis of `length` generated tokens."""
        return sum_logprobs / length ** self.length_penalty

    @property
    def worst_score(self) -> float:
        return self.beams[-1][0] if self.beams else -np.inf

    def add(self, tokens: np.ndarray, sum_logprobs: float) -> None:
        """Keep the hypothesis `tokens` (L,) if it is among the `num_beams` best so far."""
        score = self.score(sum_logprobs, len(tokens))
        if len(self) == self.num_beams and score <= self.worst_score:
            return
        rank = sum(1 for s, _ in self.beams if s >= score)  # after equal scores: first come
        self.beams.insert(rank, (score, tokens))
        del self.beams[self.num_beams:]

    def is_done(self, best_running_sum: float, cur_len: int) -> bool:
        """Whether the search for this source may stop, `cur_len` tokens generated so far and
        the best running beam at `best_running_sum` (see the module docstring, step 3)."""
        if len(self) < self.num_beams:
            return False
        if self.early_stopping is True:
            return True
        never = self.early_stopping == "never" and self.length_penalty > 0
        best_possible = self.score(best_running_sum, self.max_length if never else cur_len)
        return self.worst_score >= best_possible


# --------------------------------------------------------------------------- entry point
def generate_seq2seq(model, input_ids, attention_mask=None, *, max_new_tokens=None,
                     num_beams=1, do_sample=False, temperature=1.0, top_k=None, top_p=None,
                     length_penalty=1.0, early_stopping=False, num_return_sequences=1,
                     seed=None) -> np.ndarray:
    """Translate each source row of `input_ids` (B, S): the generated tokens (N, L) int64.

    - `num_beams=1, do_sample=False`: greedy, the most likely token each step.
    - `do_sample=True`: sample from softmax(logits / temperature), restricted to the `top_k`
      most likely tokens and/or the smallest set reaching probability `top_p`; `seed` gives a
      private generator (default: tinyllm's global one); `num_return_sequences` samples each.
    - `num_beams > 1`: beam search (`length_penalty`, `early_stopping`, `num_return_sequences`
      best hypotheses per source); see the module docstring.

    Rows are the generated tokens without the decoder start token, ending with eos where one was
    produced, then `pad_token_id`; N = B * num_return_sequences, each source's rows together.
    `max_new_tokens` (default `config.block_size`) bounds L. Runs without recording a graph,
    in evaluation mode, restoring the model's mode after.
    """
    num_beams = positive_int("num_beams", num_beams, where="generate")
    num_return_sequences = positive_int("num_return_sequences", num_return_sequences,
                                        where="generate")
    if not isinstance(do_sample, bool | np.bool_):
        raise ValueError(f"generate: do_sample must be True or False, got {do_sample!r}")
    if do_sample and num_beams > 1:
        raise ValueError(f"generate: do_sample=True with num_beams={num_beams} (beam "
                         "sampling) is not implemented; use do_sample=True with num_beams=1, "
                         "or num_beams > 1 with do_sample=False")
    if num_beams > 1:
        _warn_unused("beam search", temperature=(temperature, 1.0), top_k=(top_k, None),
                     top_p=(top_p, None), seed=(seed, None))
        return beam_search(model, input_ids, attention_mask, num_beams=num_beams,
                           max_new_tokens=max_new_tokens, length_penalty=length_penalty,
                           early_stopping=early_stopping,
                           num_return_sequences=num_return_sequences).sequences
    _check_length_penalty(length_penalty)
    choice("early_stopping", early_stopping, EARLY_STOPPING, where="generate")
    if do_sample:
        return sample_search(model, input_ids, attention_mask, max_new_tokens=max_new_tokens,
                             temperature=temperature, top_k=top_k, top_p=top_p,
                             num_return_sequences=num_return_sequences, seed=seed)
    if num_return_sequences > 1:
        raise ValueError(f"generate: num_return_sequences={num_return_sequences} needs "
                         "num_beams >= num_return_sequences or do_sample=True: greedy "
                         "decoding has one answer per source")
    _warn_unused("greedy decoding", temperature=(temperature, 1.0), top_k=(top_k, None),
                 top_p=(top_p, None), seed=(seed, None))
    return greedy_search(model, input_ids, attention_mask, max_new_tokens=max_new_tokens)


def _warn_unused(method: str, **given) -> None:
    """Warn of sampling arguments given to a method that does not sample (as transformers
    does): they change nothing, which is worth saying."""
    unused = [f"{name}={value!r}" for name, (value, default) in given.items()
              if value is not None and value != default]
    if unused:
        warnings.warn(f"generate: {', '.join(unused)} only apply with do_sample=True; "
                      f"{method} ignores them", UserWarning, stacklevel=3)


# --------------------------------------------------------------------------- checks
class _Setup(NamedTuple):
    ids: np.ndarray              # (B, S) int64
    mask: np.ndarray | None      # (B, S) int64 or None
    max_new_tokens: int
    start: int
    eos: int | None
    pad: int                     # what fills a row after its eos


def _setup(model, input_ids, attention_mask, max_new_tokens, where: str) -> _Setup:
    """Check the inputs every search shares; read the special ids from `model.config`."""
    cfg = model.config
    ids = as_ids("input_ids", input_ids, cfg.vocab_size)
    if ids.shape[0] == 0 or ids.shape[1] == 0:
        raise ValueError(f"{where}: input_ids must hold at least one source of at least one "
                         f"token, got shape {ids.shape}")
    mask = None if attention_mask is None else _check_mask(attention_mask, ids.shape, where)
    block = cfg.block_size
    if max_new_tokens is None:
        max_new_tokens = block
    max_new_tokens = positive_int("max_new_tokens", max_new_tokens, where=where)
    if max_new_tokens > block:
        raise ValueError(f"{where}: max_new_tokens={max_new_tokens} exceeds the model's "
                         f"block_size of {block} decoder positions (accepted: 1..{block})")
    start = getattr(cfg, "decoder_start_token_id", None)
    if start is None:
        raise ValueError(f"{where}: the model's config has no decoder_start_token_id, the "
                         "token the decoder reads first; set one")
    eos, pad = cfg.eos_token_id, cfg.pad_token_id
    return _Setup(ids, mask, max_new_tokens, int(start), eos, pad if pad is not None else eos)


def _check_mask(attention_mask, shape: tuple, where: str) -> np.ndarray:
    m = np.asarray(attention_mask.data if isinstance(attention_mask, Tensor)
                   else attention_mask)
    if m.shape != shape:
        raise ValueError(f"{where}: attention_mask has shape {m.shape}, expected input_ids' "
                         f"shape {shape} (1 = token, 0 = padding)")
    if not np.isin(m, (0, 1)).all():
        raise ValueError(f"{where}: attention_mask must hold only 1 (token) and 0 (padding)")
    empty = np.flatnonzero(m.sum(axis=1) == 0)
    if len(empty):
        raise ValueError(f"{where}: attention_mask row {int(empty[0])} is all padding; "
                         "each source needs at least one token")
    return m.astype(np.int64)


def _check_length_penalty(length_penalty) -> float:
    if (isinstance(length_penalty, bool) or not isinstance(length_penalty, numbers.Real)
            or not np.isfinite(length_penalty)):
        raise ValueError(f"generate: length_penalty must be a finite number (> 0 favours "
                         f"longer outputs, < 0 shorter), got {length_penalty!r}")
    return float(length_penalty)


def _log_softmax(logits: np.ndarray) -> np.ndarray:
    """log softmax over the last axis, in float64 so that sums over steps stay exact."""
    x = np.asarray(logits, dtype=np.float64)                           # (rows, V)
    top = x.max(axis=-1, keepdims=True)
    top = np.where(np.isfinite(top), top, 0.0)
    return x - top - np.log(np.exp(x - top).sum(axis=-1, keepdims=True))


# --------------------------------------------------------------------------- greedy, sampled
@no_grad()
def greedy_search(model, input_ids, attention_mask=None, *, max_new_tokens=None) -> np.ndarray:
    """The most likely next token at each step, for each source of `input_ids` (B, S):
    (B, L) int64 generated tokens, pad after eos (see `generate_seq2seq`)."""
    setup = _setup(model, input_ids, attention_mask, max_new_tokens, "greedy_search")
    return _token_by_token(model, setup, 1, lambda logits: np.argmax(logits, axis=-1))


@no_grad()
def sample_search(model, input_ids, attention_mask=None, *, max_new_tokens=None,
                  temperature=1.0, top_k=None, top_p=None, num_return_sequences=1,
                  seed=None) -> np.ndarray:
    """Tokens drawn from the tempered, top-k / top-p filtered softmax: (N, L) int64, the
    `num_return_sequences` samples of each source together, pad after eos. The encoder runs
    once per source, not once per sample."""
    where = "sample_search"
    setup = _setup(model, input_ids, attention_mask, max_new_tokens, where)
    temperature = positive_number("temperature", temperature, where=where)
    if top_k is not None:
        top_k = positive_int("top_k", top_k, where=where)
    if top_p is not None and (isinstance(top_p, bool) or not isinstance(top_p, numbers.Real)
                              or not 0.0 < top_p <= 1.0):
        raise ValueError(f"{where}: top_p must be in (0, 1] or None, got {top_p!r}")
    n = positive_int("num_return_sequences", num_return_sequences, where=where)
    if seed is not None and not isinstance(seed, numbers.Integral):
        raise ValueError(f"{where}: seed must be an integer or None, got {seed!r}")
    rng = np.random.default_rng(seed) if seed is not None else default_generator()
    return _token_by_token(model, setup, n, lambda logits: sample(
        np.asarray(logits, dtype=np.float64), temperature, top_k, top_p, rng))


def _token_by_token(model, setup: _Setup, copies: int, pick) -> np.ndarray:
    """One token per row per step from `pick(logits (A, V)) -> (A,)`; a row leaves the batch
    at its eos. Rows are the sources, each repeated `copies` times."""
    rows = len(setup.ids) * copies
    out = np.full((rows, setup.max_new_tokens), setup.pad, dtype=np.int64)   # (N, L)
    with generating(model):
        state = model.start_decoding(setup.ids, setup.mask)
        if copies > 1:
            state = state.select(np.repeat(np.arange(len(setup.ids)), copies))
        alive = np.arange(rows)                                        # (A,) rows of out
        tokens = np.full(rows, setup.start, dtype=np.int64)            # (A,)
        for t in range(setup.max_new_tokens):
            logits = model.decode_step(state, tokens)                  # (A, V)
            tokens = np.asarray(pick(logits), dtype=np.int64)          # (A,)
            out[alive, t] = tokens
            going = tokens != setup.eos if setup.eos is not None else np.ones_like(alive, bool)
            if not going.any():
                return out[:, :t + 1]
            if not going.all():
                keep = np.flatnonzero(going)
                state, alive, tokens = state.select(keep), alive[keep], tokens[keep]
    return out


# --------------------------------------------------------------------------- beam search
@no_grad()
def beam_search(model, input_ids, attention_mask=None, *, num_beams, max_new_tokens=None,
                length_penalty=1.0, early_stopping=False,
                num_return_sequences=1) -> BeamSearchOutput:
    """Beam search over all sources of `input_ids` (B, S) at once (see the module docstring):
    each source's `num_return_sequences` best hypotheses and their scores."""
    where = "beam_search"
    setup = _setup(model, input_ids, attention_mask, max_new_tokens, where)
    k = positive_int("num_beams", num_beams, where=where)
    n = positive_int("num_return_sequences", num_return_sequences, where=where)
    if n > k:
        raise ValueError(f"{where}: num_return_sequences={n} is more than num_beams={k}; "
                         f"beam search keeps num_beams hypotheses (accepted: 1..{k})")
    length_penalty = _check_length_penalty(length_penalty)
    choice("early_stopping", early_stopping, EARLY_STOPPING, where=where)
    hyps = [BeamHypotheses(k, length_penalty, early_stopping, setup.max_new_tokens)
            for _ in range(len(setup.ids))]
    with generating(model):
        state = model.start_decoding(setup.ids, setup.mask)
        _run_beams(model, state, setup, hyps, k)
    return _collect(hyps, n, setup.pad)


def _run_beams(model, state, setup: _Setup, hyps: list[BeamHypotheses], k: int) -> None:
    """The search loop: fills each source's hypotheses; stops when every source is done."""
    b = len(hyps)
    active = np.arange(b)                                              # (A,) sources
    state = state.select(np.repeat(active, k))                         # (A*K) rows
    running = np.full((b, k), -np.inf)                                 # (A, K) sum log p
    running[:, 0] = 0.0
    seqs = np.zeros((b * k, 0), dtype=np.int64)                        # (A*K, t)
    tokens = np.full(b * k, setup.start, dtype=np.int64)               # (A*K,)
    for t in range(setup.max_new_tokens):
        logp = _log_softmax(model.decode_step(state, tokens))          # (A*K, V)
        v = logp.shape[-1]
        cand = (running[:, :, None] + logp.reshape(-1, k, v)).reshape(-1, k * v)  # (A, K*V)
        order = _best(cand, 2 * k)                                     # (A, 2K) best first
        scores = np.take_along_axis(cand, order, axis=1)               # (A, 2K)
        rows = order // v + (np.arange(len(active)) * k)[:, None]      # (A, 2K) rows of seqs
        words = order % v                                              # (A, 2K)
        last = t + 1 == setup.max_new_tokens
        ends = np.ones_like(words, bool) if last else words == setup.eos  # (A, 2K)
        for a, src in enumerate(active):
            for r in np.flatnonzero(ends[a, :k] & np.isfinite(scores[a, :k])):
                hyps[src].add(np.append(seqs[rows[a, r]], words[a, r]), scores[a, r])
        if last:
            return
        # The K best candidates that did not end run on, best first.
        pick = _best(np.where(ends, -np.inf, scores), k)               # (A, K)
        running = np.take_along_axis(np.where(ends, -np.inf, scores), pick, axis=1)  # (A, K)
        chosen = np.take_along_axis(rows, pick, axis=1).reshape(-1)    # (A*K,)
        tokens = np.take_along_axis(words, pick, axis=1).reshape(-1)   # (A*K,)
        seqs = np.concatenate([seqs[chosen], tokens[:, None]], axis=1)  # (A*K, t + 1)
        done = np.array([hyps[src].is_done(running[a, 0], t + 1)
                         for a, src in enumerate(active)])             # (A,)
        if done.all():
            return
        if done.any():   # finished sources leave the batch: the search ignores them anyway
            keep = np.flatnonzero(~done)
            active, running = active[keep], running[keep]
            chosen_rows = (keep[:, None] * k + np.arange(k)).reshape(-1)
            chosen, seqs, tokens = chosen[chosen_rows], seqs[chosen_rows], tokens[chosen_rows]
        state = state.select(chosen)


def _best(scores: np.ndarray, n: int) -> np.ndarray:
    """The columns of the `n` largest `scores` (A, M) of each row, best first, equal scores in
    column order: a partial sort, since M = K x V can be large and n is small."""
    m = scores.shape[1]
    part = (np.argpartition(-scores, n - 1, axis=1)[:, :n] if n < m       # (A, n) unordered
            else np.broadcast_to(np.arange(m), scores.shape))
    order = np.lexsort((part, -np.take_along_axis(scores, part, axis=1)), axis=-1)
    return np.take_along_axis(part, order, axis=1)


def _collect(hyps: list[BeamHypotheses], n: int, pad: int) -> BeamSearchOutput:
    """Each source's `n` best hypotheses as one right-padded array, and their scores. A
    source whose search space holds fewer than `n` sequences gets all-pad rows scored -inf."""
    best = [h.beams[:n] + [(-np.inf, np.zeros(0, np.int64))] * (n - len(h.beams[:n]))
            for h in hyps]
    flat = [hyp for source in best for hyp in source]
    width = max(len(tokens) for _, tokens in flat)
    sequences = np.full((len(flat), width), pad, dtype=np.int64)       # (N, L)
    for i, (_, tokens) in enumerate(flat):
        sequences[i, :len(tokens)] = tokens
    return BeamSearchOutput(sequences, np.array([score for score, _ in flat]))
