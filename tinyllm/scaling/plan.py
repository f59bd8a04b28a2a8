"""The study's plan: named budgets, and the runs (`RunSpec`s) a budget asks for on each corpus.

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

>>> plan = plan_study(BUDGETS["tiny"], ["markov"])
>>> sorted({spec.sweep for spec in plan.specs})
['isoflop', 'size', 'task']

`runner` runs a plan, `store` keeps its results, `estimate` says how long it should take.
"""

from __future__ import annotations

import dataclasses
import hashlib
import math
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np

from .ladder import Rung, make_ladder
from .tasks import make_task

SWEEPS = ("size", "isoflop", "task")
#: The synthetic corpora, whose loss floor is known: studied with a budget's `markov` settings.
SYNTHETIC = ("markov", "hmm")


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
    #: how an IsoFLOP budget is counted: "full" (flops_per_token: attention and the output
    #: head included) or "6n" (Kaplan's 6 N per token, N non-embedding)
    isoflop_count: str = "full"


@dataclass(frozen=True)
class Budget:
    """A named amount of work: the ladder, the corpora, and the settings of every sweep."""

    name: str
    widths: tuple[int, ...]
    corpora: tuple[str, ...]
    markov: CorpusSettings                      # the synthetic corpora (`SYNTHETIC`)
    text: CorpusSettings                        # every other corpus
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
    #: warmup of every run: None = a tenth of the run, at most 100 steps (it scales with
    #: short runs); a number = that many steps whatever the run's length (at most all of it)
    warmup_steps: int | None = None
    beta2: float = 0.99                         # AdamW's beta2 for every run
    #: False: every run at Kaplan's rate (`kaplan_lr`); True: each size-sweep rung at the
    #: power of 2 of it that trains best, and its IsoFLOP runs at that rate (`tuning`)
    tune_lr: bool = False
    minutes: float = 30.0                       # the wall time this budget is meant to take

    def settings(self, corpus: str) -> CorpusSettings:
        """The settings `corpus` is studied with."""
        return self.markov if corpus in SYNTHETIC else self.text

    def to_dict(self) -> dict:
        """Every field, nested settings included, as plain Python (for study.json)."""
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
    # The second study (about 2 h 15 min on 2 cores): the hidden Markov source, whose floor
    # needs far more capacity than the order-2 chain's, and 3.9 MB of English (`english`)
    # seen at most 2 times by every rung; 9 rungs (3.1 orders of magnitude of N), 6.1M
    # tokens per size-sweep run, each rung's learning rate tuned (3 to 7 runs per rung),
    # four IsoFLOP budgets at the tuned rates.
    "v2": Budget(
        name="v2", widths=(12, 16, 24, 32, 48, 64, 96, 128, 192), corpora=("hmm", "english"),
        markov=CorpusSettings(block_size=64, batch_size=32, size_steps=3000,
                              isoflop_budgets=(4e10, 1.6e11, 6.4e11, 2.56e12), evals=16),
        text=CorpusSettings(block_size=64, batch_size=32, size_steps=3000,
                            isoflop_budgets=(4e10, 1.6e11, 6.4e11, 2.56e12), evals=16),
        task_steps=1200, task_eval=512, eval_iters=20, final_eval_iters=100, tune_lr=True,
        minutes=135.0),
}


def get_budget(name: str) -> Budget:
    """The budget called `name`, or a StudyError naming the accepted ones."""
    return named_budget(BUDGETS, name, "budget")


def named_budget(budgets: dict, name: str, what: str):
    """`budgets[name]`, or a StudyError "unknown <what> 'name'; accepted: ..." (every study
    of this package picks its budget by name)."""
    if name not in budgets:
        raise StudyError(f"unknown {what} {name!r}; accepted: {', '.join(budgets)}")
    return budgets[name]


def kaplan_lr(non_embedding_params: int) -> float:
    """Kaplan et al.'s fitted peak learning rate for N non-embedding parameters.

    LR(N) = 0.003239 - 0.0001395 ln N: smaller models take larger steps (2.2e-3 at N = 2e3,
    1.3e-3 at N = 8e5).
    """
    return max(2e-4, 0.003239 - 0.0001395 * math.log(non_embedding_params))


def replace_settings(budget: Budget, **changes) -> Budget:
    """A copy of `budget` with top-level fields changed (e.g. widths=(12, 24))."""
    return dataclasses.replace(budget, **changes)


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
    beta2: float = 0.99
    flops_budget: float | None = None
    task: dict | None = None
    task_eval: int = 0
    seed: int = 1337

    @property
    def rung(self) -> Rung:
        """The ladder rung this run trains."""
        return Rung.from_width(self.width)

    @property
    def tokens(self) -> int:
        """Training tokens: steps x batch x block."""
        return self.steps * self.batch_size * self.block_size


def lr_suffix(exponent: int) -> str:
    """What a run id gains at 2**exponent times the rule ('' at the rule itself)."""
    return "" if exponent == 0 else f"-lr{2.0 ** exponent:g}x"


def scaled(spec: RunSpec, exponent: int) -> RunSpec:
    """`spec` (planned at Kaplan's rate) at 2**exponent times that rate, under its own id."""
    if exponent == 0:
        return spec
    return dataclasses.replace(spec, run_id=spec.run_id + lr_suffix(exponent),
                               lr=spec.lr * 2.0 ** exponent)


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
        """Load `data` (a corpus name or a text file) once to measure it."""
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
        """The specs of one sweep, in plan order."""
        return [s for s in self.specs if s.sweep == sweep]


def plan_study(budget: Budget, corpora=None, *, task: bool = True, ladder=None,
               corpus_info: dict[str, CorpusInfo] | None = None,
               lr_exponents: dict[tuple[str, int], int] | None = None) -> StudyPlan:
    """Every run of `budget` on `corpora` (names or text files; default: the budget's).

    lr_exponents: (corpus, width) -> k, to train that width's size and IsoFLOP runs at 2**k
    times Kaplan's rate (`tuning.tuned_exponents`; default: the rule for every run).
    """
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
    if lr_exponents:
        plan.specs = [scaled(s, lr_exponents.get((s.corpus, s.width), 0)) for s in plan.specs]
    if task:
        plan.specs += _task_specs(budget, ladder)
    return plan


def _spec(budget: Budget, sweep: str, info_name: str, data: str, rung: Rung, steps: int,
          batch: int, block: int, evals: int, **extra) -> RunSpec:
    """One run of `sweep`, its learning rate from `kaplan_lr` and `evals` evaluations."""
    suffix = f"-C{extra['flops_budget']:.2e}".replace("+", "") if extra.get("flops_budget") else ""
    return RunSpec(
        run_id=f"{sweep}-{info_name}-{rung.name}{suffix}", sweep=sweep, corpus=info_name,
        data=data, width=rung.n_embd, steps=steps, batch_size=batch, block_size=block,
        lr=kaplan_lr(rung.non_embedding_params()),
        warmup_steps=(min(100, steps // 10) if budget.warmup_steps is None
                      else min(budget.warmup_steps, steps)), beta2=budget.beta2,
        eval_interval=max(1, steps // max(evals, 1)), eval_iters=budget.eval_iters,
        final_eval_iters=budget.final_eval_iters, **extra)


def _size_specs(budget, s: CorpusSettings, info: CorpusInfo, ladder) -> list[RunSpec]:
    """The size sweep on one corpus: every rung for the same number of steps."""
    return [_spec(budget, "size", info.name, info.data, r, s.size_steps, s.batch_size,
                  s.block_size, s.evals) for r in ladder]


ISOFLOP_COUNTS = ("full", "6n")


def isoflop_steps(rung: Rung, flops_budget: float, vocab_size: int, block_size: int,
                  batch_size: int, count: str = "full") -> int:
    """Optimizer steps that spend `flops_budget` training `rung` (rounded to the nearest),
    the FLOPs per token counted in full or as Kaplan's 6 N (`ISOFLOP_COUNTS`)."""
    per_token = counted_flops_per_token(rung, vocab_size, block_size, count)
    return int(round(flops_budget / (per_token * batch_size * block_size)))


def counted_flops_per_token(rung: Rung, vocab_size: int, block_size: int,
                            count: str = "full") -> int:
    """Training FLOPs per token of `rung` as an IsoFLOP budget counts them: "full"
    (`Rung.flops_per_token`: attention and the output head included) or "6n"."""
    if count not in ISOFLOP_COUNTS:
        raise StudyError(f"unknown IsoFLOP count {count!r}; accepted: "
                         f"{', '.join(ISOFLOP_COUNTS)}")
    if count == "6n":
        return 6 * rung.non_embedding_params()
    return rung.flops_per_token(vocab_size, block_size)


def _isoflop_specs(budget: Budget, s: CorpusSettings, info: CorpusInfo, ladder,
                   notes: list) -> list[RunSpec]:
    """The IsoFLOP sweep on one corpus: for each compute budget C, one curve of rungs."""
    specs = []
    for c in s.isoflop_budgets:
        steps = {r: isoflop_steps(r, c, info.vocab_size, s.block_size, s.batch_size,
                                  s.isoflop_count) for r in ladder}
        window = _isoflop_window(budget, s, info, ladder, c, steps)
        if len(window) < s.isoflop_points:
            notes.append(f"{info.name}: C={c:.3g} has only {len(window)} usable rungs")
        specs += [_spec(budget, "isoflop", info.name, info.data, r, steps[r], s.batch_size,
                        s.block_size, 1, flops_budget=float(c)) for r in window]
    return specs


def _isoflop_window(budget: Budget, s: CorpusSettings, info: CorpusInfo, ladder, c: float,
                    steps: dict) -> list[Rung]:
    """The rungs of the curve of budget `c`: up to `isoflop_points` around its optimum."""
    usable = [r for r in ladder if budget.min_steps <= steps[r] <= budget.max_steps]
    if not usable:
        smallest = ladder[0]
        need = (budget.min_steps * s.batch_size * s.block_size
                * counted_flops_per_token(smallest, info.vocab_size, s.block_size,
                                          s.isoflop_count))
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
    return window


def _task_specs(budget: Budget, ladder) -> list[RunSpec]:
    """The task sweep: every rung on the budget's generated task."""
    options = {"task": budget.task_kind, "facts": budget.task_facts,
               "length": budget.task_length, "alphabet": budget.task_alphabet}
    task = make_task(options)
    return [_spec(budget, "task", task.name, "", r, budget.task_steps, budget.task_batch_size,
                  budget.task_block_size, 2, task={**task.to_dict(), "lines": budget.task_lines},
                  task_eval=budget.task_eval)
            for r in ladder]


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
