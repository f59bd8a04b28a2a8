"""Kernel dispatch: the compiled Cython kernels when they import, their NumPy twins otherwise.

Shapes: every kernel works along the LAST axis of an array ``(..., C)`` (``C`` columns, any
number of leading axes), float32 or float64, and returns a new array of the input's shape
and dtype. Inputs may be non-contiguous views; they are copied where the compiled code
needs contiguous rows.

    softmax_forward(x) -> y          softmax_backward(y, dy) -> dx
    log_softmax_forward(x) -> y      log_softmax_backward(y, dy) -> dx
    erf(x) -> y                      (elementwise, any shape)
    gelu_forward(x, approximate) -> y        gelu_backward(x, dy, approximate) -> dx
    layer_norm_forward(x, weight, bias, eps) -> (y, mean, rstd)
    layer_norm_backward(x, dy, mean, rstd, weight) -> (dx, dweight, dbias)
    attention_forward(q, k, v, mask, scale, is_causal, dropout_p, generator) -> (out, cache)
    attention_backward(dout, cache) -> (dq, dk, dv, dscores)

GELU's backward takes the forward's *input*; LayerNorm's mean and rstd have shape (...).
The attention pair is the one `tinyllm.autograd.ops.attention` documents; its cache is
opaque (each backend's backward reads only its own forward's cache).

The backward kernels take the forward's *output* ``y`` (what autograd saves), not ``x``.

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
"""

import functools
import importlib
import os
from types import SimpleNamespace

import numpy as np

from . import reference

__all__ = [
    "KERNELS",
    "available_backends",
    "backend",
    "backend_reason",
    "attention_backward",
    "attention_forward",
    "erf",
    "gelu_backward",
    "gelu_forward",
    "get_backend",
    "layer_norm_backward",
    "layer_norm_forward",
    "log_softmax_backward",
    "log_softmax_forward",
    "reference",
    "softmax_backward",
    "softmax_forward",
]

KERNELS = ("softmax_forward", "softmax_backward", "log_softmax_forward", "log_softmax_backward",
           "erf", "gelu_forward", "gelu_backward", "layer_norm_forward", "layer_norm_backward",
           "attention_forward", "attention_backward")
_ENV = "TINYLLM_KERNELS"
_CHOICES = ("auto", "numpy", "cython")
_REBUILD = ("to build them, install a C compiler and reinstall tinyllm without pip's wheel "
            "cache: pip install --no-cache-dir --force-reinstall tinyllm (from a checkout: "
            "pip install -e .)")


def _rows(x: np.ndarray) -> np.ndarray:
    """View (or copy) ``x`` (..., C) as C-contiguous rows (N, C), the compiled kernels' input."""
    return np.ascontiguousarray(x).reshape(-1, x.shape[-1])


def _compiled_unary(name, fn):
    """Wrap a compiled (N, C) -> (N, C) kernel to accept any (..., C) array like its twin."""
    @functools.wraps(getattr(reference, name))
    def kernel(x):
        x = reference.check_input(x, name)
        if x.size == 0:  # nothing to compute, and reshape(-1, 0) is ambiguous
            return np.empty(x.shape, x.dtype)
        return fn(_rows(x)).reshape(x.shape)

    kernel.__module__ = __name__
    return kernel


def _compiled_binary(name, fn):
    """Wrap a compiled (y, dy) -> dx kernel on (N, C) rows to accept any (..., C) arrays."""
    @functools.wraps(getattr(reference, name))
    def kernel(y, dy):
        y, dy = reference.check_pair(y, dy, name)
        if y.size == 0:
            return np.empty(y.shape, y.dtype)
        return fn(_rows(y), _rows(dy)).reshape(y.shape)

    kernel.__module__ = __name__
    return kernel


def _compiled_gelu(fused):
    """GELU kernels on any shape (the compiled ones take flat contiguous arrays)."""
    @functools.wraps(reference.gelu_forward)
    def gelu_forward(x, approximate="tanh"):
        x = reference.check_input(x, "gelu_forward")
        tanh = reference._gelu_form(approximate, "gelu_forward")
        return fused.gelu_forward(np.ascontiguousarray(x).reshape(-1), tanh).reshape(x.shape)

    @functools.wraps(reference.gelu_backward)
    def gelu_backward(x, dy, approximate="tanh"):
        x, dy = reference.check_pair(x, dy, "gelu_backward")
        tanh = reference._gelu_form(approximate, "gelu_backward")
        return fused.gelu_backward(np.ascontiguousarray(x).reshape(-1),
                                   np.ascontiguousarray(dy).reshape(-1), tanh).reshape(x.shape)

    gelu_forward.__module__ = gelu_backward.__module__ = __name__
    return gelu_forward, gelu_backward


def _compiled_layer_norm(fused):
    """LayerNorm kernels on (..., D) arrays (the compiled ones take (N, D) rows)."""
    def _param(p, x):
        return None if p is None else np.ascontiguousarray(p, dtype=x.dtype).reshape(-1)

    @functools.wraps(reference.layer_norm_forward)
    def layer_norm_forward(x, weight, bias, eps):
        x = reference.check_input(x, "layer_norm_forward")
        y, mean, rstd = fused.layer_norm_forward(_rows(x), _param(weight, x), _param(bias, x),
                                                 float(eps))
        return y.reshape(x.shape), mean.reshape(x.shape[:-1]), rstd.reshape(x.shape[:-1])

    @functools.wraps(reference.layer_norm_backward)
    def layer_norm_backward(x, dy, mean, rstd, weight):
        x, dy = reference.check_pair(x, dy, "layer_norm_backward")
        dx, dweight, dbias = fused.layer_norm_backward(
            _rows(x), _rows(dy), np.ascontiguousarray(mean, x.dtype).reshape(-1),
            np.ascontiguousarray(rstd, x.dtype).reshape(-1), _param(weight, x))
        return dx.reshape(x.shape), dweight, dbias

    layer_norm_forward.__module__ = layer_norm_backward.__module__ = __name__
    return layer_norm_forward, layer_norm_backward


def _optional_module(stem: str, missing: list[str]):
    """Import tinyllm.kernels._<stem>, or note why not in `missing` and return None.

    The core modules (softmax, erf) decide whether the compiled backend exists at all; the
    others only replace their own kernels, so a stale build without one of them still runs
    the rest compiled (its kernels use the NumPy twins, and backend_reason() says so).
    """
    try:
        return importlib.import_module(f"{__name__}._{stem}")
    except (ImportError, ValueError) as exc:
        missing.append(f"_{stem} ({type(exc).__name__}: {exc})")
        return None


def _numpy_backend() -> SimpleNamespace:
    return SimpleNamespace(name="numpy", **{k: getattr(reference, k) for k in KERNELS})


def _import_compiled() -> tuple[SimpleNamespace | None, str]:
    """Import the compiled kernels; return (namespace or None, the reason in words)."""
    try:
        # import_module, not `from . import`: inside the package's own __init__ a missing
        # file would be reported as a (nonexistent) circular import.
        _softmax = importlib.import_module(f"{__name__}._softmax")
        _special = importlib.import_module(f"{__name__}._special")
    except (ImportError, ValueError) as exc:
        # ValueError: a module compiled against a newer NumPy than the one running
        # ("numpy.dtype size changed, may indicate binary incompatibility").
        return None, f"compiled kernels unavailable ({type(exc).__name__}: {exc})"
    namespace = SimpleNamespace(
        name="cython",
        softmax_forward=_compiled_unary("softmax_forward", _softmax.softmax_forward),
        softmax_backward=_compiled_binary("softmax_backward", _softmax.softmax_backward),
        log_softmax_forward=_compiled_unary("log_softmax_forward", _softmax.log_softmax_forward),
        log_softmax_backward=_compiled_binary("log_softmax_backward",
                                              _softmax.log_softmax_backward),
        erf=_special.erf,
    )
    missing: list[str] = []
    _fused = _optional_module("fused", missing)
    if _fused is not None:
        namespace.gelu_forward, namespace.gelu_backward = _compiled_gelu(_fused)
        namespace.layer_norm_forward, namespace.layer_norm_backward = _compiled_layer_norm(_fused)
    _attention = _optional_module("attention", missing)
    if _attention is not None:
        namespace.attention_forward = _attention.attention_forward
        namespace.attention_backward = _attention.attention_backward
    for name in KERNELS:  # whatever did not import runs on its twin
        if not hasattr(namespace, name):
            setattr(namespace, name, getattr(reference, name))
    reason = f"compiled kernels imported from {os.path.dirname(_softmax.__file__)}"
    if missing:
        reason += f"; NumPy twins for the kernels of {', '.join(missing)}"
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

softmax_forward = _ACTIVE.softmax_forward
softmax_backward = _ACTIVE.softmax_backward
log_softmax_forward = _ACTIVE.log_softmax_forward
log_softmax_backward = _ACTIVE.log_softmax_backward
erf = _ACTIVE.erf
gelu_forward = _ACTIVE.gelu_forward
gelu_backward = _ACTIVE.gelu_backward
layer_norm_forward = _ACTIVE.layer_norm_forward
layer_norm_backward = _ACTIVE.layer_norm_backward
attention_forward = _ACTIVE.attention_forward
attention_backward = _ACTIVE.attention_backward
