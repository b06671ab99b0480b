"""Step 2 of Algorithm 1 (k-means centres) and PUL-style re-clustering."""

from __future__ import annotations

from typing import Any

import numpy as np

from ..infra.array_checks import check_features, float_dtype
from .kmeans_engine import KMeansResult, _sq_norms, kmeans, sq_distance_table


def kmeans_init(
    features: Any, K: int, seed: int, *, n_iter: int = 100, progress: bool = False
) -> np.ndarray:
    """Algorithm 1, step 2: the initial centres ``{c_k}`` (``K x D``) by k-means on ``features``.

    The centres are the k-means centroids of exactly the features given: no normalisation
    happens inside, so the caller decides whether k-means sees L2-normalised features (the
    assignment of Eq. 1-2 uses cosine similarity either way). See :func:`kmeans`.
    """
    return kmeans(features, K, seed, n_iter=n_iter, progress=progress).centers


def kmeans_recluster(
    features: Any, K: int, seed: int, *, n_iter: int = 100, progress: bool = False
) -> KMeansResult:
    """PUL-style re-clustering (Fan et al.), run on every iteration instead of Eq. 6-7.

    As the public PUL code: k-means on the features as given (PUL's are un-normalised);
    each cluster's "centre" is the real image nearest its centroid (squared Euclidean,
    searched over all images, ties -> lowest index), so ``centers`` are rows of ``features``
    (``center_indices`` says which; two centroids may share a nearest image). ``labels`` are
    the k-means labels (nearest centroid). Reliable images are then picked with
    :func:`tcul_helpers.method.selection.select_by_similarity` against these ``centers``.
    """
    res = kmeans(features, K, seed, n_iter=n_iter, progress=progress)
    x_np = check_features(features)
    x = np.ascontiguousarray(x_np, float_dtype(x_np))
    # for each centroid, the nearest image: argmin_i ||x_i||^2 - 2 x_i.c_k (first minimum)
    part = sq_distance_table(x, res.centers.T, x_sq=_sq_norms(x))
    idx = part.argmin(axis=0).astype(np.int64)
    return KMeansResult(
        centers=np.ascontiguousarray(x_np[idx]),
        labels=res.labels,
        inertia=res.inertia,
        n_iter=res.n_iter,
        converged=res.converged,
        center_indices=idx,
    )
