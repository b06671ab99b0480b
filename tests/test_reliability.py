"""Files under hostile conditions (issue 11): a kill at every write boundary of an iteration,
two writers in one folder, a damaged state file. Smoke profile.

A kill is injected with the test hook ``run_store._COMMIT_HOOK``, called between the write
steps of an iteration's commit: it raises :class:`Killed`, a BaseException that no code of
the kit catches, so the files on disk are exactly what a SIGKILL at that instant leaves.
Kills *inside* one file's write are covered by the atomic writer's own tests.
"""

from __future__ import annotations

import contextlib
import io
import json
import os
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import numpy as np
import pytest
import torch

from tcul_helpers.experiment import cli, pipeline, run_store
from tcul_helpers.experiment.run_store import CHECKPOINT, PENDING, STATE, TRACE, load_history
from tcul_helpers.experiment.runner import adapt
from tcul_helpers.infra.atomic_files import atomic_writer, write_json, write_npz
from tcul_helpers.infra.errors import TCULError
from tcul_helpers.infra.folder_lock import FolderBusyError, folder_lock
from tcul_helpers.settings.config import get_config

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

    monkeypatch.setattr(run_store, "_COMMIT_HOOK", kill)
    with pytest.raises(Killed):
        adapt(model, target, cfg, run_dir, "cpu", progress=False)
    history = run_dir / "history.json"
    recorded = len(load_history(run_dir)["iterations"]) if history.exists() else 0
    # before the commit point the history still names iteration k-1, after it k
    assert recorded == (iteration if step != "staged" else max(iteration - 1, 0))
    monkeypatch.setattr(run_store, "_COMMIT_HOOK", lambda at, it: None)
    res = adapt(model, target, cfg, run_dir, "cpu", progress=False)
    assert res.status == "complete"
    _same_run(whole, run_dir)


def test_a_checkpoint_that_does_not_match_the_history_is_refused(world, tmp_path):
    cfg, target, model, _ = world
    run_dir = tmp_path / "run"
    adapt(model, target, cfg, run_dir, "cpu", progress=False, stop_after=1)
    with np.load(run_dir / STATE) as f:  # a state of another iteration, put there by hand
        arrays = {k: f[k] for k in f.files}
    write_npz(run_dir / STATE, **{**arrays, run_store.STAMP: np.int64(2)})
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
    from tcul_helpers.infra.folder_lock import folder_lock
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
        from tcul_helpers.infra.atomic_files import write_json
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
        from tcul_helpers.data.synthetic import make_world
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
    from tcul_helpers.data.readers import load_dataset
    from tcul_helpers.training.models import load_checkpoint, save_checkpoint

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

    from tcul_helpers.settings.config import Config

    for f in dataclasses.fields(Config):
        if f.type in ("int", "float"):
            assert f.metadata.get("valid") is not None, f"{f.name} has no Range"


def test_a_configuration_saved_by_an_older_kit_still_loads(tmp_path):
    """A setting the kit retired (``extra``, which decided nothing) in a saved config.json
    is ignored, so runs of older kits stay readable; any other unknown key is refused."""
    from tcul_helpers.settings.config import Config, fingerprint

    cfg = get_config("smoke")
    path = tmp_path / "config.json"
    write_json(path, {**cfg.to_dict(), "extra": {}})
    assert fingerprint(Config.load(path)) == fingerprint(cfg)
    write_json(path, {**cfg.to_dict(), "extras": {}})
    with pytest.raises(TCULError, match="not a kit configuration"):
        Config.load(path)


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
                   if "os.replace(" in s and p.name not in ("atomic_files.py", "run_store.py")]
    assert tmp_writers == []  # run_store.py only promotes already-written pending files
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
    assert ("experiment.pipeline" in graph["experiment.sweeps"]  # the graph is real
            and "settings.config" in graph["experiment.pipeline"])
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


# ------------------------------------------------------------------ damaged files
def _finished_copy(whole: Path, tmp_path: Path) -> Path:
    import shutil

    run_dir = tmp_path / "run"
    shutil.copytree(whole, run_dir, ignore=shutil.ignore_patterns(".lock"))
    return run_dir


def _adapt_cli(cfg, run_dir: Path, tmp_path: Path, *extra: str) -> tuple[int, str]:
    return _cli("adapt", "--profile", "smoke", "--quiet", "--out", str(run_dir),
                "--set", f"source_root={cfg.source_root}",
                "--set", f"target_root={cfg.target_root}",
                "--runs", str(tmp_path / "runs"), *extra)


@pytest.mark.parametrize("name, content, message", [
    ("history.json", b"[]", r"history.json is damaged \(a list, not a run record\)"),
    ("history.json", b"{}", r"history.json is damaged \(no list of iterations\)"),
    ("history.json", b"\xff\xfe\x00garbage", r"history.json is unreadable \(UnicodeDecodeError\)"),
    ("history.json", b'{"iterations": [{"iteration": 2}]}',
     r"iteration record 1 is missing or misnumbered"),
    ("history.json", b'{"iterations": [], "baseline": [1]}', r"wrong type"),
    ("config.json", b"\xff\xfe\x00garbage", r"config.json is unreadable \(UnicodeDecodeError\)"),
    ("config.json", b'{"lr": 1}', r"config.json is not a kit configuration"),
    ("config.json", b"[1, 2]", r"config.json is not a kit configuration"),
    ("trace.npz", b"PK\x03\x04 truncated", r"trace.npz is unreadable"),
    ("state.npz", b"not a zip file", r"state.npz is unreadable: it is damaged or not the kit's"),
])
def test_a_damaged_run_file_is_one_line_and_nothing_else_is_touched(world, tmp_path, name,
                                                                      content, message):
    cfg, target, model, whole = world
    run_dir = _finished_copy(whole, tmp_path)
    (run_dir / name).write_bytes(content)
    kept = {p.name: p.read_bytes() for p in run_dir.iterdir() if p.is_file()}
    with pytest.raises(TCULError, match=message + r".*--fresh"):
        adapt(model, target, cfg, run_dir, "cpu", progress=False)
    code, err = _adapt_cli(cfg, run_dir, tmp_path)
    assert code == 2 and len(err.strip().splitlines()) == 1 and "Traceback" not in err, err
    assert "allow_pickle" not in err
    # nothing already computed was lost: every file is as it was
    assert {p.name: p.read_bytes() for p in run_dir.iterdir()
            if p.is_file() and p.name != ".lock"} == kept


def test_a_damaged_source_record_retrains_instead_of_failing(world, tmp_path):
    cfg, _, _, _ = world
    source = pipeline.ensure_world(cfg, "source", progress=False)
    out = tmp_path / "src"
    pipeline.ensure_source_model(cfg, source, out, progress=False)
    (out / "source.json").write_bytes(b"\xff\xfe not json")
    messages: list[str] = []
    pipeline.ensure_source_model(cfg, source, out, progress=False, log=messages.append)
    assert messages[0].startswith("trained")  # recomputed, not a traceback
    assert json.loads((out / "source.json").read_text())["settings"]


def test_a_damaged_cache_of_the_demo_is_computed_again(tmp_path):
    from tcul_helpers.infra.atomic_files import read_json_cache

    path = tmp_path / "point.json"
    assert read_json_cache(path) is None  # missing
    for content in (b"\xff\xfe", b"[1]", b"{"):
        path.write_bytes(content)
        assert read_json_cache(path) is None
    path.write_text('{"key": 1}')
    assert read_json_cache(path) == {"key": 1}


# ------------------------------------------------------------------ output folders
def test_an_output_folder_that_is_a_file_is_refused_before_work(world, tmp_path):
    cfg, _, _, _ = world
    out = tmp_path / "out"
    out.write_text("my notes")
    for argv in (["source", "--out", str(out)], ["adapt", "--out", str(out)],
                 ["demo", "--out", str(out)], ["source", "--runs", str(out)]):
        code, err = _cli(argv[0], "--profile", "smoke", "--quiet", *argv[1:],
                         "--set", f"source_root={cfg.source_root}",
                         "--set", f"target_root={cfg.target_root}")
        assert code == 2 and "is a file, not a folder" in err, (argv, err)
        assert len(err.strip().splitlines()) == 1
    assert out.read_text() == "my notes"


def _refuse_writes_in(monkeypatch, folder: Path, code: int) -> None:
    """Simulate a read-only or full folder: every temporary file made in it fails."""
    import tempfile

    real = tempfile.mkstemp

    def mkstemp(*args, dir=None, **kwargs):
        if dir is not None and Path(dir).resolve().is_relative_to(folder.resolve()):
            raise OSError(code, os.strerror(code))
        return real(*args, dir=dir, **kwargs)

    monkeypatch.setattr(tempfile, "mkstemp", mkstemp)


@pytest.mark.parametrize("code, message", [
    (30, "choose a folder you can write to (--out / --runs)"),  # EROFS
    (13, "choose a folder you can write to (--out / --runs)"),  # EACCES
    (28, "free some disk space"),  # ENOSPC
])
def test_an_unwritable_output_folder_stops_before_training(world, tmp_path, monkeypatch,
                                                           code, message):
    cfg, _, _, _ = world
    runs = tmp_path / "shared"
    runs.mkdir()
    _refuse_writes_in(monkeypatch, runs, code)
    t0 = time.perf_counter()
    code_, err = _cli("source", "--profile", "smoke", "--quiet", "--runs", str(runs),
                      "--set", f"source_root={cfg.source_root}",
                      "--set", f"target_root={cfg.target_root}")
    assert code_ == 2 and message in err and len(err.strip().splitlines()) == 1, err
    assert time.perf_counter() - t0 < 5  # refused before any training
    assert list(runs.iterdir()) == []


def test_too_little_free_space_is_refused_before_work(tmp_path, monkeypatch):
    import shutil

    from tcul_helpers.infra import atomic_files

    monkeypatch.setattr(shutil, "disk_usage", lambda p: shutil._ntuple_diskusage(10, 9, 1))
    with pytest.raises(atomic_files.WriteError, match="has 0 MB free but the run needs about"):
        atomic_files.check_writable(tmp_path, need_bytes=50 * 2**20)


def test_a_full_disk_during_a_write_keeps_the_old_file_and_no_temporary(tmp_path, monkeypatch):
    from tcul_helpers.infra import atomic_files

    path = tmp_path / "history.json"
    write_json(path, {"old": 1})

    def fsync(fd):
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(atomic_files.os, "fsync", fsync)
    with pytest.raises(atomic_files.WriteError, match="the disk is full: free some disk space"):
        write_json(path, {"new": 2})
    assert json.loads(path.read_text()) == {"old": 1}
    assert [p.name for p in tmp_path.iterdir()] == ["history.json"]


def test_a_finished_run_in_a_read_only_folder_is_read_without_writing(world, tmp_path,
                                                                     monkeypatch):
    cfg, target, model, whole = world
    run_dir = _finished_copy(whole, tmp_path)
    before = {p.name: p.stat().st_mtime_ns for p in run_dir.iterdir()}
    _refuse_writes_in(monkeypatch, run_dir, 30)
    res = adapt(model, target, cfg, run_dir, "cpu", progress=False)
    assert res.status == "complete" and len(res.history) == cfg.n_iter
    assert {p.name: p.stat().st_mtime_ns for p in run_dir.iterdir()} == before
    # an unfinished run there cannot go on: one line, nothing lost
    with pytest.raises(TCULError, match="choose a folder you can write to"):
        adapt(model, target, cfg.replace(n_iter=cfg.n_iter + 1), run_dir, "cpu",
              progress=False)
    assert {p.name: p.stat().st_mtime_ns for p in run_dir.iterdir()} == before


def _mount_tmpfs(where: Path, size: str) -> bool:
    where.mkdir()
    return subprocess.run(["mount", "-t", "tmpfs", "-o", f"size={size}", "tmpfs", str(where)],
                          capture_output=True).returncode == 0


def test_a_real_read_only_mount_and_a_real_full_disk(world, tmp_path):
    """The same on a real file system where the machine allows a tmpfs mount (root)."""
    import shutil

    cfg, target, model, whole = world
    mnt = tmp_path / "mnt"
    if not _mount_tmpfs(mnt, "64k"):
        pytest.skip("cannot mount a tmpfs here (not root, or no mount permission)")
    try:
        code, err = _cli("source", "--profile", "smoke", "--quiet", "--runs", str(mnt),
                         "--set", f"source_root={cfg.source_root}",
                         "--set", f"target_root={cfg.target_root}")
        assert code == 2 and "free some disk space" in err, err  # 64 KB < two checkpoints
    finally:
        subprocess.run(["umount", str(mnt)], capture_output=True)
    ro = tmp_path / "ro"
    if not _mount_tmpfs(ro, "64m"):
        pytest.skip("cannot mount a second tmpfs")
    try:
        shutil.copytree(whole, ro / "run", ignore=shutil.ignore_patterns(".lock"))
        subprocess.run(["mount", "-o", "remount,ro", str(ro)], check=True)
        code, err = _adapt_cli(cfg, ro / "run", tmp_path)  # finished: read, nothing written
        assert code == 0, err
        code, err = _adapt_cli(cfg, ro / "run", tmp_path, "--iterations", "3")
        assert code == 2 and "read-only" in err and "Traceback" not in err, err
        code, err = _adapt_cli(cfg, ro / "other", tmp_path)
        assert code == 2 and "read-only" in err, err
    finally:
        subprocess.run(["umount", str(ro)], capture_output=True)


# ------------------------------------------------------------------ checkpoints and worlds
def test_evaluate_uses_the_checkpoints_input_size_and_refuses_a_contradiction(world, tmp_path):
    from tcul_helpers.training.models import save_checkpoint

    cfg, _, model, _ = world
    ckpt = save_checkpoint(tmp_path / "big.pt", model, input_size=(64, 32))
    roots = ["--set", f"source_root={cfg.source_root}", "--set", f"target_root={cfg.target_root}"]
    code, err = _cli("evaluate", str(ckpt), "--profile", "smoke", "--quiet", *roots,
                     "--set", "height=32", "--set", "width=16")
    assert code == 2 and "was trained at 64x32 but --set asks for 32x16" in err, err
    code, err = _cli("evaluate", str(ckpt), "--profile", "smoke", "--quiet", *roots)
    assert code == 0 and "using the checkpoint's input size 64x32" in err, err
    code, err = _cli("evaluate", str(tmp_path), "--profile", "smoke", "--quiet", *roots)
    assert code == 2 and "is a folder, not a checkpoint file: name one of its files (big.pt)" \
        in err, err


def test_a_damaged_world_names_the_switch_that_repairs_it_and_the_switch_works(tmp_path):
    from tcul_helpers.data.synthetic import make_world

    root = tmp_path / "world"
    make_world(root, "target", 0, scale="smoke", progress=False)
    images = sorted((root / "bounding_box_train").iterdir())
    (root / "manifest.json").write_bytes(b"\x00\xff half a manifest")
    code, err = _cli("world", "--profile", "smoke", "--preset", "target", "--quiet",
                     "--out", str(root))
    assert code == 2 and "damaged or outdated manifest.json" in err, err
    assert "`python -m tcul_helpers world --overwrite`" in err and "Python:" not in err
    assert sorted((root / "bounding_box_train").iterdir()) == images  # nothing deleted
    code, err = _cli("world", "--profile", "smoke", "--preset", "target", "--quiet",
                     "--out", str(root), "--overwrite")
    assert code == 0, err
    assert json.loads((root / "manifest.json").read_text())["seed"] == 0
    # a missing image: the damaged world is named, with the same way out
    images[0].unlink()
    code, err = _cli("world", "--profile", "smoke", "--preset", "target", "--quiet",
                     "--out", str(root))
    assert code == 2 and "is damaged" in err and "world --overwrite" in err, err


@pytest.mark.parametrize("stage", ["marker", "chunk", "images", "manifest"])
def test_a_kill_while_a_world_is_written_leaves_no_half_world(tmp_path, monkeypatch, stage):
    """A kill after any write step of world generation: the next call never reuses the
    half-written world, and regenerates it byte for byte."""
    import hashlib

    from tcul_helpers.data.synthetic import make_world
    from tcul_helpers.data.synthetic import world as world_module

    def digest(root: Path) -> dict[str, str]:
        return {str(p.relative_to(root)): hashlib.sha1(p.read_bytes()).hexdigest()
                for p in sorted(root.rglob("*")) if p.is_file() and p.name != ".lock"}

    whole = tmp_path / "whole"
    make_world(whole, "target", 0, scale="smoke", progress=False, workers=1)

    def kill(at: str) -> None:
        if at == stage:
            raise Killed(at)

    root = tmp_path / "w"
    monkeypatch.setattr(world_module, "_WRITE_HOOK", kill)
    with pytest.raises(Killed):
        make_world(root, "target", 0, scale="smoke", progress=False, workers=1)
    monkeypatch.setattr(world_module, "_WRITE_HOOK", lambda at: None)
    assert (root / world_module.MARKER).exists()  # the half world is flagged as such
    again = make_world(root, "target", 0, scale="smoke", progress=False, workers=1)
    assert again["reused"] is False
    assert digest(root) == digest(whole)


# --- dataset names and weights advice
@pytest.mark.parametrize("folder, bad, needles", [
    ("bounding_box_test", "0000_c9s1_000005_01.jpg",
     ["names camera c9, but Market-1501 has cameras c1-c6", "move it out of the dataset folder"]),
    ("query", "0000_c1s1_000005_00.jpg",
     ["names pid 0000, a distractor", "none in query", "move it to bounding_box_test"]),
])
def test_a_dataset_name_against_its_facts_is_one_line_on_the_command_line(tmp_path, folder, bad,
                                                                           needles):
    from test_data import FOLDERS, MARKET, make_folders

    splits = {f: list(MARKET[f]) + ([bad] if f == folder else []) for f in FOLDERS}
    root = make_folders(tmp_path / "market", splits)
    code, err = _cli("world", "--stats", "--dataset", "market1501", "--out", str(root),
                     "--profile", "smoke")
    lines = err.strip().splitlines()
    assert code == 2 and len(lines) == 1 and lines[0].startswith("error: "), err
    assert str(root.resolve() / folder / bad) in lines[0]
    for needle in needles:
        assert needle in lines[0], lines[0]


def test_a_source_dataset_of_one_identity_is_one_line_naming_the_fix(tmp_path):
    from test_data import FOLDERS, MARKET, make_folders

    splits = {f: list(MARKET[f]) for f in FOLDERS}
    splits["bounding_box_train"] = [f"0002_c{c}s1_00010{k}_01.jpg" for c in (1, 2)
                                    for k in range(4)]
    root = make_folders(tmp_path / "one", splits)
    code, err = _cli("source", "--profile", "smoke", "--set", "source=market1501",
                     "--set", f"source_root={root}", "--runs", str(tmp_path / "runs"), "--quiet")
    lines = err.strip().splitlines()
    assert code == 2 and len(lines) == 1, err
    assert lines[0] == (
        "error: source training: 8 images in 1 identity, but the source dataset needs at "
        "least 2 identities (a triplet needs a positive and a negative): use another source "
        "dataset (--set source=NAME --set source_root=DIR)")


@pytest.mark.parametrize("n_images, n_ids, switches", [
    (10, 4, "e.g. --set batch_instances=2"),  # 4 x 2 fills
    (6, 3, "e.g. --set batch_instances=2 --set batch_ids=3 (a new batch_ids also trains the "
           "source model again)"),
])
def test_a_batch_that_fine_tuning_cannot_fill_names_the_switches_that_fit(tmp_path, n_images,
                                                                           n_ids, switches):
    from test_data import write_image

    from tcul_helpers.data.records import ImageRecord
    from tcul_helpers.training.loops import TooFewSamplesError, finetune
    from tcul_helpers.training.models import build_model

    cfg = get_config("smoke", batch_ids=4, batch_instances=4, num_workers=0)
    records = [ImageRecord(str(write_image(tmp_path / f"{k}.jpg")), k % n_ids, 1, k, k % n_ids)
               for k in range(n_images)]
    labels = np.arange(n_images) % n_ids
    with pytest.raises(TooFewSamplesError) as err:
        finetune(build_model("compact", 0, 8), records, labels, cfg, "cpu", progress=False)
    assert str(err.value) == (
        f"fine-tuning: {n_images} images in {n_ids} identities, but one batch of batch_ids x "
        f"batch_instances = 4x4 needs 16 images: lower the batch, {switches}")
    # the switches named do fill a batch
    p, m = (3, 2) if n_images == 6 else (4, 2)
    fitted = cfg.replace(batch_ids=p, batch_instances=m, target_epochs=1)
    finetune(build_model("compact", 0, 8), records, labels, fitted, "cpu", progress=False)
    # one pseudo-identity: no batch can do; the fix is a looser selection
    with pytest.raises(TooFewSamplesError, match=r"^fine-tuning: .* needs at least 2 identities"
                       r".*the selection kept too few.*--set singletons=replace\)$"):
        finetune(build_model("compact", 0, 8), records, np.zeros(n_images, dtype=int), cfg,
                 "cpu", progress=False)


def test_evaluating_a_file_that_is_no_checkpoint_never_advises_deleting_it(tmp_path):
    from test_data import write_image

    photo = write_image(tmp_path / "holiday.jpg")
    code, err = _cli("evaluate", str(photo), "--profile", "smoke", "--quiet")
    lines = err.strip().splitlines()
    assert code == 2 and len(lines) == 1, err
    assert lines[0] == (
        f"error: {photo} is not a kit checkpoint (torch cannot load it: UnpicklingError): pass "
        "a .pt file the kit wrote, e.g. runs/<profile>/seed<S>/source/model.pt or "
        "runs/<profile>/seed<S>/tcul/model_last.pt")
    assert photo.read_bytes()[:2] == b"\xff\xd8"  # untouched
    # a damaged .pt file may be the kit's own: train it again, still never delete
    damaged = tmp_path / "runs" / "smoke" / "seed0" / "tcul" / "model_last.pt"
    damaged.parent.mkdir(parents=True)
    damaged.write_bytes(b"\x80\x02 half a checkpoint")
    code, err = _cli("evaluate", str(damaged), "--profile", "smoke", "--quiet")
    lines = err.strip().splitlines()
    assert code == 2 and len(lines) == 1, err
    assert f"checkpoint {damaged} is corrupt or not a torch file" in lines[0]
    assert "train it again (`adapt --fresh` for a run's model_last.pt" in lines[0]
    assert "delete" not in lines[0] and "delete" not in err
