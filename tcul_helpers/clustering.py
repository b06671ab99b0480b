"""Clustering: cluster assignment (Eq. 1-2) and the smoothed centre update (Eq. 6-7).

The paper's notation: ``f(x_i)`` is the embedding of image ``x_i`` (a row of ``features``),
``c_k`` the centre of cluster ``k`` (a row of ``centers``), ``l_i`` the pseudo-label of
``x_i``. Steps of Algorithm 1 implemented here:

* **assignment** (Eq. 1-2): :func:`assign_clusters`, ``l_i = argmax_k sim(f(x_i), c_k)`` with
  the cosine similarity :func:`cosine_similarity_to_centers`;
* **centre update** (Eq. 6-7): :func:`update_centers`, a pure function.

The centres' initialisation (step 2) and PUL-style re-clustering are k-means:
:mod:`tcul_helpers.kmeans`. Normalisation is never done inside these functions (except
that cosine similarity divides by the norms, which is its definition): whether Eq. 1-2 and
Eq. 6-7 see L2-normalised features is the caller's decision, made once
(:func:`tcul_helpers.algorithm.prepare_features`).

Inputs may be numpy arrays or torch tensors (any device); outputs are numpy arrays.
Float64 inputs are computed in float64, everything else in float32. Per-cluster sums use
torch's ``index_add_`` (one pass, no Python loop).
"""

from __future__ import annotations

from typing import Any

import numpy as np
import torch

from .array_checks import check_centers, check_features, check_labels, float_dtype, is_number
from .errors import TCULError

#: Norms below this are clamped, so a zero vector has cosine similarity 0 with everything.
EPS = 1e-12


def _as(arr: np.ndarray, dtype: np.dtype) -> np.ndarray:
    return np.ascontiguousarray(arr, dtype=dtype)


def _unit_rows(a: np.ndarray) -> np.ndarray:
    """Rows divided by their norm (clamped at ``EPS``): a new array."""
    norms = np.sqrt(np.einsum("ij,ij->i", a, a))
    return a / np.maximum(norms, EPS)[:, None]


def member_sums(x: np.ndarray, labels: np.ndarray, K: int) -> np.ndarray:
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
    c = check_features(centers, "centers")
    x = check_features(features)
    if x.shape[1] != c.shape[1]:
        raise TCULError(
            f"centers have {c.shape[1]} dims but features have {x.shape[1]}: use centres "
            "computed from features of the same model"
        )
    K = c.shape[0]
    lab = check_labels(labels, x.shape[0], K)
    if not (is_number(lambda_c) and 0 <= lambda_c <= 1):
        raise TCULError(f"lambda_c must be in [0, 1], got {lambda_c!r}: the paper uses 0.5")
    if not (is_number(beta) and beta >= 0):
        raise TCULError(f"beta must be >= 0, got {beta!r}: use a small value such as 1e-6")
    dtype = float_dtype(x, c)
    c = c.astype(dtype)  # a copy: the caller's array is never written
    sums = member_sums(x.astype(dtype, copy=False), lab, K)  # sum_i I(l_i=k) f(x_i)
    counts = np.bincount(lab, minlength=K).astype(dtype)  # sum_i I(l_i=k)
    numerator = counts[:, None] * c - sums  # sum_i I(l_i=k) (c_k - f(x_i))
    denom = beta + counts
    delta = numerator / np.where(denom > 0, denom, 1.0)[:, None]  # 0/0 (beta=0, empty) -> 0
    return c - dtype.type(lambda_c) * delta
