"""The scaling study's runs: plan them from a budget, run them (two at a time), keep every one.

Three sweeps per corpus, plus one capability sweep:

- ``size``: every ladder rung for the same number of tokens (loss vs parameters, L(N)); each
  run also logs its validation loss every few steps (loss vs tokens seen, L(N, D)).
- ``isoflop``: for each compute budget C, five rungs, each trained for C / (FLOPs per token)
  tokens (Chinchilla's Approach 2: the minimum of each IsoFLOP curve is the compute-optimal
  size).
- ``task``: every rung trained on a generated task (``tasks.RecallTask``: recall of
  facts) and scored by exact-match accuracy.

A run's compute is ``C = flops_per_token(training=True, seq_len=block) * tokens``, attention and
the output head included; ``6 N D`` (N non-embedding) is recorded beside it for comparison.

Results directory (tidy CSV, one row per run; all numbers per token in nats and bits)::

    study.json     schema, tinyllm version, budget settings, corpora (size, hash, entropy rate)
    size.csv  isoflop.csv  task.csv      one row per finished run
    curves.csv     (run, tokens, loss) from every evaluation of every run
    _work/         scratch run directories while they train (removed when a run finishes)

Each finished run is written at once (the CSV is rewritten to a temporary file and renamed
over the old one), so a crash or Ctrl-C loses only the runs still training; running the same
study again skips what is done.

>>> plan = plan_study(BUDGETS["tiny"], ["markov"])
>>> sorted({spec.sweep for spec in plan.specs})
['isoflop', 'size', 'task']
"""

from __future__ import annotations

import contextlib
import csv
import dataclasses
import hashlib
import json
import math
import os
import shutil
import time
import traceback
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np

from .._io import atomic_write
from .._memory import peak_rss_mib
from .ladder import Rung, check_fits_in_memory, make_ladder
from .tasks import make_task

SCHEMA = "tinyllm-scaling/1"
SWEEPS = ("size", "isoflop", "task")
LN2 = math.log(2.0)
#: Environment variables that size the BLAS / OpenMP thread pools; read when NumPy loads.
THREAD_VARS = ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS",
               "BLIS_NUM_THREADS", "VECLIB_MAXIMUM_THREADS", "NUMEXPR_NUM_THREADS")

RUN_COLUMNS = (
    "run_id", "sweep", "corpus", "rung", "n_layer", "n_head", "n_embd", "vocab_size",
    "block_size", "batch_size", "steps", "lr", "params", "non_embedding_params", "tokens",
    "flops_per_token", "flops", "flops_6n", "flops_budget", "train_loss_nats", "val_loss_nats",
    "train_loss_bits", "val_loss_bits", "val_bits_per_char", "entropy_rate_nats",
    "unigram_nats", "accuracy", "task", "wall_s", "setup_s", "tokens_per_s", "peak_rss_mb",
    "base_rss_mb", "threads", "seed", "version", "schema",
)
CURVE_COLUMNS = ("run_id", "sweep", "corpus", "rung", "params", "non_embedding_params",
                 "step", "tokens", "flops", "train_loss_nats", "val_loss_nats")


class StudyError(ValueError):
    """A study that cannot run or a results directory that cannot be used (a user error)."""


# ---------------------------------------------------------------------- budgets
@dataclass(frozen=True)
class CorpusSettings:
    """How one corpus is studied: the batch shape, the size sweep's length, the IsoFLOPs."""

    block_size: int = 64
    batch_size: int = 16
    size_steps: int = 1000                      # steps of every run of the size sweep
    isoflop_budgets: tuple[float, ...] = ()     # compute budgets C, FLOPs
    isoflop_points: int = 5                     # rungs per IsoFLOP curve
    isoflop_tokens_per_param: float = 150.0     # where the IsoFLOP window is centred
    evals: int = 8                              # evaluations logged per size-sweep run


@dataclass(frozen=True)
class Budget:
    """A named amount of work: the ladder, the corpora, and the settings of every sweep."""

    name: str
    widths: tuple[int, ...]
    corpora: tuple[str, ...]
    markov: CorpusSettings
    text: CorpusSettings                        # every corpus other than "markov"
    task_steps: int = 600
    task_batch_size: int = 32
    task_block_size: int = 32
    task_kind: str = "recall"                  # "recall" (tasks.RecallTask) or "copy"
    task_lines: int = 60_000
    task_eval: int = 256
    task_facts: int = 128
    task_length: int = 2
    task_alphabet: int = 16
    eval_iters: int = 10                        # batches per logged evaluation
    final_eval_iters: int = 40                  # batches for the final (reported) loss
    min_steps: int = 30                         # fewest steps an IsoFLOP run may have
    max_steps: int = 20_000                     # most steps an IsoFLOP run may have
    minutes: float = 30.0                       # the wall time this budget is meant to take

    def settings(self, corpus: str) -> CorpusSettings:
        return self.markov if corpus == "markov" else self.text

    def to_dict(self) -> dict:
        return asdict(self)


BUDGETS: dict[str, Budget] = {
    # Seconds: for tests and the notebook's fast mode.
    "tiny": Budget(
        name="tiny", widths=(12, 16, 24), corpora=("markov",),
        markov=CorpusSettings(block_size=16, batch_size=4, size_steps=12,
                              isoflop_budgets=(2e7, 4e7), isoflop_points=3, evals=3),
        text=CorpusSettings(block_size=16, batch_size=4, size_steps=12,
                            isoflop_budgets=(2e7, 4e7), isoflop_points=3, evals=3),
        task_steps=12, task_batch_size=4, task_block_size=16, task_lines=400, task_eval=16,
        task_facts=16,
        eval_iters=2, final_eval_iters=2, min_steps=4, minutes=0.5),
    # Within 30 minutes on a 2-core laptop: 8 rungs (2.6 orders of magnitude of N).
    "default": Budget(
        name="default", widths=(12, 16, 24, 32, 48, 64, 96, 128), corpora=("markov", "pydoc"),
        markov=CorpusSettings(block_size=32, batch_size=16, size_steps=1200,
                              isoflop_budgets=(2e10, 4e10, 1.6e11)),
        text=CorpusSettings(block_size=64, batch_size=16, size_steps=800,
                            isoflop_budgets=(4e10, 8e10, 3.2e11)),
        task_steps=600, minutes=30.0),
    # About two hours on 2 cores: 9 rungs (3.1 orders of magnitude of N), runs 5-6x longer
    # than the default's, five IsoFLOP budgets of up to six rungs, a longer task. (The tenth
    # rung, w256-l8, alone would add ~4 hours at this batch shape; `--max-width` trims further.)
    "full": Budget(
        name="full", widths=(12, 16, 24, 32, 48, 64, 96, 128, 192),
        corpora=("markov", "pydoc"),
        markov=CorpusSettings(block_size=32, batch_size=32, size_steps=3000,
                              isoflop_budgets=(1e10, 4e10, 1.6e11, 6.4e11, 2.56e12),
                              isoflop_points=6, evals=16),
        text=CorpusSettings(block_size=64, batch_size=32, size_steps=2500,
                            isoflop_budgets=(2e10, 8e10, 3.2e11, 1.28e12, 5.12e12),
                            isoflop_points=6, evals=16),
        task_steps=1200, task_eval=512, eval_iters=20, final_eval_iters=100, minutes=120.0),
}


def get_budget(name: str) -> Budget:
    if name not in BUDGETS:
        raise StudyError(f"unknown budget {name!r}; accepted: {', '.join(BUDGETS)}")
    return BUDGETS[name]


def kaplan_lr(non_embedding_params: int) -> float:
    """Kaplan et al.'s fitted learning-rate rule, LR(N) = 0.003239 - 0.0001395 ln N: smaller
    models take larger steps (2.2e-3 at N = 2e3, 1.3e-3 at N = 8e5)."""
    return max(2e-4, 0.003239 - 0.0001395 * math.log(non_embedding_params))


# ---------------------------------------------------------------------- the plan
@dataclass(frozen=True)
class RunSpec:
    """Everything one training run needs (JSON-able: it crosses to a worker process)."""

    run_id: str
    sweep: str
    corpus: str
    data: str                       # what TrainConfig.data gets (a name or a file path)
    width: int
    steps: int
    batch_size: int
    block_size: int
    lr: float
    warmup_steps: int
    eval_interval: int
    eval_iters: int
    final_eval_iters: int
    flops_budget: float | None = None
    task: dict | None = None
    task_eval: int = 0
    seed: int = 1337

    @property
    def rung(self) -> Rung:
        return Rung.from_width(self.width)

    @property
    def tokens(self) -> int:
        return self.steps * self.batch_size * self.block_size


def text_digest(text: str) -> str:
    """The short hash that identifies a study's corpus in study.json."""
    return hashlib.sha256(text.encode("utf-8")).hexdigest()[:16]


@dataclass
class CorpusInfo:
    """What the study needs to know of a corpus before training on it."""

    name: str
    data: str
    chars: int
    vocab_size: int
    sha256: str
    entropy_rate_nats: float | None

    @classmethod
    def load(cls, data: str) -> CorpusInfo:
        from ..data import load_corpus
        from ..tokenizers import CharTokenizer

        path = Path(data)
        if path.is_file():
            data = str(path.resolve())
        corpus = load_corpus(data)
        name = corpus.name if data == corpus.name else path.stem
        return cls(name=name, data=data, chars=len(corpus.text),
                   vocab_size=CharTokenizer().train(corpus.text).vocab_size,
                   sha256=text_digest(corpus.text),
                   entropy_rate_nats=corpus.entropy_rate_nats)


@dataclass
class StudyPlan:
    """The runs of a study, and the facts they were planned from."""

    budget: Budget
    corpora: dict[str, CorpusInfo]
    specs: list[RunSpec] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)

    def by_sweep(self, sweep: str) -> list[RunSpec]:
        return [s for s in self.specs if s.sweep == sweep]


def plan_study(budget: Budget, corpora=None, *, task: bool = True, ladder=None,
               corpus_info: dict[str, CorpusInfo] | None = None) -> StudyPlan:
    """Every run of `budget` on `corpora` (names or text files; default: the budget's)."""
    corpora = list(budget.corpora if corpora is None else corpora)
    if not corpora and not task:
        raise StudyError("nothing to run: no corpora and no task")
    ladder = make_ladder(budget.widths) if ladder is None else list(ladder)
    if len(ladder) < 2:
        raise StudyError(f"a ladder needs at least 2 rungs, got {len(ladder)}")
    infos = dict(corpus_info or {})
    for data in corpora:
        if data not in {i.data for i in infos.values()} and data not in infos:
            info = CorpusInfo.load(data)
            infos[info.name] = info
    plan = StudyPlan(budget, infos)
    for info in infos.values():
        s = budget.settings(info.name)
        plan.specs += _size_specs(budget, s, info, ladder)
        plan.specs += _isoflop_specs(budget, s, info, ladder, plan.notes)
    if task:
        plan.specs += _task_specs(budget, ladder)
    return plan


def _spec(budget: Budget, sweep: str, info_name: str, data: str, rung: Rung, steps: int,
          batch: int, block: int, evals: int, **extra) -> RunSpec:
    suffix = f"-C{extra['flops_budget']:.2e}".replace("+", "") if extra.get("flops_budget") else ""
    return RunSpec(
        run_id=f"{sweep}-{info_name}-{rung.name}{suffix}", sweep=sweep, corpus=info_name,
        data=data, width=rung.n_embd, steps=steps, batch_size=batch, block_size=block,
        lr=kaplan_lr(rung.non_embedding_params()), warmup_steps=min(100, steps // 10),
        eval_interval=max(1, steps // max(evals, 1)), eval_iters=budget.eval_iters,
        final_eval_iters=budget.final_eval_iters, **extra)


def _size_specs(budget, s: CorpusSettings, info: CorpusInfo, ladder) -> list[RunSpec]:
    return [_spec(budget, "size", info.name, info.data, r, s.size_steps, s.batch_size,
                  s.block_size, s.evals) for r in ladder]


def isoflop_steps(rung: Rung, flops_budget: float, vocab_size: int, block_size: int,
                  batch_size: int) -> int:
    """Optimizer steps that spend `flops_budget` training `rung` (rounded to the nearest)."""
    per_step = rung.flops_per_token(vocab_size, block_size) * batch_size * block_size
    return int(round(flops_budget / per_step))


def _isoflop_specs(budget: Budget, s: CorpusSettings, info: CorpusInfo, ladder,
                   notes: list) -> list[RunSpec]:
    specs = []
    for c in s.isoflop_budgets:
        steps = {r: isoflop_steps(r, c, info.vocab_size, s.block_size, s.batch_size)
                 for r in ladder}
        usable = [r for r in ladder if budget.min_steps <= steps[r] <= budget.max_steps]
        if not usable:
            smallest = ladder[0]
            need = (budget.min_steps * smallest.flops_per_token(info.vocab_size, s.block_size)
                    * s.batch_size * s.block_size)
            raise StudyError(
                f"compute budget C={c:.3g} FLOPs on {info.name!r} is too small to train the "
                f"smallest model ({smallest.name}, {smallest.non_embedding_params():,} "
                f"non-embedding parameters) for {budget.min_steps} steps of {s.batch_size} x "
                f"{s.block_size} tokens; accepted: C >= {need:.3g} FLOPs")
        # Centre the window on the rung that gets `isoflop_tokens_per_param` tokens per
        # parameter, so the smallest rungs are over-trained, the largest under-trained, and the
        # curve's minimum falls inside. (Tiny models train best far above Chinchilla's 20: the
        # head and attention cost them compute that N does not count.)
        ratio = [abs(math.log(steps[r] * s.batch_size * s.block_size
                              / r.non_embedding_params() / s.isoflop_tokens_per_param))
                 for r in usable]
        centre = int(np.argmin(ratio))
        first = max(0, min(centre - s.isoflop_points // 2, len(usable) - s.isoflop_points))
        window = usable[first:first + s.isoflop_points]
        if len(window) < 3:
            raise StudyError(
                f"compute budget C={c:.3g} FLOPs on {info.name!r} leaves only {len(window)} "
                f"rung(s) with {budget.min_steps}..{budget.max_steps} steps; an IsoFLOP curve "
                "needs at least 3; accepted: a larger budget or a ladder with more small rungs")
        if len(window) < s.isoflop_points:
            notes.append(f"{info.name}: C={c:.3g} has only {len(window)} usable rungs")
        specs += [_spec(budget, "isoflop", info.name, info.data, r, steps[r], s.batch_size,
                        s.block_size, 1, flops_budget=float(c)) for r in window]
    return specs


def _task_specs(budget: Budget, ladder) -> list[RunSpec]:
    options = {"task": budget.task_kind, "facts": budget.task_facts,
               "length": budget.task_length, "alphabet": budget.task_alphabet}
    task = make_task(options)
    return [_spec(budget, "task", task.name, "", r, budget.task_steps, budget.task_batch_size,
                  budget.task_block_size, 2, task={**task.to_dict(), "lines": budget.task_lines},
                  task_eval=budget.task_eval)
            for r in ladder]


# ---------------------------------------------------------------------- one run
def run_one(spec: RunSpec, work_dir: Path) -> dict:
    """Train `spec` in `<work_dir>/<run_id>/` and return its result row and curve."""
    from ..training import TrainConfig, Trainer

    base_rss = peak_rss_mib()
    run_dir = Path(work_dir) / spec.run_id
    shutil.rmtree(run_dir, ignore_errors=True)   # a half-finished attempt starts over
    t0 = time.perf_counter()
    data = spec.data or _task_corpus_file(spec, Path(work_dir))
    rung = spec.rung
    config = TrainConfig(
        data=data, steps=spec.steps, batch_size=spec.batch_size, block_size=spec.block_size,
        lr=spec.lr, min_lr=spec.lr / 10, warmup_steps=spec.warmup_steps,
        eval_interval=spec.eval_interval, eval_iters=spec.eval_iters, sample_tokens=0,
        seed=spec.seed, out=str(work_dir), name=spec.run_id,
        model_overrides=rung.overrides(spec.block_size))
    trainer = Trainer(config, quiet=True)
    setup_s = time.perf_counter() - t0
    result = trainer.train()
    wall_s = time.perf_counter() - t0
    if result.status != "finished":
        raise RuntimeError(f"run {spec.run_id} ended {result.status!r} at step {result.step}")
    trainer.config.eval_iters = spec.final_eval_iters
    final = trainer.evaluate()
    accuracy = None
    if spec.task is not None:
        from .tasks import task_accuracy

        prompts, answers = make_task(spec.task).eval_set(spec.task_eval, seed=spec.seed)
        accuracy = task_accuracy(trainer.model, trainer.tokenizer, prompts, answers)
    model, vocab = trainer.model, trainer.tokenizer.vocab_size
    fpt = model.flops_per_token(training=True, seq_len=spec.block_size)
    n_nonemb = model.num_params(non_embedding=True)
    tokens_per_step = spec.batch_size * spec.block_size
    from .. import __version__

    row = {
        "run_id": spec.run_id, "sweep": spec.sweep, "corpus": spec.corpus, "rung": rung.name,
        "n_layer": rung.n_layer, "n_head": rung.n_head, "n_embd": rung.n_embd,
        "vocab_size": vocab, "block_size": spec.block_size, "batch_size": spec.batch_size,
        "steps": spec.steps, "lr": spec.lr, "params": model.num_params(),
        "non_embedding_params": n_nonemb, "tokens": spec.tokens, "flops_per_token": fpt,
        "flops": float(fpt) * spec.tokens, "flops_6n": 6.0 * n_nonemb * spec.tokens,
        "flops_budget": spec.flops_budget, "train_loss_nats": final["train_loss"],
        "val_loss_nats": final["val_loss"], "train_loss_bits": final["train_loss"] / LN2,
        "val_loss_bits": final["val_loss"] / LN2,
        "val_bits_per_char": final["val_bits_per_char"],
        "entropy_rate_nats": trainer.corpus.entropy_rate_nats, "unigram_nats":
        trainer.unigram_nats, "accuracy": accuracy,
        "task": spec.task["name"] if spec.task else None, "wall_s": wall_s, "setup_s": setup_s,
        "tokens_per_s": spec.tokens / max(wall_s - setup_s, 1e-9),
        "peak_rss_mb": peak_rss_mib(), "base_rss_mb": base_rss,
        "threads": os.environ.get("OMP_NUM_THREADS"), "seed": spec.seed,
        "version": __version__, "schema": SCHEMA,
    }
    curve = [{"run_id": spec.run_id, "sweep": spec.sweep, "corpus": spec.corpus,
              "rung": rung.name, "params": row["params"], "non_embedding_params": n_nonemb,
              "step": r["step"], "tokens": r["step"] * tokens_per_step,
              "flops": float(fpt) * r["step"] * tokens_per_step,
              "train_loss_nats": r["train_loss"], "val_loss_nats": r["val_loss"]}
             for r in trainer.metrics.read() if r.get("kind") == "eval"]
    shutil.rmtree(run_dir, ignore_errors=True)   # checkpoints are scratch; the row is the result
    return {"row": row, "curve": curve}


def _task_corpus_file(spec: RunSpec, work_dir: Path) -> str:
    """The task's training text, written once per study (same seed, same text)."""
    task = make_task(spec.task)
    lines = spec.task.get("lines", 20_000)
    path = work_dir / f"{task.name}-{lines}.txt"
    if not path.is_file():
        work_dir.mkdir(parents=True, exist_ok=True)
        atomic_write(path, task.corpus_text(lines, seed=spec.seed))
    return str(path)


def _worker_main(spec_dict: dict, work_dir: str) -> None:
    """A worker process: one run; the result (or the traceback) goes to a JSON file."""
    spec = RunSpec(**spec_dict)
    out = Path(work_dir) / f"{spec.run_id}.result.json"
    try:
        result = run_one(spec, Path(work_dir))
    except BaseException as exc:  # noqa: BLE001 - reported to the parent, which decides
        atomic_write(Path(work_dir) / f"{spec.run_id}.error.json", json.dumps(
            {"run_id": spec.run_id, "error": f"{type(exc).__name__}: {exc}",
             "traceback": traceback.format_exc()}))
        raise SystemExit(1) from None
    atomic_write(out, json.dumps(result))


# ---------------------------------------------------------------------- the results store
def _csv_text(rows: list[dict], columns) -> str:
    import io

    buf = io.StringIO()
    writer = csv.DictWriter(buf, fieldnames=list(columns), extrasaction="ignore",
                            lineterminator="\n")
    writer.writeheader()
    for row in rows:
        writer.writerow({k: ("" if row.get(k) is None else row.get(k)) for k in columns})
    return buf.getvalue()


def _parse(value: str):
    if value == "":
        return None
    try:
        number = float(value)
    except ValueError:
        return value
    return int(number) if number.is_integer() and "." not in value and "e" not in value \
        else number


def read_csv(path) -> list[dict]:
    """Rows of a results CSV with numbers parsed (empty cells are None)."""
    path = Path(path)
    if not path.is_file():
        return []
    with open(path, encoding="utf-8", newline="") as f:
        return [{k: _parse(v) for k, v in row.items()} for row in csv.DictReader(f)]


class ResultsStore:
    """A results directory: study.json, one CSV per sweep, curves.csv."""

    def __init__(self, root):
        self.root = Path(root)
        self.work = self.root / "_work"

    def csv_path(self, sweep: str) -> Path:
        return self.root / f"{sweep}.csv"

    def rows(self, sweep: str) -> list[dict]:
        return read_csv(self.csv_path(sweep))

    def done(self) -> set[str]:
        return {r["run_id"] for sweep in SWEEPS for r in self.rows(sweep)}

    def add(self, result: dict) -> None:
        """Write one finished run (its row and its curve), each file replaced atomically."""
        row = result["row"]
        rows = [r for r in self.rows(row["sweep"]) if r["run_id"] != row["run_id"]] + [row]
        atomic_write(self.csv_path(row["sweep"]), _csv_text(rows, RUN_COLUMNS))
        curves = [r for r in read_csv(self.root / "curves.csv") if r["run_id"] != row["run_id"]]
        atomic_write(self.root / "curves.csv",
                      _csv_text(curves + result["curve"], CURVE_COLUMNS))

    def open(self, plan: StudyPlan) -> None:
        """Create the directory, or check that the one there holds this same study."""
        from .. import __version__

        self.root.mkdir(parents=True, exist_ok=True)
        self.work.mkdir(exist_ok=True)
        budget = plan.budget.to_dict()
        task = {k: budget.pop(k) for k in list(budget) if k.startswith("task_")}
        # Through JSON once, so tuples compare equal to the lists read back from disk.
        meta = json.loads(json.dumps({
            "schema": SCHEMA, "tinyllm_version": __version__, "budget": budget,
            "task": task if plan.by_sweep("task") else None,
            "corpora": {k: asdict(v) for k, v in plan.corpora.items()}}))
        path = self.root / "study.json"
        if path.is_file():
            old = load_meta(self.root)
            _check_same_study(old, meta, self.root)
            meta["corpora"] = {**old["corpora"], **meta["corpora"]}
            meta["task"] = meta["task"] or old.get("task")
        atomic_write(path, json.dumps(meta, indent=1))


def load_meta(root) -> dict:
    """study.json of a results directory, checked for this schema."""
    path = Path(root) / "study.json"
    if not path.is_file():
        raise StudyError(f"{root} is not a scaling results directory (no study.json); "
                         "accepted: a directory written by `tinyllm scaling`")
    try:
        meta = json.loads(path.read_text(encoding="utf-8"))
    except json.JSONDecodeError as exc:
        raise StudyError(f"{path} is not valid JSON ({exc})") from None
    if meta.get("schema") != SCHEMA:
        raise StudyError(f"{path} has results schema {meta.get('schema')!r}; this tinyllm "
                         f"reads {SCHEMA!r} (rerun the study to regenerate it)")
    return meta


def _check_same_study(old: dict, new: dict, root: Path) -> None:
    if old.get("tinyllm_version") != new["tinyllm_version"]:
        raise StudyError(
            f"{root} holds results from tinyllm {old.get('tinyllm_version')}, not this "
            f"{new['tinyllm_version']}; mixing versions would mix different code. Accepted: "
            "another --out directory, or delete this one to start over")
    if old.get("budget") != new["budget"]:
        raise StudyError(
            f"{root} holds a study with budget {old.get('budget', {}).get('name')!r} and other "
            f"settings than this one ({new['budget']['name']!r}); accepted: the same --budget "
            "and options, or another --out directory")
    if old.get("task") and new["task"] and old["task"] != new["task"]:
        raise StudyError(f"{root} holds task runs with other settings ({old['task']}) than "
                         f"this study's ({new['task']}); accepted: another --out directory")
    for name, info in new["corpora"].items():
        seen = old.get("corpora", {}).get(name)
        if seen and (seen["sha256"], seen["chars"]) != (info["sha256"], info["chars"]):
            raise StudyError(
                f"{root} holds results for a different corpus {name!r} ({seen['chars']:,} "
                f"characters, sha256 {seen['sha256']}) than this one ({info['chars']:,}, "
                f"{info['sha256']}); accepted: another --out directory")


# ---------------------------------------------------------------------- running a plan
@contextlib.contextmanager
def _thread_env(threads: int):
    """Set the BLAS thread variables for processes started inside the block."""
    saved = {k: os.environ.get(k) for k in THREAD_VARS}
    os.environ.update({k: str(threads) for k in THREAD_VARS})
    try:
        yield
    finally:
        for k, v in saved.items():
            if v is None:
                os.environ.pop(k, None)
            else:
                os.environ[k] = v


@dataclass
class StudyReport:
    """What `run_study` did."""

    root: Path
    finished: list[str]
    skipped: list[str]
    failed: dict[str, str]
    elapsed_s: float


def default_jobs() -> int:
    return max(1, min(2, os.cpu_count() or 1))


def run_study(plan: StudyPlan, out, *, jobs: int | None = None, log=None) -> StudyReport:
    """Run every spec of `plan` not yet in `out`, `jobs` worker processes at a time.

    jobs=0 trains in this process (no per-run peak memory; for notebooks and tests).
    A run that fails is reported in the StudyReport and the others go on.
    """
    jobs = default_jobs() if jobs is None else jobs
    if not isinstance(jobs, int) or jobs < 0:
        raise StudyError(f"jobs must be a non-negative integer, got {jobs!r}")
    store = ResultsStore(out)
    _check_memory(plan, max(jobs, 1))
    store.open(plan)
    done = store.done()
    _ingest_orphans(store, done)
    todo = [s for s in plan.specs if s.run_id not in done]
    skipped = [s.run_id for s in plan.specs if s.run_id in done]
    # Longest first, so two workers finish together (a classic greedy schedule).
    todo.sort(key=lambda s: -s.rung.flops_per_token(64, s.block_size) * s.tokens)
    say = log or (lambda message: None)
    say(f"{len(skipped)} run(s) already done, {len(todo)} to go, {jobs or 1} at a time")
    start = time.perf_counter()
    if jobs == 0:
        finished, failed = _run_inline(todo, store, say)
    else:
        finished, failed = _run_processes(todo, store, jobs, say)
    return StudyReport(store.root, finished, skipped, failed, time.perf_counter() - start)


def remeasure_memory(plan: StudyPlan, out, run_ids, *, steps: int = 20, jobs: int = 2,
                     log=None) -> list[str]:
    """Measure again the peak memory of finished runs and write it into their rows.

    Each run is repeated for `steps` steps in a fresh worker (same model, batch, evaluation
    and task scoring, so the same peak) in `<out>/_memory/`; only `peak_rss_mb` and
    `base_rss_mb` of the original rows change. For results written before tinyllm read
    VmHWM: their workers reported the parent's peak (see `tinyllm._memory`).
    """
    if jobs < 1:
        raise StudyError(f"remeasure_memory needs worker processes (jobs >= 1), got {jobs!r}")
    store = ResultsStore(out)
    specs = {s.run_id: s for s in plan.specs}
    unknown = sorted(set(run_ids) - set(specs) - store.done())
    missing = sorted(set(run_ids) - store.done())
    if unknown or missing:
        raise StudyError(f"cannot remeasure {unknown or missing}: not finished runs of this plan "
                         f"in {store.root}; accepted: run ids of its CSVs")
    scratch = ResultsStore(store.root / "_memory")
    scratch.work.mkdir(parents=True, exist_ok=True)
    short = []
    for run_id in run_ids:
        n = min(steps, specs[run_id].steps)
        short.append(dataclasses.replace(specs[run_id], steps=n, eval_interval=n,
                                         warmup_steps=min(specs[run_id].warmup_steps, n)))
    _, failed = _run_processes(short, scratch, jobs, log or (lambda m: None))
    if failed:
        raise StudyError(f"remeasuring failed: {failed}")
    peaks = {r["run_id"]: r for sweep in SWEEPS for r in scratch.rows(sweep)}
    for sweep in SWEEPS:
        rows = store.rows(sweep)
        for row in rows:
            if row["run_id"] in peaks:
                row["peak_rss_mb"] = peaks[row["run_id"]]["peak_rss_mb"]
                row["base_rss_mb"] = peaks[row["run_id"]]["base_rss_mb"]
        if rows:
            atomic_write(store.csv_path(sweep), _csv_text(rows, RUN_COLUMNS))
    shutil.rmtree(scratch.root, ignore_errors=True)
    return sorted(peaks)


def _check_memory(plan: StudyPlan, jobs: int) -> None:
    for info in plan.corpora.values():
        s = plan.budget.settings(info.name)
        rungs = sorted({Rung.from_width(sp.width) for sp in plan.specs
                        if sp.corpus == info.name}, key=lambda r: r.n_embd)
        check_fits_in_memory(rungs, info.vocab_size, s.block_size, s.batch_size, jobs)


def _ingest_orphans(store: ResultsStore, done: set) -> None:
    """A result file whose run finished just before a crash, never written to the CSVs."""
    for path in sorted(store.work.glob("*.result.json")):
        result = json.loads(path.read_text(encoding="utf-8"))
        if result["row"]["run_id"] not in done:
            store.add(result)
            done.add(result["row"]["run_id"])
        path.unlink()


def _run_inline(todo, store, say):
    finished, failed = [], {}
    for spec in todo:
        try:
            result = run_one(spec, store.work)
        except (RuntimeError, ValueError, FloatingPointError) as exc:
            failed[spec.run_id] = f"{type(exc).__name__}: {exc}"
            say(f"FAILED {spec.run_id}: {failed[spec.run_id]}")
            continue
        store.add(result)
        finished.append(spec.run_id)
        say(_done_line(result["row"], len(finished), len(todo)))
    return finished, failed


def _run_processes(todo, store, jobs, say):
    import multiprocessing as mp
    from multiprocessing.connection import wait

    ctx = mp.get_context("spawn")
    threads = max(1, (os.cpu_count() or 1) // jobs)
    pending, running, finished, failed = list(todo), {}, [], {}
    try:
        while pending or running:
            while pending and len(running) < jobs:
                spec = pending.pop(0)
                with _thread_env(threads):
                    proc = ctx.Process(target=_worker_main, name=f"tinyllm-{spec.run_id}",
                                       args=(asdict(spec), str(store.work)))
                    proc.start()
                running[proc] = spec
            for sentinel in wait([p.sentinel for p in running]):
                proc = next(p for p in running if p.sentinel == sentinel)
                spec = running.pop(proc)
                proc.join()
                result_path = store.work / f"{spec.run_id}.result.json"
                if proc.exitcode == 0 and result_path.is_file():
                    result = json.loads(result_path.read_text(encoding="utf-8"))
                    store.add(result)
                    result_path.unlink()
                    finished.append(spec.run_id)
                    say(_done_line(result["row"], len(finished), len(todo)))
                else:
                    failed[spec.run_id] = _worker_error(store.work, spec, proc.exitcode)
                    say(f"FAILED {spec.run_id}: {failed[spec.run_id]}")
    finally:
        for proc in running:  # Ctrl-C or an error here: stop our own workers, keep the rest
            proc.terminate()
            proc.join()
    return finished, failed


def _worker_error(work: Path, spec: RunSpec, exitcode) -> str:
    path = work / f"{spec.run_id}.error.json"
    if path.is_file():
        return json.loads(path.read_text(encoding="utf-8"))["error"]
    return f"worker exited with code {exitcode} (killed, out of memory?)"


def _done_line(row: dict, k: int, n: int) -> str:
    acc = f" acc {row['accuracy']:.2f}" if row.get("accuracy") is not None else ""
    return (f"[{k}/{n}] {row['run_id']}: val {row['val_loss_nats']:.4f} nats{acc} | "
            f"{row['wall_s']:.0f} s | {row['peak_rss_mb']:.0f} MiB")


# ---------------------------------------------------------------------- the time estimate
def measure_step_time(rung: Rung, vocab_size: int, block_size: int, batch_size: int,
                      steps: int = 3) -> float:
    """Seconds per training step (forward, backward, AdamW) of `rung`, measured here."""
    import numpy as np

    from ..models import GPT
    from ..optim import AdamW

    model = GPT(rung.config(vocab_size, block_size), seed=0)
    opt = AdamW(model.parameters(), lr=1e-3)
    rng = np.random.default_rng(0)
    x = rng.integers(0, vocab_size, (batch_size, block_size + 1))
    times = []
    for _ in range(steps + 1):
        t0 = time.perf_counter()
        loss = model(x[:, :-1], x[:, 1:]).loss
        opt.zero_grad()
        loss.backward()
        opt.step()
        times.append(time.perf_counter() - t0)
    return float(np.median(times[1:]))   # the first step pays for warm-up


def estimate_seconds(plan: StudyPlan, jobs: int = 1, startup_s: float = 2.0) -> float:
    """Wall seconds the plan should take: step time = a + b * FLOPs per step, with a and b
    measured on the smallest and the largest rung (a: Python's per-step overhead; b: the
    inverse of the matmul throughput), plus evaluations and process start-up."""
    total = 0.0
    shapes = {(s.block_size, s.batch_size, s.corpus) for s in plan.specs}
    for block, batch, corpus in shapes:
        specs = [s for s in plan.specs if (s.block_size, s.batch_size, s.corpus)
                 == (block, batch, corpus)]
        vocab = plan.corpora[corpus].vocab_size if corpus in plan.corpora else 32
        rungs = sorted({s.rung for s in specs}, key=lambda r: r.n_embd)
        lo, hi = rungs[0], rungs[-1]
        f_lo, f_hi = (r.flops_per_token(vocab, block) * batch * block for r in (lo, hi))
        t_lo, t_hi = (measure_step_time(r, vocab, block, batch) for r in (lo, hi))
        b = max((t_hi - t_lo) / max(f_hi - f_lo, 1.0), 0.0)
        a = max(t_lo - b * f_lo, 0.0)
        for s in specs:
            flops = s.rung.flops_per_token(vocab, block) * batch * block
            step = a + b * flops
            evals = (s.steps // s.eval_interval + 1) * 2 * s.eval_iters + 2 * s.final_eval_iters
            total += startup_s + s.steps * step + evals * step / 3
    return total / max(jobs, 1)


def describe_plan(plan: StudyPlan) -> str:
    """A few lines: runs per sweep and corpus, the ladder, the IsoFLOP budgets."""
    lines = []
    for info in plan.corpora.values():
        s = plan.budget.settings(info.name)
        floor = (f", entropy rate {info.entropy_rate_nats:.4f} nats/char"
                 if info.entropy_rate_nats else "")
        lines.append(f"{info.name}: {info.chars:,} chars, V={info.vocab_size}{floor}; size "
                     f"sweep {len(plan.by_sweep('size')) // max(len(plan.corpora), 1)} rungs x "
                     f"{s.size_steps} steps of {s.batch_size}x{s.block_size} tokens; IsoFLOP C = "
                     + ", ".join(f"{c:.2g}" for c in s.isoflop_budgets))
    rungs = sorted({s.rung for s in plan.specs}, key=lambda r: r.n_embd)
    lines.append("ladder: " + ", ".join(f"{r.name} (N={r.non_embedding_params():,})"
                                        for r in rungs))
    if plan.by_sweep("task"):
        t = plan.by_sweep("task")[0]
        lines.append(f"task: {t.corpus}, {t.steps} steps per rung, {t.task_eval} held-out "
                     "prompts")
    return "\n".join(lines + plan.notes)


def replace_settings(budget: Budget, **changes) -> Budget:
    """A copy of `budget` with top-level fields changed (e.g. widths=(12, 24))."""
    return dataclasses.replace(budget, **changes)
