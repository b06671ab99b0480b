"""Clustering: cluster assignment (Eq. 1-2) and the smoothed centre update (Eq. 6-7).

The paper's notation: ``f(x_i)`` is the embedding of image ``x_i`` (a row of ``features``),
``c_k`` the centre of cluster ``k`` (a row of ``centers``), ``l_i`` the pseudo-label of
``x_i``. Steps of Algorithm 1 implemented here:

* **assignment** (Eq. 1-2): :func:`assign_clusters`, ``l_i = argmax_k sim(f(x_i), c_k)`` with
  the cosine similarity :func:`cosine_similarity_to_centers`;
* **centre update** (Eq. 6-7): :func:`update_centers`, a pure function.

The centres' initialisation (step 2) and PUL-style re-clustering are k-means:
:mod:`tcul_helpers.method.kmeans`. Normalisation is never done inside these functions (except
that cosine similarity divides by the norms, which is its definition): whether Eq. 1-2 and
Eq. 6-7 see L2-normalised features is the caller's decision, made once
(:func:`tcul_helpers.experiment.runner.prepare_features`).

Inputs may be numpy arrays or torch tensors (any device); outputs are numpy arrays.
Float64 inputs are computed in float64, everything else in float32. Per-cluster sums use
torch's ``index_add_`` (one pass, no Python loop).
"""

from __future__ import annotations

from typing import Any

import numpy as np

from ..infra.array_checks import check_centers, check_features, check_labels, float_dtype

#: Norms below this are clamped, so a zero vector has cosine similarity 0 with everything.
EPS = 1e-12


def _as(arr: np.ndarray, dtype: np.dtype) -> np.ndarray:
    return np.ascontiguousarray(arr, dtype=dtype)


def _unit_rows(a: np.ndarray) -> np.ndarray:
    """Rows divided by their norm (clamped at ``EPS``): a new array."""
    norms = np.sqrt(np.einsum("ij,ij->i", a, a))
    return a / np.maximum(norms, EPS)[:, None]


# --------------------------------------------------------------------------------------
# Eq. 1-2: cosine similarity and assignment
# --------------------------------------------------------------------------------------
def cosine_similarity_to_centers(features: Any, centers: Any) -> np.ndarray:
    """``sim(f(x_i), c_k) = f(x_i).c_k / (|f(x_i)| |c_k|)`` of Eq. 1 for every image and centre.

    Returns an ``N x K`` array. Norms are clamped at ``EPS`` so a zero vector (feature or
    centre) has similarity 0 with everything instead of NaN.
    """
    x = check_features(features)
    c = check_centers(centers, x.shape[1])
    dtype = float_dtype(x, c)
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
    x = check_features(features)
    c = check_centers(centers, x.shape[1])
    lab = check_labels(labels, x.shape[0], c.shape[0])
    return _own_similarity(x, lab, c)


def _own_similarity(x: np.ndarray, lab: np.ndarray, c: np.ndarray) -> np.ndarray:
    """:func:`similarity_to_own_center` on inputs already checked."""
    dtype = float_dtype(x, c)
    cu = _unit_rows(_as(c, dtype))
    out = np.empty(x.shape[0], dtype=dtype)
    step = 256  # rows per chunk: small, cache-friendly temporaries
    for s in range(0, x.shape[0], step):
        xs = _unit_rows(_as(x[s : s + step], dtype))
        out[s : s + step] = np.einsum("ij,ij->i", xs, cu[lab[s : s + step]])
    return out
