"""Step 2 of Algorithm 1: the initial centres ``{c_k}`` by k-means, and PUL's re-clustering.

"Cluster centers are initialized using standard k-means clustering on features" (Sec. 3.2).
Lloyd's k-means alternates two steps until the labels stop changing:

    assign:  l_i = argmin_k ||x_i - c_k||^2
    update:  c_k = mean of the x_i with l_i = k

It starts from a greedy k-means++ seeding (Arthur & Vassilvitskii; as scikit-learn): each
next centre is drawn with probability proportional to ``D(x)^2``, the squared distance of
``x`` to the nearest centre chosen so far, keeping the best of ``2 + log K`` draws.

:func:`kmeans_plus_plus` and :func:`lloyd` are the algorithm as written above. The kit runs
the same algorithm through :mod:`tcul_helpers.method.kmeans_engine`, which is much faster
at Market scale; ``tests/test_kmeans.py`` holds the two equal. No normalisation happens
here: whether k-means sees L2-normalised features is the caller's decision.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Any

import numpy as np

from ..infra.array_checks import check_features, float_dtype
from .center_update import member_sums
from .kmeans_engine import KMeansResult, kmeans, sq_distance_table


def sq_distances(x: np.ndarray, c: np.ndarray) -> np.ndarray:
    """The ``N x K`` table ``||x_i - c_k||^2``, as ``||x_i||^2 - 2 x_i.c_k + ||c_k||^2``."""
    return (x * x).sum(1)[:, None] - 2.0 * (x @ c.T) + (c * c).sum(1)[None, :]


def kmeans_plus_plus(x: np.ndarray, K: int, rng: np.random.Generator) -> np.ndarray:
    """Greedy k-means++: the indices of the ``K`` rows of ``x`` chosen as seeds."""
    n = len(x)
    chosen = [int(rng.integers(n))]
    d2 = np.maximum(sq_distances(x, x[chosen])[:, 0], 0.0)  # D(x)^2
    for _ in range(1, K):
        # 2 + log K candidates, each drawn with probability D(x)^2 / sum D(x)^2 ...
        cum = np.cumsum(d2, dtype=np.float64)
        candidates = np.minimum(np.searchsorted(cum, rng.random(2 + int(math.log(K))) * cum[-1]),
                                n - 1)
        # ... and the one that leaves the smallest sum of D(x)^2 is kept
        d2_if = np.minimum(np.maximum(sq_distances(x[candidates], x), 0.0), d2[None, :])
        best = int(np.argmin(d2_if.sum(axis=1)))
        chosen.append(int(candidates[best]))
        d2 = d2_if[best]
    return np.asarray(chosen, dtype=np.int64)


def lloyd(x: np.ndarray, centers: np.ndarray, n_iter: int = 100,
          tol: float = 1e-4) -> tuple[np.ndarray, np.ndarray]:
    """Lloyd's iterations from ``centers``: the final ``(centres, labels)``.

    Stops when the labels no longer change, when the centres moved (in total squared
    distance) less than ``tol`` times the features' mean variance (scikit-learn's rule),
    or after ``n_iter`` iterations. An empty cluster takes the image farthest from its own
    centre among clusters of two or more images (as scikit-learn).
    """
    K = len(centers)
    tol = tol * float(x.var(axis=0).mean())
    labels = sq_distances(x, centers).argmin(axis=1)
    for _ in range(n_iter):
        labels, n_moved_to_empty = _fill_empty_clusters(x, centers, labels)
        counts = np.bincount(labels, minlength=K)
        means = member_sums(x, labels, K) / counts[:, None].astype(x.dtype)  # update
        shift = float(((means - centers).astype(np.float64) ** 2).sum())
        centers = means
        new_labels = sq_distances(x, centers).argmin(axis=1)  # assign
        changed = int(np.count_nonzero(new_labels != labels)) + n_moved_to_empty
        labels = new_labels
        if changed == 0 or shift <= tol:
            break
    return centers, labels.astype(np.int64)


def _fill_empty_clusters(x: np.ndarray, centers: np.ndarray,
                         labels: np.ndarray) -> tuple[np.ndarray, int]:
    """Labels where every empty cluster took one far image; how many images moved."""
    counts = np.bincount(labels, minlength=len(centers))
    empty = np.flatnonzero(counts == 0)
    if not len(empty):
        return labels, 0
    labels = labels.copy()
    own = ((x - centers[labels]) ** 2).sum(axis=1)
    farthest_first = iter(np.argsort(-own, kind="stable"))
    for k in empty:
        i = next(farthest_first)
        while counts[labels[i]] <= 1:  # never empty another cluster
            i = next(farthest_first)
        counts[labels[i]] -= 1
        labels[i], counts[k] = k, 1
    return labels, len(empty)


def kmeans_init(features: Any, K: int, seed: int, *, n_iter: int = 100,
                on_step: Callable[[int], object] | None = None) -> np.ndarray:
    """Step 2: the initial centres ``{c_k}`` (``K x D``), k-means centroids of ``features``.

    Run by the fast engine (:func:`tcul_helpers.method.kmeans_engine.kmeans`);
    ``on_step(changed)`` is called after every Lloyd iteration.
    """
    return kmeans(features, K, seed, n_iter=n_iter, on_step=on_step).centers


def kmeans_recluster(features: Any, K: int, seed: int, *, n_iter: int = 100) -> KMeansResult:
    """PUL-style re-clustering (Fan et al.), run every iteration instead of Eq. 6-7.

    As the public PUL code: k-means on the features as given; each cluster's "centre" is
    the real image nearest its centroid (ties: the lowest index), so ``centers`` are rows of
    ``features`` (``center_indices`` says which). ``labels`` are the k-means labels.
    """
    res = kmeans(features, K, seed, n_iter=n_iter)
    x_np = check_features(features)
    x = np.ascontiguousarray(x_np, float_dtype(x_np))
    # for each centroid c_k the nearest image: argmin_i ||x_i||^2 - 2 x_i.c_k
    idx = sq_distance_table(x, res.centers.T, x_sq=np.einsum("ij,ij->i", x, x)).argmin(axis=0)
    return KMeansResult(centers=np.ascontiguousarray(x_np[idx]), labels=res.labels,
                        inertia=res.inertia, n_iter=res.n_iter, converged=res.converged,
                        center_indices=idx.astype(np.int64))
