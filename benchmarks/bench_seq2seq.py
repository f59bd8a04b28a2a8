"""The encoder-decoder's training step and decoding, tinyllm vs its NumPy twin vs PyTorch.

Training: one step (zero the gradients, forward of a (B, S) source and a (B, T) target with
teacher forcing, cross-entropy, backward) of `Seq2SeqTransformer` with the compiled kernels,
with the NumPy twins (`tinyllm.bench.use_backend("numpy")`), and of Hugging Face's
`MarianMTModel` with the same weights (the tinyllm model saved and loaded). Float32, dropout
off, training mode. tinyllm's and PyTorch's steps alternate in blocks (3 rounds of a block
of each, its first steps untimed), and each column is the median step: each library runs
with warm caches as in a training loop, and a machine whose speed drifts slows both alike.

Decoding: a 64-token output for each of B sources at the largest preset, greedy and with beam
search (4 beams), in tinyllm and in `MarianMTModel.generate`. The end-of-sequence token is made
impossible (its output bias is -1e9), so every row decodes exactly 64 tokens. The issue's
target compares beam 4 with "greedy decoding x 4"; both readings are printed: four greedy runs
of the B sources (4 x greedy(B)), and one greedy run of 4B sources (greedy(4B), the same number
of decoder rows as the beam).

Threads: `--threads N` sets PyTorch's intra-op threads and, before NumPy is imported,
OPENBLAS/OMP/MKL_NUM_THREADS for NumPy's BLAS and tinyllm's OpenMP kernels.

    python benchmarks/bench_seq2seq.py [--threads 1] [--presets tiny small] [--decode-preset base]
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import tempfile
import time

_THREADS = next((sys.argv[i + 1] for i, a in enumerate(sys.argv[:-1]) if a == "--threads"), "1")
for _var in ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ[_var] = _THREADS

import numpy as np  # noqa: E402

import tinyllm  # noqa: E402
from tinyllm import kernels  # noqa: E402
from tinyllm.bench import blas_description, use_backend  # noqa: E402
from tinyllm.models.seq2seq import Seq2SeqConfig, Seq2SeqTransformer  # noqa: E402

try:
    import torch
    import transformers
except ImportError:  # the tinyllm columns still run
    torch = transformers = None


def _time(step, repeat: int, warmup: int = 2) -> float:
    """Median seconds of `step()` over `repeat` runs, after `warmup` runs."""
    return _time_interleaved([step], repeat, warmup, rounds=1)[0]


def _time_interleaved(steps, repeat: int, warmup: int = 2, rounds: int = 3) -> list[float]:
    """Median seconds of each of `steps`: `rounds` rounds, each running every step `warmup`
    times untimed, then `repeat // rounds` times timed, one step after the other. Each
    library runs in blocks (its caches warm, as in a real training loop), and the blocks
    alternate, so a machine whose speed drifts slows every step alike."""
    times = [[] for _ in steps]
    for _ in range(rounds):
        for step, kept in zip(steps, times):
            for _ in range(warmup):
                step()
            for _ in range(max(1, repeat // rounds)):
                start = time.perf_counter()
                step()
                kept.append(time.perf_counter() - start)
    return [statistics.median(t) for t in times]


def _model(preset: str, vocab: int) -> Seq2SeqTransformer:
    config = Seq2SeqConfig.from_preset(preset, vocab_size=vocab, pad_token_id=0,
                                       eos_token_id=1, decoder_start_token_id=0,
                                       max_position_embeddings=128)
    return Seq2SeqTransformer(config, seed=0)


def _to_torch(model: Seq2SeqTransformer):
    with tempfile.TemporaryDirectory() as tmp:
        model.save(tmp)
        return transformers.MarianMTModel.from_pretrained(tmp, attn_implementation="sdpa")


def _batch(args, rng) -> dict:
    src = rng.integers(2, args.vocab, (args.batch, args.src_len))
    labels = rng.integers(2, args.vocab, (args.batch, args.tgt_len))
    return {"input_ids": src, "attention_mask": np.ones_like(src), "labels": labels}


def bench_training(preset: str, args) -> str:
    """One row: a training step's milliseconds in each library and the ratios."""
    rng = np.random.default_rng(0)
    model = _model(preset, args.vocab).train()
    batch = _batch(args, rng)

    def tiny_step():
        model.zero_grad()
        loss = model(**batch).loss
        loss.backward()
        return loss.item()

    tiny_loss = tiny_step()
    with use_backend("numpy"):
        twin_s = _time(tiny_step, args.repeat)
    compiled_s = torch_s = diff = None
    if torch is not None:
        ref = _to_torch(model).train()
        tb = {k: torch.tensor(v) for k, v in batch.items()}

        def torch_step():
            ref.zero_grad()
            loss = ref(**tb).loss
            loss.backward()
            return loss.item()

        compiled_s, torch_s = _time_interleaved([tiny_step, torch_step], args.repeat)
        diff = abs(torch_step() - tiny_loss)
    else:
        compiled_s = _time(tiny_step, args.repeat)
    ratio = f"{compiled_s / torch_s:6.2f}" if torch_s else f"{'n/a':>6s}"
    torch_ms = f"{torch_s * 1e3:9.1f}" if torch_s else f"{'n/a':>9s}"
    diff_s = f"{diff:10.1e}" if diff is not None else f"{'n/a':>10s}"
    return (f"{preset:7s} {model.num_params():10,d} {compiled_s * 1e3:10.1f} "
            f"{twin_s * 1e3:10.1f} {torch_ms} {ratio} {twin_s / compiled_s:7.2f} {diff_s}")


def _no_eos(model: Seq2SeqTransformer) -> None:
    """Make end-of-sequence impossible, so every row decodes max_new_tokens tokens."""
    model.final_logits_bias.data[..., model.config.eos_token_id] = -1e9


def bench_decoding(args) -> list[str]:
    """Rows: greedy and beam-4 decoding of 64 tokens, tinyllm and PyTorch."""
    rng = np.random.default_rng(1)
    model = _model(args.decode_preset, args.vocab).eval()
    _no_eos(model)
    b, n = args.decode_batch, args.new_tokens
    src = rng.integers(2, args.vocab, (b, args.src_len))
    src4 = np.repeat(src, 4, axis=0)

    def run(ids, beams):
        out = model.generate(ids, max_new_tokens=n, num_beams=beams)
        assert out.shape == (len(ids), n), out.shape
        return out

    greedy = _time(lambda: run(src, 1), args.decode_repeat, warmup=1)
    greedy4b = _time(lambda: run(src4, 1), args.decode_repeat, warmup=1)
    beam = _time(lambda: run(src, 4), args.decode_repeat, warmup=1)
    rows = [f"tinyllm  {args.decode_preset} ({model.num_params():,} params), B={b}, "
            f"{n} tokens: greedy(B) {greedy * 1e3:.0f} ms | greedy(4B) {greedy4b * 1e3:.0f} ms "
            f"| beam 4 {beam * 1e3:.0f} ms",
            f"  beam 4 / (4 x greedy(B)) = {beam / (4 * greedy):.2f}   (target <= 1.5)",
            f"  beam 4 / greedy(4B)      = {beam / greedy4b:.2f}"]
    if torch is not None:
        ref = _to_torch(model).eval()
        ts = torch.tensor(src)
        kw = dict(max_new_tokens=n, min_new_tokens=n, do_sample=False, early_stopping=False)

        def trun(beams, ids=ts):
            with torch.no_grad():
                return ref.generate(ids, num_beams=beams, **kw)

        tg = _time(lambda: trun(1), args.decode_repeat, warmup=1)
        tb = _time(lambda: trun(4), args.decode_repeat, warmup=1)
        rows += [f"PyTorch  MarianMTModel.generate: greedy(B) {tg * 1e3:.0f} ms | beam 4 "
                 f"{tb * 1e3:.0f} ms | beam 4 / (4 x greedy(B)) = {tb / (4 * tg):.2f}",
                 f"  tinyllm / PyTorch: greedy {greedy / tg:.2f}, beam 4 {beam / tb:.2f}"]
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--presets", nargs="+", default=["tiny", "small"])
    parser.add_argument("--batch", type=int, default=32)
    parser.add_argument("--src-len", type=int, default=16)
    parser.add_argument("--tgt-len", type=int, default=32)
    parser.add_argument("--vocab", type=int, default=64)
    parser.add_argument("--repeat", type=int, default=15)
    parser.add_argument("--decode-preset", default="base")
    parser.add_argument("--decode-batch", type=int, default=8)
    parser.add_argument("--new-tokens", type=int, default=64)
    parser.add_argument("--decode-repeat", type=int, default=3)
    parser.add_argument("--skip-decoding", action="store_true")
    args = parser.parse_args()
    if torch is not None:
        transformers.logging.set_verbosity_error()
        torch.set_num_threads(args.threads)
    print(f"threads: {args.threads}; tinyllm kernels: {kernels.backend()}; "
          f"BLAS: {blas_description()}; "
          f"OPENBLAS_CORETYPE={os.environ.get('OPENBLAS_CORETYPE', 'unset')}; float32; "
          f"tinyllm {tinyllm.__version__}, torch {torch.__version__ if torch else 'absent'}")
    print(f"training step: batch {args.batch}, source {args.src_len}, target {args.tgt_len}, "
          f"vocab {args.vocab}; median of {args.repeat}")
    header = (f"{'preset':7s} {'params':>10s} {'tinyllm ms':>10s} {'twin ms':>10s} "
              f"{'torch ms':>9s} {'ratio':>6s} {'twin/c':>7s} {'|loss diff|':>10s}")
    print(header)
    print("-" * len(header))
    for preset in args.presets:
        print(bench_training(preset, args))
    print("ratio = tinyllm (compiled) / PyTorch (target <= 1.2); twin/c = NumPy twin / "
          "compiled")
    if not args.skip_decoding:
        print()
        print("\n".join(bench_decoding(args)))


if __name__ == "__main__":
    main()
