"""How long a plan takes: a per-step cost model, calibrated on one BLAS thread.

A run costs its training steps, its final evaluation, the greedy decoding and scoring of its
test split, and its setup (the task, the tokenizer, the model, the checkpoints)::

    step     = STEP_S[family, size][task] x batch / 32
    decode   = batches x block x (d0 + d1 x rows)                   (DECODE_S)
    scoring  = pairs x score_s                                      (BLEU, chrF; TASK_SHAPES)
    run      = steps x step + evaluation + decode + scoring + setup + RUN_OVERHEAD_S

A step is timed through the trainer itself, on batches of the task's pairs (the padding, the
clipping and AdamW included). Decoding is counted to the model's block size, as if no row
stopped early at eos (a model that has not learned the task does not); scoring as if the
hypotheses were as long as the references. The tables
were measured by `calibrate()` on the project's 2-core test machine, one BLAS thread per
process, the Cython kernels built. `estimate_seconds` hands the runs out longest first to
`jobs` workers, as `run_study` does, and returns when the last one ends (on a machine with
nothing else running: another job that holds a core doubles it).

>>> seconds = estimate_seconds(plan_study(BUDGETS["default"]), jobs=2)   # doctest: +SKIP
"""

from __future__ import annotations

import time

import numpy as np

from .plan import RunSpec, StudyPlan

#: A batch's rows when its step costs were measured.
REFERENCE_BATCH = 32
#: Seconds per training step at batch 32 (`measure_step`): (family, size) -> task -> seconds.
STEP_S: dict[tuple[str, str], dict[str, float]] = {
    ("seq2seq", "nano"): {"scan:simple": 0.0197, "scan:length": 0.0157,
                          "scan:addprim-jump": 0.0215, "numbers-en-zh": 0.0204,
                          "numbers-zh-en": 0.021, "dates": 0.015},
    ("seq2seq", "micro"): {"scan:simple": 0.0319, "scan:length": 0.0228,
                           "scan:addprim-jump": 0.0303, "numbers-en-zh": 0.0292,
                           "numbers-zh-en": 0.0268, "dates": 0.0194},
    ("seq2seq", "tiny"): {"scan:simple": 0.0489, "scan:length": 0.0354,
                          "scan:addprim-jump": 0.0485, "numbers-en-zh": 0.0456,
                          "numbers-zh-en": 0.0445, "dates": 0.0281},
    ("seq2seq", "mini"): {"scan:simple": 0.1247, "scan:length": 0.0903,
                          "scan:addprim-jump": 0.1323, "numbers-en-zh": 0.1143,
                          "numbers-zh-en": 0.1186, "dates": 0.0777},
    ("seq2seq", "small"): {"scan:simple": 0.2424, "scan:length": 0.2405,
                           "scan:addprim-jump": 0.2501, "numbers-en-zh": 0.2158,
                           "numbers-zh-en": 0.2357, "dates": 0.1425},
    ("lstm-seq2seq", "nano"): {"scan:simple": 0.0635, "scan:length": 0.0467,
                               "scan:addprim-jump": 0.0669, "numbers-en-zh": 0.0569,
                               "numbers-zh-en": 0.0568, "dates": 0.0311},
    ("lstm-seq2seq", "micro"): {"scan:simple": 0.0744, "scan:length": 0.0561,
                                "scan:addprim-jump": 0.0789, "numbers-en-zh": 0.0616,
                                "numbers-zh-en": 0.0647, "dates": 0.0344},
    ("lstm-seq2seq", "tiny"): {"scan:simple": 0.095, "scan:length": 0.0631,
                               "scan:addprim-jump": 0.0917, "numbers-en-zh": 0.0831,
                               "numbers-zh-en": 0.0849, "dates": 0.0461},
    ("lstm-seq2seq", "mini"): {"scan:simple": 0.1893, "scan:length": 0.1255,
                               "scan:addprim-jump": 0.2114, "numbers-en-zh": 0.196,
                               "numbers-zh-en": 0.1986, "dates": 0.1048},
    ("lstm-seq2seq", "small"): {"scan:simple": 0.3424, "scan:length": 0.2477,
                                "scan:addprim-jump": 0.3676, "numbers-en-zh": 0.3426,
                                "numbers-zh-en": 0.3645, "dates": 0.1863},
}
#: Seconds per greedy decoding step of a batch: (family, size) -> (fixed, per row).
DECODE_S: dict[tuple[str, str], tuple[float, float]] = {
    ("seq2seq", "nano"): (0.00224, 5.7e-06),
    ("seq2seq", "micro"): (0.00174, 1.65e-05),
    ("seq2seq", "tiny"): (0.00239, 2.36e-05),
    ("seq2seq", "mini"): (0.00445, 6.35e-05),
    ("seq2seq", "small"): (0.00785, 9.68e-05),
    ("lstm-seq2seq", "nano"): (0.00067, 4e-06),
    ("lstm-seq2seq", "micro"): (0.00082, 5e-06),
    ("lstm-seq2seq", "tiny"): (0.00074, 9.8e-06),
    ("lstm-seq2seq", "mini"): (0.00143, 3.08e-05),
    ("lstm-seq2seq", "small"): (0.00291, 5.9e-05),
}
#: Per task: the longest source or target of any split (eos included), validation and test
#: pairs, seconds to set a run up (`measure_setup`) and to score one pair (`measure_scoring`).
TASK_SHAPES: dict[str, dict] = {
    "scan:simple": {"longest": 49, "validation": 836, "test": 4182,
                    "setup_s": 1.51, "score_s": 0.0009287},
    "scan:length": {"longest": 49, "validation": 850, "test": 3920,
                    "setup_s": 1.45, "score_s": 0.001541},
    "scan:addprim-jump": {"longest": 49, "validation": 734, "test": 7706,
                          "setup_s": 1.49, "score_s": 0.0007909},
    "numbers-en-zh": {"longest": 31, "validation": 1000, "test": 1000,
                      "setup_s": 0.53, "score_s": 0.0005134},
    "numbers-zh-en": {"longest": 31, "validation": 1000, "test": 1000,
                      "setup_s": 0.6, "score_s": 0.0006247},
    "dates": {"longest": 14, "validation": 1000, "test": 1000,
              "setup_s": 0.35, "score_s": 0.0002544},
}
#: Seconds a run spends saving and exporting its checkpoints, beyond its task's setup.
RUN_OVERHEAD_S = 2.0
#: How much slower everything runs when workers share the cores: a Transformer step timed in
#: two processes at once on the 2 cores took 0.0286 s, alone 0.0243 s.
PARALLEL_SLOWDOWN = 1.18


def block(spec: RunSpec) -> int:
    """The positions of the run's model: the preset's context, or the task's longest
    sequence when that is longer (what `TranslationTrainer` builds)."""
    from ..models import get_family

    family = get_family(spec.family)
    context = family.preset(spec.size).get(family.context_field, 0)
    return max(context, TASK_SHAPES[spec.task]["longest"])


def step_seconds(spec: RunSpec) -> float:
    """Seconds of one training step of `spec`."""
    return STEP_S[(spec.family, spec.size)][spec.task] * spec.batch_size / REFERENCE_BATCH


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
    that frees up first (how `run_study` hands them out), slowed by PARALLEL_SLOWDOWN when
    several run at once."""
    workers = [0.0] * max(jobs, 1)
    for cost in sorted((run_seconds(s) for s in plan.runs), reverse=True):
        i = int(np.argmin(workers))
        workers[i] += cost
    return max(workers) * (PARALLEL_SLOWDOWN if jobs > 1 else 1.0)


# ---------------------------------------------------------------------- calibration
def measure_step(family: str, size: str, task: str, steps: int = 8,
                 batch_size: int = REFERENCE_BATCH) -> float:
    """Median seconds of a training step of a fresh run of `family` at `size` on `task`: the
    trainer's own step (a batch of the task's pairs, forward, backward, clipping, AdamW)."""
    import tempfile

    from ..training import TrainConfig, Trainer
    from .plan import width_init

    with tempfile.TemporaryDirectory() as out:
        trainer = Trainer(TrainConfig(
            model=family, preset=size, data=task, steps=steps + 1, batch_size=batch_size,
            out=out, model_overrides=width_init(family, size)), quiet=True)
        times = []
        for _ in range(steps + 1):
            t0 = time.perf_counter()
            trainer._train_step()
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


def task_shape(task: str) -> dict:
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

    longest = max(int(lengths(getattr(t, kind)(split)).max())
                  for split in ("train", "validation", "test") for kind in ("sources", "targets"))
    return {"longest": longest,
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


def calibrate(families, sizes, tasks) -> dict:
    """Measure the tables this module holds, here, on one BLAS thread (decoding fitted
    through 64 and 256 rows)."""
    from threadpoolctl import threadpool_limits

    out = {"STEP_S": {}, "DECODE_S": {}, "TASK_SHAPES": {}}
    with threadpool_limits(limits=1):
        for task in tasks:
            out["TASK_SHAPES"][task] = {**task_shape(task),
                                        "setup_s": round(measure_setup(task), 2),
                                        "score_s": round(measure_scoring(task), 7)}
        for family in families:
            for size in sizes:
                out["STEP_S"][(family, size)] = {
                    task: round(measure_step(family, size, task), 5) for task in tasks}
                d64, d256 = (measure_decode(family, size, r) for r in (64, 256))
                d1 = max((d256 - d64) / 192, 0.0)
                out["DECODE_S"][(family, size)] = (round(max(d64 - 64 * d1, 0.0), 5),
                                                   round(d1, 7))
    return out


def fmt_minutes(seconds: float) -> str:
    """Seconds as minutes, or hours past two."""
    return f"{seconds / 3600:.1f} h" if seconds >= 7200 else f"{seconds / 60:.1f} min"
