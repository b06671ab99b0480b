"""A classroom home prepared once and shared read-only is read, from a notebook
(:class:`LabSession`) and from the command line, without any write; only missing work asks
for a writable folder, in the words of where the user is. A notebook can start a run over.
Smoke profile; the read-only case uses a real read-only bind mount (root, skipped where
the machine forbids mounts)."""

from __future__ import annotations

import contextlib
import io
import os
import shutil
import subprocess
from pathlib import Path

import numpy as np
import pytest

from tcul_helpers.experiment import cli, sweeps
from tcul_helpers.infra.errors import TCULError
from tcul_helpers.teaching.notebook_advice import HOME_FIX, notebook_message
from tcul_helpers.teaching.session import LabSession
from tcul_helpers.teaching.widgets import iteration_scrubber, sweep_explorer


@pytest.fixture(scope="module")
def home(tmp_path_factory) -> Path:
    """A finished smoke home: worlds, f_theta0, the three variants' runs, the lambda_fr
    sweep."""
    home = tmp_path_factory.mktemp("home")
    lab = LabSession("smoke", home=home, progress=False)
    for variant in ("tcul", "sul", "pul"):
        lab.run(variant)
    sweeps.run_sweeps(lab.cfg, sweeps.default_dir(lab.cfg, lab.runs_dir), progress=False,
                      only=["lambda_fr"], source_dir=lab.source_dir)
    return home


def _files(root: Path) -> dict[str, int]:
    return {str(p.relative_to(root)): p.stat().st_mtime_ns for p in root.rglob("*")
            if p.is_file()}


@pytest.fixture
def read_only(home, tmp_path):
    """``home`` bind-mounted read-only at another path (as a class folder is shared)."""
    where = tmp_path / "shared"
    where.mkdir()
    if subprocess.run(["mount", "--bind", str(home), str(where)],
                      capture_output=True).returncode != 0:
        pytest.skip("cannot bind-mount here (not root, or no mount permission)")
    try:
        subprocess.run(["mount", "-o", "remount,ro,bind", str(where)], check=True)
        yield where
    finally:
        subprocess.run(["umount", str(where)], capture_output=True)


def test_a_finished_home_shared_read_only_is_read_from_a_notebook(home, read_only):
    before = _files(home)
    lab = LabSession("smoke", home=read_only, progress=False)
    hist = lab.history("tcul")
    assert hist["status"] == "complete" and len(hist["iterations"]) == lab.cfg.n_iter
    trace = lab.trace("tcul")
    assert {"labels_1", "kept_1", "centers_0"} <= set(trace)
    assert lab.source_history()["loss"]
    assert lab.cached_history("sul")["status"] == "complete"
    assert lab.features().shape[0] == len(lab.target.train)
    # the explorers' data: the iteration scrubber and Fig. 4's sweep
    iteration_scrubber({v: lab.history(v) for v in ("tcul", "sul")}, trace)
    points = sweeps.load_sweeps(sweeps.default_dir(lab.cfg, lab.runs_dir), lab.cfg)
    assert len(points["lambda_fr"]) == 2
    sweep_explorer(points, cfg=lab.cfg)
    # missing work asks for a folder the notebook can name
    with pytest.raises(TCULError) as err:
        lab.run("tcul", lambda_fr=7)
    message = str(err.value)
    assert "read-only" in message and HOME_FIX in message, message
    assert "--out" not in message and "--runs" not in message
    assert _files(home) == before


def test_a_finished_home_shared_read_only_is_read_from_the_command_line(home, read_only):
    before = _files(home)

    def run(*argv: str) -> tuple[int, str, str]:
        out, err = io.StringIO(), io.StringIO()
        cwd = os.getcwd()
        os.chdir(read_only)  # the roots and runs/ resolve inside the shared home
        try:
            with contextlib.redirect_stderr(err), contextlib.redirect_stdout(out):
                code = cli.main([*argv, "--profile", "smoke", "--quiet"])
        finally:
            os.chdir(cwd)
        return code, out.getvalue(), err.getvalue()

    code, out, err = run("adapt")
    assert code == 0 and "status: complete" in out, err
    code, out, err = run("source")
    assert code == 0 and "reusing the source model" in out, err
    code, out, err = run("adapt", "--set", "lambda_fr=7")
    assert code == 2 and err.count("\n") == 1 and "read-only" in err, err
    assert "(--out / --runs)" in err and "Traceback" not in err
    assert _files(home) == before


def test_a_notebook_starts_a_run_over_after_its_history_was_deleted(home, tmp_path):
    mine = tmp_path / "mine"
    shutil.copytree(home, mine, ignore=shutil.ignore_patterns("*.lock", ".lock"))
    lab = LabSession("smoke", home=mine, progress=False)
    (lab.run_dir("tcul") / "history.json").write_text("{damaged")
    with pytest.raises(TCULError, match=r"start the run over \(lab.run\('tcul', fresh=True\)\)"):
        lab.history("tcul")
    (lab.run_dir("tcul") / "history.json").unlink()  # what a user may do instead
    lab = LabSession("smoke", home=mine, progress=False)
    with pytest.raises(TCULError) as err:
        lab.history("tcul")
    assert "lab.run('tcul', fresh=True)" in str(err.value) and "--fresh" not in str(err.value)
    result = lab.run("tcul", fresh=True)
    assert result.status == "complete" and len(result.history) == lab.cfg.n_iter
    assert lab.history("tcul")["status"] == "complete"


@pytest.mark.parametrize("cli_text, notebook_text", [
    ("choose a folder you can write to (--out / --runs)", f"({HOME_FIX})"),
    ("choose another output folder (--out DIR), which keeps that run", f"({HOME_FIX})"),
    ("start the run over (--fresh)", "(lab.run('sul', fresh=True))"),
    ("choose another value (--set lambda_fr=...)", "(LabSession(..., lambda_fr=...))"),
    ("or set imagenet_init=false (--set imagenet_init=false)",
     "(LabSession(..., imagenet_init=False))"),
    ("needs frame ids (--set selection=similarity)", '(LabSession(..., selection="similarity"))'),
])
def test_a_notebook_reads_each_fix_in_its_own_words(cli_text, notebook_text):
    said = notebook_message(f"something failed: {cli_text}", "sul")
    assert notebook_text in said and "--" not in said, said


def test_a_students_parts_are_kept_in_their_own_folder_when_the_home_is_read_only(
        read_only, tmp_path, monkeypatch):
    from tcul_helpers.teaching.exercises.my_parts import keep_part, load_parts

    def my_assign(features, centers):
        f = features / np.linalg.norm(features, axis=1, keepdims=True)
        c = centers / np.linalg.norm(centers, axis=1, keepdims=True)
        return np.argmax(f @ c.T, axis=1)

    monkeypatch.setenv("HOME", str(tmp_path / "student"))
    kept = keep_part("assign", my_assign, home=read_only)
    assert kept == tmp_path / "student" / ".tcul" / "my_parts" / "assign.py"
    parts = load_parts(home=read_only)
    assert parts["assign"].whose == "yours" and parts["select_temporal"].whose == "kit"
    assert not (read_only / "my_parts").exists()


def test_the_whole_loop_notebook_runs_on_a_read_only_shared_home(home, read_only, tmp_path,
                                                                monkeypatch):
    """Notebook 07 (the student's loop, the three variants, the ranked lists) top to bottom
    on the shared home, with nothing written there."""
    from tcul_helpers.teaching.notebook_runner import execute_notebook

    before = _files(home)
    (tmp_path / "student").mkdir()
    monkeypatch.setenv("HOME", str(tmp_path / "student"))
    notebook = Path(__file__).resolve().parents[1] / "notebooks" / "07_the_whole_loop.ipynb"
    execute_notebook(notebook, "smoke", home=read_only, timeout=300)
    assert _files(home) == before
