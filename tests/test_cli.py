"""The command line, run in-process with the smoke profile; everything is written to tmp."""

from __future__ import annotations

import contextlib
import dataclasses
import io
import json
import os
import subprocess
import sys
import textwrap
import time
import types
from pathlib import Path

import pytest

from tcul_helpers.data.readers import load_dataset
from tcul_helpers.experiment import cli
from tcul_helpers.settings.config import Config
from tcul_helpers.training.models import build_model, save_checkpoint

REPO = Path(__file__).resolve().parents[1]
COMMANDS = ("world", "source", "adapt", "evaluate", "sweep", "config", "demo", "sweeps")


def run(*argv: str) -> tuple[int, str, str]:
    """``cli.main(argv)`` with stdout and stderr captured: (exit code, stdout, stderr)."""
    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        code = cli.main(list(argv))
    return code, out.getvalue(), err.getvalue()


@pytest.fixture(scope="module")
def base(tmp_path_factory) -> Path:
    return tmp_path_factory.mktemp("cli")


@pytest.fixture(scope="module")
def common(base: Path) -> list[str]:
    """Smoke profile, worlds and runs under tmp, no progress bars."""
    return ["--profile", "smoke", "--set", f"source_root={base / 'worlds' / 'source'}",
            "--set", f"target_root={base / 'worlds' / 'target'}",
            "--runs", str(base / "runs"), "--quiet"]


@pytest.fixture(scope="module")
def adapted(base: Path, common: list[str]) -> tuple[Path, str]:
    """One smoke TCUL run (2 iterations): its folder and the command's stdout."""
    code, out, err = run("adapt", "--variant", "tcul", *common)
    assert code == 0, err
    return base / "runs" / "smoke" / "seed0" / "tcul", out


def assert_one_line_error(code: int, err: str, *needles: str) -> None:
    assert code == 2
    lines = err.strip().splitlines()
    assert len(lines) == 1, err
    assert lines[0].startswith("error: ")
    for needle in needles:
        assert needle in lines[0], lines[0]


# ------------------------------------------------------------------------------- help
def test_top_level_help_names_the_stages_and_commands():
    code, out, _ = run("--help")
    assert code == 0
    assert "Temporal Continuity" in out and "examples:" in out
    for word in (*COMMANDS, "Eq. 3", "f_theta0", "smoke", "classroom", "paper"):
        assert word in out, word


@pytest.mark.parametrize("command, words", [
    ("world", ["--preset", "--knob", "crowd_density"]),
    ("source", ["--evaluate", "f_theta0"]),
    ("adapt", ["--variant", "--iterations", "--fresh", "selection=none", "pul"]),
    ("evaluate", ["CHECKPOINT", "--json", "mAP"]),
    ("sweep", ["--param", "--values", "crowd_density", "sweeps"]),
    ("config", ["--list", "JSON"]),
    ("demo", ["--fresh", "report"]),
    ("sweeps", ["--only", "lambda_fr"]),
])
def test_subcommand_help(command: str, words: list[str]):
    code, out, _ = run(command, "--help")
    assert code == 0
    for word in (*words, "--profile", "--set", "--seed", "--device", "--out", "--quiet",
                 "examples:", f"python -m tcul_helpers {command}"):
        assert word in out, word


def test_python_m_help_in_a_subprocess():
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    proc = subprocess.run([sys.executable, "-m", "tcul_helpers", "--help"], cwd=REPO, env=env,
                          capture_output=True, text=True, timeout=60)
    assert proc.returncode == 0, proc.stderr
    assert "usage: python -m tcul_helpers" in proc.stdout and "adapt" in proc.stdout


# ------------------------------------------------------------------------------ config
def test_config_prints_json_with_overrides(common: list[str]):
    code, out, err = run("config", *common, "--set", "lambda_fr=50", "--set", "beta=1e-5",
                         "--seed", "3", "--device", "cpu")
    assert code == 0, err
    data = json.loads(out)
    assert data["profile"] == "smoke"
    assert data["lambda_fr"] == 50 and data["beta"] == 1e-5
    assert data["seed"] == 3 and data["device"] == "cpu"
    assert data["n_clusters"] == 12  # the smoke profile's K
    assert set(data) == {f.name for f in dataclasses.fields(Config)}


def test_config_list_and_profile_from_environment(monkeypatch):
    monkeypatch.setenv("TCUL_PROFILE", "smoke")
    code, out, _ = run("config", "--list")
    assert code == 0
    rows = dict(line.split(None, 1) for line in out.strip().splitlines())
    assert set(rows) == {f.name for f in dataclasses.fields(Config)}
    assert json.loads(rows["profile"]) == "smoke" and json.loads(rows["arch"]) == "compact"


# ------------------------------------------------------------------------------- world
def test_world_writes_both_worlds_and_prints_summaries(base: Path, common: list[str]):
    code, out, err = run("world", *common)
    assert code == 0, err
    for preset in ("source", "target"):
        manifest = json.loads((base / "worlds" / preset / "manifest.json").read_text())
        assert manifest["preset"] == preset and manifest["scale"] == "smoke"
        counts = manifest["counts"]
        assert f"{preset} world (smoke, seed 0)" in out
        assert (f"images: train {counts['train']['images']}, query {counts['query']['images']}"
                f", gallery {counts['gallery']['images']}") in out
    assert "cameras: 4" in out and "time span:" in out


def test_world_with_a_knob_into_its_own_folder(base: Path, adapted, common: list[str]):
    code, _, err = run("world", *common, "--preset", "target", "--knob", "crowd_density=4")
    assert_one_line_error(code, err, "holds another synthetic world", "--overwrite")
    root = base / "crowded"
    code, out, err = run("world", *common, "--preset", "target", "--out", str(root),
                         "--knob", "crowd_density=4", "--knob", "transit_frames=30,160")
    assert code == 0, err
    manifest = json.loads((root / "manifest.json").read_text())
    assert manifest["knobs"]["crowd_density"] == 4.0
    assert manifest["knobs"]["transit_frames"] == [30, 160]
    assert str(root) in out and "source world" not in out


# ------------------------------------------------------------------------- adapt, evaluate
def test_adapt_writes_two_iterations_and_prints_the_table(adapted: tuple[Path, str]):
    run_dir, out = adapted
    history = json.loads((run_dir / "history.json").read_text())
    assert history["status"] == "complete"
    assert [r["iteration"] for r in history["iterations"]] == [1, 2]
    assert (run_dir / "model_last.pt").is_file()
    assert (run_dir.parent / "source" / "model.pt").is_file()
    lines = out.splitlines()
    header = next(i for i, line in enumerate(lines)
                  if line.split()[:2] == ["iteration", "reliable"])
    assert lines[header].split() == ["iteration", "reliable", "pseudo-ids", "precision", "NMI",
                                     "mAP", "rank-1"]
    last = lines[header + 3].split()
    final = history["iterations"][-1]
    assert last[:3] == ["2", str(final["n_reliable"]), str(final["n_pseudo_ids"])]
    assert last[5] == f"{final['mAP']:.1f}"
    assert f"history: {run_dir / 'history.json'}" in out


def test_evaluate_prints_the_scores_of_the_run(adapted: tuple[Path, str], common: list[str]):
    run_dir, _ = adapted
    final = json.loads((run_dir / "history.json").read_text())["iterations"][-1]
    ckpt = str(run_dir / "model_last.pt")
    code, out, err = run("evaluate", ckpt, *common)
    assert code == 0, err
    assert "mAP" in out and "rank-1" in out
    assert f"{final['mAP']:.1f}" in out.splitlines()[-1]
    code, out, err = run("evaluate", ckpt, *common, "--json")
    assert code == 0, err
    data = json.loads(out)
    assert data["meta"]["iteration"] == 2
    assert data["mAP"] == pytest.approx(final["mAP"], abs=0.05)
    assert data["rank1"] == pytest.approx(final["rank1"], abs=0.05)


def test_adapt_without_selection_keeps_every_image(base: Path, adapted, common: list[str]):
    code, out, err = run("adapt", *common, "--set", "selection=none", "--iterations", "1")
    assert code == 0, err
    # its own folder: the changed variant setting by name, the changed n_iter by a hash
    history_line = next(x for x in out.splitlines() if x.startswith("history: "))
    run_dir = Path(history_line.removeprefix("history: ")).parent
    assert run_dir.parent == base / "runs" / "smoke" / "seed0"
    assert run_dir.name.startswith("tcul-selection-none-")
    assert json.loads((run_dir / "config.json").read_text())["selection"] == "none"
    history = json.loads((run_dir / "history.json").read_text())
    n_train = len(load_dataset("synthetic", base / "worlds" / "target").train)
    assert [r["n_reliable"] for r in history["iterations"]] == [n_train]
    assert "reusing the source model" in out


def test_sweep_runs_cached_points_of_the_sweeps(base: Path, adapted, common: list[str]):
    """`sweep` is the sweeps' own mechanism (sweeps.run_point): one cached point per value,
    shared with `sweeps` and the notebooks; a second call reads them instead of running."""
    from tcul_helpers.experiment.sweeps import load_sweeps

    out_dir = base / "sweep"
    argv = ["sweep", *common, "--param", "n_clusters", "--values", "6, 12", "--set",
            "n_iter=0", "--out", str(out_dir)]
    code, out, err = run(*argv)
    assert code == 0, err
    points = {p["value"]: p for p in load_sweeps(out_dir)["n_clusters"]}
    assert sorted(points) == [6.0, 12.0]
    for value, p in points.items():
        assert (out_dir / "n_clusters" / f"tcul-{int(value)}.json").is_file()
        assert p["variant"] == "tcul" and p["mAP"] == pytest.approx(p["baseline"]["mAP"])
    assert "n_clusters" in out and f"points: {out_dir / 'n_clusters'}" in out
    again = run(*argv)
    assert again[0] == 0 and again[1].strip().splitlines()[-1] == out.strip().splitlines()[-1]
    assert "trained the source model" not in again[1] + again[2]


def test_sweep_refuses_a_variant_setting_it_would_override(common: list[str]):
    code, _, err = run("sweep", *common, "--param", "lambda_fr", "--values", "50",
                       "--set", "selection=none")
    assert_one_line_error(code, err, "--set selection", "--param")


# ------------------------------------------------------------------------------ errors
@pytest.mark.parametrize("argv, needles", [
    (["config", "--set", "lamda_fr=5"], ["unknown setting", "lamda_fr"]),
    (["config", "--set", "lambda_fr=-1"], ["lambda_fr must be >= 0"]),
    (["config", "--set", "n_clusters=0"], ["n_clusters (K) must be >= 1"]),
    (["config", "--set", "lambda_fr"], ["key=value"]),
    (["config", "--set", "profile=paper"], ["--profile"]),
    (["config", "--profile", "huge"], ["--profile", "huge"]),
    (["adapt", "--variant", "spl"], ["--variant", "spl"]),
    (["adapt", "--iterations", "-1"], ["--iterations"]),
    (["world", "--knob", "crowdiness=3"], ["unknown world knob", "crowdiness"]),
    (["sweep", "--param", "lambda_fr", "--values", "10,ten"], ["ten", "lambda_fr"]),
    (["frobnicate"], ["invalid choice", "frobnicate"]),
    ([], ["choose a command"]),
])
def test_bad_input_is_one_error_line_and_exit_2(argv: list[str], needles: list[str]):
    code, out, err = run(*argv)
    assert_one_line_error(code, err, *needles)
    assert out == ""


def test_k_larger_than_the_number_of_images(base: Path, adapted, common: list[str]):
    code, _, err = run("adapt", *common, "--set", "n_clusters=100000",
                       "--out", str(base / "bigk"))
    assert_one_line_error(code, err, "K=100000", "number of images")
    assert not (base / "bigk" / "history.json").exists()


def test_corrupt_checkpoint(base: Path, common: list[str]):
    bad = base / "garbage.pt"
    bad.write_bytes(os.urandom(300))
    code, out, err = run("evaluate", str(bad), *common)
    assert_one_line_error(code, err, str(bad), "corrupt")
    assert "mAP" not in out


def test_checkpoint_of_another_arch(base: Path, common: list[str]):
    ckpt = save_checkpoint(base / "r18.pt", build_model("resnet18", 0, 32))
    code, _, err = run("evaluate", str(ckpt), *common, "--set", "arch=compact")
    assert_one_line_error(code, err, "resnet18", "compact")


def test_missing_checkpoint(base: Path, common: list[str]):
    code, _, err = run("evaluate", str(base / "nowhere.pt"), *common)
    assert_one_line_error(code, err, "does not exist")


def test_interrupt_returns_130_and_names_resume(monkeypatch):
    def interrupted(_args):
        raise KeyboardInterrupt

    monkeypatch.setattr(cli, "cmd_config", interrupted)
    code, _, err = run("config")
    assert code == 130
    assert len(err.strip().splitlines()) == 1 and "resume" in err


def test_other_errors_are_not_swallowed(monkeypatch):
    def broken(_args):
        raise RuntimeError("a real bug")

    monkeypatch.setattr(cli, "cmd_config", broken)
    with pytest.raises(RuntimeError, match="a real bug"):
        cli.main(["config"])


# ----------------------------------------------------------------------- demo and sweeps
def test_demo_and_sweeps_wrappers_pass_their_arguments(base: Path, common: list[str],
                                                        monkeypatch):
    from tcul_helpers.experiment import demo as real_demo
    from tcul_helpers.experiment import sweeps as real_sweeps

    calls: dict[str, tuple] = {}
    demo = types.ModuleType("tcul_helpers.experiment.demo")
    demo.run_demo = lambda cfg, **kw: calls.setdefault("demo", (cfg, kw)) and None
    demo.default_out = real_demo.default_out
    sweeps = types.ModuleType("tcul_helpers.experiment.sweeps")
    sweeps.run_sweeps = lambda cfg, **kw: calls.setdefault("sweeps", (cfg, kw)) and None
    sweeps.default_dir = real_sweeps.default_dir
    sweeps.default_runs = real_sweeps.default_runs
    import tcul_helpers.experiment as experiment

    for name, module in (("demo", demo), ("sweeps", sweeps)):
        monkeypatch.setitem(sys.modules, f"tcul_helpers.experiment.{name}", module)
        monkeypatch.setattr(experiment, name, module)  # what `from . import name` reads

    assert run("demo", *common, "--fresh", "--seed", "2")[0] == 0
    cfg, kw = calls["demo"]
    assert cfg.profile == "smoke" and cfg.seed == 2
    assert kw == {"out_dir": base / "runs" / "demo-smoke-seed2", "fresh": True,
                  "progress": False, "device": "auto",
                  "sweeps_dir": base / "runs" / "smoke" / "seed2" / "sweeps",
                  "runs": base / "runs", "fig4": None}
    calls.clear()
    assert run("demo", *common, "--no-sweeps")[0] == 0
    assert calls["demo"][1]["fig4"] is False  # no Fig. 4 grid

    assert run("sweeps", *common, "--only", "lambda_fr,n_clusters", "--out",
               str(base / "sw"))[0] == 0
    cfg, kw = calls["sweeps"]
    assert kw == {"out_dir": base / "sw", "progress": False, "device": "auto",
                  "only": ["lambda_fr", "n_clusters"],
                  "shared_runs": {"tcul": base / "runs" / "smoke" / "seed0" / "tcul"}}


def test_prepare_computes_what_the_notebooks_read_then_reuses_it(base: Path, common: list[str]):
    """`prepare`: Fig. 4's sweeps, both starts' source models and demos, the profile's own
    demo last (so its report holds both starts); a second call recomputes nothing."""
    import json

    from tcul_helpers.experiment.report import claims
    from tcul_helpers.experiment.sweeps import load_sweeps

    code, out, err = run("prepare", *common)
    assert code == 0, err
    runs = base / "runs"
    own = json.loads((runs / "demo-smoke-seed0" / "results.json").read_text())
    assert set(own["starts"]) == {"scratch", "imagenet"}
    other = json.loads((runs / "demo-smoke-seed0-imagenet" / "results.json").read_text())
    assert "fig4 sweeps" not in other["stages"]  # read beside the own start's: no Fig. 4 grid
    assert not (runs / "smoke" / "seed0" / "sweeps-imagenet").exists()
    assert own["stages"]["fig4 sweeps"]["reused"]  # the sweeps step computed the points
    assert not [c for c in claims(own) if "NOT COMPUTED" in c]  # the own start: all five
    assert {"lambda_fr", "n_clusters"} <= set(load_sweeps(runs / "smoke" / "seed0" / "sweeps"))
    assert "prepared: profile smoke, seed 0" in out
    written = {p: p.stat().st_mtime_ns for p in runs.rglob("*")
               if p.suffix in (".pt", ".npz") or p.parent.name in ("lambda_fr", "n_clusters")}
    assert written
    code, out, err = run("prepare", *common)
    assert code == 0, err
    assert {p: p.stat().st_mtime_ns for p in written} == written  # read, not recomputed


def test_prepare_refuses_out(common: list[str]):
    code, _out, err = run("prepare", *common, "--out", "somewhere")
    assert_one_line_error(code, err, "--runs")


# ------------------------------------------------- faults met with real folders and workers
def test_a_path_that_is_not_utf8_neither_crashes_the_lock_nor_the_output(tmp_path):
    """Bytes that are not UTF-8 in a path (Python decodes them as surrogates): the folder
    lock's note, the printed paths and the paths in a written report escape them, even with
    a strict UTF-8 stdout."""
    import os
    import subprocess

    base = os.fsencode(tmp_path)
    env = {**os.environ, "PYTHONIOENCODING": "utf-8", "MPLBACKEND": "Agg"}
    runs, world = base + b"/runs\xff", base + b"/world\xfe"
    common = [b"--profile", b"smoke", b"--quiet",
              b"--set", b"source_root=" + base + b"/w\xff/source",
              b"--set", b"target_root=" + base + b"/w\xff/target"]
    for argv in ([b"source", *common, b"--runs", runs],
                 [b"world", b"--profile", b"smoke", b"--preset", b"target", b"--stats",
                  b"--quiet", b"--out", world],
                 [b"demo", *common, b"--runs", runs]):
        res = subprocess.run([os.fsencode(sys.executable), b"-m", b"tcul_helpers", *argv],
                             capture_output=True, env=env, timeout=300)
        err = res.stderr.decode("utf-8", "replace")
        assert res.returncode == 0 and "Traceback" not in err, err[-2000:]
    assert os.path.isfile(runs + b"/smoke/seed0/source/model.pt")
    with open(runs + b"/demo-smoke-seed0/report.md", encoding="utf-8") as fh:  # valid UTF-8
        assert "\\udcff" in fh.read()


def test_an_error_raised_in_a_dataloader_worker_reads_as_its_own_line(monkeypatch):
    """PyTorch re-raises a worker's exception with the worker's whole traceback in the
    message; the user sees the kit's own line instead."""
    import torch

    from tcul_helpers.infra.errors import TCULError, user_message

    line = ("cannot read image /data/x.jpg (UnidentifiedImageError): replace it with a good "
            "copy (extract the dataset again), or move it out of the dataset folder")

    class Broken(torch.utils.data.Dataset):
        def __len__(self):
            return 2

        def __getitem__(self, i):
            raise TCULError(line)

    with pytest.raises(TCULError) as caught:
        next(iter(torch.utils.data.DataLoader(Broken(), num_workers=1)))
    assert "Original Traceback" in str(caught.value)  # what torch gives
    assert user_message(str(caught.value)) == line
    assert user_message(line) == line  # a plain message is left as it is

    def handler(_args):
        raise TCULError(str(caught.value))

    monkeypatch.setattr(cli, "cmd_config", handler)
    code, _out, err = run("config", "--profile", "smoke")
    assert_one_line_error(code, err, line)


def test_a_pool_worker_stopped_by_its_pool_ends_quietly():
    """A command's SIGTERM handler is inherited by the processes a multiprocessing pool forks
    (the synthetic world's renderers); the pool stops its workers with SIGTERM, and they must
    end without a traceback on the user's screen."""
    code = textwrap.dedent("""
        import multiprocessing as mp, time
        from tcul_helpers.experiment import cli
        with cli._sigterm_as_interrupt():
            with mp.get_context("fork").Pool(2) as pool:
                pool.apply_async(time.sleep, (5,))  # a worker busy when the pool stops
                time.sleep(0.5)
        print("done")
    """)
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                          timeout=60)
    assert proc.returncode == 0 and proc.stdout.strip() == "done", proc.stderr[-2000:]
    assert proc.stderr == ""


@pytest.mark.parametrize("outcome", ["fails", "succeeds"])
def test_a_sigterm_after_the_outcome_changes_nothing(monkeypatch, outcome):
    """Under torchrun, when one rank ends, torchrun sends SIGTERM to the others, perhaps
    while a rank says its one line or leaves the process group: the line and the exit code
    stand, with no traceback. The SIGTERM is sent here from inside the leaving."""
    import signal

    from tcul_helpers.infra import distributed
    from tcul_helpers.infra.errors import TCULError

    def handler(_args):
        if outcome == "fails":
            raise TCULError("another rank of this torchrun run stopped")
        return 0

    def shutdown_under_sigterm():
        os.kill(os.getpid(), signal.SIGTERM)
        time.sleep(0.2)  # the handler runs between bytecodes, here if it raises at all

    before = signal.getsignal(signal.SIGTERM)
    monkeypatch.setattr(cli, "cmd_config", handler)
    monkeypatch.setattr(distributed, "shutdown", shutdown_under_sigterm)
    try:
        code, _out, err = run("config", "--profile", "smoke")
    except KeyboardInterrupt:  # what the kit's SIGTERM handler raises
        pytest.fail("a SIGTERM after the outcome escaped main as an exception")
    if outcome == "fails":
        assert_one_line_error(code, err, "another rank of this torchrun run stopped")
    else:
        assert (code, err) == (0, "")
    assert signal.getsignal(signal.SIGTERM) is before


def test_sigterm_stops_a_run_with_one_line_and_the_same_command_resumes(tmp_path):
    """SIGTERM (a job's time limit, ``kill``) is handled as Ctrl-C: one line, exit 130,
    every completed iteration kept; and ``main`` gives SIGTERM its handler back."""
    import signal

    before = signal.getsignal(signal.SIGTERM)
    assert cli.main(["config", "--profile", "smoke"]) == 0
    assert signal.getsignal(signal.SIGTERM) is before

    env = {**os.environ, "OMP_NUM_THREADS": "1", "MPLBACKEND": "Agg"}
    out = tmp_path / "run"
    argv = [sys.executable, "-m", "tcul_helpers", "adapt", "--profile", "smoke", "--quiet",
            "--runs", str(tmp_path / "runs"), "--out", str(out), "--iterations", "40",
            "--set", f"source_root={tmp_path / 'w' / 'source'}",
            "--set", f"target_root={tmp_path / 'w' / 'target'}"]
    proc = subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            env=env)
    for line in proc.stdout:
        if line.startswith("iteration 1/"):
            proc.send_signal(signal.SIGTERM)
            break
    _rest, err = proc.communicate(timeout=300)
    assert proc.returncode == 130, err[-2000:]
    assert err.strip().splitlines()[-1] == (
        "stopped by SIGTERM: run the same command again to resume from the last completed "
        "iteration (--fresh starts over)"), err[-2000:]
    assert "Traceback" not in err
    done = len(json.loads((out / "history.json").read_text())["iterations"])
    assert 1 <= done < 40
    again = subprocess.run(argv, capture_output=True, text=True, env=env, timeout=600)
    assert again.returncode == 0, again.stderr[-2000:]
    assert f"resuming {out} after iteration {done}" in again.stdout
