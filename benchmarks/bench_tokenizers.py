"""Benchmark: byte-level BPE training and encoding, tinyllm beside Hugging Face ``tokenizers``.

Trains a 2,048-token byte-level BPE on the built-in Shakespeare corpus (1.1 MB) and encodes the
same text, printing seconds to train, MB/s to encode the whole text as one string (from a cold
cache: a tokenizer freshly loaded from its JSON, so no chunk is remembered), the warm-cache rate
of a second pass, and tokens per byte; for HF also ``encode_batch`` over the lines, where it runs
in parallel.
The targets for tinyllm are <= 10 s to train and >= 1 MB/s to encode on a 2-core machine.
Hugging Face ``tokenizers`` (Rust) is run in the same process when it is installed; its thread
pool is set by ``RAYON_NUM_THREADS`` (unset: all cores). tinyllm is single-threaded.

Run from the repository root::

    python benchmarks/bench_tokenizers.py [--path FILE] [--vocab-size 2048] [--repeat 3]

This is a measurement script, not a test: machines are noisy, so nothing here asserts times.
"""

from __future__ import annotations

import argparse
import os
import platform
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from tinyllm.data import load_corpus  # noqa: E402
from tinyllm.tokenizers import BPETokenizer  # noqa: E402


def best_of(repeat, fn):
    """Smallest wall time of ``repeat`` calls of ``fn()``, and its last result."""
    times, out = [], None
    for _ in range(repeat):
        start = time.perf_counter()
        out = fn()
        times.append(time.perf_counter() - start)
    return min(times), out


def bench_tinyllm(text, vocab_size, repeat):
    n_bytes = len(text.encode("utf-8"))
    t_train, tok = best_of(repeat, lambda: BPETokenizer().train(text, vocab_size=vocab_size))
    state = tok.to_dict()

    def cold_encode():
        fresh = BPETokenizer.from_dict(state)  # empty chunk cache
        return fresh.encode(text)

    t_cold, ids = best_of(repeat, cold_encode)
    t_warm, _ = best_of(repeat, lambda: tok.encode(text))
    t_dec, back = best_of(repeat, lambda: tok.decode(ids))
    assert back == text, "tinyllm round trip failed"
    return {
        "train_s": t_train,
        "encode_mb_s": n_bytes / t_cold / 1e6,
        "encode_warm_mb_s": n_bytes / t_warm / 1e6,
        "decode_mb_s": n_bytes / t_dec / 1e6,
        "tokens_per_byte": len(ids) / n_bytes,
        "vocab_size": tok.vocab_size,
    }


def bench_hf(text, vocab_size, repeat):
    try:
        from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers
    except ImportError:
        return None
    n_bytes = len(text.encode("utf-8"))

    def train():
        tok = Tokenizer(models.BPE())
        tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
        tok.decoder = decoders.ByteLevel()
        trainer = trainers.BpeTrainer(
            vocab_size=vocab_size,
            min_frequency=2,
            initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
            special_tokens=["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]", "<|endoftext|>"],
            show_progress=False,
        )
        tok.train_from_iterator([text], trainer=trainer)
        return tok

    t_train, tok = best_of(repeat, train)
    as_json = tok.to_str()
    t_cold, enc = best_of(repeat, lambda: Tokenizer.from_str(as_json).encode(text))
    t_warm, _ = best_of(repeat, lambda: tok.encode(text))
    t_dec, back = best_of(repeat, lambda: tok.decode(enc.ids))
    # HF parallelises over a batch, not within one long string: also time a batch of lines.
    lines = text.splitlines(keepends=True)
    t_batch, _ = best_of(repeat, lambda: tok.encode_batch(lines))
    return {
        "encode_batch_mb_s": n_bytes / t_batch / 1e6,
        "train_s": t_train,
        "encode_mb_s": n_bytes / t_cold / 1e6,
        "encode_warm_mb_s": n_bytes / t_warm / 1e6,
        "decode_mb_s": n_bytes / t_dec / 1e6,
        "tokens_per_byte": len(enc.ids) / n_bytes,
        "vocab_size": tok.get_vocab_size(),
        "round_trip": back == text,
    }


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--path", type=Path, default=None,
                        help="a UTF-8 text file (default: the built-in shakespeare corpus)")
    parser.add_argument("--vocab-size", type=int, default=2048)
    parser.add_argument("--repeat", type=int, default=3, help="best of N runs")
    args = parser.parse_args(argv)
    if not args.path.is_file():
        parser.error(f"no text file at {args.path}; pass --path")
    text = (args.path.read_text(encoding="utf-8") if args.path
            else load_corpus("shakespeare").text)
    n_bytes = len(text.encode("utf-8"))
    print(
        f"text: {args.path.name}, {n_bytes / 1e6:.2f} MB; vocab_size={args.vocab_size}; "
        f"best of {args.repeat}"
    )
    print(
        f"machine: {platform.processor() or platform.machine()}, {os.cpu_count()} CPUs, "
        f"Python {platform.python_version()}; "
        f"RAYON_NUM_THREADS={os.environ.get('RAYON_NUM_THREADS', 'unset')}"
    )
    rows = [("tinyllm (Python)", bench_tinyllm(text, args.vocab_size, args.repeat))]
    hf = bench_hf(text, args.vocab_size, args.repeat)
    if hf is None:
        print("Hugging Face tokenizers is not installed: tinyllm figures only")
    else:
        import tokenizers

        rows.append((f"HF tokenizers {tokenizers.__version__} (Rust)", hf))
    header = ("", "train s", "encode MB/s", "warm MB/s", "decode MB/s", "tokens/byte", "vocab")
    print(f"{header[0]:<30}" + "".join(f"{h:>13}" for h in header[1:]))
    for name, r in rows:
        print(
            f"{name:<30}{r['train_s']:>13.2f}{r['encode_mb_s']:>13.2f}"
            f"{r['encode_warm_mb_s']:>13.2f}{r['decode_mb_s']:>13.1f}"
            f"{r['tokens_per_byte']:>13.3f}{r['vocab_size']:>13d}"
        )
    if hf is not None:
        print(
            f"HF encode_batch over {len(text.splitlines())} lines: "
            f"{hf['encode_batch_mb_s']:.2f} MB/s"
        )
    ours = rows[0][1]
    print(
        f"targets: train <= 10 s ({'met' if ours['train_s'] <= 10 else 'MISSED'}), "
        f"encode >= 1 MB/s ({'met' if ours['encode_mb_s'] >= 1 else 'MISSED'})"
    )
    if hf is not None:
        print(
            f"ratios tinyllm/HF: train time x{ours['train_s'] / hf['train_s']:.1f}, "
            f"encode speed x{ours['encode_mb_s'] / hf['encode_mb_s']:.2f}"
        )


if __name__ == "__main__":
    main()
