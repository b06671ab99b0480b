"""Progress bars (tqdm) that work in a terminal, a live notebook and a saved notebook.

In a terminal this is tqdm's own text bar. In a Jupyter kernel, ``tqdm.auto`` would draw an
ipywidgets bar, which a notebook saved after the run shows as "Error displaying widget:
model not found" and which nbclient-based runners (nbconvert, papermill, nbmake) must mimic.
Here the same text bar is written into one plain HTML output that is updated in place
through an IPython display handle: live while the cell runs, and a static line (the bar's
last state) in the saved file. The kit's modules import ``tqdm`` from here.
"""

from __future__ import annotations

import html
import sys
from typing import Any

from tqdm.std import tqdm as _text_tqdm


def in_kernel() -> bool:
    """True inside a Jupyter (IPython) kernel."""
    if "IPython" not in sys.modules:
        return False
    from IPython import get_ipython

    shell = get_ipython()
    return shell is not None and hasattr(shell, "kernel")


class _DisplayLine:
    """A file-like object for tqdm: every written bar replaces one HTML output."""

    encoding = "utf-8"

    def __init__(self) -> None:
        self._handle: Any = None

    def _show(self, text: str) -> None:
        from IPython.display import HTML, display

        view = HTML(f"<pre style='margin:0'>{html.escape(text)}</pre>" if text else "")
        if self._handle is None:
            if text:
                self._handle = display(view, display_id=True)
        else:
            self._handle.update(view)

    def write(self, s: str) -> int:
        if s in ("\n", ""):
            return len(s)  # the newline after a finished bar that is kept
        self._show(s.replace("\r", "").rstrip("\n").rstrip())  # blank: a bar left=False
        return len(s)

    def flush(self) -> None:
        pass


def tqdm(*args: Any, **kwargs: Any) -> _text_tqdm:
    """``tqdm.tqdm(...)``; in a Jupyter kernel drawn as plain HTML (see the module doc)."""
    if kwargs.get("file") is None and in_kernel():
        kwargs["file"] = _DisplayLine()
        kwargs.setdefault("ncols", 100)
    return _text_tqdm(*args, **kwargs)


__all__ = ["in_kernel", "tqdm"]
