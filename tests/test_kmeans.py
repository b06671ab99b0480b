"""k-means (Algorithm 1, step 2) and PUL-style re-clustering, checked against a naive Lloyd
loop and scikit-learn."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from scipy.spatial.distance import cdist
from sklearn.cluster import KMeans
from sklearn.datasets import make_blobs

from tcul_helpers.infra.errors import TCULError
from tcul_helpers.method.kmeans import kmeans_init, kmeans_plus_plus, kmeans_recluster, lloyd
from tcul_helpers.method.kmeans_engine import _kmeanspp_seed, kmeans, sq_distance_table


def test_sq_distance_table_matches_cdist_and_leaves_out_the_terms_asked():
    rng = np.random.default_rng(0)
    x, c = rng.standard_normal((7, 5)), rng.standard_normal((3, 5))
    x_sq, c_sq = (x**2).sum(1), (c**2).sum(1)
    full = cdist(x, c, "sqeuclidean")
    np.testing.assert_allclose(sq_distance_table(x, c.T, x_sq=x_sq, c_sq=c_sq), full, atol=1e-12)
    np.testing.assert_allclose(sq_distance_table(x, c.T, c_sq=c_sq), full - x_sq[:, None],
                               atol=1e-12)
    np.testing.assert_allclose(sq_distance_table(x, c.T, x_sq=x_sq), full - c_sq[None, :],
                               atol=1e-12)


def _blobs(n=600, k=12, d=16, seed=0):
    return make_blobs(n, n_features=d, centers=k, random_state=seed)[0]


def test_kmeans_init_is_deterministic_for_a_seed():
    x = _blobs().astype(np.float32)
    a = kmeans_init(x, 12, seed=7)
    b = kmeans_init(x, 12, seed=7)
    assert a.shape == (12, 16) and a.dtype == np.float32
    np.testing.assert_array_equal(a, b)
    c = kmeans_init(torch.from_numpy(x), 12, seed=8)
    assert not np.array_equal(a, c)


def test_kmeans_inertia_close_to_sklearn_on_blobs():
    x = _blobs()
    ours = [kmeans(x, 12, seed=s).inertia for s in range(8)]
    theirs = [KMeans(12, random_state=s, n_init=1).fit(x).inertia_ for s in range(8)]
    assert np.median(ours) <= 1.02 * np.median(theirs)
    # the reported inertia is the objective of the returned centres
    res = kmeans(x, 12, seed=0)
    assert res.inertia == pytest.approx(cdist(x, res.centers, "sqeuclidean").min(1).sum(),
                                        rel=1e-9)


def _naive_lloyd(x, centers, n_iter=100):
    centers = centers.copy()
    for _ in range(n_iter):
        d = ((x[:, None, :] - centers[None, :, :]) ** 2).sum(-1)
        labels = d.argmin(1)
        new = np.stack([x[labels == k].mean(0) for k in range(len(centers))])
        if np.array_equal(new, centers):
            break
        centers = new
    d = ((x[:, None, :] - centers[None, :, :]) ** 2).sum(-1)
    return centers, d.argmin(1), d.min(1).sum()


def test_kmeans_lloyd_matches_naive_reference_from_the_same_init():
    x = _blobs(n=300, k=6, d=5, seed=1) + 0.0
    rng = np.random.default_rng(0)
    init = x[rng.choice(len(x), 6, replace=False)]
    ref_c, ref_l, ref_in = _naive_lloyd(x, init)
    res = kmeans(x, 6, seed=0, init=init, tol=0.0)
    assert res.converged
    np.testing.assert_array_equal(res.labels, ref_l)
    np.testing.assert_allclose(res.centers, ref_c, atol=1e-9)
    assert res.inertia == pytest.approx(ref_in, rel=1e-9)
    # and the same as scikit-learn's Lloyd from that init
    sk = KMeans(6, init=init, n_init=1, tol=0.0, algorithm="lloyd").fit(x)
    np.testing.assert_array_equal(res.labels, sk.labels_)


def test_kmeans_refills_an_empty_cluster():
    x = np.array([[0.0, 0.0], [0.1, 0.0], [0.0, 0.1], [5.0, 5.0], [5.1, 5.0], [9.0, 9.0]])
    init = np.array([[0.0, 0.0], [100.0, 100.0], [5.0, 5.0]])  # centre 1 owns nobody
    res = kmeans(x, 3, seed=0, init=init)
    assert np.isfinite(res.centers).all()
    assert sorted(set(res.labels.tolist())) == [0, 1, 2]
    # the farthest point (9, 9) becomes its own cluster
    assert res.labels[5] != res.labels[3]
    assert res.inertia == pytest.approx(0.02 / 3 * 2 + 0.005, rel=1e-6)


def test_kmeans_with_duplicate_points():
    x = np.array([[1.0, 2.0]] * 5 + [[3.0, 3.0]])
    res = kmeans(x, 3, seed=0)
    assert np.isfinite(res.centers).all() and np.isfinite(res.inertia)
    assert res.inertia == pytest.approx(0.0, abs=1e-12)
    assert kmeans(x, 1, seed=0).centers.shape == (1, 2)


def test_kmeans_on_wide_features_uses_projected_seeding():
    # D > the seeding projection: still finds well separated clusters
    rng = np.random.default_rng(0)
    means = rng.standard_normal((5, 600)) * 10
    x = np.repeat(means, 20, axis=0) + rng.standard_normal((100, 600)) * 0.1
    res = kmeans(x.astype(np.float32), 5, seed=1)
    truth = np.repeat(np.arange(5), 20)
    # every found cluster is exactly one true cluster
    assert all(len(set(truth[res.labels == k])) == 1 for k in range(5))


def test_kmeans_recluster_centres_are_the_images_nearest_the_centroids():
    x = _blobs(n=200, k=5, d=4, seed=2)
    res = kmeans_recluster(x, 5, seed=3)
    plain = kmeans(x, 5, seed=3)
    np.testing.assert_array_equal(res.labels, plain.labels)
    ref_idx = [int(np.argmin(((x - c) ** 2).sum(1))) for c in plain.centers]
    assert res.center_indices.tolist() == ref_idx
    np.testing.assert_array_equal(res.centers, x[ref_idx])
    assert plain.center_indices is None


def test_kmeans_reports_every_step_and_the_hook_changes_nothing():
    x = _blobs(n=60, k=3, d=3)
    quiet = kmeans(x, 3, seed=0)
    steps: list[int] = []
    seen = kmeans(x, 3, seed=0, on_step=steps.append)
    assert len(steps) == seen.n_iter and steps[-1] == 0 or seen.n_iter == 100
    np.testing.assert_array_equal(seen.labels, quiet.labels)
    np.testing.assert_array_equal(seen.centers, quiet.centers)


@pytest.mark.parametrize("seed", range(6))
def test_the_engine_equals_the_readable_kmeans(seed):
    """method/kmeans.py's k-means++ and Lloyd's (the form a reader meets) against the engine
    the kit runs: the same seeds, labels and centres (features up to SEED_PROJECTION_DIM wide,
    where the engine seeds without a projection)."""
    rng = np.random.default_rng(seed)
    d = (2, 16, 64, 384)[seed % 4]
    x = _blobs(n=int(rng.integers(80, 400)), k=int(rng.integers(3, 15)), d=d, seed=seed)
    if seed % 2:
        x = x.astype(np.float32)
    K = int(rng.integers(2, 25))
    seeds = kmeans_plus_plus(x, K, np.random.default_rng(seed))
    np.testing.assert_array_equal(seeds, _kmeanspp_seed(x, K, np.random.default_rng(seed)))
    centers, labels = lloyd(x, x[seeds], n_iter=30)
    fast = kmeans(x, K, seed, n_iter=30)
    np.testing.assert_array_equal(labels, fast.labels)
    np.testing.assert_allclose(centers, fast.centers, rtol=1e-5, atol=1e-5)


def test_readable_lloyd_fills_an_empty_cluster_as_the_engine_does():
    x = np.array([[0.0, 0.0], [0.1, 0.0], [0.0, 0.1], [5.0, 5.0], [5.1, 5.0], [9.0, 9.0]])
    init = np.array([[0.0, 0.0], [5.0, 5.0], [100.0, 100.0]])  # the third centre wins nobody
    centers, labels = lloyd(x, init)
    fast = kmeans(x, 3, seed=0, init=init)
    np.testing.assert_array_equal(labels, fast.labels)
    np.testing.assert_allclose(centers, fast.centers)
    assert len(np.unique(labels)) == 3


@pytest.mark.parametrize("K", [0, -1, 11])
def test_bad_k(K):
    with pytest.raises(TCULError, match="K \\(n_clusters\\) must be between 1"):
        kmeans_init(np.ones((10, 2)), K, seed=0)

