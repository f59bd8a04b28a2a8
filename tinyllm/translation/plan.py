"""The translation study's plan: named budgets, and the runs (`RunSpec`s) a budget asks for.

One run per (task, family, size): an encoder-decoder of the family ("seq2seq", the
Transformer; "lstm-seq2seq", its recurrent ancestor with attention) at a size preset, trained
once on the task's training pairs (`tinyllm.training.TranslationTrainer`) and scored on its
test split by greedy decoding. Both families share the preset names and, at a vocabulary of
256, nearly the same parameter counts, so a column of the study compares the architectures at
one size.

The steps of a run come from the budget, by size (a larger model costs more per step) and by
task (a task of long targets or few pairs gets more or fewer)::

    steps = round(steps_by_size[size] * task_scale[task])

The warmup is a fixed share of the steps (the Transformer is post-LN, which needs it). Dropout
is for long runs only, from `dropout_from` up: in the default budget's 550 steps every model
underfits, and dropout 0.1 (the Transformer's on its residuals, attention and feed-forward)
cut the Transformer mini's exact match on scan:simple from 66% to 7%.

Initialisation: both families' defaults are the ones of their papers' large models (Marian's
normal std 0.02 at d_model 512; Luong et al.'s U(-0.1, 0.1) at 1,000 LSTM units). At the
study's widths (16 to 128) they start the models with signals and gradients so small that
training stalls for hundreds of steps. The study starts every weight with a standard deviation
of `init_scale / sqrt(width)` instead (`width_init`): the Transformer's `init_std`, the LSTM's
`init_range` (a uniform of that deviation: sqrt(3) times it).

>>> plan = plan_study(BUDGETS["tiny"])
>>> sorted({spec.family for spec in plan.runs})
['lstm-seq2seq', 'seq2seq']
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, field

#: The model families compared, in table order: the Transformer, then the LSTM.
FAMILIES = ("seq2seq", "lstm-seq2seq")
#: What the tables and plots call each family.
FAMILY_LABELS = {"seq2seq": "Transformer", "lstm-seq2seq": "LSTM"}
#: The tasks and SCAN splits of the study, in table order (`tinyllm.tasks.translation`).
TASKS = ("scan:simple", "scan:length", "scan:addprim-jump", "numbers-en-zh", "numbers-zh-en",
         "dates")
#: The size presets both families define, smallest first.
SIZES = ("nano", "micro", "tiny", "mini", "small", "base")

#: Lake & Baroni 2018, "Generalization without systematicity" (ICML), section 4: test exact
#: match in percent, mean of 5 runs, of the overall-best model and of the best model for each
#: split (sequence-to-sequence RNNs, LSTM and GRU, with and without attention).
PUBLISHED = {
    "source": 'Lake & Baroni 2018 (ICML, "Generalization without systematicity", section 4, '
              'mean of 5 runs)',
    "splits": {
        "scan:simple": {"name": "simple", "overall_best": 99.7, "top_for_split": 99.8},
        "scan:length": {"name": "length", "overall_best": 13.8, "top_for_split": 20.8},
        "scan:addprim-jump": {"name": "add-jump", "overall_best": 0.08,
                              "top_for_split": 1.2},
    },
}


class StudyError(ValueError):
    """A study that cannot run, or a results directory that cannot be used (a user error)."""


# ---------------------------------------------------------------------- budgets
@dataclass(frozen=True)
class Budget:
    """A named amount of work: sizes, tasks, families, steps and the training recipe."""

    name: str
    sizes: tuple[str, ...]                              # presets, smallest first
    steps_by_size: tuple[tuple[str, int], ...]          # size -> steps at a task scale of 1
    task_scale: tuple[tuple[str, float], ...] = ()      # task -> factor on the steps (else 1)
    tasks: tuple[str, ...] = TASKS
    families: tuple[str, ...] = FAMILIES
    batch_size: int = 32
    lr: tuple[tuple[str, float], ...] = (("seq2seq", 2e-3), ("lstm-seq2seq", 3e-3))
    init_scale: float | None = 1.0                      # weights' std x sqrt(width); None:
                                                        # the family's own initialisation
    min_lr_ratio: float = 0.1                           # the cosine schedule ends at lr x this
    warmup_fraction: float = 0.1
    weight_decay: float = 0.01
    dropout: float = 0.0
    dropout_from: str = "small"                         # sizes from this one up use dropout
    eval_iters: int = 8                                 # validation pairs decoded at the end:
                                                        # eval_iters x batch_size
    max_test_pairs: int | None = None                   # None: the whole test split
    decode_batch_size: int = 256                        # sources decoded together when scoring
    seed: int = 0
    minutes: float = 30.0                               # the wall time it is meant to take
    #                                                     (2 cores, two workers)

    def to_dict(self) -> dict:
        return asdict(self)

    def steps(self, size: str, task: str) -> int:
        """Optimizer steps of a run of `size` on `task`."""
        base = dict(self.steps_by_size)[size]
        return max(1, round(base * dict(self.task_scale).get(task, 1.0)))

    def lr_of(self, family: str) -> float:
        """The peak learning rate of a family."""
        return dict(self.lr)[family]

    def dropout_of(self, size: str) -> float:
        """The dropout of a size: the budget's from `dropout_from` up, else none."""
        return self.dropout if SIZES.index(size) >= SIZES.index(self.dropout_from) else 0.0


BUDGETS: dict[str, Budget] = {
    # Seconds: for tests. Two sizes, two tasks, a few steps, a slice of each test split.
    "tiny": Budget(
        name="tiny", sizes=("nano", "micro"), tasks=("scan:simple", "dates"),
        steps_by_size=(("nano", 6), ("micro", 4)), batch_size=16, eval_iters=1,
        max_test_pairs=48, decode_batch_size=48, minutes=0.5),
    # At most 30 minutes on 2 quiet cores with two workers (estimated 24): 4 sizes x 2
    # families x 6 tasks, each run 550 steps of 32 pairs (the same examples for every size).
    "default": Budget(
        name="default", sizes=("nano", "micro", "tiny", "mini"),
        steps_by_size=(("nano", 550), ("micro", 550), ("tiny", 550), ("mini", 550)),
        minutes=30.0),
    # About 1.5 hours on 2 cores: the default's sizes trained 3,000 steps each (5.5 times
    # longer), enough for >= 99% exact match on scan:simple, the numbers and the dates at
    # the largest size (measured: the Transformer at mini, 3,000 steps, 99.4% on scan:simple
    # and 100% on numbers-en-zh).
    "full": Budget(
        name="full", sizes=("nano", "micro", "tiny", "mini"),
        steps_by_size=(("nano", 3000), ("micro", 3000), ("tiny", 3000), ("mini", 3000)),
        minutes=100.0),
}


def get_budget(name: str) -> Budget:
    """The budget called `name`, or a StudyError naming the accepted ones."""
    if name not in BUDGETS:
        raise StudyError(f"unknown budget {name!r}; accepted: {', '.join(BUDGETS)}")
    return BUDGETS[name]


# ---------------------------------------------------------------------- the plan
@dataclass(frozen=True)
class RunSpec:
    """One run: a family at a size, trained on a task and scored on its test split."""

    run_id: str
    task: str
    family: str
    size: str
    steps: int
    batch_size: int
    lr: float
    min_lr: float
    warmup_steps: int
    weight_decay: float
    dropout: float
    eval_iters: int
    max_test_pairs: int | None
    decode_batch_size: int
    seed: int
    model_overrides: tuple[tuple[str, float], ...] = ()     # config fields (the init)


@dataclass
class StudyPlan:
    """The runs of a study, with the budget and the selection they were planned from."""

    budget: Budget
    tasks: tuple[str, ...]
    families: tuple[str, ...]
    runs: list[RunSpec] = field(default_factory=list)

    def runs_of(self, task: str | None = None, family: str | None = None,
                size: str | None = None) -> list[RunSpec]:
        return [r for r in self.runs if (task is None or r.task == task)
                and (family is None or r.family == family) and (size is None or r.size == size)]


#: Each family's init field, the preset field of its width, and the field's value for a
#: standard deviation sd (a uniform U(-r, r) has sd r / sqrt(3)).
INIT_FIELDS = {"seq2seq": ("init_std", "d_model", lambda sd: sd),
               "lstm-seq2seq": ("init_range", "hidden_size", lambda sd: math.sqrt(3) * sd)}


def width_init(family: str, size: str, scale: float = 1.0) -> dict:
    """The config field that starts `family` at `size` with weights of standard deviation
    `scale / sqrt(width)`: {"init_std": ...} or {"init_range": ...}.

    >>> width_init("seq2seq", "micro")                      # d_model 32
    {'init_std': 0.176777}
    """
    from ..models import get_family

    field_name, width_field, value = INIT_FIELDS[family]
    width = get_family(family).preset(size)[width_field]
    return {field_name: round(value(scale / math.sqrt(width)), 6)}


def run_id(task: str, family: str, size: str) -> str:
    """The id of a run: its family, size and task ("seq2seq-nano-scan-simple")."""
    return f"{family}-{size}-{task.replace(':', '-')}"


def _check(kind: str, given, accepted) -> tuple[str, ...]:
    """`given` in the order of `accepted`, or a StudyError naming the unknown ones."""
    given = tuple(given)
    unknown = [g for g in given if g not in accepted]
    if unknown or not given:
        raise StudyError(f"unknown {kind} {unknown or list(given)}; accepted: "
                         f"{', '.join(accepted)}")
    return tuple(a for a in accepted if a in given)


def check_budget(budget: Budget) -> None:
    """Sizes known and smallest first, a step count for each, sane recipe values."""
    _check("size(s)", budget.sizes, SIZES)
    if list(budget.sizes) != sorted(budget.sizes, key=SIZES.index):
        raise StudyError(f"budget {budget.name!r}: sizes {list(budget.sizes)} are not smallest "
                         f"first; accepted order: {', '.join(SIZES)}")
    missing = [s for s in budget.sizes if s not in dict(budget.steps_by_size)]
    if missing:
        raise StudyError(f"budget {budget.name!r} gives no steps for size(s) {missing}")
    _check("task(s)", budget.tasks, TASKS)
    if budget.task_scale:
        _check("task(s) of task_scale", [t for t, _ in budget.task_scale], TASKS)
    _check("dropout_from size", [budget.dropout_from], SIZES)
    missing = [f for f in budget.families if f not in dict(budget.lr)]
    if missing:
        raise StudyError(f"budget {budget.name!r} gives no learning rate for {missing}")
    if not 0 <= budget.warmup_fraction <= 1:
        raise StudyError(f"warmup_fraction={budget.warmup_fraction}; accepted: 0..1")


def plan_study(budget: Budget, tasks=None, families=None) -> StudyPlan:
    """Every run of `budget` on `tasks` and `families` (default: the budget's), task by task,
    the Transformer before the LSTM, smallest size first."""
    check_budget(budget)
    tasks = _check("task(s)", budget.tasks if tasks is None else tasks, TASKS)
    families = _check("model family(ies)", budget.families if families is None else families,
                      FAMILIES)
    plan = StudyPlan(budget, tasks, families)
    b = budget
    for task in tasks:
        for family in families:
            lr = b.lr_of(family)
            for size in b.sizes:
                steps = b.steps(size, task)
                init = {} if b.init_scale is None else width_init(family, size, b.init_scale)
                plan.runs.append(RunSpec(
                    run_id=run_id(task, family, size), task=task, family=family, size=size,
                    steps=steps, batch_size=b.batch_size, lr=lr, min_lr=lr * b.min_lr_ratio,
                    warmup_steps=round(b.warmup_fraction * steps), weight_decay=b.weight_decay,
                    dropout=b.dropout_of(size), eval_iters=b.eval_iters,
                    max_test_pairs=b.max_test_pairs, decode_batch_size=b.decode_batch_size,
                    seed=b.seed, model_overrides=tuple(init.items())))
    return plan


def dropout_text(dropout: float, dropout_from: str) -> str:
    """ "no dropout", or "dropout 0.1 from small up"."""
    return f"dropout {dropout:g} from {dropout_from} up" if dropout else "no dropout"


def describe_plan(plan: StudyPlan) -> str:
    """A few lines: the families, sizes, tasks, steps and recipe of the plan."""
    b = plan.budget
    lines = [f"budget {b.name!r}: {' vs '.join(FAMILY_LABELS[f] for f in plan.families)} "
             f"encoder-decoders at sizes {', '.join(b.sizes)} on {len(plan.tasks)} task(s): "
             f"{', '.join(plan.tasks)}"]
    for task in plan.tasks:
        steps = ", ".join(f"{s} {b.steps(s, task)}" for s in b.sizes)
        lines.append(f"  {task}: steps {steps}")
    test = "every test pair" if b.max_test_pairs is None else \
        f"the first {b.max_test_pairs} test pairs"
    lrs = ", ".join(f"{FAMILY_LABELS[f]} {lr:g}" for f, lr in b.lr if f in plan.families)
    init = ("each family's own" if b.init_scale is None else
            f"weights of standard deviation {b.init_scale:g}/sqrt(width)")
    lines.append(f"AdamW lr {lrs} (cosine to {b.min_lr_ratio:g} x, warmup "
                 f"{b.warmup_fraction:.0%} of the steps), batch {b.batch_size}, weight decay "
                 f"{b.weight_decay:g}, {dropout_text(b.dropout, b.dropout_from)}, init "
                 f"{init}; scored greedily on {test}, validation exact match on "
                 f"{b.eval_iters * b.batch_size} pairs at the end")
    lines.append(f"runs: {len(plan.runs)}")
    return "\n".join(lines)
