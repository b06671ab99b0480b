"""Fig. 2 (tcul_helpers.figures.fragments): fragment splitting and the figure itself."""

from __future__ import annotations

import io

import matplotlib

matplotlib.use("Agg")

import numpy as np  # noqa: E402
import pytest  # noqa: E402
from matplotlib.figure import Figure  # noqa: E402
from matplotlib.image import AxesImage  # noqa: E402
from matplotlib.patches import Rectangle  # noqa: E402
from PIL import Image  # noqa: E402

from tcul_helpers.data.records import ImageRecord, ReidDataset  # noqa: E402
from tcul_helpers.figures.fragments import (  # noqa: E402
    default_gap,
    plot_fragments,
    split_fragments,
)
from tcul_helpers.infra.errors import TCULError  # noqa: E402


def _records(tmp_path, frames, pids, camid=2, sequence=1):
    out = []
    for i, (f, p) in enumerate(zip(frames, pids, strict=True)):
        path = tmp_path / f"c{camid}_{i}.jpg"
        Image.fromarray(np.full((128, 64, 3), (i * 30) % 255, np.uint8)).save(path)
        out.append(ImageRecord(str(path), p, camid, f, p, sequence, f))
    return out


def test_split_fragments_hand_example():
    frames = [1, 3, 10, 100, 104, 500]
    assert split_fragments(frames, 20) == [[0, 1, 2], [3, 4], [5]]
    assert split_fragments(frames, 1000) == [[0, 1, 2, 3, 4, 5]]
    assert split_fragments(frames, 0) == [[0], [1], [2], [3], [4], [5]]
    # steps 2, 7, 90, 4, 396 -> median 7 -> 3 x 7 = 21
    assert default_gap(frames) == 21
    assert default_gap([5, 6]) == 10  # never below 10 frames


def test_figure_shows_images_fragments_and_identities(tmp_path):
    frames = [10, 14, 20, 300, 305, 900, 904, 910]
    pids = [3, 3, 4, 5, 5, 3, 0, 3]
    recs = _records(tmp_path, frames, pids)
    recs += _records(tmp_path, [50], [9], camid=1)  # another camera
    fig = plot_fragments(recs, 2, gap=50)
    assert isinstance(fig, Figure)
    ax = fig.axes[0]
    assert sum(isinstance(a, AxesImage) for a in ax.get_images()) == 8
    assert "3 fragments" in ax.get_title()
    borders = [p for p in ax.patches if isinstance(p, Rectangle)]
    assert len(borders) == 8  # identity known for every image (pid 0 = grey distractor)
    labels = {t.get_text() for t in ax.texts}
    assert {"s1 f10", "s1 f910", "0003", "0005", "0000"} <= labels
    buf = io.BytesIO()
    fig.savefig(buf, format="png")
    assert buf.getvalue()[:4] == b"\x89PNG"

    # start_frame, max_images and show_identity=False
    fig = plot_fragments(recs, 2, start_frame=300, max_images=3, gap=50, show_identity=False)
    ax = fig.axes[0]
    assert len(ax.get_images()) == 3 and "2 fragments" in ax.get_title()
    assert not [p for p in ax.patches if isinstance(p, Rectangle)]


def test_dataset_input_and_given_axes(tmp_path):
    import matplotlib.pyplot as plt

    recs = _records(tmp_path, [5, 9, 13], [1, 1, 2], camid=4, sequence=None)
    ds = ReidDataset("toy", str(tmp_path), recs, [], [])
    fig, ax = plt.subplots()
    try:
        out = plot_fragments(ds, 4, ax=ax)
        assert out is fig
        assert "f9" in {t.get_text() for t in ax.texts}  # no sequence: plain frame id
    finally:
        plt.close(fig)


def test_bad_input_raises(tmp_path):
    recs = _records(tmp_path, [1, 2], [1, 1], camid=2)
    with pytest.raises(TCULError, match="camera 7"):
        plot_fragments(recs, 7)
    no_frames = [ImageRecord(r.path, r.pid, r.camid, None, r.raw_pid) for r in recs]
    with pytest.raises(TCULError, match="frame ids"):
        plot_fragments(no_frames, 2)
    with pytest.raises(TCULError, match="no records"):
        plot_fragments([], 2)
    with pytest.raises(TCULError, match="start_frame"):
        plot_fragments(recs, 2, start_frame=10_000)


def test_on_a_synthetic_world(tmp_path):
    from tcul_helpers.data.readers import load_dataset
    from tcul_helpers.data.synthetic import make_world

    make_world(tmp_path / "w", "target", 0, scale="smoke", progress=False, n_junk=0)
    ds = load_dataset("synthetic", tmp_path / "w")
    cam = ds.train[0].camid
    n_cam = sum(r.camid == cam for r in ds.train)
    fig = plot_fragments(ds, cam, max_images=12)
    assert len(fig.axes[0].get_images()) == min(12, n_cam)
    # every image of one fragment shares its frame window: a person recurs in a fragment
    pids = [t.get_text() for t in fig.axes[0].texts if t.get_text().isdigit()]
    assert len(pids) > len(set(pids))
