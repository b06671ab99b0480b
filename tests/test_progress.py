"""Progress bars: tqdm's text bar in a terminal, one plain HTML line in a notebook."""

from __future__ import annotations

import io

import nbformat
import pytest

from tcul_helpers.infra import progress

WIDGET_VIEW = "application/vnd.jupyter.widget-view+json"


def test_outside_a_kernel_it_is_tqdms_text_bar():
    assert not progress.in_kernel()
    out = io.StringIO()
    for _ in progress.tqdm(range(3), desc="work", file=out, mininterval=0):
        pass
    assert "work: 100%" in out.getvalue() and "3/3" in out.getvalue()


def test_in_a_kernel_the_bar_is_one_html_output_that_a_saved_notebook_keeps():
    pytest.importorskip("nbclient")
    from nbclient import NotebookClient

    nb = nbformat.v4.new_notebook()
    nb.cells = [nbformat.v4.new_code_cell(
        "from tcul_helpers.infra.progress import tqdm, in_kernel\n"
        "assert in_kernel()\n"
        "for _ in tqdm(range(50), desc='work', mininterval=0):\n"
        "    pass\n"
        "for _ in tqdm(range(5), desc='gone', leave=False, mininterval=0):\n"
        "    pass\n")]
    NotebookClient(nb, timeout=60, kernel_name="python3").execute()
    outputs = nb.cells[0].outputs
    assert not [o for o in outputs if WIDGET_VIEW in o.get("data", {})]
    assert not [o for o in outputs if o.get("output_type") == "stream"]
    shown = [o["data"]["text/html"] for o in outputs if "text/html" in o.get("data", {})]
    # updates went through the display handles: one output per bar, its last state kept
    assert len(shown) == 2
    assert "work: 100%" in shown[0] and "50/50" in shown[0]
    assert shown[1] == ""  # a bar with leave=False clears itself
