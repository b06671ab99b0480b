"""Eq. 1-2: cluster assignment by cosine similarity to the centres (Sec. 3.2).

The paper's notation: ``f(x_i)`` is the embedding of image ``x_i`` (a row of ``features``),
``c_k`` the centre of cluster ``k`` (a row of ``centers``), ``l_i`` the pseudo-label of
``x_i``. Inputs may be numpy arrays or torch tensors (any device); outputs are numpy
arrays. Float64 inputs are computed in float64, everything else in float32. Nothing is
normalised here beyond the division by the norms that defines the cosine.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from ..infra.array_checks import check_assignment, check_centers, check_features, float_dtype

#: Norms below this are clamped, so a zero vector has cosine similarity 0 with everything.
EPS = 1e-12


def _unit_rows(a: np.ndarray) -> np.ndarray:
    """Rows divided by their norm (clamped at ``EPS``): a new array."""
    norms = np.sqrt(np.einsum("ij,ij->i", a, a))
    return a / np.maximum(norms, EPS)[:, None]


def cosine_similarity_to_centers(features: Any, centers: Any) -> np.ndarray:
    """Eq. 1 for every image and centre: the ``N x K`` array of

        sim(x_i, c_k) = f(x_i) . c_k / (|f(x_i)| |c_k|)
    """
    x = check_features(features)
    c = check_centers(centers, x.shape[1])
    dtype = float_dtype(x, c)
    x, c = np.ascontiguousarray(x, dtype), np.ascontiguousarray(c, dtype)
    return _unit_rows(x) @ _unit_rows(c).T


def assign_clusters(features: Any, centers: Any) -> np.ndarray:
    """Eq. 2: the pseudo-labels (int64)

        l(x_i) = argmax_k sim(x_i, c_k)

    Ties go to the lowest ``k`` (``np.argmax`` returns the first maximum), so a zero
    feature vector, similar to no centre, gets label 0.
    """
    sim = cosine_similarity_to_centers(features, centers)
    return np.argmax(sim, axis=1).astype(np.int64)


def similarity_to_own_center(features: Any, labels: Any, centers: Any) -> np.ndarray:
    """``sim(x_i, c_{l_i})``: each image's cosine similarity (Eq. 1) to its own centre.

    What both selections rank by: SUL thresholds it, Eq. 3 takes its maximum in each
    (camera, cluster) group. Returns an ``(N,)`` array.
    """
    x, lab, c = check_assignment(features, labels, centers)
    dtype = float_dtype(x, c)
    c_unit = _unit_rows(np.ascontiguousarray(c, dtype))
    out = np.empty(x.shape[0], dtype=dtype)
    step = 256  # rows at a time: a small temporary instead of a second N x D copy
    for s in range(0, x.shape[0], step):
        x_unit = _unit_rows(np.ascontiguousarray(x[s : s + step], dtype))
        out[s : s + step] = np.einsum("ij,ij->i", x_unit, c_unit[lab[s : s + step]])
    return out
