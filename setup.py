"""Build script: compiles every ext/*.pyx into tinyllm.kernels._<name>, optionally.

The compiled kernels are an accelerator, never a requirement: where no C compiler works,
``pip install .`` still succeeds and tinyllm runs on the NumPy twins in
``tinyllm/kernels/reference.py``. Set ``TINYLLM_REQUIRE_EXT=1`` (CI does) to turn a failed
build into an error instead of a warning.
"""

import os
import shutil
import subprocess
import sys
import sysconfig
import tempfile
from pathlib import Path

from setuptools import setup
from setuptools.command.build_ext import build_ext

HERE = Path(__file__).parent
REQUIRE_EXT = os.environ.get("TINYLLM_REQUIRE_EXT", "") not in ("", "0")


def _compiler_accepts(flag: str) -> bool:
    """True when the C compiler builds a trivial OpenMP-using file with ``flag``."""
    cc = os.environ.get("CC") or sysconfig.get_config_var("CC") or "cc"
    cc = cc.split()[0]
    if shutil.which(cc) is None:
        return False
    src = "#include <omp.h>\nint main(void){return omp_get_max_threads() > 0 ? 0 : 1;}\n"
    with tempfile.TemporaryDirectory() as tmp:
        c_file = Path(tmp) / "probe.c"
        c_file.write_text(src)
        cmd = [cc, flag, str(c_file), "-o", str(Path(tmp) / "probe")]
        try:
            return subprocess.run(cmd, capture_output=True, timeout=60).returncode == 0
        except (OSError, subprocess.SubprocessError):
            return False


#: Flags for one module only (GCC/Clang). ext/optim.pyx must round as NumPy does: no fused
#: multiply-adds; and its sqrt, never of a negative, need not set errno (so it vectorizes).
EXTRA_FLAGS = {"optim": ["-ffp-contract=off", "-fno-math-errno"]}


def _extensions():
    try:
        import numpy as np
        from Cython.Build import cythonize
        from setuptools import Extension
    except ImportError as exc:  # build requirements missing: pure-NumPy install
        print(f"tinyllm: not building kernels ({exc}); using the NumPy reference.")
        return []
    openmp = _compiler_accepts("-fopenmp")
    compile_args = ["-O3", "-fopenmp-simd"] + (["-fopenmp"] if openmp else [])
    link_args = ["-fopenmp"] if openmp else []
    extra = EXTRA_FLAGS
    if sys.platform == "win32":  # MSVC speaks another flag dialect (and fuses no multiply-adds)
        compile_args, link_args = ["/O2"] + (["/openmp"] if openmp else []), []
        extra = {}
    exts = [
        Extension(
            f"tinyllm.kernels._{pyx.stem}",
            [str(pyx.relative_to(HERE))],
            include_dirs=[np.get_include(), "ext"],  # ext/*.h: C helpers
            extra_compile_args=compile_args + extra.get(pyx.stem, []),
            extra_link_args=link_args,
            define_macros=[("NPY_NO_DEPRECATED_API", "NPY_1_7_API_VERSION")],
        )
        for pyx in sorted((HERE / "ext").glob("*.pyx"))
    ]
    compiled = cythonize(exts, language_level=3, compiler_directives={
        "boundscheck": False, "wraparound": False, "cdivision": True, "initializedcheck": False,
    })
    for ext in compiled:  # cythonize() resets `optional`; the build_ext below handles failures
        ext.optional = not REQUIRE_EXT
    return compiled


class OptionalBuildExt(build_ext):
    """Build the kernels if possible; otherwise warn and fall back to NumPy."""

    def run(self):
        try:
            super().run()
        except Exception as exc:  # noqa: BLE001 - any compiler failure means "no kernels"
            self._give_up(exc, self.extensions)

    def build_extension(self, ext):
        try:
            super().build_extension(ext)
        except Exception as exc:  # noqa: BLE001
            self._give_up(exc, [ext])

    def _give_up(self, exc, failed):
        if REQUIRE_EXT:
            raise
        # A module left by an earlier build (build/lib*, or in place) would be packaged as if
        # it were this build's: remove it, so the fallback really is the NumPy one.
        for ext in failed:
            stale = Path(self.get_ext_fullpath(ext.name))
            if stale.exists():
                stale.unlink()
                print(f"tinyllm: removed {stale}, left by an earlier build")
        print(f"tinyllm: could not build the Cython kernels ({exc}); "
              "tinyllm will run on the NumPy reference kernels.")


setup(ext_modules=_extensions(), cmdclass={"build_ext": OptionalBuildExt})
