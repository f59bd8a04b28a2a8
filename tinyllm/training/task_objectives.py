"""What fine-tuning trains on: a task's examples as batches, the loss, and the task's scores.

Shapes: B batch, T tokens (at most the block size), K labels.

- `SequenceClassification` (a `ClassificationTask`): the family's classification head.
  BERT reads `[CLS] a [SEP] (b [SEP])` and classifies the pooled `[CLS]` state; GPT-2 reads
  `a (\\n b)` and classifies the last token that is not padding. Scores: accuracy, macro-F1.
- `GenerativeClassification` (a `ClassificationTask`, a causal LM: GPT or LSTM; classifier
  "generative"): the LM is fine-tuned on each text after its label's line and classifies by
  Bayes' rule, the label under which the text is most likely. Scores as above.
- `ExtractiveQA` (a `QATask`, a family with a question-answering head: BERT): `[CLS] question
  [SEP] context [SEP]`; the head scores every position as the answer's start and end; the
  prediction is the best span inside the context. Answers are character spans, mapped to the
  tokens that hold them, so the tokenizer must give one token per piece of text (characters,
  or words for a word-level tokenizer; not BPE). Scores: SQuAD exact match and F1.
- `GenerativeQA` (a `QATask`, a causal LM: GPT): the prompt `context \\nQ: question\\nA: `
  (prompt form "question"), or `context \\nstatement ` (form "statement": the sentence that
  answers the question, cut before the answer, where the task knows it), then the answer and a
  newline; the loss counts the answer's tokens only; the prediction is the greedy
  continuation up to the newline. Scores: SQuAD exact match and F1.

Each has `head` (the registry's head kind, or None for the family's own language model),
`encode(split, indices)`, `loss(model, batch)`, `scores(model, split, batch_size, n)`,
`summary(record)`, `report(model, split)` and `predict(model, **text)`.
"""

from __future__ import annotations

import numpy as np

from ..autograd import Tensor, no_grad
from ..data.datasets import _ResumableBatcher, make_pair_batch
from ..tasks import ClassificationTask, Example, QAExample, QATask
from ..tasks.metrics import (
    accuracy,
    confusion_matrix,
    macro_f1,
    squad_exact_match,
    squad_f1,
)
from ..tokenizers import Tokenizer
from .config import CLASSIFIERS

_BERT_INPUTS = ("input_ids", "token_type_ids", "attention_mask")
MAX_ANSWER_TOKENS = 30


class ExampleBatcher(_ResumableBatcher):
    """Batches of example indices, each epoch a fresh seeded permutation; resumable."""

    _shape_keys = ("batch_size", "n_examples")

    def __init__(self, n_examples: int, batch_size: int, encode, seed: int = 0):
        self.n_examples, self.batch_size, self.encode = n_examples, batch_size, encode
        self.seed, self.step = seed, 0
        self.rng = np.random.default_rng(seed)
        self.order, self.position = self.rng.permutation(n_examples), 0

    def __next__(self) -> dict:
        take = []
        while len(take) < self.batch_size:
            if self.position == self.n_examples:       # a new epoch, a new order
                self.order, self.position = self.rng.permutation(self.n_examples), 0
            n = min(self.batch_size - len(take), self.n_examples - self.position)
            take.extend(self.order[self.position:self.position + n].tolist())
            self.position += n
        self.step += 1
        return self.encode(take)

    def state_dict(self) -> dict:
        return {**super().state_dict(), "order": self.order.tolist(),
                "position": self.position}

    def load_state_dict(self, state: dict) -> None:
        super().load_state_dict(state)
        self.order = np.asarray(state["order"], dtype=np.int64)
        self.position = int(state["position"])


def objective_for_task(task, family, tokenizer: Tokenizer, block_size: int,
                       classifier: str = "head", prompt: str = "question"):
    """The objective that fine-tunes `family` on `task` (a classification task with
    `classifier`; a question-answering one written by a causal LM with the prompt form
    `prompt`), or an error saying what would."""
    if classifier != "head" and not isinstance(task, ClassificationTask):
        raise ValueError(f"classifier {classifier!r} reads a classification task; "
                         f"{task.name!r} is {type(task).__name__} (drop the classifier)")
    if isinstance(task, ClassificationTask) and classifier == "generative":
        if not family.can_generate:
            raise ValueError(f"classifier 'generative' needs a causal language model (gpt, "
                             f"lstm); a {family.name} has none: use classifier 'head'")
        cls = GenerativeClassification
    elif isinstance(task, ClassificationTask):
        cls = SequenceClassification
    elif isinstance(task, QATask) and "question-answering" in family.heads:
        cls = ExtractiveQA
    elif isinstance(task, QATask) and family.can_generate:
        cls = GenerativeQA
    else:
        raise ValueError(f"task {task.name!r} ({type(task).__name__}) cannot be fine-tuned on "
                         f"a {family.name}: question answering needs a question-answering head "
                         "(bert) or a causal language model (gpt)")
    if cls is GenerativeQA:
        return GenerativeQA(task, tokenizer, family, block_size, prompt)
    if prompt != "question":
        raise ValueError(f"prompt form {prompt!r} is how a causal LM is asked a question; a "
                         f"{family.name} on {task.name!r} ({cls.__name__}) has no prompt: "
                         f"drop it")
    return cls(task, tokenizer, family, block_size)


class _TaskObjective:
    head: str | None = None

    def __init__(self, task, tokenizer: Tokenizer, family, block_size: int):
        self.task, self.tokenizer, self.block_size = task, tokenizer, block_size
        self.family = family

    def config_fields(self) -> dict:
        """Config fields the head needs (e.g. num_labels)."""
        return {}

    def examples(self):
        """Every example of the task: train, validation, then test."""
        return [ex for split in ("train", "validation", "test") for ex in self.task.split(split)]

    def _batches(self, split: str, batch_size: int, n: int | None):
        n = len(self.task.split(split)) if n is None else min(n, len(self.task.split(split)))
        for i in range(0, n, batch_size):
            yield range(i, min(i + batch_size, n))

    def _pad(self, rows: list[list[int]], value: int) -> np.ndarray:
        out = np.full((len(rows), max(len(r) for r in rows)), value, dtype=np.int64)
        for i, row in enumerate(rows):
            out[i, :len(row)] = row
        return out                                                               # (B, T)


# ---------------------------------------------------------------------- classification
class SequenceClassification(_TaskObjective):
    """A classification head on labelled texts (or pairs)."""

    head = "sequence-classification"

    def config_fields(self) -> dict:
        return {"num_labels": self.task.num_labels}

    def texts(self) -> list[str]:
        """Every string this objective encodes (the source-vocabulary check reads them)."""
        if self.family.objective == "masked-lm":            # text and text_b, each alone
            return [t for ex in self.examples() for t in (ex.text, ex.text_b) if t is not None]
        return [_joined(ex) for ex in self.examples()]

    def encode(self, split: str, indices) -> dict:
        """The model inputs and labels of examples `indices` of `split`."""
        examples = self.task.split(split)
        labels = self.task.label_ids(split)[np.asarray(list(indices), dtype=np.int64)]  # (B,)
        return {**self.inputs([examples[i] for i in indices]), "labels": labels}

    def inputs(self, examples) -> dict:
        """The model inputs of examples (anything with `.text` and `.text_b`)."""
        if self.family.objective == "masked-lm":       # BERT's [CLS] a [SEP] b [SEP]
            return make_pair_batch([(ex.text, ex.text_b) for ex in examples], self.tokenizer,
                                   self.block_size)
        rows = [self.tokenizer.encode(_joined(ex))[:self.block_size] for ex in examples]
        return {"input_ids": self._pad(rows, self.tokenizer.pad_token_id)}

    def loss(self, model, batch: dict) -> Tensor:
        return model(**_inputs(batch), labels=batch["labels"]).loss

    @no_grad()
    def logits(self, model, split: str, batch_size: int, n: int | None = None) -> np.ndarray:
        """The head's logits (N, K) for the first `n` examples of a split (None: all)."""
        return np.concatenate([model(**_inputs(self.encode(split, idx))).logits.data
                               for idx in self._batches(split, batch_size, n)])

    def scores(self, model, split: str, batch_size: int, n: int | None = None) -> dict:
        logits = self.logits(model, split, batch_size, n)                       # (N, K)
        gold = self.task.label_ids(split)[:len(logits)]                         # (N,)
        pred = logits.argmax(-1)
        return {"loss": _mean_nll(logits, gold), "accuracy": accuracy(gold, pred),
                "macro_f1": macro_f1(gold, pred, labels=range(self.task.num_labels))}

    @staticmethod
    def summary(record: dict) -> str:
        return f"acc {record['val_accuracy']:.3f} | macro-F1 {record['val_macro_f1']:.3f}"

    def report(self, model, split: str) -> str:
        """Accuracy, macro-F1 and the confusion matrix (rows: gold, columns: predicted)."""
        labels = self.task.labels
        gold = self.task.label_ids(split)
        pred = self.logits(model, split, 64).argmax(-1)
        matrix = confusion_matrix(gold, pred, labels=range(len(labels)))
        width = max(len(lab) for lab in labels)
        rows = [f"{self.task.name} ({split} split, {len(gold)} examples): accuracy "
                f"{accuracy(gold, pred):.3f} | macro-F1 "
                f"{macro_f1(gold, pred, labels=range(len(labels))):.3f}",
                "confusion matrix (rows: gold, columns: predicted):",
                " " * (width + 2) + " ".join(f"{i:>5d}" for i in range(len(labels)))]
        rows += [f"{lab:>{width}} {i:>1d}" + "".join(f"{n:>6d}" for n in matrix[i])
                 for i, lab in enumerate(labels)]
        return "\n".join(rows)

    @no_grad()
    def predict(self, model, text: str, text_b: str | None = None, **_) -> str:
        """The label of one text (or pair) and its probability, tab-separated."""
        logits = self._one_logits(model, Example(text, self.task.labels[0], text_b))   # (K,)
        probs = np.exp(logits - np.logaddexp.reduce(logits))
        return f"{self.task.labels[int(probs.argmax())]}\t{probs.max():.3f}"

    def _one_logits(self, model, example: Example) -> np.ndarray:
        """(K,) the logits of one example."""
        return model(**_inputs(self.inputs([example]))).logits.data[0]


class GenerativeClassification(SequenceClassification):
    """A causal LM that classifies by Bayes' rule: fine-tuned on ``label\\ntext\\n`` (the
    label's name on a line, then the text; the loss counts the text's tokens alone), it
    scores each label k by how likely it makes the text,

        log P(k | text) = log P(k) + log P_LM(text | "k\\n") - log Z,

    with P(k) the training split's label frequencies. No head: the model is the family's own
    language model. A generative classifier (Ng & Jordan 2002; Yogatama et al. 2017) learns
    from every token of a labelled text, not from one label per text, and reaches its best
    accuracy with fewer examples; it costs K forward passes per text to classify."""

    head = None

    def config_fields(self) -> dict:
        return {}

    def _prefix(self, k: int) -> list[int]:
        """The ids of label k's line."""
        return self.tokenizer.encode(f"{self.task.labels[k]}\n")

    def _body(self, ex) -> list[int]:
        """The ids of an example's text and a newline."""
        return self.tokenizer.encode(f"{_joined(ex)}\n")

    def _lm_batch(self, prefixes, bodies) -> dict:
        """Inputs and targets of each body written after its prefix (cut to the block + 1
        tokens at its end); the targets are the body's tokens alone."""
        x, y = [], []
        for prefix, body in zip(prefixes, bodies):
            n = len(prefix)
            ids = prefix + body[:max(self.block_size + 1 - n, 1)]
            x.append(ids[:-1])
            y.append([-100] * (n - 1) + ids[n:])
        return {"input_ids": self._pad(x, self.tokenizer.pad_token_id),
                "labels": self._pad(y, -100)}

    def texts(self) -> list[str]:
        return ([f"{label}\n" for label in self.task.labels]
                + [f"{_joined(ex)}\n" for ex in self.examples()])

    def encode(self, split: str, indices) -> dict:
        """Examples `indices` of `split`, each written by its own (gold) label."""
        indices = list(indices)
        examples = self.task.split(split)
        gold = self.task.label_ids(split)[np.asarray(indices, dtype=np.int64)]   # (B,)
        return self._lm_batch([self._prefix(int(k)) for k in gold],
                              [self._body(examples[i]) for i in indices])

    def loss(self, model, batch: dict) -> Tensor:
        return model(batch["input_ids"], batch["labels"]).loss

    def log_prior(self) -> np.ndarray:
        """(K,) log label frequencies of the training split (each label counted once more,
        so that no label has probability 0)."""
        counts = np.bincount(self.task.label_ids("train"), minlength=self.task.num_labels) + 1
        return np.log(counts / counts.sum())

    @no_grad()
    def log_likelihoods(self, model, examples) -> np.ndarray:
        """(N, K): log P_LM(text | label k's line) of each example under each label."""
        out = np.empty((len(examples), self.task.num_labels))
        bodies = [self._body(ex) for ex in examples]                     # encoded once
        for k in range(self.task.num_labels):
            batch = self._lm_batch([self._prefix(k)] * len(bodies), bodies)
            logits = model(batch["input_ids"]).logits.data                 # (B, T, V)
            logp = logits - np.logaddexp.reduce(logits, axis=-1, keepdims=True)
            target = batch["labels"]                                      # (B, T)
            picked = np.take_along_axis(logp, np.maximum(target, 0)[..., None], -1)[..., 0]
            out[:, k] = np.where(target >= 0, picked, 0.0).sum(axis=1)
        return out

    def logits(self, model, split: str, batch_size: int, n: int | None = None) -> np.ndarray:
        """log P(k) + log P(text | k) (N, K): the posterior's logits."""
        examples = self.task.split(split)
        ll = [self.log_likelihoods(model, [examples[i] for i in idx])
              for idx in self._batches(split, batch_size, n)]
        return np.concatenate(ll) + self.log_prior()

    def _one_logits(self, model, example: Example) -> np.ndarray:
        return self.log_likelihoods(model, [example])[0] + self.log_prior()


# ---------------------------------------------------------------------- question answering
class _QA(_TaskObjective):
    prompt_form = "question"          # how a causal LM is asked (`GenerativeQA`)

    def texts(self) -> list[str]:
        """Every string this objective encodes (the source-vocabulary check reads them)."""
        return [t for ex in self.examples() for t in (ex.question, ex.context)]

    def scores(self, model, split: str, batch_size: int, n: int | None = None) -> dict:
        examples = self.task.split(split)
        losses, em, f1 = [], [], []
        for idx in self._batches(split, batch_size, n):
            batch = self.encode(split, idx)
            with no_grad():
                losses.append(self.loss(model, batch).item())
            for i, answer in zip(idx, self.answers(model, [examples[i] for i in idx])):
                em.append(squad_exact_match(answer, examples[i].answers))
                f1.append(squad_f1(answer, examples[i].answers))
        return {"loss": float(np.mean(losses)), "exact_match": float(np.mean(em)),
                "f1": float(np.mean(f1))}

    @staticmethod
    def summary(record: dict) -> str:
        return f"EM {record['val_exact_match']:.3f} | F1 {record['val_f1']:.3f}"

    def report(self, model, split: str) -> str:
        s = self.scores(model, split, 32)
        return (f"{self.task.name} ({split} split, {len(self.task.split(split))} questions): "
                f"exact match {s['exact_match']:.3f} | F1 {s['f1']:.3f}")

    def predict(self, model, question: str = "", context: str = "", **_) -> str:
        """The answer to `question` about `context` (a run fine-tuned with the prompt form
        "statement" completes `question` as the statement: "Mary is in the")."""
        if not question or not context:
            raise ValueError("a question-answering run needs --question and --context")
        statement = question if self.prompt_form == "statement" else None
        example = QAExample("input", context, question, (context[:1],), (0,), statement)
        return self.answers(model, [example])[0]


class ExtractiveQA(_QA):
    """BERT's question-answering head: the answer is the best-scoring span of the context."""

    head = "question-answering"

    def config_fields(self) -> dict:
        return {"num_labels": 2}

    def _rows(self, examples):
        """(ids of [CLS] q [SEP] c [SEP], where the context starts, the start offset of each
        kept context token) per example; the context is cut at its end to fit the block."""
        out = []
        for ex in examples:
            q = self.tokenizer.encode(ex.question)
            c, starts = token_offsets(self.tokenizer, ex.context)
            q = q[:max(self.block_size // 2, 1)]
            keep = max(self.block_size - len(q) - 3, 0)
            out.append((q, c[:keep], len(q) + 2, starts[:keep + 1]))
        return out

    def encode(self, split: str, indices) -> dict:
        examples = [self.task.split(split)[i] for i in indices]
        batch = self._inputs(examples)
        starts, ends = [], []
        for ex, (_, c, offset, at) in zip(examples, batch.pop("_rows")):
            first = int(np.searchsorted(at, ex.answer_start, side="right")) - 1
            last = int(np.searchsorted(at, ex.answer_start + len(ex.answer) - 1,
                                       side="right")) - 1
            inside = last < len(c)             # else the answer was cut off: point at [CLS]
            starts.append(offset + first if inside else 0)
            ends.append(offset + last if inside else 0)
        return {**batch, "start_positions": np.array(starts), "end_positions": np.array(ends)}

    def _inputs(self, examples) -> dict:
        rows = self._rows(examples)     # each fits the block: pad to the batch's longest
        batch = make_pair_batch([(q, c) for q, c, _, _ in rows], self.tokenizer)
        return {**batch, "_rows": rows}

    def loss(self, model, batch: dict) -> Tensor:
        return model(**_inputs(batch), start_positions=batch["start_positions"],
                     end_positions=batch["end_positions"]).loss

    @no_grad()
    def answers(self, model, examples) -> list[str]:
        batch = self._inputs(examples)
        out = model(**_inputs(batch))
        start, end = out.start_logits.data, out.end_logits.data                 # (B, T)
        found = []
        for b, (ex, (_, c, offset, at)) in enumerate(zip(examples, batch["_rows"])):
            s, e = _best_span(start[b, offset:offset + len(c)], end[b, offset:offset + len(c)])
            found.append(ex.context[at[s]:at[e + 1]].strip() if e >= s else "")
        return found


def token_offsets(tokenizer: Tokenizer, text: str) -> tuple[list[int], np.ndarray]:
    """``text``'s ids and where each token starts in it, with ``len(text)`` appended (token
    ``i`` is ``text[at[i]:at[i + 1]]``): a tokenizer with one token per piece only.

    >>> from tinyllm.tokenizers import WordTokenizer
    >>> token_offsets(WordTokenizer().train("Mary went to the garden."), "Mary went.")[1]
    array([ 0,  4,  9, 10])
    """
    ids, pieces = tokenizer.encode(text), tokenizer.split_pieces(text)
    if len(ids) != len(pieces):
        raise ValueError(
            "extractive question answering needs a tokenizer with one token per piece of text "
            f"(characters or words; answers are spans of the context); this run's "
            f"{tokenizer.type_name} tokenizer makes {len(ids)} tokens of {len(pieces)} "
            f"{tokenizer.piece_kind}")
    return ids, np.cumsum([0] + [len(p) for p in pieces])


class GenerativeQA(_QA):
    """A causal LM continues `context\nQ: question\nA:` (or, prompt form "statement",
    `context\nMary is in the`) with ` answer` and a newline.

    The space before the answer belongs to it, as in running text: a word-level or BPE
    tokenizer reads " kitchen" in "went to the kitchen" and in "A: kitchen" as one token, the
    same one, where "kitchen" alone would be another (or unknown).
    """

    head = None

    def __init__(self, task, tokenizer: Tokenizer, family, block_size: int,
                 prompt: str = "question"):
        task.check_prompt_form(prompt)
        super().__init__(task, tokenizer, family, block_size)
        self.prompt_form = prompt

    @staticmethod
    def prompt_and_target(ex: QAExample, form: str = "question") -> tuple[str, str]:
        """(the prompt of form `form` less its trailing spaces, what the model writes: those
        spaces, the answer and a newline)."""
        prompt = ex.prompt(form)
        cut = prompt.rstrip(" ")
        return cut, prompt[len(cut):] + ex.answer + "\n"

    def texts(self) -> list[str]:
        return [t for ex in self.examples()
                for t in self.prompt_and_target(ex, self.prompt_form)]

    def _ids(self, ex: QAExample) -> tuple[list[int], int]:
        """Prompt + answer + newline ids, cut from the left to block + 1 tokens, and how
        many of them are the prompt's."""
        prompt, answer = self.prompt_and_target(ex, self.prompt_form)
        target = self.tokenizer.encode(answer)
        ids = (self.tokenizer.encode(prompt) + target)[-(self.block_size + 1):]
        return ids, max(len(ids) - len(target), 1)

    def encode(self, split: str, indices) -> dict:
        rows = [self._ids(self.task.split(split)[i]) for i in indices]
        x = [ids[:-1] for ids, _ in rows]
        y = [[-100] * (n - 1) + ids[n:] for ids, n in rows]      # the answer's tokens only
        return {"input_ids": self._pad(x, self.tokenizer.pad_token_id),
                "labels": self._pad(y, -100)}

    def loss(self, model, batch: dict) -> Tensor:
        return model(batch["input_ids"], batch["labels"]).loss

    @no_grad()
    def answers(self, model, examples) -> list[str]:
        """Greedy continuations of the prompts up to a newline (at most MAX_ANSWER_TOKENS
        tokens), the batch at once: each step reads every unfinished row, padded on the
        right, at its own last token -- a causal model's logits there do not depend on the
        padding after it -- so the answers are `model.generate`'s, one forward per step."""
        rows = [self.tokenizer.encode(self.prompt_and_target(ex, self.prompt_form)[0])
                for ex in examples]
        new: list[list[int]] = [[] for _ in rows]
        live = list(range(len(rows)))
        for _ in range(MAX_ANSWER_TOKENS):
            if not live:
                break
            seqs = [(rows[i] + new[i])[-self.block_size:] for i in live]
            logits = model(self._pad(seqs, self.tokenizer.pad_token_id or 0)).logits.data
            last = logits[np.arange(len(seqs)), [len(s) - 1 for s in seqs]]     # (b, V)
            for i, token in zip(live, last.argmax(-1)):
                new[i].append(int(token))
            live = [i for i in live if "\n" not in self.tokenizer.decode(new[i][-1:])]
        return [self.tokenizer.decode(ids).split("\n", 1)[0].strip() for ids in new]


def _best_span(start: np.ndarray, end: np.ndarray) -> tuple[int, int]:
    """(s, e) maximising start[s] + end[e] with s <= e < s + MAX_ANSWER_TOKENS."""
    if len(start) == 0:
        return 0, -1
    score = start[:, None] + end[None, :]                                     # (C, C)
    n = len(start)
    i, j = np.indices((n, n))
    score = np.where((j >= i) & (j < i + MAX_ANSWER_TOKENS), score, -np.inf)
    s, e = np.unravel_index(int(np.argmax(score)), score.shape)
    return int(s), int(e)


def _joined(ex: Example) -> str:
    """A causal LM's input of an example: the text, or the pair on two lines."""
    return ex.text if ex.text_b is None else f"{ex.text}\n{ex.text_b}"


def _mean_nll(logits: np.ndarray, gold: np.ndarray) -> float:
    """Mean cross-entropy of logits (N, K) against class ids (N,)."""
    logp = logits - np.logaddexp.reduce(logits, axis=-1, keepdims=True)        # (N, K)
    return float(-logp[np.arange(len(gold)), gold].mean())


def _inputs(batch: dict) -> dict:
    return {k: batch[k] for k in (*_BERT_INPUTS, "input_ids") if k in batch}


__all__ = ["CLASSIFIERS", "ExampleBatcher", "ExtractiveQA", "GenerativeClassification",
           "GenerativeQA", "SequenceClassification", "objective_for_task", "token_offsets"]
