"""The teaching notebooks: committed clean, parameterised, and runnable top to bottom.

Every notebook is executed with nbclient on the ``smoke`` profile, in ``notebooks/``, with
``TCUL_HOME`` pointing at a temporary folder (data and runs are generated there once and
shared by the notebooks, as in class).
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

import nbformat
import pytest

ROOT = Path(__file__).resolve().parents[1]
NB_DIR = ROOT / "notebooks"
NOTEBOOKS = sorted(NB_DIR.glob("[0-9][0-9]_*.ipynb"))
PARAM_LINE = 'PROFILE = os.environ.get("TCUL_PROFILE", "classroom")'


def test_there_are_ten_notebooks():
    assert [p.name[:2] for p in NOTEBOOKS] == [f"{i:02d}" for i in range(10)]


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.stem)
def test_notebook_committed_without_outputs(path):
    nb = nbformat.read(path, as_version=4)
    for i, cell in enumerate(nb.cells):
        if cell.cell_type == "code":
            assert cell.get("outputs") == [], f"{path.name} cell {i} has outputs: clear them"
            assert cell.get("execution_count") is None, f"{path.name} cell {i} has a count"


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.stem)
def test_notebook_structure(path):
    nb = nbformat.read(path, as_version=4)
    first = nb.cells[0]
    assert first.cell_type == "markdown" and first.source.startswith("# ")
    assert "Learning objectives" in first.source and "$" in first.source
    assert "Measured run time (classroom, 2 CPU cores):" in first.source
    params = [c for c in nb.cells if c.cell_type == "code" and PARAM_LINE in c.source]
    assert params, f"{path.name} has no parameters cell reading TCUL_PROFILE"
    assert "Exercises" in nb.cells[-1].source or any(
        "## Exercises" in c.source for c in nb.cells[-4:] if c.cell_type == "markdown")
    if int(path.name[:2]) >= 3:
        assert any("exercises.check_" in c.source for c in nb.cells if c.cell_type == "code")


@pytest.fixture(scope="module")
def tcul_home(tmp_path_factory):
    """A fresh kit home whose synthetic worlds are generated here, in the test process
    (world rendering uses a process pool, which is slow to start inside a kernel)."""
    from tcul_helpers.session import LabSession

    home = tmp_path_factory.mktemp("tcul_home")
    lab = LabSession("smoke", progress=False, home=home)
    assert lab.source.train and lab.target.train
    return home


def _kernel_name() -> str:
    """The kernel of the running interpreter's environment (``python3`` of the venv)."""
    from jupyter_client.kernelspec import KernelSpecManager

    specs = KernelSpecManager().find_kernel_specs()
    assert "python3" in specs, f"no python3 kernel: {specs}"
    return "python3"


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.stem)
def test_notebook_runs_on_smoke(path, tcul_home, monkeypatch):
    from nbclient import NotebookClient

    monkeypatch.setenv("TCUL_PROFILE", "smoke")
    monkeypatch.setenv("TCUL_HOME", str(tcul_home))
    monkeypatch.setenv("MPLBACKEND", "module://matplotlib_inline.backend_inline")
    monkeypatch.setenv("PATH", str(Path(sys.executable).parent) + os.pathsep
                       + os.environ.get("PATH", ""))
    nb = nbformat.read(path, as_version=4)
    client = NotebookClient(nb, timeout=240, kernel_name=_kernel_name(),
                            resources={"metadata": {"path": str(NB_DIR)}})
    client.execute()  # raises CellExecutionError on the first failing cell
    text = "\n".join(str(o.get("text", "")) for c in nb.cells if c.cell_type == "code"
                     for o in c.get("outputs", []))
    assert "Traceback" not in text
