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
