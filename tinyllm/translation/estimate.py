"""How long a plan takes: a per-step cost model, calibrated on one BLAS thread.

A run costs its training steps, its final evaluation, the greedy decoding and scoring of its
test split, and its setup (the task, the tokenizer, the model, the checkpoints)::

    step     = fixed + per_position x positions x batch / 32        (STEP_S, TASK_SHAPES)
    decode   = batches x block x (d0 + d1 x rows)                   (DECODE_S)
    scoring  = pairs x score_s                                      (BLEU, chrF; TASK_SHAPES)
    run      = steps x step + evaluation + decode + scoring + setup + RUN_OVERHEAD_S

`positions` is the padded source plus target length of a batch of 32 training pairs, eos
included, on the task (a Transformer's work and an LSTM's time steps both grow with it).
Decoding is counted to the model's block size, as if no row stopped early at eos (a model that
has not learned the task does not); scoring as if the hypotheses were as long as the
references. The tables
were measured by `calibrate()` on the project's 2-core test machine, one BLAS thread per
process, the Cython kernels built. `estimate_seconds` hands the runs out longest first to
`jobs` workers, as `run_study` does, and returns when the last one ends.

>>> seconds = estimate_seconds(plan_study(BUDGETS["default"]), jobs=2)   # doctest: +SKIP
"""

from __future__ import annotations

import time

import numpy as np

from .plan import RunSpec, StudyPlan

#: A batch's rows when its step costs were measured.
REFERENCE_BATCH = 32
#: Seconds per training step (forward, backward, AdamW) at batch 32: (family, size) ->
#: (fixed, per position).
STEP_S: dict[tuple[str, str], tuple[float, float]] = {
    ("seq2seq", "nano"): (0.00451, 0.000254),
    ("seq2seq", "micro"): (0.00456, 0.00047),
    ("seq2seq", "tiny"): (0.00483, 0.000839),
    ("seq2seq", "mini"): (0.01639, 0.001966),
    ("seq2seq", "small"): (0.02177, 0.004427),
    ("seq2seq", "base"): (0.05253, 0.010547),
    ("lstm-seq2seq", "nano"): (0.0, 0.001164),
    ("lstm-seq2seq", "micro"): (0.00071, 0.001308),
    ("lstm-seq2seq", "tiny"): (0.0, 0.001853),
    ("lstm-seq2seq", "mini"): (0.0, 0.004554),
    ("lstm-seq2seq", "small"): (0.0, 0.007645),
    ("lstm-seq2seq", "base"): (0.01038, 0.016601),
}
#: Seconds per greedy decoding step of a batch: (family, size) -> (fixed, per row).
DECODE_S: dict[tuple[str, str], tuple[float, float]] = {
    ("seq2seq", "nano"): (0.00224, 5.7e-06),
    ("seq2seq", "micro"): (0.00174, 1.65e-05),
    ("seq2seq", "tiny"): (0.00239, 2.36e-05),
    ("seq2seq", "mini"): (0.00445, 6.35e-05),
    ("seq2seq", "small"): (0.00785, 9.68e-05),
    ("seq2seq", "base"): (0.00704, 0.0002934),
    ("lstm-seq2seq", "nano"): (0.00067, 4e-06),
    ("lstm-seq2seq", "micro"): (0.00082, 5e-06),
    ("lstm-seq2seq", "tiny"): (0.00074, 9.8e-06),
    ("lstm-seq2seq", "mini"): (0.00143, 3.08e-05),
    ("lstm-seq2seq", "small"): (0.00291, 5.9e-05),
    ("lstm-seq2seq", "base"): (0.00441, 0.0001391),
}
#: Per task: mean padded positions of a batch of 32 training pairs (source + target, eos
#: included), the longest source or target of any split (eos included), validation and test
#: pairs, seconds to set a run up (`measure_setup`) and to score one pair (`measure_scoring`).
TASK_SHAPES: dict[str, dict] = {
    "scan:simple": {"positions": 48.6, "longest": 49, "validation": 836, "test": 4182,
                    "setup_s": 1.51, "score_s": 0.0009287},
    "scan:length": {"positions": 32.1, "longest": 49, "validation": 850, "test": 3920,
                    "setup_s": 1.45, "score_s": 0.001541},
    "scan:addprim-jump": {"positions": 46.3, "longest": 49, "validation": 734, "test": 7706,
                          "setup_s": 1.49, "score_s": 0.0007909},
    "numbers-en-zh": {"positions": 45.9, "longest": 31, "validation": 1000, "test": 1000,
                      "setup_s": 0.53, "score_s": 0.0005134},
    "numbers-zh-en": {"positions": 45.9, "longest": 31, "validation": 1000, "test": 1000,
                      "setup_s": 0.6, "score_s": 0.0006247},
    "dates": {"positions": 24.8, "longest": 14, "validation": 1000, "test": 1000,
              "setup_s": 0.35, "score_s": 0.0002544},
}
#: Seconds a run spends saving and exporting its checkpoints, beyond its task's setup.
RUN_OVERHEAD_S = 2.0


def block(spec: RunSpec) -> int:
    """The positions of the run's model: the preset's context, or the task's longest
    sequence when that is longer (what `TranslationTrainer` builds)."""
    from ..models import get_family

    family = get_family(spec.family)
    context = family.preset(spec.size).get(family.context_field, 0)
    return max(context, TASK_SHAPES[spec.task]["longest"])


def step_seconds(spec: RunSpec) -> float:
    """Seconds of one training step of `spec`."""
    fixed, per_position = STEP_S[(spec.family, spec.size)]
    positions = TASK_SHAPES[spec.task]["positions"]
    return fixed + per_position * positions * spec.batch_size / REFERENCE_BATCH


def translate_seconds(spec: RunSpec, pairs: int, batch: int) -> float:
    """Seconds to translate `pairs` sources of the task greedily, `batch` at a time, and to
    score the translations."""
    d0, d1 = DECODE_S[(spec.family, spec.size)]
    full, rest = divmod(pairs, batch)
    decode = block(spec) * (full * (d0 + d1 * batch) + (rest > 0) * (d0 + d1 * rest))
    return decode + pairs * TASK_SHAPES[spec.task]["score_s"]


def run_seconds(spec: RunSpec) -> float:
    """Seconds one run should take on one BLAS thread of the calibration machine."""
    shape = TASK_SHAPES[spec.task]
    step = step_seconds(spec)
    val_pairs = min(spec.eval_iters * spec.batch_size, shape["validation"])
    # the final evaluation: teacher-forced loss on eval_iters batches of each split (a forward
    # pass, about a third of a step) and the greedy translation of the validation pairs
    evaluation = 2 * spec.eval_iters * step / 3 + translate_seconds(spec, val_pairs,
                                                                    spec.batch_size)
    test = shape["test"] if spec.max_test_pairs is None else min(shape["test"],
                                                                 spec.max_test_pairs)
    return (spec.steps * step + evaluation
            + translate_seconds(spec, test, spec.decode_batch_size) + shape["setup_s"]
            + RUN_OVERHEAD_S)


def estimate_seconds(plan: StudyPlan, jobs: int = 1) -> float:
    """Wall seconds of `plan` with `jobs` workers: the runs, longest first, each to the worker
    that frees up first (how `run_study` hands them out)."""
    workers = [0.0] * max(jobs, 1)
    for cost in sorted((run_seconds(s) for s in plan.runs), reverse=True):
        i = int(np.argmin(workers))
        workers[i] += cost
    return max(workers)


# ---------------------------------------------------------------------- calibration
def measure_step(family: str, size: str, positions: int, batch_size: int = REFERENCE_BATCH,
                 steps: int = 3, vocab_size: int = 64) -> float:
    """Median seconds of a training step of a fresh model on random pairs whose source and
    target each take half of `positions`."""
    from ..models import get_family
    from ..optim import AdamW

    fam = get_family(family)
    s = positions // 2
    model = fam.build(fam.make_config(size, vocab_size=vocab_size, block_size=positions),
                      seed=0)
    rng = np.random.default_rng(0)
    batch = {"input_ids": rng.integers(4, vocab_size, (batch_size, s)),
             "attention_mask": np.ones((batch_size, s), dtype=np.int64),
             "labels": rng.integers(4, vocab_size, (batch_size, positions - s))}
    opt = AdamW(model.parameters(), lr=1e-3)
    times = []
    for _ in range(steps + 1):
        t0 = time.perf_counter()
        loss = model(**batch).loss
        opt.zero_grad()
        loss.backward()
        opt.step()
        times.append(time.perf_counter() - t0)
    return float(np.median(times[1:]))       # the first step pays for warm-up


def measure_decode(family: str, size: str, rows: int, steps: int = 12,
                   source: int = 10, vocab_size: int = 64) -> float:
    """Seconds per greedy decoding step of `rows` sources (the encoder's pass shared out)."""
    from ..autograd import no_grad
    from ..models import get_family

    fam = get_family(family)
    model = fam.build(fam.make_config(size, vocab_size=vocab_size,
                                      block_size=max(source, steps) + 1), seed=0)
    model.eval()
    rng = np.random.default_rng(0)
    ids = rng.integers(4, vocab_size, (rows, source))
    t0 = time.perf_counter()
    with no_grad():
        state = model.start_decoding(ids, np.ones_like(ids))
        tokens = np.full(rows, model.config.decoder_start_token_id, dtype=np.int64)
        for _ in range(steps):
            tokens = model.decode_step(state, tokens).argmax(-1).astype(np.int64)
    return (time.perf_counter() - t0) / steps


def task_shape(task: str, batch_size: int = REFERENCE_BATCH, batches: int = 200) -> dict:
    """TASK_SHAPES' entry of a task, from its pairs and a word tokenizer trained as a run
    trains it (without `setup_s` and `score_s`, which `measure_setup` and `measure_scoring`
    time)."""
    from ..tasks.translation import load_translation_task
    from ..tokenizers.word import WordTokenizer
    from ..training.translation import training_texts

    t = load_translation_task(task)
    tokenizer = WordTokenizer().train(training_texts(t))

    def lengths(texts):                                  # tokens, eos included
        return np.array([len(tokenizer.encode(text)) + 1 for text in texts])

    src, tgt = lengths(t.sources("train")), lengths(t.targets("train"))
    rng = np.random.default_rng(0)
    picks = [rng.choice(len(src), size=min(batch_size, len(src)), replace=False)
             for _ in range(batches)]
    positions = float(np.mean([src[i].max() + tgt[i].max() for i in picks]))
    longest = max(int(lengths(getattr(t, kind)(split)).max())
                  for split in ("train", "validation", "test") for kind in ("sources", "targets"))
    return {"positions": round(positions, 1), "longest": longest,
            "validation": t.sizes["validation"], "test": t.sizes["test"]}


def measure_setup(task: str) -> float:
    """Seconds to set up a run of the task: load it, train the tokenizer, encode the pairs,
    build a nano Transformer."""
    import tempfile

    from ..training import TrainConfig, Trainer

    t0 = time.perf_counter()
    with tempfile.TemporaryDirectory() as out:
        Trainer(TrainConfig(model="seq2seq", preset="nano", data=task, steps=1, out=out),
                quiet=True)
    return time.perf_counter() - t0


def measure_scoring(task: str) -> float:
    """Seconds per pair of exact match, BLEU and chrF of the task's test targets against the
    same targets in another order (hypotheses as long as the references)."""
    from ..tasks.translation import load_translation_task
    from ..tasks.translation_metrics import chrf, corpus_bleu, exact_match

    t = load_translation_task(task)
    refs = t.targets("test")
    hyps = refs[1:] + refs[:1]
    t0 = time.perf_counter()
    exact_match(hyps, refs)
    corpus_bleu(hyps, [refs], tokenize=t.bleu_tokenize)
    chrf(hyps, [refs])
    return (time.perf_counter() - t0) / len(refs)


def calibrate(families, sizes, tasks, positions=(16, 64)) -> dict:
    """Measure the tables this module holds, here, on one BLAS thread. Step costs are fitted
    through two lengths, decoding through 64 and 256 rows."""
    from threadpoolctl import threadpool_limits

    out = {"STEP_S": {}, "DECODE_S": {}, "TASK_SHAPES": {}}
    with threadpool_limits(limits=1):
        for task in tasks:
            out["TASK_SHAPES"][task] = {**task_shape(task),
                                        "setup_s": round(measure_setup(task), 2),
                                        "score_s": round(measure_scoring(task), 7)}
        for family in families:
            for size in sizes:
                lo, hi = (measure_step(family, size, p) for p in positions)
                per = (hi - lo) / (positions[1] - positions[0])
                out["STEP_S"][(family, size)] = (round(max(lo - per * positions[0], 0.0), 5),
                                                 round(per, 6))
                d64, d256 = (measure_decode(family, size, r) for r in (64, 256))
                d1 = max((d256 - d64) / 192, 0.0)
                out["DECODE_S"][(family, size)] = (round(max(d64 - 64 * d1, 0.0), 5),
                                                   round(d1, 7))
    return out


def fmt_minutes(seconds: float) -> str:
    """Seconds as minutes, or hours past two."""
    return f"{seconds / 3600:.1f} h" if seconds >= 7200 else f"{seconds / 60:.1f} min"
