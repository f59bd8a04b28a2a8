"""The course site (docs/): a page per notebook, with its figures and no error output, and an
API reference that names the public API.

Which site: $TINYLLM_SITE, the folder of a built site, as .ci/run sets it after

    sphinx-build -W --keep-going -b html docs docs/_build/html

Without it they skip (a plain `pytest` run does not build the site); TINYLLM_SITE=build makes
them build it into a temporary folder first (slow: the build executes every notebook; needs
`pip install -e ".[docs]"`).
"""

from __future__ import annotations

import html
import importlib
import importlib.util
import inspect
import json
import os
import re
import subprocess
import sys
from html.parser import HTMLParser
from pathlib import Path
from urllib.parse import unquote, urlsplit

import pytest

ROOT = Path(__file__).resolve().parent.parent
NOTEBOOKS = sorted((ROOT / "notebooks").glob("*.ipynb"))
EXERCISES = sorted((ROOT / "notebooks" / "exercises").glob("*.ipynb"))
API_PACKAGES = ("tinyllm", "tinyllm.functional", "tinyllm.nn", "tinyllm.optim", "tinyllm.models",
                "tinyllm.tokenizers", "tinyllm.data")
SITE_ENV = "TINYLLM_SITE"

# Checking a built site is quick; building one executes every notebook.
pytestmark = [pytest.mark.slow] if os.environ.get(SITE_ENV) == "build" else []

# A figure in a notebook: a call through pyplot (plt.subplots(...), plt.show(), ...).
PYPLOT_CALL = re.compile(r"\b(?:plt|matplotlib\.pyplot)\.\w+\s*\(")
# What an executed cell's error looks like in a page, whatever the output's classes.
ERROR_TEXT = re.compile(r"Traceback \(most recent call last\)|\bename\b|\bevalue\b")


@pytest.fixture(scope="module")
def site(tmp_path_factory) -> Path:
    """The built site's html folder: $TINYLLM_SITE, or a fresh build."""
    given = os.environ.get(SITE_ENV)
    if not given:
        pytest.skip(f"the course site is checked where it is built: set {SITE_ENV} to a built "
                    f"site (docs/_build/html, as .ci/run does) or {SITE_ENV}=build to build it")
    if given != "build":
        path = Path(given)
        if not (path / "index.html").is_file():
            pytest.fail(f"{SITE_ENV}={given} holds no index.html; build the site first: "
                        "sphinx-build -W --keep-going -b html docs docs/_build/html")
        return path
    missing = [m for m in ("sphinx", "myst_nb", "furo") if importlib.util.find_spec(m) is None]
    if missing:
        pytest.skip(f"building the course site needs {', '.join(missing)} "
                    f"(pip install -e \".[docs]\"), or set {SITE_ENV} to a built site")
    out = tmp_path_factory.mktemp("site")
    proc = subprocess.run(
        [sys.executable, "-m", "sphinx", "-W", "--keep-going", "-b", "html",
         "-d", str(out / "doctrees"), str(ROOT / "docs"), str(out / "html")],
        capture_output=True, text=True, timeout=1800)
    assert proc.returncode == 0, \
        f"the site build failed:\n{proc.stdout[-4000:]}\n{proc.stderr[-4000:]}"
    return out / "html"


class Page(HTMLParser):
    """What the tests read from a page: its images (and whether each sits in a cell's output),
    the classes of cell outputs, the text inside them, and the ids of documented objects."""

    def __init__(self, path: Path):
        super().__init__(convert_charrefs=True)
        self.images: list[tuple[str, bool]] = []     # (src, inside a cell output)
        self.output_classes: list[set[str]] = []
        self.output_text: list[str] = []
        self.object_ids: list[str] = []
        self.ids: set[str] = set()
        self.h1 = 0
        self._open: list[tuple[str, bool]] = []       # (tag, opens a cell output)
        self.feed(path.read_text(encoding="utf-8"))

    @property
    def _in_output(self) -> bool:
        return any(is_output for _, is_output in self._open)

    def handle_starttag(self, tag, attrs):
        attrs = dict(attrs)
        classes = set((attrs.get("class") or "").split())
        if tag == "img":
            self.images.append((attrs.get("src") or "", self._in_output))
            return
        if attrs.get("id"):
            self.ids.add(attrs["id"])
        if tag == "h1":
            self.h1 += 1
        if tag == "dt" and {"sig", "py"} <= classes and attrs.get("id"):
            self.object_ids.append(attrs["id"])
        is_output = "cell_output" in classes or "output" in classes
        if is_output:
            self.output_classes.append(classes)
        if tag not in ("br", "hr", "meta", "link", "input", "wbr"):
            self._open.append((tag, is_output))

    def handle_endtag(self, tag):
        for i in range(len(self._open) - 1, -1, -1):    # tolerate unclosed tags
            if self._open[i][0] == tag:
                del self._open[i:]
                break

    def handle_data(self, data):
        if self._in_output:
            self.output_text.append(data)


def _page_of(site: Path, notebook: Path) -> Path:
    rel = notebook.relative_to(ROOT / "notebooks").with_suffix(".html")
    return site / "notebooks" / rel


def _draws_figures(notebook: Path) -> bool:
    cells = json.loads(notebook.read_text(encoding="utf-8"))["cells"]
    return any(PYPLOT_CALL.search("".join(c["source"])) for c in cells
               if c["cell_type"] == "code")


def _missing_images(page: Path, parsed: Page) -> list[str]:
    missing = []
    for src, _ in parsed.images:
        if src.startswith("data:image/"):
            continue
        parts = urlsplit(src)
        if parts.scheme or parts.netloc:
            missing.append(f"{src} (not part of the site)")
        elif not (page.parent / unquote(parts.path)).is_file():
            missing.append(src)
    return missing


def _errors(parsed: Page) -> list[str]:
    found = [" ".join(sorted(c)) for c in parsed.output_classes if c & {"traceback", "error"}]
    text = "".join(parsed.output_text)
    found += [m.group(0) for m in ERROR_TEXT.finditer(text)]
    return found


def test_notebooks_found():
    assert NOTEBOOKS, f"no notebooks in {ROOT / 'notebooks'}"


@pytest.mark.parametrize("notebook", NOTEBOOKS + EXERCISES,
                         ids=lambda p: p.relative_to(ROOT / "notebooks").as_posix())
def test_notebook_page(site, notebook):
    page = _page_of(site, notebook)
    assert page.is_file(), f"{notebook.name} has no page: {page} is missing"
    parsed = Page(page)
    assert parsed.h1 >= 1, f"{page.name} has no title"
    assert not _missing_images(page, parsed), f"{page.name}: images that do not exist: " \
        f"{_missing_images(page, parsed)}"
    assert not _errors(parsed), f"{page.name} shows error output: {_errors(parsed)[:5]}"
    if notebook in EXERCISES:
        return   # the students' worksheets are shown unexecuted
    figures = sum(in_output for _, in_output in parsed.images)
    if _draws_figures(notebook):
        assert figures >= 1, f"{notebook.name} calls pyplot but its page shows no figure"


def test_study_plots_page(site):
    page = site / "studies.html"
    assert page.is_file(), "the study plots page (docs/studies.md) is missing"
    parsed = Page(page)
    assert not _errors(parsed), f"studies.html shows error output: {_errors(parsed)[:5]}"
    assert not _missing_images(page, parsed)
    # scaling (full and default) 7 + 7, frontier 1, fine-tuning 2, translation 2 + 2
    assert sum(in_output for _, in_output in parsed.images) >= 21


def test_home_page_is_the_readme(site):
    page = site / "index.html"
    text = html.unescape(re.sub(r"<[^>]+>", "", page.read_text(encoding="utf-8")))
    readme = re.sub(r"^```.*?^```", "", (ROOT / "README.md").read_text(encoding="utf-8"),
                    flags=re.M | re.S)      # code blocks apart: their '#' lines are comments
    headings = [re.sub(r"[*_`]", "", h).strip() for h in re.findall(r"^#{1,3} (.+)$", readme,
                                                                       flags=re.M)]
    missing = [h for h in headings if h not in text]
    assert headings and not missing, f"the home page lacks the README's sections {missing}"
    parsed = Page(page)
    assert not _missing_images(page, parsed), f"index.html: {_missing_images(page, parsed)}"


def _exports(package: str) -> tuple[list[str], list[str]]:
    """What a package's __all__ exports: (classes, functions and constants; submodules)."""
    mod = importlib.import_module(package)
    names = getattr(mod, "__all__", None)
    assert names, f"{package} has no __all__"
    modules = [n for n in names if inspect.ismodule(getattr(mod, n))]
    return [n for n in names if n not in modules], [getattr(mod, n).__name__ for n in modules]


def test_api_reference(site):
    page = site / "api.html"
    assert page.is_file(), "the API reference page (docs/api.md) is missing"
    parsed = Page(page)
    ids = parsed.object_ids
    twice = sorted({i for i in ids if ids.count(i) > 1})
    assert not twice, f"documented more than once: {twice}"
    missing, sections = [], []
    for package in API_PACKAGES:
        names, submodules = _exports(package)
        missing += [f"{package}.{n}" for n in names if f"{package}.{n}" not in ids]
        sections += [m for m in (package, *submodules) if f"module-{m}" not in parsed.ids]
    assert not missing, f"the API reference does not document: {missing}"
    assert not sections, f"docs/api.md has no automodule section for: {sections}"
