"""The teaching notebooks: committed clean, parameterised, and runnable top to bottom.

Every notebook is executed with nbclient on the ``smoke`` profile, in ``notebooks/``, with
``TCUL_HOME`` pointing at a temporary folder (data and runs are generated there once and
shared by the notebooks, as in class).
"""

from __future__ import annotations

import re
from pathlib import Path

import nbformat
import pytest

from tcul_helpers.notebook_runner import PARAM_LINE, TIME_LINE, execute_notebook

ROOT = Path(__file__).resolve().parents[1]
NB_DIR = ROOT / "notebooks"
NOTEBOOKS = sorted(NB_DIR.glob("[0-9][0-9]_*.ipynb"))


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
    # the time measured by benchmarks/bench_notebooks.py --write, not a placeholder
    assert re.search(re.escape(TIME_LINE) + r" \*\*\d+(\.\d+)? (s|min)\*\*", first.source), (
        f"{path.name}: state the measured time (python benchmarks/bench_notebooks.py --write)")
    params = [c for c in nb.cells if c.cell_type == "code" and PARAM_LINE in c.source]
    assert params, f"{path.name} has no parameters cell reading TCUL_PROFILE"
    assert "Exercises" in nb.cells[-1].source or any(
        "## Exercises" in c.source for c in nb.cells[-4:] if c.cell_type == "markdown")
    if int(path.name[:2]) >= 3:
        assert any("exercises.check_" in c.source for c in nb.cells if c.cell_type == "code")


@pytest.fixture(scope="module")
def tcul_home(tmp_path_factory):
    """A fresh kit home shared by the notebooks, prepared once here, in the test process:
    the smoke worlds and the source model f_theta0, which every notebook from 02 on loads
    from ``runs/`` (so any notebook can also be run alone, e.g. ``-k 05``). The notebooks
    run in numerical order and the later ones reuse the runs cached by the earlier ones
    (06 computes ``tcul``, 07 reuses it and adds ``sul`` / ``pul``, 09 reads them)."""
    from tcul_helpers.session import LabSession

    home = tmp_path_factory.mktemp("tcul_home")
    lab = LabSession("smoke", progress=False, home=home)
    assert lab.source.train and lab.target.train
    assert lab.source_model() is not None
    assert (lab.root / "source" / "model.pt").is_file()
    return home


def _kernel_name() -> str:
    """The kernel of the running interpreter's environment (``python3`` of the venv)."""
    from jupyter_client.kernelspec import KernelSpecManager

    specs = KernelSpecManager().find_kernel_specs()
    assert "python3" in specs, f"no python3 kernel: {specs}"
    return "python3"


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.stem)
def test_notebook_runs_on_smoke(path, tcul_home):
    nb, _seconds = execute_notebook(path, "smoke", home=tcul_home, timeout=240,
                                    kernel_name=_kernel_name())
    text = "\n".join(str(o.get("text", "")) for c in nb.cells if c.cell_type == "code"
                     for o in c.get("outputs", []))
    assert "Traceback" not in text
