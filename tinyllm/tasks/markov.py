"""``markov-source``: which of K known Markov sources wrote a string; the best accuracy is exact.

``sources`` random chains (``MarkovSource.random``, order ``order`` over ``alphabet``
letters, ``branching`` favoured successors per context mixed with the uniform distribution by
``epsilon``) each write strings of ``length`` characters, started from their stationary
distribution. Label ``source{k}`` is the chain that wrote the string; each split holds the
sources equally often (within one), in a seeded random order.

The likelihood of a string ``s`` under chain ``k`` is exact:

    log P_k(s) = log pi_k(s[:order]) + sum_t log P_k(s[t] | s[t-order:t])

With a uniform prior, the classifier that picks ``argmax_k P_k(s)`` is the best possible
(Bayes-optimal): no model trained on the examples can beat its accuracy except by chance on a
finite split. ``MarkovSourceTask.bayes_optimal_accuracy(split)`` is that accuracy on the split's
strings; ``expected_bayes_accuracy()`` estimates its expectation from fresh strings.

The defaults (4 sources, 8 letters, order 1, 3 successors, epsilon 0.75, 32 characters) are
chosen so that the sources overlap and the bar is meaningful: at seed 0 the Bayes-optimal
accuracy is 0.866 on the test split and 0.858 in expectation (0.85 to 0.87 for seeds 0 to 3),
against 0.25 by chance. A longer ``length`` or a smaller ``epsilon`` makes the task easier.

>>> task = markov_source_task(train=8, validation=4, test=4, length=16)
>>> task.labels, len(task.train[0].text)
(['source0', 'source1', 'source2', 'source3'], 16)
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from .._checks import positive_int
from ..data.corpora import MarkovSource, cumulative_rows, draw_from_rows
from .base import SPLITS, ClassificationTask, Example


@dataclass(eq=False)
class MarkovSourceTask(ClassificationTask):
    """A ``ClassificationTask`` whose label ``source{k}`` is the chain ``sources[k]``."""

    sources: list[MarkovSource] = field(default_factory=list, repr=False)

    def log_likelihoods(self, texts: list[str]) -> np.ndarray:
        """``(N, K)``: the natural log-probability of each text under each source."""
        codes = _encode(texts, self.sources[0].alphabet)                # (N, L)
        return np.stack([log_likelihood(src, codes) for src in self.sources], axis=1)

    def bayes_predictions(self, split: str) -> np.ndarray:
        """``(N,)`` int64: the most likely source of each text of ``split`` (ties: lowest k)."""
        texts = [ex.text for ex in self.split(split)]
        return self.log_likelihoods(texts).argmax(axis=1)

    def bayes_optimal_accuracy(self, split: str) -> float:
        """The accuracy of the Bayes-optimal classifier (argmax likelihood) on ``split``."""
        return float(np.mean(self.bayes_predictions(split) == self.label_ids(split)))

    def expected_bayes_accuracy(self, n: int = 100_000, seed=12345) -> float:
        """The Bayes-optimal accuracy estimated on ``n`` fresh strings (standard error about
        ``sqrt(a (1 - a) / n)``, 0.001 at the defaults)."""
        n = positive_int("n", n, where="expected_bayes_accuracy")
        length = self.metadata["length"]
        rng = np.random.default_rng(seed)
        correct = 0
        for k, count in enumerate(_per_source(n, len(self.sources))):
            codes = sample_codes(self.sources[k], count, length, rng)    # (count, L)
            ll = np.stack([log_likelihood(src, codes) for src in self.sources], axis=1)
            correct += int((ll.argmax(axis=1) == k).sum())
        return correct / n


def markov_source_task(sources: int = 4, alphabet: int | str = 8, order: int = 1,
                       branching: int = 3, epsilon: float = 0.75, length: int = 32,
                       train: int = 4000, validation: int = 1000, test: int = 1000,
                       seed: int = 0) -> MarkovSourceTask:
    """Strings of ``length`` characters labelled by which of ``sources`` chains wrote them.

    ``train``, ``validation`` and ``test`` are the split sizes; ``seed`` draws the chains and
    the strings (a different seed gives different chains).
    """
    where = "markov-source"
    sources = positive_int("sources", sources, where=where)
    if sources < 2:
        raise ValueError(f"{where}: sources must be at least 2 (a task needs two labels), "
                         f"got {sources}")
    chains = [MarkovSource.random(order, alphabet, branching, epsilon, seed=[seed, 0, k])
              for k in range(sources)]
    length = positive_int("length", length, where=where)
    if length <= order:
        raise ValueError(f"{where}: length must exceed order={order} (a string must hold one "
                         f"transition), got {length}")
    sizes = {s: positive_int(s, n, where=where)
             for s, n in zip(SPLITS, (train, validation, test))}
    labels = [f"source{k}" for k in range(sources)]
    parts = []
    for j, split in enumerate(SPLITS):
        rng = np.random.default_rng([seed, 1, j])
        examples = []
        for k, count in enumerate(_per_source(sizes[split], sources)):
            codes = sample_codes(chains[k], count, length, rng)          # (count, L)
            examples += [Example(_decode(row, chains[k].alphabet), labels[k]) for row in codes]
        parts.append([examples[i] for i in rng.permutation(len(examples))])
    meta = {"sources": sources, "alphabet": chains[0].alphabet, "order": order,
            "branching": branching, "epsilon": epsilon, "length": length, "seed": seed}
    return MarkovSourceTask("markov-source", labels, *parts, metadata=meta, sources=chains)


def _per_source(n: int, k: int) -> list[int]:
    """``n`` split into ``k`` counts that differ by at most one (the first ones larger)."""
    return [n // k + (i < n % k) for i in range(k)]


def sample_codes(source: MarkovSource, n: int, length: int, rng) -> np.ndarray:
    """``(n, length)`` int64: ``n`` independent strings of the chain as symbol indices, each
    started from the stationary distribution (``MarkovSource.sample``, vectorised over strings)."""
    A, k, C = len(source.alphabet), source.order, source.num_contexts
    c = rng.choice(C, size=n, p=source.stationary())                     # (n,) contexts
    out = np.empty((n, length), dtype=np.int64)
    for j in range(k):  # the start context's symbols, oldest first
        out[:, j] = (c // A ** (k - 1 - j)) % A
    cums = cumulative_rows(source.probs)                                 # (C, A)
    for t in range(k, length):
        x = draw_from_rows(cums, c, rng)                                 # (n,)
        out[:, t] = x
        c = (c * A + x) % C
    return out


def log_likelihood(source: MarkovSource, codes: np.ndarray) -> np.ndarray:
    """``(N,)``: ``log P(string)`` of each row of ``codes`` ``(N, L)`` under ``source``: the
    stationary probability of its first ``order`` symbols times every transition."""
    A, k, C = len(source.alphabet), source.order, source.num_contexts
    c = np.zeros(len(codes), dtype=np.int64)
    for j in range(k):
        c = c * A + codes[:, j]
    ll = np.log(source.stationary()[c])                                  # (N,)
    logp = np.log(source.probs)                                          # (C, A)
    for t in range(k, codes.shape[1]):
        ll += logp[c, codes[:, t]]
        c = (c * A + codes[:, t]) % C
    return ll


def _encode(texts: list[str], alphabet: str) -> np.ndarray:
    """``(N, L)`` symbol indices of equally long ``texts``."""
    index = {ch: i for i, ch in enumerate(alphabet)}
    lengths = sorted({len(text) for text in texts})
    if len(lengths) > 1:
        raise ValueError(f"texts must be equally long to be scored together, got lengths "
                         f"{lengths[0]} to {lengths[-1]}")
    try:
        return np.array([[index[ch] for ch in text] for text in texts], dtype=np.int64)
    except KeyError as exc:
        raise ValueError(f"a text holds {exc.args[0]!r}, which is not in the sources' alphabet "
                         f"{alphabet!r}") from None


def _decode(codes: np.ndarray, alphabet: str) -> str:
    return "".join(alphabet[x] for x in codes.tolist())
