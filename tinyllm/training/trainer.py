"""The training loop: data -> model -> loss -> backward -> AdamW, with evaluation,
samples, metrics and checkpoints that resume bit for bit.

Shapes: B batch, T block (context) length, V vocabulary.

>>> from tinyllm.training import Trainer, TrainConfig
>>> result = Trainer(TrainConfig(preset="nano", steps=50, out="runs")).train()
>>> result.best_val_loss, result.run_dir
"""

from __future__ import annotations

import math
import os
import signal
import sys
import threading
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from .._io import atomic_write
from .._memory import available_memory_bytes, check_fits, format_bytes
from ..autograd import get_default_dtype, get_rng_state, manual_seed, no_grad, set_rng_state
from ..data import encode_corpus, load_corpus, train_val_split
from ..distributed import (
    GradientBuckets,
    ShardedGradients,
    agree,
    check_agreement,
    fingerprint,
    init_world,
    micro_batches,
    on_all_ranks,
)
from ..models import get_family
from ..nn.prune import GradualPruner
from ..optim import (
    AdamW,
    WarmupCosine,
    WarmupStableDecay,
    clip_grad_norm_,
    param_groups_for_weight_decay,
    scale_group_lrs,
)
from ..optim.swa_utils import AveragedModel
from ..tokenizers import BPETokenizer, CharTokenizer, Tokenizer
from ..tokenizers.word import WordTokenizer
from .checkpoint import CheckpointError, load_checkpoint, save_checkpoint, write_json_atomic
from .config import TrainConfig
from .inference import load_causal_lm
from .interrupt import EXIT_INTERRUPTED, InterruptWatchdog
from .objectives import Distillation, objective_for
from .progress import MetricsLog, Progress
from .rundir import RunLock, check_new_run_dir, clear_run
from .sources import check_encodable, load_source

LAST, BEST, AVERAGE = "last.safetensors", "best.safetensors", "average.safetensors"
#: Settings a resumed run may change besides `steps`: how a step is computed, not its result.
RESUME_MAY_CHANGE = ("grad_accum", "distributed", "bucket_mb", "shard_optimizer")
LN2 = math.log(2.0)


class _StepInterrupted(BaseException):
    """Raised by the signal handler inside a step's forward/backward pass (a BaseException,
    so no `except Exception` on the way swallows it)."""


class TrainingError(RuntimeError):
    """A run that cannot go on (a NaN loss, an unusable resume directory)."""


@dataclass
class TrainResult:
    """How a `train()` call ended."""

    run_dir: Path
    step: int
    status: str                      # "finished", "interrupted" or "stopped"
    best_val_loss: float
    last_eval: dict | None
    elapsed_s: float
    sample: str | None = None


def unigram_entropy(ids: np.ndarray, vocab_size: int) -> float:
    """Entropy in nats of the token frequencies: the loss of a model that ignores context."""
    counts = np.bincount(np.asarray(ids, dtype=np.int64), minlength=vocab_size)
    p = counts[counts > 0] / counts.sum()
    return float(-(p * np.log(p)).sum())


class Trainer:
    """One training run in `<config.out>/<run name>/`.

    Start one with `Trainer(config)`, continue one with `Trainer.resume(run_dir)`; then
    `train()`. A new run refuses a directory that holds a run (unless `overwrite`) and, before
    anything is allocated, a step that would not fit in memory (unless not `check_memory`).
    SIGINT (Ctrl-C) and SIGTERM save the last complete step and return cleanly.
    """

    config_class = TrainConfig        # what a resumed run's saved settings are read as

    def __new__(cls, config=None, *args, **kwargs):
        # An encoder-decoder trains on pairs, not on a token stream: `Trainer(config)` of one
        # (and `Trainer.resume` of its run) is a TranslationTrainer.
        if cls is Trainer and isinstance(config, TrainConfig) and \
                get_family(config.model).objective == "seq2seq":
            from .translation import TranslationTrainer
            cls = TranslationTrainer
        return super().__new__(cls)

    def __init__(self, config: TrainConfig, *, quiet: bool = False, stream=None,
                 overwrite: bool = False, check_memory: bool = True,
                 _checkpoint: tuple[dict, dict] | None = None, run_dir: Path | None = None):
        self.config = config
        # One process, or this process's rank of an MPI job (data parallel): every rank
        # computes, rank 0 alone prints and writes.
        self.world = init_world(config.distributed)
        error = None
        try:
            self._construct(config, quiet, stream, overwrite, check_memory, _checkpoint,
                            run_dir)
        except Exception as exc:        # raised on every rank, or no rank would return
            error = exc
        agree(self.world, error)
        self.buckets = self._data_parallel_setup()

    def _construct(self, config, quiet, stream, overwrite, check_memory, _checkpoint,
                   run_dir) -> None:
        """Everything a rank builds alone: data, tokenizer, model, optimizer, restored state."""
        _check_split(config.batch_size, self.world.size, config.grad_accum)
        self.run_dir = Path(run_dir) if run_dir else Path(config.out) / config.run_name
        self.stream = stream
        self.quiet = quiet
        self.overwrite = overwrite
        self._stop_signal: str | None = None
        self._in_step = False
        self._update_lock = threading.Lock()
        self._pre_step: tuple[dict, dict] | None = None
        # Seconds a signal may wait for a step stuck in one long NumPy/BLAS/compiled call
        # before the watchdog saves the last complete step and ends the process.
        self.interrupt_grace_s = 3.0
        self.memory_note = "memory not checked"
        resuming = _checkpoint is not None
        self._owns_run_dir = resuming     # a new run claims its directory when it starts
        if not resuming:
            check_new_run_dir(self.run_dir, overwrite)
        manual_seed(config.seed)
        self._prepare(_checkpoint[1] if resuming else None, check_memory)
        groups = scale_group_lrs(param_groups_for_weight_decay(self.model, config.weight_decay),
                                 _lr_multipliers(self.model), config.lr)
        self.optimizer = AdamW(groups, lr=config.lr, betas=(config.beta1, config.beta2))
        self.scheduler = self._make_scheduler()
        self.step = 0
        self.best_val_loss = math.inf
        self.last_eval: dict | None = None
        self.metrics = (MetricsLog(self.run_dir / "metrics.jsonl") if self.world.is_main
                        else _NoMetrics())
        self.schedule_note: str | None = None
        if resuming:
            self._restore(*_checkpoint)
        self.pruner = (GradualPruner(self.model, config.prune_to, config.prune_start,
                                     config.prune_end, config.prune_every, config.prune_scope)
                       if config.prune_to else None)
        self.averaged = (AveragedModel(self.model, config.average, config.ema_decay)
                         if config.average else None)
        if self.averaged and resuming:
            self._restore_average(*_checkpoint)

    # ----------------------------------------------------------------- construction
    def _prepare(self, meta: dict | None, check_memory: bool) -> None:
        """Data, tokenizer, model and batcher of a language-model run (a subclass that
        trains on something else overrides this): corpus -> ids -> splits -> model."""
        config, resuming = self.config, meta is not None
        self.family = get_family(config.model)
        self.objective = objective_for(self.family, config.objective)
        source = self._source() if config.init_from and not resuming else None
        self.corpus = load_corpus(config.data)
        teachers = self._teachers() if config.distill_from else []
        self.tokenizer = (Tokenizer.from_dict(meta["tokenizer"]) if resuming
                          else source.tokenizer if source
                          else teachers[0][2] if teachers else self._train_tokenizer())
        config.tokenizer = self.tokenizer.type_name   # a source's or teacher's, if it has one
        if teachers:
            for teacher in teachers:
                self._check_teacher(*teacher)
            self.objective = Distillation(self.objective, [t[1] for t in teachers],
                                          config.distill_temperature, config.distill_alpha)
        # (ranks may write the token cache at once: each writes a temporary file and renames)
        ids = encode_corpus(self.corpus, self.tokenizer,
                            cache_dir=self.run_dir.parent / ".cache")
        if source:
            check_encodable(self.tokenizer, ids, self.corpus.text, f"the corpus {config.data!r}",
                            source.path)
        self.train_ids, self.val_ids = train_val_split(ids, config.val_fraction)
        model_config = self._model_config(meta["model_config"] if resuming else None, source)
        self.block_size = self._block_size(model_config)
        for path, teacher, _ in teachers:
            if self.block_size > teacher.config.block_size:
                raise ValueError(f"--distill-from {path}: the teacher reads at most "
                                 f"{teacher.config.block_size} positions, but this run's "
                                 f"windows are {self.block_size}; use --block-size "
                                 f"{teacher.config.block_size} or less")
        if check_memory:
            self._check_memory(model_config)
        self._check_splits()
        self.model = self._model_class()(model_config, seed=config.seed)
        if source:
            self.model.load_state_dict(source.state, strict=self.objective.name ==
                                       self.family.objective)
        self.batcher = self._batcher(self.train_ids, config.seed)
        self.chars_per_token = self._chars_per_token()
        self.unigram_nats = unigram_entropy(self.train_ids, self.tokenizer.vocab_size)

    def _data_parallel_setup(self) -> GradientBuckets | ShardedGradients | None:
        """Gradient buckets when a step sums several gradients (micro-batches, ranks) -- the
        ZeRO-1 kind with --shard-optimizer -- after checking that every rank runs the same
        settings, version and weights; rank 0's weights are then broadcast. None for one
        process without accumulation."""
        c, world = self.config, self.world
        if c.shard_optimizer and world.size == 1:
            raise on_all_ranks(ValueError(
                "--shard-optimizer splits AdamW's state over the ranks of an MPI job, and "
                "this is one process; start it with mpiexec -n N (pip install \".[mpi]\")"))
        if world.size * c.grad_accum == 1:
            return None
        if world.size > 1:
            from .. import __version__

            check_agreement(world, "the tinyllm version and the run's settings",
                            fingerprint(__version__, sorted(c.to_dict().items()), self.step))
            state = self.model.state_dict()
            check_agreement(world, "the model's starting weights",
                            fingerprint(*(state[k] for k in sorted(state))))
            for p in self.model.parameters():
                world.broadcast_(p.data)
        if c.shard_optimizer:
            sharded = ShardedGradients(self.model.parameters(), world)
            owned = {id(p) for p in sharded.owned}
            for p in list(self.optimizer.state):         # a resumed run loaded them all
                if id(p) not in owned:
                    del self.optimizer.state[p]
            return sharded
        return GradientBuckets(self.model.parameters(), c.bucket_mb)

    def _train_tokenizer(self) -> Tokenizer:
        if self.config.tokenizer == "char":
            return CharTokenizer().train(self.corpus.text)
        if self.config.tokenizer == "word":
            return WordTokenizer().train(self.corpus.text)
        return BPETokenizer().train(self.corpus.text, vocab_size=self.config.vocab_size)

    def _model_class(self) -> type:
        """The family's model, or the head an objective variant trains (BERT's pretraining)."""
        head = getattr(self.objective, "head", None)
        return self.family.head(head) if head else self.family.model_class

    def _source(self):
        """The run or model directory of --init-from, of this run's model family."""
        source = load_source(self.config.init_from)
        if source.family is not self.family:
            raise ValueError(f"--init-from {source.path} holds a {source.family.name} model, "
                             f"but this run trains a {self.family.name}; drop --model, or pass "
                             f"--model {source.family.name}")
        return source

    def _teachers(self) -> list[tuple[str, object, Tokenizer]]:
        """(path, model, tokenizer) of each --distill-from run (comma-separated: an
        ensemble), each a causal language model."""
        if self.objective.name != "causal-lm":
            raise ValueError(f"--distill-from trains a causal language model (gpt, lstm); "
                             f"this run trains a {self.config.model} ({self.objective.name})")
        paths = [p for p in self.config.distill_from.split(",") if p]
        return [(path, *load_causal_lm(path, "--distill-from")[:2]) for path in paths]

    def _check_teacher(self, path: str, teacher, teacher_tokenizer) -> None:
        """A teacher must read and score the student's tokens: the same tokenizer."""
        if teacher_tokenizer.to_dict() != self.tokenizer.to_dict():
            mine, theirs = self.tokenizer, teacher_tokenizer
            raise ValueError(
                f"--distill-from {path}: the teacher's tokenizer "
                f"({type(theirs).__name__}, {theirs.vocab_size} tokens) differs from this "
                f"run's ({type(mine).__name__}, {mine.vocab_size} tokens); a student learns "
                "the teacher's distribution over its tokens, so they must be the same "
                "(without --init-from the student takes the teacher's tokenizer)")

    def _model_config(self, saved_config: dict | None, source=None):
        c, family = self.config, self.family
        if saved_config is not None:
            return family.config_from_dict(saved_config)
        if source is not None:   # its architecture, with this run's dropout and context
            changes = {name: c.dropout for name in family.dropout_fields}
            return source.config.replace(**changes, **c.model_overrides)
        return family.make_config(
            c.preset, vocab_size=self.tokenizer.vocab_size, block_size=c.block_size,
            dropout=c.dropout, tokenizer=self.tokenizer, **c.model_overrides)

    def _block_size(self, model_config) -> int:
        context = model_config.block_size
        block = self.config.block_size or context
        if block > context:
            raise ValueError(f"block_size={block} is larger than the model's context of "
                             f"{context} positions; use --block-size {context} or less")
        return block

    def _make_scheduler(self):
        c = self.config
        # a group trained at lr * factor (muP) decays to min_lr * factor
        min_lr = [c.min_lr * g.get("lr_multiplier", 1.0) for g in self.optimizer.param_groups]
        if c.schedule == "wsd":
            return WarmupStableDecay(self.optimizer, c.warmup_steps, c.steps, min_lr,
                                     decay_steps=c.decay_steps)
        return WarmupCosine(self.optimizer, warmup_steps=c.warmup_steps, total_steps=c.steps,
                            min_lr=min_lr)

    def _check_splits(self) -> None:
        """Both splits must hold a window of the block size: say so before any step."""
        need = self.objective.min_tokens(self.block_size)
        for split, ids in (("training", self.train_ids), ("validation", self.val_ids)):
            if len(ids) < need:
                raise ValueError(
                    f"the {split} split of {self.config.data!r} has {len(ids):,} tokens "
                    f"(val_fraction={self.config.val_fraction}), but one window of "
                    f"block_size={self.block_size} needs {need:,}; use more text, a "
                    f"{'larger' if split == 'validation' else 'smaller'} --val-fraction or a "
                    "smaller --block-size")

    def _check_memory(self, model_config) -> None:
        """Refuse, before anything is allocated, a step that would not fit in memory."""
        c = self.config
        itemsize = get_default_dtype().itemsize
        need = model_config.train_memory_bytes(c.batch_size, self.block_size, itemsize)
        self.memory_note = f"a step needs about {format_bytes(need)}" + (
            f" of the {format_bytes(available)} available"
            if (available := available_memory_bytes()) else "")
        check_fits(need, f"a training step of this {c.model} ({model_config.param_count():,} "
                   f"parameters) at batch {c.batch_size} x block {self.block_size}",
                   "use a smaller --preset, --batch-size or --block-size (or "
                   "--ignore-memory-check to try anyway)")

    def _batcher(self, ids, seed: int):
        return self.objective.batcher(ids, self.tokenizer, self.config.batch_size,
                                      self.block_size, seed)

    def _chars_per_token(self) -> float:
        """Characters per token on the validation split (1 for characters as tokens)."""
        sample = np.asarray(self.val_ids[:200_000])
        return len(self.tokenizer.decode(sample)) / max(len(sample), 1)

    # ----------------------------------------------------------------- resume
    @classmethod
    def resume(cls, run_dir, *, steps: int | None = None, quiet: bool = False,
               stream=None, check_memory: bool = True, **how) -> Trainer:
        """Continue the run in `run_dir` from its last checkpoint (optionally to more steps).

        `how` may change how steps are computed, not what they compute: `grad_accum`,
        `distributed`, `bucket_mb` (a run resumes on any rank count that divides its batch).
        """
        run_dir = Path(run_dir)
        if not run_dir.is_dir():
            raise CheckpointError(f"cannot resume: {run_dir} is not a directory")
        arrays, meta = load_checkpoint(run_dir / LAST)
        try:
            config = cls.config_class.from_dict(meta["train_config"])
        except (KeyError, TypeError, ValueError) as exc:
            raise CheckpointError(f"{run_dir / LAST}: unusable train_config ({exc})") from None
        if steps is not None:
            if steps < meta["step"]:
                raise ValueError(f"--steps {steps} is fewer than the {meta['step']} steps "
                                 f"already done in {run_dir}")
            config = cls.config_class.from_dict({**config.to_dict(), "steps": steps})
        unknown = sorted(set(how) - set(RESUME_MAY_CHANGE))
        if unknown:
            raise TypeError(f"resume() got {unknown}; besides steps it accepts "
                            f"{', '.join(RESUME_MAY_CHANGE)}")
        given = {k: v for k, v in how.items() if v is not None}
        if given:
            config = cls.config_class.from_dict({**config.to_dict(), **given})
        return cls(config, quiet=quiet, stream=stream, check_memory=check_memory,
                   _checkpoint=(arrays, meta), run_dir=run_dir)

    def _restore(self, arrays: dict, meta: dict) -> None:
        where = self.run_dir / LAST
        try:
            weights = {k[len("model."):]: v for k, v in arrays.items() if k.startswith("model.")}
            self.model.load_state_dict(weights)
            optim_state = meta["optimizer"]
            for key, value in arrays.items():
                if key.startswith("optim."):
                    _, index, name = key.split(".", 2)
                    optim_state["state"][index][name] = value
            self.optimizer.load_state_dict(optim_state)
            self.scheduler.load_state_dict(meta["scheduler"])
            self.batcher.load_state_dict(meta["batcher"])
            set_rng_state(meta["rng"])
            self.step = int(meta["step"])
            self.best_val_loss = float(meta["best_val_loss"])
            self.last_eval = meta.get("last_eval")
        except (KeyError, TypeError, ValueError, IndexError) as exc:
            raise CheckpointError(f"{where} does not fit this run ({type(exc).__name__}: "
                                  f"{exc})") from None
        self._extend_schedule()
        self.metrics.truncate_after(self.step)

    def _extend_schedule(self) -> None:
        """Give the schedule the run's (possibly larger) --steps, and say whether the run
        still continues exactly as one planned that long from the start."""
        old_total, new_total = self.scheduler.total_steps, self.config.steps
        if new_total == old_total:
            return
        old_lr = self.scheduler.get_last_lr()[0]
        exact = (self.config.schedule == "wsd"
                 and self.step < old_total - self.scheduler.decay_steps)
        self.scheduler.total_steps = new_total
        if self.config.schedule == "wsd":
            self.scheduler.decay_steps = self.config.decay_steps
        self.scheduler.refresh()
        self.schedule_note = (
            f"--steps {new_total}: the learning-rate schedule now ends at step {new_total}; "
            + ("the run continues exactly as one planned for that many steps (its decay had "
               "not begun)" if exact else
               f"the rate of step {self.step + 1} moves from {old_lr:.3g} to "
               f"{self.scheduler.get_last_lr()[0]:.3g}, so the run differs from one planned "
               f"for {new_total} steps from the start (train with --schedule wsd to extend "
               "runs exactly)"))

    # ----------------------------------------------------------------- checkpoints
    def save(self, name: str = LAST, pre_step: tuple[dict, dict] | None = None) -> Path:
        """Write a checkpoint of everything the run needs to continue exactly.

        `pre_step` = (batcher state, RNG state) taken before a step that is still running:
        the checkpoint is then the last complete step (the step's update has not happened).
        """
        optim_state = self._optimizer_state()    # (with ZeRO: gathered from every rank)
        if not self.world.is_main:
            return self.run_dir / name     # rank 0 writes the run's files
        batcher_state, rng_state = pre_step or (self.batcher.state_dict(), get_rng_state())
        arrays = {f"model.{k}": v for k, v in self.model.state_dict().items()}
        if self.averaged:
            arrays.update({f"average.{k}": v
                           for k, v in self.averaged.module.state_dict().items()})
        for index, state in optim_state["state"].items():
            for key in [k for k, v in state.items() if isinstance(v, np.ndarray)]:
                arrays[f"optim.{index}.{key}"] = state.pop(key)
        meta = {
            **self._model_meta(), "optimizer": _jsonable(optim_state),
            "scheduler": self.scheduler.state_dict(), "batcher": batcher_state,
            "rng": rng_state, "best_val_loss": self.best_val_loss, "last_eval": self.last_eval,
        }
        if self.averaged:
            meta["n_averaged"] = self.averaged.n_averaged
        return save_checkpoint(self.run_dir / name, arrays, meta)

    def _optimizer_state(self) -> dict:
        """The optimizer's state dict; with a sharded optimizer every rank's slice is sent to
        rank 0, so a checkpoint is the same whatever the ranks and resumes on any."""
        state = self.optimizer.state_dict()
        if not isinstance(self.buckets, ShardedGradients):
            return state
        slices = self.world.gather_to_main(state["state"])
        if slices is not None:
            state["state"] = {k: v for part in slices for k, v in part.items()}
        return state

    def save_average(self) -> Path:
        """average.safetensors: the averaged weights as a checkpoint that `load_run(run,
        "average")` (and `tinyllm eval/generate --checkpoint average`) read."""
        arrays = {f"model.{k}": v for k, v in self.averaged.module.state_dict().items()}
        meta = {**self._model_meta(), "n_averaged": self.averaged.n_averaged}
        return save_checkpoint(self.run_dir / AVERAGE, arrays, meta)

    def _model_meta(self) -> dict:
        """What every checkpoint says about the model (what `load_run` rebuilds it from)."""
        return {"step": self.step, "train_config": self.config.to_dict(),
                "model_type": self.config.model, "model_config": self.model.config.to_dict(),
                "tokenizer": self.tokenizer.to_dict(), **self._checkpoint_extras()}

    def _restore_average(self, arrays: dict, meta: dict) -> None:
        weights = {k[len("average."):]: v for k, v in arrays.items() if k.startswith("average.")}
        if not weights:
            raise CheckpointError(f"{self.run_dir / LAST} has no averaged weights, but the run "
                                  f"averages them (--average {self.config.average})")
        self.averaged.module.load_state_dict(weights)
        self.averaged.n_averaged = int(meta.get("n_averaged", 0))

    # ----------------------------------------------------------------- evaluation
    @no_grad()
    def evaluate(self) -> dict:
        """Mean loss on fixed train and validation batches, with perplexity and bits."""
        self.model.eval()
        try:
            train_loss = self._mean_loss(self.train_ids)
            val_loss = self._mean_loss(self.val_ids)
        finally:
            self.model.train()
        bits_per_token = val_loss / LN2
        record = {"step": self.step, "kind": "eval", "train_loss": train_loss,
                  "val_loss": val_loss, "val_ppl": math.exp(min(val_loss, 700.0)),
                  "val_bits_per_token": bits_per_token,
                  "val_bits_per_char": bits_per_token / self.chars_per_token}
        if self.averaged and self.averaged.n_averaged:
            record["avg_val_loss"] = self._mean_loss(self.val_ids, self.averaged.module.eval())
        return record

    def _mean_loss(self, ids, model=None) -> float:
        c, model = self.config, self.model if model is None else model
        # A fixed seed: every evaluation sees the same batches (and masks).
        batches = self.objective.eval_batches(ids, self.tokenizer, c.batch_size,
                                              self.block_size, c.eval_iters, seed=c.seed + 1)
        loss = getattr(self.objective, "eval_loss", self.objective.loss)
        if self.world.size == 1:
            return float(np.mean([loss(model, b).item() for b in batches]))
        rank, size = self.world.rank, self.world.size
        mine = [loss(model, b).item() for i, b in enumerate(batches) if i % size == rank]
        total, count = self.world.sum([sum(mine), len(mine)])       # every rank: all batches
        return float(total / count)

    def sample(self, n_tokens: int | None = None) -> str:
        """A short text from the model, seeded by the step (it never disturbs training)."""
        c = self.config
        n = c.sample_tokens if n_tokens is None else n_tokens
        if n == 0 or not self.world.is_main:
            return ""
        return self.objective.sample(self.model, self.tokenizer, self.val_ids, n,
                                     c.batch_size, self.block_size, seed=c.seed + self.step)

    # ----------------------------------------------------------------- the loop
    def train(self, until: int | None = None) -> TrainResult:
        """Train to `config.steps` (or stop early at step `until`), evaluating and saving
        every `eval_interval` steps. Returns how the run ended."""
        if not self.world.is_main:
            self.world.barrier()            # rank 0 has claimed the run directory
            return self._train(until)
        self.run_dir.mkdir(parents=True, exist_ok=True)
        with RunLock(self.run_dir):
            self._claim_run_dir()
            self.world.barrier()
            return self._train(until)

    def _claim_run_dir(self) -> None:
        """A new run checks again, under the lock, that no other run landed there meanwhile."""
        if not self._owns_run_dir:
            check_new_run_dir(self.run_dir, self.overwrite)
            if self.overwrite:
                clear_run(self.run_dir)
            self._owns_run_dir = True

    def _train(self, until: int | None) -> TrainResult:
        c = self.config
        if self.world.is_main:
            atomic_write(self.run_dir / "tokenizer.json", self.tokenizer.to_json())
            write_json_atomic(self.run_dir / "train_config.json", c.to_dict())
        until = c.steps if until is None else min(until, c.steps)
        progress = Progress(total=c.steps, initial=self.step,
                            quiet=self.quiet or not self.world.is_main, stream=self.stream)
        self._announce(progress)
        start, status, sample = time.perf_counter(), "finished", None
        previous = self._install_signal_handlers()
        watchdog = InterruptWatchdog(self._stop_now, self.interrupt_grace_s)
        if self.world.size == 1:     # ranks stop together, between steps (see the handler)
            watchdog.start()
        try:
            while self.step < until:
                t0 = time.perf_counter()
                loss = self._interruptible_step()
                if loss is None:        # a signal arrived inside the step: it was undone
                    status = "interrupted"
                    self.save(LAST)
                    progress.write(self._interrupted_message())
                    break
                if not math.isfinite(loss):
                    status = "stopped"
                    progress.write(f"loss became {loss} at step {self.step + 1}; stopping. The "
                                   f"last good checkpoint is {self.run_dir / LAST} (step "
                                   f"{self._saved_step()}); lower --lr or raise --warmup-steps.")
                    break
                self.step += 1
                tokens = c.batch_size * self.block_size
                self.metrics.append({"step": self.step, "kind": "train", "loss": loss,
                                     "lr": self.scheduler.get_last_lr()[0],
                                     "tokens": self.step * tokens})
                progress.update(loss, tokens / max(time.perf_counter() - t0, 1e-9))
                if self.step % c.eval_interval == 0 or self.step == c.steps:
                    sample = self._evaluate_and_save(progress)
                if self._stop_agreed():
                    status = "interrupted"
                    self.save(LAST)
                    progress.write(self._interrupted_message())
                    break
            if status == "finished" and self.step == until and self.step % c.eval_interval:
                self.save(LAST)  # stopped early (`until`): keep the exact state
        finally:
            watchdog.stop()
            self._restore_signal_handlers(previous)
            progress.close()
        if status == "finished" and self.step == c.steps and self.world.is_main:
            self.export_model()
        return TrainResult(self.run_dir, self.step, status, self.best_val_loss, self.last_eval,
                           time.perf_counter() - start, sample)

    def _interruptible_step(self) -> float | None:
        """One step, or None when SIGINT/SIGTERM arrived during its forward or backward pass:
        then the step is undone (the batch and the random state go back to where they were),
        so the checkpoint saved next is exactly the last complete step."""
        self._pre_step = (self.batcher.state_dict(), get_rng_state())
        try:
            return self._train_step()
        except _StepInterrupted:
            self._in_step = False
            self.optimizer.zero_grad()
            self.batcher.load_state_dict(self._pre_step[0])
            set_rng_state(self._pre_step[1])
            return None

    def _train_step(self) -> float:
        self._in_step = True      # a signal now interrupts the step (see the handler)
        try:
            if self.buckets is None:
                loss = self.objective.loss(self.model, next(self.batcher))
                value = loss.item()
                if math.isfinite(value):
                    self.optimizer.zero_grad()
                    loss.backward()
            else:
                value = self._accumulate_gradients(next(self.batcher))
        finally:
            with self._update_lock:   # the watchdog acts only while _in_step holds
                self._in_step = False
        if math.isfinite(value):
            self._update()
        return value

    def _accumulate_gradients(self, batch) -> float:
        """This rank's micro-batches of the global `batch`: their gradients summed into the
        buckets, then over the ranks, scaled to the mean. Returns the mean loss over every
        micro-batch of every rank (NaN on every rank when any was not finite: the step is
        then skipped everywhere)."""
        c, world = self.config, self.world
        self.buckets.zero_()
        total = 0.0
        for micro in micro_batches(batch, world.rank, world.size, c.grad_accum):
            loss = self.objective.loss(self.model, micro)
            value = loss.item()
            total += value
            if math.isfinite(value):
                self.optimizer.zero_grad()
                loss.backward()
                self.buckets.accumulate()
        total = float(world.sum([total])[0]) if world.size > 1 else total
        parts = world.size * c.grad_accum
        if math.isfinite(total):
            self.buckets.reduce_(world, 1.0 / parts)
        return total / parts

    def _update(self) -> None:
        """Clip, step the optimizer and the schedule (and the pruner and average)."""
        c = self.config
        sharded = isinstance(self.buckets, ShardedGradients)
        with self._update_lock:   # the update is never cut in half
            if c.grad_clip > 0 and sharded:
                self.buckets.clip_grad_norm_(c.grad_clip)
            elif c.grad_clip > 0:
                clip_grad_norm_(self.model.parameters(), c.grad_clip)
            self.optimizer.step()
            if sharded:              # each rank updated its slice: now every rank has all
                self.buckets.gather_parameters()
            self.scheduler.step()
            if self.pruner:
                self.pruner.after_step(self.step + 1)
            if self.averaged and self.step + 1 > c.average_start:
                self.averaged.update_parameters(self.model)

    def _stop_agreed(self) -> bool:
        """Whether to stop after this step: a signal arrived (on any rank, when there are
        several: they agree, so that every rank stops after the same step)."""
        if self.world.size == 1:
            return self._stop_signal is not None
        if not self.world.sum([self._stop_signal is not None])[0]:
            return False
        signals = self.world.gather(self._stop_signal)
        rank = next(r for r, name in enumerate(signals) if name)
        self._stop_signal = f"{signals[rank]} on rank {rank}"
        return True

    def _evaluate_and_save(self, progress: Progress) -> str:
        record = self.evaluate()
        record["lr"] = self.scheduler.get_last_lr()[0]
        self.metrics.append(record)
        self.last_eval = record
        improved = record["val_loss"] < self.best_val_loss
        if improved:
            self.best_val_loss = record["val_loss"]
        self.save(LAST)
        if improved:
            self.save(BEST)
        if self.averaged and self.averaged.n_averaged:
            self.save_average()
        sample = self.sample()
        progress.write(f"step {self.step:>6d} | train {record['train_loss']:.4f} | val "
                       f"{record['val_loss']:.4f} | {self._eval_summary(record)}"
                       + (f" | {self.config.average} val {record['avg_val_loss']:.4f}"
                          if "avg_val_loss" in record else "")
                       + (" | best" if improved else ""))
        if sample:
            progress.write("  sample: " + sample.replace("\n", "\n          ")[:1000])
        return sample

    def summary(self, result: TrainResult) -> str:
        """What `tinyllm train` prints when a run has finished."""
        ev, c = result.last_eval or {}, self.config
        lines = [f"done: {result.step} steps in {result.elapsed_s:.0f} s | val loss "
                 f"{ev.get('val_loss', float('nan')):.4f} nats/token (unigram entropy "
                 f"{self.unigram_nats:.4f}) | {ev.get('val_bits_per_char', float('nan')):.3f} "
                 f"bits/char, on the first {c.eval_iters} batches of the validation split "
                 f"(tinyllm eval measures all of it)"]
        if result.sample:
            lines.append("sample:\n" + result.sample)
        lines.append(f"saved to {result.run_dir}/ (model/, best.safetensors, last.safetensors, "
                     f"metrics.jsonl). Next: tinyllm generate {result.run_dir}")
        return "\n".join(lines)

    def _eval_summary(self, record: dict) -> str:
        """What an evaluation line shows after the losses."""
        return f"ppl {record['val_ppl']:.2f} | {record['val_bits_per_char']:.3f} bits/char"

    def _checkpoint_extras(self) -> dict:
        """Entries a subclass adds to every checkpoint's metadata (and the head a variant
        objective trains, so that load_run rebuilds it)."""
        head = getattr(self.objective, "head", None)
        return {"head": head} if head else {}

    def export_model(self) -> Path:
        """Save the best weights as a model directory (config.json + model.safetensors)."""
        source = self.run_dir / (BEST if (self.run_dir / BEST).exists() else LAST)
        arrays, _ = load_checkpoint(source)
        model = type(self.model)(self.model.config)
        model.load_state_dict({k[6:]: v for k, v in arrays.items() if k.startswith("model.")})
        return model.save(self.run_dir / "model")

    def _announce(self, progress: Progress) -> None:
        c, n = self.config, self.model.num_params()
        verb = "resuming at step " + str(self.step) if self.step else "training"
        what = f"from {c.init_from}" if c.init_from else f"'{c.preset}'"
        progress.write(
            f"{verb}: {c.model} {what} ({n:,} parameters) on '{c.data}' "
            f"({len(self.train_ids):,} train / {len(self.val_ids):,} val tokens, {c.tokenizer} "
            f"tokenizer, V={self.tokenizer.vocab_size}); unigram entropy "
            f"{self.unigram_nats:.3f} nats/token; {self.memory_note}; run dir {self.run_dir}")
        if self.schedule_note:
            progress.write(self.schedule_note)

    def _saved_step(self) -> int | str:
        try:
            return load_checkpoint(self.run_dir / LAST)[1]["step"]
        except CheckpointError:
            return "none yet"

    # ----------------------------------------------------------------- signals
    def _stop_now(self, signal_name: str) -> None:
        """Called by the watchdog when a signal has waited `interrupt_grace_s` for a step stuck
        in one long computation: save the last complete step and end the process."""
        if not self._update_lock.acquire(blocking=False):
            return                  # the step is updating: the handler will act after it
        try:
            if not self._in_step:
                return              # the step ended: the handler acts (or has acted)
            self._stop_signal = self._stop_signal or signal_name
            self.save(LAST, pre_step=self._pre_step)
            sys.stderr.write(f"\n{self._interrupted_message()} (the step in progress was "
                             "inside one long computation and was abandoned)\n")
            sys.stderr.flush()
            os._exit(EXIT_INTERRUPTED)
        finally:
            self._update_lock.release()

    def _interrupted_message(self) -> str:
        return (f"{self._stop_signal} received: saved step {self.step} to "
                f"{self.run_dir / LAST}. Resume with: tinyllm train --resume {self.run_dir}")

    def _install_signal_handlers(self) -> dict:
        previous = {}

        def handler(signum, frame):
            self._stop_signal = signal.Signals(signum).name
            # A long forward/backward: stop now, not after the step -- on one process only;
            # ranks would wait for each other forever, so they finish the step together.
            if self._in_step and self.world.size == 1:
                self._in_step = False
                raise _StepInterrupted

        for sig in (signal.SIGINT, signal.SIGTERM):
            try:
                previous[sig] = signal.signal(sig, handler)
            except ValueError:  # not the main thread: leave the handlers alone
                pass
        return previous

    @staticmethod
    def _restore_signal_handlers(previous: dict) -> None:
        for sig, old in previous.items():
            signal.signal(sig, old)


def _lr_multipliers(model) -> dict[str, float]:
    """The model's per-parameter learning-rate factors (muP's; {} for a model without)."""
    multipliers = getattr(model, "lr_multipliers", None)
    return multipliers() if callable(multipliers) else {}


def _check_split(batch_size: int, ranks: int, accum: int) -> None:
    """A step's rows must split evenly into ranks x micro-batches."""
    parts = ranks * accum
    if batch_size % parts:  # the same on every rank
        below, above = (batch_size // parts) * parts, (batch_size // parts + 1) * parts
        raise ValueError(f"--batch-size {batch_size} cannot be split into {ranks} rank"
                         f"{'s' if ranks > 1 else ''} x {accum} micro-batches of equal rows; "
                         f"use --batch-size {f'{below} or ' if below else ''}{above}")


class _NoMetrics:
    """The metrics log of a rank other than 0: rank 0 writes the run's metrics.jsonl."""

    def append(self, record: dict) -> None:
        pass

    def truncate_after(self, step: int) -> None:
        pass


def _jsonable(obj):
    """Convert NumPy scalars and tuples inside an optimizer state dict to JSON types."""
    if isinstance(obj, dict):
        return {str(k): _jsonable(v) for k, v in obj.items()}
    if isinstance(obj, list | tuple):
        return [_jsonable(v) for v in obj]
    if isinstance(obj, np.generic):
        return obj.item()
    return obj
