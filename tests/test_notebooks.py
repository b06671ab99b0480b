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


SHELL_SLICE_S = 0.25


def _sliced(get_msg):
    """``get_msg(timeout)`` of the shell channel, waiting in slices of ``SHELL_SLICE_S``."""
    from queue import Empty
    from time import monotonic

    async def sliced_get_msg(timeout=None):
        deadline = None if timeout is None else monotonic() + timeout
        while True:
            left = SHELL_SLICE_S if deadline is None else max(0.0, deadline - monotonic())
            try:
                return await get_msg(timeout=min(SHELL_SLICE_S, left))
            except Empty:
                if deadline is not None and monotonic() >= deadline:
                    raise

    return sliced_get_msg


def _notebook_client(nb, **kwargs):
    """An nbclient ``NotebookClient`` that does not sleep through a lost shell wake-up.

    nbclient mimics the front end of ``ipywidgets.Output``: when a cell displays into an
    Output widget (every explorer of :mod:`tcul_helpers.widgets` draws its first figure as
    it is built), the client sends ``comm_msg`` updates to the kernel on the *shell* socket
    while it is awaiting the cell's ``execute_reply`` on that same socket. The zmq wake-up
    for the reply can then be lost: the reply sits in the socket and is only seen when the
    poll times out, i.e. after the whole cell timeout (notebook 01's explorer cell took
    exactly 240 s for 0.3 s of work; jupyter/nbclient#312). Waiting on the shell in short
    slices bounds such a loss to one slice; a real timeout still fires after ``timeout``.
    """
    from nbclient import NotebookClient

    class Client(NotebookClient):
        async def async_start_new_kernel_client(self):
            kc = await super().async_start_new_kernel_client()
            kc.shell_channel.get_msg = _sliced(kc.shell_channel.get_msg)
            return kc

    return Client(nb, **kwargs)


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.stem)
def test_notebook_runs_on_smoke(path, tcul_home, monkeypatch):
    monkeypatch.setenv("TCUL_PROFILE", "smoke")
    monkeypatch.setenv("TCUL_HOME", str(tcul_home))
    monkeypatch.setenv("MPLBACKEND", "module://matplotlib_inline.backend_inline")
    monkeypatch.setenv("PATH", str(Path(sys.executable).parent) + os.pathsep
                       + os.environ.get("PATH", ""))
    nb = nbformat.read(path, as_version=4)
    client = _notebook_client(nb, timeout=240, kernel_name=_kernel_name(),
                              resources={"metadata": {"path": str(NB_DIR)}})
    client.execute()  # raises CellExecutionError on the first failing cell
    text = "\n".join(str(o.get("text", "")) for c in nb.cells if c.cell_type == "code"
                     for o in c.get("outputs", []))
    assert "Traceback" not in text
