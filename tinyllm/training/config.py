"""`TrainConfig`: every knob of a training run, typed and checked.

The defaults are the run `tinyllm train` does with no arguments: the `small` GPT (nanoGPT's
CPU recipe size: 4 layers, 4 heads, d=128, context 64) on the built-in English corpus
("pydoc", CPython's own documentation), characters as tokens.
"""

from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass, field

from .._checks import choice, non_negative_int, positive_int
from ..distributed.world import MODES as DISTRIBUTED_MODES
from ..models import family_names, get_family
from ..models.config import CLASSIFIER_POOLING
from ..nn.prune import SCOPES, check_sparsity
from ..optim.swa_utils import MODES as AVERAGE_MODES
from ..tasks.base import PROMPT_FORMS

TOKENIZERS = ("char", "bpe", "word")
SCHEDULES = ("cosine", "wsd")


@dataclass
class TrainConfig:
    """A training run's settings (saved with every checkpoint, so a run can resume)."""

    model: str = "gpt"                 # a family of tinyllm.models.family_names()
    preset: str = "small"              # a name from tinyllm.models.PRESETS
    data: str = "pydoc"                # a corpus name (tinyllm.data.list_corpora()) or a file;
                                       # an encoder-decoder's: a translation task ("scan:simple")
    tokenizer: str | None = None       # "char", "bpe" or "word"; None: "word" for an
                                       # encoder-decoder (--model seq2seq), else "char"
    vocab_size: int = 512              # target vocabulary for "bpe" (ignored for "char")
    steps: int = 2000                  # optimizer steps
    batch_size: int = 12
    block_size: int | None = None      # context length; None = the preset's context
    lr: float = 1e-3                   # peak learning rate
    min_lr: float = 1e-4               # the schedule's floor
    schedule: str = "cosine"           # "cosine" decay, or "wsd" (warmup-stable-decay)
    decay_fraction: float = 0.2        # "wsd": the share of the steps spent decaying
    warmup_steps: int | None = None    # None = min(100, steps // 10), fixed when the run starts
    weight_decay: float = 0.1
    beta1: float = 0.9
    beta2: float = 0.99
    grad_clip: float = 1.0             # max gradient norm; 0 disables clipping
    grad_accum: int = 1                # micro-batches per optimizer step (batch_size is the
                                       # whole step's: each micro-batch has batch_size / K rows)
    distributed: str = "auto"          # "auto": MPI ranks when mpiexec started the run; "mpi";
                                       # "none" (one process even under mpiexec)
    bucket_mb: float = 25.0            # MiB per gradient all-reduce bucket (MPI)
    shard_optimizer: bool = False      # ZeRO stage 1: AdamW's state split over the ranks
    dropout: float = 0.0
    val_fraction: float = 0.1
    eval_interval: int = 250           # evaluate (and checkpoint) every N steps
    eval_iters: int = 20               # batches per evaluation
    sample_tokens: int = 200           # tokens of sample text printed at each evaluation
    seed: int = 1337
    out: str = "runs"                  # runs are written to <out>/<name>/
    name: str | None = None            # run name; None = <model>-<preset>-<data>
    model_overrides: dict = field(default_factory=dict)  # e.g. {"n_layer": 2}
    init_from: str | None = None       # start from this run or model directory's weights
    objective: str | None = None       # None: the family's own; "mlm+nsp": BERT's pre-training
    distill_from: str | None = None    # causal-LM run(s) to distil ("A" or "A,B": an ensemble)
    distill_temperature: float = 2.0   # T: the softening of both distributions
    distill_alpha: float = 0.5         # weight of the soft (teacher) term; 1 - alpha: hard CE
    prune_to: float = 0.0              # gradual magnitude pruning to this sparsity (0: none)
    prune_start: int | None = None     # its first step; None: 0
    prune_end: int | None = None       # the step it reaches prune_to; None: 3/4 of the steps
    prune_every: int = 10              # steps between two prunings
    prune_scope: str = "global"        # "global" (one threshold) or "layer" (same fraction)
    average: str | None = None         # weight averaging: "swa" (the mean) or "ema"
    ema_decay: float = 0.999           # "ema": w_avg <- decay w_avg + (1 - decay) w
    average_start: int | None = None   # the first step averaged; None: 0 (ema), 3/4 (swa)

    def __post_init__(self):
        if self.warmup_steps is None:
            positive_int("steps", self.steps)
            self.warmup_steps = default_warmup(self.steps)
        choice("model", self.model, family_names())
        if self.tokenizer is None:
            seq2seq = get_family(self.model).objective == "seq2seq"
            self.tokenizer = "word" if seq2seq else "char"
        choice("tokenizer", self.tokenizer, TOKENIZERS)
        choice("schedule", self.schedule, SCHEDULES)
        if not 0 <= self.decay_fraction <= 1:
            raise ValueError(f"decay_fraction={self.decay_fraction} is out of range; "
                             "accepted: 0 <= value <= 1")
        for name in ("steps", "batch_size", "eval_interval", "eval_iters"):
            positive_int(name, getattr(self, name))
        for name in ("warmup_steps", "sample_tokens", "seed"):
            non_negative_int(name, getattr(self, name))
        if self.warmup_steps > self.steps:
            raise ValueError(f"warmup_steps={self.warmup_steps} is more than steps={self.steps}; "
                             "accepted: warmup_steps <= steps")
        if self.block_size is not None:
            positive_int("block_size", self.block_size)
        if self.tokenizer == "bpe" and self.vocab_size < 257:
            raise ValueError(f"vocab_size={self.vocab_size} is too small for byte-level BPE "
                             "(256 byte tokens + merges); accepted: >= 257")
        if not 0 < self.lr <= 1:
            raise ValueError(f"lr={self.lr} is out of range; accepted: 0 < lr <= 1")
        if not 0 <= self.min_lr <= self.lr:
            raise ValueError(f"min_lr={self.min_lr} must be between 0 and lr={self.lr}")
        for name in ("beta1", "beta2", "dropout"):
            if not 0 <= getattr(self, name) < 1:
                raise ValueError(f"{name}={getattr(self, name)} is out of range; "
                                 "accepted: 0 <= value < 1")
        if not 0 < self.val_fraction < 1:
            raise ValueError(f"val_fraction={self.val_fraction} is out of range; "
                             "accepted: 0 < value < 1")
        if not (isinstance(self.distill_temperature, int | float)
                and 0 < self.distill_temperature <= 100):
            raise ValueError(f"temperature={self.distill_temperature} is out of range; "
                             "accepted: 0 < temperature <= 100")
        if not 0 <= self.distill_alpha <= 1:
            raise ValueError(f"alpha={self.distill_alpha} is out of range; accepted: "
                             "0 <= alpha <= 1")
        positive_int("grad_accum", self.grad_accum)
        choice("distributed", self.distributed, DISTRIBUTED_MODES)
        if not self.bucket_mb > 0:
            raise ValueError(f"bucket_mb={self.bucket_mb} must be > 0 (MiB per all-reduce bucket)")
        self._check_pruning()
        self._check_averaging()
        if self.weight_decay < 0 or self.grad_clip < 0:
            raise ValueError("weight_decay and grad_clip must be >= 0, got "
                             f"{self.weight_decay} and {self.grad_clip}")

    def _check_pruning(self) -> None:
        check_sparsity(self.prune_to, "prune_to")
        if not self.prune_to:
            return
        choice("prune_scope", self.prune_scope, SCOPES)
        positive_int("prune_every", self.prune_every)
        if self.prune_start is None:
            self.prune_start = 0
        if self.prune_end is None:
            self.prune_end = max(self.prune_start + 1, round(0.75 * self.steps))
        if not 0 <= self.prune_start < self.prune_end <= self.steps:
            raise ValueError(f"prune_start={self.prune_start}, prune_end={self.prune_end}; "
                             f"accepted: 0 <= prune_start < prune_end <= steps={self.steps}")

    def _check_averaging(self) -> None:
        if self.average is None:
            return
        choice("average", self.average, AVERAGE_MODES)
        if not 0 < self.ema_decay < 1:
            raise ValueError(f"ema_decay={self.ema_decay} is out of range; accepted: "
                             "0 < ema_decay < 1")
        if self.average_start is None:
            self.average_start = 0 if self.average == "ema" else round(0.75 * self.steps)
        if not 0 <= self.average_start < self.steps:
            raise ValueError(f"average_start={self.average_start}; accepted: 0 <= "
                             f"average_start < steps={self.steps}")

    @property
    def decay_steps(self) -> int:
        """Steps of the "wsd" schedule's final decay (after warmup, at least one)."""
        return max(1, min(round(self.decay_fraction * self.steps),
                          self.steps - self.warmup_steps))

    @property
    def run_name(self) -> str:
        if self.name:
            return self.name
        data = _stem(self.data)
        if self.init_from:
            return f"{_stem(self.init_from)}-on-{data}"
        return f"{self.model}-{self.preset}-{data}"

    def to_dict(self) -> dict:
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, d: dict) -> TrainConfig:
        known = {f.name for f in dataclasses.fields(cls)}
        unknown = sorted(set(d) - known)
        if unknown:
            raise ValueError(f"TrainConfig: unknown keys {unknown}; accepted: {sorted(known)}")
        return cls(**d)


def default_warmup(steps: int) -> int:
    """The warmup of a run that names none: 100 steps, or a tenth of a short run."""
    return min(100, steps // 10)


def _stem(path: str) -> str:
    """The last part of a name or path, without its extension."""
    stem = path.replace("\\", "/").rstrip("/").rsplit("/", 1)[-1].split(".")[0]
    return stem.replace(":", "-")           # a task spec such as scan:simple


FREEZE = ("none", "embeddings", "body")
#: How fine-tuning reads a classification task: a head on the model, or the causal LM by
#: Bayes' rule (`task_objectives.GenerativeClassification`).
CLASSIFIERS = ("head", "generative")


@dataclass
class FineTuneConfig(TrainConfig):
    """A fine-tuning run: the weights of `init_from` (a run or model directory) with a task
    head, trained on the labelled task `task` (a name of `tinyllm.tasks.list_tasks()` or
    csv:/jsonl:FILE). Its defaults are those of fine-tuning, not of pre-training."""

    task: str = ""
    freeze: str = "none"               # "embeddings" or "body": keep those weights fixed
    from_scratch: bool = False         # the source's architecture and tokenizer, new weights
    train_examples: int | None = None  # a label budget: this many training examples (None: all)
    epochs: float | None = None        # how `steps` was chosen, when it was (for the record)
    classifier: str = "head"           # "generative": a classification task read by the LM
    prompt: str = "question"           # a causal LM answering questions is asked "question"
    #                                    (Q: ... A:) or "statement" ("Mary is in the")
    pooling: str = "last"              # what a GPT's classification head reads: the "last"
    #                                    token, or the "mean" of all (GPTConfig.classifier_pooling)
    lora_rank: int = 0                 # > 0: train LoRA adapters of this rank, not the body
    lora_alpha: float = 16.0
    lora_targets: list[str] | None = None   # module names (None: the family's attention)
    lr: float = 3e-4
    min_lr: float = 3e-5
    weight_decay: float = 0.01
    eval_interval: int = 50
    dropout: float = 0.1
    sample_tokens: int = 0

    def __post_init__(self):
        if not self.init_from:
            raise ValueError("fine-tuning needs a SOURCE: a run directory or a model directory "
                             "(FineTuneConfig.init_from)")
        if not self.task:
            raise ValueError("fine-tuning needs a task (FineTuneConfig.task); see "
                             "tinyllm.tasks.list_tasks()")
        choice("freeze", self.freeze, FREEZE)
        choice("classifier", self.classifier, CLASSIFIERS)
        choice("prompt", self.prompt, PROMPT_FORMS)
        choice("pooling", self.pooling, CLASSIFIER_POOLING)
        if self.train_examples is not None:
            positive_int("train_examples", self.train_examples)
        non_negative_int("lora_rank", self.lora_rank)
        if self.from_scratch and (self.lora_rank or self.freeze != "none"):
            raise ValueError("from_scratch trains every weight from a random start; drop "
                             "lora_rank and freeze")
        if self.classifier == "generative" and self.freeze == "body":
            raise ValueError("classifier 'generative' trains the language model itself (it has "
                             "no head): freeze='body' would leave nothing to train; use freeze "
                             "'none' or 'embeddings', or lora_rank")
        if self.lora_rank and self.freeze != "none":
            raise ValueError(f"lora_rank={self.lora_rank} already keeps the body fixed; "
                             f"drop freeze={self.freeze!r}")
        super().__post_init__()

    @property
    def run_name(self) -> str:
        if self.name:
            return self.name
        budget = f"-n{self.train_examples}" if self.train_examples else ""
        scratch = "-scratch" if self.from_scratch else ""
        return f"{_stem(self.init_from)}-{_stem(self.task.split(':', 1)[-1])}{budget}{scratch}"


def steps_for_epochs(epochs: float, examples: int, batch_size: int) -> int:
    """Optimizer steps that show `examples` training examples `epochs` times."""
    if not epochs > 0:
        raise ValueError(f"epochs={epochs} must be positive")
    return max(1, math.ceil(epochs * examples / batch_size))
