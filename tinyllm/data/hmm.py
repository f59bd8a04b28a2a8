"""A hidden Markov source: a synthetic language with deep structure and a computable floor.

A chain of ``S`` hidden states moves by a sparse random transition matrix and each state writes
one character from a sparse random emission distribution. Every character is written by many
states, so what comes next depends on the whole past, through the belief over the hidden
state -- unlike an order-k Markov chain, whose last k characters tell all. The best possible
next-character loss is the forward algorithm's: with the belief ``b_t(s) = P(state_t = s |
x_<t)``,

    P(x_t | x_<t) = sum_s b_t(s) E[s, x_t],   b_{t+1} = normalize(b_t * E[:, x_t]) @ T

and the source's entropy rate ``H = lim E[-log P(x_t | x_<t)]`` is its long-run average. It has
no closed form; ``entropy_rate`` estimates it from ``chains`` independent strings started from
the stationary distribution, scored by the exact forward algorithm past a burn-in (where the
belief has forgotten its start), with a 95% interval from the spread of the strings' means
(they are independent, so the interval is honest). ``window_entropy(T)`` is the floor of a loss
measured on windows of ``T`` characters (a language model sees no further back): the forward
algorithm restarted from the stationary belief at each window.

Shapes: ``transitions`` (S, S) rows summing to 1, ``emissions`` (S, A), ``A`` characters.

>>> source = HiddenMarkovSource.random(states=16, alphabet=8, seed=0)
>>> text = source.sample(200, seed=1)
>>> len(text), set(text) <= set(source.alphabet)
(200, True)
"""

from __future__ import annotations

import bisect
import math
from dataclasses import dataclass

import numpy as np

from .._checks import positive_int
from .corpora import _markov_alphabet, cumulative_rows, draw_from_rows

#: The two-sided 95% quantile of the normal distribution.
Z95 = 1.959964


@dataclass(frozen=True)
class RateEstimate:
    """An estimated entropy rate in nats per character, with its 95% interval."""

    nats: float
    half_width: float          # of the 95% interval, nats
    tokens: int                # characters scored

    @property
    def bits(self) -> float:
        return self.nats / math.log(2)

    @property
    def relative_half_width(self) -> float:
        return self.half_width / self.nats

    def __str__(self) -> str:
        return (f"{self.nats:.4f} +- {self.half_width:.4f} nats/char "
                f"({100 * self.relative_half_width:.2f}%, 95%; {self.tokens:,} characters)")


@dataclass(frozen=True)
class HiddenMarkovSource:
    """``S`` hidden states with transitions ``(S, S)`` and emissions ``(S, A)``."""

    alphabet: str
    transitions: np.ndarray  # (S, S)
    emissions: np.ndarray    # (S, A)

    @property
    def num_states(self) -> int:
        return self.transitions.shape[0]

    def stationary(self, tol: float = 1e-14, max_iter: int = 1_000_000) -> np.ndarray:
        """``(S,)``: the stationary distribution of the hidden chain, by power iteration (the
        chain is irreducible and aperiodic: every transition has probability >= eps / S)."""
        pi = np.full(self.num_states, 1.0 / self.num_states)
        for _ in range(max_iter):
            new = pi @ self.transitions
            if np.abs(new - pi).sum() < tol:
                return new / new.sum()
            pi = new
        raise RuntimeError(f"stationary distribution did not converge in {max_iter} iterations")

    # ------------------------------------------------------------------ sampling
    def sample_codes(self, n: int, length: int, seed=0) -> np.ndarray:
        """``(n, length)`` int64: ``n`` independent strings as character indices, each started
        from the stationary distribution (vectorised over the strings)."""
        rng = np.random.default_rng(seed)
        S = self.num_states
        cum_t, cum_e = cumulative_rows(self.transitions), cumulative_rows(self.emissions)
        state = rng.choice(S, size=n, p=self.stationary())               # (n,)
        out = np.empty((n, length), dtype=np.int64)
        for t in range(length):
            out[:, t] = draw_from_rows(cum_e, state, rng)
            state = draw_from_rows(cum_t, state, rng)
        return out

    def sample(self, length: int, seed=0) -> str:
        """One string of ``length`` characters, started from the stationary distribution."""
        length = positive_int("length", length, where="HiddenMarkovSource.sample")
        rng = np.random.default_rng(seed)
        cum_t = cumulative_rows(self.transitions).tolist()
        cum_e = cumulative_rows(self.emissions).tolist()
        state = int(rng.choice(self.num_states, p=self.stationary()))
        draws = rng.random(2 * length).tolist()
        out = []
        append, search = out.append, bisect.bisect_right
        for i in range(length):  # sequential by nature: each state picks the next
            append(search(cum_e[state], draws[2 * i]))
            state = search(cum_t[state], draws[2 * i + 1])
        return "".join([self.alphabet[x] for x in out])

    # ------------------------------------------------------------------ scoring
    def forward_losses(self, codes: np.ndarray, belief: np.ndarray | None = None,
                       dtype=np.float64) -> np.ndarray:
        """``(N, L)``: ``-log P(x_t | x_<t)`` in nats of every character of ``codes`` ``(N, L)``
        (the forward algorithm), each row started from ``belief`` (default stationary). The
        beliefs are kept in ``dtype`` (float32 halves the time of the estimates, whose
        statistical error is far larger than float32's), the losses in float64."""
        codes = np.asarray(codes)
        if codes.ndim != 2:
            raise ValueError(f"codes must be (N, L) character indices, got shape {codes.shape}")
        b = np.broadcast_to(self.stationary() if belief is None else belief,
                            (len(codes), self.num_states)).astype(dtype)   # (N, S)
        losses = np.empty(codes.shape)
        emit_t = self.emissions.T.astype(dtype)                          # (A, S)
        transitions = self.transitions.astype(dtype)                     # (S, S)
        for t in range(codes.shape[1]):
            joint = b * emit_t[codes[:, t]]                              # (N, S)
            p = joint.sum(axis=1, dtype=np.float64)                      # (N,)
            losses[:, t] = -np.log(p)
            b = (joint / p[:, None].astype(dtype)) @ transitions         # (N, S)
        return losses

    def log_likelihood(self, text: str) -> float:
        """``log P(text)`` in nats under the source (started from the stationary belief)."""
        return -float(self.forward_losses(self.encode(text)[None, :]).sum())

    def encode(self, text: str) -> np.ndarray:
        index = {ch: i for i, ch in enumerate(self.alphabet)}
        try:
            return np.array([index[ch] for ch in text], dtype=np.int64)
        except KeyError as exc:
            raise ValueError(f"text holds {exc.args[0]!r}, which is not in the alphabet "
                             f"{self.alphabet!r}") from None

    def entropy_rate(self, chains: int = 256, length: int = 2048, burn_in: int = 512,
                     seed=12345) -> RateEstimate:
        """The entropy rate, estimated: the mean forward-algorithm loss of ``chains``
        independent strings of ``length`` characters, past the first ``burn_in`` of each; the
        95% interval from the spread of the per-string means (module docstring)."""
        chains = positive_int("chains", chains, where="entropy_rate")
        if chains < 2 or not 0 <= burn_in < length:
            raise ValueError(f"entropy_rate needs chains >= 2 and 0 <= burn_in < length, got "
                             f"chains={chains}, burn_in={burn_in}, length={length}")
        codes = self.sample_codes(chains, length, seed)
        losses = self.forward_losses(codes, dtype=np.float32)[:, burn_in:]
        return _estimate(losses.mean(axis=1), losses.size)

    def window_entropy(self, block_size: int, windows: int = 4096, seed=54321) -> RateEstimate:
        """The least mean loss on windows of ``block_size`` characters, each predicted from
        its own window only (the floor of a language model's validation loss), estimated from
        ``windows`` independent windows."""
        block_size = positive_int("block_size", block_size, where="window_entropy")
        windows = positive_int("windows", windows, where="window_entropy")
        codes = self.sample_codes(windows, block_size, seed)
        return _estimate(self.forward_losses(codes, dtype=np.float32).mean(axis=1), codes.size)

    def window_floor_nats(self, block_size: int) -> float:
        """``window_entropy(block_size).nats``: the floor of a loss measured on such windows
        (the interface the scaling study reads a synthetic source's floor through)."""
        return self.window_entropy(block_size).nats

    # ------------------------------------------------------------------ construction
    @classmethod
    def random(cls, states: int = 256, alphabet: int | str = 32, branching: int = 3,
               emit_branching: int = 3, epsilon: float = 0.01, zipf: float = 0.0,
               seed: int = 0) -> HiddenMarkovSource:
        """A random sparse source: each state favours ``branching`` successor states and
        ``emit_branching`` characters, with Dirichlet(1) weights on each, mixed with the
        uniform distribution (weight ``epsilon``) for the transitions only -- so the hidden
        chain is irreducible and aperiodic and its entropy rate does not depend on the start,
        while each state still writes only its few characters.

        ``zipf`` > 0 draws the successors with probability proportional to rank^-zipf (over a
        random ranking of the states): a few states are visited often and most rarely, as
        words are, so a model learns the common states' rules first and the rare ones only
        with more capacity and data. 0 draws them uniformly."""
        where = "HiddenMarkovSource.random"
        alphabet = _markov_alphabet(alphabet)
        S, A = positive_int("states", states, where=where), len(alphabet)
        if S < 2:
            raise ValueError(f"{where}: states must be at least 2, got {S}")
        for name, value, top in (("branching", branching, S),
                                 ("emit_branching", emit_branching, A)):
            if isinstance(value, bool) or not isinstance(value, int) or not 1 <= value <= top:
                raise ValueError(f"{where}: {name} must be an int in 1..{top}, got {value!r}")
        if not 0 < epsilon <= 1:
            raise ValueError(f"{where}: epsilon must be in (0, 1], got {epsilon!r}; it must be "
                             "positive so that the hidden chain is irreducible")
        if not (isinstance(zipf, (int, float)) and 0 <= zipf <= 4):
            raise ValueError(f"{where}: zipf must be a number in [0, 4], got {zipf!r}")
        rng = np.random.default_rng(seed)
        popularity = np.empty(S)
        popularity[rng.permutation(S)] = np.arange(1, S + 1, dtype=float) ** -float(zipf)
        transitions = (1 - epsilon) * _sparse_rows(rng, S, S, branching, popularity) + epsilon / S
        emissions = _sparse_rows(rng, S, A, emit_branching)
        return cls(alphabet=alphabet, transitions=transitions, emissions=emissions)


def _sparse_rows(rng, rows: int, cols: int, k: int, popularity=None) -> np.ndarray:
    """``(rows, cols)``: each row Dirichlet(1) weights on ``k`` distinct random columns, drawn
    with probability proportional to ``popularity`` (uniform when None)."""
    keys = rng.random((rows, cols))
    if popularity is not None:
        # Efraimidis-Spirakis: the k largest u^(1/w) are a weighted draw without replacement
        keys = np.log(keys) / popularity[None, :]
    chosen = np.argsort(-keys, axis=1)[:, :k]                            # (rows, k)
    out = np.zeros((rows, cols))
    np.put_along_axis(out, chosen, rng.dirichlet(np.ones(k), size=rows), axis=1)
    return out


def _estimate(means: np.ndarray, tokens: int) -> RateEstimate:
    """The mean of independent per-string means, with a normal 95% interval."""
    se = float(means.std(ddof=1) / math.sqrt(len(means)))
    return RateEstimate(float(means.mean()), Z95 * se, int(tokens))
