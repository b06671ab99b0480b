"""Run a teaching notebook top to bottom in a fresh kernel (tests and the timing benchmark).

:func:`execute_notebook` executes ``notebooks/NN_*.ipynb`` with nbclient for one profile,
in the notebook's folder, and returns the executed notebook and its wall time. Nothing is
written back to the committed file (notebooks stay without outputs). It is nbclient's
``NotebookClient`` as shipped, the engine of ``jupyter nbconvert --execute``, papermill and
``pytest --nbmake``: what passes here passes there.
"""

from __future__ import annotations

import os
import sys
import time
from pathlib import Path
from typing import Any

#: The line of the parameters cell every notebook has.
PARAM_LINE = 'PROFILE = os.environ.get("TCUL_PROFILE", "classroom")'
#: The header line that states a notebook's measured classroom compute time.
TIME_LINE = "Compute time (classroom, 2 CPU cores):"


def execute_notebook(
    path: str | Path,
    profile: str = "smoke",
    *,
    home: str | Path | None = None,
    timeout: int = 60,
    kernel_name: str = "python3",
) -> tuple[Any, float]:
    """Execute the notebook at ``path`` with ``TCUL_PROFILE=profile`` (and ``TCUL_HOME=home``
    when given) in a fresh kernel; returns ``(executed notebook, wall seconds)``. Raises
    nbclient's ``CellExecutionError`` on the first failing cell and its ``CellTimeoutError``
    when one cell runs longer than ``timeout`` seconds."""
    import nbformat
    from nbclient import NotebookClient

    path = Path(path)
    env = {"TCUL_PROFILE": profile,
           "MPLBACKEND": "module://matplotlib_inline.backend_inline",
           "PATH": str(Path(sys.executable).parent) + os.pathsep + os.environ.get("PATH", "")}
    if home is not None:
        env["TCUL_HOME"] = str(home)
    saved = {k: os.environ.get(k) for k in env}
    os.environ.update(env)  # the kernel inherits the environment of this process
    try:
        nb = nbformat.read(path, as_version=4)
        client = NotebookClient(nb, timeout=timeout, kernel_name=kernel_name,
                                resources={"metadata": {"path": str(path.parent)}})
        t0 = time.perf_counter()
        client.execute()
        return nb, time.perf_counter() - t0
    finally:
        for k, v in saved.items():
            if v is None:
                os.environ.pop(k, None)
            else:
                os.environ[k] = v


__all__ = ["PARAM_LINE", "TIME_LINE", "execute_notebook"]
