"""Forward + backward time of GPT in tinyllm and in PyTorch, side by side, in one run.

Both run the same architecture with the same weights: the tinyllm model is saved and loaded
into Hugging Face's GPT2LMHeadModel (PyTorch's fused attention, `attn_implementation="sdpa"`).
One step is: zero the gradients, compute the logits and the cross-entropy of a (B, T) batch
at the full context, backpropagate. Float32, dropout off, training mode.

Threads: `--threads N` sets PyTorch's intra-op threads and, through OPENBLAS_NUM_THREADS /
OMP_NUM_THREADS / MKL_NUM_THREADS (set before NumPy is imported), NumPy's BLAS threads and
tinyllm's OpenMP kernels. Both libraries get the same number.

    python benchmarks/bench_models.py [--threads 1] [--presets tiny small] [--batch 12]
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import tempfile
import time

# BLAS and OpenMP read their thread counts when they load, so --threads is applied to the
# environment before NumPy (and tinyllm's kernels) are imported.
_THREADS = next((sys.argv[i + 1] for i, a in enumerate(sys.argv[:-1]) if a == "--threads"), "1")
for _var in ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ[_var] = _THREADS

import numpy as np  # noqa: E402

import tinyllm  # noqa: E402
from tinyllm import kernels  # noqa: E402
from tinyllm.models import GPT, GPTConfig  # noqa: E402

try:
    import torch
    import transformers
except ImportError:  # the tinyllm column still runs
    torch = transformers = None


def _time(step, repeat: int) -> float:
    """Median seconds of `step()` over `repeat` runs, after two warm-up runs."""
    for _ in range(2):
        step()
    times = []
    for _ in range(repeat):
        start = time.perf_counter()
        step()
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def _bench_preset(preset: str, args) -> str:
    """Time one preset in both libraries; return the table row."""
    rng = np.random.default_rng(0)
    cfg = GPTConfig.from_preset(preset, vocab_size=args.vocab)
    model = GPT(cfg, seed=0).train()
    t = cfg.n_positions
    x = rng.integers(0, args.vocab, (args.batch, t))
    y = rng.integers(0, args.vocab, (args.batch, t))

    def tiny_step():
        model.zero_grad()
        _, loss = model(x, y)
        loss.backward()
        return loss.item()

    tiny_s = _time(tiny_step, args.repeat)
    tiny_loss = tiny_step()
    torch_s = loss_diff = None
    if torch is not None:
        with tempfile.TemporaryDirectory() as tmp:
            model.save(tmp)
            ref = transformers.GPT2LMHeadModel.from_pretrained(
                tmp, attn_implementation="sdpa").train()
        xt, yt = torch.tensor(x), torch.tensor(y)

        def torch_step():
            ref.zero_grad()
            logits = ref(xt).logits
            loss = torch.nn.functional.cross_entropy(logits.reshape(-1, args.vocab),
                                                     yt.reshape(-1))
            loss.backward()
            return loss.item()

        torch_s = _time(torch_step, args.repeat)
        loss_diff = abs(torch_step() - tiny_loss)
    tokens = args.batch * t
    torch_col = f"{torch_s * 1e3:9.1f}" if torch_s else f"{'n/a':>9s}"
    ratio = f"{tiny_s / torch_s:6.2f}" if torch_s else f"{'n/a':>6s}"
    diff = f"{loss_diff:11.1e}" if loss_diff is not None else f"{'n/a':>11s}"
    return (f"{preset:8s} {model.num_params():10,d} {tokens:7d} {tiny_s * 1e3:11.1f} "
            f"{torch_col} {ratio} {tokens / tiny_s:14,.0f} {diff}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--presets", nargs="+", default=["tiny", "small"])
    parser.add_argument("--batch", type=int, default=12)
    parser.add_argument("--vocab", type=int, default=65, help="vocabulary size (65: characters)")
    parser.add_argument("--repeat", type=int, default=5)
    args = parser.parse_args()
    if torch is not None:
        transformers.logging.set_verbosity_error()
        transformers.utils.logging.disable_progress_bar()
        torch.set_num_threads(args.threads)

    print(f"threads: {args.threads} (torch.set_num_threads, OPENBLAS/OMP/MKL_NUM_THREADS); "
          f"tinyllm kernels: {kernels.backend()}; float32; batch {args.batch}, full context, "
          f"vocab {args.vocab}; median of {args.repeat}")
    header = (f"{'preset':8s} {'params':>10s} {'tokens':>7s} {'tinyllm ms':>11s} "
              f"{'torch ms':>9s} {'ratio':>6s} {'tinyllm tok/s':>14s} {'|loss diff|':>11s}")
    print(header)
    print("-" * len(header))
    for preset in args.presets:
        print(_bench_preset(preset, args))
    print("ratio = tinyllm time / PyTorch time (lower is better for tinyllm); "
          f"tinyllm {tinyllm.__version__}, torch {torch.__version__ if torch else 'absent'}")


if __name__ == "__main__":
    main()
