"""`tinyllm bench`: kernels and training steps, tinyllm (compiled and NumPy twin) vs PyTorch.

Everything runs in one process, side by side, with the same thread count for every library
(threadpoolctl limits BLAS and OpenMP; `torch.set_num_threads` the same number), printed in
the header. Times are medians of repeats; on a shared machine compare columns of one run.

- kernels: row softmax (4096, 256) and causal attention (B=8, nh=8, T=256, hs=64), forward +
  backward, float32.
- training step (forward, backward, AdamW) of GPT at the presets, batch 12 at each preset's
  full context: tinyllm on the compiled kernels, on the NumPy twins (`TINYLLM_KERNELS=numpy`'s
  code, swapped in for the run) and PyTorch (Hugging Face GPT2LMHeadModel, same config and
  initial weights, SDPA attention). MFU = model matmul FLOPs per second / this machine's
  measured float32 matmul rate (a 1024^3 NumPy matmul on the same threads).
- peak memory: the maximum RSS of a fresh process doing a few training steps.

Without torch (or transformers) the PyTorch columns are left out.

    tinyllm bench [--threads 1] [--presets tiny,small,medium] [--repeats 5] [--no-memory]
"""

from __future__ import annotations

import contextlib
import json
import statistics
import subprocess
import sys
import time

import numpy as np

from . import kernels

DEFAULT_PRESETS = ("tiny", "mini", "small", "base", "medium")
BATCH = 12


# ---------------------------------------------------------------------- plumbing
def set_threads(n: int) -> str:
    """Run tinyllm and (if present) torch on `n` threads; describe what was set."""
    from . import threads

    threads.set_num_threads(n)
    parts = [f"tinyllm.set_num_threads({n}) (pools: {threads.limits_for(n)})"]
    torch = _torch()
    if torch is not None:
        torch.set_num_threads(n)
        parts.append(f"torch.set_num_threads({n})")
    return "; ".join(parts)


def blas_description() -> str:
    """The BLAS libraries NumPy and SciPy loaded, with version and the kernel chosen for
    this CPU ("openblas 0.3.30 (SkylakeX)"), for benchmark headers."""
    try:
        from threadpoolctl import threadpool_info
    except ImportError:
        return "unknown BLAS"
    blas = [i for i in threadpool_info() if i.get("user_api") == "blas"]
    return ", ".join(f"{i.get('internal_api')} {i.get('version')} ({i.get('architecture')})"
                     for i in blas) or "unknown BLAS"


def _torch():
    try:
        import torch
    except ImportError:
        return None
    return torch


def _median_ms(fn, repeats: int, warmup: int = 1) -> float:
    for _ in range(warmup):
        fn()
    times = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t0)
    return 1000.0 * float(np.median(times))


def interleaved_medians(runners: dict, repeat: int) -> dict:
    """Median seconds of each runner over `repeat` rounds, each round running every runner
    once in turn (after one warm-up call each): a machine whose speed drifts slows them all
    alike, which timing one after the other does not."""
    for fn in runners.values():
        fn()
    times = {name: [] for name in runners}
    for _ in range(repeat):
        for name, fn in runners.items():
            start = time.perf_counter()
            fn()
            times[name].append(time.perf_counter() - start)
    return {name: statistics.median(t) for name, t in times.items()}


@contextlib.contextmanager
def use_backend(name: str):
    """Run tinyllm's ops on backend `name` ("cython" or "numpy") inside the block."""
    chosen = kernels.get_backend(name)
    saved = {k: getattr(kernels, k) for k in kernels.KERNELS}
    try:
        for k in kernels.KERNELS:
            setattr(kernels, k, getattr(chosen, k))
        yield
    finally:
        for k, fn in saved.items():
            setattr(kernels, k, fn)


def matmul_peak_gflops(repeats: int = 5, n: int = 1024) -> float:
    """Measured float32 matmul rate (GFLOP/s) of an n x n x n NumPy product."""
    rng = np.random.default_rng(0)
    a, b = (rng.standard_normal((n, n)).astype(np.float32) for _ in range(2))
    ms = min(_median_ms(lambda: a @ b, 1) for _ in range(repeats))
    return 2 * n ** 3 / (ms / 1000) / 1e9


# ---------------------------------------------------------------------- kernels
def _softmax_cases(rng):
    x = rng.standard_normal((4096, 256)).astype(np.float32)
    dy = rng.standard_normal(x.shape).astype(np.float32)

    def tl(backend):
        bk = kernels.get_backend(backend)
        return lambda: bk.softmax_backward(bk.softmax_forward(x), dy)

    def th():
        torch = _torch()
        tx = torch.tensor(x, requires_grad=True)
        tdy = torch.tensor(dy)

        def run():
            tx.grad = None
            torch.softmax(tx, -1).backward(tdy)
        return run
    return "softmax (4096, 256) fwd+bwd", tl, th


def _attention_cases(rng):
    q, k, v, dout = (rng.standard_normal((8, 8, 256, 64)).astype(np.float32) for _ in range(4))

    def tl(backend):
        bk = kernels.get_backend(backend)

        def run():
            _, cache = bk.attention_forward(q, k, v, None, None, True, 0.0, None)
            bk.attention_backward(dout, cache)
        return run

    def th():
        torch = _torch()
        tq, tk, tv = (torch.tensor(a, requires_grad=True) for a in (q, k, v))
        tdo = torch.tensor(dout)

        def run():
            for t in (tq, tk, tv):
                t.grad = None
            torch.nn.functional.scaled_dot_product_attention(tq, tk, tv, is_causal=True
                                                             ).backward(tdo)
        return run
    return "causal attention (8, 8, 256, 64) fwd+bwd", tl, th


def kernel_rows(repeats: int = 10) -> list[dict]:
    """One row per kernel: ms for compiled / NumPy twin / PyTorch, and the ratios."""
    rng = np.random.default_rng(0)
    rows = []
    for name, tl, th in (_softmax_cases(rng), _attention_cases(rng)):
        row = {"kernel": name}
        backends = kernels.available_backends()
        row["cython_ms"] = _median_ms(tl("cython"), repeats) if "cython" in backends else None
        row["numpy_ms"] = _median_ms(tl("numpy"), repeats)
        row["torch_ms"] = _median_ms(th(), repeats) if _torch() is not None else None
        rows.append(row)
    return rows


# ---------------------------------------------------------------------- training step
def _batch(config, rng):
    t = config.n_positions
    x = rng.integers(0, config.vocab_size, (BATCH, t))
    return x, rng.integers(0, config.vocab_size, (BATCH, t))


def _tinyllm_step(model, x, y):
    from .optim import AdamW

    opt = AdamW(model.parameters(), lr=1e-4)

    def step():
        loss = model(x, y).loss
        opt.zero_grad()
        loss.backward()
        opt.step()
    return step


def _torch_step(config, state, x, y):
    torch = _torch()
    try:
        import transformers
        from transformers import GPT2Config, GPT2LMHeadModel
    except ImportError:
        return None
    transformers.logging.set_verbosity_error()  # bos/eos ids outside a tiny vocabulary
    hf = GPT2LMHeadModel(GPT2Config(**{k: v for k, v in config.to_dict().items()
                                       if k not in ("model_type", "architectures")},
                                    attn_implementation="sdpa"))
    hf.load_state_dict({k: torch.tensor(v) for k, v in state.items()}, strict=False)
    hf.train()
    opt = torch.optim.AdamW(hf.parameters(), lr=1e-4)
    tx, ty = torch.from_numpy(x), torch.from_numpy(y)

    def step():
        logits = hf(tx).logits
        loss = torch.nn.functional.cross_entropy(logits.view(-1, logits.size(-1)), ty.view(-1))
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
    return step


def train_rows(presets=DEFAULT_PRESETS, repeats: int = 5, peak_gflops: float | None = None,
               vocab_size: int = 65, numpy_twin: bool = True) -> list[dict]:
    """One row per preset: ms per training step (compiled / twin / torch), tokens/s, MFU."""
    from .models import GPT, GPTConfig

    rows = []
    for preset in presets:
        config = GPTConfig.from_preset(preset, vocab_size=vocab_size)
        model = GPT(config, seed=0)
        state = {k: v.copy() for k, v in model.state_dict().items()}
        x, y = _batch(config, np.random.default_rng(0))
        tokens = x.size
        row = {"preset": preset, "tokens": tokens,
               "flops": model.flops_per_token(training=True) * tokens}
        step = _tinyllm_step(model, x, y)
        if "cython" in kernels.available_backends():
            with use_backend("cython"):
                row["cython_ms"] = _median_ms(step, repeats)
        if numpy_twin:
            with use_backend("numpy"):
                row["numpy_ms"] = _median_ms(step, max(2, repeats // 2))
        torch_step = _torch_step(config, state, x, y) if _torch() is not None else None
        if torch_step is not None:
            row["torch_ms"] = _median_ms(torch_step, repeats)
        row["peak_gflops"] = peak_gflops
        rows.append(row)
    return rows


# ---------------------------------------------------------------------- memory
_RSS_SCRIPT = """
import json, sys
import numpy as np
from tinyllm import bench
from tinyllm._memory import peak_rss_mib
from tinyllm.models import GPT, GPTConfig
which, preset, threads = sys.argv[1], sys.argv[2], int(sys.argv[3])
bench.set_threads(threads)
config = GPTConfig.from_preset(preset, vocab_size=65)
model = GPT(config, seed=0)
x, y = bench._batch(config, np.random.default_rng(0))
before = peak_rss_mib()
if which == "torch":
    state = {k: v.copy() for k, v in model.state_dict().items()}
    del model
    step = bench._torch_step(config, state, x, y)
else:
    step = bench._tinyllm_step(model, x, y)
for _ in range(3):
    step()
print(json.dumps({"peak_mib": peak_rss_mib(), "baseline_mib": before}))
"""


def memory_rows(preset: str = "medium", threads: int = 1) -> list[dict]:
    """Peak RSS (MiB) of a fresh process running 3 training steps, per library."""
    rows = []
    for which in ("tinyllm", "torch"):
        if which == "torch" and _torch() is None:
            continue
        proc = subprocess.run([sys.executable, "-c", _RSS_SCRIPT, which, preset, str(threads)],
                              capture_output=True, text=True, timeout=600)
        if proc.returncode != 0:
            rows.append({"library": which, "error": proc.stderr.strip().splitlines()[-1:]})
            continue
        rows.append({"library": which, "preset": preset, **json.loads(proc.stdout)})
    return rows


# ---------------------------------------------------------------------- printing
def _fmt(ms):
    return "      -" if ms is None else f"{ms:7.2f}"


def _mfu(flops, ms, peak) -> str:
    """Model FLOPs utilisation: FLOPs per second over the measured matmul peak."""
    return "     -" if ms is None or not peak else f"{flops / (ms / 1000) / 1e9 / peak:6.1%}"


def _ratio(a, b):
    return "    -" if a is None or b is None else f"{a / b:5.2f}"


def print_report(threads_note, peak, krows, trows, mrows, out=print) -> None:
    out(f"tinyllm bench -- threads: {threads_note}")
    out(f"kernel backend: {kernels.backend()} ({kernels.backend_reason()})")
    out(f"measured float32 matmul peak (1024^3 NumPy): {peak:.1f} GFLOP/s")
    out("")
    out(f"{'kernels (float32, median ms)':<42} cython   numpy   torch  numpy/cy  cy/torch")
    for r in krows:
        out(f"{r['kernel']:<42} {_fmt(r.get('cython_ms'))} {_fmt(r.get('numpy_ms'))} "
            f"{_fmt(r.get('torch_ms'))}     {_ratio(r.get('numpy_ms'), r.get('cython_ms'))}"
            f"     {_ratio(r.get('cython_ms'), r.get('torch_ms'))}")
    out("")
    out("training step, fwd+bwd+AdamW, batch 12 (median ms)")
    out("preset  tokens   cython    numpy    torch  cy/torch  tok/s(cy)  MFU cy  MFU torch")
    for r in trows:
        cy, to = r.get("cython_ms"), r.get("torch_ms")
        tps = "        -" if cy is None else f"{r['tokens'] / (cy / 1000):9.0f}"
        out(f"{r['preset']:<7} {r['tokens']:6d} {_fmt(cy)}  {_fmt(r.get('numpy_ms'))}  "
            f"{_fmt(to)}    {_ratio(cy, to)}  {tps}  {_mfu(r['flops'], cy, peak)}  "
            f"{_mfu(r['flops'], to, peak)}")
    if mrows:
        out("")
        out("peak memory (max RSS of a fresh process, 3 training steps)")
        for r in mrows:
            if "error" in r:
                out(f"{r['library']:<8} failed: {r['error']}")
            else:
                out(f"{r['library']:<8} {r['preset']}: {r['peak_mib']:7.1f} MiB "
                    f"(after imports and model: {r['baseline_mib']:.1f} MiB)")


def run(threads: int = 1, presets=DEFAULT_PRESETS, repeats: int = 5, memory: bool = True,
        numpy_twin: bool = True, out=print) -> dict:
    """Measure everything and print the report; returns the rows."""
    note = set_threads(threads)
    peak = matmul_peak_gflops()
    krows = kernel_rows(max(repeats, 5))
    trows = train_rows(presets, repeats, peak, numpy_twin=numpy_twin)
    mrows = memory_rows(presets[-1] if presets else "medium", threads) if memory else []
    print_report(note, peak, krows, trows, mrows, out=out)
    return {"threads": threads, "peak_gflops": peak, "kernels": krows, "train": trows,
            "memory": mrows}
