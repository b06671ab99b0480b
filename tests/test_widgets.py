"""The notebooks' explorers: moving a control changes the numbers as the method says."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch
from matplotlib.figure import Figure

pytest.importorskip("ipywidgets")

from tcul_helpers.teaching import widgets as tw  # noqa: E402
from tcul_helpers.teaching.session import LabSession  # noqa: E402


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


def test_session_features_are_cached_per_model_object_and_end_with_it(lab):
    import copy
    import gc

    z = lab.features()
    assert lab.features() is z  # the source model's features: computed once
    other = copy.deepcopy(lab.source_model())
    with torch.no_grad():
        next(other.parameters()).add_(1.0)  # another model: its own features
    z_other = lab.features(other)
    assert z_other is not z and not np.allclose(z_other, z)
    assert lab.features(other) is z_other
    del other
    gc.collect()
    # the entry ended with its model (an id() key could have been reused by a new model)
    assert len(lab._features) == 1


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
    def similarity_marks():
        gids = [p.get_gid() for p in w.figure.axes[0].patches]
        return gids.count("similarity-kept"), gids.count("similarity-rejected")

    w.controls["threshold"].value = 0.0
    n_low, marks_low = w.state["n_kept_similarity"], similarity_marks()
    png_low = bytes(w.children[-1].value)
    w.controls["threshold"].value = 1.0  # cosine > 1: similarity keeps nothing
    assert w.state["n_kept_similarity"] <= n_low
    # the figure marks what similarity keeps, so the threshold changes the figure too
    marks_high = similarity_marks()
    assert sum(marks_high) == sum(marks_low) > 0 and marks_high[0] == 0 < marks_low[0]
    assert bytes(w.children[-1].value) != png_low
    other = w.controls["group"].options[-1][1]
    w.controls["group"].value = other
    assert (w.state["cluster"], w.state["camid"]) == other
    assert 1 <= w.state["group_kept"] <= w.state["group_size"]


def test_center_update_explorer(lab):
    z = lab.features()
    c0 = z[np.random.default_rng(0).choice(len(z), lab.cfg.n_clusters, replace=False)]
    from tcul_helpers.method.assignment import assign_clusters

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
    moved_full = w.state["mean_shift"]
    w.controls["beta"].value = 1000.0  # beta >> n_k: each step is a small fraction of the way
    assert w.state["beta"] == 1000.0 and 0 < w.state["mean_shift"] < moved_full


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

    import tcul_helpers.experiment.sweeps as sweeps

    monkeypatch.setattr(sweeps, "run_point", fake_run_point)
    w = tw.sweep_explorer(points, cfg=lab.cfg, plan=plan, out_dir=tmp_path)
    assert w.error is None and w.figure is not None
    assert [v for _label, v in w.controls["value"].options] == [25.0, 100.0, 400.0]
    assert [label for label, _v in w.controls["value"].options] == ["25", "100", "400"]
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


def test_sweep_explorer_opens_on_a_cached_point():
    points = {"lambda_fr": [{"value": 25, "variant": "tcul", "mAP": 10.0}],
              "n_clusters": [{"value": 50, "variant": "tcul", "mAP": 9.0},
                             {"value": 200, "variant": "tcul", "mAP": 11.0}]}
    plan = {"lambda_fr": {"values": [0, 25, 100], "variants": ["tcul"], "true_value": 100},
            "n_clusters": {"values": [50, 100, 200], "variants": ["tcul"], "true_value": 200}}
    w = tw.sweep_explorer(points, plan=plan)
    assert not w.state["missing"] and w.state["point"]["mAP"] == 10.0
    w.controls["sweep"].value = "n_clusters"  # opens on the cached point nearest the true K
    assert w.state["value"] == 200.0 and w.state["point"]["mAP"] == 11.0


def test_explorer_shows_errors_instead_of_raising(lab):
    bad = {"x": {"baseline": {}, "iterations": [{"iteration": 1}]}}
    w = tw.iteration_scrubber(bad)
    assert w.state["iteration"] == 1
    json.dumps(w.state["rows"])  # plain data

    def draw(ex):
        if ex.controls["n"].value > 1:
            raise ValueError("n is too large")
        return Figure()

    import ipywidgets as W

    w = tw.Explorer({"n": W.IntSlider(value=1, min=0, max=3)}, draw)
    assert w.error is None
    w.controls["n"].value = 2  # the callback raises: shown in the view, not raised
    assert w.error == "ValueError: n is too large"
    assert "n is too large" in w.children[-2].value


def test_explorer_redraws_its_figure_widget_and_saves_a_png_fallback(lab):
    import base64

    w = tw.fragments_explorer(lab.target)
    image = w.children[-1]
    assert image.format == "png" and image.value[:8] == b"\x89PNG\r\n\x1a\n"
    before = bytes(image.value)
    w.controls["count"].value = 4
    assert bytes(image.value) != before  # the figure widget itself was redrawn
    bundle = w._repr_mimebundle_()
    assert "application/vnd.jupyter.widget-view+json" in bundle
    assert base64.b64decode(bundle["image/png"]) == bytes(image.value)
    # no Output widget anywhere: nothing for nbclient to mimic (jupyter/nbclient#312)
    import ipywidgets as W

    def walk(x):
        yield x
        for c in getattr(x, "children", ()):
            yield from walk(c)

    assert not any(isinstance(x, W.Output) for x in walk(w))


def test_frame_ids_are_shown_as_the_dataset_names_them(lab, init):
    """Sequence + raw frame ("s2 f726"), never the kit's internal per-sequence offset."""
    import re

    from tcul_helpers.data.readers import SEQUENCE_STRIDE

    w = tw.selection_explorer(lab.target, init["features"], init["labels"], init["centers"],
                              lab.camids, lab.frames, lab.truth, lambda_fr=100)
    f = tw.fragments_explorer(lab.target)
    texts = [t.get_text() for fig in (w.figure, f.figure) for ax in fig.axes for t in ax.texts]
    texts.append(f.numbers)
    numbers = [int(n) for t in texts for n in re.findall(r"\d+", t)]
    assert numbers and max(numbers) < SEQUENCE_STRIDE
    assert any(re.fullmatch(r"s\d+ f\d+", t) for t in texts)


def test_numbers_are_formatted_for_reading():
    from tcul_helpers.settings.config import INFINITE_FRAMES

    assert tw._fmt(0.46138535031847133) == "0.461"
    assert tw._fmt([0.46138535031847133, 0.5]) == "[0.461, 0.500]"
    assert tw._fmt(10000000.0) == tw._fmt(INFINITE_FRAMES) == "no window (10^7)"
    assert tw._fmt(np.int64(3)) == "3" and tw._fmt(True) == "True"
    w = tw.sweep_explorer({"lambda_fr": [{"value": float(INFINITE_FRAMES), "variant": "tcul",
                                          "mAP": 1.0, "precision": [0.123456, 0.5]}]})
    assert w.controls["value"].options[0][0] == "\u221e"
    assert "0.123" in w.numbers and "0.123456" not in w.numbers
