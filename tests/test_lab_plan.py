"""The lab plan's student-time estimate and the folded reveal of a run's reading."""

from __future__ import annotations

import nbformat

from tcul_helpers.teaching.lab_plan import MINUTES, WORDS_PER_MINUTE, student_line, student_minutes
from tcul_helpers.teaching.reveal import SUMMARY, reveal_markdown


def _nb(*texts: str):
    nb = nbformat.v4.new_notebook()
    nb.cells = [nbformat.v4.new_markdown_cell(t) for t in texts]
    nb.cells.append(nbformat.v4.new_code_cell("x = 1"))
    return nb


def test_the_estimate_counts_reading_predictions_and_exercises():
    words = " ".join(["word"] * (3 * WORDS_PER_MINUTE))  # 3 minutes of reading
    nb = _nb("# 99 · title", words, "**Predict.** will it grow?", "*Your prediction:*",
             "**Ex 1 (core, coding)** write it", "**Ex 2 (optional, discussion)** why?",
             "**Ex 3 (optional, coding)** more")
    est = student_minutes(nb)
    n_words = sum(len(c.source.split()) for c in nb.cells if c.cell_type == "markdown")
    core = n_words / WORDS_PER_MINUTE + MINUTES["prediction"] + MINUTES["coding"]
    assert est["core"] == 5 * -(-core // 5)  # rounded up to 5 minutes
    assert est["optional"] == 5 * -(-(MINUTES["discussion"] + MINUTES["coding"]) // 5)
    assert est["predictions"] == 1
    assert (est["core_exercises"], est["optional_exercises"]) == ([1], [2, 3])
    line = student_line(nb)
    assert f"about {est['core']} min" in line and "core: Ex 1" in line
    assert "optional: Ex 2, Ex 3" in line


def test_a_notebook_without_exercises_says_none():
    est = student_minutes(_nb("# 99 · title", "some text"))
    assert est["core_exercises"] == [] and est["optional"] == 0
    assert "core: none" in student_line(_nb("# 99 · title"))


def test_the_reading_is_folded_with_its_markdown_inside():
    text = reveal_markdown("**bold** and $\\lambda_{fr}$")
    assert text.startswith("<details>\n<summary>") and text.endswith("</details>")
    assert SUMMARY in text
    # a blank line after the summary: the inside is rendered as Markdown, not as raw HTML
    assert "</summary>\n\n**bold**" in text
