"""Figures of Fig. 3, Fig. 4 and Fig. 5 (plots.selection, plots.iterations, plots.sweeps)."""

from __future__ import annotations

import matplotlib

matplotlib.use("Agg")

import numpy as np  # noqa: E402
import pytest  # noqa: E402
from matplotlib.figure import Figure  # noqa: E402
from matplotlib.patches import Rectangle  # noqa: E402
from PIL import Image  # noqa: E402

from tcul_helpers.data.records import ImageRecord  # noqa: E402
from tcul_helpers.figures.iterations import (
    plot_iteration_metrics,
    plot_reliable_counts,
    plot_seed_bands,
)
from tcul_helpers.figures.selection import (
    ANCHOR_COLOR,
    KEPT_COLOR,
    REJECTED_COLOR,
    pick_example_group,
    plot_cluster_selection,
)
from tcul_helpers.figures.sweeps import plot_sweep  # noqa: E402
from tcul_helpers.infra.errors import TCULError  # noqa: E402
from tcul_helpers.method.selection import TemporalSelection  # noqa: E402


def _records(tmp_path, camids, frames):
    out = []
    for i, (c, f) in enumerate(zip(camids, frames, strict=True)):
        path = tmp_path / f"img{i}.png"
        Image.fromarray(np.full((32, 16, 3), (i * 40) % 255, np.uint8)).save(path)
        out.append(ImageRecord(str(path), i % 3, c, f, 100 + i % 3))
    return out


def _hand_selection():
    """7 images: camera 1 cluster 0 = {0,1,2,3} (anchor 1), camera 1 cluster 1 = {4},
    camera 2 cluster 0 = {5,6} (anchor 6), lambda_fr 50."""
    camids = np.array([1, 1, 1, 1, 1, 2, 2])
    frames = np.array([100, 120, 400, 160, 10, 30, 900])
    labels = np.array([0, 0, 0, 0, 1, 0, 0])
    anchor = np.array([1, 1, 1, 1, 4, 6, 6])
    dist = np.abs(frames[anchor] - frames)
    sel = TemporalSelection(anchor=anchor, frame_distance=dist, kept=dist <= 50,
                            similarity=np.linspace(0.5, 0.9, 7),
                            group=np.array([0, 0, 0, 0, 1, 2, 2]), lambda_fr=50.0)
    return camids, frames, labels, sel


def _borders(fig):
    return [p for p in fig.axes[0].patches if isinstance(p, Rectangle)]


def test_cluster_selection_borders_match_mask(tmp_path):
    camids, frames, labels, sel = _hand_selection()
    recs = _records(tmp_path, camids, frames)
    truth = np.array([7, 7, 8, 7, 9, 7, 7])
    fig = plot_cluster_selection(recs, sel, labels, 0, 1, truth=truth)
    assert isinstance(fig, Figure)
    ax = fig.axes[0]
    assert len(ax.get_images()) == 4
    borders = _borders(fig)
    by_gid = {g: [b for b in borders if b.get_gid() == g] for g in ("anchor", "kept", "rejected")}
    # image 1 = anchor; 0 (d 20) and 3 (d 40) kept; 2 (d 280) rejected
    assert len(by_gid["anchor"]) == 1 and len(by_gid["kept"]) == 2
    assert len(by_gid["rejected"]) == 1
    colors = {matplotlib.colors.to_hex(b.get_edgecolor()) for b in by_gid["kept"]}
    assert colors == {KEPT_COLOR}
    assert matplotlib.colors.to_hex(by_gid["rejected"][0].get_edgecolor()) == REJECTED_COLOR
    assert matplotlib.colors.to_hex(by_gid["anchor"][0].get_edgecolor()) == ANCHOR_COLOR
    texts = [t.get_text() for t in ax.texts]
    assert "x_min" in texts and "\u039420" in texts and "\u0394280" in texts
    assert texts.count("id 7") == 3 and "id 8" in texts
    # sorted by frame id: the frame labels appear in frame order
    frame_texts = [t for t in texts if t.startswith("f")]
    assert frame_texts == ["f100", "f120", "f160", "f400"]
    # max_images keeps a window around x_min
    fig = plot_cluster_selection(recs, sel, labels, 0, 1, max_images=2)
    assert len(fig.axes[0].get_images()) == 2
    assert any(b.get_gid() == "anchor" for b in _borders(fig))
    with pytest.raises(TCULError):
        plot_cluster_selection(recs, sel, labels, 1, 2)


def test_pick_example_group_prefers_mixed_groups():
    camids, _frames, labels, sel = _hand_selection()
    k, j = pick_example_group(sel, labels, camids)
    members = np.flatnonzero((labels == k) & (camids == j))
    assert sel.kept[members].any() and not sel.kept[members].all()
    # with truth: the group where rejection removes a wrong identity is preferred
    truth = np.array([7, 7, 8, 7, 9, 3, 4])
    assert pick_example_group(sel, labels, camids, truth) == (0, 1)


HIST = {
    "tcul": {"status": "complete", "baseline": {"rank1": 10.0, "mAP": 5.0},
             "iterations": [{"iteration": 1, "n_reliable": 50, "precision": 0.5, "mAP": 8.0,
                             "rank1": 12.0, "nmi": 0.4},
                            {"iteration": 2, "n_reliable": 60, "precision": 0.6, "mAP": 9.0,
                             "rank1": 14.0, "nmi": 0.5}]},
    "sul": {"status": "complete", "baseline": {"rank1": 10.0, "mAP": 5.0},
            "iterations": [{"iteration": 1, "n_reliable": 80, "precision": 0.3, "mAP": 6.0,
                            "rank1": 11.0, "nmi": None},
                           {"iteration": 2, "n_reliable": 81, "precision": 0.3, "mAP": 6.5,
                            "rank1": 11.0, "nmi": 0.3}]},
}


def test_reliable_counts_two_panels():
    fig = plot_reliable_counts(HIST)
    assert isinstance(fig, Figure) and len(fig.axes) == 2
    lines = fig.axes[0].get_lines()
    assert len(lines) == 2
    assert list(lines[0].get_ydata()) == [50, 60]
    assert list(fig.axes[1].get_lines()[0].get_ydata()) == [0.5, 0.6]
    with pytest.raises(TCULError):
        plot_reliable_counts({})


def test_iteration_metrics_baseline_at_zero():
    fig = plot_iteration_metrics(HIST)
    assert len([a for a in fig.axes if a.get_lines()]) == 4
    map_line = fig.axes[0].get_lines()[0]
    assert list(map_line.get_xdata()) == [0, 1, 2] and list(map_line.get_ydata()) == [5, 8, 9]
    prec_line = fig.axes[2].get_lines()[0]  # no baseline precision: starts at iteration 1
    assert list(prec_line.get_xdata()) == [1, 2]
    nmi_sul = fig.axes[3].get_lines()[1]  # None values are skipped
    assert list(nmi_sul.get_xdata()) == [2]
    fig = plot_iteration_metrics(HIST, metrics=("mAP",))
    assert len(fig.axes) == 1


def test_seed_bands_mean_line_and_band_across_seeds():
    def hist(base, gain):
        return {"baseline": {"mAP": base},
                "iterations": [{"iteration": 1, "mAP": base + gain, "precision": 0.5},
                               {"iteration": 2, "mAP": base + 2 * gain, "precision": 0.6}]}

    by_seed = {0: {"tcul": hist(10, 5), "sul": hist(10, 2)},
               1: {"tcul": hist(20, 5), "sul": hist(20, 2)}}
    fig = plot_seed_bands(by_seed, metrics=("mAP", "precision"))
    ax = fig.axes[0]
    tcul = next(line for line in ax.get_lines() if line.get_label() == "TCUL"
                or list(line.get_ydata()) == [15.0, 20.0, 25.0])
    assert list(tcul.get_xdata()) == [0, 1, 2]
    assert list(tcul.get_ydata()) == [15.0, 20.0, 25.0]  # the mean of the two seeds
    assert ax.collections, "no band across seeds"
    assert "2 seed(s)" in ax.get_title()
    with pytest.raises(TCULError):
        plot_seed_bands({})


def test_plot_sweep_lines_and_true_value():
    pts = [{"variant": v, "value": x, "mAP": m} for v, off in (("tcul", 0), ("sul", -3))
           for x, m in ((6, 10 + off), (12, 20 + off), (24, 15 + off))]
    fig = plot_sweep(pts, "n_clusters", true_value=12)
    ax = fig.axes[0]
    lines = ax.get_lines()
    assert len(lines) == 3  # two variants + the dashed true-value line
    assert lines[-1].get_linestyle() == "--" and list(lines[-1].get_xdata()) == [12, 12]
    assert list(lines[0].get_ydata()) == [10, 20, 15]
    # a lambda_fr sweep up to 10**7 frames gets a symlog axis
    pts = [{"variant": "tcul", "value": x, "mAP": 1.0} for x in (0, 25, 100, 10**7)]
    assert plot_sweep(pts, "lambda_fr").axes[0].get_xscale() == "symlog"
    # per-iteration lists (as cached by the sweeps) plot their last value
    pts = [{"variant": "tcul", "value": x, "precision": [0.1, p]} for x, p in ((1, .5), (2, .7))]
    assert list(plot_sweep(pts, "lambda_fr", "precision").axes[0].get_lines()[0].get_ydata()) \
        == [0.5, 0.7]
    with pytest.raises(TCULError):
        plot_sweep([], "lambda_fr")
