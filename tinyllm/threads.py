"""How many threads tinyllm computes on, and why: `set_num_threads`, ``--threads auto``.

One pool of threads. The compiled kernels (softmax, LayerNorm, GELU, attention, and every
linear layer's product, `kernels.matmul`) run on OpenMP threads; BLAS is called *from* those
threads, one block of the product per thread, and is kept single-threaded. Two pools on the
same cores fight: after each product OpenBLAS's idle workers spin on the cores the next
OpenMP region wants, and the other way round. Measured on 2 cores, GPT `base`, training step
(fwd + bwd + AdamW): 471 ms on one thread, 576 ms on two with both pools, 348 ms with one.

`set_num_threads(n)`:

- compiled kernels: OpenMP (the pool the kernels use) at n threads; every BLAS library in the
  process (NumPy's, SciPy's) at one thread. So NumPy's own ``a @ b`` in your code runs on
  one thread until you raise it again (``threadpoolctl.threadpool_limits``).
- NumPy kernels only (no compiler when tinyllm was installed): BLAS at n threads -- the
  products are then the only parallel work.

Importing the compiled kernels sets the BLAS library they call (SciPy's) to one thread, the
one setting they cannot run without: otherwise each OpenMP thread of a product would start
BLAS threads of its own (measured: 7x slower on 2 cores). That is tinyllm.kernels.blas.

``auto`` (`resolve("auto")`, the default of ``tinyllm train / generate / eval / bench``) is
the physical cores this process may use -- CPUs in its affinity mask, counted once per core
(hyperthreads share one core's arithmetic units), and no more than a cgroup CPU quota allows
(containers) -- unless a probe measures more threads as slower than fewer: a float32 product
(a training step's shape, 512 x 512 x 512) is timed at each candidate count, halving from the
cores down to 1, and the fastest wins, ties to more threads. `tinyllm info` prints the
choice and the reason.

>>> import tinyllm
>>> tinyllm.threads.resolve(1)
(1, '1 thread (asked for)')
"""

from __future__ import annotations

import contextlib
import functools
import math
import os
import time

import numpy as np

from . import kernels

#: How much faster (time ratio) more threads must be in the probe to be chosen over fewer.
PROBE_MARGIN = 1.05
_PROBE_SHAPE = (512, 512, 512)          # m, k, n of the probe's product

_current: int | None = None


# ------------------------------------------------------------------ how many cores
def _affinity_cpus() -> list[int]:
    try:
        return sorted(os.sched_getaffinity(0))
    except AttributeError:              # macOS, Windows: no affinity mask in os
        return list(range(os.cpu_count() or 1))


def _core_of(cpu: int) -> tuple[str, str] | None:
    """(package, core) of a logical CPU from Linux's sysfs; None where sysfs does not say."""
    base = f"/sys/devices/system/cpu/cpu{cpu}/topology/"
    try:
        with open(base + "physical_package_id") as p, open(base + "core_id") as c:
            return p.read().strip(), c.read().strip()
    except OSError:
        return None


def _cgroup_quota(root: str = "/sys/fs/cgroup", membership: str = "/proc/self/cgroup"
                  ) -> float | None:
    """CPUs a cgroup quota allows this process (v2 cpu.max, v1 cpu.cfs_quota_us), or None."""
    paths = {"": "/"}
    with contextlib.suppress(OSError, ValueError):
        with open(membership) as f:
            for line in f:
                _, controllers, path = line.rstrip("\n").split(":", 2)
                for name in controllers.split(",") if controllers else [""]:
                    paths[name] = path
    for folder in dict.fromkeys([root + paths[""].rstrip("/"), root]):      # v2
        with contextlib.suppress(OSError, ValueError):
            quota, period = _read(f"{folder}/cpu.max").split()[:2]
            return None if quota == "max" else int(quota) / int(period)
    cpu = paths.get("cpu", "/").rstrip("/")
    for folder in dict.fromkeys([f"{root}/cpu{cpu}", f"{root}/cpu", f"{root}/cpu,cpuacct"]):
        with contextlib.suppress(OSError, ValueError):                       # v1
            quota = int(_read(f"{folder}/cpu.cfs_quota_us"))
            period = int(_read(f"{folder}/cpu.cfs_period_us"))
            return None if quota <= 0 else quota / period
    return None


def _read(path: str) -> str:
    with open(path) as f:
        return f.read()


def physical_cores() -> tuple[int, str]:
    """(cores this process may use, how that was counted)."""
    cpus = _affinity_cpus()
    cores = {_core_of(c) for c in cpus}
    counted = len(cores) if None not in cores else len(cpus)
    why = (f"{len(cpus)} CPUs in the affinity mask on {counted} physical cores"
           if None not in cores else f"{len(cpus)} CPUs (no core topology found: each counted)")
    quota = _cgroup_quota()
    if quota is not None and math.ceil(quota) < counted:
        counted = max(1, math.ceil(quota))
        why += f", cgroup quota {quota:g} CPUs"
    return counted, why


# ------------------------------------------------------------------ setting and choosing
def _has_compiled_matmul() -> bool:
    return kernels.matmul is not kernels.reference.matmul


def limits_for(n: int) -> dict:
    """threadpoolctl limits that run tinyllm on n threads in one pool (module docstring)."""
    if _has_compiled_matmul():
        return {"openmp": n, "blas": 1}
    return {"openmp": n, "blas": n}


def set_num_threads(n: int) -> None:
    """Compute on n threads from now on (what `torch.set_num_threads` does for PyTorch)."""
    from threadpoolctl import threadpool_limits

    n = _check_count(n)
    threadpool_limits(limits=limits_for(n))
    global _current
    _current = n


def get_num_threads() -> int:
    """Threads tinyllm computes on: the last `set_num_threads`, else OpenMP's default."""
    if _current is not None:
        return _current
    from threadpoolctl import threadpool_info

    pools = [i["num_threads"] for i in threadpool_info() if i.get("user_api") == "openmp"]
    return max(pools) if pools else 1


@contextlib.contextmanager
def limited(n: int):
    """Compute on n threads inside the block, then restore every pool (the CLI's --threads)."""
    from threadpoolctl import threadpool_limits

    global _current
    saved, _current = _current, _check_count(n)
    try:
        with threadpool_limits(limits=limits_for(n)):
            yield n
    finally:
        _current = saved


def _check_count(n) -> int:
    if isinstance(n, bool) or not isinstance(n, (int, np.integer)) or n < 1:
        raise ValueError(f"threads must be a whole number >= 1 (or 'auto'), got {n!r}")
    return int(n)


def probe_seconds(n: int, repeats: int = 3) -> float:
    """Best time of the probe's product on n threads (see the module docstring)."""
    from threadpoolctl import threadpool_limits

    m, k, nn = _PROBE_SHAPE
    rng = np.random.default_rng(0)
    a = rng.standard_normal((m, k), dtype=np.float32)
    b = rng.standard_normal((k, nn), dtype=np.float32)
    best = math.inf
    with threadpool_limits(limits=limits_for(n)):
        kernels.matmul(a, b)                        # warm the pool and the caches
        for _ in range(repeats):
            start = time.perf_counter()
            kernels.matmul(a, b)
            best = min(best, time.perf_counter() - start)
    return best


def resolve(spec) -> tuple[int, str]:
    """(threads, why) for a --threads value: a whole number >= 1, or "auto"."""
    if isinstance(spec, str) and spec.strip().lower() == "auto":
        from .distributed.world import local_size

        ranks = local_size()
        if ranks > 1:              # MPI ranks on this machine share its cores; no probe
            cores, why = physical_cores()
            n = max(1, cores // ranks)
            return n, f"auto: {n} ({why}, shared by {ranks} MPI ranks on this machine)"
        return _auto()
    if isinstance(spec, str):
        try:
            spec = int(spec)
        except ValueError:
            raise ValueError(f"--threads must be 'auto' or a whole number >= 1, got "
                             f"{spec!r}") from None
    n = _check_count(spec)
    return n, f"{n} thread{'s' if n > 1 else ''} (asked for)"


@functools.cache
def _auto() -> tuple[int, str]:
    cores, why = physical_cores()
    if cores == 1:
        return 1, f"auto: 1 ({why})"
    candidates = sorted({max(1, cores >> i) for i in range(cores.bit_length())}, reverse=True)
    times = {c: probe_seconds(c) for c in candidates}
    best = cores
    for c in candidates[1:]:                        # fewer only where clearly faster
        if times[c] * PROBE_MARGIN < times[best]:
            best = c
    probe = ", ".join(f"{c}: {times[c] * 1e3:.1f} ms" for c in candidates)
    return best, f"auto: {best} ({why}; probe {'x'.join(map(str, _PROBE_SHAPE))} product {probe})"
