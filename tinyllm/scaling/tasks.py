"""Capabilities scored by accuracy, not loss: fact recall and in-context copying.

``RecallTask`` (the study's default): a fixed table of random facts, ``key=value``, each line
repeated many times in the training text:

    kdh=qb
    mcp=ll

Recall of a fact is all or nothing (exact match of the greedy continuation of ``kdh=``), and
storing K facts of v letters takes about K v log2(alphabet) bits of weights: a small model
cannot hold the table, a large one can. Accuracy is measured on the facts themselves (recall,
not generalisation), chance is alphabet^-v.

``CopyTask``, below, is an in-context skill instead of a stored one.

Each line of the task corpus is a random string, a bar, and the same string again:

    kdhaqb|kdhaqb
    fcmopl|fcmopl

The first half is unpredictable (its loss is log(alphabet) per character whatever the model);
the second half is fully predictable, but only by a model that looks back exactly
`length + 1` characters. Training windows start anywhere in the stream, so a line's position
inside the context varies and the model cannot memorise absolute positions: it has to learn a
relative look-back. Accuracy is the exact match of the greedy continuation of held-out prompts
(one full line of context, then a fresh string and the bar): chance is alphabet^-length, so a
model that has not learned to copy scores about zero, and one that has scores near one.

>>> task = CopyTask(length=4, alphabet=8)
>>> text = task.corpus_text(lines=3, seed=0)
>>> [line.split("|")[0] == line.split("|")[1] for line in text.splitlines()]
[True, True, True]
"""

from __future__ import annotations

from dataclasses import asdict, dataclass

import numpy as np

SYMBOLS = "abcdefghijklmnopqrstuvwxyz"


@dataclass(frozen=True)
class RecallTask:
    """`facts` random facts "key=value" (keys of `key_length`, values of `length` letters from
    the first `alphabet` letters), shuffled and repeated to fill the training text.

    >>> task = RecallTask(facts=4, length=2, alphabet=6)
    >>> prompts, answers = task.eval_set(2)
    >>> all(p.endswith("=") for p in prompts)
    True
    """

    facts: int = 128
    length: int = 2
    alphabet: int = 16
    key_length: int = 3

    def __post_init__(self):
        for name in ("facts", "length", "key_length"):
            if not isinstance(getattr(self, name), int) or getattr(self, name) < 1:
                raise ValueError(f"RecallTask: {name} must be a positive integer, "
                                 f"got {getattr(self, name)!r}")
        if not isinstance(self.alphabet, int) or not 2 <= self.alphabet <= len(SYMBOLS):
            raise ValueError(f"RecallTask: alphabet must be in 2..{len(SYMBOLS)}, "
                             f"got {self.alphabet!r}")
        if self.facts > self.alphabet ** self.key_length // 2:
            raise ValueError(f"RecallTask: {self.facts} facts need more distinct keys than "
                             f"{self.alphabet}^{self.key_length} allows; accepted: facts <= "
                             f"{self.alphabet ** self.key_length // 2}")

    @property
    def name(self) -> str:
        return f"recall{self.facts}"

    def table(self) -> list[tuple[str, str]]:
        """The facts: distinct random keys, random values (always the same table)."""
        rng = np.random.default_rng([self.facts, self.length, self.alphabet, 7])
        letters = np.array(list(SYMBOLS[:self.alphabet]))
        keys: list[str] = []
        seen: set[str] = set()
        while len(keys) < self.facts:
            k = "".join(letters[rng.integers(0, self.alphabet, self.key_length)])
            if k not in seen:
                seen.add(k)
                keys.append(k)
        values = ["".join(r) for r in letters[rng.integers(0, self.alphabet,
                                                           (self.facts, self.length))]]
        return list(zip(keys, values))

    def corpus_text(self, lines: int, seed: int = 0) -> str:
        """`lines` lines "key=value\n", facts drawn uniformly at random."""
        table = self.table()
        rng = np.random.default_rng([seed, 0])
        return "".join(f"{k}={v}\n" for k, v in (table[i] for i in
                                                 rng.integers(0, self.facts, lines)))

    def eval_set(self, n: int, seed: int = 0) -> tuple[list[str], list[str]]:
        """Up to `n` facts as (prompt, answer): one other fact line of context, then "key="."""
        table = self.table()
        rng = np.random.default_rng([seed, 1])
        pick = rng.permutation(self.facts)[:n]
        other = rng.integers(0, self.facts, len(pick))
        prompts = [f"{table[j][0]}={table[j][1]}\n{table[i][0]}=" for i, j in zip(pick, other)]
        return prompts, [table[i][1] for i in pick]

    def table_bits(self) -> float:
        """Information in the values: what the weights must store to recall every fact."""
        return self.facts * self.length * float(np.log2(self.alphabet))

    def to_dict(self) -> dict:
        return {"task": "recall", "name": self.name, **asdict(self)}


@dataclass(frozen=True)
class CopyTask:
    """Copy a random string of `length` letters drawn from the first `alphabet` letters."""

    length: int = 6
    alphabet: int = 12

    def __post_init__(self):
        if not isinstance(self.length, int) or self.length < 1:
            raise ValueError(f"CopyTask: length must be a positive integer, got {self.length!r}")
        if not isinstance(self.alphabet, int) or not 2 <= self.alphabet <= len(SYMBOLS):
            raise ValueError(f"CopyTask: alphabet must be in 2..{len(SYMBOLS)}, "
                             f"got {self.alphabet!r}")

    @property
    def name(self) -> str:
        return f"copy{self.length}x{self.alphabet}"

    @property
    def line_length(self) -> int:
        """Characters per line, newline included."""
        return 2 * self.length + 2

    def _strings(self, n: int, rng: np.random.Generator) -> list[str]:
        letters = np.array(list(SYMBOLS[:self.alphabet]))
        return ["".join(row) for row in letters[rng.integers(0, self.alphabet,
                                                             (n, self.length))]]

    def corpus_text(self, lines: int, seed: int = 0) -> str:
        """`lines` training lines: "s|s\\n" for random strings s."""
        rng = np.random.default_rng([seed, 0])
        return "".join(f"{s}|{s}\n" for s in self._strings(lines, rng))

    def eval_set(self, n: int, seed: int = 0) -> tuple[list[str], list[str]]:
        """`n` held-out (prompt, answer) pairs: a full line of context, then "s|" -> "s"."""
        rng = np.random.default_rng([seed, 1])
        context, fresh = self._strings(n, rng), self._strings(n, rng)
        prompts = [f"{c}|{c}\n{s}|" for c, s in zip(context, fresh)]
        return prompts, fresh

    def bits_floor(self) -> float:
        """The loss floor in nats per character of a model that copies perfectly: only the
        first half of each line (and nothing else) is unpredictable."""
        return self.length * float(np.log(self.alphabet)) / self.line_length

    def to_dict(self) -> dict:
        return {"task": "copy", "name": self.name, **asdict(self)}


TASKS = {"recall": RecallTask, "copy": CopyTask}


def make_task(spec: dict):
    """A task from its `to_dict()` (extra keys such as "lines" are ignored)."""
    kind = spec.get("task")
    if kind not in TASKS:
        raise ValueError(f"unknown task {kind!r}; accepted: {', '.join(TASKS)}")
    cls = TASKS[kind]
    fields = cls.__dataclass_fields__
    return cls(**{k: v for k, v in spec.items() if k in fields})


def task_accuracy(model, tokenizer, prompts: list[str], answers: list[str],
                  batch_size: int = 64) -> float:
    """Exact-match accuracy of greedy continuations of `prompts` (all the same length)."""
    if len(prompts) != len(answers) or not prompts:
        raise ValueError(f"task_accuracy needs as many answers as prompts (at least one), got "
                         f"{len(prompts)} prompts and {len(answers)} answers")
    width = len(answers[0])
    correct = 0
    for start in range(0, len(prompts), batch_size):
        chunk = prompts[start:start + batch_size]
        ids = np.array([tokenizer.encode(p) for p in chunk], dtype=np.int64)   # (B, T)
        out = model.generate(ids, max_new_tokens=width, do_sample=False)      # (B, T + w)
        for row, answer in zip(out[:, ids.shape[1]:], answers[start:start + batch_size]):
            correct += tokenizer.decode(row) == answer
    return correct / len(prompts)


copy_accuracy = task_accuracy
