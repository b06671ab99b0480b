"""The teaching notebooks: committed clean, parameterised, and runnable top to bottom.

Every notebook is executed with nbclient as shipped (the engine of nbconvert, papermill and
nbmake) on the ``smoke`` profile, in ``notebooks/``, with ``TCUL_HOME`` pointing at a
temporary folder (data and runs are generated there once and shared by the notebooks, as in
class), and with a per-cell timeout of ``CELL_TIMEOUT`` seconds that a hanging cell fails.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import nbformat
import pytest

from tcul_helpers.teaching.notebook_runner import PARAM_LINE, TIME_LINE, execute_notebook

ROOT = Path(__file__).resolve().parents[1]
NB_DIR = ROOT / "notebooks"
NOTEBOOKS = sorted(NB_DIR.glob("[0-9][0-9]_*.ipynb"))
#: Per-cell limit: every smoke cell takes seconds; a cell that waits on a lost reply
#: (jupyter/nbclient#312, what the explorers once caused) fails instead of passing late.
CELL_TIMEOUT = 60
WIDGET_VIEW = "application/vnd.jupyter.widget-view+json"


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
    from tcul_helpers.teaching.lab_plan import PREDICT, exercises, student_line

    nb = nbformat.read(path, as_version=4)
    first = nb.cells[0]
    assert first.cell_type == "markdown" and first.source.startswith("# ")
    assert "Learning objectives" in first.source and "$" in first.source
    # the compute time measured by benchmarks/bench_notebooks.py --write, not a placeholder
    assert re.search(re.escape(TIME_LINE) + r" \*\*\d+(\.\d+)? (s|min)\*\* after `make prepare`, "
                     r"\*\*\d+(\.\d+)? (s|min)\*\* without it$", first.source, re.M), (
        f"{path.name}: state the measured time (python benchmarks/bench_notebooks.py --write)")
    # the student time is the estimate of this very notebook (lab_plan --write after an edit)
    assert student_line(nb) in first.source, (
        f"{path.name}: the student time is stale: python -m tcul_helpers.teaching.lab_plan --write")
    params = [c for c in nb.cells if c.cell_type == "code" and PARAM_LINE in c.source]
    assert params, f"{path.name} has no parameters cell reading TCUL_PROFILE"
    ex = exercises(nb)
    assert ex, f"{path.name}: no exercise marked **Ex N (core|optional, coding|discussion)**"
    assert [n for n, _p, _k in ex] == list(range(1, len(ex) + 1)), f"{path.name}: numbering"
    if 3 <= int(path.name[:2]) <= 7:  # the method's stages: the student writes each one
        assert any("exercises.check_" in c.source for c in nb.cells if c.cell_type == "code")
    # predict, then run: every prediction prompt is followed by the student's cell, then code
    cells = nb.cells
    for i, cell in enumerate(cells):
        if cell.cell_type == "markdown" and cell.source.startswith(PREDICT):
            assert cells[i + 1].cell_type == "markdown" and "prediction" in cells[i + 1].source
            assert any(c.cell_type == "code" for c in cells[i + 2:i + 4]), (
                f"{path.name} cell {i}: no cell right after the prediction answers it")


#: What a student does not have, or need: development history, the kit's notes and test hooks.
INTERNALS = {
    r"\bissue\s*#?\d+": "an issue number",
    r"closing note": "a closing note",
    r"method[- ]notes": "the kit's method notes (not shipped to students)",
    r"TCUL_FINETUNE_STEPS|TCUL_REQUIRE_BROWSER|TCUL_SCREENSHOTS": "a test-only variable",
    r"bench_\w+\.py|benchmarks/": "benchmark provenance",
    r"^\s*\w+\.state\s*(#.*)?$": "a cell that exists only for the tests",
    r"README's variants section": "a section of the developers' README",
    r"\b[\w/]+/\w+\.py\b": "a source-file path",
    r"goal met|NOT met": "the kit's calibration check",
}


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.stem)
def test_notebook_mentions_no_internals(path):
    nb = nbformat.read(path, as_version=4)
    for i, cell in enumerate(nb.cells):
        for pattern, what in INTERNALS.items():
            hit = re.search(pattern, cell.source, re.I | re.M)
            assert hit is None, f"{path.name} cell {i} mentions {what}: {hit.group(0)!r}"


def test_internals_check_can_fail():
    cell = "Note (method notes): see the closing note of issue 4 and frag.state"
    found = {what for pattern, what in INTERNALS.items() if re.search(pattern, cell, re.I | re.M)}
    assert {"an issue number", "a closing note", "the kit's method notes (not shipped to "
            "students)"} <= found
    assert re.search(list(INTERNALS)[5], "scrub.state", re.M)


@pytest.fixture(scope="module")
def tcul_home(tmp_path_factory):
    """A fresh kit home shared by the notebooks, prepared once here, in the test process:
    the smoke worlds and the source model f_theta0, which every notebook from 02 on loads
    from ``runs/`` (so any notebook can also be run alone, e.g. ``-k 05``). The notebooks
    run in numerical order and the later ones reuse the runs cached by the earlier ones
    (06 computes ``tcul``, 07 reuses it and adds ``sul`` / ``pul``, 09 reads them)."""
    from tcul_helpers.teaching.session import LabSession

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


def _outputs(cell) -> list[dict]:
    return list(cell.get("outputs", []))


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.stem)
def test_notebook_runs_on_smoke(path, tcul_home):
    nb, _seconds = execute_notebook(path, "smoke", home=tcul_home, timeout=CELL_TIMEOUT,
                                    kernel_name=_kernel_name())
    code = [c for c in nb.cells if c.cell_type == "code"]
    text = "\n".join(str(o.get("text", "")) for c in code for o in _outputs(c))
    assert "Traceback" not in text
    for i, cell in enumerate(code):
        views = [o for o in _outputs(cell) if WIDGET_VIEW in o.get("data", {})]
        if not views:
            continue
        # a widget is only ever an explorer (progress bars are plain HTML), and a saved
        # notebook reopened without a kernel shows the explorer's last figure as a PNG
        assert re.search(r"\btw\.\w+\(", cell.source), (
            f"{path.name} code cell {i}: a widget output that is not an explorer (a progress "
            "bar?) would read 'model not found' once saved")
        assert all("image/png" in o["data"] for o in views), (
            f"{path.name} code cell {i}: an explorer without its static PNG")


def test_answer_key_numbers_recompute(tcul_home):
    """notebooks/solutions/measure_answers.py recomputes the answer key's run-dependent
    numbers (here on smoke, in the home the notebooks above computed their runs in)."""
    import json

    script = NB_DIR / "solutions" / "measure_answers.py"
    if not script.is_file():  # an instructor's student copy has no solutions
        pytest.skip("notebooks/solutions/ is not here (a student copy)")
    env = {**os.environ, "TCUL_HOME": str(tcul_home), "MPLBACKEND": "Agg"}
    res = subprocess.run([sys.executable, str(script), "--profile", "smoke"], cwd=NB_DIR,
                         env=env, capture_output=True, text=True, timeout=600)
    assert res.returncode == 0, res.stderr[-3000:]
    numbers = json.loads(res.stdout)
    assert numbers and all(str(key)[:2].isdigit() for key in numbers), list(numbers)[:5]


#: Each standard runner on one notebook with explorers, exactly as a user types it (the
#: timeout is the only option given, and it is there to fail a hang, not to allow one).
STANDARD_RUNS = {
    "nbmake": ("01_data_and_temporal_continuity.ipynb",
               ["-m", "pytest", "-q", "-p", "no:cacheprovider", "--nbmake",
                f"--nbmake-timeout={CELL_TIMEOUT}", "{nb}"]),
    "nbconvert": ("04_reliable_sample_selection.ipynb",
                  ["-m", "jupyter", "nbconvert", "--to", "notebook", "--execute",
                   f"--ExecutePreprocessor.timeout={CELL_TIMEOUT}", "--output-dir", "{out}",
                   "{nb}"]),
    "papermill": ("07_the_whole_loop.ipynb",
                  ["-m", "papermill", "--execution-timeout", str(CELL_TIMEOUT), "{nb}",
                   "{out}/out.ipynb", "-p", "PROFILE", "smoke"]),
}


@pytest.mark.parametrize("tool", sorted(STANDARD_RUNS))
def test_standard_runners_execute_explorer_notebooks_unpatched(tool, tcul_home, tmp_path):
    name, argv = STANDARD_RUNS[tool]
    nb = NB_DIR / name
    env = {**os.environ, "TCUL_PROFILE": "smoke", "TCUL_HOME": str(tcul_home),
           "MPLBACKEND": "module://matplotlib_inline.backend_inline",
           "PATH": str(Path(sys.executable).parent) + os.pathsep + os.environ.get("PATH", "")}
    args = [a.format(nb=nb, out=tmp_path) for a in argv]
    res = subprocess.run([sys.executable, *args], cwd=NB_DIR, env=env, capture_output=True,
                         text=True, timeout=20 * CELL_TIMEOUT)
    assert res.returncode == 0, res.stdout[-3000:] + res.stderr[-3000:]
    if tool == "nbmake":
        assert "1 passed" in res.stdout
    else:
        done = nbformat.read(next(tmp_path.glob("*.ipynb")), as_version=4)
        outputs = [o for c in done.cells if c.cell_type == "code" for o in c.get("outputs", [])]
        assert any("image/png" in o.get("data", {}) for o in outputs)
        assert not any(o.get("output_type") == "error" for o in outputs)


def test_lab_plan_states_each_notebooks_estimate():
    """notebooks/README.md's plan gives every notebook the student time its header states."""
    from tcul_helpers.teaching.lab_plan import student_minutes

    plan = (NB_DIR / "README.md").read_text(encoding="utf-8")
    for path in NOTEBOOKS:
        row = next((line for line in plan.splitlines()
                    if re.match(rf"\| [^|]+ \| {path.name[:2]} ", line)), None)
        assert row is not None, f"the lab plan has no row for {path.name}"
        minutes = int(re.search(r"\| (\d+) min", row).group(1))
        assert minutes == student_minutes(nbformat.read(path, as_version=4))["core"], row
