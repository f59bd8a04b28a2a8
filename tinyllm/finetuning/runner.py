"""Running a plan: pre-train each size once, then fine-tune, train from scratch and fit the
baselines; resumable after an interruption.

`run_study` skips every run its results directory already holds. With ``jobs`` >= 1 the runs
go to that many worker processes (one BLAS thread each when two share two cores): the
pre-training runs first, longest first, and the baselines; a size's fine-tuning and scratch
runs as soon as its pre-training is done. ``jobs=0`` runs everything in this process, one
after the other, on one BLAS thread (for tests and notebooks).

>>> report = run_study(plan_study(BUDGETS["tiny"]), "runs/ft-tiny", jobs=0)   # doctest: +SKIP
"""

from __future__ import annotations

import math
import os
import shutil
import time
from concurrent.futures import FIRST_COMPLETED, wait
from dataclasses import dataclass, field
from pathlib import Path

from ..scaling.runner import default_jobs, in_worker, study_pool, thread_env
from .plan import (
    ALL,
    GENERATIVE_METHODS,
    QA_TASKS,
    SCRATCH_METHODS,
    Budget,
    PretrainSpec,
    RunSpec,
    StudyError,
    StudyPlan,
    corpus_text,
    pretrain_run_id,
)
from .store import SCHEMA, ResultsStore

LN2 = math.log(2.0)


@dataclass
class StudyReport:
    """What `run_study` did."""

    root: Path
    finished: list[str] = field(default_factory=list)
    skipped: list[str] = field(default_factory=list)
    failed: dict[str, str] = field(default_factory=dict)
    elapsed_s: float = 0.0


def run_study(plan: StudyPlan, out, *, jobs: int | None = None, log=None,
              executor: str = "local") -> StudyReport:
    """Run every run of `plan` not yet in `out` (`jobs` worker processes; 0: this process;
    executor="mpi": the workers of an MPI job, see `tinyllm.scaling.runner.run_study`).

    A run that fails is reported in the StudyReport and the others go on (the runs of a size
    whose pre-training failed are reported as failed too).
    """
    jobs = default_jobs() if jobs is None else jobs
    if isinstance(jobs, bool) or not isinstance(jobs, int) or jobs < 0:
        raise StudyError(f"jobs must be a non-negative integer, got {jobs!r}")
    start, started_at = time.perf_counter(), time.strftime("%Y-%m-%dT%H:%M:%S")
    store = ResultsStore(out)
    store.open(plan, corpus_text(plan.budget), corpus_text(plan.budget, stage=2))
    done = store.done()
    runs = [r for r in plan.runs if r.run_id not in done]
    for p in plan.pretrain:      # a finished size whose run directory is gone, still needed
        needed = any(r.source == p.key for r in runs)
        if needed and not _pretrained(store, p.key):
            done.discard(p.run_id)
    report = StudyReport(store.root)
    report.skipped = [s.run_id for s in [*plan.pretrain, *plan.runs] if s.run_id in done]
    pretrain = sorted((p for p in plan.pretrain if p.run_id not in done),
                      key=lambda p: -_cost(p.size))
    ready = {p.key for p in plan.pretrain if p.run_id in done}
    say = log or (lambda message: None)
    say(f"{len(report.skipped)} run(s) already done, {len(pretrain)} pre-training and "
        f"{len(runs)} other run(s) to go, {jobs or 1} at a time")
    _Schedule(plan.budget, store, report, say, ready, executor).run(pretrain, runs, jobs)
    report.elapsed_s = time.perf_counter() - start
    store.add_session({"started": started_at, "wall_s": round(report.elapsed_s, 1),
                       "jobs": jobs, "trained": len(report.finished),
                       "failed": len(report.failed)})
    return report


def _pretrained(store: ResultsStore, key: str) -> bool:
    """True when a pre-trained run directory ("mini", "bert-mini") holds its final model."""
    return (store.pretrain_dir / key / "model").is_dir()


def _cost(size: str) -> int:
    """A size's relative cost (its width squared times depth), to start the longest first."""
    from ..models import GPTConfig

    c = GPTConfig.from_preset(size, vocab_size=64)
    return c.n_layer * c.n_embd ** 2


class _Schedule:
    """Runs the specs, each sized run only once its size is pre-trained."""

    def __init__(self, budget: Budget, store: ResultsStore, report: StudyReport, say, ready,
                 executor: str = "local"):
        self.budget, self.store, self.report, self.say = budget, store, report, say
        self.ready, self.total, self.executor = set(ready), 0, executor

    def run(self, pretrain: list[PretrainSpec], runs: list[RunSpec], jobs: int) -> None:
        self.total, self.waiting = len(pretrain) + len(runs), list(runs)
        if jobs == 0 and self.executor == "local":
            from threadpoolctl import threadpool_limits

            # One BLAS thread, as each worker has: these small matmuls gain little from two,
            # and lose much when another process holds the second core.
            with threadpool_limits(limits=1):
                for spec in pretrain:
                    self._finish(spec, _call(run_pretrain, spec, self.budget, self.store.root))
                for spec in self._release():
                    self._finish(spec, _call(run_one, spec, self.budget, self.store.root))
        else:
            self._run_pool(pretrain, jobs)
        for spec in self.waiting:      # their size's pre-training failed
            self._fail(spec, f"not run: the pre-training of {spec.source!r} failed")

    def _release(self) -> list[RunSpec]:
        """The waiting runs that can start now (baselines, and sizes already pre-trained)."""
        go = [r for r in self.waiting if not r.sized or r.source in self.ready]
        self.waiting = [r for r in self.waiting if r.sized and r.source not in self.ready]
        return go

    def _run_pool(self, pretrain, jobs: int) -> None:
        threads = max(1, (os.cpu_count() or 1) // max(jobs, 1))
        root = self.store.root
        with thread_env(threads), study_pool(self.executor, jobs) as pool:
            futures = {pool.submit(in_worker, _call, run_pretrain, s, self.budget, root): s
                       for s in pretrain}
            try:
                while True:
                    for spec in self._release():
                        futures[pool.submit(in_worker, _call, run_one, spec, self.budget,
                                            root)] = spec
                    if not futures:
                        break
                    finished, _ = wait(futures, return_when=FIRST_COMPLETED)
                    for future in finished:
                        spec = futures.pop(future)
                        self._finish(spec, future.result() if not future.exception()
                                     else {"error": _error(future.exception())})
            except BaseException:
                pool.shutdown(wait=False, cancel_futures=True)
                raise

    def _finish(self, spec, result: dict) -> None:
        if "error" in result:
            self._fail(spec, result["error"])
            return
        row = result["row"]
        if isinstance(spec, PretrainSpec):
            self.store.add(row, "pretrain")
            self.ready.add(spec.key)
        else:
            if spec.sized:
                pre = {r["run_id"]: r for r in self.store.rows("pretrain")}.get(
                    pretrain_run_id(spec.source), {})
                row.update(pretrain_tokens=pre.get("tokens"),
                           pretrain_val_loss_nats=pre.get("val_loss_nats"))
            self.store.add(row)
        self.report.finished.append(spec.run_id)
        self.say(_done_line(row, len(self.report.finished), self.total))

    def _fail(self, spec, error: str) -> None:
        self.report.failed[spec.run_id] = error
        self.say(f"FAILED {spec.run_id}: {error}")


def _error(exc: BaseException) -> str:
    return f"{type(exc).__name__}: {exc}"


def _call(func, spec, budget: Budget, root) -> dict:
    """`func(spec, budget, root)` as {"row": ...}, or {"error": ...} for an expected failure
    (a worker process reports it rather than dying)."""
    try:
        return {"row": func(spec, budget, Path(root))}
    except (RuntimeError, ValueError, FloatingPointError, OSError) as exc:
        return {"error": _error(exc)}


def _done_line(row: dict, k: int, n: int) -> str:
    if row.get("method") is None:
        return (f"[{k}/{n}] {row['run_id']}: val {row['val_loss_nats']:.4f} nats/token | "
                f"{row['wall_s']:.0f} s")
    return (f"[{k}/{n}] {row['run_id']}: test acc {row['test_accuracy']:.3f} | macro-F1 "
            f"{row['test_macro_f1']:.3f} | {row['wall_s']:.1f} s")


def _common() -> dict:
    from .. import __version__

    return {"threads": os.environ.get("OMP_NUM_THREADS"), "version": __version__,
            "schema": SCHEMA}


# ---------------------------------------------------------------------- pre-training
def run_pretrain(spec: PretrainSpec, budget: Budget, root: Path) -> dict:
    """Pre-train `spec.size` into `<root>/pretrain/<key>/` (continuing an interrupted run
    from its last checkpoint) and return its row of PRETRAIN_COLUMNS. With a second stage
    (`spec.continue_steps`), the first goes to `<key>-stage1/` and the second, started from
    it, reads the budget's continue text into `<key>/`; the row's steps and tokens are both
    stages'."""
    store = ResultsStore(root)
    t0 = time.perf_counter()
    if spec.continue_steps:
        first = _lm_stage(spec, budget, store, f"{spec.key}-stage1", store.corpus_path,
                          spec.steps)
        trainer = _lm_stage(spec, budget, store, spec.key, store.continue_path,
                            spec.continue_steps, init_from=first.run_dir)
    else:
        trainer = _lm_stage(spec, budget, store, spec.key, store.corpus_path, spec.steps)
    final = trainer.evaluate()
    model = trainer.model
    return {
        "run_id": spec.run_id, "model": spec.model, "size": spec.size,
        **_shape(model.config),
        "vocab_size": trainer.tokenizer.vocab_size, "params": model.num_params(),
        "non_embedding_params": _non_embedding(model),
        "steps": spec.steps + spec.continue_steps,
        "batch_size": spec.batch_size, "block_size": spec.block_size, "tokens": spec.tokens,
        "lr": spec.lr, "train_loss_nats": final["train_loss"],
        "val_loss_nats": final["val_loss"], "val_bits_per_char": final["val_bits_per_char"],
        "wall_s": round(time.perf_counter() - t0, 2), **_common()}


def _lm_stage(spec: PretrainSpec, budget: Budget, store: ResultsStore, name: str, data: Path,
              steps: int, init_from: Path | None = None):
    """One language-model run `pretrain/<name>/` on `data` (from `init_from`'s weights and
    tokenizer when given), resumed when interrupted; its finished Trainer."""
    from ..training import TrainConfig, Trainer
    from ..training.trainer import LAST

    run_dir = store.pretrain_dir / name
    if (run_dir / LAST).is_file():
        trainer = Trainer.resume(run_dir, quiet=True)
    else:
        shutil.rmtree(run_dir, ignore_errors=True)
        gpt = spec.model == "gpt"
        trainer = Trainer(TrainConfig(
            model=spec.model, preset=spec.size, tokenizer=budget.tokenizer,
            data=str(data.resolve()), init_from=str(init_from) if init_from else None,
            steps=steps, batch_size=spec.batch_size, block_size=spec.block_size,
            lr=spec.lr, min_lr=spec.lr / 10, eval_interval=min(spec.eval_interval, steps),
            eval_iters=budget.eval_iters * 10, sample_tokens=0, seed=spec.seed,
            out=str(store.pretrain_dir), name=name,
            model_overrides={} if not gpt or budget.tie_word_embeddings
            else {"tie_word_embeddings": False},
            **(dict(budget.pretrain_options) if gpt else {})), quiet=True)
    result = trainer.train()
    if result.status != "finished":
        raise RuntimeError(f"pre-training {name} ended {result.status!r} at step "
                           f"{result.step}")
    return trainer


def _non_embedding(model) -> int:
    """Parameters less the token and position embeddings."""
    return sum(p.data.size for name, p in model.named_parameters()
               if name.split(".")[-2] not in _EMBEDDINGS)


#: The token and position (and BERT's segment) embedding tables, GPT's and BERT's names.
_EMBEDDINGS = ("wte", "wpe", "word_embeddings", "position_embeddings",
               "token_type_embeddings")


#: The columns n_layer, n_head, n_embd under a GPT's and a BERT's config names.
_SHAPE_FIELDS = {"n_layer": ("n_layer", "num_hidden_layers"),
                 "n_head": ("n_head", "num_attention_heads"),
                 "n_embd": ("n_embd", "hidden_size")}


def _shape(config) -> dict:
    """n_layer, n_head, n_embd of a GPT or a BERT config."""
    return {column: next(getattr(config, n) for n in names if hasattr(config, n))
            for column, names in _SHAPE_FIELDS.items()}


# ---------------------------------------------------------------------- scored runs
def run_one(spec: RunSpec, budget: Budget, root: Path) -> dict:
    """Train and score one run; its row of RUN_COLUMNS (pre-training columns left to the
    caller)."""
    t0 = time.perf_counter()
    if spec.sized:
        row = _finetune(spec, budget, root)
    else:
        row = _baseline(spec, budget)
    row.update(run_id=spec.run_id, task=spec.task, method=spec.method, size=spec.size,
               label_budget=spec.label_budget, train_examples=spec.train_examples,
               seed=spec.seed, steps=spec.steps, wall_s=round(time.perf_counter() - t0, 2),
               **_common())
    return row


def _finetune(spec: RunSpec, budget: Budget, root: Path) -> dict:
    """A sized run (pretrained, scratch, generative...) in `<root>/_work/<run_id>/`, removed
    when scored."""
    from ..training.finetune import FineTuner, finetune_config

    store = ResultsStore(root)
    run_dir = store.work / spec.run_id
    shutil.rmtree(run_dir, ignore_errors=True)     # a half-finished attempt starts over
    b = budget
    config = finetune_config(
        store.pretrain_dir / spec.source, model=spec.model, task=spec.task,
        train_examples=None if spec.label_budget == ALL else spec.train_examples,
        steps=spec.steps, batch_size=b.batch_size, block_size=b.block_size, lr=b.lr,
        min_lr=b.lr / 10, weight_decay=b.weight_decay, dropout=b.dropout,
        eval_interval=spec.steps, eval_iters=b.eval_iters, seed=spec.seed,
        from_scratch=spec.method in SCRATCH_METHODS, out=str(store.work), name=spec.run_id,
        classifier="generative" if spec.method in GENERATIVE_METHODS else "head",
        prompt=b.qa_prompt if spec.model == "gpt" and spec.task in QA_TASKS else "question",
        pooling=b.pooling if spec.model == "gpt" and spec.task not in QA_TASKS
        and spec.method not in GENERATIVE_METHODS else "last")
    trainer = FineTuner(config, quiet=True)
    result = trainer.train()
    if result.status != "finished":
        raise RuntimeError(f"run {spec.run_id} ended {result.status!r} at step {result.step}")
    test, ev = trainer.scores("test"), result.last_eval
    model = trainer.model
    shutil.rmtree(run_dir, ignore_errors=True)     # checkpoints are scratch; the row stays
    val = _accuracy_columns({k[4:]: v for k, v in ev.items() if k.startswith("val_")})
    return {**_shape(model.config), "params": model.num_params(),
            "non_embedding_params": _non_embedding(model),
            "epochs": round(spec.steps * b.batch_size / spec.train_examples, 3), "lr": b.lr,
            "batch_size": b.batch_size, "block_size": b.block_size,
            "val_accuracy": val["accuracy"], "val_macro_f1": val["macro_f1"],
            **_test_columns(test, trainer.task)}


def _baseline(spec: RunSpec, budget: Budget) -> dict:
    """The majority class or TF-IDF logistic regression on the run's labelled examples."""
    from ..tasks import load_task
    from .baselines import fit_logreg, fit_majority

    task = load_task(spec.task)
    if spec.label_budget != ALL:
        task = task.subsample_train(spec.train_examples, seed=spec.seed)
    row = {}
    if spec.method == "majority":
        model = fit_majority(task)
    else:
        ngrams = budget.ngram_range(spec.task)
        chars = None if spec.method == "logreg-full" else (budget.logreg_chars
                                                           or budget.block_size)
        model = fit_logreg(task, ngram_range=ngrams, max_features=budget.logreg_max_features,
                           steps=budget.logreg_steps, lr=budget.logreg_lr,
                           weight_decay=budget.logreg_weight_decay, max_chars=chars)
        n_features = len(model.features.vocabulary)
        row = {"params": (n_features + 1) * task.num_labels, "lr": budget.logreg_lr,
               "epochs": budget.logreg_steps, "block_size": chars,
               "features": f"char {ngrams[0]}-{ngrams[1]}-grams tf-idf ({n_features}), "
                           + (f"first {chars} chars" if chars else "whole text")}
    val = model.scores(task, "validation")
    row.update(val_accuracy=val["accuracy"], val_macro_f1=val["macro_f1"],
               **_test_columns(model.scores(task, "test"), task))
    return row


def _accuracy_columns(scores: dict) -> dict:
    """{"accuracy", "macro_f1"} of a split's scores; a question-answering task's accuracy is
    its exact match (bAbI's accuracy), its macro-F1 the SQuAD token F1."""
    if "exact_match" in scores:
        return {"accuracy": scores["exact_match"], "macro_f1": scores["f1"]}
    return {"accuracy": scores["accuracy"], "macro_f1": scores["macro_f1"]}


def _test_columns(test: dict, task) -> dict:
    bayes = getattr(task, "bayes_optimal_accuracy", None)
    scores = _accuracy_columns(test)
    return {"test_accuracy": scores["accuracy"], "test_macro_f1": scores["macro_f1"],
            "test_loss": test.get("loss"), "test_examples": len(task.test),
            "bayes_test_accuracy": bayes("test") if bayes else None}
