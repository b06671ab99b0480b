"""A run belongs to the data it was computed on: two real folders of one format, or one
folder before and after its images were replaced, never share a run folder, and no message
advises starting over where that would destroy another finished run. Smoke profile; the
"real" Market-1501 folders are copies of a synthetic world without its manifest."""

from __future__ import annotations

import contextlib
import io
import json
import os
import shutil
from pathlib import Path

import pytest

from tcul_helpers.data.readers import load_dataset
from tcul_helpers.experiment import cli, pipeline
from tcul_helpers.settings.config import get_config


def _cli(*argv: str) -> tuple[int, str, str]:
    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stderr(err), contextlib.redirect_stdout(out):
        code = cli.main(list(argv))
    return code, out.getvalue(), err.getvalue()


@pytest.fixture(scope="module")
def folders(tmp_path_factory):
    """A synthetic source world and two Market-1501 folders, A and B (B lacks two gallery
    images), with f_theta0 trained once under ``runs``."""
    base = tmp_path_factory.mktemp("identity")
    cfg = get_config("smoke", source_root=str(base / "src"), target_root=str(base / "tgt"))
    pipeline.ensure_world(cfg, "source", progress=False)
    pipeline.ensure_world(cfg, "target", progress=False)
    a, b = base / "market_a", base / "market_b"
    for copy in (a, b):
        shutil.copytree(base / "tgt", copy, ignore=shutil.ignore_patterns("manifest.json",
                                                                          "*.lock", "*.json"))
    for extra in sorted((b / "bounding_box_test").iterdir())[-2:]:
        extra.unlink()
    return base, a, b


def _adapt(base: Path, root: Path, *extra: str) -> tuple[int, str, str]:
    return _cli("adapt", "--profile", "smoke", "--quiet", "--runs", str(base / "runs"),
                "--set", f"source_root={base / 'src'}", "--set", "target=market1501",
                "--set", f"target_root={root}", *extra)


def _history_line(out: str) -> Path:
    line = next(ln for ln in out.splitlines() if ln.startswith("history: "))
    return Path(line.removeprefix("history: "))


def test_two_real_folders_of_one_format_never_share_a_run(folders):
    base, a, b = folders
    code, out_a, err = _adapt(base, a)
    assert code == 0, err
    run_a = _history_line(out_a).parent
    before = (run_a / "history.json").read_bytes()
    code, out_b, err = _adapt(base, b)
    assert code == 0, err
    run_b = _history_line(out_b).parent
    assert run_a != run_b and run_a.parent == run_b.parent
    assert "-data-" in run_a.name and "-data-" in run_b.name
    assert (run_a / "history.json").read_bytes() == before  # A's finished run untouched
    assert json.loads((run_b / "history.json").read_text())["status"] == "complete"
    # the source model is the synthetic source's: shared, not retrained per target
    assert sorted(p.name for p in run_a.parent.iterdir() if p.name.startswith("source")) == [
        "source"]
    # A again: its own finished run, read
    code, out, err = _adapt(base, a)
    assert code == 0 and _history_line(out).parent == run_a, err
    assert (run_a / "history.json").read_bytes() == before


def test_an_image_replaced_under_its_name_makes_other_data(folders, tmp_path):
    base, a, _b = folders
    c = tmp_path / "market_c"
    shutil.copytree(a, c)
    key = load_dataset("market1501", c).content_key()
    code, out, err = _adapt(base, c)
    assert code == 0, err
    first = _history_line(out).parent
    before = (first / "history.json").read_bytes()
    image = sorted((c / "bounding_box_train").iterdir())[0]
    image.write_bytes(sorted((c / "bounding_box_train").iterdir())[1].read_bytes())
    assert load_dataset("market1501", c).content_key() != key
    code, out, err = _adapt(base, c)
    assert code == 0, err
    second = _history_line(out).parent
    assert second != first  # computed again, in its own folder ...
    assert (first / "history.json").read_bytes() == before  # ... the earlier run kept
    # the same bytes at a new modification time count as changed too (no pixel is read)
    os.utime(image, ns=(1, 1))
    assert load_dataset("market1501", c).content_key() != key


def test_a_named_folder_holding_a_run_on_other_data_is_refused_without_destroying_it(
        folders):
    base, a, b = folders
    out_dir = base / "mine"
    code, _out, err = _adapt(base, a, "--out", str(out_dir))
    assert code == 0, err
    before = {p.name: p.read_bytes() for p in out_dir.iterdir() if p.is_file()}
    code, _out, err = _adapt(base, b, "--out", str(out_dir))
    lines = err.strip().splitlines()
    assert code == 2 and len(lines) == 1, err
    assert "holds a run on other data" in lines[0] and "--out DIR" in lines[0]
    assert "--fresh" not in lines[0] and "delete" not in lines[0]
    assert {p.name: p.read_bytes() for p in out_dir.iterdir() if p.is_file()} == before
    # other settings in a named folder: the same, no advice that would replace the run
    code, _out, err = _adapt(base, a, "--out", str(out_dir), "--set", "lambda_fr=7")
    assert code == 2 and "other settings (lambda_fr)" in err and "--fresh" not in err, err
    assert {p.name: p.read_bytes() for p in out_dir.iterdir() if p.is_file()} == before


def test_synthetic_worlds_keep_their_folder_names(tmp_path):
    cfg = get_config("smoke")
    assert pipeline.data_suffix(cfg, ("source", "target")) == ""
    assert pipeline.variant_dir(cfg, "tcul", tmp_path) == tmp_path / "smoke" / "seed0" / "tcul"
    assert pipeline.source_dir(cfg, tmp_path) == tmp_path / "smoke" / "seed0" / "source"


def test_a_named_folder_holding_a_config_json_not_of_the_kit_is_never_overwritten(folders,
                                                                                   tmp_path):
    base, a, _b = folders
    mine = tmp_path / "project"
    mine.mkdir()
    (mine / "config.json").write_text('{"my": "own settings"}')
    for extra in ((), ("--fresh",)):
        code, _out, err = _adapt(base, a, "--out", str(mine), *extra)
        assert code == 2 and err.count("\n") == 1, err
        assert "if it is yours, choose another output folder (--out DIR)" in err
        assert (mine / "config.json").read_text() == '{"my": "own settings"}'
        assert sorted(p.name for p in mine.iterdir() if p.name != ".lock") == ["config.json"]


def test_a_world_the_user_made_with_other_knobs_is_never_regenerated_unasked(folders,
                                                                             tmp_path):
    base, _a, _b = folders
    crowded = tmp_path / "crowded"
    code, _out, err = _cli("world", "--profile", "smoke", "--quiet", "--preset", "target",
                           "--knob", "crowd_density=4", "--out", str(crowded))
    assert code == 0, err
    manifest = (crowded / "manifest.json").read_bytes()
    code, _out, err = _cli("adapt", "--profile", "smoke", "--quiet", "--runs",
                           str(base / "runs"), "--set", f"source_root={base / 'src'}",
                           "--set", f"target_root={crowded}")
    assert code == 2 and err.count("\n") == 1 and "holds another synthetic world" in err, err
    assert (crowded / "manifest.json").read_bytes() == manifest
