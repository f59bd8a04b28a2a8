"""Kernel dispatch: the compiled Cython kernels when they import, their NumPy twins otherwise.

Shapes: the row kernels (softmax, log-softmax, LayerNorm) work along the LAST axis of an array
``(..., C)`` (``C`` columns, any number of leading axes); GELU and erf are elementwise. Inputs
are float32 or float64, may be non-contiguous views (copied where the compiled code needs
contiguous rows), and results keep the input's shape and dtype. Each kernel's twin in
`reference` documents its signature and its equation.

Every kernel is one row of `KERNEL_TABLE`: its name, the compiled module that defines it
(``ext/<module>.pyx``, built as ``tinyllm.kernels._<module>``) and an adapter that gives the
compiled function its twin's signature. `KERNELS`, ``__all__``, both backends and
`backend_reason()` are all read from that table, so adding a kernel takes three things: a
row, the compiled function, and its twin in `reference` (same name).

>>> import numpy as np
>>> from tinyllm import kernels
>>> kernels.backend() in ("cython", "numpy")
True
>>> kernels.softmax_forward(np.zeros((2, 4), dtype=np.float32))
array([[0.25, 0.25, 0.25, 0.25],
       [0.25, 0.25, 0.25, 0.25]], dtype=float32)

The environment variable ``TINYLLM_KERNELS`` (read once, when this module is imported)
chooses the backend:

- unset or ``auto``: the compiled kernels if they import, else the NumPy reference;
- ``numpy``: always the NumPy reference (the compiled module is not even imported);
- ``cython``: the compiled kernels, or ``ImportError`` saying why they are unavailable.

``backend()`` names the active backend and ``backend_reason()`` says why it was chosen.
Tests reach every backend through ``available_backends()`` and ``get_backend(name)``.
``tinyllm.kernels.<name>`` is the active backend's kernel; ops look it up at every call, so
replacing it (as tests and `tinyllm.bench.use_backend` do) reroutes every op.
"""

import functools
import importlib
import os
from collections.abc import Callable
from types import ModuleType, SimpleNamespace
from typing import NamedTuple

import numpy as np

from . import reference

_ENV = "TINYLLM_KERNELS"
_CHOICES = ("auto", "numpy", "cython")
_REBUILD = ("to build them, install a C compiler, then in the tinyllm checkout run: "
            "pip install --no-cache-dir --force-reinstall . (or pip install -e . to build them "
            "in place, which is what the tests of a checkout import)")


# ------------------------------------------------------------------ adapters
# Each takes (compiled module, kernel name) and returns a function with the twin's signature.


def _rows(x: np.ndarray) -> np.ndarray:
    """View (or copy) ``x`` (..., C) as C-contiguous rows (N, C), the compiled kernels' input."""
    return np.ascontiguousarray(x).reshape(-1, x.shape[-1])


def _flat(x: np.ndarray) -> np.ndarray:
    """View (or copy) ``x`` as one C-contiguous vector, the elementwise kernels' input."""
    return np.ascontiguousarray(x).reshape(-1)


def _as_is(module: ModuleType, name: str) -> Callable:
    """The compiled function already takes what its twin takes (erf)."""
    return getattr(module, name)


def _on_rows(module: ModuleType, name: str) -> Callable:
    """An (N, C) -> (N, C) compiled kernel on any (..., C) array: softmax_forward(x)."""
    fn = getattr(module, name)

    def kernel(x):
        x = reference.check_input(x, name)
        if x.size == 0:  # nothing to compute, and reshape(-1, 0) is ambiguous
            return np.empty(x.shape, x.dtype)
        return fn(_rows(x)).reshape(x.shape)
    return kernel


def _on_row_pairs(module: ModuleType, name: str) -> Callable:
    """A (y, dy) -> dx compiled kernel on (N, C) rows, on any (..., C) arrays."""
    fn = getattr(module, name)

    def kernel(y, dy):
        y, dy = reference.check_pair(y, dy, name)
        if y.size == 0:
            return np.empty(y.shape, y.dtype)
        return fn(_rows(y), _rows(dy)).reshape(y.shape)
    return kernel


def _gelu_forward(module: ModuleType, name: str) -> Callable:
    """gelu_forward(x, approximate) on any shape (the compiled one takes a flat vector)."""
    def gelu_forward(x, approximate="tanh"):
        x = reference.check_input(x, name)
        tanh = reference.is_tanh_gelu(approximate, name)
        return module.gelu_forward(_flat(x), tanh).reshape(x.shape)
    return gelu_forward


def _gelu_backward(module: ModuleType, name: str) -> Callable:
    """gelu_backward(x, dy, approximate) on any shape."""
    def gelu_backward(x, dy, approximate="tanh"):
        x, dy = reference.check_pair(x, dy, name)
        tanh = reference.is_tanh_gelu(approximate, name)
        return module.gelu_backward(_flat(x), _flat(dy), tanh).reshape(x.shape)
    return gelu_backward


def _param(p, x: np.ndarray):
    """A LayerNorm weight or bias (D,) as the compiled code wants it, or None."""
    return None if p is None else np.ascontiguousarray(p, dtype=x.dtype).reshape(-1)


def _layer_norm_forward(module: ModuleType, name: str) -> Callable:
    """layer_norm_forward on (..., D) arrays (the compiled one takes (N, D) rows)."""
    def layer_norm_forward(x, weight, bias, eps):
        x = reference.check_input(x, name)
        y, mean, rstd = module.layer_norm_forward(_rows(x), _param(weight, x),
                                                  _param(bias, x), float(eps))
        return y.reshape(x.shape), mean.reshape(x.shape[:-1]), rstd.reshape(x.shape[:-1])
    return layer_norm_forward


def _layer_norm_backward(module: ModuleType, name: str) -> Callable:
    """layer_norm_backward on (..., D) arrays; mean and rstd have shape (...)."""
    def layer_norm_backward(x, dy, mean, rstd, weight):
        x, dy = reference.check_pair(x, dy, name)
        dx, dweight, dbias = module.layer_norm_backward(
            _rows(x), _rows(dy), _flat(np.asarray(mean, x.dtype)),
            _flat(np.asarray(rstd, x.dtype)), _param(weight, x))
        return dx.reshape(x.shape), dweight, dbias
    return layer_norm_backward


def _attention_forward(module: ModuleType, name: str) -> Callable:
    """attention_forward: the compiled kernel for the inputs it `supports`, else the twin."""
    def attention_forward(q, k, v, mask=None, scale=None, is_causal=False, dropout_p=0.0,
                          generator=None):
        if module.supports(q, k, v, mask, dropout_p):
            return module.attention_forward(q, k, v, mask, scale, is_causal)
        return reference.attention_forward(q, k, v, mask, scale, is_causal, dropout_p,
                                           generator)
    return attention_forward


def _attention_backward(module: ModuleType, name: str) -> Callable:
    """attention_backward: the backward of whichever forward made the cache."""
    def attention_backward(dout, cache):
        if isinstance(cache, reference.AttentionCache):
            return reference.attention_backward(dout, cache)
        return module.attention_backward(dout, cache)
    return attention_backward


#: Input rows up to which the compiled quantized_linear runs; above, BLAS on the dequantized
#: weight (the twin) is faster. Measured with benchmarks/bench_quantized.py on a (960, 320)
#: layer, one thread, AVX-512: int8 kernel/twin 703/888 us at 24 rows, 958/973 at 32,
#: 1398/1352 at 48; 4-bit 1105/1438 at 24, 1464/1534 at 32, 2185/1677 at 48.
QUANTIZED_KERNEL_MAX_ROWS = 24


def _quantized_linear(module: ModuleType, name: str) -> Callable:
    """quantized_linear on (..., in) inputs: the compiled kernel for a few rows (generation),
    the twin (dequantize, then BLAS) for many."""
    def quantized_linear(x, qweight, scale, group_size, bias=None):
        x = reference.check_input(x, name)
        rows = _rows(x)
        if len(rows) > QUANTIZED_KERNEL_MAX_ROWS:
            return reference.quantized_linear(x, qweight, scale, group_size, bias)
        scale = np.ascontiguousarray(scale, dtype=x.dtype)
        bias = None if bias is None else np.ascontiguousarray(bias, dtype=x.dtype)
        y = module.quantized_linear(rows, qweight, scale, int(group_size or 0), bias)
        return y.reshape(*x.shape[:-1], y.shape[-1])
    return quantized_linear


#: Rows of `a` for which the compiled matmul streams the weight once (few_rows.h: float32,
#: `b` C-contiguous, as a Conv1D weight is); many go to BLAS's GEMM. Measured with
#: benchmarks/bench_generate.py's weights, one thread, AVX-512, 32 (320, 960) weights in turn
#: (none stays in cache): BLAS/kernel us at 1 row 120/118 (BLAS's GEMV), 2 rows 270/128,
#: 8 rows 566/175, 16 rows 546/231, 32 rows 646/370. The kernel splits its output columns
#: over threads (BLAS's GEMV would stay on one).
FEW_ROWS_MIN, FEW_ROWS_MAX = 1, 32


def _matmul(module: ModuleType, name: str) -> Callable:
    """matmul(a, b, bias): few rows streamed (float32, b C-contiguous), else BLAS blocks over
    tinyllm's threads; mixed dtypes go to the twin, which promotes as NumPy does."""
    def matmul(a, b, bias=None):
        a, b = reference.check_input(a, name), reference.check_input(b, name)
        if a.ndim != 2 or b.ndim != 2 or a.shape[1] != b.shape[0] or a.dtype != b.dtype:
            return reference.matmul(a, b, bias)
        if bias is not None:
            if np.shape(bias) != (b.shape[1],):
                return reference.matmul(a, b, bias)        # its error names the shapes
            bias = np.ascontiguousarray(bias, dtype=a.dtype)
        if (FEW_ROWS_MIN <= len(a) <= FEW_ROWS_MAX and a.dtype == np.float32
                and b.flags.c_contiguous):
            c = module.few_rows_matmul(np.ascontiguousarray(a), b)
            if bias is not None:
                c += bias
            return c
        return module.matmul(a, b, bias)
    return matmul


def _adam_update(module: ModuleType, name: str) -> Callable:
    """adam_update: the one-pass kernel for C-contiguous float32/float64 arrays of one dtype;
    anything else (a strided parameter, mixed dtypes) goes to the twin."""
    def adam_update(p, g, m, v, vmax, hyper, scratch=None):
        arrays = (p, g, m, v) + (() if vmax is None else (vmax,))
        if (p.dtype not in reference.SUPPORTED_DTYPES
                or any(x.dtype != p.dtype or x.shape != p.shape or not x.flags.c_contiguous
                       for x in arrays)):
            return reference.adam_update(p, g, m, v, vmax, hyper, scratch)
        module.adam_update(p.reshape(-1), g.reshape(-1), m.reshape(-1), v.reshape(-1),
                           None if vmax is None else vmax.reshape(-1),
                           reference.adam_constants(hyper), 1 - hyper.beta1 < 0.5,
                           bool(hyper.maximize))
    return adam_update


# ------------------------------------------------------------------ the table
class Kernel(NamedTuple):
    """One kernel: ``tinyllm.kernels.<name>``, ``reference.<name>`` and ``_<module>.<name>``."""

    name: str
    module: str                 # ext/<module>.pyx, imported as tinyllm.kernels._<module>
    adapt: Callable[[ModuleType, str], Callable]   # gives the compiled one the twin's signature


KERNEL_TABLE = (
    Kernel("softmax_forward", "softmax", _on_rows),
    Kernel("softmax_backward", "softmax", _on_row_pairs),
    Kernel("log_softmax_forward", "softmax", _on_rows),
    Kernel("log_softmax_backward", "softmax", _on_row_pairs),
    Kernel("erf", "special", _as_is),
    Kernel("gelu_forward", "fused", _gelu_forward),
    Kernel("gelu_backward", "fused", _gelu_backward),
    Kernel("layer_norm_forward", "fused", _layer_norm_forward),
    Kernel("layer_norm_backward", "fused", _layer_norm_backward),
    Kernel("attention_forward", "attention", _attention_forward),
    Kernel("attention_backward", "attention", _attention_backward),
    Kernel("quantized_linear", "quantized", _quantized_linear),
    Kernel("matmul", "matmul", _matmul),
    Kernel("adam_update", "optim", _adam_update),
)
KERNELS = tuple(row.name for row in KERNEL_TABLE)

# Without these modules there is no compiled backend. Any other module that fails to import
# (a stale build, say) only leaves its own kernels on their twins, and backend_reason() says so.
_CORE_MODULES = ("softmax", "special")

__all__ = ["KERNELS", "KERNEL_TABLE", "Kernel", "available_backends", "backend",
           "backend_reason", "compiled_reason", "get_backend", "reference", *KERNELS]


# ------------------------------------------------------------------ the backends
def _numpy_backend() -> SimpleNamespace:
    return SimpleNamespace(name="numpy", **{name: getattr(reference, name) for name in KERNELS})


def _compiled_kernel(row: Kernel, module: ModuleType) -> Callable:
    """The row's compiled kernel, adapted, named and documented like its twin."""
    kernel = row.adapt(module, row.name)
    if kernel is getattr(module, row.name):
        return kernel
    kernel = functools.update_wrapper(kernel, getattr(reference, row.name))
    kernel.__module__ = __name__
    return kernel


def _import_modules() -> tuple[dict[str, ModuleType], dict[str, Exception]]:
    """Import the table's compiled modules, core ones first: ({stem: module}, {stem: error})."""
    stems = sorted(dict.fromkeys(row.module for row in KERNEL_TABLE),
                   key=lambda stem: stem not in _CORE_MODULES)
    modules, errors = {}, {}
    for stem in stems:
        try:
            # import_module, not `from . import`: inside the package's own __init__ a missing
            # file would be reported as a (nonexistent) circular import.
            modules[stem] = importlib.import_module(f"{__name__}._{stem}")
        except (ImportError, ValueError) as exc:
            # ValueError: a module compiled against a newer NumPy than the one running
            # ("numpy.dtype size changed, may indicate binary incompatibility").
            errors[stem] = exc
            if stem in _CORE_MODULES:
                break
    return modules, errors


def _import_compiled() -> tuple[SimpleNamespace | None, str]:
    """Import the compiled kernels; return (namespace or None, the reason in words)."""
    modules, errors = _import_modules()
    why = {stem: f"{type(exc).__name__}: {exc}" for stem, exc in errors.items()}
    for stem in _CORE_MODULES:
        if stem in why:
            return None, (f"compiled kernels unavailable in {os.path.dirname(__file__)} "
                          f"({why[stem]})")
    namespace = SimpleNamespace(name="cython")
    for row in KERNEL_TABLE:  # whatever did not import runs on its twin
        module = modules.get(row.module)
        kernel = getattr(reference, row.name) if module is None else _compiled_kernel(row, module)
        setattr(namespace, row.name, kernel)
    if "matmul" in modules or "attention" in modules:
        from .blas import pin_kernel_blas
        pin_kernel_blas()           # they call BLAS from their own threads: keep it at one
    folder = os.path.dirname(modules[_CORE_MODULES[0]].__file__)
    reason = f"compiled kernels imported from {folder}"
    if why:
        failed = ", ".join(f"_{stem} ({text})" for stem, text in why.items())
        reason += f"; NumPy twins for the kernels of {failed}"
    return namespace, reason


@functools.cache
def _compiled() -> tuple[SimpleNamespace | None, str]:
    return _import_compiled()


def _choose() -> tuple[SimpleNamespace, str]:
    choice = os.environ.get(_ENV, "").strip().lower() or "auto"
    if choice not in _CHOICES:
        raise ValueError(f"{_ENV}={os.environ[_ENV]!r} is not a kernel backend; "
                         f"accepted: {', '.join(_CHOICES)} (or unset)")
    if choice == "numpy":
        return _numpy_backend(), f"{_ENV}=numpy set"
    compiled, reason = _compiled()
    if compiled is not None:
        return compiled, reason
    if choice == "cython":
        raise ImportError(f"{_ENV}=cython set, but {reason}; {_REBUILD}")
    return _numpy_backend(), f"{reason}; using the NumPy reference; {_REBUILD}"


def backend() -> str:
    """Name of the active backend: ``"cython"`` or ``"numpy"``."""
    return _ACTIVE.name


def backend_reason() -> str:
    """Why the active backend was chosen (an import error's text when the build failed)."""
    return _REASON


def available_backends() -> list[str]:
    """Backends that can run here: always ``"numpy"``, plus ``"cython"`` when it imports.

    This imports the compiled module if it was not imported yet (``TINYLLM_KERNELS=numpy``),
    so tests can compare every backend; it does not change the active one.
    """
    return ["numpy"] + (["cython"] if _compiled()[0] is not None else [])


def compiled_reason() -> str:
    """Whether the compiled kernels import, and from where (or why not), in words."""
    return _compiled()[1]


def get_backend(name: str) -> SimpleNamespace:
    """The kernels of one backend, as attributes named like this module's functions.

    >>> get_backend("numpy").softmax_forward([0.0, 0.0])
    array([0.5, 0.5])
    """
    if name == "numpy":
        return _numpy_backend()
    if name == "cython":
        compiled, reason = _compiled()
        if compiled is None:
            raise ImportError(f"{reason}; {_REBUILD}")
        return compiled
    raise ValueError(f"unknown kernel backend {name!r}; accepted: 'numpy', 'cython'")


_ACTIVE, _REASON = _choose()


def __getattr__(name: str):
    """``tinyllm.kernels.<kernel>``: the active backend's kernel of that name."""
    if name in KERNELS:
        return getattr(_ACTIVE, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def __dir__() -> list[str]:
    return sorted({*globals(), *KERNELS})
