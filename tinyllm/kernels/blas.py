"""The BLAS library the compiled kernels call, kept on one thread.

ext/matmul.pyx and ext/attention.pyx call BLAS (scipy.linalg.cython_blas) from their own
OpenMP threads, one block of work per thread. That library must run single-threaded there, or
every OpenMP thread would start BLAS threads of its own (measured on 2 cores: a training step
7x slower). `tinyllm.kernels` calls `pin_kernel_blas` when it imports them; tinyllm.threads
explains the one pool this is part of.
"""

from __future__ import annotations

import functools
import os


@functools.cache
def kernel_blas_path() -> str | None:
    """File of the BLAS library scipy.linalg.cython_blas calls, or None when it cannot be told
    apart from the others (then `pin_kernel_blas` pins all of them)."""
    return _kernel_blas(_controller().info())


def _kernel_blas(infos) -> str | None:
    import scipy

    root = os.path.dirname(os.path.abspath(scipy.__file__))
    for info in infos:
        if info.get("user_api") == "blas" and info["filepath"].startswith(root):
            return info["filepath"]       # scipy/ or scipy.libs/ beside it
    return None


def _controller():
    import scipy.linalg.cython_blas  # noqa: F401 - loads the library
    from threadpoolctl import ThreadpoolController

    return ThreadpoolController()


def pin_kernel_blas() -> None:
    """Keep the compiled kernels' BLAS on one thread (one scan of the loaded libraries)."""
    controller = _controller()
    path = _kernel_blas(controller.info())
    libs = (controller.select(filepath=path) if path is not None
            else controller.select(user_api="blas"))
    libs.limit(limits=1)


@functools.cache
def column_blocks_exact() -> bool:
    """True when the kernels' BLAS gives a block of columns of a float32 product the same bits
    as the whole product computes for them (one thread each).

    `tinyllm.kernels` splits a float32 product with few rows (and a weight gradient: its rows
    are the layer's width) by columns over its threads, which keeps results independent of the
    thread count only where this holds. Some BLAS builds do not keep it (OpenBLAS 0.3 with its
    Haswell kernels on an AVX-512 AMD EPYC: the last bits of a (64, 512) @ (512, 1024) product
    change when its columns are cut in two); row blocks keep it everywhere seen so far.
    """
    import numpy as np
    from threadpoolctl import threadpool_limits

    from . import _matmul

    rng = np.random.default_rng(0)
    a = rng.standard_normal((64, 512)).astype(np.float32)
    b = rng.standard_normal((512, 1024)).astype(np.float32)
    with threadpool_limits(limits={"openmp": 1, "blas": 1}):
        whole = _matmul.matmul(a, b)
        cut = [_matmul.matmul(a, np.ascontiguousarray(b[:, s])) for s in
               (slice(0, 480), slice(480, None))]
    return bool(np.array_equal(whole, np.hstack(cut)))
