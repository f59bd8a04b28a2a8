"""Every notebook runs top to bottom in fast mode (TINYLLM_FAST=1: fewer steps, smaller sizes)."""

from pathlib import Path

import pytest

nbformat = pytest.importorskip("nbformat")
nbclient = pytest.importorskip("nbclient")
pytest.importorskip("ipykernel")
pytest.importorskip("matplotlib")

NOTEBOOKS = sorted((Path(__file__).parent.parent / "notebooks").glob("*.ipynb"))


@pytest.mark.slow
@pytest.mark.parametrize("path", NOTEBOOKS, ids=[p.name for p in NOTEBOOKS])
def test_notebook_executes(path, monkeypatch, tmp_path):
    monkeypatch.setenv("TINYLLM_FAST", "1")
    monkeypatch.setenv("MPLBACKEND", "Agg")
    monkeypatch.chdir(tmp_path)  # anything a notebook writes lands in a temp dir
    nb = nbformat.read(path, as_version=4)
    client = nbclient.NotebookClient(
        nb, timeout=600, kernel_name="python3", resources={"metadata": {"path": str(tmp_path)}}
    )
    client.execute()
    errors = [
        o
        for c in nb.cells
        if c.cell_type == "code"
        for o in c.get("outputs", [])
        if o.get("output_type") == "error"
    ]
    assert not errors


@pytest.mark.parametrize("path", sorted(NOTEBOOKS + sorted(NOTEBOOKS[0].parent.glob(
    "exercises/*.ipynb"))), ids=lambda p: p.name)
def test_notebook_is_valid_nbformat(path):
    """Valid as saved: every cell has its id (nbformat 4.5), so readers need not invent one."""
    import json

    raw = json.loads(path.read_text(encoding="utf-8"))
    assert all("id" in cell for cell in raw["cells"]), path.name
    nbformat.validate(nbformat.reads(path.read_text(encoding="utf-8"), as_version=4))
