"""The size-quality frontier: at equal bytes, is a compressed large model better than a dense
small one?

Every rung of a ladder (`tinyllm.scaling.ladder`) is trained once on a corpus, with an
exponential moving average of its weights kept beside it, and then turned into smaller
versions of itself, each scored on the same validation batches:

    dense       float32                            the trained model
    fused       ema                                its weights averaged along the run (EMA)
    quantized   int8-channel, int4-g32/64/128      post-training, weights only (a group size
                                                   that does not divide a width is skipped)
    pruned      prune-50%, prune-75%               magnitude pruning, one shot, no recovery;
                                                   counted as sparse storage (below)
                prune-heads-25%, prune-ffn-25%     structured: a quarter of the attention heads
                                                   or MLP neurons removed (Taylor importance),
                                                   then `recover_steps` of fine-tuning
    dense       float32+recovery                   the control: the dense model fine-tuned the
                                                   same `recover_steps` (more training alone
                                                   lowers the loss a little)
    distilled   distilled                          the rung's shape trained from scratch on the
                                                   largest rung's softened outputs (Hinton et
                                                   al. 2015) for the same steps

`bytes` is what the weights take: float32 parameters at 4 bytes, quantized layers at their
integers plus scales (`tinyllm.nn.quantized.weight_bytes`). A magnitude-pruned matrix is
counted as a sparse one would be stored: its nonzeros at 4 bytes plus a bitmap of 1 bit per
entry; the model itself keeps dense arrays with zeros (no time is saved).

The structured variants also time a training step (forward and backward, one batch) against
the dense model, interleaved, in the same process: `step_ms` and `dense_step_ms`.

`pareto_front(rows)` keeps the rows no other row beats on both bytes and loss, and
`plot_frontier` draws loss against bytes. Results: frontier.csv (one row per variant),
study.json, summary.txt and frontier.png in the output directory; the default budget's are
shipped in tinyllm/scaling/results/frontier/ (`load_frontier("shipped")`).

    tinyllm frontier-study                       # the default budget, <= 30 min on 2 cores
    tinyllm frontier-study --plot shipped        # the shipped results' tables and figure
"""

from __future__ import annotations

import copy
import csv
import json
import math
import multiprocessing
import shutil
import statistics
import time
from concurrent.futures import as_completed
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np

from .._io import atomic_write
from .ladder import Rung
from .plan import StudyError, kaplan_lr, named_budget
from .runner import in_worker, study_pool, thread_env

SHIPPED = Path(__file__).parent / "results" / "frontier"

#: frontier.csv's columns, in order.
COLUMNS = ("rung", "n_layer", "n_head", "n_embd", "params", "method", "family", "bytes",
           "val_loss", "loss_change", "sparsity", "step_ms", "dense_step_ms", "seconds")

FAMILIES = ("dense", "fused", "quantized", "pruned", "distilled")


@dataclass(frozen=True)
class FrontierBudget:
    """A named amount of work: the rungs, how long each trains, what is derived from it."""

    name: str
    widths: tuple[int, ...]
    steps: int                       # training steps of each rung (and each distilled student)
    batch_size: int
    block_size: int
    recover_steps: int               # fine-tuning after structured pruning
    eval_batches: int                # validation batches every loss is measured on
    corpus: str = "pydoc"
    quant_schemes: tuple[str, ...] = ("int8-channel", "int4-g32", "int4-g64", "int4-g128")
    sparsities: tuple[float, ...] = (0.5, 0.75)
    structured_fraction: float = 0.25
    temperature: float = 2.0
    alpha: float = 0.5
    ema_decay: float = 0.99
    timing_reps: int = 9
    minutes: float = 30.0


BUDGETS: dict[str, FrontierBudget] = {
    # Seconds: tests and the notebook's fast mode.
    "tiny": FrontierBudget("tiny", widths=(16, 32), steps=12, batch_size=4, block_size=16,
                           recover_steps=4, eval_batches=2, timing_reps=3, minutes=0.5),
    # At most 30 minutes on 2 cores: the text corpus of the scaling study's default budget,
    # its batch shape and steps, the rungs whose widths 4-bit groups of 32 divide.
    "default": FrontierBudget("default", widths=(32, 64, 96, 128), steps=800, batch_size=16,
                              block_size=64, recover_steps=100, eval_batches=40),
}


def get_budget(name: str) -> FrontierBudget:
    return named_budget(BUDGETS, name, "frontier budget")


# ---------------------------------------------------------------------- training
def _train(budget: FrontierBudget, rung: Rung, root: Path, name: str, *, steps=None, lr=None,
           **extra) -> Path:
    """Train one run into root/runs/name (again from the start if it did not finish)."""
    from ..training import TrainConfig, Trainer

    run_dir = root / "runs" / name
    if (run_dir / "done").exists():
        return run_dir
    shutil.rmtree(run_dir, ignore_errors=True)
    steps = budget.steps if steps is None else steps
    peak = kaplan_lr(rung.non_embedding_params()) if lr is None else lr
    # A run that starts from another model takes its shape from it.
    shape = {} if "init_from" in extra else {"model_overrides": rung.overrides(budget.block_size)}
    config = TrainConfig(
        data=budget.corpus, steps=steps, batch_size=budget.batch_size,
        block_size=budget.block_size, lr=peak, min_lr=peak / 10, eval_interval=steps,
        eval_iters=2, sample_tokens=0, seed=1337, out=str(root / "runs"), name=name,
        **shape, **extra)
    result = Trainer(config, quiet=True).train()
    if result.status != "finished":
        raise RuntimeError(f"frontier run {name} ended {result.status!r} at step {result.step}")
    atomic_write(run_dir / "done", "finished\n")
    return run_dir


def _dense_name(rung: Rung) -> str:
    return f"dense-{rung.name}"


# ---------------------------------------------------------------------- measuring
def sparse_bytes(model) -> int:
    """Bytes of the weights with each Linear/Conv1D matrix stored sparse (nonzeros at 4 bytes
    plus a 1-bit-per-entry bitmap) and every other parameter dense."""
    from ..nn.prune import prunable_weights
    from ..nn.quantized import weight_bytes

    total = weight_bytes(model)
    for w in prunable_weights(model).values():
        nnz = int(np.count_nonzero(w.data))
        total += nnz * w.data.itemsize + math.ceil(w.data.size / 8) - w.data.nbytes
    return total


def _step_ms(models: dict, batch, reps: int) -> dict[str, float]:
    """Median milliseconds of one forward and backward on `batch` per model, interleaved."""
    x, y = batch
    times = {name: [] for name in models}
    for _ in range(reps + 1):                         # the first round warms up
        for name, model in models.items():
            model.train()
            start = time.perf_counter()
            model(x, y).loss.backward()
            times[name].append(time.perf_counter() - start)
            model.zero_grad()
    return {name: 1e3 * statistics.median(t[1:]) for name, t in times.items()}


def _row(rung: Rung, params: int, method: str, family: str, nbytes: int, loss: float,
         **extra) -> dict:
    return {"rung": rung.name, "n_layer": rung.n_layer, "n_head": rung.n_head,
            "n_embd": rung.n_embd, "params": params, "method": method, "family": family,
            "bytes": int(nbytes), "val_loss": float(loss), "loss_change": None,
            "sparsity": 0.0, "step_ms": None, "dense_step_ms": None, "seconds": None, **extra}


def _measure_rung(budget: FrontierBudget, width: int, root: Path) -> list:
    """Train rung `width` (if not done) and measure every variant of it but the distilled."""
    from ..compress.analysis import mean_loss
    from ..compress.structured import ffn_importance, head_importance, prune_ffn, prune_heads
    from ..nn.prune import prune_model, sparsity_of
    from ..nn.quantized import quantize_model, weight_bytes
    from ..training.inference import load_run

    rung = Rung.from_width(width)
    start = time.perf_counter()
    run_dir = _train(budget, rung, root, _dense_name(rung), average="ema",
                     ema_decay=budget.ema_decay)
    dense, tokenizer, config = load_run(run_dir, "last")
    val, train = _batches(budget, dense, tokenizer, config)
    params = dense.num_params()
    rows = [_row(rung, params, "float32", "dense", weight_bytes(dense), mean_loss(dense, val),
                 seconds=time.perf_counter() - start)]
    ema, _, _ = load_run(run_dir, "average")
    rows.append(_row(rung, params, "ema", "fused", weight_bytes(ema), mean_loss(ema, val)))
    for scheme in budget.quant_schemes:
        quantized = copy.deepcopy(dense)
        try:
            quantize_model(quantized, scheme)
        except ValueError:                       # a group size that does not divide a width
            continue
        rows.append(_row(rung, params, scheme, "quantized", weight_bytes(quantized),
                         mean_loss(quantized, val)))
    for sparsity in budget.sparsities:
        pruned = copy.deepcopy(dense)
        prune_model(pruned, sparsity, "global")
        rows.append(_row(rung, params, f"prune-{sparsity:.0%}", "pruned", sparse_bytes(pruned),
                         mean_loss(pruned, val), sparsity=sparsity_of(pruned)))
    rows += _structured_rows(budget, rung, root, (dense, tokenizer, config), train, val, params,
                             (("heads", head_importance, prune_heads),
                              ("ffn", ffn_importance, prune_ffn)))
    return rows


def _measure_distilled(budget: FrontierBudget, width: int, root: Path, teacher: str) -> list:
    """Rung `width`'s shape trained on the teacher run's softened outputs, measured."""
    from ..compress.analysis import mean_loss
    from ..nn.quantized import weight_bytes
    from ..training.inference import load_run

    rung = Rung.from_width(width)
    student = _train(budget, rung, root, f"distilled-{rung.name}",
                     distill_from=str(root / "runs" / teacher),
                     distill_temperature=budget.temperature, distill_alpha=budget.alpha)
    model, tokenizer, config = load_run(student, "last")
    val, _ = _batches(budget, model, tokenizer, config)
    return [_row(rung, model.num_params(), "distilled", "distilled", weight_bytes(model),
                 mean_loss(model, val))]


def _measure_control(budget: FrontierBudget, width: int, root: Path) -> list:
    """The dense rung fine-tuned as the structured-pruned ones are: what the recovery steps
    are worth without pruning."""
    from ..compress.analysis import mean_loss
    from ..nn.quantized import weight_bytes
    from ..training.inference import load_run

    rung = Rung.from_width(width)
    run_dir = _train(budget, rung, root, f"continued-{rung.name}", steps=budget.recover_steps,
                     lr=kaplan_lr(rung.non_embedding_params()) / 10,
                     init_from=str(root / "runs" / _dense_name(rung)), warmup_steps=0)
    model, tokenizer, config = load_run(run_dir, "last")
    val, _ = _batches(budget, model, tokenizer, config)
    return [_row(rung, model.num_params(), "float32+recovery", "dense", weight_bytes(model),
                 mean_loss(model, val))]


def _batches(budget: FrontierBudget, model, tokenizer, config) -> tuple[list, list]:
    """The validation batches every loss is measured on, and 8 training batches (importance
    and timing)."""
    from ..compress.quantize import run_batches

    return (run_batches(config, tokenizer, model, "validation", budget.eval_batches),
            run_batches(config, tokenizer, model, "train", 8))


def _structured_rows(budget, rung, root, loaded, train, val, params, kinds) -> list:
    """Structured pruning of heads and neurons, each fine-tuned `recover_steps`, timed."""
    from ..compress.analysis import mean_loss
    from ..compress.quantize import save_model_dir
    from ..nn.quantized import weight_bytes
    from ..training.inference import load_run

    dense, tokenizer, config = loaded
    fraction = budget.structured_fraction
    rows = []
    for kind, importance, prune in kinds:
        if kind == "heads" and round(fraction * rung.n_layer * rung.n_head) == 0:
            continue                                  # one layer of two heads: none to remove
        src = root / "runs" / f"pruned-{kind}-{rung.name}"
        if not (src / "done").exists():               # the pruned model, as compress writes it
            pruned, _ = prune(dense, fraction, importance(dense, train))
            save_model_dir(pruned, tokenizer, config, src)
            atomic_write(src / "done", "pruned\n")
        lr = kaplan_lr(rung.non_embedding_params()) / 10
        run_dir = _train(budget, rung, root, f"recovered-{kind}-{rung.name}",
                         steps=budget.recover_steps, lr=lr, init_from=str(src), warmup_steps=0)
        recovered, _, _ = load_run(run_dir, "last")
        timing = _step_ms({"dense": dense, "pruned": recovered}, train[0], budget.timing_reps)
        rows.append(_row(rung, params, f"prune-{kind}-{fraction:.0%}", "pruned",
                         weight_bytes(recovered), mean_loss(recovered, val),
                         step_ms=timing["pruned"], dense_step_ms=timing["dense"]))
    return rows


# ---------------------------------------------------------------------- the study
CONTROL = "control"      # the _job kind of the recovery-steps control


def _job(args) -> str:
    """One unit of the study in a worker: a rung's variants, or a distilled student."""
    budget_name, width, root, teacher = args
    budget, root = get_budget(budget_name), Path(root)
    if teacher is None:
        rows, path = _measure_rung(budget, width, root), root / "rungs" / f"w{width}.json"
    elif teacher == CONTROL:
        rows = _measure_control(budget, width, root)
        path = root / "rungs" / f"w{width}-control.json"
    else:
        rows = _measure_distilled(budget, width, root, teacher)
        path = root / "rungs" / f"w{width}-distilled.json"
    atomic_write(path, json.dumps(rows, indent=1) + "\n")
    return str(path)


def run_frontier(budget: FrontierBudget, out, *, jobs: int = 2, log=print,
                 executor: str = "local") -> list[dict]:
    """Run (or resume) the study into `out`; returns every row. Every rung first, largest
    first, `jobs` at a time (executor="mpi": on the workers of an MPI job); then the
    distilled students of the largest rung (the teacher) and the dense models'
    recovery-steps controls."""
    root = Path(out)
    (root / "rungs").mkdir(parents=True, exist_ok=True)
    widths = sorted(budget.widths, reverse=True)
    teacher = _dense_name(Rung.from_width(widths[0]))
    rungs = [(budget.name, w, str(root), None) for w in widths
             if not (root / "rungs" / f"w{w}.json").exists()]
    students = [(budget.name, w, str(root), teacher) for w in widths[1:]
                if not (root / "rungs" / f"w{w}-distilled.json").exists()]
    controls = [(budget.name, w, str(root), CONTROL) for w in widths
                if not (root / "rungs" / f"w{w}-control.json").exists()]
    start = time.perf_counter()
    with thread_env(1):
        for stage in (rungs, students + controls):
            if executor == "mpi" and stage:
                with study_pool(executor, jobs) as pool:
                    futures = [pool.submit(in_worker, _job, job) for job in stage]
                    for future in as_completed(futures):
                        log(f"  done: {future.result()} "
                            f"({(time.perf_counter() - start) / 60:.1f} min)")
            elif jobs > 1 and len(stage) > 1:
                ctx = multiprocessing.get_context("spawn")
                with ctx.Pool(min(jobs, len(stage))) as pool:
                    for path in pool.imap_unordered(_job, stage):
                        log(f"  done: {path} ({(time.perf_counter() - start) / 60:.1f} min)")
            else:
                for job in stage:
                    log(f"  done: {_job(job)} ({(time.perf_counter() - start) / 60:.1f} min)")
    rows = collect(root)
    write_outputs(root, budget, rows, time.perf_counter() - start)
    return rows


def collect(root) -> list[dict]:
    """Every row of the files in root/rungs, largest rung first, each row's loss change
    against its rung's dense float32 model."""
    rows = []
    for path in sorted(Path(root, "rungs").glob("w*.json"),
                       key=lambda p: (-int(p.stem.split("-")[0][1:]), p.stem)):
        rows += json.loads(path.read_text())
    dense = {r["rung"]: r["val_loss"] for r in rows if r["method"] == "float32"}
    for r in rows:
        r["loss_change"] = r["val_loss"] / dense[r["rung"]] - 1 if r["rung"] in dense else None
    return rows


def write_outputs(root: Path, budget: FrontierBudget, rows: list[dict], seconds: float) -> None:
    from .. import __version__

    lines = [",".join(COLUMNS)]
    for r in rows:
        lines.append(",".join("" if r.get(c) is None else str(r[c]) for c in COLUMNS))
    atomic_write(root / "frontier.csv", "\n".join(lines) + "\n")
    previous = root / "study.json"
    before = (json.loads(previous.read_text()).get("total_seconds", 0.0)
              if previous.exists() else 0.0)
    study = {"budget": asdict(budget), "version": __version__, "last_seconds": seconds,
             "total_seconds": before + seconds}      # every session that worked on it
    atomic_write(root / "study.json", json.dumps(study, indent=2) + "\n")
    atomic_write(root / "summary.txt", summary(rows) + "\n")


# ---------------------------------------------------------------------- reading and showing
def load_frontier(source="shipped") -> list[dict]:
    """The rows of a study's frontier.csv: `source` is "shipped" or a results directory."""
    root = SHIPPED if source == "shipped" else Path(source)
    path = root / "frontier.csv"
    if not path.is_file():
        raise StudyError(f"{root} holds no frontier.csv; run tinyllm frontier-study --out "
                         f"{root} first")
    numeric = {"n_layer": int, "n_head": int, "n_embd": int, "params": int, "bytes": int,
               "val_loss": float, "loss_change": float, "sparsity": float, "step_ms": float,
               "dense_step_ms": float, "seconds": float}
    with open(path, newline="") as f:
        return [{k: (numeric[k](v) if k in numeric and v != "" else (v if v != "" else None))
                 for k, v in row.items()} for row in csv.DictReader(f)]


def pareto_front(rows: list[dict]) -> list[dict]:
    """The rows no other row beats on both bytes and loss (the lowest loss for at most that
    many bytes), by bytes."""
    front, best = [], math.inf
    for r in sorted(rows, key=lambda r: (r["bytes"], r["val_loss"])):
        if r["val_loss"] < best:
            front.append(r)
            best = r["val_loss"]
    return front


def plot_frontier(rows: list[dict], ax=None):
    """Validation loss against bytes (log scale), a marker per family, the frontier drawn."""
    import matplotlib.pyplot as plt

    if ax is None:
        _, ax = plt.subplots(figsize=(7.5, 5))
    markers = {"dense": "o", "fused": "D", "quantized": "s", "pruned": "v", "distilled": "*"}
    for family in FAMILIES:
        pts = [r for r in rows if r["family"] == family]
        if pts:
            ax.scatter([r["bytes"] for r in pts], [r["val_loss"] for r in pts],
                       marker=markers[family], label=family, alpha=0.8)
    dense = sorted((r for r in rows if r["method"] == "float32"), key=lambda r: r["bytes"])
    ax.plot([r["bytes"] for r in dense], [r["val_loss"] for r in dense], ":", color="gray",
            label="dense float32 ladder")
    front = pareto_front(rows)
    ax.step([r["bytes"] for r in front], [r["val_loss"] for r in front], where="post",
            color="black", lw=1.2, label="Pareto frontier")
    ax.set_xscale("log")
    ax.set_xlabel("bytes of the weights")
    ax.set_ylabel("validation loss (nats/token)")
    ax.set_title("size-quality frontier")
    ax.legend(fontsize=8)
    return ax


def summary(rows: list[dict]) -> str:
    """Per rung: bytes and loss of every variant; the frontier's members."""
    out = [f"{'rung':9s} {'method':16s} {'family':9s} {'bytes':>10s} {'val loss':>9s} "
           f"{'change':>8s} {'step ms (dense)':>16s}"]
    for r in rows:
        step = (f"{r['step_ms']:.1f} ({r['dense_step_ms']:.1f})" if r.get("step_ms") is not None
                else "")
        out.append(f"{r['rung']:9s} {r['method']:16s} {r['family']:9s} {r['bytes']:>10,d} "
                   f"{r['val_loss']:9.4f} {100 * r['loss_change']:+7.2f}% {step:>16s}")
    out.append("Pareto frontier (bytes -> loss): " + ", ".join(
        f"{r['rung']} {r['method']} {r['bytes']:,d} -> {r['val_loss']:.4f}"
        for r in pareto_front(rows)))
    return "\n".join(out)
