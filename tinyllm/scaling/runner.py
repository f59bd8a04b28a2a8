"""Running a plan: each run in a worker process (two at a time), resumable after a crash.

`run_study` skips the runs its results directory already holds, trains the rest longest
first, and hands each finished run to the `store` at once. A worker writes its result (or its
traceback) to a JSON file in ``_work/``; one that finished just before a crash is picked up by
the next `run_study`.

>>> report = run_study(plan_study(BUDGETS["tiny"]), "runs/tiny", jobs=2)   # doctest: +SKIP
"""

from __future__ import annotations

import contextlib
import dataclasses
import json
import math
import os
import shutil
import time
import traceback
from dataclasses import asdict, dataclass
from pathlib import Path

from .._io import atomic_write
from .._memory import peak_rss_mib
from .ladder import Rung, check_fits_in_memory
from .plan import SWEEPS, RunSpec, StudyError, StudyPlan
from .store import SCHEMA, ResultsStore
from .tasks import make_task, task_accuracy

LN2 = math.log(2.0)
#: Environment variables that size the BLAS / OpenMP thread pools; read when NumPy loads.
THREAD_VARS = ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS",
               "BLIS_NUM_THREADS", "VECLIB_MAXIMUM_THREADS", "NUMEXPR_NUM_THREADS")


@contextlib.contextmanager
def thread_env(threads: int):
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


# ---------------------------------------------------------------------- running a plan
@dataclass
class StudyReport:
    """What `run_study` did."""

    root: Path
    finished: list[str]
    skipped: list[str]
    failed: dict[str, str]
    elapsed_s: float


def default_jobs() -> int:
    """Worker processes to run at once: two, or one on a one-core machine."""
    return max(1, min(2, os.cpu_count() or 1))


#: Where a study's runs are trained: worker processes of this machine, or MPI ranks.
EXECUTORS = ("local", "mpi")


def run_study(plan: StudyPlan, out, *, jobs: int | None = None, log=None,
              executor: str = "local") -> StudyReport:
    """Run every spec of `plan` not yet in `out`, `jobs` worker processes at a time.

    jobs=0 trains in this process (no per-run peak memory; for notebooks and tests).
    executor="mpi" sends the runs to the workers of an `mpi4py.futures.MPIPoolExecutor`
    (`mpiexec -n 17 python -m mpi4py.futures -m tinyllm scaling --executor mpi`: one
    parent, 16 workers, on as many machines as the job has); results and resumption are the
    local executor's. A run that fails is reported in the StudyReport and the others go on.
    """
    pool = study_pool(executor, 1) if executor == "mpi" else None
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
    where = (f"on the MPI pool's {pool.num_workers} workers" if pool is not None
             else f"{jobs or 1} at a time")
    say(f"{len(skipped)} run(s) already done, {len(todo)} to go, {where}")
    start = time.perf_counter()
    if pool is not None:
        with pool:
            finished, failed = _run_pool(pool, todo, store, say)
    elif jobs == 0:
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
            store.write_rows(sweep, rows)
    shutil.rmtree(scratch.root, ignore_errors=True)
    return sorted(peaks)


def _check_memory(plan: StudyPlan, jobs: int) -> None:
    """Refuse a plan whose largest rung would not fit in memory `jobs` times over."""
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
    """Train `todo` one after the other in this process; (finished ids, failed id -> error)."""
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
    """Train `todo` in `jobs` spawned workers; (finished ids, failed id -> error)."""
    import multiprocessing as mp
    from multiprocessing.connection import wait

    ctx = mp.get_context("spawn")
    threads = max(1, (os.cpu_count() or 1) // jobs)
    pending, running, finished, failed = list(todo), {}, [], {}
    try:
        while pending or running:
            while pending and len(running) < jobs:
                spec = pending.pop(0)
                with thread_env(threads):
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


def mpi_pool():
    """An `mpi4py.futures.MPIPoolExecutor` over the job's other ranks, or a clear error."""
    try:
        from mpi4py.futures import MPIPoolExecutor
    except ImportError:
        raise StudyError('--executor mpi needs mpi4py: pip install ".[mpi]", then run '
                         "mpiexec -n N python -m mpi4py.futures -m tinyllm <study> --executor "
                         "mpi ...") from None
    return MPIPoolExecutor()


def study_pool(executor: str, jobs: int):
    """The executor a study's runs go to: `jobs` spawned processes here, or an MPI pool."""
    if executor not in EXECUTORS:
        raise StudyError(f"executor {executor!r} is not one; accepted: {', '.join(EXECUTORS)}")
    if executor == "mpi":
        return mpi_pool()
    import multiprocessing as mp
    from concurrent.futures import ProcessPoolExecutor

    return ProcessPoolExecutor(jobs, mp_context=mp.get_context("spawn"))


def in_worker(func, *args):
    """`func(*args)` in a pool worker: a process of its own, never a rank of one data-parallel
    run (`solo`); on an MPI job's worker, on its share of the machine's cores."""
    from ..distributed import launcher_size, solo
    from ..threads import limited, resolve

    with solo():
        if launcher_size() == 1:
            return func(*args)           # a local worker: the parent set its thread variables
        with limited(resolve("auto")[0]):
            return func(*args)


def each_finished(func, calls: list[tuple], *, jobs: int, executor: str = "local"):
    """Yield (args, func(*args)) for every `args` of `calls`, each as it finishes: one after
    another in this process (jobs <= 1 and the local executor), else on `jobs` spawned
    workers with one BLAS thread each (or an MPI job's pool). The small studies (muP,
    induction) train their grids through it and write each result as it comes."""
    if jobs <= 1 and executor == "local":
        for args in calls:
            yield args, func(*args)
        return
    from concurrent.futures import as_completed

    with thread_env(1), study_pool(executor, jobs) as pool:
        futures = {pool.submit(in_worker, func, *args): args for args in calls}
        for future in as_completed(futures):
            yield futures[future], future.result()


def _run_pool(pool, todo, store, say):
    """Train `todo` on an executor's workers, adding each result as it arrives."""
    from concurrent.futures import as_completed

    futures = {pool.submit(in_worker, _pool_task, asdict(spec), str(store.work)): spec
               for spec in todo}
    finished, failed = [], {}
    for future in as_completed(futures):
        spec = futures[future]
        try:
            outcome = future.result()
        except Exception as exc:  # noqa: BLE001 - a worker that died: reported, others go on
            outcome = {"error": f"{type(exc).__name__}: {exc}"}
        if "error" in outcome:
            failed[spec.run_id] = outcome["error"]
            say(f"FAILED {spec.run_id}: {failed[spec.run_id]}")
            continue
        store.add(outcome)
        finished.append(spec.run_id)
        say(_done_line(outcome["row"], len(finished), len(todo)))
    return finished, failed


def _pool_task(spec_dict: dict, work_dir: str) -> dict:
    """One run on an executor's worker: its result, or {"error": ...} (the traceback stays
    in the run's error file)."""
    spec = RunSpec(**spec_dict)
    try:
        return run_one(spec, Path(work_dir))
    except Exception as exc:  # noqa: BLE001 - reported to the parent, which decides
        atomic_write(Path(work_dir) / f"{spec.run_id}.error.json", json.dumps(
            {"run_id": spec.run_id, "error": f"{type(exc).__name__}: {exc}",
             "traceback": traceback.format_exc()}))
        return {"error": f"{type(exc).__name__}: {exc}"}


def _worker_error(work: Path, spec: RunSpec, exitcode) -> str:
    """Why a worker failed: its own report, or its exit code when it left none."""
    path = work / f"{spec.run_id}.error.json"
    if path.is_file():
        return json.loads(path.read_text(encoding="utf-8"))["error"]
    return f"worker exited with code {exitcode} (killed, out of memory?)"


def _done_line(row: dict, k: int, n: int) -> str:
    """One line of progress for a finished run."""
    acc = f" acc {row['accuracy']:.2f}" if row.get("accuracy") is not None else ""
    return (f"[{k}/{n}] {row['run_id']}: val {row['val_loss_nats']:.4f} nats{acc} | "
            f"{row['wall_s']:.0f} s | {row['peak_rss_mb']:.0f} MiB")


# ---------------------------------------------------------------------- one run
def run_one(spec: RunSpec, work_dir: Path) -> dict:
    """Train `spec` in `<work_dir>/<run_id>/` and return its result row and curve."""
    from ..training import TrainConfig, Trainer

    base_rss = peak_rss_mib()
    run_dir = Path(work_dir) / spec.run_id
    shutil.rmtree(run_dir, ignore_errors=True)   # a half-finished attempt starts over
    t0 = time.perf_counter()
    data = spec.data or _task_corpus_file(spec, Path(work_dir))
    config = TrainConfig(
        data=data, steps=spec.steps, batch_size=spec.batch_size, block_size=spec.block_size,
        lr=spec.lr, min_lr=spec.lr / 10, warmup_steps=spec.warmup_steps, beta2=spec.beta2,
        eval_interval=spec.eval_interval, eval_iters=spec.eval_iters, sample_tokens=0,
        seed=spec.seed, out=str(work_dir), name=spec.run_id,
        model_overrides=spec.rung.overrides(spec.block_size))
    trainer = Trainer(config, quiet=True)
    setup_s = time.perf_counter() - t0
    result = trainer.train()
    wall_s = time.perf_counter() - t0
    if result.status != "finished":
        raise RuntimeError(f"run {spec.run_id} ended {result.status!r} at step {result.step}")
    trainer.config.eval_iters = spec.final_eval_iters
    row = _result_row(spec, trainer, trainer.evaluate(), _task_accuracy(spec, trainer))
    row.update(wall_s=wall_s, setup_s=setup_s,
               tokens_per_s=spec.tokens / max(wall_s - setup_s, 1e-9),
               peak_rss_mb=peak_rss_mib(), base_rss_mb=base_rss)
    curve = _curve(spec, trainer, row)
    shutil.rmtree(run_dir, ignore_errors=True)   # checkpoints are scratch; the row is the result
    return {"row": row, "curve": curve}


def _task_accuracy(spec: RunSpec, trainer) -> float | None:
    """Exact-match accuracy on the task's held-out prompts (None for a corpus run)."""
    if spec.task is None:
        return None
    prompts, answers = make_task(spec.task).eval_set(spec.task_eval, seed=spec.seed)
    return task_accuracy(trainer.model, trainer.tokenizer, prompts, answers)


def _result_row(spec: RunSpec, trainer, final: dict, accuracy: float | None) -> dict:
    """The run's row of RUN_COLUMNS, all but its times and memory."""
    from .. import __version__

    rung, model = spec.rung, trainer.model
    fpt = model.flops_per_token(training=True, seq_len=spec.block_size)
    n_nonemb = model.num_params(non_embedding=True)
    return {
        "run_id": spec.run_id, "sweep": spec.sweep, "corpus": spec.corpus, "rung": rung.name,
        "n_layer": rung.n_layer, "n_head": rung.n_head, "n_embd": rung.n_embd,
        "vocab_size": trainer.tokenizer.vocab_size, "block_size": spec.block_size,
        "batch_size": spec.batch_size, "steps": spec.steps, "lr": spec.lr,
        "params": model.num_params(), "non_embedding_params": n_nonemb, "tokens": spec.tokens,
        "flops_per_token": fpt, "flops": float(fpt) * spec.tokens,
        "flops_6n": 6.0 * n_nonemb * spec.tokens, "flops_budget": spec.flops_budget,
        "train_loss_nats": final["train_loss"], "val_loss_nats": final["val_loss"],
        "train_loss_bits": final["train_loss"] / LN2, "val_loss_bits": final["val_loss"] / LN2,
        "val_bits_per_char": final["val_bits_per_char"],
        "entropy_rate_nats": trainer.corpus.entropy_rate_nats,
        "unigram_nats": trainer.unigram_nats, "accuracy": accuracy,
        "task": spec.task["name"] if spec.task else None,
        "threads": os.environ.get("OMP_NUM_THREADS"), "seed": spec.seed,
        "version": __version__, "schema": SCHEMA,
    }


def _curve(spec: RunSpec, trainer, row: dict) -> list[dict]:
    """The run's rows of CURVE_COLUMNS: one per evaluation logged while it trained."""
    tokens_per_step = spec.batch_size * spec.block_size
    return [{"run_id": spec.run_id, "sweep": spec.sweep, "corpus": spec.corpus,
             "rung": row["rung"], "params": row["params"],
             "non_embedding_params": row["non_embedding_params"],
             "step": r["step"], "tokens": r["step"] * tokens_per_step,
             "flops": float(row["flops_per_token"]) * r["step"] * tokens_per_step,
             "train_loss_nats": r["train_loss"], "val_loss_nats": r["val_loss"]}
            for r in trainer.metrics.read() if r.get("kind") == "eval"]


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
