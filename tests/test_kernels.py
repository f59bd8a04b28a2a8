"""Every kernel in tinyllm.kernels, on every available backend, against its NumPy twin.

Shapes: ``(..., C)``; the kernels normalise over the last axis ``C``. ``N`` counts rows.

Tolerances (``assert_close``), relative to the NumPy twin in the same dtype:
  float32: rtol 1e-5, atol 1e-6 x the largest |expected| (at least 1).
  float64: rtol 1e-12, atol 1e-13 x the largest |expected|.
The compiled exp is a polynomial within 2 ulp of exp (tested on its own below), and sums
run in a different order than NumPy's, so results agree to rounding, not bit for bit.
The atol is scaled because log-softmax outputs and gradients grow with |x| and C, while
entries near zero (the row max's log-probability) carry only absolute accuracy.

An all -inf row (every position masked) gives NaN, as in torch.softmax; tested below.
"""

import os
import re
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from tinyllm import kernels
from tinyllm.kernels import reference

BACKENDS = kernels.available_backends()
DTYPES = [np.float32, np.float64]
FORWARD = ["softmax_forward", "log_softmax_forward"]
PAIRS = [("softmax_forward", "softmax_backward"), ("log_softmax_forward", "log_softmax_backward")]
SHAPES = [
    (7,),  # 1-D: a single row
    (1, 1),
    (1, 7),  # one row, odd width
    (3, 33),
    (5, 1000),
    (2, 3, 33),  # 3-D: softmax over the last axis only
    (300, 257),  # many rows: split over threads in test_threaded_rows_match_reference
]
RTOL = {np.float32: 1e-5, np.float64: 1e-12}
ATOL = {np.float32: 1e-6, np.float64: 1e-13}
REPO = Path(kernels.__file__).resolve().parents[2]


def assert_close(actual, expected, dtype):
    finite = np.abs(expected[np.isfinite(expected)])
    scale = max(1.0, float(finite.max())) if finite.size else 1.0
    np.testing.assert_allclose(actual, expected, rtol=RTOL[dtype], atol=ATOL[dtype] * scale)


def randn(shape, dtype, seed=0, scale=1.0):
    return (np.random.default_rng(seed).standard_normal(shape) * scale).astype(dtype)


@pytest.fixture(params=BACKENDS)
def k(request):
    """The kernel namespace of one backend."""
    return kernels.get_backend(request.param)


# ---------------------------------------------------------------- against the twin


@pytest.mark.parametrize("shape", SHAPES)
@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("name", FORWARD)
def test_forward_matches_reference(k, name, dtype, shape):
    x = randn(shape, dtype, scale=3.0)
    y = getattr(k, name)(x)
    assert y.shape == x.shape and y.dtype == x.dtype
    assert_close(y, getattr(reference, name)(x), dtype)


@pytest.mark.parametrize("shape", SHAPES)
@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("forward,backward", PAIRS)
def test_backward_matches_reference(k, forward, backward, dtype, shape):
    y = getattr(reference, forward)(randn(shape, dtype, scale=3.0))
    dy = randn(shape, dtype, seed=1)
    dx = getattr(k, backward)(y, dy)
    assert dx.shape == y.shape and dx.dtype == y.dtype
    assert_close(dx, getattr(reference, backward)(y, dy), dtype)


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("forward,backward", PAIRS)
def test_threaded_rows_match_reference(forward, backward, dtype):
    """The compiled kernels' multi-threaded path (forced with a zero threshold)."""
    if "cython" not in BACKENDS:
        pytest.skip(kernels.compiled_reason())
    from tinyllm.kernels import _softmax

    k = kernels.get_backend("cython")
    x, dy = randn((300, 257), dtype, scale=3.0), randn((300, 257), dtype, seed=1)
    old = _softmax.set_parallel_threshold(0)
    try:
        y = getattr(k, forward)(x)
        dx = getattr(k, backward)(y, dy)
    finally:
        _softmax.set_parallel_threshold(old)
    assert_close(y, getattr(reference, forward)(x), dtype)
    assert_close(dx, getattr(reference, backward)(y, dy), dtype)


@pytest.mark.parametrize("dtype", DTYPES)
def test_softmax_rows_sum_to_one(k, dtype):
    y = k.softmax_forward(randn((64, 1000), dtype, scale=10.0))
    assert_close(y.sum(-1), np.ones(64, dtype), dtype)
    assert_close(
        np.exp(k.log_softmax_forward(randn((64, 1000), dtype))).sum(-1), np.ones(64, dtype), dtype
    )


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("forward,backward", PAIRS)
def test_large_magnitude_inputs(k, forward, backward, dtype):
    # +-1000 overflows a naive exp(x); the row max subtraction must keep everything finite.
    x = np.random.default_rng(2).uniform(-1000, 1000, size=(16, 33)).astype(dtype)
    x[0] = 1000.0  # a row of ties at the top of the range
    y = getattr(k, forward)(x)
    assert np.isfinite(y).all()
    assert_close(y, getattr(reference, forward)(x), dtype)
    dy = randn(x.shape, dtype, seed=3)
    assert_close(getattr(k, backward)(y, dy), getattr(reference, backward)(y, dy), dtype)


# ---------------------------------------------------------------- masks (-inf)


@pytest.mark.parametrize("dtype", DTYPES)
def test_masked_positions_get_zero_probability(k, dtype):
    x = randn((4, 33), dtype)
    mask = np.random.default_rng(4).random(x.shape) < 0.3
    mask[:, 0] = False  # keep one live position per row
    x[mask] = -np.inf
    dy = randn(x.shape, dtype, seed=5)

    p = k.softmax_forward(x)
    assert (p[mask] == 0).all()
    assert_close(p, reference.softmax_forward(x), dtype)
    assert (k.softmax_backward(p, dy)[mask] == 0).all()

    logp = k.log_softmax_forward(x)
    assert np.isneginf(logp[mask]).all() and np.isfinite(logp[~mask]).all()
    assert_close(logp, reference.log_softmax_forward(x), dtype)
    # exp(-inf) = 0: a masked position passes dy straight through.
    dx = k.log_softmax_backward(logp, dy)
    np.testing.assert_array_equal(dx[mask], dy[mask])
    assert_close(dx, reference.log_softmax_backward(logp, dy), dtype)


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("name", FORWARD)
def test_fully_masked_row_is_nan(k, name, dtype):
    """Documented choice, as torch: an all -inf row has no softmax and comes out NaN."""
    x = randn((3, 9), dtype)
    x[1] = -np.inf
    y = getattr(k, name)(x)
    assert np.isnan(y[1]).all()
    assert_close(y[[0, 2]], getattr(reference, name)(x[[0, 2]]), dtype)


# ---------------------------------------------------------------- layouts and edge cases


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("forward,backward", PAIRS)
def test_non_contiguous_inputs(k, forward, backward, dtype):
    base = randn((12, 40, 6), dtype)
    views = [base[:, ::2, 0], base[:, 0, :].T, base.transpose(2, 0, 1), base[::-1, ::3, ::2]]
    for x in views:
        assert not x.flags.c_contiguous
        before = x.copy()
        y = getattr(k, forward)(x)
        assert_close(y, getattr(reference, forward)(np.ascontiguousarray(x)), dtype)
        np.testing.assert_array_equal(x, before)  # inputs are never written
        dy = np.asfortranarray(randn(x.shape, dtype, seed=6))
        assert_close(
            getattr(k, backward)(y, dy),
            getattr(reference, backward)(y, np.ascontiguousarray(dy)),
            dtype,
        )


def test_read_only_input(k):
    x = randn((4, 16), np.float32)
    x.setflags(write=False)
    y = k.softmax_forward(x)
    y.setflags(write=False)
    assert k.softmax_backward(y, x).shape == x.shape


@pytest.mark.parametrize("shape", [(0, 5), (5, 0), (2, 0, 3)])
def test_empty_arrays(k, shape):
    x = np.empty(shape, np.float32)
    for forward, backward in PAIRS:
        y = getattr(k, forward)(x)
        assert y.shape == shape and y.dtype == np.float32
        assert getattr(k, backward)(y, x).shape == shape


def test_gradient_dtype_follows_output(k):
    y = reference.softmax_forward(randn((2, 5), np.float32))
    dx = k.softmax_backward(y, randn((2, 5), np.float64))
    assert dx.dtype == np.float32


def test_rejects_bad_inputs(k):
    with pytest.raises(TypeError, match="float32 or float64"):
        k.softmax_forward(np.zeros((2, 3), np.int64))
    with pytest.raises(TypeError, match="float16"):
        k.log_softmax_forward(np.zeros((2, 3), np.float16))
    with pytest.raises(ValueError, match="at least 1 dimension"):
        k.softmax_forward(np.float32(1.0))
    with pytest.raises(ValueError, match="same shape"):
        k.softmax_backward(np.zeros((2, 3)), np.zeros((3, 2)))


EXP_RANGE = {np.float32: (-87.3, 88.3), np.float64: (-708.3, 709.0)}   # normal results
EPS = {np.float32: 2.0**-23, np.float64: 2.0**-52}                      # 1 ulp, relative


@pytest.mark.parametrize("dtype", DTYPES)
def test_exp_accuracy_through_log_softmax_backward(k, dtype):
    """The kernel's exp, alone: with rows y = [t, 0] and dy = [0, -1], dx[:, 0] = exp(t)."""
    t = np.concatenate([np.linspace(*EXP_RANGE[dtype], 400_001), [-1e-3, 0.0, 1e-3]])
    y = np.stack([t, np.zeros_like(t)], axis=1).astype(dtype)        # (N, 2)
    dy = np.zeros_like(y)
    dy[:, 1] = -1.0
    got = k.log_softmax_backward(y, dy)[:, 0]
    exact = np.exp(y[:, 0].astype(np.longdouble))
    # The compiled polynomials measure 0.7 ulp. NumPy's float32 exp (the twin) measured
    # 1.7 ulp on an AVX2 machine and its SIMD paths differ by CPU, so it gets 4.
    ulps = 2 if k.name == "cython" else 4
    assert np.max(np.abs(got - exact) / exact) < ulps * EPS[dtype]
    # Far below the normal range, and at -inf, exp is exactly 0 (no NaN from inf - inf).
    tiny = np.array([[-800.0, 0.0], [-1e4, 0.0], [-np.inf, 0.0]], dtype)
    np.testing.assert_array_equal(k.log_softmax_backward(tiny, dy[:3])[:, 0], 0.0)


# ---------------------------------------------------------------- parity with PyTorch


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("forward,backward", PAIRS)
def test_matches_torch(k, forward, backward, dtype):
    torch = pytest.importorskip("torch")
    x = randn((6, 5, 33), dtype, seed=7, scale=4.0)
    x[0, 0, 1:5] = -np.inf  # masked positions, as in attention
    dy = randn(x.shape, dtype, seed=8)
    tx = torch.tensor(x, requires_grad=True)
    torch_fn = torch.softmax if forward == "softmax_forward" else torch.log_softmax
    ty = torch_fn(tx, dim=-1)
    ty.backward(torch.tensor(dy))

    y = getattr(k, forward)(x)
    assert_close(y, ty.detach().numpy(), dtype)
    assert_close(getattr(k, backward)(y, dy), tx.grad.numpy(), dtype)


# ---------------------------------------------------------------- backend selection


def run_python(code, **env):
    """Run `code` in a fresh interpreter that imports this checkout's tinyllm."""
    full_env = {**os.environ, **env}
    full_env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(REPO), full_env.get("PYTHONPATH")]))
    return subprocess.run(
        [sys.executable, "-c", code], env=full_env, capture_output=True, text=True, timeout=120
    )


def test_env_numpy_forces_the_reference():
    result = run_python(
        "import sys, tinyllm.kernels as k\n"
        "print(k.backend(), 'tinyllm.kernels._softmax' in sys.modules)\n"
        "print(k.backend_reason())\n"
        "print(k.softmax_forward is k.reference.softmax_forward)",
        TINYLLM_KERNELS="numpy",
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.split("\n")[:3] == ["numpy False", "TINYLLM_KERNELS=numpy set", "True"]


def test_env_cython_requires_compiled_kernels():
    result = run_python("import tinyllm.kernels as k; print(k.backend())", TINYLLM_KERNELS="cython")
    if "cython" in BACKENDS:
        assert result.returncode == 0, result.stderr
        assert result.stdout.strip() == "cython"
    else:
        assert "ImportError" in result.stderr and "TINYLLM_KERNELS=cython" in result.stderr


def test_env_rejects_unknown_backend():
    result = run_python("import tinyllm.kernels", TINYLLM_KERNELS="fortran")
    assert result.returncode != 0
    assert "TINYLLM_KERNELS='fortran'" in result.stderr and "accepted" in result.stderr


@pytest.mark.parametrize("error", ["ImportError", "ValueError"])
def test_falls_back_when_compiled_module_fails(error):
    """A missing .so (ImportError) or one built for a newer NumPy (ValueError) -> NumPy twin."""
    result = run_python(
        "import importlib.abc, sys\n"
        "class Broken(importlib.abc.MetaPathFinder):\n"
        "    def find_spec(self, name, path=None, target=None):\n"
        "        if name == 'tinyllm.kernels._softmax':\n"
        f"            raise {error}('simulated: numpy.dtype size changed')\n"
        "sys.meta_path.insert(0, Broken())\n"
        "import numpy as np, tinyllm.kernels as k\n"
        "print(k.backend(), k.available_backends())\n"
        "print(k.backend_reason())\n"
        "print(k.softmax_forward(np.zeros(2)))",
        TINYLLM_KERNELS="auto",
    )
    assert result.returncode == 0, result.stderr
    lines = result.stdout.split("\n")
    assert lines[0] == "numpy ['numpy']"
    assert f"{error}: simulated" in lines[1] and "pip install" in lines[1]
    assert lines[2] == "[0.5 0.5]"


def test_active_backend_reports_itself():
    assert kernels.backend() in BACKENDS
    assert kernels.backend_reason()
    if kernels.backend() == "cython":
        assert kernels.softmax_forward is kernels.get_backend("cython").softmax_forward
    with pytest.raises(ValueError, match="accepted"):
        kernels.get_backend("fortran")


# ---------------------------------------------------------------- the kernel table

API = {"KERNELS", "KERNEL_TABLE", "Kernel", "available_backends", "backend", "backend_reason",
       "compiled_reason", "get_backend", "reference"}
TABLE_NAMES = [row.name for row in kernels.KERNEL_TABLE]
COMPILED_MODULES = sorted({row.module for row in kernels.KERNEL_TABLE})


def test_names_and_exports_come_from_the_table():
    assert kernels.KERNELS == tuple(TABLE_NAMES)
    assert len(set(TABLE_NAMES)) == len(TABLE_NAMES)
    assert set(kernels.__all__) == API | set(TABLE_NAMES)
    assert set(TABLE_NAMES) <= set(reference.__all__)  # every kernel has its twin


@pytest.mark.parametrize("name", TABLE_NAMES)
def test_every_table_row_is_dispatched_on_every_backend(name):
    for backend in BACKENDS:
        kernel = getattr(kernels.get_backend(backend), name)
        assert callable(kernel) and kernel.__name__ == name
    assert getattr(kernels, name) is getattr(kernels.get_backend(kernels.backend()), name)
    assert getattr(kernels.get_backend("numpy"), name) is getattr(reference, name)


@pytest.mark.parametrize("stem", COMPILED_MODULES)
def test_each_compiled_module_has_the_thread_controls(stem):
    if "cython" not in BACKENDS:
        pytest.skip(kernels.compiled_reason())
    import importlib

    module = importlib.import_module(f"tinyllm.kernels._{stem}")
    assert module.num_threads() >= 1
    old = module.set_parallel_threshold(0)
    assert module.set_parallel_threshold(old) == 0


@pytest.mark.parametrize("stem", [m for m in COMPILED_MODULES if m not in kernels._CORE_MODULES])
def test_backend_reason_names_the_table_rows_left_on_twins(stem):
    """A compiled module that fails to import leaves exactly its table rows on their twins."""
    if "cython" not in BACKENDS:
        pytest.skip(kernels.compiled_reason())
    result = run_python(
        "import importlib.abc, sys\n"
        "class Broken(importlib.abc.MetaPathFinder):\n"
        "    def find_spec(self, name, path=None, target=None):\n"
        f"        if name == 'tinyllm.kernels._{stem}':\n"
        "            raise ImportError('simulated')\n"
        "sys.meta_path.insert(0, Broken())\n"
        "import tinyllm.kernels as k\n"
        "print(k.backend_reason())\n"
        "print(' '.join(n for n in k.KERNELS if getattr(k, n) is getattr(k.reference, n)))",
        TINYLLM_KERNELS="cython",
    )
    assert result.returncode == 0, result.stderr
    reason, twins = result.stdout.split("\n")[:2]
    assert f"NumPy twins for the kernels of _{stem} (ImportError: simulated)" in reason
    assert twins.split() == [r.name for r in kernels.KERNEL_TABLE if r.module == stem]


def test_compiled_sources_import_nothing_from_tinyllm():
    """ext/*.pyx are called by the package, never the other way round (kernels stay lowest)."""
    if not (REPO / "ext").is_dir():
        pytest.skip("no ext/ sources here (an installed wheel)")
    imports = re.compile(r"^\s*(from\s+tinyllm\b|c?import\s+tinyllm\b)", re.MULTILINE)
    sources = sorted((REPO / "ext").glob("*.pyx")) + sorted((REPO / "ext").glob("*.pxi"))
    assert sources
    assert [p.name for p in sources if imports.search(p.read_text())] == []


def test_compiled_modules_run_with_the_package_blocked():
    """Each compiled module imports and runs with every `import tinyllm...` made to fail."""
    if "cython" not in BACKENDS:
        pytest.skip(kernels.compiled_reason())
    import importlib

    files = {stem: importlib.import_module(f"tinyllm.kernels._{stem}").__file__
             for stem in COMPILED_MODULES}
    result = run_python(
        "import importlib.util, sys\n"
        "import numpy as np\n"
        "sys.modules['tinyllm'] = None  # any import of the package now raises ImportError\n"
        f"for stem, path in {files!r}.items():\n"
        "    spec = importlib.util.spec_from_file_location(f'_{stem}', path)\n"
        "    module = importlib.util.module_from_spec(spec)\n"
        "    spec.loader.exec_module(module)\n"
        "    globals()[stem] = module\n"
        "q = np.ones((1, 2, 3, 4))\n"
        "out, cache = attention.attention_forward(q, q, q, None, None, True)\n"
        "attention.attention_backward(q, cache)\n"
        "softmax.softmax_forward(np.zeros((2, 3)))\n"
        "print('ok')",
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.startswith("ok")


@pytest.mark.skipif(
    os.environ.get("TINYLLM_REQUIRE_EXT", "") in ("", "0"),
    reason="only where the build must produce the compiled kernels (CI)",
)
def test_compiled_backend_is_active_when_required():
    assert kernels.backend() == "cython", kernels.backend_reason()
