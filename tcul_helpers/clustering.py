"""Clustering: k-means initialisation, cluster assignment (Eq. 1-2) and centre update (Eq. 6-7).

The paper's notation: ``f(x_i)`` is the embedding of image ``x_i`` (a row of ``features``),
``c_k`` the centre of cluster ``k`` (a row of ``centers``), ``l_i`` the pseudo-label of
``x_i``. Steps of Algorithm 1 implemented here:

* **centre init** (step 2): :func:`kmeans_init`, Lloyd's k-means from a k-means++ seeding;
* **assignment** (Eq. 1-2): :func:`assign_clusters`, ``l_i = argmax_k sim(f(x_i), c_k)`` with
  the cosine similarity :func:`cosine_similarity_to_centers`;
* **centre update** (Eq. 6-7): :func:`update_centers`, a pure function;
* **PUL-style re-clustering** (Fan et al.): :func:`kmeans_recluster`, k-means whose "centres"
  are the real images nearest the centroids.

Normalisation is never done inside these functions (except that cosine similarity divides
by the norms, which is its definition): whether k-means and Eq. 6-7 see L2-normalised
features is the caller's decision, made once, in one documented place (the training loop).

Inputs may be numpy arrays or torch tensors (any device); outputs are numpy arrays. The
heavy lifting is one ``N x K`` matrix product per k-means iteration (distances as
``||x||^2 - 2 x.c + ||c||^2``), done by numpy's BLAS: on the kit's reference CPU (AMD EPYC)
OpenBLAS runs that product about 1.6x faster than torch's MKL build. Per-cluster sums use
torch's ``index_add_`` (one pass, no Python loop). Float64 inputs are computed in float64,
everything else in float32.

k-means speed (``benchmarks/bench_clustering.py``): the k-means++ seeding runs on a seeded
random projection of wide features (``SEED_PROJECTION_DIM`` dims), and Lloyd's iterations
keep the ``N x K`` distance table, recomputing only the columns of centres whose membership
changed -- exact Lloyd, at a fraction of the cost once most clusters are stable.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch

from .errors import TCULError
from .progress import tqdm

#: Norms below this are clamped, so a zero vector has cosine similarity 0 with everything.
EPS = 1e-12

#: Dimension of the random projection used for the k-means++ seeding of wide features.
SEED_PROJECTION_DIM = 384


# --------------------------------------------------------------------------------------
# input checks shared with ``selection``
# --------------------------------------------------------------------------------------
def _to_numpy(x: Any) -> np.ndarray:
    if isinstance(x, torch.Tensor):
        return x.detach().cpu().numpy()
    return np.asarray(x)


def _float_dtype(*arrays: np.ndarray) -> np.dtype:
    """float64 when any input is float64, float32 otherwise."""
    if any(a.dtype == np.float64 for a in arrays):
        return np.dtype(np.float64)
    return np.dtype(np.float32)


def _check_features(features: Any, name: str = "features") -> np.ndarray:
    """A finite, non-empty 2-D float array (rows = images), or TCULError."""
    arr = _to_numpy(features)
    if arr.dtype == object or not np.issubdtype(arr.dtype, np.number) or arr.dtype == bool:
        raise TCULError(f"{name} must be numeric (got dtype {arr.dtype}): pass a float array")
    if arr.ndim != 2:
        raise TCULError(
            f"{name} must be a 2-D array (images x dims), got shape {tuple(arr.shape)}: "
            "stack one feature vector per row"
        )
    if arr.shape[0] == 0 or arr.shape[1] == 0:
        raise TCULError(
            f"{name} are empty (shape {tuple(arr.shape)}): extract features of at least one "
            "image first"
        )
    if not np.issubdtype(arr.dtype, np.floating):
        arr = arr.astype(np.float64)
    finite = np.isfinite(arr)
    if not finite.all():
        bad_rows = np.flatnonzero(~finite.all(axis=1))
        what = "NaN" if np.isnan(arr[bad_rows[0]]).any() else "inf"
        raise TCULError(
            f"{name} contain {what}: {len(bad_rows)} of {arr.shape[0]} rows (first: row "
            f"{bad_rows[0]}); the model diverged or the input is corrupt, re-extract the features"
        )
    return arr


def _check_labels(labels: Any, n: int, K: int | None = None) -> np.ndarray:
    """Integer labels, one per image (and in ``0..K-1`` when ``K`` is given), or TCULError."""
    arr = _to_numpy(labels)
    if arr.ndim != 1:
        raise TCULError(
            f"labels must be a 1-D array (one per image), got shape {tuple(arr.shape)}: flatten it"
        )
    if len(arr) != n:
        raise TCULError(
            f"labels have {len(arr)} entries but features have {n} rows: pass one label per image"
        )
    if not np.issubdtype(arr.dtype, np.integer):
        if np.issubdtype(arr.dtype, np.floating) and np.all(np.isfinite(arr)) and np.all(
            arr == np.round(arr)
        ):
            arr = arr.astype(np.int64)
        else:
            raise TCULError(f"labels must be integers (got dtype {arr.dtype}): pass cluster ids")
    arr = arr.astype(np.int64, copy=False)
    if K is not None and n and (arr.min() < 0 or arr.max() >= K):
        raise TCULError(
            f"labels must lie in 0..{K - 1} (K={K} centres), got values in "
            f"{arr.min()}..{arr.max()}: assign the labels with these centres"
        )
    return arr


def _check_centers(centers: Any, dim: int) -> np.ndarray:
    arr = _check_features(centers, "centers")
    if arr.shape[1] != dim:
        raise TCULError(
            f"centers have {arr.shape[1]} dims but features have {dim}: use centres computed "
            "from features of the same model"
        )
    return arr


def _check_k(K: Any, n: int) -> int:
    if isinstance(K, bool) or not isinstance(K, int | np.integer):
        raise TCULError(f"K (n_clusters) must be an integer, got {K!r}: e.g. K=750")
    if K < 1 or K > n:
        raise TCULError(
            f"K (n_clusters) must be between 1 and the number of images ({n}), got {K}: "
            "choose n_clusters <= the number of target images"
        )
    return int(K)


def _is_number(v: Any) -> bool:
    """A finite real number (Python or numpy), not a bool."""
    return (
        not isinstance(v, bool | np.bool_)
        and isinstance(v, int | float | np.integer | np.floating)
        and math.isfinite(float(v))
    )


def _as(arr: np.ndarray, dtype: np.dtype) -> np.ndarray:
    return np.ascontiguousarray(arr, dtype=dtype)


def _unit_rows(a: np.ndarray) -> np.ndarray:
    """Rows divided by their norm (clamped at ``EPS``): a new array."""
    norms = np.sqrt(np.einsum("ij,ij->i", a, a))
    return a / np.maximum(norms, EPS)[:, None]


def _group_sums(x: np.ndarray, labels: np.ndarray, K: int) -> np.ndarray:
    """``sum_i I(l_i = k) x_i`` for every k (``K x D``), one pass over ``x``."""
    sums = torch.zeros(K, x.shape[1], dtype=torch.from_numpy(x[:1]).dtype)
    sums.index_add_(0, torch.from_numpy(labels), torch.from_numpy(np.ascontiguousarray(x)))
    return sums.numpy()


# --------------------------------------------------------------------------------------
# Eq. 1-2: cosine similarity and assignment
# --------------------------------------------------------------------------------------
def cosine_similarity_to_centers(features: Any, centers: Any) -> np.ndarray:
    """``sim(f(x_i), c_k) = f(x_i).c_k / (|f(x_i)| |c_k|)`` of Eq. 1 for every image and centre.

    Returns an ``N x K`` array. Norms are clamped at ``EPS`` so a zero vector (feature or
    centre) has similarity 0 with everything instead of NaN.
    """
    x = _check_features(features)
    c = _check_centers(centers, x.shape[1])
    dtype = _float_dtype(x, c)
    return _unit_rows(_as(x, dtype)) @ _unit_rows(_as(c, dtype)).T


def assign_clusters(features: Any, centers: Any) -> np.ndarray:
    """Eq. 1-2: ``l_i = argmax_k sim(f(x_i), c_k)`` (cosine similarity), as int64 labels.

    Ties (equal similarities as computed) go to the lowest ``k``. A zero feature vector has
    similarity 0 with every centre (no NaN), so it is a tie and gets label 0.
    """
    sim = cosine_similarity_to_centers(features, centers)
    # np.argmax returns the first maximal index: ties -> lowest k
    return np.argmax(sim, axis=1).astype(np.int64)


def similarity_to_own_center(features: Any, labels: Any, centers: Any) -> np.ndarray:
    """``sim(f(x_i), c_{l_i})``: cosine similarity of every image to the centre of its cluster.

    The quantity both selections rank by (SUL/PUL threshold it; Eq. 3 takes its maximum per
    camera and cluster). Returns an ``(N,)`` array.
    """
    x = _check_features(features)
    c = _check_centers(centers, x.shape[1])
    lab = _check_labels(labels, x.shape[0], c.shape[0])
    return _own_similarity(x, lab, c)


def _own_similarity(x: np.ndarray, lab: np.ndarray, c: np.ndarray) -> np.ndarray:
    """:func:`similarity_to_own_center` on inputs already checked."""
    dtype = _float_dtype(x, c)
    cu = _unit_rows(_as(c, dtype))
    out = np.empty(x.shape[0], dtype=dtype)
    step = 256  # rows per chunk: small, cache-friendly temporaries
    for s in range(0, x.shape[0], step):
        xs = _unit_rows(_as(x[s : s + step], dtype))
        out[s : s + step] = np.einsum("ij,ij->i", xs, cu[lab[s : s + step]])
    return out


# --------------------------------------------------------------------------------------
# Eq. 6-7: centre update
# --------------------------------------------------------------------------------------
def update_centers(
    centers: Any, features: Any, labels: Any, lambda_c: float = 0.5, beta: float = 1e-6
) -> np.ndarray:
    """Eq. 6-7: move every centre towards the mean of its members.

    ``delta_c_k = sum_i I(l_i = k) (c_k - f(x_i)) / (beta + sum_i I(l_i = k))`` (Eq. 6),
    ``c_k <- c_k - lambda_c * delta_c_k`` (Eq. 7). Pure: returns new centres, the inputs are
    not modified, nothing is normalised. An empty cluster keeps its centre (the numerator
    of Eq. 6 is 0; with ``beta = 0`` its 0/0 is taken as 0 too). ``lambda_c = 1`` and a
    tiny ``beta`` give (almost) the plain member mean; ``lambda_c = 0`` leaves the centres.
    """
    c = _check_features(centers, "centers")
    x = _check_features(features)
    if x.shape[1] != c.shape[1]:
        raise TCULError(
            f"centers have {c.shape[1]} dims but features have {x.shape[1]}: use centres "
            "computed from features of the same model"
        )
    K = c.shape[0]
    lab = _check_labels(labels, x.shape[0], K)
    if not (_is_number(lambda_c) and 0 <= lambda_c <= 1):
        raise TCULError(f"lambda_c must be in [0, 1], got {lambda_c!r}: the paper uses 0.5")
    if not (_is_number(beta) and beta >= 0):
        raise TCULError(f"beta must be >= 0, got {beta!r}: use a small value such as 1e-6")
    dtype = _float_dtype(x, c)
    c = c.astype(dtype)  # a copy: the caller's array is never written
    sums = _group_sums(x.astype(dtype, copy=False), lab, K)  # sum_i I(l_i=k) f(x_i)
    counts = np.bincount(lab, minlength=K).astype(dtype)  # sum_i I(l_i=k)
    numerator = counts[:, None] * c - sums  # sum_i I(l_i=k) (c_k - f(x_i))
    denom = beta + counts
    delta = numerator / np.where(denom > 0, denom, 1.0)[:, None]  # 0/0 (beta=0, empty) -> 0
    return c - dtype.type(lambda_c) * delta


# --------------------------------------------------------------------------------------
# k-means
# --------------------------------------------------------------------------------------
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


def _nearest(x: np.ndarray, x_sq: np.ndarray, c: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Labels (first minimum) and squared distances of every row of ``x`` to its nearest ``c``.

    One ``N x K`` matrix product: ``||x||^2 - 2 x.c + ||c||^2`` (the ``||x||^2`` term is added
    after the argmin, which it does not change).
    """
    part = x @ c.T
    part *= -2.0
    part += _sq_norms(c)[None, :]
    labels = part.argmin(axis=1)
    best = np.take_along_axis(part, labels[:, None], axis=1)[:, 0]
    best += x_sq
    return labels.astype(np.int64), np.maximum(best, 0.0, out=best)


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
        d2 = xs[cand] @ xs_t
        d2 *= -2.0
        d2 += xs_sq[None, :]
        d2 += xs_sq[cand][:, None]
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
    out = _group_sums(x, labels, K)
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


def _partial_sq_distances(x: np.ndarray, centers: np.ndarray) -> np.ndarray:
    """``||c_k||^2 - 2 x_i.c_k`` (``N x K``): squared distances less the per-row ``||x_i||^2``,
    which does not change the nearest centre. One matrix product."""
    d = x @ centers.T
    d *= -2.0
    d += _sq_norms(centers)[None, :]
    return d


def kmeans(
    features: Any,
    K: int,
    seed: int,
    *,
    n_iter: int = 100,
    tol: float = 1e-4,
    init: Any = None,
    progress: bool = False,
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
    """
    x_np = _check_features(features)
    n = x_np.shape[0]
    K = _check_k(K, n)
    if isinstance(n_iter, bool) or not isinstance(n_iter, int) or n_iter < 1:
        raise TCULError(f"n_iter must be a positive integer, got {n_iter!r}: e.g. 100")
    dtype = _float_dtype(x_np)
    x = _as(x_np, dtype)
    x_sq = _sq_norms(x)
    tol_abs = float(tol) * float(x.var(axis=0).mean())
    if init is None:
        centers = x[_kmeanspp_seed(x, K, np.random.default_rng(int(seed)))]
    else:
        init_np = _check_centers(init, x.shape[1])
        if init_np.shape[0] != K:
            raise TCULError(f"init has {init_np.shape[0]} centres but K={K}: pass K x D centres")
        centers = _as(init_np, dtype).copy()

    rows = np.arange(n)
    table = _partial_sq_distances(x, centers)  # ||c_k||^2 - 2 x_i.c_k for every i, k
    labels = table.argmin(axis=1)
    basis: np.ndarray | None = None
    converged = False
    it = 0
    bar = tqdm(total=n_iter, desc="k-means", disable=not progress, leave=False)
    try:
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
            bar.update(1)
            bar.set_postfix(changed=changed, moved=len(moved))
            if changed == 0 or shift <= tol_abs:
                converged = True
                break
    finally:
        bar.close()
    dist = _own_distances(x, centers, labels).astype(np.float64)
    return KMeansResult(
        centers=centers,
        labels=labels.astype(np.int64),
        inertia=float((dist**2).sum()),
        n_iter=it,
        converged=converged,
    )


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
    :func:`tcul_helpers.selection.select_by_similarity` against these ``centers``.
    """
    res = kmeans(features, K, seed, n_iter=n_iter, progress=progress)
    x_np = _check_features(features)
    x = _as(x_np, _float_dtype(x_np))
    # for each centroid, the nearest image: argmin_i ||x_i||^2 - 2 x_i.c_k (first minimum)
    part = x @ res.centers.T
    part *= -2.0
    part += _sq_norms(x)[:, None]
    idx = part.argmin(axis=0).astype(np.int64)
    return KMeansResult(
        centers=np.ascontiguousarray(x_np[idx]),
        labels=res.labels,
        inertia=res.inertia,
        n_iter=res.n_iter,
        converged=res.converged,
        center_indices=idx,
    )


def inertia(features: Any, centers: Any) -> float:
    """Sum over images of the squared Euclidean distance to the nearest centre (k-means'
    objective; scikit-learn's ``inertia_``)."""
    x_np = _check_features(features)
    c_np = _check_centers(centers, x_np.shape[1])
    dtype = _float_dtype(x_np, c_np)
    x = _as(x_np, dtype)
    _, dist = _nearest(x, _sq_norms(x), _as(c_np, dtype))
    return float(dist.sum(dtype=np.float64))
