"""Files under hostile conditions (issue 11): a kill at every write boundary of an iteration,
two writers in one folder, a damaged state file. Smoke profile.

A kill is injected with the test hook ``algorithm._COMMIT_HOOK``, called between the write
steps of an iteration's commit: it raises :class:`Killed`, a BaseException that no code of
the kit catches, so the files on disk are exactly what a SIGKILL at that instant leaves.
Kills *inside* one file's write are covered by the atomic writer's own tests.
"""

from __future__ import annotations

import contextlib
import io
import os
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import numpy as np
import pytest
import torch

from tcul_helpers import algorithm, cli, pipeline
from tcul_helpers.algorithm import CHECKPOINT, PENDING, STATE, TRACE, adapt, load_history
from tcul_helpers.atomic_files import atomic_writer, write_json, write_npz
from tcul_helpers.config import get_config
from tcul_helpers.errors import TCULError
from tcul_helpers.folder_lock import FolderBusyError, folder_lock

REPO = Path(__file__).resolve().parents[1]


class Killed(BaseException):
    """What the injected kill raises."""


@pytest.fixture(scope="module")
def world(tmp_path_factory):
    base = tmp_path_factory.mktemp("rel")
    cfg = get_config("smoke", source_root=str(base / "src"), target_root=str(base / "tgt"))
    source = pipeline.ensure_world(cfg, "source", progress=False)
    target = pipeline.ensure_world(cfg, "target", progress=False)
    model = pipeline.ensure_source_model(cfg, source, base / "source", progress=False)
    whole = base / "whole"
    adapt(model, target, cfg, whole, "cpu", progress=False)
    return cfg, target, model, whole


def _weights(run_dir: Path) -> dict[str, torch.Tensor]:
    blob = torch.load(run_dir / CHECKPOINT, map_location="cpu", weights_only=True)
    return blob["state_dict"]


def _same_run(a: Path, b: Path) -> None:
    ha, hb = load_history(a), load_history(b)
    assert hb["status"] == "complete"
    keys = ("iteration", "n_reliable", "n_pseudo_ids", "precision", "nmi", "mAP", "rank1", "loss")
    assert [[r.get(k) for k in keys] for r in hb["iterations"]] == [
        [r.get(k) for k in keys] for r in ha["iterations"]]
    for name in (STATE, TRACE):
        with np.load(a / name) as fa, np.load(b / name) as fb:
            assert sorted(fa.files) == sorted(fb.files)
            for k in fa.files:
                np.testing.assert_array_equal(fa[k], fb[k], err_msg=f"{name}:{k}")
    wa, wb = _weights(a), _weights(b)
    assert wa.keys() == wb.keys()
    assert all(torch.equal(wa[k], wb[k]) for k in wa)
    assert not [p for p in b.iterdir() if p.name in PENDING.values() or p.suffix == ".tmp"]


BOUNDARIES = ["staged", "recorded", f"promoted {CHECKPOINT}", f"promoted {STATE}",
              f"promoted {TRACE}"]


@pytest.mark.parametrize("iteration", [0, 2])
@pytest.mark.parametrize("step", BOUNDARIES)
def test_a_kill_at_any_commit_boundary_resumes_to_the_unbroken_run(world, tmp_path, monkeypatch,
                                                                   step, iteration):
    cfg, target, model, whole = world
    run_dir = tmp_path / "run"

    def kill(at: str, it: int) -> None:
        if (at, it) == (step, iteration):
            raise Killed(at)

    monkeypatch.setattr(algorithm, "_COMMIT_HOOK", kill)
    with pytest.raises(Killed):
        adapt(model, target, cfg, run_dir, "cpu", progress=False)
    history = run_dir / "history.json"
    recorded = len(load_history(run_dir)["iterations"]) if history.exists() else 0
    # before the commit point the history still names iteration k-1, after it k
    assert recorded == (iteration if step != "staged" else max(iteration - 1, 0))
    monkeypatch.setattr(algorithm, "_COMMIT_HOOK", lambda at, it: None)
    res = adapt(model, target, cfg, run_dir, "cpu", progress=False)
    assert res.status == "complete"
    _same_run(whole, run_dir)


def test_a_checkpoint_that_does_not_match_the_history_is_refused(world, tmp_path):
    cfg, target, model, _ = world
    run_dir = tmp_path / "run"
    adapt(model, target, cfg, run_dir, "cpu", progress=False, stop_after=1)
    with np.load(run_dir / STATE) as f:  # a state of another iteration, put there by hand
        arrays = {k: f[k] for k in f.files}
    write_npz(run_dir / STATE, **{**arrays, algorithm.STAMP: np.int64(2)})
    with pytest.raises(TCULError, match=r"holds iteration 2 but history.json records 1.*--fresh"):
        adapt(model, target, cfg, run_dir, "cpu", progress=False)
    assert len(load_history(run_dir)["iterations"]) == 1  # nothing computed was lost


def test_a_damaged_state_file_is_one_line_naming_it(world, tmp_path):
    cfg, target, model, _ = world
    run_dir = tmp_path / "run"
    adapt(model, target, cfg, run_dir, "cpu", progress=False, stop_after=1)
    (run_dir / STATE).write_bytes(b"not a zip file")
    with pytest.raises(TCULError, match=r"state.npz is unreadable.*--fresh"):
        adapt(model, target, cfg, run_dir, "cpu", progress=False)


# ------------------------------------------------------------------------- one writer
_HOLD = textwrap.dedent("""
    import sys, time
    from tcul_helpers.folder_lock import folder_lock
    with folder_lock(sys.argv[1], "run folder"):
        print("locked", flush=True)
        time.sleep(60)
""")


@contextlib.contextmanager
def _other_process_holds(folder: Path):
    proc = subprocess.Popen([sys.executable, "-c", _HOLD, str(folder)], cwd=REPO,
                            stdout=subprocess.PIPE, text=True)
    try:
        assert proc.stdout.readline().strip() == "locked"
        yield proc
    finally:
        proc.kill()
        proc.wait()


def test_a_second_writer_stops_with_one_line_naming_the_owner(world, tmp_path):
    cfg, target, model, _ = world
    run_dir = tmp_path / "run"
    with _other_process_holds(run_dir) as proc:
        with pytest.raises(FolderBusyError, match=rf"run folder .* pid {proc.pid} on "):
            adapt(model, target, cfg, run_dir, "cpu", progress=False)
        assert not (run_dir / "history.json").exists()  # it wrote nothing
        # the command line: one line, exit 2
        out, err = io.StringIO(), io.StringIO()
        with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
            code = cli.main(["adapt", "--profile", "smoke", "--quiet", "--out", str(run_dir),
                             "--set", f"source_root={cfg.source_root}",
                             "--set", f"target_root={cfg.target_root}",
                             "--runs", str(tmp_path / "runs")])
        assert code == 2 and len(err.getvalue().strip().splitlines()) == 1, err.getvalue()
        assert "is being written by pid" in err.getvalue()
    # a killed owner leaves no stale lock: the folder is free at once
    res = adapt(model, target, cfg, run_dir, "cpu", progress=False, stop_after=1)
    assert res.status == "stopped"


def test_the_lock_waits_for_its_owner_and_is_re_entrant(tmp_path):
    folder = tmp_path / "f"
    with _other_process_holds(folder) as proc:
        t0 = time.monotonic()
        with pytest.raises(FolderBusyError):
            with folder_lock(folder, wait=0.6, poll=0.1):
                pass
        assert time.monotonic() - t0 >= 0.5
        proc.kill()
        proc.wait()
        heard: list[str] = []
        with folder_lock(folder, wait=5, log=heard.append):  # free once the owner is gone
            with folder_lock(folder):  # the same process may take it again
                pass
        assert heard == []


# ------------------------------------------------------------------------- atomic writes
def test_an_interrupted_write_leaves_the_old_file_and_no_temporary(tmp_path):
    path = tmp_path / "h.json"
    write_json(path, {"v": 1})
    with pytest.raises(Killed):
        with atomic_writer(path, "w") as f:
            f.write('{"v": 2')  # half of the new file ...
            raise Killed("mid-write")  # ... and the process dies
    assert path.read_text() == '{\n "v": 1\n}\n'
    assert sorted(p.name for p in tmp_path.iterdir()) == ["h.json"]


def test_two_writers_of_one_file_never_mix(tmp_path):
    """Two processes rewrite one file 200 times each; every read sees one whole version."""
    path = tmp_path / "shared.json"
    write_json(path, {"writer": "none", "pad": ""})
    code = textwrap.dedent("""
        import sys
        from tcul_helpers.atomic_files import write_json
        for i in range(200):
            write_json(sys.argv[1], {"writer": sys.argv[2], "i": i, "pad": "x" * 20000})
    """)
    procs = [subprocess.Popen([sys.executable, "-c", code, str(path), w], cwd=REPO)
             for w in ("a", "b")]
    import json

    reads = 0
    while any(p.poll() is None for p in procs):
        data = json.loads(path.read_text())  # never a half-written file
        assert data["writer"] in ("none", "a", "b")
        reads += 1
    assert [p.returncode for p in procs] == [0, 0] and reads > 0
    assert json.loads(path.read_text())["i"] == 199
    assert sorted(p.name for p in tmp_path.iterdir()) == ["shared.json"]
    assert oct(os.stat(path).st_mode & 0o777) == oct(0o644 & ~_umask())


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


def test_two_processes_making_one_world_wait_and_reuse(tmp_path):
    root = tmp_path / "world"
    code = textwrap.dedent("""
        import json, sys
        from tcul_helpers.synthetic import make_world
        out = make_world(sys.argv[1], "target", 0, scale="smoke", progress=False)
        print(json.dumps({"reused": out["reused"], "images": out["images"]}))
    """)
    procs = [subprocess.Popen([sys.executable, "-c", code, str(root)], cwd=REPO,
                              stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
             for _ in range(2)]
    import json

    outs = [p.communicate(timeout=300) for p in procs]
    assert [p.returncode for p in procs] == [0, 0], [e for _, e in outs]
    reports = [json.loads(o) for o, _ in outs]
    assert sorted(r["reused"] for r in reports) == [False, True]  # one drew, one waited
    manifest = json.loads((root / "manifest.json").read_text())
    for split, folder in (("train", "bounding_box_train"), ("query", "query"),
                          ("gallery", "bounding_box_test")):
        on_disk = len(list((root / folder).glob("*.jpg")))
        assert on_disk == manifest["counts"][split]["images"] > 0
        assert all(r["images"][split] == on_disk for r in reports)


def test_a_source_model_of_other_settings_beside_a_current_record_is_retrained(world, tmp_path):
    cfg, _, _, _ = world
    from tcul_helpers.data import load_dataset
    from tcul_helpers.models import load_checkpoint, save_checkpoint

    source = load_dataset("synthetic", cfg.source_root)
    out = tmp_path / "source"
    pipeline.ensure_source_model(cfg, source, out, progress=False)
    # a kill between model.pt and source.json of a run with other settings leaves this:
    other, _ = load_checkpoint(out / "model.pt")
    save_checkpoint(out / "model.pt", other, {"stage": "source", "settings": {"lr": "other"}})
    heard: list[str] = []
    pipeline.ensure_source_model(cfg, source, out, progress=False, log=heard.append)
    assert any("trained with other settings" in h for h in heard), heard
    assert any(h.startswith("trained the source model") for h in heard)
    _, meta = load_checkpoint(out / "model.pt")
    heard.clear()
    pipeline.ensure_source_model(cfg, source, out, progress=False, log=heard.append)
    assert heard == [f"reusing the source model {out / 'model.pt'}"] and meta["settings"]["data"]


# ------------------------------------------------------------------ settings and structure
def _cli(*argv: str) -> tuple[int, str]:
    """Run the CLI in-process: (exit code, stderr)."""
    err = io.StringIO()
    with contextlib.redirect_stderr(err), contextlib.redirect_stdout(io.StringIO()):
        code = cli.main(list(argv))
    return code, err.getvalue()


@pytest.mark.parametrize("setting, message", [
    ("target_lr=0", "target_lr must be > 0"),
    ("source_lr=-1e-3", "source_lr must be > 0"),
    ("margin=-0.1", "margin (m of Eq. 4) must be >= 0"),
    ("source_margin=-1", "source_margin must be >= 0"),
    ("sim_threshold=1.5", "sim_threshold must be in [-1, 1]"),
    ("momentum=1", "momentum must be in [0, 1)"),
    ("random_erasing=2", "random_erasing must be in [0, 1]"),
    ("flip=-0.5", "flip must be in [0, 1]"),
    ("weight_decay=-1", "weight_decay must be >= 0"),
    ("lambda_c=1.5", "lambda_c (Eq. 7) must be in [0, 1]"),
    ("beta=0", "beta must be > 0 (it avoids division by zero in Eq. 6)"),
    ("kmeans_iters=0", "kmeans_iters must be >= 1"),
    ("target_lr=nan", "target_lr must be > 0"),
])
def test_every_bad_numeric_setting_stops_before_any_work(setting, message, tmp_path):
    code, err = _cli("adapt", "--profile", "smoke", "--set", setting,
                     "--runs", str(tmp_path / "runs"))
    assert code == 2
    assert message in err and f"--set {setting.split('=')[0]}=" in err
    assert len(err.strip().splitlines()) == 1 and "Traceback" not in err
    assert not (tmp_path / "runs").exists()  # nothing was started


def test_every_numeric_setting_has_a_declared_range():
    import dataclasses

    from tcul_helpers.config import Config

    for f in dataclasses.fields(Config):
        if f.type in ("int", "float"):
            assert f.metadata.get("valid") is not None, f"{f.name} has no Range"


def test_a_bad_tcul_profile_variable_is_named(monkeypatch):
    monkeypatch.setenv("TCUL_PROFILE", "clasroom")
    with pytest.raises(TCULError, match="environment variable TCUL_PROFILE='clasroom'"):
        get_config()
    code, err = _cli("config")
    assert code == 2 and "TCUL_PROFILE" in err and "Traceback" not in err


def test_one_fingerprint_and_one_atomic_writer():
    """What decides a result is declared once (field metadata) and hashed in one function;
    files are written atomically by one helper: grep finds one definition of each."""
    sources = {p: p.read_text() for p in (REPO / "tcul_helpers").rglob("*.py")}
    fps = [p.name for p, s in sources.items() if "def fingerprint(" in s]
    assert fps == ["config.py"]
    tmp_writers = [p.name for p, s in sources.items()
                   if "os.replace(" in s and p.name not in ("atomic_files.py", "algorithm.py")]
    assert tmp_writers == []  # algorithm.py only promotes already-written pending files
    for name in ("SOURCE_KEYS", "_comparable", "_IGNORED"):
        assert not any(name in s for s in sources.values()), name


def test_the_package_has_no_import_circle():
    """Module-level imports between the kit's modules form no cycle (lazy imports inside
    functions are not counted: they exist to keep optional dependencies optional)."""
    import ast

    pkg = REPO / "tcul_helpers"
    mods = {".".join(p.relative_to(pkg).with_suffix("").parts): p for p in pkg.rglob("*.py")}
    graph: dict[str, set[str]] = {}
    for name, path in mods.items():
        here = name.split(".")[:-1]
        deps: set[str] = set()
        for node in ast.parse(path.read_text()).body:
            if isinstance(node, ast.ImportFrom) and node.level:
                base = here[: len(here) - (node.level - 1)] if node.level > 1 else here
                target = ".".join([*base, *(node.module.split(".") if node.module else [])])
                for alias in node.names:
                    full = f"{target}.{alias.name}" if target else alias.name
                    for cand in (full, target):
                        cand = cand.removesuffix(".__init__")
                        if cand in mods or f"{cand}.__init__" in mods:
                            deps.add(cand if cand in mods else f"{cand}.__init__")
                            break
        graph[name] = deps - {name}
    assert "pipeline" in graph["sweeps"] and "config" in graph["pipeline"]  # the graph is real
    state: dict[str, int] = {}

    def visit(n: str, stack: list[str]) -> None:
        state[n] = 1
        for d in graph.get(n, ()):
            if state.get(d) == 1:
                raise AssertionError("import circle: " + " -> ".join([*stack, n, d]))
            if d not in state:
                visit(d, [*stack, n])
        state[n] = 2

    for n in graph:
        if n not in state:
            visit(n, [])
