"""Checkers of step (c): Eq. 3's temporal selection (notebook 04) and SUL's similarity
selection (notebook 04)."""

from __future__ import annotations

from collections.abc import Callable

import numpy as np

from ...method.selection import select_by_similarity, select_temporal, temporal_anchors
from .assignment import unit_rows
from .checking import Case, CheckResult, Mistake, compare_exact, run_checks

TEMPORAL_MISTAKES = [
    Mistake("< instead of <=: images exactly lambda_fr frames from the anchor dropped",
            lambda f, lab, c, cams, fr, lam:
            temporal_anchors(f, lab, c, cams, fr, lam).frame_distance < lam),
    Mistake("no grouping by camera: frame ids of different cameras compared",
            lambda f, lab, c, cams, fr, lam:
            temporal_anchors(f, lab, c, np.zeros_like(np.asarray(cams)), fr, lam).kept),
    Mistake("the anchor is the LEAST similar image of its group (argmin instead of argmax)",
            lambda f, lab, c, cams, fr, lam:
            temporal_anchors(-np.asarray(f), lab, c, cams, fr, lam).kept),
]


def select_temporal_cases(seed: int = 0) -> list[Case]:
    """Inputs of :func:`check_select_temporal`."""
    rng = np.random.default_rng(seed)
    n, k = 40, 4
    x = rng.normal(size=(n, 3)).astype(np.float32)
    c = rng.normal(size=(k, 3)).astype(np.float32)
    lab = rng.integers(0, k, n)
    cams = rng.integers(1, 4, n)
    fr = rng.integers(0, 400, n)
    # a group whose anchor is image 0 (identical to its centre) and frames at the boundary
    bx = np.array([[1, 0], [0.9, 0.1], [0.8, 0.3], [0.7, 0.4], [0, 1]], np.float32)
    bc = np.array([[1, 0], [0, 1]], np.float32)
    blab = np.array([0, 0, 0, 0, 1])
    bcam = np.array([1, 1, 1, 1, 1])
    bfr = np.array([100, 150, 50, 151, 7])
    # one cluster seen by one camera only, the other by two cameras with reused frame ids
    # (camera 3's anchor, image 5 at frame 5000, is 4000 frames from camera 1's anchor: a
    # selection that ignores the camera keeps image 4 and drops image 5)
    ox = np.array([[1, 0], [0.9, 0.2], [0, 1], [0.1, 0.9], [0.3, 1], [0.2, 1]], np.float32)
    olab = np.array([0, 0, 1, 1, 1, 1])
    ocam = np.array([2, 2, 1, 1, 3, 3])
    ofr = np.array([10, 500, 1000, 1010, 1000, 5000])
    # two images equally similar to the centre: the anchor is the lower index
    tx = np.array([[1, 1], [2, 2], [1, 0.2]], np.float32)
    tc = np.array([[1, 1]], np.float32)
    tfr = np.array([0, 60, 30])
    # one group: the most similar image is far (in frames) from the least similar one
    ax = np.array([[1, 0], [0.6, 0.8], [0, 1]], np.float32)
    ac = np.array([[1, 0]], np.float32)
    one = np.zeros(3, np.int64)
    # targeted cases first, so that a typical mistake gets its own hint; random last
    return [
        Case("anchor = the most similar image", (ax, one, ac, one + 1,
                                                  np.array([0, 500, 1000]), 100),
              "x_min is the image MOST similar to the centre c_k: argmax of the cosine, "
              "not argmin."),
        Case("frames exactly lambda_fr away", (bx, blab, bc, bcam, bfr, 50),
              "Eq. 3 keeps frame distances equal to lambda_fr: use <=, not <."),
        Case("cluster in one camera only", (ox, olab, bc, ocam, ofr, 20),
              "compare frame ids only inside one camera: every (camera, cluster) group has "
              "its own anchor, even when the cluster appears in a single camera."),
        Case("lambda_fr = 0", (x, lab, c, cams, fr, 0),
              "with lambda_fr = 0 only the anchors (and images at the same frame) are kept; "
              "the anchor is always kept."),
        Case("similarity tie for the anchor", (tx, np.zeros(3, np.int64), tc,
                                                np.ones(3, np.int64), tfr, 40),
              "images 0 and 1 are equally similar to the centre: the anchor is the lowest "
              "index (a stable sort or np.argmax gives it)."),
        Case("random", (x, lab, c, cams, fr, 100),
              "group images by (camera, cluster); the anchor x_min is the image MOST similar "
              "to the centre (largest cosine); keep |fid(x_min) - fid(x)| <= lambda_fr."),
    ]


def check_select_temporal(fn: Callable) -> CheckResult:
    """Eq. 3: ``fn(features, labels, centers, camids, frames, lambda_fr)`` -> bool mask."""
    return run_checks("check_select_temporal (Eq. 3)", fn, select_temporal,
                      select_temporal_cases(),
                      ("features", "labels", "centers", "camids", "frames", "lambda_fr"),
                      compare_exact, TEMPORAL_MISTAKES)



# --------------------------------------------------------------------------------------
# SUL: similarity selection
# --------------------------------------------------------------------------------------
def _own_cosine(x, lab, c) -> np.ndarray:
    return np.einsum("ij,ij->i", unit_rows(x), unit_rows(c)[np.asarray(lab)])


SIMILARITY_MISTAKES = [
    Mistake(">= instead of >: an image exactly at the threshold kept (SUL / PUL keep > only)",
            lambda x, lab, c, thr: _own_cosine(x, lab, c) >= thr),
    Mistake("the similarity to the MOST similar centre instead of to the image's own centre "
            "c_{l_i}", lambda x, lab, c, thr: (unit_rows(x) @ unit_rows(c).T).max(1) > thr),
    Mistake("a plain dot product instead of the cosine",
            lambda x, lab, c, thr: np.einsum("ij,ij->i", np.asarray(x, np.float64),
                                             np.asarray(c, np.float64)[np.asarray(lab)]) > thr),
    Mistake("the images FAR from their centre kept (< instead of >)",
            lambda x, lab, c, thr: _own_cosine(x, lab, c) < thr),
]


def select_similarity_cases(seed: int = 0) -> list[Case]:
    """Inputs of :func:`check_select_similarity` (features, labels, centers, threshold)."""
    rng = np.random.default_rng(seed)
    x = rng.normal(size=(30, 3))
    c = rng.normal(size=(4, 3))
    lab = rng.integers(0, 4, 30)
    # cos = 3/5 = 0.6 exactly for image 0; image 1 lies on its centre (cos 1)
    edge_x, edge_c = np.array([[3.0, 4.0], [2.0, 0.0], [0.0, 1.0]]), np.array([[1.0, 0.0]])
    # image 0 carries label 1 although centre 0 is the more similar one
    own_x = np.array([[1.0, 0.05], [0.1, 1.0], [0.9, 0.1]])
    own_c = np.array([[1.0, 0.0], [0.0, 1.0]])
    own_lab = np.array([1, 1, 0])
    # a long centre: the dot product passes the threshold, the cosine does not
    long_x, long_c = np.array([[1.0, 1.0], [0.2, 1.0], [1.0, 0.01]]), np.array([[10.0, 0.0]])
    zero = np.zeros(3, np.int64)
    return [
        Case("a long centre", (long_x, zero, long_c, 0.85),
             "Eq. 1's cosine divides by |f(x_i)| |c_k|: a plain dot product grows with the "
             "centre's length."),
        Case("similarity exactly at the threshold", (edge_x, zero, edge_c, 0.6),
             "keep x_i iff sim > threshold (strict, as SUL / PUL): cos = 0.6 with threshold "
             "0.6 is not kept."),
        Case("label not the most similar centre", (own_x, own_lab, own_c, 0.5),
             "compare each image with ITS OWN centre c_{l_i} (its label), not with the centre "
             "it is most similar to."),
        Case("random", (x, lab, c, 0.3),
             "keep x_i iff cos(f(x_i), c_{l_i}) > threshold: own centre, cosine, strict >."),
    ]


def check_select_similarity(fn: Callable) -> CheckResult:
    """SUL's selection: ``fn(features, labels, centers, threshold)`` -> bool mask, True iff
    ``cos(f(x_i), c_{l_i}) > threshold``."""
    return run_checks("check_select_similarity (SUL)", fn, select_by_similarity,
                      select_similarity_cases(), ("features", "labels", "centers", "threshold"),
                      compare_exact, SIMILARITY_MISTAKES)
