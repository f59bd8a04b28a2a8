"""Translation runs: an encoder-decoder trained on (source, target) pairs, scored by exact match
and BLEU, and used to translate.

    task (tinyllm.tasks.load_translation_task)  ->  Pair(source, target) in three splits
    WordTokenizer, trained on the training pairs  ->  ids; each side ends with eos
    batch: input_ids (B, S), attention_mask (B, S), labels (B, T) (-100 = padding)
    model(**batch).loss                           ->  teacher forcing: the decoder reads the
                                                      labels shifted right (start token first)

`tinyllm train --model seq2seq --data scan:simple` builds a `TranslationTrainer` (the
`Trainer`'s loop, checkpoints, resume and Ctrl-C; only the data, the evaluation and the sample
differ). Its evaluations add exact match and BLEU of greedy translations of the first
`eval_iters * batch_size` validation pairs. `translate(run_dir, texts)` and
`evaluate_translation(run_dir, split)` use a finished run.
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from ..autograd import no_grad
from ..models import get_family
from ..models.decoding import generate_seq2seq
from ..tasks.translation import Pair, load_translation_task
from ..tasks.translation_metrics import chrf, corpus_bleu, exact_match
from ..tokenizers import Tokenizer
from ..tokenizers.word import WordTokenizer
from .inference import load_run
from .objectives import objective_for
from .task_objectives import ExampleBatcher
from .trainer import Trainer

#: The most validation pairs one evaluation translates (greedy), whatever eval_iters says.
MAX_EVAL_TRANSLATIONS = 1000


def is_seq2seq(model_name: str) -> bool:
    """Whether a model family is an encoder-decoder (objective "seq2seq")."""
    return get_family(model_name).objective == "seq2seq"


@dataclass(frozen=True)
class EncodedPairs:
    """A split's pairs as ids: each source and target ends with the eos id."""

    sources: list[list[int]]
    targets: list[list[int]]

    def __len__(self) -> int:
        return len(self.sources)

    def longest(self) -> int:
        """The most positions any source or target of the split takes (eos included)."""
        return max((len(s) for s in (*self.sources, *self.targets)), default=0)


def encode_pairs(tokenizer: Tokenizer, pairs: list[Pair]) -> EncodedPairs:
    """Source and target ids of `pairs`, each followed by the tokenizer's eos."""
    eos = [tokenizer.eos_token_id]
    return EncodedPairs([tokenizer.encode(p.source) + eos for p in pairs],
                        [tokenizer.encode(p.target) + eos for p in pairs])


def pad_rows(rows: list[list[int]], value: int) -> np.ndarray:
    """Rows of different lengths as one array, padded on the right with `value`: (B, T)."""
    out = np.full((len(rows), max(len(r) for r in rows)), value, dtype=np.int64)
    for i, row in enumerate(rows):
        out[i, :len(row)] = row
    return out                                                          # (B, T)


def source_batch(sources: list[list[int]], pad_id: int) -> tuple[np.ndarray, np.ndarray]:
    """Padded source ids (B, S) and their attention mask (B, S), 1 = token, 0 = padding."""
    ids = pad_rows(sources, pad_id)                                     # (B, S)
    mask = pad_rows([[1] * len(s) for s in sources], 0)                 # (B, S)
    return ids, mask


def pair_batch(encoded: EncodedPairs, indices, pad_id: int) -> dict:
    """The model inputs of pairs `indices`: input_ids, attention_mask (B, S), labels (B, T)."""
    indices = list(indices)
    ids, mask = source_batch([encoded.sources[i] for i in indices], pad_id)
    labels = pad_rows([encoded.targets[i] for i in indices], -100)      # (B, T)
    return {"input_ids": ids, "attention_mask": mask, "labels": labels}


def training_texts(task) -> list[str]:
    """What a run's word tokenizer is trained on: every source and target of the training
    split, each a text of its own (so no line break becomes a token the model could write)."""
    return [text for p in task.train for text in (p.source, p.target)]


class TranslationTrainer(Trainer):
    """`TranslationTrainer(TrainConfig(model="seq2seq", data="scan:simple", ...)).train()`."""

    def _prepare(self, meta: dict | None, check_memory: bool) -> None:
        config = self.config
        self.family = get_family(config.model)
        self.objective = objective_for(self.family)
        self.task = load_translation_task(config.data)
        self._check_splits()
        self.tokenizer = (Tokenizer.from_dict(meta["tokenizer"]) if meta
                          else self._train_tokenizer())
        self.pairs = {split: encode_pairs(self.tokenizer, self.task.split(split))
                      for split in ("train", "validation", "test")}
        model_config = self._model_config(meta["model_config"] if meta else None)
        self.block_size = self._block_size(model_config)
        self._check_lengths(model_config.block_size)
        if check_memory:
            self._check_memory(model_config)
        self.model = self.family.build(model_config, seed=config.seed)
        self.batcher = self._batcher(None, config.seed)

    def _train_tokenizer(self) -> Tokenizer:
        if self.config.tokenizer != "word":
            raise ValueError(f"a translation run uses the word tokenizer (--tokenizer word); "
                             f"got --tokenizer {self.config.tokenizer}")
        return WordTokenizer().train(training_texts(self.task))

    def _check_splits(self) -> None:
        empty = [split for split, n in self.task.sizes.items() if n == 0]
        if empty:
            raise ValueError(f"translation task {self.config.data!r} has no {empty[0]} pairs "
                             f"(sizes: {self.task.sizes}); give it more data")

    def _check_lengths(self, positions: int) -> None:
        """Every source and target (eos included) must fit the model's positions."""
        for split, encoded in self.pairs.items():
            longest = encoded.longest()
            if longest > positions:
                raise ValueError(
                    f"the {split} split of {self.config.data!r} has a sequence of {longest} "
                    f"tokens (eos included), longer than the model's {positions} positions; "
                    f"use --block-size {longest} or more")

    def _block_size(self, model_config) -> int:
        # the positions a batch may use: the model's; --block-size sets the model's context
        return model_config.block_size

    def _model_config(self, saved_config: dict | None, source=None):
        c = self.config
        if saved_config is not None:
            return self.family.config_from_dict(saved_config)
        block = c.block_size or max(self.family.preset(c.preset).get(
            self.family.context_field, 0), max(e.longest() for e in self.pairs.values()))
        return self.family.make_config(c.preset, vocab_size=self.tokenizer.vocab_size,
                                       block_size=block, dropout=c.dropout,
                                       tokenizer=self.tokenizer, **c.model_overrides)

    def _batcher(self, ids, seed: int):
        pad = self.tokenizer.pad_token_id
        return ExampleBatcher(len(self.pairs["train"]), self.config.batch_size,
                              lambda take: pair_batch(self.pairs["train"], take, pad), seed)

    # ----------------------------------------------------------------- evaluation
    @no_grad()
    def evaluate(self) -> dict:
        """Teacher-forced loss on the first `eval_iters` batches of the training and
        validation pairs, and exact match / BLEU of greedy translations of the validation
        pairs those batches hold (at most MAX_EVAL_TRANSLATIONS)."""
        c = self.config
        n = min(c.eval_iters * c.batch_size, MAX_EVAL_TRANSLATIONS)
        self.model.eval()
        try:
            train_loss = self._pairs_loss("train", n)
            val_loss = self._pairs_loss("validation", n)
            scores = score_translations(self.model, self.tokenizer,
                                        self.task.validation[:n], c.batch_size,
                                        bleu_tokenize=self.task.bleu_tokenize)
        finally:
            self.model.train()
        return {"step": self.step, "kind": "eval", "train_loss": train_loss,
                "val_loss": val_loss, "val_ppl": math.exp(min(val_loss, 700.0)),
                "val_exact_match": scores["exact_match"], "val_bleu": scores["bleu"],
                "val_translated": scores["pairs"]}

    def _pairs_loss(self, split: str, n: int) -> float:
        """Mean loss per target token over the first n pairs of a split."""
        encoded, pad = self.pairs[split], self.tokenizer.pad_token_id
        total, tokens = 0.0, 0
        for start in range(0, min(n, len(encoded)), self.config.batch_size):
            batch = pair_batch(encoded, range(start, min(start + self.config.batch_size, n,
                                                         len(encoded))), pad)
            count = int(np.count_nonzero(batch["labels"] != -100))
            total += self.model(**batch).loss.item() * count
            tokens += count
        return total / tokens

    def summary(self, result) -> str:
        ev = result.last_eval or {}
        return (f"done: {result.step} steps in {result.elapsed_s:.0f} s | val loss "
                f"{ev.get('val_loss', float('nan')):.4f} | {self._eval_summary(ev)}\n"
                f"saved to {result.run_dir}/. Next: tinyllm eval {result.run_dir}  or  tinyllm "
                f"translate {result.run_dir} --text \"{self.task.validation[0].source}\"")

    def _eval_summary(self, record: dict) -> str:
        return (f"exact match {record['val_exact_match']:.3f} | BLEU {record['val_bleu']:.1f} "
                f"({record['val_translated']} validation pairs, greedy)")

    def sample(self, n_tokens: int | None = None) -> str:
        """The first validation pair, translated greedily, beside its reference."""
        pair = self.task.validation[0]
        hyp = translate_texts(self.model, self.tokenizer, [pair.source])[0]
        return f"{pair.source} -> {hyp}" + ("" if hyp == pair.target else
                                            f"   (reference: {pair.target})")

    def _checkpoint_extras(self) -> dict:
        return {"run_kind": "translation", "task": self.config.data}

    def _announce(self, progress) -> None:
        c, sizes = self.config, self.task.sizes
        verb = "resuming at step " + str(self.step) if self.step else "training"
        progress.write(
            f"{verb}: {c.model} '{c.preset}' ({self.model.num_params():,} parameters) on "
            f"{c.data!r} ({sizes['train']:,} train / {sizes['validation']:,} validation / "
            f"{sizes['test']:,} test pairs, word tokenizer, V={self.tokenizer.vocab_size}, "
            f"{self.model.config.block_size} positions); {self.memory_note}; run dir "
            f"{self.run_dir}")
        if self.schedule_note:
            progress.write(self.schedule_note)


# ---------------------------------------------------------------------- using a run
@no_grad()
def translate_texts(model, tokenizer: Tokenizer, texts: list[str], *, num_beams: int = 1,
                    max_new_tokens: int | None = None, length_penalty: float = 1.0,
                    batch_size: int = 64) -> list[str]:
    """Each text translated by `model` (greedy, or beam search with `num_beams` > 1)."""
    limit = model.config.block_size
    max_new = limit if max_new_tokens is None else max_new_tokens
    eos = tokenizer.eos_token_id
    out = []
    for start in range(0, len(texts), batch_size):
        sources = [_encode_source(tokenizer, t, limit) for t in texts[start:start + batch_size]]
        ids, mask = source_batch(sources, tokenizer.pad_token_id)
        generated = generate_seq2seq(model, ids, mask, max_new_tokens=max_new,
                                     num_beams=num_beams, length_penalty=length_penalty)
        for row in generated:
            row = list(row)
            out.append(tokenizer.decode(row[:row.index(eos)] if eos in row else row))
    return out


def _encode_source(tokenizer: Tokenizer, text: str, limit: int) -> list[int]:
    if not text.strip():
        raise ValueError("cannot translate an empty text; give a sentence of the task's "
                         "source language")
    ids = tokenizer.encode(text) + [tokenizer.eos_token_id]
    if len(ids) > limit:
        raise ValueError(f"the text {text[:40]!r} is {len(ids)} tokens long (eos included), "
                         f"more than the model's {limit} positions")
    return ids


def score_translations(model, tokenizer: Tokenizer, pairs: list[Pair], batch_size: int = 64,
                       num_beams: int = 1, bleu_tokenize: str = "13a") -> dict:
    """Exact match, corpus BLEU (sacrebleu's default, with the task's tokenizer: "none" for
    SCAN's action tokens, "zh" for Chinese) and chrF of the model's translations of `pairs`."""
    if not pairs:
        return {"exact_match": float("nan"), "bleu": float("nan"), "chrf": float("nan"),
                "pairs": 0}
    hyps = translate_texts(model, tokenizer, [p.source for p in pairs], num_beams=num_beams,
                           batch_size=batch_size)
    refs = [p.target for p in pairs]
    return {"exact_match": exact_match(hyps, refs),
            "bleu": corpus_bleu(hyps, [refs], tokenize=bleu_tokenize).score,
            "chrf": chrf(hyps, [refs]).score, "pairs": len(pairs)}


def is_translation_run(run_dir) -> bool:
    """Whether `run_dir` holds a translation run (its train_config.json names an
    encoder-decoder family)."""
    try:
        config = json.loads((Path(run_dir) / "train_config.json").read_text())
        return is_seq2seq(config["model"])
    except (OSError, ValueError, KeyError, TypeError):
        return False


def load_translation_run(run_dir, command: str = "translate"):
    """`load_run` for a command that needs an encoder-decoder: a decoder-only run is an
    error naming what it holds."""
    model, tokenizer, config = load_run(run_dir)
    if not is_seq2seq(config.model):
        raise ValueError(f"{command} needs an encoder-decoder run (--model seq2seq or "
                         f"lstm-seq2seq); {run_dir} holds a {config.model} "
                         f"({get_family(config.model).objective}) model")
    return model, tokenizer, config


def translate(run_dir, texts: list[str], num_beams: int = 1, **options) -> list[str]:
    """Each of `texts` translated by the run in `run_dir`."""
    model, tokenizer, _ = load_translation_run(run_dir)
    return translate_texts(model, tokenizer, texts, num_beams=num_beams, **options)


def evaluate_translation(run_dir, split: str = "test", num_beams: int = 1) -> dict:
    """Exact match, BLEU and chrF of a translation run on a split of its task."""
    model, tokenizer, config = load_translation_run(run_dir, "tinyllm eval")
    task = load_translation_task(config.data)
    return {"run": str(Path(run_dir)), "task": config.data, "split": split,
            "num_beams": num_beams,
            **score_translations(model, tokenizer, task.split(split), config.batch_size,
                                 num_beams=num_beams, bleu_tokenize=task.bleu_tokenize)}
