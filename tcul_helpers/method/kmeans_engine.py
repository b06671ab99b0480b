"""The fast k-means behind :mod:`tcul_helpers.method.kmeans`: the same Lloyd's k-means from a
greedy k-means++ seeding, organised for Market-scale features (``N`` ~ 13,000, ``K`` = 750).

Three things make it fast (``benchmarks/bench_clustering.py`` measures it against
scikit-learn and faiss):

* the ``N x K`` squared distances are one matrix product,
  ``||x_i||^2 - 2 x_i.c_k + ||c_k||^2`` (:func:`sq_distance_table`);
* Lloyd's iterations keep that table and recompute only the columns of the centres whose
  membership changed (a centre whose members did not change did not move);
* the k-means++ seeding of wide features runs on a seeded random projection to
  ``SEED_PROJECTION_DIM`` dimensions (squared distances kept to within a few per cent),
  so each of its ``K`` sequential steps touches a small array. Up to that width the
  seeding is exactly :func:`tcul_helpers.method.kmeans.kmeans_plus_plus`'s.

``tests/test_kmeans.py`` holds it equal to the readable version.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np

from ..infra.array_checks import check_centers, check_features, check_k, float_dtype
from ..infra.errors import TCULError
from .center_update import member_sums

#: Dimension of the random projection used for the k-means++ seeding of wide features.
SEED_PROJECTION_DIM = 384


@dataclass(frozen=True)
class KMeansResult:
    """Outcome of :func:`kmeans` / :func:`kmeans_recluster`.

    Attributes:
        centers: ``K x D`` centres: the centroids, or for :func:`kmeans_recluster` the real
            images nearest them.
        labels: ``(N,)`` int64, the nearest centroid (squared Euclidean distance) of each image.
        inertia: sum over images of the squared Euclidean distance to the nearest centroid
            (what k-means minimises; comparable with scikit-learn's ``inertia_``).
        n_iter: Lloyd iterations run.
        converged: True when the labels stopped changing or the centres moved less than
            ``tol`` before ``n_iter`` ran out.
        center_indices: for :func:`kmeans_recluster`, the row of ``features`` used as each
            centre; ``None`` for :func:`kmeans`.
    """

    centers: np.ndarray
    labels: np.ndarray
    inertia: float
    n_iter: int
    converged: bool
    center_indices: np.ndarray | None = None


def _sq_norms(a: np.ndarray) -> np.ndarray:
    return np.einsum("ij,ij->i", a, a)


def sq_distance_table(
    x: np.ndarray, c_t: np.ndarray, *, x_sq: np.ndarray | None = None,
    c_sq: np.ndarray | None = None,
) -> np.ndarray:
    """``N x K`` squared Euclidean distances ``||x_i||^2 - 2 x_i.c_k + ||c_k||^2`` by one
    matrix product (``c_t``: the centres transposed, ``D x K``).

    A norm term passed as ``None`` is left out: it is constant along the axis the caller
    takes its argmin over, so the nearest centre (or image) is unchanged. The one place
    the kit's k-means expands a distance.
    """
    d = x @ c_t
    d *= -2.0
    if c_sq is not None:
        d += c_sq[None, :]
    if x_sq is not None:
        d += x_sq[:, None]
    return d


def _partial_sq_distances(x: np.ndarray, centers: np.ndarray) -> np.ndarray:
    """``||c_k||^2 - 2 x_i.c_k`` (``N x K``): squared distances less the per-row ``||x_i||^2``,
    which does not change the nearest centre."""
    return sq_distance_table(x, centers.T, c_sq=_sq_norms(centers))


def _kmeanspp_seed(x: np.ndarray, K: int, rng: np.random.Generator) -> np.ndarray:
    """Greedy k-means++ seeding (Arthur & Vassilvitskii; ``2 + log K`` trials per centre, as
    scikit-learn). Wide features are first mapped to ``SEED_PROJECTION_DIM`` dimensions by a
    seeded Gaussian random projection (squared distances kept to within a few per cent), so
    that each of the K sequential steps touches a small, cache-resident array. Returns the
    chosen row indices."""
    n, d = x.shape
    if d > SEED_PROJECTION_DIM:
        proj = rng.standard_normal((d, SEED_PROJECTION_DIM)).astype(x.dtype)
        proj /= np.sqrt(SEED_PROJECTION_DIM).astype(x.dtype)
        xs = x @ proj
    else:
        xs = x
    xs_t = np.ascontiguousarray(xs.T)  # (p, N): the layout that makes ``cand @ xs_t`` fastest
    xs_sq = _sq_norms(xs)
    trials = 2 + int(math.log(K))
    chosen = np.empty(K, dtype=np.int64)
    chosen[0] = rng.integers(n)
    closest = np.maximum(xs_sq - 2.0 * (xs @ xs[chosen[0]]) + xs_sq[chosen[0]], 0.0)
    for k in range(1, K):
        cum = np.cumsum(closest, dtype=np.float64)
        if cum[-1] <= 0.0:  # every point coincides with a chosen centre: take unused rows
            unused = np.ones(n, dtype=bool)
            unused[chosen[:k]] = False
            chosen[k:] = np.flatnonzero(unused)[: K - k]
            break
        cand = np.minimum(np.searchsorted(cum, rng.random(trials) * cum[-1]), n - 1)
        d2 = sq_distance_table(xs[cand], xs_t, x_sq=xs_sq[cand], c_sq=xs_sq)
        np.maximum(d2, 0.0, out=d2)
        np.minimum(d2, closest[None, :], out=d2)
        best = int(np.argmin(d2.sum(axis=1)))
        chosen[k] = cand[best]
        closest = d2[best]
    return chosen


def _centroids(
    x: np.ndarray, labels: np.ndarray, K: int, dist: np.ndarray
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Member means. An empty cluster takes the point farthest from its centre (by ``dist``)
    among clusters with at least two members, as scikit-learn does.

    Returns (centroids, labels, relocated rows); labels change only at the relocated rows.
    """
    counts = np.bincount(labels, minlength=K)
    empty = np.flatnonzero(counts == 0)
    relocated = np.empty(0, dtype=np.int64)
    if len(empty):
        labels = labels.copy()
        far = np.argsort(-dist, kind="stable")
        moved = []
        taken = 0
        for k in empty.tolist():  # few and rare: one point per empty cluster
            while counts[labels[far[taken]]] <= 1:
                taken += 1
            i = int(far[taken])
            counts[labels[i]] -= 1
            labels[i] = k
            counts[k] = 1
            moved.append(i)
            taken += 1
        relocated = np.asarray(moved, dtype=np.int64)
    out = member_sums(x, labels, K)
    out /= counts.astype(x.dtype)[:, None]
    return out, labels, relocated


def _own_distances(x: np.ndarray, centers: np.ndarray, labels: np.ndarray) -> np.ndarray:
    """Exact ``||x_i - c_{l_i}||`` for the given rows (by differences, in chunks)."""
    out = np.empty(len(x), dtype=x.dtype)
    step = 256
    for s in range(0, len(x), step):
        diff = x[s : s + step] - centers[labels[s : s + step]]
        out[s : s + step] = np.sqrt(np.einsum("ij,ij->i", diff, diff))
    return out


def kmeans(
    features: Any,
    K: int,
    seed: int,
    *,
    n_iter: int = 100,
    tol: float = 1e-4,
    init: Any = None,
    on_step: Callable[[int], object] | None = None,
) -> KMeansResult:
    """Lloyd's k-means (squared Euclidean distance) from a greedy k-means++ seeding.

    Each iteration moves every centre to the mean of its members, then re-assigns every
    image to its nearest centre. The ``N x K`` distance table is kept between iterations and
    only the columns of centres whose membership changed are recomputed (the others did not
    move), so late iterations cost a small fraction of a full ``N x K`` product; the result
    is plain Lloyd's. An empty cluster takes the image farthest from its centre (as sklearn).

    Stops when the labels no longer change, when the total squared centre shift falls below
    ``tol`` times the mean per-dimension variance of the features (scikit-learn's rule), or
    after ``n_iter`` iterations. ``init`` (``K x D``) replaces the seeding. Deterministic for
    a seed. No normalisation inside. Memory: the features plus an ``N x K`` table.
    ``on_step(changed)`` is called after every iteration with the number of labels that
    changed (a progress bar's hook).
    """
    x_np = check_features(features)
    n = x_np.shape[0]
    K = check_k(K, n)
    if isinstance(n_iter, bool) or not isinstance(n_iter, int) or n_iter < 1:
        raise TCULError(f"n_iter must be a positive integer, got {n_iter!r}: e.g. 100")
    dtype = float_dtype(x_np)
    x = np.ascontiguousarray(x_np, dtype)
    x_sq = _sq_norms(x)
    tol_abs = float(tol) * float(x.var(axis=0).mean())
    if init is None:
        centers = x[_kmeanspp_seed(x, K, np.random.default_rng(int(seed)))]
    else:
        init_np = check_centers(init, x.shape[1])
        if init_np.shape[0] != K:
            raise TCULError(f"init has {init_np.shape[0]} centres but K={K}: pass K x D centres")
        centers = np.ascontiguousarray(init_np, dtype).copy()

    rows = np.arange(n)
    table = _partial_sq_distances(x, centers)  # ||c_k||^2 - 2 x_i.c_k for every i, k
    labels = table.argmin(axis=1)
    basis: np.ndarray | None = None
    converged = False
    it = 0
    for step in range(1, n_iter + 1):
        it = step
        own = table[rows, labels] + x_sq  # squared distance to the own centre
        means, new_labels, relocated = _centroids(x, labels, K, own)
        if basis is None:  # the seeds are not means: every centre moves
            moved = np.arange(K)
        else:  # a centre moves iff its membership changed since it was computed
            diff = new_labels != basis
            moved = np.union1d(new_labels[diff], basis[diff])
        shift = float(((means[moved] - centers[moved]).astype(np.float64) ** 2).sum())
        centers[moved] = means[moved]
        basis = new_labels  # the membership the centres are the means of
        if len(moved):
            table[:, moved] = _partial_sq_distances(x, centers[moved])
        labels = table.argmin(axis=1)
        changed = int(np.count_nonzero(labels != basis)) + len(relocated)
        if on_step is not None:
            on_step(changed)
        if changed == 0 or shift <= tol_abs:
            converged = True
            break
    dist = _own_distances(x, centers, labels).astype(np.float64)
    return KMeansResult(
        centers=centers,
        labels=labels.astype(np.int64),
        inertia=float((dist**2).sum()),
        n_iter=it,
        converged=converged,
    )
