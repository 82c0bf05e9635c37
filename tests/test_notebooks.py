"""The notebooks: committed without outputs, listed on the documentation's Chapters page, and each run top
to bottom in a fresh kernel without a cell error, within the two minutes a chapter is allowed on two cores."""
import json
import os
import time

import pytest

import nnlayers as nl
from tests.helpers import ROOT, importable, require

NOTEBOOKS = sorted((ROOT / "notebooks").glob("*.ipynb"))
SECONDS_PER_NOTEBOOK = 120


def test_the_chapters_are_there():
    names = [path.stem for path in NOTEBOOKS]
    assert len(names) >= 5 and names[:5] == ["01-backprop-by-hand", "02-chain-rule", "03-digits-in-two-numbers",
                                             "04-convolutions-and-pooling", "05-writing-your-own-layer"]


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda path: path.stem)
def test_notebook_is_committed_without_outputs(path):
    notebook = json.loads(path.read_text(encoding="utf-8"))
    code = [cell for cell in notebook["cells"] if cell["cell_type"] == "code"]
    assert code, f"{path.name}: no code cells"
    for number, cell in enumerate(code, 1):
        assert cell.get("outputs") == [], f"{path.name}: code cell {number} has outputs; clear them before committing"
        assert cell.get("execution_count") is None, f"{path.name}: code cell {number} has an execution count"
    assert "widgets" not in notebook.get("metadata", {}), f"{path.name}: saved widget state"


def test_chapters_page_lists_every_notebook():
    page = (ROOT / "docs" / "chapters.rst").read_text(encoding="utf-8")
    for path in NOTEBOOKS:
        assert f"notebooks/{path.name}" in page, f"docs/chapters.rst does not describe {path.name}"
    assert "pip install -e '.[notebooks]'" in page and "jupyter lab notebooks/" in page
    # The site's toctree takes every notebook by itself: docs/chapters links to notebooks/.
    assert ":glob:" in page and "   chapters/*" in page
    assert (ROOT / "docs" / "chapters").resolve() == (ROOT / "notebooks").resolve()


def _missing_library_names(notebook) -> list:
    """Names a chapter declares in its metadata (``nnlayers.requires``) that this nnlayers lacks."""
    needed = notebook.metadata.get("nnlayers", {}).get("requires", [])
    return [name for name in needed if not hasattr(nl, name)]


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda path: path.stem)
def test_notebook_runs_top_to_bottom(path):
    require(importable("nbclient", "nbformat", "ipykernel"), "nbclient, nbformat and ipykernel run the notebooks (pip install -e '.[test]')")
    import nbformat
    from nbclient import NotebookClient

    notebook = nbformat.read(path, as_version=4)
    missing = _missing_library_names(notebook)
    if missing:  # a chapter written ahead of the library it teaches; it runs once those land
        pytest.skip(f"{path.name} needs nl.{', nl.'.join(missing)}, not in this nnlayers yet")
    # A fresh kernel of this interpreter, run where a reader opens the notebook, importing the nnlayers
    # of this tree (whatever another install says); debugpy's notice about frozen modules is noise here.
    path_entries = [str(ROOT)] + ([os.environ["PYTHONPATH"]] if os.environ.get("PYTHONPATH") else [])
    env = dict(os.environ, PYTHONPATH=os.pathsep.join(path_entries), PYDEVD_DISABLE_FILE_VALIDATION="1")
    client = NotebookClient(notebook, kernel_name="python3", timeout=SECONDS_PER_NOTEBOOK, startup_timeout=120,
                            resources={"metadata": {"path": str(path.parent)}})
    started = time.perf_counter()
    client.execute(env=env)           # raises CellExecutionError, with the cell and its traceback, on any error
    seconds = time.perf_counter() - started
    assert seconds < SECONDS_PER_NOTEBOOK, f"{path.name} took {seconds:.0f} s"
    errors = [output for cell in notebook.cells if cell.cell_type == "code"
              for output in cell.outputs if output.output_type == "error"]
    assert not errors
    figures = sum("image/png" in output.get("data", {}) for cell in notebook.cells if cell.cell_type == "code"
                  for output in cell.outputs)
    if path.stem != "02-chain-rule":            # every other chapter draws, and its figures must show
        assert figures >= 1, f"{path.name}: no figure displayed as an image"
