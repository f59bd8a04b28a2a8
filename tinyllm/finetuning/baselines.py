"""Baselines of the fine-tuning study: the majority class, and TF-IDF logistic regression.

Shapes: N examples, F features, K labels.

**Majority class** (``MajorityClass``): predicts the label most frequent among the training
examples (ties: the first in the task's label order). Its accuracy is that label's share of
the evaluated split.

**Features** (``TfidfFeatures``): character n-grams of each text, ``n`` in ``ngram_range``
(1 to 4 by default), taken from the text with its runs of whitespace collapsed to one space
(case kept: ``None`` and ``none`` differ in Python's documentation). The vocabulary is the
``max_features`` n-grams found in the most training texts (document frequency; ties in
sorted order, so the result never depends on dictionary order). For text ``d`` and n-gram
``g``, as scikit-learn's ``TfidfVectorizer(analyzer="char", smooth_idf=True)``::

    tf(g, d)  = occurrences of g in d
    idf(g)    = ln((1 + N) / (1 + df(g))) + 1          df: training texts holding g
    x(d)      = tf(., d) * idf / || tf(., d) * idf ||_2   (a row of zeros stays zero)

On ``markov-source`` the bigram counts are exactly what the Bayes-optimal classifier reads
(``log P_k(s)`` is linear in them), so this baseline can approach the optimum given labels.

**Multinomial logistic regression** (``LogisticRegression``): ``logits = X W^T + b`` (N, K),
``loss = mean_i -log softmax(logits_i)[y_i]``, trained full batch from zero weights with
``tinyllm.optim.AdamW`` for ``steps`` steps on tinyllm Tensors (the gradient comes from
tinyllm's autograd). Its closed form, which ``analytic_gradient`` computes and the tests
compare with autograd and with finite differences::

    dlogits = (softmax(logits) - onehot(y)) / N         (N, K)
    dW = dlogits^T X                                    (K, F)
    db = sum_i dlogits_i                                (K,)

Every step is deterministic: no random numbers are drawn anywhere.

>>> from tinyllm.tasks import ClassificationTask, Example
>>> train = [Example("aaaa", "a"), Example("abab", "a"), Example("zzzz", "z"), Example("zyzy", "z")]
>>> task = ClassificationTask("toy", ["a", "z"], train, [], [Example("aabb", "a")])
>>> fit_logreg(task, steps=50).scores(task, "test")["accuracy"]
1.0
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field

import numpy as np

from .._checks import positive_int, positive_number
from ..autograd import Tensor, no_grad
from ..functional import cross_entropy
from ..optim import AdamW
from ..tasks import ClassificationTask
from ..tasks.metrics import accuracy, macro_f1

#: The baseline methods of the study, by name.
BASELINES = ("majority", "logreg")


# ---------------------------------------------------------------------- majority class
@dataclass
class MajorityClass:
    """Predicts the most frequent training label (ties: the first in label order)."""

    label: int = 0

    def fit(self, label_ids: np.ndarray, num_labels: int) -> MajorityClass:
        counts = np.bincount(np.asarray(label_ids, dtype=np.int64), minlength=num_labels)
        self.label = int(counts.argmax())           # argmax takes the first of a tie
        return self

    def predict(self, n: int) -> np.ndarray:
        """``(n,)``: the majority label, n times."""
        return np.full(n, self.label, dtype=np.int64)

    def scores(self, task: ClassificationTask, split: str) -> dict:
        """{"accuracy", "macro_f1"} on ``split`` (no loss: it gives no probabilities)."""
        gold = task.label_ids(split)
        return _scores(gold, self.predict(len(gold)), task.num_labels)


# ---------------------------------------------------------------------- features
def char_ngrams(text: str, ngram_range: tuple[int, int]) -> Counter:
    """Occurrences of every character n-gram of ``text`` (whitespace runs as one space).

    >>> sorted(char_ngrams("ab  c", (1, 2)).items())
    [(' ', 1), (' c', 1), ('a', 1), ('ab', 1), ('b', 1), ('b ', 1), ('c', 1)]
    """
    text = " ".join(text.split())
    lo, hi = ngram_range
    return Counter(text[i:i + n] for n in range(lo, hi + 1) for i in range(len(text) - n + 1))


@dataclass
class TfidfFeatures:
    """Character n-gram TF-IDF vectors, l2-normalised (see the module docstring)."""

    ngram_range: tuple[int, int] = (1, 4)
    max_features: int = 8192
    vocabulary: dict[str, int] = field(default_factory=dict, repr=False)
    idf: np.ndarray | None = field(default=None, repr=False)        # (F,)

    def __post_init__(self):
        lo, hi = self.ngram_range
        positive_int("ngram_range[0]", lo, where="TfidfFeatures")
        if hi < lo:
            raise ValueError(f"TfidfFeatures: ngram_range must be (low, high) with low <= "
                             f"high, got {self.ngram_range}")
        positive_int("max_features", self.max_features, where="TfidfFeatures")

    def fit(self, texts: list[str]) -> TfidfFeatures:
        """Choose the vocabulary and the idf weights from the training texts."""
        df: Counter = Counter()
        for text in texts:
            df.update(char_ngrams(text, self.ngram_range).keys())
        kept = sorted(df, key=lambda g: (-df[g], g))[: self.max_features]
        self.vocabulary = {g: j for j, g in enumerate(kept)}
        counts = np.array([df[g] for g in kept], dtype=np.float64)
        self.idf = np.log((1 + len(texts)) / (1 + counts)) + 1.0
        return self

    def transform(self, texts: list[str], dtype=np.float32) -> np.ndarray:
        """``(N, F)``: one l2-normalised TF-IDF row per text."""
        if self.idf is None:
            raise ValueError("TfidfFeatures.transform before fit: call fit(train_texts) first")
        x = np.zeros((len(texts), len(self.vocabulary)), dtype=np.float64)
        for i, text in enumerate(texts):
            for g, c in char_ngrams(text, self.ngram_range).items():
                j = self.vocabulary.get(g)
                if j is not None:
                    x[i, j] = c
        x *= self.idf
        norm = np.linalg.norm(x, axis=1, keepdims=True)                  # (N, 1)
        return (x / np.where(norm > 0, norm, 1.0)).astype(dtype)


# ---------------------------------------------------------------------- logistic regression
class LogisticRegression:
    """Multinomial logistic regression on tinyllm Tensors: ``logits = X W^T + b``."""

    def __init__(self, num_features: int, num_labels: int, dtype=np.float32):
        positive_int("num_features", num_features, where="LogisticRegression")
        positive_int("num_labels", num_labels, where="LogisticRegression")
        self.weight = Tensor(np.zeros((num_labels, num_features), dtype), requires_grad=True)
        self.bias = Tensor(np.zeros(num_labels, dtype), requires_grad=True)

    def parameters(self) -> list[Tensor]:
        return [self.weight, self.bias]

    def forward(self, x) -> Tensor:
        """``(N, K)`` logits of the feature rows ``x`` ``(N, F)``."""
        x = x if isinstance(x, Tensor) else Tensor(x)
        return x @ self.weight.T + self.bias                             # (N, K)

    def loss(self, x, y: np.ndarray) -> Tensor:
        """Mean cross-entropy of the rows ``x`` against the class ids ``y`` ``(N,)``."""
        return cross_entropy(self.forward(x), np.asarray(y, dtype=np.int64))

    def fit(self, x: np.ndarray, y: np.ndarray, steps: int = 300, lr: float = 0.05,
            weight_decay: float = 1e-3) -> LogisticRegression:
        """``steps`` full-batch AdamW steps from the current weights (zeros when new)."""
        positive_int("steps", steps, where="LogisticRegression.fit")
        positive_number("lr", lr, where="LogisticRegression.fit")
        x = Tensor(x)
        opt = AdamW(self.parameters(), lr=lr, weight_decay=weight_decay)
        for _ in range(steps):
            loss = self.loss(x, y)
            opt.zero_grad()
            loss.backward()
            opt.step()
        return self

    @no_grad()
    def predict_logits(self, x: np.ndarray) -> np.ndarray:
        return self.forward(x).data                                      # (N, K)

    def analytic_gradient(self, x: np.ndarray, y: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """``(dW, db)``: the closed-form gradient of ``loss(x, y)`` (module docstring)."""
        logits = x @ self.weight.data.T + self.bias.data                  # (N, K)
        p = np.exp(logits - logits.max(axis=1, keepdims=True))
        p /= p.sum(axis=1, keepdims=True)                                 # softmax (N, K)
        p[np.arange(len(y)), y] -= 1.0
        dlogits = p / len(y)                                              # (N, K)
        return dlogits.T @ x, dlogits.sum(axis=0)                         # (K, F), (K,)


@dataclass
class TfidfLogReg:
    """The fitted TF-IDF features and logistic regression of one task's training split."""

    features: TfidfFeatures
    model: LogisticRegression

    max_chars: int | None = None

    def scores(self, task: ClassificationTask, split: str) -> dict:
        """{"accuracy", "macro_f1", "loss"} on ``split``."""
        x = self.features.transform(_texts(task, split, self.max_chars))
        logits, gold = self.model.predict_logits(x), task.label_ids(split)   # (N, K), (N,)
        logp = logits - np.logaddexp.reduce(logits, axis=1, keepdims=True)
        return {**_scores(gold, logits.argmax(axis=1), task.num_labels),
                "loss": float(-logp[np.arange(len(gold)), gold].mean())}


def _texts(task: ClassificationTask, split: str, max_chars: int | None = None) -> list[str]:
    """The texts of a split, each cut to its first ``max_chars`` characters (None: whole); a
    pair is read as ``text`` + newline + ``text_b``, as the GPT classifier reads it."""
    texts = [ex.text if ex.text_b is None else f"{ex.text}\n{ex.text_b}"
             for ex in task.split(split)]
    return texts if max_chars is None else [t[:max_chars] for t in texts]


def fit_logreg(task: ClassificationTask, *, ngram_range=(1, 4), max_features: int = 8192,
               steps: int = 300, lr: float = 0.05, weight_decay: float = 1e-3,
               max_chars: int | None = None) -> TfidfLogReg:
    """TF-IDF features and a logistic regression fitted on ``task``'s training split.

    ``max_chars``: read only the first characters of each text (the study gives it the
    context of its GPTs, so both see the same input); None reads whole texts.
    """
    if max_chars is not None:
        positive_int("max_chars", max_chars, where="fit_logreg")
    texts = _texts(task, "train", max_chars)
    features = TfidfFeatures(tuple(ngram_range), max_features).fit(texts)
    x = features.transform(texts)
    model = LogisticRegression(x.shape[1], task.num_labels).fit(
        x, task.label_ids("train"), steps=steps, lr=lr, weight_decay=weight_decay)
    return TfidfLogReg(features, model, max_chars)


def fit_majority(task: ClassificationTask) -> MajorityClass:
    """The majority class of ``task``'s training split."""
    return MajorityClass().fit(task.label_ids("train"), task.num_labels)


def _scores(gold: np.ndarray, pred: np.ndarray, num_labels: int) -> dict:
    return {"accuracy": accuracy(gold, pred),
            "macro_f1": macro_f1(gold, pred, labels=range(num_labels))}
