"""The evaluation primer (figures.ranked_lists): its ranked lists follow the kit's protocol and
its per-query numbers add up to the kit's own rank-1, rank-5 and mAP."""

from __future__ import annotations

import matplotlib

matplotlib.use("Agg")

import numpy as np  # noqa: E402
import pytest  # noqa: E402
from matplotlib.figure import Figure  # noqa: E402
from matplotlib.patches import Rectangle  # noqa: E402
from PIL import Image  # noqa: E402

from tcul_helpers.data.records import ImageRecord  # noqa: E402
from tcul_helpers.figures.ranked_lists import (  # noqa: E402
    CORRECT_COLOR,
    WRONG_COLOR,
    plot_ranked_lists,
    ranked_lists,
)
from tcul_helpers.infra.errors import TCULError  # noqa: E402
from tcul_helpers.measurement.evaluation import evaluate_features, evaluate_reference  # noqa: E402


def _world(seed=0, nq=8, ng=40, skipped=False):
    """Random 6-d features; gallery pids 1..5 plus distractors (0) and junk (-1), cameras
    1..3, so lists lose same-pid-same-camera images. Every query has a cross-camera true
    match unless ``skipped`` (then the last query's only same-pid image shares its camera)."""
    rng = np.random.default_rng(seed)
    q_pids = rng.integers(1, 6, nq)
    q_cams = rng.integers(1, 4, nq)
    g_pids = rng.choice([-1, 0, 1, 2, 3, 4, 5], ng)
    g_cams = rng.integers(1, 4, ng)
    for k, (p, c) in enumerate(zip(q_pids, q_cams, strict=True)):  # one sure true match each
        g_pids[k], g_cams[k] = p, c % 3 + 1
        g_pids[nq + k], g_cams[nq + k] = p, c  # and a same-camera one, to be removed
    if skipped:
        q_pids[-1], q_cams[-1] = 9, 1
        g_pids[nq - 1], g_cams[nq - 1] = 9, 1
    q = rng.normal(size=(nq, 6)).astype(np.float32)
    g = rng.normal(size=(ng, 6)).astype(np.float32)
    return q, g, q_pids, g_pids, q_cams, g_cams


def _kit(q, g, q_pids, g_pids, q_cams, g_cams):
    return evaluate_features(q, g, q_pids, g_pids, q_cams, g_cams, max_rank=10,
                             num_threads=1, progress=False)


def test_removed_images_never_appear():
    q, g, qp, gp, qc, gc = _world()
    lists = ranked_lists(q, g, qp, gp, qc, gc, range(len(qp)), top=len(gp))
    for e in lists:
        i = e["query"]
        shown = e["gallery"]
        same_cam_same_pid = (gp == qp[i]) & (gc == qc[i])
        assert not same_cam_same_pid[shown].any()
        assert not (gp[shown] == -1).any()
        # every other gallery image is in the full list, each once
        n_left = int((~same_cam_same_pid & (gp != -1)).sum())
        assert len(set(shown.tolist())) == len(shown) == n_left
        np.testing.assert_array_equal(e["correct"], gp[shown] == qp[i])
        assert e["n_relevant"] == int(e["correct"].sum()) >= 1
        dist = np.linalg.norm(q[i] - g[shown], axis=1)
        assert np.all(np.diff(dist) >= -1e-5)  # ranked by distance


def test_hand_computed_list():
    """Query pid 1 cam 1 at 0; gallery at 1..5: own camera (removed), other person,
    true match, junk (removed), true match -> matches at ranks 2 and 3."""
    q = np.zeros((1, 1), np.float32)
    g = np.arange(1, 6, dtype=np.float32)[:, None]
    gp, gc = np.array([1, 2, 1, -1, 1]), np.array([1, 2, 2, 2, 3])
    (e,) = ranked_lists(q, g, [1], gp, [1], gc, [0], top=8)
    assert e["gallery"].tolist() == [1, 2, 4] and e["correct"].tolist() == [False, True, True]
    assert e["first_correct_rank"] == 2 and e["n_relevant"] == 2
    assert e["ap"] == pytest.approx((1 / 2 + 2 / 3) / 2)
    cmc, mAP = _kit(q, g, [1], gp, [1], gc)
    assert mAP == pytest.approx(e["ap"], abs=1e-12) and cmc[0] == 0.0 and cmc[1] == 1.0


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_per_query_numbers_add_up_to_the_kits_rank_k_and_map(seed):
    q, g, qp, gp, qc, gc = _world(seed)
    lists = ranked_lists(q, g, qp, gp, qc, gc, range(len(qp)), top=3)
    assert [e["query"] for e in lists] == list(range(len(qp)))
    assert all(e["first_correct_rank"] is not None for e in lists)
    cmc, mAP = _kit(q, g, qp, gp, qc, gc)
    assert np.mean([e["ap"] for e in lists]) == pytest.approx(mAP, abs=1e-9)
    ranks = np.array([e["first_correct_rank"] for e in lists])
    assert np.mean(ranks == 1) == pytest.approx(cmc[0], abs=1e-12)
    assert np.mean(ranks <= 5) == pytest.approx(cmc[4], abs=1e-12)
    # the numbers are not trivial: some queries miss at rank 1
    assert 0 < mAP < 1 and cmc[0] < 1
    # top only cuts the list shown, not the numbers
    full = ranked_lists(q, g, qp, gp, qc, gc, range(len(qp)), top=len(gp))
    for a, b in zip(lists, full, strict=True):
        assert len(a["gallery"]) == 3
        assert a["gallery"].tolist() == b["gallery"][:3].tolist()
        assert (a["ap"], a["first_correct_rank"]) == (b["ap"], b["first_correct_rank"])


def test_query_without_true_match_is_skipped_like_the_kit():
    q, g, qp, gp, qc, gc = _world(3, skipped=True)
    lists = ranked_lists(q, g, qp, gp, qc, gc, range(len(qp)))
    last = lists[-1]
    assert last["first_correct_rank"] is None and last["ap"] is None
    assert last["n_relevant"] == 0 and not last["correct"].any()
    cmc, mAP = _kit(q, g, qp, gp, qc, gc)
    valid = [e for e in lists if e["ap"] is not None]
    assert len(valid) == len(qp) - 1
    assert np.mean([e["ap"] for e in valid]) == pytest.approx(mAP, abs=1e-9)
    assert np.mean([e["first_correct_rank"] == 1 for e in valid]) == pytest.approx(cmc[0])


def test_ties_are_broken_by_gallery_index():
    """Four gallery images at distance 1 (exact in float32): ranked by gallery index."""
    q = np.array([[0, 0], [5, 5]], np.float32)
    g = np.array([[1, 0], [0, 1], [1, 0], [-1, 0], [0, -1], [5, 6]], np.float32)
    qp, qc = np.array([1, 2]), np.array([1, 1])
    gp, gc = np.array([5, 1, 1, 7, 1, 2]), np.array([2, 2, 3, 2, 1, 2])
    lists = ranked_lists(q, g, qp, gp, qc, gc, [0, 1])
    e = lists[0]
    assert e["gallery"].tolist() == [0, 1, 2, 3, 5]  # 4: same pid, same camera
    assert e["correct"].tolist() == [False, True, True, False, False]
    assert e["first_correct_rank"] == 2 and e["ap"] == pytest.approx((1 / 2 + 2 / 3) / 2)
    cmc, mAP = _kit(q, g, qp, gp, qc, gc)
    ref_cmc, ref_map = evaluate_reference(np.linalg.norm(q[:, None] - g[None], axis=2),
                                          qp, gp, qc, gc, max_rank=10, progress=False)
    assert np.mean([x["ap"] for x in lists]) == pytest.approx(mAP) == pytest.approx(ref_map)
    np.testing.assert_allclose(cmc, ref_cmc)
    # deterministic: the same lists again, and in any order or subset of queries
    for again in (ranked_lists(q, g, qp, gp, qc, gc, [0, 1]),
                  ranked_lists(q, g, qp, gp, qc, gc, [1, 0])[::-1]):
        for a, b in zip(lists, again, strict=True):
            assert a["query"] == b["query"] and a["gallery"].tolist() == b["gallery"].tolist()
            assert (a["ap"], a["first_correct_rank"]) == (b["ap"], b["first_correct_rank"])


def test_bad_arguments_raise():
    q, g, qp, gp, qc, gc = _world()
    with pytest.raises(TCULError, match="out of range"):
        ranked_lists(q, g, qp, gp, qc, gc, [len(qp)])
    with pytest.raises(TCULError, match="top"):
        ranked_lists(q, g, qp, gp, qc, gc, [0], top=0)
    with pytest.raises(TCULError, match="q_pids"):
        ranked_lists(q, g, qp[:-1], gp, qc, gc, [0])
    assert ranked_lists(q, g, qp, gp, qc, gc, []) == []


def _records(tmp_path, pids, camids, prefix):
    out = []
    for i, (p, c) in enumerate(zip(pids, camids, strict=True)):
        path = tmp_path / f"{prefix}{i}.png"
        Image.fromarray(np.full((32, 16, 3), (i * 40) % 255, np.uint8)).save(path)
        out.append(ImageRecord(str(path), int(p), int(c), i, int(p)))
    return out


def test_plot_ranked_lists(tmp_path):
    q = np.zeros((2, 1), np.float32)
    q[1] = 10
    g = np.arange(1, 6, dtype=np.float32)[:, None]
    qp, qc = np.array([1, 3]), np.array([1, 1])
    gp, gc = np.array([1, 2, 1, -1, 1]), np.array([1, 2, 2, 2, 3])
    lists = ranked_lists(q, g, qp, gp, qc, gc, [0, 1], top=3)
    fig = plot_ranked_lists(_records(tmp_path, qp, qc, "q"), _records(tmp_path, gp, gc, "g"),
                            lists, title="two queries")
    assert isinstance(fig, Figure)
    assert len(fig.axes) == 2 * (1 + 3)
    for r, e in enumerate(lists):
        row = fig.axes[4 * r: 4 * r + 4]
        assert all(len(ax.get_images()) == 1 for ax in row[: 1 + len(e["gallery"])])
        gids = [p.get_gid() for ax in row for p in ax.patches if isinstance(p, Rectangle)]
        assert gids == ["query"] + ["correct" if c else "wrong" for c in e["correct"]]
        for ax, ok in zip(row[1:], e["correct"], strict=True):
            (border,) = ax.patches
            assert matplotlib.colors.to_hex(border.get_edgecolor()) == (
                CORRECT_COLOR if ok else WRONG_COLOR)
    assert [ax.get_title() for ax in fig.axes[1:4]] == ["1: id 2 c2", "2: id 1 c2", "3: id 1 c3"]
    texts = [t.get_text() for ax in fig.axes for t in ax.texts]
    assert "first correct at rank 2, AP = 0.58" in texts
    assert "no true match left: skipped by rank-k and mAP" in texts  # query pid 3
    assert fig._suptitle.get_text().startswith("two queries")
    fig.savefig(tmp_path / "ranked.png")  # draws under Agg
    with pytest.raises(TCULError):
        plot_ranked_lists([], [], [])
