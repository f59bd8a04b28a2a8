"""Generation speed: tinyllm's `GPT.generate` vs Hugging Face's `generate` on the same weights,
and both against the memory-bandwidth bound.

For each preset (default small, medium) and batch size (1, 8): a GPT with random weights
(vocabulary 256), a prompt of 8 tokens per row, `--new-tokens` greedy tokens (default 56, at
most the context less the prompt) with the KV cache (no end-of-text token: every row runs to
the end). Hugging Face's GPT2LMHeadModel gets the same weights (saved by tinyllm, read by
`from_pretrained`), the same prompt and thread count. Tokens per second count every row's
tokens (B x new tokens / seconds); median of `--repeat` rounds in which both libraries run
once in turn.

The bound: at batch 1 each new token reads every weight once, so tokens/s can be at most
(memory bandwidth) / (bytes of the weights). The bandwidth is measured here, on one thread,
as the speed of summing a float32 array ten times larger than the last-level cache share a
core gets (`--bandwidth-mib`, default 512 MiB). Weights that stay in a cache can beat it;
on this machine the `medium` preset's 38 MiB do not stay in the 4 MiB L2.

    python benchmarks/bench_generate.py [--threads 1] [--presets small,medium] [--batches 1,8]
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time

_THREADS = next((sys.argv[i + 1] for i, a in enumerate(sys.argv[:-1]) if a == "--threads"), "1")
for _var in ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ[_var] = _THREADS

import numpy as np  # noqa: E402

import tinyllm  # noqa: E402
from tinyllm import kernels  # noqa: E402
from tinyllm.bench import blas_description, interleaved_medians  # noqa: E402
from tinyllm.models import GPT, GPTConfig  # noqa: E402

try:
    import torch
    import transformers
except ImportError:  # the tinyllm rows still run
    torch = transformers = None


def bandwidth_gbs(mib: int, repeat: int = 5) -> float:
    """Bytes per second of reading a float32 array of `mib` MiB (one thread: np.sum)."""
    a = np.ones(mib * 2**20 // 4, dtype=np.float32)
    a.sum()
    best = min(_time(a.sum) for _ in range(repeat))
    return a.nbytes / best / 1e9


def _time(fn) -> float:
    start = time.perf_counter()
    fn()
    return time.perf_counter() - start


def bench(preset: str, batch: int, args) -> str:
    model = GPT(GPTConfig.from_preset(preset, vocab_size=256), seed=0).eval()
    prompt = (np.arange(8 * batch).reshape(batch, 8) * 7) % 256
    n = min(args.new_tokens, model.config.n_positions - 8)   # within the context: no cropping
    runners = {"tinyllm": lambda: model.generate(prompt, max_new_tokens=n, do_sample=False)}
    if torch is not None:
        with tempfile.TemporaryDirectory() as tmp:
            model.save(tmp)
            ref = transformers.GPT2LMHeadModel.from_pretrained(tmp).eval()
        tp = torch.tensor(prompt)
        kw = dict(max_new_tokens=n, min_new_tokens=n, do_sample=False, pad_token_id=0,
                  attention_mask=torch.ones_like(tp))

        def hf():
            with torch.no_grad():
                return ref.generate(tp, **kw)
        runners["HF"] = hf
        same = np.array_equal(runners["tinyllm"](), hf().numpy())
    else:
        same = None
    seconds = interleaved_medians(runners, args.repeat)
    tps = {name: batch * n / t for name, t in seconds.items()}
    weight_mib = model.num_params() * 4 / 2**20
    line = (f"{preset:7s} B={batch:<2d} {n} new | {model.num_params():>10,d} params "
            f"{weight_mib:6.1f} MiB | "
            f"tinyllm {tps['tinyllm']:8.1f} tok/s")
    if "HF" in tps:
        line += (f" | HF {tps['HF']:8.1f} tok/s | ratio {tps['tinyllm'] / tps['HF']:4.2f} "
                 f"(same tokens: {same})")
    if batch == 1:
        bound = args.bandwidth * 1e9 / (model.num_params() * 4)
        line += f" | bound {bound:7.1f} tok/s, reached {tps['tinyllm'] / bound:4.0%}"
    return line


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--presets", default="small,medium")
    parser.add_argument("--batches", default="1,8")
    parser.add_argument("--new-tokens", type=int, default=56)
    parser.add_argument("--repeat", type=int, default=7)
    parser.add_argument("--bandwidth-mib", type=int, default=512)
    args = parser.parse_args()
    if torch is not None:
        transformers.logging.set_verbosity_error()
        torch.set_num_threads(args.threads)
    args.bandwidth = bandwidth_gbs(args.bandwidth_mib)
    print(f"threads: {args.threads}; tinyllm kernels: {kernels.backend()}; "
          f"BLAS: {blas_description()}; "
          f"OPENBLAS_CORETYPE={os.environ.get('OPENBLAS_CORETYPE', 'unset')}; "
          f"tinyllm {tinyllm.__version__}, torch {torch.__version__ if torch else 'absent'}; "
          f"measured read bandwidth {args.bandwidth:.1f} GB/s (one thread)")
    for preset in args.presets.split(","):
        for batch in map(int, args.batches.split(",")):
            print(bench(preset, batch, args), flush=True)


if __name__ == "__main__":
    main()
