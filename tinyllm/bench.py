"""`tinyllm bench`: kernels, training steps and generation, tinyllm vs its NumPy twins vs
PyTorch, every row at 1 thread and at `--threads` (default auto) side by side.

Everything runs in one process. A row's runners -- each library at each thread count -- are
timed in interleaved rounds (`timed_rounds`), so the machine's drift slows them alike;
medians are reported. Thread counts are set per runner: `tinyllm.set_num_threads` (one pool:
OpenMP for the kernels and products, BLAS at one thread; see tinyllm.threads) and
`torch.set_num_threads`. Speedup = time at 1 thread / time at n, efficiency = speedup / n.

- kernels: row softmax (4096, 256) and causal attention (B=8, nh=8, T=256, hs=64), forward +
  backward, float32: compiled, NumPy twin (BLAS on the threads), PyTorch.
- training step (forward, backward, AdamW) of GPT at the presets, batch 12 at each preset's
  full context: tinyllm on the compiled kernels and PyTorch (Hugging Face GPT2LMHeadModel, same
  config and initial weights, SDPA attention) at 1 and n threads, the NumPy twins
  (`TINYLLM_KERNELS=numpy`'s code, swapped in) at n. MFU = model matmul FLOPs per second / the
  measured float32 matmul rate (a 1024^3 NumPy product, BLAS on the same threads).
- generation: greedy tokens/s with the KV cache at `small` and `medium`, batch 1 and 8, vs
  Hugging Face `generate` on the same weights; at batch 1 the bound (measured read bandwidth /
  bytes of weights: every token reads every weight) and the fraction of it reached.
- peak memory: the maximum RSS of a fresh process doing a few training steps.

The header names the BLAS library and the kernel architecture it runs (threadpoolctl) and
OPENBLAS_CORETYPE, which pins OpenBLAS to older kernels where it is set. Without torch (or
transformers) the PyTorch columns are left out.

    tinyllm bench [--threads auto] [--presets tiny,small,medium] [--repeats 5] [--no-memory]
"""

from __future__ import annotations

import contextlib
import json
import math
import os
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


#: Idle seconds before each timed call of the benchmark rows: longer than the thread pools of
#: the runner before spin-wait for work after their last call. OpenBLAS's workers spin for
#: 2^28 cycles (its default THREAD_TIMEOUT; ~0.08-0.1 s at 3 GHz), so a NumPy product on
#: two threads left a worker busy on the second core for the next runner -- measured: the
#: compiled attention row on 2 threads took 18.1 ms after 5 ms of rest and 14.0 ms after
#: 0.1 s (1 thread: 26.9 ms both).
SETTLE_S = 0.15


def timed_rounds(runners: dict, rounds: int, settle: float = 0.0,
                 warm_up: bool = False) -> dict:
    """Median seconds of each runner over `rounds` rounds, each round running every runner
    once in turn (after one warm-up call each): a machine whose speed drifts slows them all
    alike, which timing one after the other does not.

    A runner is a function, or (threads, fn[, backend]): run on that many threads
    (`set_threads`) and kernel backend ("numpy" for a twin, whose BLAS then gets the threads),
    after `settle` idle seconds (untimed; see SETTLE_S) -- the pool that ran before, tinyllm's,
    PyTorch's or OpenBLAS's, spins before it sleeps, and must not share the cores with the one
    being timed. `warm_up`: one more untimed call after the rest, so the call timed finds its
    own pool, and the cores, awake, as back-to-back calls do (measured after 0.15 s of rest
    without it: the `tiny` training step on 2 threads 18.7 ms instead of ~10, PyTorch's 23.2
    instead of ~14 -- on this virtual machine an idle core takes long to wake)."""
    def run(runner):
        threads, fn, *backend = runner if isinstance(runner, tuple) else (None, runner)
        with use_backend(backend[0]) if backend else contextlib.nullcontext():
            if threads is not None:
                set_threads(threads)
            time.sleep(settle)
            if warm_up:
                fn()
            start = time.perf_counter()
            fn()
            return time.perf_counter() - start

    for runner in runners.values():
        run(runner)
    times = {name: [] for name in runners}
    for _ in range(rounds):
        for name, runner in runners.items():
            times[name].append(run(runner))
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


def _thread_counts(threads: int) -> tuple[int, ...]:
    return (1,) if threads == 1 else (1, threads)


def _runners(threads: int, **fns) -> dict:
    """{(name, n): (n, fn)} for every fn given (None: left out) at 1 and `threads` threads."""
    return {(name, n): (n, fn) for n in _thread_counts(threads)
            for name, fn in fns.items() if fn is not None}


def kernel_rows(threads: int = 1, repeats: int = 10) -> list[dict]:
    """One row per kernel: ms for compiled / NumPy twin / PyTorch at 1 and `threads` threads."""
    rng = np.random.default_rng(0)
    rows = []
    for name, tl, th in (_softmax_cases(rng), _attention_cases(rng)):
        compiled = tl("cython") if "cython" in kernels.available_backends() else None
        runners = _runners(threads, cython=compiled, torch=th() if _torch() else None)
        runners.update({("numpy", n): (n, tl("numpy"), "numpy") for n in _thread_counts(threads)})
        seconds = timed_rounds(runners, repeats, settle=SETTLE_S, warm_up=True)
        rows.append({"kernel": name, **{f"{lib}_ms@{n}": 1000 * t
                                        for (lib, n), t in seconds.items()}})
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


def train_rows(presets=DEFAULT_PRESETS, threads: int = 1, repeats: int = 5,
               vocab_size: int = 65, numpy_twin: bool = True) -> list[dict]:
    """One row per preset: ms per training step of tinyllm (compiled kernels) and PyTorch at
    1 and `threads` threads, interleaved (`timed_rounds`), and of the NumPy twins at
    `threads` (BLAS then runs on the threads: `tinyllm.threads.limits_for`)."""
    from .models import GPT, GPTConfig

    rows = []
    for preset in presets:
        config = GPTConfig.from_preset(preset, vocab_size=vocab_size)
        model = GPT(config, seed=0)
        state = {k: v.copy() for k, v in model.state_dict().items()}
        x, y = _batch(config, np.random.default_rng(0))
        row = {"preset": preset, "tokens": x.size,
               "flops": model.flops_per_token(training=True) * x.size}
        step = _tinyllm_step(model, x, y)
        torch_step = _torch_step(config, state, x, y) if _torch() is not None else None
        seconds = timed_rounds(_runners(threads, tinyllm=step, torch=torch_step), repeats,
                               settle=SETTLE_S, warm_up=True)
        row.update({f"{lib}_ms@{n}": 1000 * t for (lib, n), t in seconds.items()})
        if numpy_twin:
            twin = timed_rounds({"numpy": (threads, step, "numpy")}, max(2, repeats // 2),
                                settle=SETTLE_S, warm_up=True)
            row[f"numpy_ms@{threads}"] = 1000 * twin["numpy"]
        rows.append(row)
    return rows


# ---------------------------------------------------------------------- generation
def bandwidth_gbs(mib: int = 512, repeat: int = 5) -> float:
    """Bytes per second of reading a float32 array of `mib` MiB on one thread (np.sum): the
    memory bandwidth that bounds decoding at batch 1, where every token reads every weight."""
    a = np.ones(mib * 2**20 // 4, dtype=np.float32)
    a.sum()
    best = math.inf
    for _ in range(repeat):
        start = time.perf_counter()
        a.sum()
        best = min(best, time.perf_counter() - start)
    return a.nbytes / best / 1e9


def _hf_generate(model, prompt, new_tokens):
    """Hugging Face's generate on tinyllm `model`'s weights (saved, read back), or None."""
    try:
        import tempfile

        import transformers
    except ImportError:
        return None
    torch = _torch()
    transformers.logging.set_verbosity_error()
    with tempfile.TemporaryDirectory() as tmp:
        model.save(tmp)
        ref = transformers.GPT2LMHeadModel.from_pretrained(tmp).eval()
    tp = torch.tensor(prompt)
    kw = dict(max_new_tokens=new_tokens, min_new_tokens=new_tokens, do_sample=False,
              pad_token_id=0, attention_mask=torch.ones_like(tp))

    def generate():
        with torch.no_grad():
            return ref.generate(tp, **kw)
    return generate


def generation_rows(presets=("small", "medium"), batches=(1, 8), threads: int = 1,
                    new_tokens: int = 56, repeats: int = 5, bandwidth: float | None = None
                    ) -> list[dict]:
    """Greedy tokens/s with the KV cache, tinyllm vs Hugging Face `generate` on the same
    weights (random, vocabulary 256), prompts of 8 tokens, at 1 and `threads` threads; at
    batch 1 also the bound bandwidth / bytes of weights. Rows say whether both libraries
    produced the same tokens."""
    from .models import GPT, GPTConfig

    rows = []
    for preset in presets:
        model = GPT(GPTConfig.from_preset(preset, vocab_size=256), seed=0).eval()
        n = min(new_tokens, model.config.n_positions - 8)       # within the context
        for batch in batches:
            prompt = (np.arange(8 * batch).reshape(batch, 8) * 7) % 256

            def ours(p=prompt, n=n, model=model):
                return model.generate(p, max_new_tokens=n, do_sample=False)
            hf = _hf_generate(model, prompt, n) if _torch() is not None else None
            seconds = timed_rounds(_runners(threads, tinyllm=ours, hf=hf), repeats,
                                   settle=SETTLE_S, warm_up=True)
            row = {"preset": preset, "batch": batch, "new_tokens": n,
                   "params": model.num_params(),
                   **{f"{lib}_tps@{t}": batch * n / s for (lib, t), s in seconds.items()}}
            if hf is not None:
                row["same_tokens"] = bool(np.array_equal(ours(), hf().numpy()))
            if batch == 1 and bandwidth:
                row["bound_tps"] = bandwidth * 1e9 / (model.num_params() * 4)
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
def _fmt(x, width=7, digits=2):
    return " " * (width - 1) + "-" if x is None else f"{x:{width}.{digits}f}"


def _mfu(flops, ms, peak) -> str:
    """Model FLOPs utilisation: FLOPs per second over the measured matmul peak."""
    return "     -" if ms is None or not peak else f"{flops / (ms / 1000) / 1e9 / peak:6.1%}"


def _ratio(a, b, width=5):
    return " " * (width - 1) + "-" if a is None or b is None else f"{a / b:{width}.2f}"


def _scaling(r: dict, lib: str, n: int, unit: str = "ms") -> str:
    """Speedup 1 -> n threads and parallel efficiency (speedup / n) of one library."""
    one, many = r.get(f"{lib}_{unit}@1"), r.get(f"{lib}_{unit}@{n}")
    if one is None or many is None or n == 1:
        return "    -      -"
    speedup = one / many if unit == "ms" else many / one
    return f"{speedup:5.2f}x {speedup / n:5.0%}"


def print_generation(grows, n, out=print) -> None:
    """The generation table: tinyllm and Hugging Face at 1 and n threads, the bound."""
    out("generation, greedy, KV cache (tokens/s, every row's tokens)")
    out(f"preset  batch  new | tinyllm  1 thr {n:2d} thr | HF generate  1 thr {n:2d} thr | "
        f"tl/HF 1 thr {n:2d} thr | bound (batch 1) reached at 1, {n} | same tokens")
    for r in grows:
        tl1, tln = r.get("tinyllm_tps@1"), r.get(f"tinyllm_tps@{n}")
        hf1, hfn = r.get("hf_tps@1"), r.get(f"hf_tps@{n}")
        bound = r.get("bound_tps")
        reached = ("" if bound is None else
                   f"{bound:7.1f} tok/s: {tl1 / bound:4.0%}, {tln / bound:4.0%}")
        out(f"{r['preset']:<7} {r['batch']:5d} {r['new_tokens']:4d} |       "
            f"{_fmt(tl1, 8, 1)} {_fmt(tln, 7, 1)} |           {_fmt(hf1, 8, 1)} "
            f"{_fmt(hfn, 7, 1)} |     {_ratio(tl1, hf1)}  {_ratio(tln, hfn)} | "
            f"{reached:33s} | {r.get('same_tokens', '-')}")


def print_report(header, n, peak, krows, trows, grows, mrows, out=print) -> None:
    out(f"tinyllm bench -- {header}")
    out(f"kernel backend: {kernels.backend()} ({kernels.backend_reason()})")
    out(f"BLAS: {blas_description()}; OPENBLAS_CORETYPE="
        f"{os.environ.get('OPENBLAS_CORETYPE', 'unset')}")
    out("measured float32 matmul peak (1024^3 NumPy, BLAS threads): "
        + ", ".join(f"{p:.1f} GFLOP/s at {t} thread{'s' * (t > 1)}" for t, p in peak.items()))
    out(f"every row at 1 thread and at {n}, timed in interleaved rounds (medians); speedup = "
        f"time at 1 / time at {n}, efficiency = speedup / {n}")
    out("")
    out(f"{'kernels (float32, fwd+bwd, ms)':<40} threads  cython   numpy   torch  numpy/cy"
        "  cy/torch")
    for r in krows:
        for t in _thread_counts(n):
            cy, nu, to = (r.get(f"{k}_ms@{t}") for k in ("cython", "numpy", "torch"))
            out(f"{r['kernel'] if t == 1 else '':<40} {t:7d} {_fmt(cy)} {_fmt(nu)} {_fmt(to)}"
                f"     {_ratio(nu, cy)}     {_ratio(cy, to)}")
        if n > 1:
            out(f"{'':<40} speedup: cython {_scaling(r, 'cython', n)}, "
                f"torch {_scaling(r, 'torch', n)}")
    out("")
    out(f"training step, fwd+bwd+AdamW, batch {BATCH} (ms)")
    out(f"preset  tokens | tinyllm  1 thr {n:2d} thr  speedup  eff | torch  1 thr {n:2d} thr "
        f" speedup  eff | tl/torch 1 thr {n:2d} thr | numpy twin {n:2d} thr | MFU tl 1, {n}")
    for r in trows:
        tl1, tln = r.get("tinyllm_ms@1"), r.get(f"tinyllm_ms@{n}")
        to1, ton = r.get("torch_ms@1"), r.get(f"torch_ms@{n}")
        out(f"{r['preset']:<7} {r['tokens']:6d} |       {_fmt(tl1, 8, 1)} {_fmt(tln, 7, 1)} "
            f"{_scaling(r, 'tinyllm', n)} |     {_fmt(to1, 7, 1)} {_fmt(ton, 7, 1)} "
            f"{_scaling(r, 'torch', n)} |        {_ratio(tl1, to1)}  {_ratio(tln, ton)} |"
            f"           {_fmt(r.get(f'numpy_ms@{n}'), 7, 1)} | "
            f"{_mfu(r['flops'], tl1, peak.get(1))} {_mfu(r['flops'], tln, peak.get(n))}")
    if grows:
        out("")
        print_generation(grows, n, out)
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
        numpy_twin: bool = True, generation: bool = True, out=print,
        header: str | None = None) -> dict:
    """Measure everything at 1 thread and at `threads`, print the report; returns the rows."""
    peak = {}
    for t in _thread_counts(threads):
        set_threads(t)
        with _blas_threads(t):
            peak[t] = matmul_peak_gflops()
    krows = kernel_rows(threads, max(repeats, 5))
    trows = train_rows(presets, threads, repeats, numpy_twin=numpy_twin)
    grows = (generation_rows(threads=threads, repeats=repeats, bandwidth=bandwidth_gbs())
             if generation else [])
    mrows = memory_rows(presets[-1] if presets else "medium", threads) if memory else []
    set_threads(threads)
    print_report(header or f"threads: 1 and {threads}", threads, peak, krows, trows, grows,
                 mrows, out=out)
    return {"threads": threads, "peak_gflops": peak, "kernels": krows, "train": trows,
            "generation": grows, "memory": mrows}


def _blas_threads(n: int):
    """NumPy's BLAS on n threads inside the block (the matmul peak is BLAS's own)."""
    from threadpoolctl import threadpool_limits

    return threadpool_limits(limits=n, user_api="blas")
