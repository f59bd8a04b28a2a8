"""Training objectives: how a family's batches are cut, its loss taken and a sample shown.

A model family names its objective in the models registry; the Trainer asks
`objective_for(family)` and never branches on the family's name. Shapes: B batch, T block.

- `CausalLM` ("causal-lm", GPT and LSTM): windows of T + 1 tokens, inputs (B, T) and the
  next-token targets (B, T); a sample continues the start of the validation split.
- `MaskedLM` ("masked-lm", BERT): [CLS] a [SEP] b [SEP] rows of T tokens with 15% of the
  positions masked (labels -100 elsewhere); a sample shows a row with its masks filled in.
- `Seq2Seq` ("seq2seq", the encoder-decoders): the loss of (source, target) pairs. Pairs
  come from a translation task, not from windows of one token stream, so this objective
  takes the loss only; the methods that cut a stream refuse, naming what to do instead.

Adding an objective: a class with these five methods, and a line in `OBJECTIVES`.
"""

from __future__ import annotations

from collections.abc import Iterator

import numpy as np

from .. import functional as F
from ..autograd import Tensor, no_grad
from ..data import BertBatcher, LMBatcher, eval_batches

_BERT_INPUTS = ("input_ids", "token_type_ids", "attention_mask")


class CausalLM:
    """Next-token prediction on windows of the token stream."""

    name = "causal-lm"

    @staticmethod
    def min_tokens(block_size: int) -> int:
        """The fewest tokens a split needs: one window of inputs plus its last target."""
        return block_size + 1

    @staticmethod
    def batcher(ids, tokenizer, batch_size: int, block_size: int, seed: int):
        """An endless, seeded, resumable stream of training batches."""
        return LMBatcher(ids, batch_size, block_size, seed=seed)

    @staticmethod
    def loss(model, batch) -> Tensor:
        """The mean loss of one batch (a scalar Tensor)."""
        x, y = batch                                                    # (B, T), (B, T)
        return model(x, y).loss

    @staticmethod
    def eval_batches(ids, tokenizer, batch_size: int, block_size: int, n_batches: int,
                     seed: int) -> Iterator:
        """The same `n_batches` batches every time: consecutive windows from the start."""
        return eval_batches(ids, batch_size, block_size, max_batches=n_batches)

    @staticmethod
    @no_grad()
    def sample(model, tokenizer, val_ids, n_tokens: int, batch_size: int, block_size: int,
               seed: int) -> str:
        """`n_tokens` sampled after the first validation token (temperature 0.8)."""
        prompt = np.asarray(val_ids[:1], dtype=np.int64)
        out = model.generate(prompt[None], n_tokens, temperature=0.8, top_k=None, seed=seed)
        return tokenizer.decode(out[0])


class MaskedLM:
    """BERT's masked-token prediction on pairs of text segments."""

    name = "masked-lm"

    @staticmethod
    def min_tokens(block_size: int) -> int:
        """The fewest tokens a split needs: one row of block_size tokens."""
        return block_size

    @staticmethod
    def batcher(ids, tokenizer, batch_size: int, block_size: int, seed: int):
        """An endless, seeded, resumable stream of masked pair batches."""
        return BertBatcher(ids, tokenizer, batch_size, max_length=block_size, seed=seed)

    @staticmethod
    def loss(model, batch: dict) -> Tensor:
        """The mean loss over the masked positions of one batch (a scalar Tensor)."""
        return model(**{k: batch[k] for k in (*_BERT_INPUTS, "labels")}).loss

    @classmethod
    def eval_batches(cls, ids, tokenizer, batch_size: int, block_size: int, n_batches: int,
                     seed: int) -> Iterator:
        """`n_batches` batches from a batcher with a fixed seed: the same masks every time."""
        batcher = cls.batcher(ids, tokenizer, batch_size, block_size, seed)
        return (next(batcher) for _ in range(n_batches))

    @classmethod
    @no_grad()
    def sample(cls, model, tokenizer, val_ids, n_tokens: int, batch_size: int,
               block_size: int, seed: int) -> str:
        """One validation row with its masked positions filled by the model's best guess."""
        batch = next(cls.batcher(val_ids, tokenizer, batch_size, block_size, seed))
        training = model.training
        model.eval()
        try:
            logits = cls.token_logits(model(**{k: batch[k] for k in _BERT_INPUTS}))[0]
        finally:
            model.train(training)
        ids = batch["input_ids"][0].copy()                                          # (T,)
        masked = batch["labels"][0] != -100
        ids[masked] = logits[masked].argmax(-1)
        return tokenizer.decode(ids[batch["attention_mask"][0] == 1])


    @staticmethod
    def token_logits(output) -> np.ndarray:
        """The masked-LM logits (B, T, V) of a model's output."""
        return output.logits.data


class MaskedLMNextSentence(MaskedLM):
    """BERT's pre-training: masked tokens plus next-sentence prediction (is segment b the
    text that follows a, or a random stretch?), on the `pretraining` head."""

    name = "mlm+nsp"
    head = "pretraining"

    @staticmethod
    def loss(model, batch: dict) -> Tensor:
        """The masked-LM loss plus the next-sentence loss of one batch."""
        return model(**{k: batch[k] for k in (*_BERT_INPUTS, "labels", "next_sentence_label")}
                     ).loss

    @staticmethod
    def token_logits(output) -> np.ndarray:
        return output.prediction_logits.data


class Seq2Seq:
    """An encoder-decoder's objective: the mean cross-entropy of each target token given the
    source and the target tokens before it (teacher forcing), on (source, target) pairs.

    A batch is a dict of the model's inputs: `input_ids` (B, S), `attention_mask` (B, S)
    and `labels` (B, T) (-100 where there is no target token), optionally
    `decoder_input_ids` and `decoder_attention_mask` (B, T); the decoder otherwise reads the
    labels shifted right. Only `loss` is defined: a language-model run's windows of one
    token stream are no translation pairs, and the methods that would cut them say so.
    """

    name = "seq2seq"

    @staticmethod
    def loss(model, batch: dict) -> Tensor:
        """The mean loss over the target tokens of one batch of pairs (a scalar Tensor)."""
        return model(**batch).loss

    @staticmethod
    def _needs_pairs(*args, **kwargs):
        raise ValueError("the seq2seq objective trains an encoder-decoder on (source, target) "
                         "pairs of a translation task, not on windows of a text's token "
                         "stream (--data); train it on a translation task's pairs")

    min_tokens = batcher = eval_batches = sample = _needs_pairs


class Distillation:
    """Knowledge distillation (Hinton et al. 2015) on top of a causal-LM objective.

    The student learns the teacher's distribution softened by a temperature T as well as the
    hard next tokens:

        loss = alpha T^2 KL(softmax(z_t / T) || softmax(z_s / T)) + (1 - alpha) CE(z_s, y)

    with z_t, z_s the teacher's and the student's logits; with several teachers (an
    ensemble, distilled into one model as in the paper) softmax(z_t / T) is the mean of
    their softened distributions. T > 1 lifts the small
    probabilities the teacher gives the other tokens (its "dark knowledge": which wrong next
    characters are nearly right), which one-hot targets do not carry; T^2 keeps the soft
    term's gradients on the hard term's scale as T changes (they shrink as 1/T^2). The
    teacher runs without gradients. Evaluation reports the plain CE (`eval_loss`), so a
    distilled student and one trained from scratch compare on the same number.
    """

    def __init__(self, base, teachers, temperature: float, alpha: float):
        self.base = base
        self.teachers = list(teachers) if isinstance(teachers, list | tuple) else [teachers]
        self.temperature, self.alpha = temperature, alpha
        self.name = base.name
        self.min_tokens, self.batcher = base.min_tokens, base.batcher
        self.eval_batches, self.sample = base.eval_batches, base.sample

    def loss(self, model, batch) -> Tensor:
        x, y = batch                                                    # (B, T), (B, T)
        out = model(x, y)
        if self.alpha == 0:
            return out.loss
        t, v = self.temperature, out.logits.shape[-1]
        p = np.mean([self._soft_targets(teacher, x, t) for teacher in self.teachers], axis=0)
        log_q = F.log_softmax(out.logits.reshape(-1, v) / t, -1)        # (B T, V)
        soft = F.kl_div(log_q, p, reduction="batchmean") * (t * t)
        return soft * self.alpha + out.loss * (1 - self.alpha)

    @staticmethod
    @no_grad()
    def _soft_targets(teacher, x, t: float) -> np.ndarray:
        """softmax(z_t / T) of one teacher, (B T, V)."""
        logits = teacher(x).logits.data                                  # (B, T, V)
        z = logits.reshape(-1, logits.shape[-1]) / t
        z = z - z.max(axis=1, keepdims=True)
        p = np.exp(z)
        return p / p.sum(axis=1, keepdims=True)

    def eval_loss(self, model, batch) -> Tensor:
        """The base objective's loss (the student's plain cross-entropy)."""
        return self.base.loss(model, batch)


OBJECTIVES = {objective.name: objective
              for objective in (CausalLM, MaskedLM, MaskedLMNextSentence, Seq2Seq)}
#: Objectives a run may ask for instead of its family's own, and the head each needs.
VARIANTS = {MaskedLMNextSentence.name: MaskedLMNextSentence}


def objective_for(family, variant: str | None = None):
    """The objective a model family (`tinyllm.models.registry.ModelFamily`) trains with, or
    the variant asked for (which needs its head in the family)."""
    if variant:
        objective = VARIANTS.get(variant)
        if objective is None:
            raise ValueError(f"unknown objective {variant!r}; accepted: {', '.join(VARIANTS)}")
        family.head(objective.head)            # an error naming the families that have it
        return objective
    try:
        return OBJECTIVES[family.objective]
    except KeyError:
        raise ValueError(f"model family {family.name!r} has objective {family.objective!r}, "
                         f"which the trainer does not know; accepted: "
                         f"{', '.join(OBJECTIVES)}") from None
