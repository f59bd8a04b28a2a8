"""Sphinx configuration of the tinyllm course site.

Build it from the repository root (warnings are errors)::

    pip install -e ".[docs]"
    sphinx-build -W --keep-going -b html docs docs/_build/html

Why Sphinx + MyST-NB and not Jupyter Book: Jupyter Book 2 is a different toolchain (the
Node-based MyST engine, `mystmd`) with its own configuration and no Sphinx autodoc, and Jupyter
Book 1 only generates a Sphinx configuration around MyST-NB. MyST-NB is a plain Sphinx
extension: one `sphinx-build` command executes the notebooks and renders them, the README, the
study plots and the API reference from the docstrings (autodoc), with Sphinx's
warnings-as-errors check over all of it.
"""

from __future__ import annotations

import importlib
import inspect
import os
import shutil
from pathlib import Path

from docutils import nodes
from docutils.statemachine import StringList
from sphinx.util.docutils import SphinxDirective

import tinyllm

DOCS = Path(__file__).resolve().parent
ROOT = DOCS.parent

# ----------------------------------------------------------------------------- the project
project = "tinyllm"
author = "the tinyllm authors"
copyright = "the tinyllm authors, MIT License"
release = version = tinyllm.__version__

# sphinx-mathjax-offline ships MathJax 3 into the site (_static/mathjax): the equations render
# without a network -- a classroom, a train, a site opened from disk.
extensions = ["myst_nb", "sphinx.ext.autodoc", "sphinx.ext.mathjax", "sphinx.ext.viewcode",
              "sphinx-mathjax-offline"]

# docs/README.md says how to build the site; it is not a page of it. docs/images/ holds the
# README's figures; the README included by index.md finds them there (:relative-images:).
exclude_patterns = ["_build", "README.md", "jupyter_execute", "**.ipynb_checkpoints"]

# ----------------------------------------------------------------------------- notebooks
# The notebooks live in notebooks/, outside this source folder: every build mirrors them (and
# the README.md of a notebook folder, such as notebooks/exercises/README.md) into
# docs/notebooks/, which git ignores. New notebooks are picked up by the next build, and the
# README's links to `notebooks/NN_name.ipynb` resolve to their pages.
NOTEBOOKS_SRC = ROOT / "notebooks"
NOTEBOOKS_DST = DOCS / "notebooks"
MIRRORED = ("*.ipynb", "README.md")


def sync_notebooks(src: Path = NOTEBOOKS_SRC, dst: Path = NOTEBOOKS_DST) -> list[Path]:
    """Mirror the MIRRORED files of src/ into dst/: copy new or changed ones, delete those
    gone; the relative paths mirrored."""
    def found(root: Path) -> dict[Path, Path]:
        return {p.relative_to(root): p for pattern in MIRRORED for p in root.rglob(pattern)
                if ".ipynb_checkpoints" not in p.parts} if root.is_dir() else {}

    wanted = found(src)
    for rel, path in wanted.items():
        target = dst / rel
        if not target.is_file() or target.read_bytes() != path.read_bytes():
            target.parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(path, target)  # keeps the mtime: Sphinx rereads only what changed
    for rel, target in found(dst).items():
        if rel not in wanted:
            target.unlink()
    return sorted(wanted)


sync_notebooks()

# The kernels that execute the notebooks inherit this environment. TINYLLM_FAST=1 is the
# notebooks' fast mode (fewer steps), as the test suite runs them; TINYLLM_FAST=0 builds the
# full versions. The matplotlib backend is the inline one on purpose: like Agg it needs no
# display, but a kernel started with MPLBACKEND=Agg emits no figures at all and the pages
# would have none, so an inherited MPLBACKEND is replaced.
os.environ.setdefault("TINYLLM_FAST", "1")
os.environ["MPLBACKEND"] = "module://matplotlib_inline.backend_inline"

nb_execution_mode = "force"          # every page is the output of this checkout's code
nb_execution_in_temp = True          # run in a temporary folder: nothing is written to the repo
nb_execution_raise_on_error = True   # a failing cell fails the build
nb_execution_show_tb = True          # ...and the log shows its traceback
nb_execution_timeout = 600           # seconds per cell (nbclient's limit is per cell)
# The exercise notebooks are the students' worksheets: their blanks raise "not yet
# implemented", so an executed copy would show only that (or stop the build). They are shown
# as handed out, unexecuted.
nb_execution_excludepatterns = ["notebooks/exercises/*"]
nb_merge_streams = True

# ----------------------------------------------------------------------------- Markdown
myst_enable_extensions = ["dollarmath", "amsmath", "colon_fence", "deflist"]
myst_heading_anchors = 3

# ----------------------------------------------------------------------------- API reference
autodoc_member_order = "bysource"   # a package's order is its __all__
autodoc_preserve_defaults = True
# Docstrings write names in Markdown-style `backticks`: show them as code.
default_role = "literal"

# ----------------------------------------------------------------------------- HTML
html_theme = "furo"
html_title = f"tinyllm {release}"


# ----------------------------------------------------------------------------- hooks
NOTEBOOK_TOCTREES_MARKER = "% the notebooks' tables of contents (conf.py writes them)"


def notebook_toctrees() -> str:
    """A toctree per notebook folder that holds notebooks: its README first, then the rest.

    Written at build time because a toctree glob that matches nothing (no exercises yet) is a
    warning that Sphinx cannot suppress (it carries no warning type).
    """
    out = []
    for folder, caption in ((NOTEBOOKS_DST, "Notebooks"),
                            (NOTEBOOKS_DST / "exercises", "Exercises")):
        if not any(folder.glob("*.ipynb")):
            continue
        docname = folder.relative_to(DOCS).as_posix()
        readme = [f"{docname}/README"] if (folder / "README.md").is_file() else []
        entries = "\n".join([*readme, f"{docname}/*"])
        out.append(f"```{{toctree}}\n:hidden:\n:glob:\n:caption: {caption}\n\n{entries}\n```\n")
    return "\n".join(out)


def add_notebook_toctrees(app, docname: str, source: list[str]) -> None:
    """source-read: write the notebooks' toctrees into the home page at its marker."""
    if docname == "index":
        source[0] = source[0].replace(NOTEBOOK_TOCTREES_MARKER, notebook_toctrees())


class ExportedData(SphinxDirective):
    """`.. exported-data:: PACKAGE` (in an eval-rst block): autodata for each constant that
    PACKAGE.__all__ exports.

    automodule documents a module's data only when its own source carries a `#:` comment, so
    re-exported constants (tinyllm.float32, tinyllm.models.PRESETS, ...) would be missing.
    """

    required_arguments = 1
    MAX_VALUE_CHARS = 80   # longer values (the presets tables) are left to their docs

    def run(self):
        package = self.arguments[0]
        module = importlib.import_module(package)
        lines = []
        for name in getattr(module, "__all__", ()):
            obj = getattr(module, name)
            if inspect.ismodule(obj) or inspect.isclass(obj) or inspect.isroutine(obj):
                continue
            lines.append(f".. autodata:: {package}.{name}")
            if len(repr(obj)) > self.MAX_VALUE_CHARS:
                lines.append("   :no-value:")
            lines.append("")
        parent = nodes.Element()
        self.state.nested_parse(StringList(lines, source=f"<exported-data {package}>"),
                                self.content_offset, parent)
        return parent.children


def drop_type_docstrings(app, what, name, obj, options, lines: list[str]) -> None:
    """autodoc-process-docstring: a constant has no docstring of its own, so autodoc shows its
    type's (str's, dict's, numpy's dtype's); drop those, keep tinyllm's own types' ones."""
    kind = type(obj)
    if (what == "data" and not kind.__module__.startswith("tinyllm")
            and " ".join(lines).split() == (inspect.getdoc(kind) or "").split()):
        lines.clear()


def setup(app):
    app.connect("source-read", add_notebook_toctrees)
    app.connect("autodoc-process-docstring", drop_type_docstrings)
    app.add_directive("exported-data", ExportedData)
