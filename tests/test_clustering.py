"""Clustering: Eq. 1-2 assignment and Eq. 6-7 centre update, checked against hand-computed
values, naive loops and scikit-learn; the shared input checks' one-line messages."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from sklearn.metrics.pairwise import cosine_similarity

from tcul_helpers.infra.array_checks import to_numpy
from tcul_helpers.infra.errors import TCULError
from tcul_helpers.method.assignment import (
    assign_clusters,
    cosine_similarity_to_centers,
    similarity_to_own_center,
)
from tcul_helpers.method.center_update import update_centers
from tcul_helpers.method.kmeans import kmeans_init
from tcul_helpers.method.kmeans_engine import kmeans

R = 1 / math.sqrt(2)


# ------------------------------------------------------------------------------ Eq. 1-2
def test_assign_hand_example_with_tie_and_zero_vector():
    centers = np.array([[1.0, 1.0], [1.0, -1.0], [0.0, 1.0]])
    feats = np.array(
        [
            [1.0, 0.0],  # cos 1/sqrt2 to c0 and c1: a tie -> lowest k = 0
            [0.0, 0.0],  # zero vector: cos 0 with everything, no NaN -> 0
            [0.0, 2.0],  # c2 exactly
            [2.0, -2.0],  # c1 exactly
            [-1.0, 0.0],  # -1/sqrt2, -1/sqrt2, 0 -> c2
        ]
    )
    sim = cosine_similarity_to_centers(feats, centers)
    expected = np.array(
        [[R, R, 0.0], [0.0, 0.0, 0.0], [R, -R, 1.0], [0.0, 1.0, -R], [-R, -R, 0.0]]
    )
    np.testing.assert_allclose(sim, expected, atol=1e-12)
    labels = assign_clusters(feats, centers)
    assert labels.dtype == np.int64
    assert labels.tolist() == [0, 0, 2, 1, 2]
    # the tie goes to the lowest k whatever the order of the tied centres
    assert assign_clusters(feats[:1], centers[[1, 0, 2]]).tolist() == [0]
    assert assign_clusters(feats[:1], centers[[2, 1, 0]]).tolist() == [1]


def test_zero_center_gives_zero_similarity_not_nan():
    centers = np.array([[0.0, 0.0], [1.0, 1.0]])
    sim = cosine_similarity_to_centers(np.array([[-1.0, -1.0], [3.0, 0.0]]), centers)
    assert np.isfinite(sim).all()
    np.testing.assert_allclose(sim, [[0.0, -1.0], [0.0, R]], atol=1e-12)
    assert assign_clusters(np.array([[-1.0, -1.0]]), centers).tolist() == [0]


@pytest.mark.parametrize("dtype", [np.float64, np.float32])
def test_assign_agrees_with_sklearn_cosine_argmax(dtype):
    rng = np.random.default_rng(3)
    feats = rng.standard_normal((300, 24)).astype(dtype)
    centers = rng.standard_normal((17, 24)).astype(dtype)
    ref = cosine_similarity(feats.astype(np.float64), centers.astype(np.float64))
    sim = cosine_similarity_to_centers(feats, centers)
    assert sim.dtype == dtype
    np.testing.assert_allclose(sim, ref, atol=1e-5 if dtype == np.float32 else 1e-12)
    np.testing.assert_array_equal(assign_clusters(feats, centers), ref.argmax(axis=1))
    # torch tensors in, numpy out
    out = assign_clusters(torch.from_numpy(feats), torch.from_numpy(centers))
    assert isinstance(out, np.ndarray)
    np.testing.assert_array_equal(out, ref.argmax(axis=1))


def test_similarity_to_own_center_matches_loop():
    rng = np.random.default_rng(4)
    feats = rng.standard_normal((600, 8))  # more rows than one internal chunk
    centers = rng.standard_normal((5, 8))
    labels = rng.integers(0, 5, 600)
    got = similarity_to_own_center(feats, labels, centers)
    ref = [
        feats[i] @ centers[labels[i]]
        / (np.linalg.norm(feats[i]) * np.linalg.norm(centers[labels[i]]))
        for i in range(600)
    ]
    np.testing.assert_allclose(got, ref, atol=1e-12)


# ------------------------------------------------------------------------------ Eq. 6-7
CENTERS = np.array([[1.0, 1.0], [10.0, 10.0], [5.0, 5.0]])
FEATS = np.array([[0.0, 0.0], [2.0, 4.0], [6.0, 4.0]])
LABELS = np.array([0, 0, 2])  # cluster 1 is empty


def test_update_centers_hand_computed():
    beta = 1e-6
    new = update_centers(CENTERS, FEATS, LABELS, lambda_c=0.5, beta=beta)
    # k=0: sum (c0 - x) = (1,1) + (-1,-3) = (0,-2); delta = (0,-2)/(2+beta)
    # k=2: (5,5) - (6,4) = (-1,1); delta = (-1,1)/(1+beta); k=1: empty, unchanged
    expected = np.array(
        [
            [1.0, 1.0 + 0.5 * 2 / (2 + beta)],
            [10.0, 10.0],
            [5.0 + 0.5 / (1 + beta), 5.0 - 0.5 / (1 + beta)],
        ]
    )
    np.testing.assert_allclose(new, expected, rtol=0, atol=1e-12)


def test_update_centers_limits_of_lambda_c():
    same = update_centers(CENTERS, FEATS, LABELS, lambda_c=0.0)
    np.testing.assert_array_equal(same, CENTERS)
    # lambda_c = 1 and a tiny beta: every non-empty centre jumps (almost) to its member mean,
    # the empty one stays where it was
    near = update_centers(CENTERS, FEATS, LABELS, lambda_c=1.0, beta=1e-9)
    np.testing.assert_allclose(near, [[1.0, 2.0], [10.0, 10.0], [6.0, 4.0]], atol=1e-8)


def test_update_centers_beta_effect():
    # k=2 has one member: delta = (-1, 1) / (1 + beta); beta = 2 -> a third of the way
    new = update_centers(CENTERS, FEATS, LABELS, lambda_c=0.5, beta=2.0)
    np.testing.assert_allclose(new[2], [5.0 + 0.5 / 3, 5.0 - 0.5 / 3], atol=1e-12)
    np.testing.assert_allclose(new[0], [1.0, 1.0 + 0.5 * 2 / 4], atol=1e-12)
    # a larger beta always moves less
    moves = [
        np.abs(update_centers(CENTERS, FEATS, LABELS, 0.5, b) - CENTERS).sum()
        for b in (1e-6, 0.5, 5.0, 500.0)
    ]
    assert moves == sorted(moves, reverse=True)


def test_update_centers_does_not_mutate_inputs():
    c, f, lab = CENTERS.copy(), FEATS.copy(), LABELS.copy()
    update_centers(c, f, lab)
    np.testing.assert_array_equal(c, CENTERS)
    np.testing.assert_array_equal(f, FEATS)
    np.testing.assert_array_equal(lab, LABELS)
    ct = torch.tensor(CENTERS, dtype=torch.float32)
    out = update_centers(ct, torch.tensor(FEATS, dtype=torch.float32), torch.tensor(LABELS))
    assert torch.equal(ct, torch.tensor(CENTERS, dtype=torch.float32))
    assert isinstance(out, np.ndarray) and out.dtype == np.float32


def test_update_centers_matches_naive_eq6_loop():
    rng = np.random.default_rng(5)
    K, N, D = 6, 50, 7
    centers = rng.standard_normal((K, D))
    feats = rng.standard_normal((N, D))
    labels = rng.integers(0, K - 1, N)  # K-1 never used: an empty cluster
    lam, beta = 0.3, 0.01
    ref = centers.copy()
    for k in range(K):
        num = np.zeros(D)
        cnt = 0
        for i in range(N):
            if labels[i] == k:
                num += centers[k] - feats[i]
                cnt += 1
        ref[k] = centers[k] - lam * num / (beta + cnt)
    np.testing.assert_allclose(update_centers(centers, feats, labels, lam, beta), ref, atol=1e-12)


# ------------------------------------------------------------------------------ bad input

def test_bad_inputs_have_one_line_messages():
    good = np.random.default_rng(0).random((6, 3))
    nan = good.copy()
    nan[2, 1] = np.nan
    cases = [
        (lambda: kmeans_init(nan, 2, 0), "features contain NaN"),
        (lambda: assign_clusters(nan, good[:2]), "features contain NaN"),
        (lambda: update_centers(good[:2], nan, [0] * 6), "features contain NaN"),
        (lambda: assign_clusters(good, nan[2:4]), "centers contain NaN"),
        (lambda: kmeans_init(np.empty((0, 3)), 1, 0), "features are empty"),
        (lambda: assign_clusters(np.empty((0, 3)), good[:2]), "features are empty"),
        (lambda: kmeans_init(good[0], 1, 0), "2-D array"),
        (lambda: assign_clusters(good, np.ones((2, 4))), "centers have 4 dims"),
        (lambda: update_centers(good[:2], good, [0, 1, 0]), "labels have 3 entries"),
        (lambda: update_centers(good[:2], good, [0, 1, 0, 1, 0, 2]), "labels must lie in 0..1"),
        (lambda: update_centers(good[:2], good, [0] * 6, lambda_c=1.5), "lambda_c"),
        (lambda: update_centers(good[:2], good, [0] * 6, beta=-1.0), "beta"),
        (lambda: update_centers(good[:2], good, [0] * 6, beta=0.0), "small positive number"),
        (lambda: kmeans(good, 2, 0, n_iter=0), "n_iter"),
        (lambda: kmeans(good, 2, 0, init=good[:3]), "init has 3 centres"),
        (lambda: kmeans_init(good, 2.5, 0), "must be an integer"),
    ]
    for call, text in cases:
        with pytest.raises(TCULError, match=text) as err:
            call()
        assert "\n" not in str(err.value)


def test_to_numpy_reads_bfloat16_tensors_and_refuses_ragged_input():
    t = torch.tensor([[1.5, -2.0]], dtype=torch.bfloat16)
    np.testing.assert_array_equal(to_numpy(t), [[1.5, -2.0]])
    with pytest.raises(TCULError, match="features is not an array") as err:
        to_numpy([[1.0, 2.0], [3.0]], "features")
    assert "\n" not in str(err.value)
