"""Reliable-sample selection: Eq. 3 (temporal, TCUL) and cosine threshold (SUL/PUL),
checked against a hand-built example and naive per-(camera, cluster) loops."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from tcul_helpers.infra.errors import TCULError
from tcul_helpers.method.selection import (
    TemporalSelection,
    select_by_similarity,
    select_temporal,
    temporal_anchors,
)

CENTERS = np.array([[1.0, 0.0], [0.0, 1.0], [-1.0, -1.0]])
# (camera, label, feature, frame); lambda_fr = 100
ROWS = [
    (1, 0, (1.0, 0.1), 1000),  # 0: most similar to c0 in camera 1 -> anchor
    (1, 0, (1.0, 0.5), 1100),  # 1: exactly lambda_fr away -> kept
    (1, 0, (1.0, 0.6), 1101),  # 2: lambda_fr + 1 -> dropped
    (1, 0, (1.0, 0.2), 900),  # 3: 100 before -> kept
    (2, 0, (1.0, 0.3), 5000),  # 4: same cluster, camera 2: far from camera 2's anchor
    (2, 0, (1.0, 0.9), 7040),  # 5: 40 after the anchor -> kept
    (2, 0, (1.0, 0.05), 7000),  # 6: camera 2's anchor for cluster 0
    (3, 1, (0.1, 1.0), 10),  # 7: anchor of (camera 3, cluster 1)
    (3, 1, (0.5, 1.0), 20),  # 8: kept
    (4, 1, (0.2, 1.0), 0),  # 9: tie with 10 -> the lower index is the anchor
    (4, 1, (0.2, 1.0), 500),  # 10: dropped (500 from the anchor)
    (1, 1, (0.3, 1.0), 1000),  # 11: alone in (camera 1, cluster 1): its own anchor
    (5, 2, (-1.0, -1.2), 3),  # 12: cluster 2 exists in camera 5 only; 101 away -> dropped
    (5, 2, (-1.0, -0.9), 104),  # 13: more similar to c2 than 12 -> anchor
]
CAMS = np.array([r[0] for r in ROWS])
LABELS = np.array([r[1] for r in ROWS])
FEATS = np.array([r[2] for r in ROWS])
FRAMES = np.array([r[3] for r in ROWS])
ANCHORS = [0, 0, 0, 0, 6, 6, 6, 7, 7, 9, 9, 11, 13, 13]
KEPT = [1, 1, 0, 1, 0, 1, 1, 1, 1, 1, 0, 1, 0, 1]
DIST = [0, 100, 101, 100, 2000, 40, 0, 0, 10, 0, 500, 0, 101, 0]


def test_hand_built_example():
    sel = temporal_anchors(FEATS, LABELS, CENTERS, CAMS, FRAMES, lambda_fr=100)
    assert isinstance(sel, TemporalSelection)
    assert sel.anchor.tolist() == ANCHORS
    assert sel.frame_distance.tolist() == DIST
    assert sel.kept.astype(int).tolist() == KEPT
    assert sel.n_kept == sum(KEPT)
    assert np.flatnonzero(sel.is_anchor).tolist() == [0, 6, 7, 9, 11, 13]
    assert sel.similarity[0] == pytest.approx(1 / math.sqrt(1.01))
    # one group per (camera, cluster) pair present
    assert len(np.unique(sel.group)) == 6
    kept = select_temporal(FEATS, LABELS, CENTERS, CAMS, FRAMES, 100)
    assert kept.dtype == bool and kept.astype(int).tolist() == KEPT


def test_window_edges_and_zero_window():
    lam99 = select_temporal(FEATS, LABELS, CENTERS, CAMS, FRAMES, 99)
    assert not lam99[1] and not lam99[3]  # 100 > 99
    lam101 = select_temporal(FEATS, LABELS, CENTERS, CAMS, FRAMES, 101)
    assert lam101[2] and lam101[12]
    only_anchors = select_temporal(FEATS, LABELS, CENTERS, CAMS, FRAMES, 0)
    assert np.flatnonzero(only_anchors).tolist() == [0, 6, 7, 9, 11, 13]


def test_tie_for_x_min_goes_to_the_lowest_index():
    # swap images 9 and 10 (identical features): now the frame-500 image comes first
    p = np.arange(len(ROWS))
    p[[9, 10]] = [10, 9]
    sel = temporal_anchors(FEATS[p], LABELS[p], CENTERS, CAMS[p], FRAMES[p], 100)
    assert sel.anchor[9] == 9 and sel.anchor[10] == 9
    assert FRAMES[p][9] == 500 and sel.kept[9] and not sel.kept[10]


def test_frames_of_other_cameras_are_never_compared():
    # image 4 (camera 2) has a frame right next to camera 1's anchor; still dropped
    frames = FRAMES.copy()
    frames[4] = 1000
    sel = temporal_anchors(FEATS, LABELS, CENTERS, CAMS, frames, 100)
    assert sel.anchor[4] == 6 and not sel.kept[4]


def _naive_temporal(feats, labels, centers, cams, frames, lam):
    n = len(feats)
    anchor = np.full(n, -1)
    for j in sorted(set(cams.tolist())):
        for k in sorted(set(labels.tolist())):
            members = [i for i in range(n) if cams[i] == j and labels[i] == k]
            if not members:
                continue
            best, best_sim = None, -np.inf
            for i in members:
                c = centers[k]
                s = feats[i] @ c / (np.linalg.norm(feats[i]) * np.linalg.norm(c))
                if s > best_sim:  # strict: ties keep the lower index
                    best, best_sim = i, s
            for i in members:
                anchor[i] = best
    kept = np.array([abs(frames[anchor[i]] - frames[i]) <= lam for i in range(n)])
    return anchor, kept


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_temporal_matches_naive_loop_on_random_data(seed):
    rng = np.random.default_rng(seed)
    n, d, K = 400, 6, 7
    feats = rng.standard_normal((n, d))
    centers = rng.standard_normal((K, d))
    labels = rng.integers(0, K, n)
    cams = rng.integers(1, 5, n)
    frames = rng.integers(0, 600, n)
    if seed == 2:  # float frame ids and torch inputs
        frames = frames + 0.5 * rng.random(n)
        feats_in, labels_in = torch.from_numpy(feats), torch.from_numpy(labels)
    else:
        feats_in, labels_in = feats, labels
    ref_anchor, ref_kept = _naive_temporal(feats, labels, centers, cams, frames, 100)
    sel = temporal_anchors(feats_in, labels_in, centers, cams, frames, 100)
    np.testing.assert_array_equal(sel.anchor, ref_anchor)
    np.testing.assert_array_equal(sel.kept, ref_kept)
    kept = select_temporal(feats, labels, centers, cams, frames, 100)
    np.testing.assert_array_equal(kept, ref_kept)


# ------------------------------------------------------------------------------ SUL / PUL
def test_select_by_similarity_matches_naive_loop():
    rng = np.random.default_rng(7)
    feats = rng.standard_normal((300, 5)) + 1.0
    centers = rng.standard_normal((4, 5)) + 1.0
    labels = rng.integers(0, 4, 300)
    for thr in (0.85, 0.3, -0.2):
        ref = [
            feats[i] @ centers[labels[i]]
            / (np.linalg.norm(feats[i]) * np.linalg.norm(centers[labels[i]]))
            > thr
            for i in range(300)
        ]
        got = select_by_similarity(feats, labels, centers, threshold=thr)
        assert got.dtype == bool
        np.testing.assert_array_equal(got, ref)
    assert select_by_similarity(feats, labels, centers).sum() > 0  # default 0.85


def test_select_by_similarity_is_strict_and_uses_the_own_centre():
    feats = np.array([[3.0, 4.0], [3.0, 4.0]])  # cos to (1, 0) is exactly 0.6
    centers = np.array([[1.0, 0.0], [0.0, 1.0]])  # cos to (0, 1) is 0.8
    assert select_by_similarity(feats, [0, 1], centers, threshold=0.6).tolist() == [False, True]
    assert select_by_similarity(feats, [0, 1], centers, threshold=0.59).tolist() == [True, True]
    assert select_by_similarity(feats, [0, 1], centers, threshold=0.8).tolist() == [False, False]


# ------------------------------------------------------------------------------ bad input
NO_FRAMES = "this dataset has no frame ids \\(e.g. MSMT17\\): use selection=similarity"


def test_bad_inputs_have_one_line_messages():
    nan = FEATS.copy()
    nan[3, 0] = np.nan
    fr_none = [None] * len(ROWS)
    fr_some_none = list(FRAMES)
    fr_some_none[2] = None
    fr_nan = FRAMES.astype(float)
    fr_nan[5] = np.nan
    args = (FEATS, LABELS, CENTERS, CAMS)
    cases = [
        (lambda: select_temporal(*args, fr_none, 100), NO_FRAMES),
        (lambda: select_temporal(*args, fr_some_none, 100), NO_FRAMES),
        (lambda: select_temporal(*args, fr_nan, 100), NO_FRAMES),
        (lambda: select_temporal(*args, None, 100), NO_FRAMES),
        (lambda: select_temporal(*args, FRAMES, -1), "lambda_fr must be a number >= 0"),
        (lambda: select_temporal(*args, FRAMES, float("nan")), "lambda_fr must be a number"),
        (lambda: select_temporal(*args, FRAMES[:-1], 100), "frames have shape"),
        (lambda: select_temporal(FEATS, LABELS, CENTERS, CAMS[:-1], FRAMES, 100),
         "camids have shape"),
        (lambda: select_temporal(FEATS, LABELS, CENTERS, None, FRAMES, 100), "camids are missing"),
        (lambda: select_temporal(FEATS, LABELS[:-1], CENTERS, CAMS, FRAMES, 100),
         "labels have 13 entries"),
        (lambda: select_temporal(nan, LABELS, CENTERS, CAMS, FRAMES, 100), "features contain NaN"),
        (lambda: select_by_similarity(nan, LABELS, CENTERS), "features contain NaN"),
        (lambda: select_by_similarity(np.empty((0, 2)), [], CENTERS), "features are empty"),
        (lambda: select_by_similarity(FEATS, LABELS + 1, CENTERS), "labels must lie in 0..2"),
        (lambda: select_by_similarity(FEATS, LABELS, CENTERS, float("nan")), "threshold"),
    ]
    for call, text in cases:
        with pytest.raises(TCULError, match=text) as err:
            call()
        assert "\n" not in str(err.value)
