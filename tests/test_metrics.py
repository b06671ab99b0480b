"""Scores of pseudo-labels against the ground truth (``tcul_helpers.measurement.metrics``): pairwise
precision / recall, NMI / ARI, and the same- / cross-camera pair counts, on hand-computed
cases and against a pair-by-pair reference."""

from __future__ import annotations

import numpy as np
import pytest

from tcul_helpers.infra.errors import TCULError
from tcul_helpers.measurement.metrics import (
    camera_pair_scores,
    cluster_purity,
    clustering_scores,
    pairwise_precision,
    pairwise_recall,
)


def test_pairwise_metrics_on_a_hand_computed_case():
    pseudo = [0, 0, 0, 1, 1]
    truth = [7, 7, 8, 8, 8]
    # pairs sharing a pseudo-label: (0,1) (0,2) (1,2) (3,4) -> same person: (0,1) (3,4)
    assert pairwise_precision(pseudo, truth) == pytest.approx(2 / 4)
    # same-person pairs: (0,1) (2,3) (2,4) (3,4) -> sharing a pseudo-label: (0,1) (3,4)
    assert pairwise_recall(pseudo, truth) == pytest.approx(2 / 4)
    mask = [True, True, False, True, True]
    assert pairwise_precision(pseudo, truth, mask) == pytest.approx(1.0)
    assert np.isnan(pairwise_precision([0, 1], [5, 5]))
    perfect = clustering_scores([1, 1, 2, 2], [5, 5, 9, 9])
    assert perfect == {"nmi": pytest.approx(1.0), "ari": pytest.approx(1.0)}
    with pytest.raises(TCULError, match="differ in length"):
        pairwise_precision([0, 1], [0])


def _naive_camera_pairs(pseudo, truth, cams, mask):
    """Reference for camera_pair_scores: every pair of selected images, one by one."""
    idx = [i for i in range(len(pseudo)) if mask[i]]
    counts = {"same": 0, "same_true": 0, "cross": 0, "cross_true": 0}
    for a_pos, a in enumerate(idx):
        for b in idx[a_pos + 1:]:
            if pseudo[a] != pseudo[b]:
                continue
            kind = "same" if cams[a] == cams[b] else "cross"
            counts[kind] += 1
            counts[kind + "_true"] += truth[a] == truth[b]
    spans = [len({cams[i] for i in idx if pseudo[i] == k}) for k in {pseudo[i] for i in idx}]
    return counts, sum(spans) / len(spans)


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_camera_pair_scores_match_a_pair_by_pair_count(seed):
    rng = np.random.default_rng(seed)
    n = 60
    pseudo, truth = rng.integers(0, 6, n), rng.integers(0, 9, n)
    cams, mask = rng.integers(1, 4, n), rng.random(n) < 0.7
    got = camera_pair_scores(pseudo, truth, cams, mask)
    counts, span = _naive_camera_pairs(pseudo, truth, cams, mask)
    assert got["pairs_same_camera"] == counts["same"]
    assert got["pairs_cross_camera"] == counts["cross"]
    assert got["true_pairs_cross_camera"] == counts["cross_true"]
    assert got["precision_same_camera"] == pytest.approx(counts["same_true"] / counts["same"])
    assert got["precision_cross_camera"] == pytest.approx(counts["cross_true"] / counts["cross"])
    assert got["cameras_per_pseudo_id"] == pytest.approx(span)


def test_camera_pair_scores_hand_case_and_errors():
    # pseudo-id 0: images 0, 1 in camera 1 (same person) and image 2 in camera 2 (another)
    got = camera_pair_scores([0, 0, 0, 1], [5, 5, 6, 7], [1, 1, 2, 1])
    assert got["pairs_same_camera"] == 1 and got["precision_same_camera"] == 1.0
    assert got["pairs_cross_camera"] == 2 and got["precision_cross_camera"] == 0.0
    assert got["cameras_per_pseudo_id"] == pytest.approx(1.5)
    assert np.isnan(camera_pair_scores([0, 1], [5, 5], [1, 2])["precision_cross_camera"])
    with pytest.raises(TCULError, match="camids"):
        camera_pair_scores([0, 1], [5, 5], [1])


def test_cluster_purity_on_a_hand_computed_case():
    # cluster 0: true 7, 7, 8 (majority 7: 2 images); cluster 1: true 8, 9 (majority: 1)
    assert cluster_purity([0, 0, 0, 1, 1], [7, 7, 8, 8, 9]) == pytest.approx(3 / 5)
    assert cluster_purity([3, 3, 5], [1, 1, 2]) == 1.0
    with pytest.raises(TCULError, match="differ in length"):
        cluster_purity([0, 1], [0])
