"""The student time of each teaching notebook, estimated from the notebook itself.

Every notebook marks what a student does: predictions (a text cell that starts with
``**Predict.**``) and exercises (``**Ex 2 (core, coding)**``, ``**Ex 3 (optional,
discussion)**``). The estimate reads the text at :data:`WORDS_PER_MINUTE` (technical text
with its figures and tables) and adds a fixed time per prediction and per exercise
(:data:`MINUTES`). The core path counts the reading, the predictions and the core exercises;
the optional exercises are counted apart. It is an estimate from the notebook, not a time
measured with students: the lab plan (``notebooks/README.md``) says so.

``python -m tcul_helpers.teaching.lab_plan`` prints the estimate of every notebook;
``--write`` puts it on each notebook's header line (:data:`STUDENT_LINE`) and changes
nothing else.
"""

from __future__ import annotations

import argparse
import math
import re
from pathlib import Path
from typing import Any

#: The header line that states a notebook's student time.
STUDENT_LINE = "**Student time:"
WORDS_PER_MINUTE = 100
MINUTES = {"prediction": 2, "coding": 12, "discussion": 4}
EXERCISE = re.compile(r"\*\*Ex (\d+) \((core|optional), (coding|discussion)\)")
PREDICT = "**Predict.**"


def _round_up(minutes: float, step: int = 5) -> int:
    return int(step * math.ceil(minutes / step)) if minutes > 0 else 0


def exercises(nb: Any) -> list[tuple[int, str, str]]:
    """``[(number, "core" | "optional", "coding" | "discussion")]`` in the order marked."""
    found: dict[int, tuple[int, str, str]] = {}
    for cell in nb.cells:
        if cell.cell_type == "markdown":
            for m in EXERCISE.finditer(cell.source):
                found.setdefault(int(m.group(1)), (int(m.group(1)), m.group(2), m.group(3)))
    return [found[k] for k in sorted(found)]


def student_minutes(nb: Any) -> dict[str, Any]:
    """The estimate of one notebook: ``core`` and ``optional`` minutes, rounded up to 5,
    with what they count (``words``, ``predictions``, the exercises)."""
    text = [c.source for c in nb.cells if c.cell_type == "markdown"]
    words = sum(len(t.split()) for t in text)
    predictions = sum(t.lstrip().startswith(PREDICT) for t in text)
    ex = exercises(nb)
    core = words / WORDS_PER_MINUTE + MINUTES["prediction"] * predictions
    core += sum(MINUTES[kind] for _n, part, kind in ex if part == "core")
    optional = sum(MINUTES[kind] for _n, part, kind in ex if part == "optional")
    return {"core": _round_up(core), "optional": _round_up(optional), "words": words,
            "predictions": predictions,
            "core_exercises": [n for n, part, _k in ex if part == "core"],
            "optional_exercises": [n for n, part, _k in ex if part == "optional"]}


def student_line(nb: Any) -> str:
    """The header line: ``**Student time: about N min** ...`` (see the module docstring)."""
    est = student_minutes(nb)

    def names(ns: list[int]) -> str:
        return ", ".join(f"Ex {n}" for n in ns) if ns else "none"

    extra = f" (+{est['optional']} min optional)" if est["optional"] else ""
    return (f"{STUDENT_LINE} about {est['core']} min**{extra} · core: "
            f"{names(est['core_exercises'])} · optional: {names(est['optional_exercises'])} "
            "(estimated from the text and the exercises: the lab plan, `notebooks/README.md`, "
            "says how)")


def write_student_line(path: str | Path) -> str:
    """Replace the header's student-time line of the notebook at ``path``; returns it."""
    import nbformat

    nb = nbformat.read(path, as_version=4)
    line = student_line(nb)
    head = nb.cells[0]
    new, n = re.subn(re.escape(STUDENT_LINE) + r".*", lambda _m: line, head.source, count=1)
    if n != 1:
        raise SystemExit(f"{Path(path).name}: no line starting with {STUDENT_LINE!r} in the "
                         "first cell")
    head.source = new
    nbformat.write(nb, path)
    return line


def main(argv: list[str] | None = None) -> None:
    """Print (``--write``: also set) every notebook's student time."""
    import nbformat

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--write", action="store_true", help="set the notebooks' header lines")
    parser.add_argument("--notebooks", type=Path,
                        default=Path(__file__).resolve().parents[2] / "notebooks")
    args = parser.parse_args(argv)
    total = 0
    for path in sorted(args.notebooks.glob("[0-9][0-9]_*.ipynb")):
        est = student_minutes(nbformat.read(path, as_version=4))
        total += est["core"]
        print(f"{path.name:<45} core {est['core']:>3} min  optional {est['optional']:>3} min  "
              f"({est['words']} words, {est['predictions']} predictions)")
        if args.write:
            write_student_line(path)
    print(f"{'all notebooks, core':<45} {total:>8} min")


if __name__ == "__main__":
    main()
