"""Predict, then run: a run's own reading of its numbers, folded until the student opens it.

The notebooks ask each question before the cell that answers it and leave a cell for the
student's prediction. What the run says is then shown by :func:`reveal` as a folded HTML
``<details>`` block: one click opens it, in JupyterLab, Jupyter Notebook, VS Code and in a
rendered copy (``jupyter nbconvert --to html``, GitHub), with no kernel and no widget state,
so a saved or printed notebook keeps the answer folded as well.
"""

from __future__ import annotations

#: The line on the folded block.
SUMMARY = "Compare with your prediction: what this run says"


def reveal_markdown(text: str, summary: str = SUMMARY) -> str:
    """``text`` (Markdown, maths allowed) inside a folded ``<details>`` block."""
    return f"<details>\n<summary><b>{summary}</b></summary>\n\n{text}\n\n</details>"


def reveal(text: str, summary: str = SUMMARY) -> None:
    """Display ``text`` folded (see the module docstring)."""
    from IPython.display import Markdown, display

    display(Markdown(reveal_markdown(text, summary)))


__all__ = ["SUMMARY", "reveal", "reveal_markdown"]
