"""Running a plan: train and score each (task, family, size) once; resumable after a crash.

`run_study` skips every run its results directory already holds and runs the rest, the most
expensive first (so that two workers finish together), each in a worker process on one BLAS
thread (``jobs`` >= 1) or one after the other in this process (``jobs=0``, for tests and
notebooks). Each finished run's row is written to runs.csv at once; a run that fails is
reported and the others go on.

>>> report = run_study(plan_study(BUDGETS["tiny"]), "runs/mt-tiny", jobs=0)   # doctest: +SKIP

`run` (default `run_one`) is what trains and scores one spec: ``run(spec, budget, root) ->
row``. The planning, storage, resume and reporting work the same with any such function.
"""

from __future__ import annotations

import os
import shutil
import time
from concurrent.futures import FIRST_COMPLETED, wait
from pathlib import Path

from ..finetuning.runner import StudyReport, _call, _error
from ..scaling.runner import default_jobs, in_worker, study_pool, thread_env
from .plan import Budget, RunSpec, StudyError, StudyPlan
from .store import SCHEMA, ResultsStore


def run_study(plan: StudyPlan, out, *, jobs: int | None = None, log=None,
              run=None, executor: str = "local") -> StudyReport:
    """Run every run of `plan` not yet in `out` (`jobs` worker processes; 0: this process;
    executor="mpi": the workers of an MPI job, see `tinyllm.scaling.runner.run_study`).

    `log` gets one line per event (they also go to study.log); `run` replaces `run_one`
    (a module-level function when jobs >= 1: it travels to the workers by name).
    """
    from .estimate import run_seconds

    jobs = default_jobs() if jobs is None else jobs
    if isinstance(jobs, bool) or not isinstance(jobs, int) or jobs < 0:
        raise StudyError(f"jobs must be a non-negative integer, got {jobs!r}")
    run = run_one if run is None else run
    start, started_at = time.perf_counter(), time.strftime("%Y-%m-%dT%H:%M:%S")
    store = ResultsStore(out)
    store.open(plan)
    done = store.done()
    report = StudyReport(store.root)
    report.skipped = [s.run_id for s in plan.runs if s.run_id in done]
    todo = sorted((s for s in plan.runs if s.run_id not in done), key=lambda s: -run_seconds(s))

    def say(line: str) -> None:
        store.log(line)
        if log:
            log(line)

    say(f"session: {len(report.skipped)} run(s) already done, {len(todo)} to go, "
        f"{jobs or 1} at a time")
    try:
        _Runs(plan.budget, store, report, say, len(todo), executor).run(todo, jobs, run)
    finally:
        report.elapsed_s = time.perf_counter() - start
        store.add_session({"started": started_at, "wall_s": round(report.elapsed_s, 1),
                           "jobs": jobs, "trained": len(report.finished),
                           "failed": len(report.failed)})
    return report


class _Runs:
    """Hands the specs to `run` (here or in workers) and writes each result as it comes."""

    def __init__(self, budget: Budget, store: ResultsStore, report: StudyReport, say,
                 total: int, executor: str = "local"):
        self.budget, self.store, self.report, self.say = budget, store, report, say
        self.total, self.executor = total, executor

    def run(self, todo: list[RunSpec], jobs: int, run) -> None:
        if jobs == 0 and self.executor == "local":
            from threadpoolctl import threadpool_limits

            # One BLAS thread, as each worker has: the study's matmuls are small.
            with threadpool_limits(limits=1):
                for spec in todo:
                    self._finish(spec, _call(run, spec, self.budget, self.store.root))
            return
        # One BLAS thread per worker, whatever the cores: the study's matmuls are too small
        # to gain from more, and the cost model was calibrated so.
        with thread_env(1), study_pool(self.executor, jobs) as pool:
            futures = {pool.submit(in_worker, _call, run, spec, self.budget,
                                   self.store.root): spec for spec in todo}
            try:
                while futures:
                    finished, _ = wait(futures, return_when=FIRST_COMPLETED)
                    for future in finished:
                        spec = futures.pop(future)
                        self._finish(spec, future.result() if not future.exception()
                                     else {"error": _error(future.exception())})
            except BaseException:
                pool.shutdown(wait=False, cancel_futures=True)
                raise

    def _finish(self, spec: RunSpec, outcome: dict) -> None:
        if "error" in outcome:
            self.report.failed[spec.run_id] = outcome["error"]
            self.say(f"FAILED {spec.run_id}: {outcome['error']}")
            return
        self.store.add(outcome["row"])
        self.report.finished.append(spec.run_id)
        self.say(done_line(outcome["row"], len(self.report.finished), self.total))


def done_line(row: dict, k: int, n: int) -> str:
    """One line of progress for a finished run."""
    return (f"[{k}/{n}] {row['run_id']}: test exact match {row['test_exact_match']:.3f} | "
            f"BLEU {row['test_bleu']:.1f} | {row['steps']} steps | {row['wall_s']:.0f} s")


def _blas_threads() -> int | None:
    """The BLAS threads this process uses (what the row reports)."""
    try:
        from threadpoolctl import threadpool_info
    except ImportError:
        value = os.environ.get("OMP_NUM_THREADS")
        return int(value) if value and value.isdigit() else None
    counts = [p["num_threads"] for p in threadpool_info() if p.get("user_api") == "blas"]
    return max(counts) if counts else None


# ---------------------------------------------------------------------- one run
def run_one(spec: RunSpec, budget: Budget, root: Path) -> dict:
    """Train `spec` in `<root>/_work/<run_id>/`, score its test split greedily, and return
    its row of RUN_COLUMNS (the run directory is removed: the row is the result)."""
    from .. import __version__
    from ..training import TrainConfig, Trainer
    from ..training.translation import score_translations

    work = ResultsStore(root).work
    run_dir = work / spec.run_id
    shutil.rmtree(run_dir, ignore_errors=True)     # a half-finished attempt starts over
    t0 = time.perf_counter()
    trainer = Trainer(TrainConfig(
        model=spec.family, preset=spec.size, data=spec.task, steps=spec.steps,
        batch_size=spec.batch_size, lr=spec.lr, min_lr=spec.min_lr,
        warmup_steps=spec.warmup_steps, weight_decay=spec.weight_decay, dropout=spec.dropout,
        eval_interval=spec.steps, eval_iters=spec.eval_iters, seed=spec.seed, out=str(work),
        name=spec.run_id, model_overrides=dict(spec.model_overrides)), quiet=True)
    result = trainer.train()
    if result.status != "finished":
        raise RuntimeError(f"run {spec.run_id} ended {result.status!r} at step {result.step}")
    train_s = time.perf_counter() - t0
    task, ev = trainer.task, result.last_eval
    test = task.test if spec.max_test_pairs is None else task.test[:spec.max_test_pairs]
    scores = score_translations(trainer.model, trainer.tokenizer, test,
                                batch_size=spec.decode_batch_size,
                                bleu_tokenize=task.bleu_tokenize)
    wall_s = time.perf_counter() - t0
    model = trainer.model
    shutil.rmtree(run_dir, ignore_errors=True)
    return {
        "run_id": spec.run_id, "task": spec.task, "family": spec.family, "size": spec.size,
        "params": model.num_params(), "vocab_size": trainer.tokenizer.vocab_size,
        "block_size": model.config.block_size, "train_pairs": task.sizes["train"],
        "validation_pairs": task.sizes["validation"], "test_pairs": task.sizes["test"],
        "steps": spec.steps, "batch_size": spec.batch_size, "lr": spec.lr,
        "warmup_steps": spec.warmup_steps, "dropout": spec.dropout,
        "init": " ".join(f"{k}={v:g}" for k, v in spec.model_overrides) or "default",
        "train_loss": ev["train_loss"], "val_loss": ev["val_loss"],
        "val_exact_match": ev["val_exact_match"], "val_pairs": ev["val_translated"],
        "test_exact_match": scores["exact_match"], "test_bleu": scores["bleu"],
        "test_chrf": scores["chrf"], "test_scored": scores["pairs"],
        "bleu_tokenize": task.bleu_tokenize, "train_s": round(train_s, 2),
        "test_s": round(wall_s - train_s, 2), "wall_s": round(wall_s, 2),
        "threads": _blas_threads(), "seed": spec.seed, "version": __version__,
        "schema": SCHEMA}
