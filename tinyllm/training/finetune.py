"""Fine-tuning: a pre-trained model, a task head, and a small labelled task.

Shapes: B batch, T tokens per example (at most the block size), K labels.

    source (a run or model directory)  ->  body weights + tokenizer
    task (tinyllm.tasks)               ->  labelled examples, encoded with that tokenizer
    family.head("sequence-classification")(config with num_labels=K)  ->  body + new head
    train: cross-entropy of the head's logits (B, K) against the labels (B,)

BERT reads the pooled [CLS] state of `[CLS] a [SEP] (b [SEP])`; GPT-2 reads the state of the
last token that is not padding (the only one that has seen the whole text). `freeze` keeps
the embeddings or the whole body fixed; `lora_rank` trains low-rank adapters instead of the
body. The loop, checkpoints, resume, Ctrl-C and metrics are the `Trainer`'s: `FineTuner`
replaces only what is trained on and how it is evaluated. The source is never written to.
"""

from __future__ import annotations

import dataclasses
import math
from pathlib import Path

import numpy as np

from ..autograd import Tensor, no_grad
from ..data.datasets import _ResumableBatcher, make_pair_batch
from ..models import get_family
from ..models.lora_io import save_adapter
from ..nn.lora import apply_lora, merge_lora
from ..tasks import ClassificationTask, Example, load_task
from ..tasks.metrics import accuracy, confusion_matrix, macro_f1
from ..tokenizers import Tokenizer
from .checkpoint import load_checkpoint
from .config import FineTuneConfig, steps_for_epochs
from .inference import load_run
from .sources import check_encodable, source_family
from .trainer import LAST, Trainer

HEAD = "sequence-classification"
_BERT_INPUTS = ("input_ids", "token_type_ids", "attention_mask")


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


class SequenceClassification:
    """The objective of a classification head on a task's examples, encoded once."""

    name = HEAD

    def __init__(self, task: ClassificationTask, tokenizer: Tokenizer, family, block_size: int):
        self.task, self.tokenizer, self.block_size = task, tokenizer, block_size
        self.pairs = family.objective == "masked-lm"     # BERT's [CLS] a [SEP] b [SEP]

    def encode(self, split: str, indices) -> dict:
        """The model inputs and labels of examples `indices` of `split`."""
        examples = self.task.split(split)
        labels = self.task.label_ids(split)[np.asarray(indices, dtype=np.int64)]      # (B,)
        return {**self.inputs([examples[i] for i in indices]), "labels": labels}

    def inputs(self, examples) -> dict:
        """The model inputs of examples (anything with `.text` and `.text_b`)."""
        if self.pairs:
            return make_pair_batch([(ex.text, ex.text_b) for ex in examples], self.tokenizer,
                                   self.block_size)
        return {"input_ids": self._causal_rows(examples)}

    def _causal_rows(self, examples) -> np.ndarray:
        """Right-padded ids (B, T): text, then `\\n` and the second text of a pair; the
        classifier reads the last token that is not padding."""
        rows = [self.tokenizer.encode(ex.text if ex.text_b is None
                                      else f"{ex.text}\n{ex.text_b}")[:self.block_size]
                for ex in examples]
        pad = self.tokenizer.pad_token_id
        out = np.full((len(rows), max(len(r) for r in rows)), pad, dtype=np.int64)
        for i, row in enumerate(rows):
            out[i, :len(row)] = row
        return out

    def loss(self, model, batch: dict) -> Tensor:
        return model(**_inputs(batch), labels=batch["labels"]).loss

    def logits(self, model, batch: dict) -> np.ndarray:
        return model(**_inputs(batch)).logits.data                              # (B, K)


def _inputs(batch: dict) -> dict:
    return {k: batch[k] for k in (*_BERT_INPUTS, "input_ids") if k in batch}


class FineTuner(Trainer):
    """`FineTuner(FineTuneConfig(init_from=SOURCE, task=TASK, ...)).train()`."""

    config_class = FineTuneConfig

    def _prepare(self, meta: dict | None, check_memory: bool) -> None:
        c = self.config
        self.family = get_family(c.model)
        head = self.family.head(HEAD)
        self.task = self._load_task()
        source = None if meta else self._source()
        self.tokenizer = Tokenizer.from_dict(meta["tokenizer"]) if meta else source.tokenizer
        if source:
            self._check_texts(source)
        model_config = (self.family.config_from_dict(meta["model_config"]) if meta
                        else self._head_config(source.config))
        self.block_size = self._block_size(model_config)
        if check_memory:
            self._check_memory(model_config)
        self.model = head(model_config, seed=c.seed)
        if source and not c.from_scratch:
            self._load_body(source)
        self._freeze()
        if c.lora_rank:
            self._apply_lora()
        self.objective = SequenceClassification(self.task, self.tokenizer, self.family,
                                                self.block_size)
        self.batcher = self._batcher(None, c.seed)
        self.chars_per_token, self.unigram_nats = 1.0, math.log(self.task.num_labels)

    def _load_task(self) -> ClassificationTask:
        task = load_task(self.config.task)
        if not isinstance(task, ClassificationTask):
            raise ValueError(f"task {self.config.task!r} is a {type(task).__name__}; "
                             "fine-tuning trains classification tasks")
        if self.config.train_examples:
            task = task.subsample_train(self.config.train_examples, seed=self.config.seed)
        return task

    def _check_texts(self, source) -> None:
        texts = "".join(ex.text + (ex.text_b or "") for split in ("train", "validation", "test")
                        for ex in self.task.split(split))
        check_encodable(self.tokenizer, self.tokenizer.encode(texts), texts,
                        f"the task {self.config.task!r}", source.path)

    def _head_config(self, body_config):
        c, fields = self.config, {"num_labels": self.task.num_labels}
        fields.update({name: c.dropout for name in self.family.dropout_fields})
        if "pad_token_id" in {f.name for f in dataclasses.fields(body_config)}:
            fields["pad_token_id"] = self.tokenizer.pad_token_id
        if c.block_size:
            fields[self.family.context_field] = min(c.block_size, body_config.block_size)
        return body_config.replace(**fields, **c.model_overrides)

    def _load_body(self, source) -> None:
        """The source's weights for everything but the new head (whose names the head class
        lists in `optional_prefixes`); the source's own head is left out."""
        missing, _ = self.model.load_state_dict(source.state, strict=False)
        required = [k for k in missing if not k.startswith(self.model.optional_prefixes)]
        if required:
            raise ValueError(f"{source.path} lacks {len(required)} weights of "
                             f"{type(self.model).__name__}: {', '.join(required[:5])}")

    def _freeze(self) -> None:
        """Keep the embeddings, or everything but the head, fixed (`freeze`)."""
        if self.config.freeze == "none":
            return
        head = self.model.optional_prefixes
        for name, p in self.model.named_parameters():
            is_embedding = "embed" in name or name.split(".")[-2] in ("wte", "wpe")
            if (self.config.freeze == "body" and not name.startswith(head)) or (
                    self.config.freeze == "embeddings" and is_embedding):
                p.requires_grad = False

    def _apply_lora(self) -> None:
        """Adapters on the family's (or --lora-targets') layers; the new head trains in full."""
        c = self.config
        apply_lora(self.model, c.lora_rank, c.lora_alpha,
                   c.lora_targets or list(self.family.lora_targets),
                   modules_to_save=self.model.head_modules(), seed=c.seed)

    def export_model(self) -> Path:
        """The best weights as a model directory; a LoRA run also writes its adapter alone
        (`adapter/`, peft's layout) and exports the merged model."""
        if not self.config.lora_rank:
            return super().export_model()
        model, _, _ = load_run(self.run_dir)
        save_adapter(model, self.run_dir / "adapter")
        return merge_lora(model).save(self.run_dir / "model")

    def _batcher(self, ids, seed: int):
        return ExampleBatcher(len(self.task.train), self.config.batch_size,
                              lambda take: self.objective.encode("train", take), seed)

    def _check_splits(self) -> None:
        """Every split a classifier is evaluated on must hold examples."""

    # ----------------------------------------------------------------- evaluation
    @no_grad()
    def evaluate(self, split: str = "validation") -> dict:
        """Loss, accuracy and macro-F1 on a split (all of it), and the training loss on the
        first `eval_iters` batches of the training split."""
        self.model.eval()
        try:
            scores = self.scores(split)
            train_loss = self._loss_on("train", self.config.eval_iters * self.config.batch_size)
        finally:
            self.model.train()
        return {"step": self.step, "kind": "eval", "train_loss": train_loss,
                **{f"val_{k}" if split == "validation" else f"{split}_{k}": v
                   for k, v in scores.items()}}

    @no_grad()
    def scores(self, split: str) -> dict:
        """{"loss", "accuracy", "macro_f1"} of the model on the whole split."""
        logits, gold = self.predict_logits(split), self.task.label_ids(split)  # (N, K), (N,)
        pred = logits.argmax(-1)
        return {"loss": _mean_nll(logits, gold), "accuracy": accuracy(gold, pred),
                "macro_f1": macro_f1(gold, pred, labels=range(self.task.num_labels))}

    @no_grad()
    def predict_logits(self, split: str, n: int | None = None) -> np.ndarray:
        """The head's logits (N, K) for the first `n` examples of a split (None: all)."""
        n = len(self.task.split(split)) if n is None else min(n, len(self.task.split(split)))
        step = self.config.batch_size
        return np.concatenate([self.objective.logits(
            self.model, self.objective.encode(split, range(i, min(i + step, n))))
            for i in range(0, n, step)])

    def _loss_on(self, split: str, count: int) -> float:
        logits = self.predict_logits(split, count)
        return _mean_nll(logits, self.task.label_ids(split)[:len(logits)])

    def _eval_summary(self, record: dict) -> str:
        return f"acc {record['val_accuracy']:.3f} | macro-F1 {record['val_macro_f1']:.3f}"

    def sample(self, n_tokens: int | None = None) -> str:
        return ""

    def _checkpoint_extras(self) -> dict:
        return {"run_kind": "finetune", "head": HEAD, "task": self.config.task,
                "labels": self.task.labels}

    def _announce(self, progress) -> None:
        c, sizes = self.config, self.task.sizes
        trainable = sum(p.data.size for p in self.model.parameters() if p.requires_grad)
        verb = "resuming at step " + str(self.step) if self.step else "fine-tuning"
        progress.write(
            f"{verb}: {c.model} from {c.init_from} ({trainable:,} of "
            f"{self.model.num_params():,} parameters trained, freeze={c.freeze}) on "
            f"{c.task!r} ({sizes['train']:,} train / {sizes['validation']:,} validation "
            f"examples, {self.task.num_labels} labels); {self.memory_note}; run dir "
            f"{self.run_dir}")


def _mean_nll(logits: np.ndarray, gold: np.ndarray) -> float:
    """Mean cross-entropy of logits (N, K) against class ids (N,)."""
    logp = logits - np.logaddexp.reduce(logits, axis=-1, keepdims=True)        # (N, K)
    return float(-logp[np.arange(len(gold)), gold].mean())


def is_finetune_run(run_dir) -> bool:
    """True when `run_dir`'s last checkpoint is a fine-tuning run's."""
    path = Path(run_dir) / LAST
    return path.is_file() and load_checkpoint(path)[1].get("run_kind") == "finetune"


def finetune_config(source, **options) -> FineTuneConfig:
    """The settings of fine-tuning `source` (a run or model directory): its model family
    unless `model` is given, and `steps` from `epochs` (3 by default) unless given."""
    options.setdefault("model", source_family(source).name)
    batch = options.get("batch_size", FineTuneConfig.batch_size)
    if "steps" not in options:
        epochs = options.setdefault("epochs", 3.0)
        n = options.get("train_examples") or len(load_task(options["task"]).train)
        options["steps"] = steps_for_epochs(epochs, n, batch)
    if "lora_targets" in options and isinstance(options["lora_targets"], str):
        options["lora_targets"] = [t for t in options["lora_targets"].split(",") if t]
    return FineTuneConfig(init_from=str(source), **options)


def _run_objective(run_dir):
    """(model, objective, labels, config) of a fine-tuned run's best checkpoint."""
    model, tokenizer, config = load_run(run_dir)
    task = load_task(config.task)
    family = get_family(config.model)
    return model, SequenceClassification(task, tokenizer, family, model.config.block_size), \
        task.labels, config


@no_grad()
def predict_label(run_dir, text: str, text_b: str | None = None) -> tuple[str, float]:
    """The label a fine-tuned run gives `text` (or the pair), and its probability."""
    model, objective, labels, _ = _run_objective(run_dir)
    example = Example(text, labels[0], text_b)
    logits = objective.logits(model, objective.inputs([example]))[0]            # (K,)
    probs = np.exp(logits - np.logaddexp.reduce(logits))
    return labels[int(probs.argmax())], float(probs.max())


@no_grad()
def evaluate_finetuned(run_dir, split: str = "test") -> str:
    """A report of a fine-tuned run on its task's test split: accuracy, macro-F1 and the
    confusion matrix (rows: gold labels, columns: predictions)."""
    model, objective, labels, config = _run_objective(run_dir)
    examples, gold = objective.task.split(split), objective.task.label_ids(split)
    logits = np.concatenate([objective.logits(model, objective.inputs(examples[i:i + 64]))
                             for i in range(0, len(examples), 64)])
    pred = logits.argmax(-1)
    matrix = confusion_matrix(gold, pred, labels=range(len(labels)))
    width = max(len(lab) for lab in labels)
    rows = [f"{config.task} ({split} split, {len(gold)} examples): accuracy "
            f"{accuracy(gold, pred):.3f} | macro-F1 "
            f"{macro_f1(gold, pred, labels=range(len(labels))):.3f}",
            "confusion matrix (rows: gold, columns: predicted):",
            " " * (width + 2) + " ".join(f"{i:>5d}" for i in range(len(labels)))]
    rows += [f"{lab:>{width}} {i:>1d}" + "".join(f"{n:>6d}" for n in matrix[i])
             for i, lab in enumerate(labels)]
    return "\n".join(rows)
