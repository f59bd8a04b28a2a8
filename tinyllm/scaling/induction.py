"""Induction heads: in-context learning appearing in small attention-only Transformers.

Olsson et al. 2022 ("In-context Learning and Induction Heads", Transformer Circuits Thread)
found that two-layer attention-only Transformers learn, in a short window of training, a
circuit of two heads that completes patterns it has seen earlier in the context: a
*previous-token* head in layer 0 writes "the token before me was A" into each position, and
an *induction head* in layer 1 attends from the current token A to the position just after
an earlier A and copies the token found there ([A][B] ... [A] -> [B]). One-layer models cannot
form it (the second head must read what the first wrote). The same window is where the
model's loss late in a context falls below its loss early in it: in-context learning.

This module measures the same things at tinyllm's scale:

    AttentionOnlyLM             n_layer residual attention layers, no MLPs (pre-LN, tied
                                unembedding): what a layer can do is move information
                                between positions
    repeated_tokens(...)        random token sequences, each repeated once: (B, 2 L)
    induction_stream(...)       random segments said twice with random gaps between: a
                                stream that rewards copying by content, not by offset
    repeated_segments(...)      a sampler of fresh such rows (one repeat each) for training
    repeated_tail(...)          a sampler of random rows ending in a segment said twice (the
                                study's data)
    in_context_score(...)       mean loss at late positions minus mean loss at early ones
                                (Olsson's "loss at token 500 minus loss at token 50",
                                scaled to the context); negative = the context helps
    prefix_matching_scores(...) per layer and head, the attention a query in the second
                                copy gives to the token after the earlier occurrence of its
                                own token -- an induction head's signature
    copying_scores(...)         per layer and head, how much the head's output raises the
                                logit of the token it attends to: the OV circuit's
                                eigenvalues, sum(Re l) / sum(|l|), in [-1, 1]
    previous_token_scores(...)  per layer and head, the attention to the position before
    duplicate_token_scores(...) per layer and head, the attention to the earlier occurrence
                                of the query's own token
    train_and_track(...)        AdamW on sampled rows or a token stream, recording all of
                                the above at every evaluation
    phase_change(...)           the steps over which the in-context score makes 80% of its
                                fall (10% to 90%)
    steepest_fall(...)          the largest fall of a score within a span of steps

What the data must be for the circuit to form (measured on 2 cores; the study,
`induction_study`, ships its results): rows of random tokens (V = 256, context 48) whose
tail is one segment said twice (`repeated_tail`). A two-layer model of width 64 (seed 0;
seed 1 never leaves the plateau, even in 10,000 steps) then sits on a plateau for ~1,000
steps and in the next ~400 its in-context score falls from -0.5 to -4.4 nats, as one
layer-0 head becomes a previous-token head (0.14 -> 0.93) and layer-1 heads
become induction heads (prefix matching 0.02 -> 0.91); one-layer models improve smoothly and
stay above 3.6 nats on the second copy of a repeat. Settings that did not give the clean
circuit, and why: V = 64 with a repeated segment in the middle of a row (`repeated_segments`)
-- a token recurs by chance so often in 48 positions that one token of prefix is ambiguous,
and the models matched a bag of the last ~6 tokens instead (layer-0 heads attending 5-6
back; loss on the second copy 1.7 nats, no head above 0.13); a repeat at a fixed offset --
solved by position, not content; token streams of 60k tokens (memorised) and
character-level Shakespeare (3,000 steps, no phase change); V = 2,048 (4,000 steps of batch
64 were too few for the embeddings: no head above 0.13).

>>> import numpy as np
>>> from tinyllm.scaling.induction import AttentionOnlyLM, repeated_tokens
>>> model = AttentionOnlyLM(vocab_size=20, n_layer=2, n_head=2, n_embd=16, n_positions=32)
>>> repeated_tokens(20, 8, 3, np.random.default_rng(0)).shape
(3, 16)
"""

from __future__ import annotations

import dataclasses
import time

import numpy as np

from .. import functional as F
from .._checks import positive_int
from ..autograd.grad_mode import no_grad
from ..autograd.tensor import Tensor
from ..data.datasets import get_batch
from ..nn import Embedding, LayerNorm, Module, ModuleList
from ..nn.attention import MultiHeadAttention
from ..optim import AdamW


class AttentionLayer(Module):
    """x + attn(ln(x)): one residual attention layer without a feed-forward network."""

    def __init__(self, n_embd: int, n_head: int):
        super().__init__()
        self.ln = LayerNorm(n_embd)
        self.attn = MultiHeadAttention(n_embd, n_head, is_causal=True)

    def forward(self, x: Tensor) -> Tensor:
        return x + self.attn(self.ln(x))                               # (B, T, C)


class AttentionOnlyLM(Module):
    """An attention-only causal language model: ids (B, T) -> logits (B, T, V).

    Token and position embeddings N(0, 0.02^2), `n_layer` `AttentionLayer`s, a final
    LayerNorm and the token embedding as the unembedding (tied), as GPT-2 without its MLPs.
    """

    def __init__(self, vocab_size: int, n_layer: int, n_head: int, n_embd: int,
                 n_positions: int, seed: int = 0):
        super().__init__()
        for name, value in (("vocab_size", vocab_size), ("n_layer", n_layer),
                            ("n_head", n_head), ("n_embd", n_embd),
                            ("n_positions", n_positions)):
            positive_int(name, value, where="AttentionOnlyLM")
        self.vocab_size, self.n_positions = vocab_size, n_positions
        self.wte = Embedding(vocab_size, n_embd)
        self.wpe = Embedding(n_positions, n_embd)
        self.h = ModuleList(AttentionLayer(n_embd, n_head) for _ in range(n_layer))
        self.ln_f = LayerNorm(n_embd)
        rng = np.random.default_rng(seed)
        for name, p in self.named_parameters():
            if name.endswith("bias"):
                p.data[...] = 0
            elif ".ln" not in name and not name.startswith("ln_f"):
                p.data[...] = rng.normal(0.0, 0.02, p.shape)

    def forward(self, idx: np.ndarray) -> Tensor:
        if idx.ndim != 2 or idx.shape[1] > self.n_positions:
            raise ValueError(f"AttentionOnlyLM: ids must be (B, T) with T <= n_positions="
                             f"{self.n_positions}, got shape {idx.shape}")
        x = self.wte(idx) + self.wpe(np.arange(idx.shape[1]))          # (B, T, C)
        for layer in self.h:
            x = layer(x)                                               # (B, T, C)
        return F.linear(self.ln_f(x), self.wte.weight)                 # (B, T, V)

    @no_grad()
    def attention_maps(self, idx: np.ndarray) -> list[np.ndarray]:
        """Each layer's attention weights (B, nh, T, T) for ids `idx` (B, T)."""
        x = self.wte(idx) + self.wpe(np.arange(idx.shape[1]))
        maps = []
        for layer in self.h:
            maps.append(layer.attn.attention_maps(layer.ln(x)))         # (B, nh, T, T)
            x = layer(x)
        return maps


# ---------------------------------------------------------------------- measurements
def repeated_tokens(vocab_size: int, length: int, batch: int,
                    rng: np.random.Generator) -> np.ndarray:
    """`batch` rows of `length` uniform random tokens, each row followed by itself: (B, 2 L)."""
    half = rng.integers(0, vocab_size, (batch, length))
    return np.concatenate([half, half], axis=1)


def induction_stream(vocab_size: int, n_segments: int, rng: np.random.Generator,
                     lengths: tuple[int, int] = (4, 12),
                     gaps: tuple[int, int] = (0, 8)) -> np.ndarray:
    """A token stream where only in-context copying helps: random segments (length drawn
    from `lengths`), each said again after a random filler (length from `gaps`): segment,
    filler, segment, next segment, ... Lengths and gaps vary, so no fixed offset predicts a
    repeat -- a model must find the earlier occurrence of the current token by content."""
    parts = []
    for _ in range(n_segments):
        seg = rng.integers(0, vocab_size, int(rng.integers(lengths[0], lengths[1] + 1)))
        gap = rng.integers(0, vocab_size, int(rng.integers(gaps[0], gaps[1] + 1)))
        parts += [seg, gap, seg]
    return np.concatenate(parts)


def repeated_segments(vocab_size: int, lengths: tuple[int, int] = (6, 19)):
    """A batch sampler for `train_and_track`: sample(rng, batch, length) -> (batch, length)
    uniform random tokens in which one segment per row (length drawn from `lengths`, at a
    random place) is said again right after itself. Fresh rows every call: nothing to
    memorise, and neither the length nor the place of the repeat is fixed, so only copying by
    content helps."""
    def sample(rng: np.random.Generator, batch: int, length: int) -> np.ndarray:
        if 2 * lengths[1] > length:
            raise ValueError(f"repeated_segments: a segment of up to {lengths[1]} tokens said "
                             f"twice does not fit rows of {length}")
        rows = rng.integers(0, vocab_size, (batch, length))
        for row in rows:
            half = int(rng.integers(lengths[0], lengths[1] + 1))
            start = int(rng.integers(0, length - 2 * half + 1))
            row[start + half:start + 2 * half] = row[start:start + half]
        return rows
    return sample


def repeated_tail(vocab_size: int, min_length: int = 6):
    """A batch sampler for `train_and_track`: sample(rng, batch, length) -> (batch, length)
    uniform random tokens whose tail is one segment said twice: a random prefix of p tokens
    (p uniform in 0 .. length - 2 min_length), then a segment S of (length - p) // 2 tokens,
    then S again (one random token after it when length - p is odd). Up to half of a row can
    be predicted, but only by finding where the current token was seen before: neither the
    repeat's length nor where it starts is fixed. With p = 0 a row is `repeated_tokens`'s
    probe, so the probe is one of the rows the model learns from."""
    positive_int("min_length", min_length, where="repeated_tail")

    def sample(rng: np.random.Generator, batch: int, length: int) -> np.ndarray:
        if 2 * min_length > length:
            raise ValueError(f"repeated_tail: a segment of at least {min_length} tokens said "
                             f"twice does not fit rows of {length}")
        rows = rng.integers(0, vocab_size, (batch, length))
        for row in rows:
            start = int(rng.integers(0, length - 2 * min_length + 1))
            half = (length - start) // 2
            row[start + half:start + 2 * half] = row[start:start + half]
        return rows
    return sample


def per_position_loss(model: AttentionOnlyLM, idx: np.ndarray) -> np.ndarray:
    """Cross-entropy of predicting idx[:, t + 1] from idx[:, :t + 1], averaged over the batch:
    (T - 1,) nats, position by position."""
    with no_grad():
        logits = model(idx[:, :-1])                                    # (B, T-1, V)
        losses = F.cross_entropy(logits.reshape(-1, logits.shape[-1]),
                                 idx[:, 1:].reshape(-1), reduction="none")
    return losses.data.reshape(idx.shape[0], -1).mean(axis=0)


def in_context_score(losses: np.ndarray, early: float = 0.1, late: float = 0.9) -> float:
    """Mean loss over the last tenth of the positions minus the mean over the tenth around
    `early` of the context (Olsson et al. use the 500th token minus the 50th of 512): below
    zero when later tokens are predicted better because of what came before."""
    n = len(losses)
    width = max(1, n // 10)
    e0 = min(n - width, int(round(early * n)))
    l0 = max(0, min(n - width, int(round(late * n))))
    return float(losses[l0:].mean() - losses[e0:e0 + width].mean())


def prefix_matching_scores(model: AttentionOnlyLM, idx: np.ndarray) -> np.ndarray:
    """(n_layer, n_head): on repeated sequences idx (B, 2 L), the mean attention a query at
    position L + i (i >= 1) gives to position i + 1 -- just after the earlier occurrence of
    its own token. 1 = a perfect induction head; a uniform causal head gives ~1 / (L + i)."""
    length = idx.shape[1] // 2
    queries = np.arange(length + 1, 2 * length)                        # second copy
    targets = queries - length + 1                                     # after the earlier one
    return np.array([m[:, :, queries, targets].mean(axis=(0, 2))
                     for m in model.attention_maps(idx)])


def duplicate_token_scores(model: AttentionOnlyLM, idx: np.ndarray) -> np.ndarray:
    """(n_layer, n_head): on repeated sequences idx (B, 2 L), the mean attention a query at
    position L + i gives to position i, the earlier occurrence of its own token (a
    duplicate-token head: it can tell a later layer where the token was seen before)."""
    length = idx.shape[1] // 2
    queries = np.arange(length, 2 * length)
    return np.array([m[:, :, queries, queries - length].mean(axis=(0, 2))
                     for m in model.attention_maps(idx)])


def previous_token_scores(model: AttentionOnlyLM, idx: np.ndarray) -> np.ndarray:
    """(n_layer, n_head): the mean attention a query at position t >= 1 gives to t - 1."""
    t = np.arange(1, idx.shape[1])
    return np.array([m[:, :, t, t - 1].mean(axis=(0, 2)) for m in model.attention_maps(idx)])


def copying_scores(model: AttentionOnlyLM) -> np.ndarray:
    """(n_layer, n_head): sum(Re l) / sum(|l|) over the eigenvalues l of each head's OV
    circuit read from token to logit, W_E W_V W_O W_E^T (V, V), LayerNorms left out (Olsson
    et al.'s copying score). Positive: attending to a token raises that token's logit. The
    non-zero eigenvalues are those of the (hs, hs) matrix W_O W_E^T W_E W_V, used instead."""
    emb = model.wte.weight.data.astype(np.float64)                     # (V, C)
    gram = emb.T @ emb                                                 # (C, C)
    scores = []
    for layer in model.h:
        attn = layer.attn
        c, hs = attn.embed_dim, attn.head_dim
        w_attn = attn.c_attn.weight.data.astype(np.float64)           # (C, 3C)
        w_proj = attn.c_proj.weight.data.astype(np.float64)           # (C, C)
        row = []
        for h in range(attn.num_heads):
            w_v = w_attn[:, 2 * c + h * hs: 2 * c + (h + 1) * hs]     # (C, hs)
            w_o = w_proj[h * hs:(h + 1) * hs]                          # (hs, C)
            lam = np.linalg.eigvals(w_o @ gram @ w_v)
            row.append(float(lam.real.sum() / np.abs(lam).sum()))
        scores.append(row)
    return np.array(scores)


# ---------------------------------------------------------------------- training
@dataclasses.dataclass
class InductionRun:
    """What `train_and_track` recorded: one entry per evaluation step."""

    n_layer: int
    n_head: int
    n_embd: int
    params: int = 0
    steps: list[int] = dataclasses.field(default_factory=list)
    val_loss: list[float] = dataclasses.field(default_factory=list)
    icl_score: list[float] = dataclasses.field(default_factory=list)
    #: the loss on the probe's repeated random tokens: first copy (nothing to copy from) and
    #: second copy (everything can be copied from the first)
    fresh_loss: list[float] = dataclasses.field(default_factory=list)
    copy_loss: list[float] = dataclasses.field(default_factory=list)
    #: per evaluation, (n_layer, n_head) lists
    prefix_matching: list = dataclasses.field(default_factory=list)
    copying: list = dataclasses.field(default_factory=list)
    previous_token: list = dataclasses.field(default_factory=list)
    duplicate_token: list = dataclasses.field(default_factory=list)
    seconds: float = 0.0
    #: the trained AttentionOnlyLM (left out of `to_dict`)
    model: AttentionOnlyLM | None = dataclasses.field(default=None, repr=False, compare=False)

    def to_dict(self) -> dict:
        """Every record but the model, as plain numbers and lists (JSON-ready)."""
        return {f.name: getattr(self, f.name) for f in dataclasses.fields(self)
                if f.name != "model"}


def _windows(tokens: np.ndarray, batch: int, length: int,
             rng: np.random.Generator) -> np.ndarray:
    """`batch` random windows of `length` tokens (data.get_batch's, inputs and targets
    joined): (batch, length)."""
    x, y = get_batch(tokens, batch, length - 1, rng)
    return np.concatenate([x, y[:, -1:]], axis=1)


def train_and_track(source, vocab_size: int, *, n_layer: int, n_head: int = 4,
                    n_embd: int = 64, context: int = 48, steps: int = 4000,
                    batch_size: int = 128, lr: float = 1e-3, eval_every: int = 200,
                    eval_batch: int = 64, repeat_length: int | None = None,
                    seed: int = 0) -> InductionRun:
    """Train an AttentionOnlyLM with AdamW (constant `lr`, weight decay 0.1 on matrices) and
    every `eval_every` steps record the validation loss and in-context score on held-out rows,
    and on a probe of repeated random sequences (`repeat_length` tokens twice; default half
    the context) the loss of each copy and the per-head scores.

    `source`: a batch sampler sample(rng, batch, length) (`repeated_segments`), or a token
    stream (an int array), whose last tenth is held out and the rest cut into random
    windows."""
    rng = np.random.default_rng(seed)
    eval_rng = np.random.default_rng(seed + 1)
    if callable(source):
        sample = source
        val = sample(eval_rng, eval_batch, context + 1)
    else:
        tokens = np.asarray(source)
        cut = len(tokens) * 9 // 10
        train, held = tokens[:cut], tokens[cut:]
        if min(len(train), len(held)) <= context + 1:
            raise ValueError(f"train_and_track: need more than context + 1 = {context + 1} "
                             f"tokens for training and for validation, got {len(train)} and "
                             f"{len(held)}")

        def sample(r, batch, length):
            return _windows(train, batch, length, r)
        val = _windows(held, eval_batch, context + 1, eval_rng)
    repeat_length = context // 2 if repeat_length is None else repeat_length
    if 2 * repeat_length > context:
        raise ValueError(f"train_and_track: repeated sequences of 2 x {repeat_length} tokens "
                         f"do not fit the context of {context}")
    model = AttentionOnlyLM(vocab_size, n_layer, n_head, n_embd, context, seed=seed)
    decay = [p for _, p in model.named_parameters() if p.ndim >= 2]
    keep = [p for _, p in model.named_parameters() if p.ndim < 2]
    opt = AdamW([{"params": decay, "weight_decay": 0.1},
                 {"params": keep, "weight_decay": 0.0}], lr=lr)
    probe = repeated_tokens(vocab_size, repeat_length, eval_batch, eval_rng)
    run = InductionRun(n_layer, n_head, n_embd,
                       params=sum(p.data.size for p in model.parameters()))
    start = time.perf_counter()
    for step in range(steps + 1):
        if step % eval_every == 0 or step == steps:
            losses = per_position_loss(model, val)
            run.steps.append(step)
            run.val_loss.append(float(losses.mean()))
            run.icl_score.append(in_context_score(losses))
            probe_losses = per_position_loss(model, probe)             # (2 L - 1,)
            run.fresh_loss.append(float(probe_losses[:repeat_length - 1].mean()))
            run.copy_loss.append(float(probe_losses[repeat_length:].mean()))
            run.prefix_matching.append(prefix_matching_scores(model, probe).tolist())
            run.copying.append(copying_scores(model).tolist())
            run.previous_token.append(previous_token_scores(model, probe).tolist())
            run.duplicate_token.append(duplicate_token_scores(model, probe).tolist())
        if step == steps:
            break
        batch = sample(rng, batch_size, context + 1)                   # (B, T + 1)
        loss = F.cross_entropy(model(batch[:, :-1]).reshape(-1, vocab_size),
                               batch[:, 1:].reshape(-1))
        opt.zero_grad()
        loss.backward()
        opt.step()
    run.seconds = time.perf_counter() - start
    run.model = model
    return run


def phase_change(steps, scores) -> tuple[int, int, float]:
    """(first step, last step, total change) of the window over which `scores` (e.g. the
    in-context score per evaluation) moves from 10% to 90% of its whole change from the first
    value to the lowest later one; the change is negative for a score that falls."""
    scores = np.asarray(scores, dtype=float)
    steps = np.asarray(steps)
    low = int(np.argmin(scores))
    total = scores[low] - scores[0]
    if total == 0:
        return int(steps[0]), int(steps[0]), 0.0
    frac = (scores[:low + 1] - scores[0]) / total                      # 0 -> 1
    i10 = int(np.argmax(frac >= 0.1))
    i90 = int(np.argmax(frac >= 0.9))
    return int(steps[i10]), int(steps[i90]), float(total)


def steepest_fall(steps, scores, span: int) -> tuple[int, int, float]:
    """(first step, last step, fall) of the largest fall of `scores` between two evaluations
    at most `span` steps apart (fall <= 0; 0 when the scores never fall): how much of a
    score's change happens at once. A phase change is a fall that is large beside the
    score's range and short beside the run."""
    scores = np.asarray(scores, dtype=float)
    steps = np.asarray(steps)
    best = (int(steps[0]), int(steps[0]), 0.0)
    for i in range(len(steps)):
        later = np.nonzero((steps > steps[i]) & (steps - steps[i] <= span))[0]
        if len(later):
            j = int(later[np.argmin(scores[later])])
            if scores[j] - scores[i] < best[2]:
                best = (int(steps[i]), int(steps[j]), float(scores[j] - scores[i]))
    return best


def best_heads(scores: np.ndarray, top: int = 1) -> list[tuple[int, int, float]]:
    """The `top` (layer, head, score) with the highest scores of an (n_layer, n_head) array."""
    flat = np.argsort(np.asarray(scores), axis=None)[::-1][:top]
    n_head = np.asarray(scores).shape[1]
    return [(int(i // n_head), int(i % n_head), float(np.asarray(scores).flat[i]))
            for i in flat]


__all__ = [
    "AttentionLayer", "AttentionOnlyLM", "InductionRun", "best_heads", "copying_scores",
    "duplicate_token_scores", "in_context_score", "induction_stream", "per_position_loss",
    "phase_change", "prefix_matching_scores", "previous_token_scores", "repeated_segments",
    "repeated_tail", "repeated_tokens", "steepest_fall", "train_and_track",
]
