"""Run a teaching notebook top to bottom in a fresh kernel (tests and the timing benchmark).

:func:`execute_notebook` executes ``notebooks/NN_*.ipynb`` with nbclient for one profile,
in the notebook's folder, and returns the executed notebook and its wall time. Nothing is
written back to the committed file (notebooks stay without outputs).
"""

from __future__ import annotations

import os
import sys
import time
from pathlib import Path
from typing import Any

SHELL_SLICE_S = 0.25
#: The line of the parameters cell every notebook has.
PARAM_LINE = 'PROFILE = os.environ.get("TCUL_PROFILE", "classroom")'
#: The header line that states a notebook's measured classroom run time.
TIME_LINE = "Measured run time (classroom, 2 CPU cores):"


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


def notebook_client(nb: Any, **kwargs: Any):
    """An nbclient ``NotebookClient`` that does not sleep through a lost shell wake-up.

    nbclient mimics the front end of ``ipywidgets.Output``: when a cell displays into an
    Output widget (every explorer of :mod:`tcul_helpers.widgets` draws its first figure as
    it is built), the client sends ``comm_msg`` updates to the kernel on the *shell* socket
    while it is awaiting the cell's ``execute_reply`` on that same socket. The zmq wake-up
    for the reply can then be lost: the reply sits in the socket and is only seen when the
    poll times out, i.e. after the whole cell timeout (jupyter/nbclient#312). Waiting on
    the shell in short slices bounds such a loss to one slice; a real timeout still fires
    after ``timeout``.
    """
    from nbclient import NotebookClient

    class Client(NotebookClient):
        async def async_start_new_kernel_client(self):
            kc = await super().async_start_new_kernel_client()
            kc.shell_channel.get_msg = _sliced(kc.shell_channel.get_msg)
            return kc

    return Client(nb, **kwargs)


def execute_notebook(
    path: str | Path,
    profile: str = "smoke",
    *,
    home: str | Path | None = None,
    timeout: int = 240,
    kernel_name: str = "python3",
) -> tuple[Any, float]:
    """Execute the notebook at ``path`` with ``TCUL_PROFILE=profile`` (and ``TCUL_HOME=home``
    when given) in a fresh kernel; returns ``(executed notebook, wall seconds)``. Raises
    nbclient's ``CellExecutionError`` on the first failing cell."""
    import nbformat

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
        client = notebook_client(nb, timeout=timeout, kernel_name=kernel_name,
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


__all__ = ["PARAM_LINE", "TIME_LINE", "execute_notebook", "notebook_client"]
