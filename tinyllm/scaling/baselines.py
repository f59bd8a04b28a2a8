"""Baselines on the study's axes: count-based n-grams (orders 1-5) and LSTMs of matched size.

`run_baselines(results_dir)` reads a finished study's study.json and, for each of its corpora,
uses the size sweep's own data: the same corpus (same options, checked by hash), the same
character tokenizer, the same train / validation split (`train_val_split(ids, 0.1)`).

- ``n-gram``: `NGramLM(order, V)` (interpolated Kneser-Ney, D = 0.75) for orders 1..5, fitted
  on the whole training split and scored on the whole validation split. Its size is the number
  of stored n-gram entries (`NGramLM.num_params`); it has no embedding, so N = params.
- ``LSTM``: one `LSTMLM` per ladder rung, its hidden size H chosen so that its non-embedding
  parameters match the rung's GPT N (tied head, embedding width H; non-embedding =
  L (8 H^2 + 8 H) + V for the gates and the head's bias). One layer up to N = 4e5, two above:
  at this token budget a deeper, narrower LSTM of the same N trains to a worse loss (on the
  default study's pydoc, 2 layers at N = 5.7e4 to 3.3e5 did no better than 1 layer at
  N = 1.3e4). Each is
  trained exactly as the rung's GPT was in the size sweep (steps, batch, block, so the same
  tokens; warmup, cosine to lr / 10, the same final evaluation of 40 batches), except for the
  peak learning rate: LSTMs want larger steps, `lstm_lr(N)` (1e-2 at N <= 1e4 falling
  log-linearly to 3e-3 at N >= 3e5).

Rows go to ``<results_dir>/baselines.csv`` (one per model, written atomically as each one
finishes); running again skips the rows already there, so an interrupted run resumes.

>>> rows = run_baselines("runs/scaling-default", jobs=2)       # doctest: +SKIP
"""

from __future__ import annotations

import math
import os
import shutil
import time
from pathlib import Path

from .._io import atomic_write
from .ladder import Rung
from .plan import SYNTHETIC, StudyError, lr_suffix, text_digest
from .runner import LN2, each_finished
from .store import SCHEMA, csv_text, load_meta, read_csv
from .tuning import bracket, next_exponents, tried_exponents

#: n-gram orders fitted for every corpus.
NGRAM_ORDERS = (1, 2, 3, 4, 5)
SEED = 1337

BASELINE_RUN_COLUMNS = (
    "run_id", "corpus", "model", "order", "rung", "num_layers", "hidden_size", "vocab_size",
    "params", "params_non_embedding", "gpt_non_embedding_params", "steps", "batch_size",
    "block_size", "tokens", "lr", "train_tokens", "train_loss_nats", "val_loss_nats",
    "val_loss_bits", "wall_s", "threads", "seed", "version", "schema",
)


def lstm_lr(non_embedding_params: int) -> float:
    """Peak learning rate of a matched LSTM: 1e-2 up to N = 1e4, 3e-3 from N = 3e5, and
    log-linear in between."""
    lo, hi = math.log(1e4), math.log(3e5)
    t = min(1.0, max(0.0, (math.log(non_embedding_params) - lo) / (hi - lo)))
    return math.exp(math.log(1e-2) + t * (math.log(3e-3) - math.log(1e-2)))


def lstm_non_embedding(hidden_size: int, num_layers: int, vocab_size: int) -> int:
    """Non-embedding parameters of a tied `LSTMLM` with n_embd = hidden_size."""
    h = hidden_size
    return num_layers * (8 * h * h + 8 * h) + vocab_size


def match_lstm(rung: Rung, vocab_size: int) -> tuple[int, int]:
    """(num_layers, hidden_size) of the LSTM whose non-embedding N is nearest the rung's."""
    target = rung.non_embedding_params()
    layers = 1 if target < 400_000 else 2
    h = max(1, int(math.sqrt(max(target - vocab_size, 1) / (8 * layers))))
    best = min(range(max(1, h - 3), h + 4),
               key=lambda x: abs(lstm_non_embedding(x, layers, vocab_size) - target))
    return layers, best


def _settings(meta: dict, corpus: str) -> dict:
    budget = meta["budget"]
    return budget["markov"] if corpus in SYNTHETIC else budget["text"]


def _load_ids(info: dict):
    """The corpus's character ids and its (train, val) split, checked against study.json."""
    from ..data import load_corpus, train_val_split
    from ..data.datasets import encode_corpus
    from ..tokenizers import CharTokenizer
    from ..training import TrainConfig

    corpus = load_corpus(info["data"])
    digest = text_digest(corpus.text)
    if digest != info["sha256"]:
        raise StudyError(f"corpus {info['name']!r} ({info['data']}) has changed since the study "
                         f"ran (sha256 {digest}, study.json says {info['sha256']}); accepted: "
                         "the study's own corpus")
    tokenizer = CharTokenizer().train(corpus.text)
    ids = encode_corpus(corpus, tokenizer)
    train, val = train_val_split(ids, TrainConfig.val_fraction)
    return tokenizer.vocab_size, train, val


def ngram_row(corpus: str, order: int, vocab_size: int, train, val) -> dict:
    """Fit an order-`order` NGramLM on `train` and score `val`."""
    from ..models import NGramLM

    t0 = time.perf_counter()
    lm = NGramLM(order, vocab_size).fit(train)
    val_loss = lm.cross_entropy(val)
    n = lm.num_params()
    return _row(run_id=f"ngram-{corpus}-o{order}", corpus=corpus, model="n-gram", order=order,
                vocab_size=vocab_size, params=n, params_non_embedding=n,
                train_tokens=len(train), val_loss_nats=val_loss,
                wall_s=time.perf_counter() - t0)


def lstm_row(corpus: str, data: str, rung: Rung, settings: dict, meta: dict,
             vocab_size: int, work_dir, exponent: int = 0) -> dict:
    """Train the LSTM matched to `rung` as the size sweep trained the rung's GPT, at 2**exponent
    times `lstm_lr` (its run id then ends in `lr_suffix(exponent)`)."""
    from ..training import TrainConfig, Trainer

    layers, hidden = match_lstm(rung, vocab_size)
    steps, batch, block = (settings["size_steps"], settings["batch_size"],
                           settings["block_size"])
    budget = meta["budget"]
    lr = lstm_lr(lstm_non_embedding(hidden, layers, vocab_size)) * 2.0 ** exponent
    run_id = lstm_run_id(corpus, rung, exponent)
    shutil.rmtree(Path(work_dir) / run_id, ignore_errors=True)  # an interrupted try starts over
    t0 = time.perf_counter()
    config = TrainConfig(
        model="lstm", preset="nano", data=data, steps=steps, batch_size=batch,
        block_size=block, lr=lr, min_lr=lr / 10, warmup_steps=min(100, steps // 10),
        eval_interval=max(1, steps // max(settings["evals"], 1)),
        eval_iters=budget["eval_iters"], sample_tokens=0, seed=SEED, out=str(work_dir),
        name=run_id, model_overrides={"num_layers": layers, "hidden_size": hidden,
                                      "n_embd": hidden})
    trainer = Trainer(config, quiet=True)
    result = trainer.train()
    if result.status != "finished":
        raise RuntimeError(f"run {run_id} ended {result.status!r} at step {result.step}")
    trainer.config.eval_iters = budget["final_eval_iters"]
    final = trainer.evaluate()
    model = trainer.model
    shutil.rmtree(trainer.run_dir, ignore_errors=True)
    return _row(run_id=run_id, corpus=corpus, model="LSTM", rung=rung.name, num_layers=layers,
                hidden_size=hidden, vocab_size=vocab_size, params=model.num_params(),
                params_non_embedding=model.num_params(non_embedding=True),
                gpt_non_embedding_params=rung.non_embedding_params(), steps=steps,
                batch_size=batch, block_size=block, tokens=steps * batch * block, lr=lr,
                train_tokens=len(trainer.train_ids), train_loss_nats=final["train_loss"],
                val_loss_nats=final["val_loss"], wall_s=time.perf_counter() - t0)


def lstm_run_id(corpus: str, rung: Rung, exponent: int = 0) -> str:
    """The id of the LSTM matched to `rung` on `corpus` at 2**exponent times `lstm_lr`."""
    return f"lstm-{corpus}-{rung.name}{lr_suffix(exponent)}"


def lstm_exponent(row: dict) -> int:
    """The k of a finished LSTM row: its learning rate over `lstm_lr`, as a power of 2."""
    rule = lstm_lr(lstm_non_embedding(row["hidden_size"], row["num_layers"], row["vocab_size"]))
    return round(math.log2(row["lr"] / rule))


def lstm_tried(rows: list[dict]) -> dict[tuple[str, str], dict[int, float]]:
    """(corpus, rung) -> {k: validation loss} of every LSTM row."""
    return tried_exponents([r for r in rows if r.get("model") == "LSTM"], lstm_exponent,
                           key=lambda row: (row["corpus"], row["rung"]))


def best_baselines(rows: list[dict], rule: bool = False) -> list[dict]:
    """Baseline rows with only each rung's best LSTM (the one tuned rate of an LSTM trained
    at several), or with rule=True its LSTM at `lstm_lr` itself; n-grams, other models and
    rows without a rung (a baselines CSV of one's own) as they are."""
    def matched(row):
        return row.get("model") == "LSTM" and row.get("rung")

    if rule:
        rows = [r for r in rows if not matched(r) or lstm_exponent(r) == 0]
    best: dict[tuple, dict] = {}
    for row in filter(matched, rows):
        key = (row.get("corpus"), row["rung"])
        if key not in best or row["val_loss_nats"] < best[key]["val_loss_nats"]:
            best[key] = row
    return [r for r in rows if not matched(r) or best[(r.get("corpus"), r["rung"])] is r]


def _row(**values) -> dict:
    from .. import __version__

    row = dict.fromkeys(BASELINE_RUN_COLUMNS)
    row.update(values)
    row.update(val_loss_bits=values["val_loss_nats"] / LN2, seed=SEED, version=__version__,
               schema=SCHEMA, threads=os.environ.get("OMP_NUM_THREADS"))
    return row


def _lstm_worker(*args) -> dict:
    """`lstm_row(*args)`, or {"error": ...} for a run that failed (diverged, bad data): the
    search counts its rate as the worst and goes on."""
    try:
        return lstm_row(*args)
    except (RuntimeError, ValueError, FloatingPointError) as exc:
        return {"error": f"{type(exc).__name__}: {exc}"}


def _rule_once(tried: dict[int, float]) -> list[int]:
    """The exponents an untuned LSTM still needs: the rule's, once."""
    return [] if tried else [0]


def _train_lstms(todo: list[tuple], jobs: int, add, say,
                 executor: str = "local") -> dict[tuple, str]:
    """Train the LSTMs of `todo` (lstm_row's arguments), largest first, `jobs` at a time (or
    on an MPI job's workers: `runner.each_finished`), handing each row to `add`; the
    failures: ((corpus, rung), k) -> error."""
    # Largest first, so parallel workers finish together.
    todo = sorted(todo, key=lambda a: -a[2].non_embedding_params() * a[3]["size_steps"]
                  * a[3]["block_size"])
    failed = {}
    for (corpus, _, rung, *_, k), row in each_finished(_lstm_worker, todo, jobs=jobs,
                                                       executor=executor):
        if "error" in row:
            failed[(corpus, rung.name), k] = row["error"]
            say(f"FAILED {lstm_run_id(corpus, rung, k)}: {row['error']}")
        else:
            add(row)
    return failed


def run_baselines(results_dir, corpora=None, lstm_widths=None, orders=NGRAM_ORDERS, jobs=1,
                  log=None, tune_lr: bool = False, executor: str = "local") -> list[dict]:
    """Fit the n-grams and train the matched LSTMs of a study; returns the rows written now.

    corpora: names from study.json (default: all of them); lstm_widths: ladder widths to match
    (default: every width of the study, [] for no LSTM); jobs: LSTMs trained in parallel
    worker processes (one BLAS thread each; 0 or 1 = in this process); executor: "mpi" trains
    them on an MPI job's workers instead (`runner.study_pool`); tune_lr: train
    each LSTM at powers of 2 times `lstm_lr` until its best is bracketed, a round at a time
    (the search of `tuning.next_exponents`; the plots and tables read each rung's best).
    """
    root = Path(results_dir)
    meta = load_meta(root)
    known = list(meta.get("corpora", {}))
    corpora = known if corpora is None else list(corpora)
    unknown = [c for c in corpora if c not in known]
    if unknown:
        raise StudyError(f"corpus {unknown[0]!r} is not part of the study in {root}; "
                         f"accepted: {', '.join(known)}")
    widths = meta["budget"]["widths"] if lstm_widths is None else list(lstm_widths)
    bad = [w for w in widths if w not in meta["budget"]["widths"]]
    if bad:
        raise StudyError(f"width {bad[0]} is not a rung of the study; accepted: "
                         f"{meta['budget']['widths']}")
    if not isinstance(jobs, int) or jobs < 0:
        raise StudyError(f"jobs must be a non-negative integer, got {jobs!r}")
    for order in orders:
        if not 1 <= order <= 5:
            raise StudyError(f"n-gram order {order} is out of range; accepted: 1..5")
    say = log or (lambda message: None)
    path = root / "baselines.csv"
    rows = read_csv(path)
    done = {r.get("run_id") for r in rows}
    written: list[dict] = []

    def add(row: dict) -> None:
        rows.append(row)
        written.append(row)
        atomic_write(path, csv_text(rows, BASELINE_RUN_COLUMNS))
        say(f"{row['run_id']}: N={row['params_non_embedding']:,} val "
            f"{row['val_loss_nats']:.4f} nats ({row['wall_s']:.1f} s)")

    work = root / "_baselines_work"   # scratch run directories, removed at the end
    lstms = []                        # (corpus, data, rung, settings, meta, vocab, work dir)
    for corpus in corpora:
        info = meta["corpora"][corpus]
        vocab, train, val = _load_ids(info)
        if vocab != info["vocab_size"]:
            raise StudyError(f"corpus {corpus!r}: vocabulary {vocab} differs from the study's "
                             f"{info['vocab_size']}")
        for order in orders:
            if f"ngram-{corpus}-o{order}" not in done:
                add(ngram_row(corpus, order, vocab, train, val))
        lstms += [(corpus, info["data"], Rung.from_width(w), _settings(meta, corpus), meta,
                   vocab, str(work)) for w in widths]
    by_key = {(args[0], args[2].name): args for args in lstms}

    def train(todo, round_number):
        at_once = ("on the MPI job's workers" if executor == "mpi"
                   else f"{max(jobs, 1)} at a time")
        say(f"{len(todo)} LSTM run(s) to train, {at_once}"
            + (f" (learning-rate round {round_number})" if tune_lr else ""))
        return _train_lstms([(*by_key[key], k) for key, k in todo], jobs, add, say, executor)

    failed = bracket(by_key, lambda: lstm_tried(rows), train,
                     wanted=next_exponents if tune_lr else _rule_once)
    shutil.rmtree(work, ignore_errors=True)
    if failed:
        raise RuntimeError(f"{len(failed)} LSTM run(s) failed (rerun to retry): " + "; ".join(
            f"{lstm_run_id(key[0], by_key[key][2], k)}: {error}"
            for (key, k), error in failed.items()))
    return written


__all__ = ["NGRAM_ORDERS", "best_baselines", "lstm_exponent", "lstm_lr", "lstm_non_embedding",
           "lstm_run_id", "lstm_tried", "match_lstm", "run_baselines"]
