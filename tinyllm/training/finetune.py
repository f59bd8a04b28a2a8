"""Fine-tuning: a pre-trained model, a task head, and a small labelled task.

    source (a run or model directory)  ->  body weights + tokenizer
    task (tinyllm.tasks)               ->  examples, encoded with that tokenizer
    objective (task_objectives.py)     ->  the head (registry) and the loss:
        classification    family.head("sequence-classification"), num_labels = K
        extractive QA     family.head("question-answering") (BERT): start/end of the span
        generative QA     the family's own causal LM (GPT): the answer's tokens

`freeze` keeps the embeddings or the whole body fixed; `lora_rank` trains low-rank adapters
instead of the body (the head trains in full); `from_scratch` keeps only the architecture and
the tokenizer. The loop, checkpoints, resume, Ctrl-C and metrics are the `Trainer`'s:
`FineTuner` replaces only what is trained on and how it is evaluated. The source is never
written to.
"""

from __future__ import annotations

import dataclasses
from pathlib import Path

from ..autograd import no_grad
from ..models import get_family
from ..models.lora_io import save_adapter
from ..nn.lora import apply_lora, merge_lora
from ..tasks import load_task
from ..tokenizers import Tokenizer
from .checkpoint import load_checkpoint
from .config import FineTuneConfig, steps_for_epochs
from .inference import load_run
from .sources import check_encodable, source_family
from .task_objectives import ExampleBatcher, objective_for_task
from .trainer import LAST, Trainer

_BERT_INPUTS = ("input_ids", "token_type_ids", "attention_mask")


class FineTuner(Trainer):
    """`FineTuner(FineTuneConfig(init_from=SOURCE, task=TASK, ...)).train()`."""

    config_class = FineTuneConfig

    def _prepare(self, meta: dict | None, check_memory: bool) -> None:
        c = self.config
        self.family = get_family(c.model)
        self.task = self._load_task()
        source = None if meta else self._source()
        self.tokenizer = Tokenizer.from_dict(meta["tokenizer"]) if meta else source.tokenizer
        # the block size is the model's context, or less (set again below)
        context = (meta["model_config"] if meta else source.config.to_dict())
        self.block_size = c.block_size or context[self.family.context_field]
        self.objective = objective_for_task(self.task, self.family, self.tokenizer,
                                            self.block_size, c.classifier, c.prompt)
        self._check_pooling()
        model_class = (self.family.head(self.objective.head) if self.objective.head
                       else self.family.model_class)
        if source:
            texts = self.objective.texts()
            ids = [i for text in texts for i in self.tokenizer.encode(text)]
            check_encodable(self.tokenizer, ids, texts, f"the task {c.task!r}", source.path)
        model_config = (self.family.config_from_dict(meta["model_config"]) if meta
                        else self._head_config(source.config))
        self.block_size = self.objective.block_size = self._block_size(model_config)
        if check_memory:
            self._check_memory(model_config)
        self.model = model_class(model_config, seed=c.seed)
        if source and not c.from_scratch:
            self._load_body(source)
        self._freeze()
        if c.lora_rank:
            self._apply_lora()
        self._check_splits()
        self.batcher = self._batcher(None, c.seed)

    def _check_pooling(self) -> None:
        """Mean pooling is a choice of a classification head whose config has
        `classifier_pooling` (GPT's) only."""
        pooling, head = self.config.pooling, self.objective.head
        fields = {f.name for f in dataclasses.fields(self.family.config_class)}
        if pooling != "last" and (head != "sequence-classification"
                                  or "classifier_pooling" not in fields):
            raise ValueError(f"pooling {pooling!r} is how a GPT's classification head reads "
                             f"a text; a {self.family.name} on {self.config.task!r} "
                             f"({type(self.objective).__name__}) has no such choice: drop it")

    def _load_task(self):
        task = load_task(self.config.task)
        if self.config.train_examples:
            task = task.subsample_train(self.config.train_examples, seed=self.config.seed)
        return task

    def _head_config(self, body_config):
        c, fields = self.config, dict(self.objective.config_fields())
        fields.update({name: c.dropout for name in self.family.dropout_fields})
        if "pad_token_id" in {f.name for f in dataclasses.fields(body_config)}:
            fields["pad_token_id"] = self.tokenizer.pad_token_id
        if c.block_size:
            fields[self.family.context_field] = min(c.block_size, body_config.block_size)
        if c.pooling != "last":
            fields["classifier_pooling"] = c.pooling
        return body_config.replace(**fields, **c.model_overrides)

    def _load_body(self, source) -> None:
        """The source's weights for everything but the new head (whose names the head class
        lists in `optional_prefixes`); the source's own head is left out. A shorter
        `block_size` than the source's context keeps the first rows of its position table."""
        state = _crop_positions(source.state, self.model.state_dict(),
                                source.config.block_size, self.model.config.block_size)
        missing, _ = self.model.load_state_dict(state, strict=False)
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
                   modules_to_save=self.model.head_modules() or None, seed=c.seed)

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
        """Training, validation and test must each hold examples, before any step."""
        empty = [split for split, n in self.task.sizes.items() if n == 0]
        if empty:
            raise ValueError(f"task {self.config.task!r} has no {empty[0]} examples "
                             f"(sizes: {self.task.sizes}); give it more data")

    # ----------------------------------------------------------------- evaluation
    @no_grad()
    def evaluate(self, split: str = "validation") -> dict:
        """The task's scores on a split (all of it: accuracy and macro-F1, or exact match
        and F1), and the loss on the first `eval_iters` batches of the training split."""
        self.model.eval()
        try:
            scores = self.scores(split)
            train_loss = self.objective.scores(
                self.model, "train", self.config.batch_size,
                self.config.eval_iters * self.config.batch_size)["loss"]
        finally:
            self.model.train()
        return {"step": self.step, "kind": "eval", "train_loss": train_loss,
                **{f"val_{k}" if split == "validation" else f"{split}_{k}": v
                   for k, v in scores.items()}}

    @no_grad()
    def scores(self, split: str) -> dict:
        """The task's scores of the model on the whole split, and its loss there, in
        evaluation mode (no dropout; the mode it was in is restored)."""
        training = self.model.training
        self.model.eval()
        try:
            return self.objective.scores(self.model, split, self.config.batch_size)
        finally:
            self.model.train(training)

    def _eval_summary(self, record: dict) -> str:
        return self.objective.summary(record)

    def sample(self, n_tokens: int | None = None) -> str:
        return ""

    def _checkpoint_extras(self) -> dict:
        labels = getattr(self.task, "labels", None)
        return {"run_kind": "finetune", "head": self.objective.head, "task": self.config.task,
                **({"labels": labels} if labels else {})}

    def _announce(self, progress) -> None:
        c, sizes = self.config, self.task.sizes
        trainable = sum(p.data.size for p in self.model.parameters() if p.requires_grad)
        verb = "resuming at step " + str(self.step) if self.step else "fine-tuning"
        progress.write(
            f"{verb}: {c.model} from {c.init_from} ({trainable:,} of "
            f"{self.model.num_params():,} parameters trained, freeze={c.freeze}) on "
            f"{c.task!r} ({sizes['train']:,} train / {sizes['validation']:,} validation "
            f"examples, {type(self.objective).__name__}); {self.memory_note}; run dir "
            f"{self.run_dir}")


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
    """(model, objective) of a fine-tuned run's best checkpoint."""
    model, tokenizer, config = load_run(run_dir)
    task = load_task(config.task)
    objective = objective_for_task(task, get_family(config.model), tokenizer,
                                   config.block_size or model.config.block_size,
                                   config.classifier, config.prompt)
    return model, objective


def predict(run_dir, **text) -> str:
    """What a fine-tuned run answers: the label (and its probability) of `text` (and
    `text_b`), or the answer to `question` about `context`."""
    model, objective = _run_objective(run_dir)
    return objective.predict(model, **text)


def evaluate_finetuned(run_dir, split: str = "test") -> str:
    """A report of a fine-tuned run on its task's test split: accuracy, macro-F1 and the
    confusion matrix, or SQuAD exact match and F1."""
    model, objective = _run_objective(run_dir)
    return objective.report(model, split)


def _crop_positions(state: dict, target: dict, context: int, block_size: int) -> dict:
    """`state` with every (context, ...) table that `target` holds as (block_size, ...) cut to
    its first block_size rows: the positions a shorter context still uses."""
    if block_size >= context:
        return state
    out = dict(state)
    for name, value in state.items():
        want = target.get(name)
        if (want is not None and value.shape != want.shape and value.shape[0] == context
                and want.shape == (block_size, *value.shape[1:])):
            out[name] = value[:block_size]
    return out
