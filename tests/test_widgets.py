"""The notebooks' explorers: moving a control changes the numbers as the method says."""

from __future__ import annotations

import json

import numpy as np
import pytest

pytest.importorskip("ipywidgets")

from tcul_helpers import widgets as tw  # noqa: E402
from tcul_helpers.session import LabSession  # noqa: E402


@pytest.fixture(scope="module")
def lab(tmp_path_factory):
    home = tmp_path_factory.mktemp("tcul_home_widgets")
    return LabSession("smoke", progress=False, home=home)


@pytest.fixture(scope="module")
def init(lab):
    return lab.initial_clustering()


def test_session_paths_and_truth(lab):
    assert str(lab.cfg.target_root).startswith(str(lab.home))
    assert lab.root == lab.home / "runs" / "smoke" / "seed0"
    assert len(lab.truth) == len(lab.target.train) == len(lab.camids) == len(lab.frames)


def test_fragments_explorer(lab):
    w = tw.fragments_explorer(lab.target)
    assert w.error is None and w.figure is not None and w.state["n_images"] > 0
    w.controls["count"].value = 5
    assert w.state["n_images"] <= 5
    first = w.state["start_frame"]
    w.controls["start"].value = w.controls["start"].max
    assert w.state["start_frame"] >= first
    cams = list(w.controls["camera"].options)
    w.controls["camera"].value = cams[-1]
    assert w.state["camid"] == cams[-1] and w.error is None


def test_selection_explorer(lab, init):
    w = tw.selection_explorer(lab.target, init["features"], init["labels"], init["centers"],
                              lab.camids, lab.frames, lab.truth, lambda_fr=100)
    assert w.error is None and w.figure is not None
    w.controls["lambda_fr"].value = 0
    at0 = w.state["n_kept_temporal"]
    assert at0 >= w.state["n_anchors"]  # x_min_jk always kept (plus same-frame images)
    counts = [at0]
    for lam in (10, 50, w.controls["lambda_fr"].max):
        w.controls["lambda_fr"].value = lam
        counts.append(w.state["n_kept_temporal"])
    assert counts == sorted(counts) and counts[-1] > counts[0]
    w.controls["threshold"].value = 0.0
    n_low = w.state["n_kept_similarity"]
    w.controls["threshold"].value = 0.99
    assert w.state["n_kept_similarity"] <= n_low
    other = w.controls["group"].options[-1][1]
    w.controls["group"].value = other
    assert (w.state["cluster"], w.state["camid"]) == other
    assert 1 <= w.state["group_kept"] <= w.state["group_size"]


def test_center_update_explorer(lab):
    z = lab.features()
    c0 = z[np.random.default_rng(0).choice(len(z), lab.cfg.n_clusters, replace=False)]
    from tcul_helpers.clustering import assign_clusters

    w = tw.center_update_explorer(c0, z, assign_clusters(z, c0), lab.truth, steps=3)
    assert w.error is None and len(w.state["purity"]) == 4
    moved_half = w.state["mean_shift"]
    assert moved_half > 0
    w.controls["lambda_c"].value = 0.0
    assert w.state["mean_shift"] == 0.0
    assert np.allclose(w.state["centers"], c0)
    assert len(set(w.state["purity"])) == 1
    w.controls["lambda_c"].value = 1.0
    assert w.state["mean_shift"] >= moved_half
    w.controls["steps"].value = 1
    assert len(w.state["nmi"]) == 2


def test_iteration_scrubber(lab):
    run = lab.run("tcul")
    hist = lab.history("tcul")
    w = tw.iteration_scrubber({"tcul": hist, "again": run}, trace=lab.trace("tcul"))
    n = len(hist["iterations"])
    assert w.error is None and w.state["iteration"] == n
    assert w.state["rows"]["tcul"]["n_reliable"] == hist["iterations"][-1]["n_reliable"]
    assert w.state["kept_in_trace"] == hist["iterations"][-1]["n_reliable"]
    w.controls["iteration"].value = 0
    assert w.state["rows"]["tcul"]["mAP"] == pytest.approx(hist["baseline"]["mAP"])
    assert w.state["rows"]["tcul"]["n_reliable"] is None
    w.controls["iteration"].value = 1
    assert w.state["rows"]["tcul"]["n_reliable"] == hist["iterations"][0]["n_reliable"]
    assert w.state["rows"]["again"] == w.state["rows"]["tcul"]


def test_sweep_explorer_reads_points_and_computes_missing(lab, tmp_path, monkeypatch):
    points = {"lambda_fr": [
        {"value": 25, "variant": "tcul", "mAP": 10.0, "rank1": 5.0},
        {"value": 100, "variant": "tcul", "mAP": 12.0, "rank1": 6.0}]}
    plan = {"lambda_fr": {"values": [25, 100, 400], "variants": ["tcul"], "true_value": 100}}
    calls = []

    def fake_run_point(cfg, sweep, variant, value, out_dir, **kw):
        calls.append((sweep, variant, value))
        return {"value": value, "variant": variant, "mAP": 7.0, "rank1": 3.0}

    import tcul_helpers.sweeps as sweeps

    monkeypatch.setattr(sweeps, "run_point", fake_run_point)
    w = tw.sweep_explorer(points, cfg=lab.cfg, plan=plan, out_dir=tmp_path)
    assert w.error is None and w.figure is not None
    assert list(w.controls["value"].options) == [25.0, 100.0, 400.0]
    w.controls["value"].value = 100.0
    assert w.state["point"]["mAP"] == 12.0 and not w.state["missing"]
    w.controls["value"].value = 400.0
    assert w.state["missing"]
    w.controls["compute"].click()
    assert calls == [("lambda_fr", "tcul", 400.0)]
    assert not w.state["missing"] and w.state["point"]["mAP"] == 7.0
    assert w.state["n_points"] == 3


def test_sweep_explorer_without_cfg_or_points():
    w = tw.sweep_explorer({})
    assert w.controls["compute"].disabled and w.state["missing"] and w.error is None


def test_explorer_shows_errors_instead_of_raising(lab):
    bad = {"x": {"baseline": {}, "iterations": [{"iteration": 1}]}}
    w = tw.iteration_scrubber(bad)
    assert w.state["iteration"] == 1
    json.dumps(w.state["rows"])  # plain data
