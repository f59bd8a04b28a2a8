"""Quantized weights: decoding speed at batch 1, tinyllm vs PyTorch's dynamic int8, and the
row count up to which the compiled kernel beats BLAS on the dequantized weight.

Decoding: a GPT at `--preset` (default medium) with random weights, a prompt of 8 tokens
and `--new-tokens` greedy tokens at batch 1 (the end-of-text token cannot end it: there is
none), in float32 and with its Linear/Conv1D weights in int8 (one scale per output channel)
and in 4 bits (groups of 64, Q4_0-style) -- the tied output head stays float32 in every
model. tinyllm's int8 also runs on the NumPy twin (dequantize, then BLAS) to show what the
kernel buys. PyTorch: the same weights in Hugging Face's GPT2LMHeadModel, its Conv1D layers
swapped for equal nn.Linear ones so that `torch.ao.quantization.quantize_dynamic` (int8
weights per tensor, int8 activations quantized on the fly) can take them; `generate` with
the same prompt, greedy, same thread count. Tokens per second, median of `--repeat` rounds
in which every model decodes once in turn (so the machine's drift slows them all alike).

Rows: one (3C, C) layer of the preset; the compiled kernel vs the twin for 1..32 input rows,
which is how `tinyllm.kernels.QUANTIZED_KERNEL_MAX_ROWS` was chosen.

    python benchmarks/bench_quantized.py [--threads 1] [--preset medium] [--new-tokens 64]
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
from tinyllm.bench import blas_description, timed_rounds, use_backend  # noqa: E402
from tinyllm.models import GPT, GPTConfig  # noqa: E402
from tinyllm.nn.quantized import quantize_model, quantize_weight, weight_bytes  # noqa: E402

try:
    import torch
    import transformers
except ImportError:  # the tinyllm rows still run
    torch = transformers = None


def _median_s(fn, repeat: int) -> float:
    fn()                                                    # warm-up
    times = []
    for _ in range(repeat):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def _gpt(preset: str, vocab: int) -> GPT:
    return GPT(GPTConfig.from_preset(preset, vocab_size=vocab), seed=0).eval()


def _torch_linear_gpt(model: GPT):
    """The model in transformers, its Conv1D layers replaced by equal nn.Linear layers."""
    from transformers.pytorch_utils import Conv1D

    with tempfile.TemporaryDirectory() as tmp:
        model.save(tmp)
        ref = transformers.GPT2LMHeadModel.from_pretrained(tmp).eval()
    for name, module in list(ref.named_modules()):
        if isinstance(module, Conv1D):
            in_f, out_f = module.weight.shape
            linear = torch.nn.Linear(in_f, out_f)
            with torch.no_grad():
                linear.weight.copy_(module.weight.T)
                linear.bias.copy_(module.bias)
            ref.set_submodule(name, linear)
    return ref


def bench_decoding(args) -> list[str]:
    prompt = np.arange(8)[None] % args.vocab
    n = args.new_tokens
    models = {"float32": _gpt(args.preset, args.vocab)}
    for scheme in ("int8-channel", "int4-g64"):
        models[scheme] = _gpt(args.preset, args.vocab)
        quantize_model(models[scheme], scheme)

    def run(model):
        out = model.generate(prompt, max_new_tokens=n, do_sample=False)
        assert out.shape == (1, 8 + n)
        return out

    def run_twin():
        with use_backend("numpy"):
            run(models["int8-channel"])

    runners = {name: (lambda m=m: run(m)) for name, m in models.items()}
    runners["twin"] = run_twin
    if torch is not None:
        ref = _torch_linear_gpt(models["float32"])
        qref = torch.ao.quantization.quantize_dynamic(ref, {torch.nn.Linear}, dtype=torch.qint8)
        tp = torch.tensor(prompt)
        kw = dict(max_new_tokens=n, min_new_tokens=n, do_sample=False, pad_token_id=0)

        def trun(m):
            with torch.no_grad():
                return m.generate(tp, attention_mask=torch.ones_like(tp), **kw)

        runners["torch float32"] = lambda: trun(ref)
        runners["torch int8"] = lambda: trun(qref)
    seconds = timed_rounds(runners, args.repeat)
    base = seconds["float32"]
    rows = [f"GPT {args.preset} ({models['float32'].num_params():,} params), batch 1, "
            f"{n} new tokens, greedy; tokens/s (x float32), weight bytes; median of "
            f"{args.repeat} interleaved rounds"]
    for name, m in models.items():
        s = seconds[name]
        rows.append(f"  tinyllm {name:13s} {n / s:8.1f} tok/s  ({base / s:4.2f}x)  "
                    f"{weight_bytes(m) / 2**20:6.2f} MiB")
    rows.append(f"  tinyllm int8 on the twin  {n / seconds['twin']:8.1f} tok/s  "
                f"({base / seconds['twin']:4.2f}x)   (dequantize + BLAS every call)")
    same = np.array_equal(run(models["float32"]), run(_gpt(args.preset, args.vocab)))
    rows.append(f"  targets: int8 >= 1.5x, 4-bit >= 2x float32 (deterministic: {same})")
    if torch is None:
        return rows
    t_float, t_int8 = seconds["torch float32"], seconds["torch int8"]
    rows.append(f"  PyTorch float32           {n / t_float:8.1f} tok/s")
    rows.append(f"  PyTorch dynamic int8      {n / t_int8:8.1f} tok/s  ({t_float / t_int8:4.2f}x "
                "its float32)")
    rows.append(f"  tinyllm int8 / PyTorch dynamic int8 speed: "
                f"{t_int8 / seconds['int8-channel']:.2f} (target >= 1: no slower)")
    return rows


def bench_rows(args) -> list[str]:
    try:
        from tinyllm.kernels import _quantized
    except ImportError:
        return ["(no compiled kernels: the rows comparison needs them)"]
    c = GPTConfig.from_preset(args.preset, vocab_size=args.vocab).n_embd
    rng = np.random.default_rng(0)
    w = rng.standard_normal((3 * c, c))
    rows = [f"one ({3 * c}, {c}) layer, float32 input rows: compiled kernel vs twin "
            f"(dequantize + BLAS), microseconds (instruction-set level "
            f"{_quantized.simd_level()}: 2 AVX-512, 1 AVX2, 0 portable C)"]
    for scheme, group in (("int8-channel", 0), ("int4-g64", 64)):
        q, scale = quantize_weight(w, scheme)
        scale = scale.astype(np.float32)
        parts = []
        for n_rows in (1, 2, 4, 8, 16, 24, 32, 48):
            x = rng.standard_normal((n_rows, c)).astype(np.float32)
            args_ = (x, q, scale, group)
            k = _median_s(lambda a=args_: _quantized.quantized_linear(*a), 50)
            t = _median_s(lambda a=args_: kernels.reference.quantized_linear(*a), 50)
            parts.append(f"{n_rows}: {k * 1e6:.0f}/{t * 1e6:.0f}")
        rows.append(f"  {scheme:13s} rows: kernel/twin  " + "  ".join(parts))
    rows.append(f"  (tinyllm.kernels sends up to {kernels.QUANTIZED_KERNEL_MAX_ROWS} rows to the "
                "kernel, more to the twin)")
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--preset", default="medium")
    parser.add_argument("--vocab", type=int, default=256)
    parser.add_argument("--new-tokens", type=int, default=64)
    parser.add_argument("--repeat", type=int, default=9)
    args = parser.parse_args()
    if torch is not None:
        transformers.logging.set_verbosity_error()
        torch.set_num_threads(args.threads)
    print(f"threads: {args.threads}; tinyllm kernels: {kernels.backend()}; "
          f"BLAS: {blas_description()}; "
          f"OPENBLAS_CORETYPE={os.environ.get('OPENBLAS_CORETYPE', 'unset')}; "
          f"tinyllm {tinyllm.__version__}, torch {torch.__version__ if torch else 'absent'}")
    for line in bench_rows(args) + bench_decoding(args):
        print(line)


if __name__ == "__main__":
    main()
