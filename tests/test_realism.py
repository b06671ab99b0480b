"""Realism statistics (tcul_helpers.measurement.realism): on Market-format fixture folders whose
colours
are chosen so that the right answer is known, on the smoke world, and from the command line."""

from __future__ import annotations

import contextlib
import io
import json
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from tcul_helpers.data.readers import load_dataset
from tcul_helpers.data.records import ImageRecord
from tcul_helpers.data.synthetic import make_world
from tcul_helpers.data.synthetic.render import render_image
from tcul_helpers.data.synthetic.world import render_context_of
from tcul_helpers.experiment import cli
from tcul_helpers.measurement import realism

PERSON = {1: (200, 30, 30), 2: (30, 200, 30), 3: (30, 30, 200), 4: (220, 220, 40)}
CAMERA = {1: (120, 120, 120), 2: (40, 160, 170), 3: (170, 90, 20)}


def _crop(person: tuple, backdrop: tuple, person_share: float) -> Image.Image:
    """A 32x16 crop: a backdrop with a central person column covering ``person_share``."""
    a = np.empty((32, 16, 3), dtype=np.uint8)
    a[:] = backdrop
    w = int(round(16 * person_share))
    a[:, (16 - w) // 2:(16 - w) // 2 + w] = person
    return Image.fromarray(a)


def _market(root: Path, person_share: float) -> Path:
    """Four people, three cameras; each person in every camera (query: camera 1)."""
    for folder in ("bounding_box_train", "query", "bounding_box_test"):
        (root / folder).mkdir(parents=True, exist_ok=True)
    frame = 10
    for pid, colour in PERSON.items():
        for cam, backdrop in CAMERA.items():
            img = _crop(colour, backdrop, person_share)
            folder = "query" if cam == 1 else "bounding_box_test"
            img.save(root / folder / f"{pid:04d}_c{cam}s1_{frame:06d}_01.png")
            for k in range(2):  # two images of the visit in the training split
                name = f"{pid:04d}_c{cam}s1_{frame + 5 * k:06d}_01.png"
                img.save(root / "bounding_box_train" / name)
            frame += 40
    return root


def test_colour_histogram_bins_and_mask():
    img = Image.new("RGB", (4, 2), (255, 0, 0))
    h = realism.colour_histogram(img)
    assert h.shape == (512,) and h.sum() == pytest.approx(1.0)
    assert h[7 * 64] == pytest.approx(1.0)  # r in bin 7, g and b in bin 0
    a = np.zeros((2, 4, 3), dtype=np.uint8)
    a[:, :1] = (0, 0, 255)
    mask = np.zeros((2, 4), dtype=bool)
    mask[:, :1] = True
    assert realism.colour_histogram(a, mask)[7] == pytest.approx(1.0)
    assert realism.colour_histogram(a)[0] == pytest.approx(0.75)


def test_person_dominated_crops_are_found(tmp_path):
    ds = load_dataset("market1501", _market(tmp_path / "m", person_share=0.75))
    r = realism.histogram_retrieval(ds)
    assert r["rank1"] == pytest.approx(100.0) and r["mAP"] == pytest.approx(100.0)
    assert r["nn_same_camera"] == pytest.approx(0.0)  # the gallery holds cameras 2 and 3 only
    assert r["chance_rank1"] < 100.0
    assert r["uniform_same_camera"] == pytest.approx(100 / 3)


def test_backdrop_dominated_crops_rank_the_camera(tmp_path):
    # a thin person on a camera backdrop: every gallery neighbour is a stranger of the same
    # backdrop family, the person's own crops rank late
    root = _market(tmp_path / "m", person_share=0.125)
    for f in (root / "bounding_box_test").glob("*_c2s1_*"):  # camera 2 = camera 1's backdrop
        pid = int(f.name[:4])
        _crop(PERSON[(pid % 4) + 1], CAMERA[1], 0.125).save(f)
    ds = load_dataset("market1501", root)
    r = realism.histogram_retrieval(ds)
    assert r["rank1"] == pytest.approx(0.0)
    assert r["nn_same_camera"] == pytest.approx(0.0)  # its neighbours are in camera 2


def test_temporal_statistics_match_a_direct_count():
    def rec(pid: int, cam: int, frame: int) -> ImageRecord:
        return ImageRecord(path=f"{pid}_{cam}_{frame}.jpg", pid=pid, camid=cam, frame=frame,
                           raw_pid=pid)

    records = ([rec(0, 1, f) for f in (0, 10, 20)] + [rec(1, 1, f) for f in (50, 60)]
               + [rec(0, 1, 5000)] + [rec(2, 2, 0)])
    t = realism.temporal_statistics(records, lambda_fr=100)
    # visits: (0,c1) frames 0-20 and 5000 (a reappearance), (1,c1) 50-60, (2,c2) 0
    assert t["images_per_visit"] == pytest.approx(7 / 4)
    assert t["visit_span_median"] == pytest.approx((0 + 10) / 2)
    # crowding: the three images of 0 see 1 (within 100 frames), the two of 1 see 0,
    # the image at 5000 and the one in camera 2 see nobody
    assert t["crowding_mean"] == pytest.approx(5 / 7)
    assert t["crowding_zero_share"] == pytest.approx(200 / 7)
    assert realism.temporal_statistics([ImageRecord("a.jpg", 0, 1, None, 0)]) is None


@pytest.fixture(scope="module")
def smoke_world(tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("realism") / "target"
    make_world(root, "target", 0, scale="smoke", progress=False)
    return root


def test_smoke_world_statistics(smoke_world):
    stats = realism.realism_statistics(load_dataset("synthetic", smoke_world), n_per_camera=10)
    r, c, t = stats["retrieval"], stats["crop"], stats["time"]
    assert 0.0 <= r["rank1"] <= 100.0 and 0.0 <= r["mAP"] <= 100.0
    assert 0.0 < c["person_share_mean"] < 100.0
    assert c["person_share_p10"] <= c["person_share_mean"] <= c["person_share_p90"]
    assert -1.0 <= c["background_similarity_across_cameras"] <= 1.0
    assert c["images_rendered"] == 10 * 4
    assert t["images_per_visit"] >= 1.0
    text = realism.format_statistics(stats)
    assert "person's share of the crop" in text and "chance" in text


def test_mask_covers_the_pixels_the_person_changes(smoke_world):
    ctx, plans = render_context_of(smoke_world)
    plan = next(p for p in plans if p.kind == "person" and not p.neighbours)
    img, _, mask = render_image(ctx, plan, with_mask=True)
    empty, _ = render_image(ctx, plan, people=False)
    diff = np.abs(np.asarray(img, float) - np.asarray(empty, float)).sum(-1)
    assert mask.shape == diff.shape and 0.1 < mask.mean() < 0.9
    assert diff[mask].mean() > 5 * diff[~mask].mean()
    # the same plan renders the same pixels whether or not the mask is asked for
    again, _ = render_image(ctx, plan)
    assert np.array_equal(np.asarray(img), np.asarray(again))


def _run(*argv: str) -> tuple[int, str, str]:
    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        code = cli.main(list(argv))
    return code, out.getvalue(), err.getvalue()


def test_cli_stats_of_a_market_folder(tmp_path):
    root = _market(tmp_path / "m", person_share=0.75)
    code, out, err = _run("world", "--profile", "smoke", "--stats", "--dataset", "market1501",
                          "--out", str(root), "--quiet")
    assert code == 0, err
    assert "histogram: rank-1 100.0" in out and "time (training split" in out
    code, out, _ = _run("world", "--profile", "smoke", "--stats", "--json", "--dataset",
                        "market1501", "--out", str(root), "--quiet")
    assert code == 0 and json.loads(out)["crop"] is None


def test_cli_stats_of_the_smoke_world(tmp_path):
    code, out, err = _run("world", "--profile", "smoke", "--preset", "target", "--stats",
                          "--out", str(tmp_path / "t"), "--quiet")
    assert code == 0, err
    assert "target world (smoke" in out and "person's share of the crop" in out


@pytest.mark.parametrize("argv, needle", [
    (("--dataset", "market1501"), "go with --stats"),
    (("--stats", "--dataset", "market1501"), "needs --out"),
    (("--stats", "--dataset", "market1501", "--out", "/nonexistent/market"), "/nonexistent"),
])
def test_cli_stats_bad_input_is_one_line(argv, needle):
    code, _, err = _run("world", "--profile", "smoke", "--quiet", *argv)
    assert code == 2
    assert len(err.strip().splitlines()) == 1 and needle in err
