"""NGramLM: a count-based n-gram language model with interpolated Kneser-Ney smoothing.

The baseline the neural models replaced: no gradients, no training steps, only counts of
which token followed which context in the training ids, smoothed so that unseen
continuations keep some probability. Orders 1..5; tokens are integer ids 0..V-1.

Shapes: V vocabulary, N training tokens, n the order (a context is the n-1 tokens before).

Interpolated Kneser-Ney (Kneser and Ney, 1995; Chen and Goodman, 1998). For a context h of
k-1 tokens, with h' = h without its oldest token:

    P_k(w | h) = max(c_k(h w) - D, 0) / c_k(h .)  +  gamma_k(h) * P_{k-1}(w | h')
    gamma_k(h) = D * N_1+(h .) / c_k(h .)          the mass the discount freed
    P_0(w)     = 1 / V

- c_n, at the highest order, is the raw count of the n-gram;
- c_k for k < n is the *continuation count* N_1+(. h w): the number of distinct tokens seen
  just before h w (the start of the sequence counting as one). A lower order is only asked
  when the longer context is rare, and then what matters is in how many contexts w appears,
  not how often: "Francisco" is frequent, but only after "San".
- c_k(h .) = sum_w c_k(h w), and N_1+(h .) is the number of distinct w seen after h.
- an unseen context (c_k(h .) = 0) passes the lower order through: P_k(w | h) = P_{k-1}(w | h').

Every distribution sums to 1 exactly (up to rounding), and every token of the vocabulary,
even one never seen, gets probability at least gamma_1 / V > 0.

`discount`: one number D in (0, 1] for every order (0.75 is the classic choice); "estimate"
for Ney's D = n1 / (n1 + 2 n2) per order from the counts of counts (n_r = how many n-grams
have count r); or "modified" for modified Kneser-Ney, three discounts per order (D1, D2, D3+
for counts 1, 2, >= 3; Chen and Goodman's estimates).

Parameter count. `num_params()` is the number of stored n-gram entries (one count each, over
all orders 1..n): the numbers the model learned from data, the analogue of a network's
weights. That is the convention that places an n-gram model on the scaling study's size axis.

>>> lm = NGramLM(order=3, vocab_size=16).fit(train_ids)
>>> lm.cross_entropy(val_ids)                 # mean nats per token
>>> lm.next_token_distribution([3, 7]).sum()  # P(. | 3 7), shape (V,)
1.0
"""

from __future__ import annotations

import math

import numpy as np

MAX_ORDER = 5
DISCOUNT_RULES = ("estimate", "modified")
# Distributions cached by `next_token_distribution` (each is V floats).
CACHE_SIZE = 4096


class NGramLM:
    """`NGramLM(order, vocab_size, discount=0.75)`: interpolated Kneser-Ney over token ids."""

    def __init__(self, order: int, vocab_size: int, discount: float | str = 0.75):
        if not isinstance(order, int | np.integer) or isinstance(order, bool) \
                or not 1 <= order <= MAX_ORDER:
            raise ValueError(f"NGramLM: order must be an integer in 1..{MAX_ORDER}, "
                             f"got {order!r}")
        if not isinstance(vocab_size, int | np.integer) or isinstance(vocab_size, bool) \
                or vocab_size <= 0:
            raise ValueError(f"NGramLM: vocab_size must be a positive integer, got {vocab_size!r}")
        if isinstance(discount, str):
            if discount not in DISCOUNT_RULES:
                raise ValueError(f"NGramLM: unknown discount {discount!r}; accepted: a number "
                                 f"in (0, 1], {', '.join(repr(r) for r in DISCOUNT_RULES)}")
        elif isinstance(discount, bool) or not isinstance(discount, int | float) \
                or not 0 < discount <= 1:
            raise ValueError(f"NGramLM: discount must be in (0, 1] (or 'estimate', "
                             f"'modified'), got {discount!r}")
        self.order, self.vocab_size, self.discount = int(order), int(vocab_size), discount
        self._fitted = False

    def __repr__(self) -> str:
        return (f"NGramLM(order={self.order}, vocab_size={self.vocab_size}, "
                f"discount={self.discount!r})")

    # ----------------------------------------------------------------- fitting
    def fit(self, ids) -> NGramLM:
        """Count the n-grams of `ids` (1-D token ids) and build every order's tables.

        Tables, for k = 1..n: `keys[k]` are the distinct k-grams, sorted, each coded as
        (id of its first k-1 tokens in table k-1) * V + (last token), with table 0 holding
        the empty context (id 0); `alpha[k]` the discounted first term of P_k per k-gram,
        and `gamma[k]` the back-off weight per (k-1)-gram context.
        """
        s = self._check_ids("fit", ids, min_len=1)
        self.keys, self.alpha, self.gamma, self.discounts = {}, {}, {}, {}
        grams = self._gram_ids_fit(s)                                   # n+1 arrays, (N,)
        n_contexts = 1                                                  # table 0: ()
        for k in range(1, self.order + 1):
            if k == self.order:
                counts = np.bincount(grams[k][k - 1:], minlength=len(self.keys[k]))
            else:
                counts = self._continuation_counts(grams, k)
            self._smooth(k, counts, n_contexts)
            n_contexts = len(self.keys[k])
        self._cache: dict[tuple[int, ...], np.ndarray] = {}
        self._fitted = True
        return self

    def _gram_ids_fit(self, s: np.ndarray) -> list[np.ndarray]:
        """grams[k][t] = id of the k-gram ending at t (valid for t >= k-1); fills self.keys."""
        v, n = self.vocab_size, len(s)
        grams = [np.zeros(n, dtype=np.int64)]
        for k in range(1, self.order + 1):
            ids = np.full(n, -1, dtype=np.int64)
            if n >= k:
                prefix = grams[k - 1][k - 2:n - 1] if k > 1 else grams[0]  # ends at t-1
                codes = prefix * v + s[k - 1:]
                self.keys[k], ids[k - 1:] = np.unique(codes, return_inverse=True)
            else:
                self.keys[k] = np.zeros(0, dtype=np.int64)
            grams.append(ids)
        return grams

    def _continuation_counts(self, grams: list[np.ndarray], k: int) -> np.ndarray:
        """N_1+(. g) for each k-gram g: distinct left neighbours, the sequence start one."""
        counts = np.zeros(len(self.keys[k]), dtype=np.int64)
        if not len(counts):                     # training ids shorter than k
            return counts
        longer = grams[k + 1][k:]                                       # (N-k,) ids
        _, first = np.unique(longer, return_index=True)
        suffix = grams[k][k:][first]            # the k-gram each distinct (k+1)-gram ends in
        counts += np.bincount(suffix, minlength=len(counts))
        counts[grams[k][k - 1]] += 1            # the k-gram at the very start
        return counts

    def _smooth(self, k: int, counts: np.ndarray, n_contexts: int) -> None:
        """alpha[k] per k-gram and gamma[k] per context from the order-k counts."""
        keys = self.keys[k]
        context = keys // self.vocab_size                               # (entries,)
        d = self._discount_per_entry(k, counts)                         # (entries,)
        den = np.bincount(context, weights=counts, minlength=n_contexts)  # c_k(h .)
        freed = np.bincount(context, weights=d, minlength=n_contexts)   # sum of discounts
        seen = den > 0
        safe = np.where(seen, den, 1.0)
        self.alpha[k] = (counts - d) / safe[context]
        # gamma = 1 for a context never followed by anything: pass the lower order through.
        self.gamma[k] = np.where(seen, freed / safe, 1.0)

    def _discount_per_entry(self, k: int, counts: np.ndarray) -> np.ndarray:
        """The discount subtracted from each k-gram's count (never more than the count)."""
        if isinstance(self.discount, str):
            n_r = np.bincount(np.minimum(counts, 4), minlength=5)       # n_0 .. n_4+
            table = _estimate_discounts(n_r, modified=self.discount == "modified")
        else:
            table = (self.discount,) * 3
        self.discounts[k] = table
        d = np.asarray(table)[np.clip(counts, 1, 3) - 1]
        return np.minimum(d, counts).astype(np.float64)

    # ----------------------------------------------------------------- probabilities
    def next_token_distribution(self, context) -> np.ndarray:
        """P(. | context) over the vocabulary, (V,) float64 summing to 1 (read-only).

        Only the last order-1 tokens of `context` matter; the longest suffix of them seen in
        training decides. Results are cached per effective context.
        """
        self._check_fitted()
        ctx = self._check_ids("context", context, min_len=0)
        ctx = ctx[len(ctx) - min(len(ctx), self.order - 1):]
        ids = self._context_ids(ctx)                    # ids[j]: the last j tokens, or -1
        depth = next((j for j in range(len(ids)) if ids[j] < 0), len(ids)) - 1
        key = tuple(ctx[len(ctx) - depth:].tolist()) if depth else ()
        p = self._cache.get(key)
        if p is not None:
            return p
        v = self.vocab_size
        p = np.full(v, 1.0 / v)                                         # P_0, (V,)
        for k in range(1, depth + 2):
            h, keys = ids[k - 1], self.keys[k]
            lo, hi = np.searchsorted(keys, [h * v, (h + 1) * v])
            p *= self.gamma[k][h]
            p[keys[lo:hi] % v] += self.alpha[k][lo:hi]
        p.flags.writeable = False
        if len(self._cache) >= CACHE_SIZE:
            self._cache.pop(next(iter(self._cache)))                    # the oldest
        self._cache[key] = p
        return p

    def log_prob(self, context, next_token: int) -> float:
        """log P(next_token | context) in nats."""
        p = self.next_token_distribution(context)
        if not isinstance(next_token, int | np.integer) or not 0 <= next_token < self.vocab_size:
            raise ValueError(f"log_prob: next_token {next_token!r} is outside the vocabulary "
                             f"(accepted: 0..{self.vocab_size - 1})")
        return math.log(p[next_token])

    def cross_entropy(self, ids) -> float:
        """Mean -log P(ids[t] | ids[t-n+1:t]) in nats over t = 1..len(ids)-1: every token
        given the ones before it, as a causal LM's targets are (the first token has no
        context and is not scored). Vectorised over positions: no distribution is built."""
        self._check_fitted()
        s = self._check_ids("cross_entropy", ids, min_len=2)
        grams = self._gram_ids_lookup(s)            # grams[k][t]: id of k-gram ending at t
        t = np.arange(1, len(s))
        p = np.full(len(t), 1.0 / self.vocab_size)
        for k in range(1, self.order + 1):
            h = grams[k - 1][t - 1] if k > 1 else np.zeros(len(t), dtype=np.int64)
            known = h >= 0                          # the k-1 tokens before t were seen
            alpha = _gather(self.alpha[k], grams[k][t], 0.0)   # 0 for an unseen k-gram
            p = np.where(known, alpha + _gather(self.gamma[k], h, 1.0) * p, p)
        return float(-np.log(p).mean())

    def _gram_ids_lookup(self, s: np.ndarray) -> list[np.ndarray]:
        """For held-out ids: grams[k][t] = table-k id of the k-gram ending at t, -1 if unseen
        (or if t < k-1). grams[0] is all zeros (the empty context)."""
        v, n = self.vocab_size, len(s)
        grams = [np.zeros(n, dtype=np.int64)]
        for k in range(1, self.order + 1):
            ids = np.full(n, -1, dtype=np.int64)
            if n >= k:
                prefix = grams[k - 1][k - 2:n - 1] if k > 1 else grams[0]
                ids[k - 1:] = np.where(prefix >= 0, _lookup(self.keys[k], prefix * v + s[k - 1:]),
                                       -1)
            grams.append(ids)
        return grams

    def _context_ids(self, ctx: np.ndarray) -> list[int]:
        """ids[j] = table-j id of the last j tokens of `ctx` (j = 0..len), -1 once unseen."""
        v, ids = self.vocab_size, [0]
        for j in range(1, len(ctx) + 1):
            h = 0
            for k in range(1, j + 1):               # chain from the oldest of the j tokens
                h = int(_lookup(self.keys[k], np.array([h * v + ctx[len(ctx) - j + k - 1]]))[0])
                if h < 0:
                    break
            ids.append(h)
            if h < 0:
                break
        return ids

    # ----------------------------------------------------------------- generation and size
    def generate(self, context_ids, max_new_tokens: int, seed: int | None = None,
                 do_sample: bool = True) -> np.ndarray:
        """`context_ids` (may be empty) followed by `max_new_tokens` tokens drawn from the
        model (the most likely one each step with do_sample=False), int64."""
        self._check_fitted()
        out = list(self._check_ids("generate", context_ids, min_len=0).tolist())
        if not isinstance(max_new_tokens, int | np.integer) or max_new_tokens < 0:
            raise ValueError(f"generate: max_new_tokens must be a non-negative integer, "
                             f"got {max_new_tokens!r}")
        rng = np.random.default_rng(seed)
        for _ in range(max_new_tokens):
            p = self.next_token_distribution(out[-(self.order - 1):] if self.order > 1 else [])
            out.append(int(rng.choice(self.vocab_size, p=p)) if do_sample else int(p.argmax()))
        return np.asarray(out, dtype=np.int64)

    def num_params(self) -> int:
        """Stored n-gram entries over all orders: one count each (see the module docstring)."""
        self._check_fitted()
        return int(sum(len(keys) for keys in self.keys.values()))

    # ----------------------------------------------------------------- checks
    def _check_fitted(self) -> None:
        if not self._fitted:
            raise RuntimeError("NGramLM: call fit(ids) before asking for probabilities")

    def _check_ids(self, name: str, ids, min_len: int) -> np.ndarray:
        arr = np.asarray(ids)
        if arr.size == 0:
            arr = arr.astype(np.int64)
        if arr.dtype.kind not in "iu":
            raise TypeError(f"{name}: token ids must be integers, got dtype {arr.dtype}")
        if arr.ndim != 1:
            raise ValueError(f"{name}: expected a 1-D sequence of token ids, got shape "
                             f"{arr.shape}")
        if len(arr) < min_len:
            raise ValueError(f"{name}: needs at least {min_len} token(s), got {len(arr)}")
        if arr.size and (arr.min() < 0 or arr.max() >= self.vocab_size):
            bad = int(arr.min()) if arr.min() < 0 else int(arr.max())
            raise ValueError(f"{name}: token id {bad} is outside the vocabulary of size "
                             f"{self.vocab_size} (accepted: 0..{self.vocab_size - 1})")
        return arr.astype(np.int64, copy=False)


def _gather(values: np.ndarray, index: np.ndarray, default: float) -> np.ndarray:
    """values[index], with `default` where index is -1."""
    if not len(values):
        return np.full(len(index), default)
    return np.where(index >= 0, values[np.maximum(index, 0)], default)


def _lookup(sorted_keys: np.ndarray, queries: np.ndarray) -> np.ndarray:
    """Index of each query in `sorted_keys`, or -1 where it is absent."""
    pos = np.searchsorted(sorted_keys, queries)
    pos_safe = np.minimum(pos, max(len(sorted_keys) - 1, 0))
    hit = (pos < len(sorted_keys)) & (sorted_keys[pos_safe] == queries) if len(sorted_keys) \
        else np.zeros(len(queries), dtype=bool)
    return np.where(hit, pos, -1)


def _estimate_discounts(n_r: np.ndarray, modified: bool) -> tuple[float, float, float]:
    """(D1, D2, D3+) from the counts of counts n_1..n_4 (Chen and Goodman, 1998):

        Y = n1 / (n1 + 2 n2),  D1 = 1 - 2Y n2/n1,  D2 = 2 - 3Y n3/n2,  D3+ = 3 - 4Y n4/n3

    Without `modified`, D = Y for every count (Ney's estimate). Where a count of counts is
    zero (tiny corpora) or an estimate falls outside (0, r], 0.75 or Y stands in.
    """
    n1, n2, n3, n4 = (float(x) for x in n_r[1:5])
    y = n1 / (n1 + 2 * n2) if n1 > 0 and n2 > 0 else 0.75
    if not modified:
        return (y, y, y)
    out = []
    for r, (lo, hi) in enumerate(((n1, n2), (n2, n3), (n3, n4)), start=1):
        d = r - (r + 1) * y * hi / lo if lo > 0 else y
        out.append(d if 0 < d <= r else y)
    return tuple(out)
