"""How good are the pseudo-labels? Ground-truth checks the method itself never sees.

The synthetic world (and the real datasets' training splits) know every image's true
identity. TCUL never uses it; the kit uses it only to *measure* what each step did:

* :func:`pairwise_precision` - of all pairs of selected images that share a pseudo-label,
  the fraction that are truly the same person (the reliability Eq. 3 is meant to raise);
* :func:`pairwise_recall` - of all same-person pairs among the selected images, the fraction
  that share a pseudo-label;
* :func:`camera_pair_scores` - the same precision split into pairs inside one camera and
  pairs across two cameras (why one selection helps cross-camera re-id and another does
  not);
* :func:`clustering_scores` - NMI and ARI of the cluster assignment (Eq. 1-2) against the
  true identities, from scikit-learn.
"""

from __future__ import annotations

from typing import Any

import numpy as np
from sklearn.metrics import adjusted_rand_score, normalized_mutual_info_score

from ..infra.errors import TCULError


def _pairs(counts: np.ndarray) -> float:
    c = counts.astype(np.float64)
    return float((c * (c - 1) / 2).sum())


def _check(pseudo: Any, truth: Any, mask: Any | None) -> tuple[np.ndarray, np.ndarray]:
    p = np.asarray(pseudo).reshape(-1)
    t = np.asarray(truth).reshape(-1)
    if p.shape != t.shape:
        raise TCULError(
            f"pseudo-labels ({p.shape[0]}) and true labels ({t.shape[0]}) differ in length: "
            "give one of each per image"
        )
    if mask is not None:
        m = np.asarray(mask, dtype=bool).reshape(-1)
        if m.shape != p.shape:
            raise TCULError(f"mask has {m.shape[0]} entries for {p.shape[0]} images")
        p, t = p[m], t[m]
    return p, t


def _contingency(p: np.ndarray, t: np.ndarray) -> np.ndarray:
    """Sizes of the non-empty (pseudo-label, true label) cells."""
    if p.size == 0:
        return np.zeros(0, dtype=np.int64)
    _, p_idx = np.unique(p, return_inverse=True)
    _, t_idx = np.unique(t, return_inverse=True)
    key = p_idx.reshape(-1).astype(np.int64) * (int(t_idx.max()) + 1) + t_idx.reshape(-1)
    return np.unique(key, return_counts=True)[1]


def pairwise_precision(pseudo_labels: Any, true_labels: Any, mask: Any | None = None) -> float:
    """Fraction of same-pseudo-label pairs (among ``mask``-selected images) that are the same
    true identity. ``nan`` when no two selected images share a pseudo-label."""
    p, t = _check(pseudo_labels, true_labels, mask)
    together = _pairs(np.unique(p, return_counts=True)[1]) if p.size else 0.0
    if together == 0:
        return float("nan")
    return _pairs(_contingency(p, t)) / together


def pairwise_recall(pseudo_labels: Any, true_labels: Any, mask: Any | None = None) -> float:
    """Fraction of same-identity pairs (among ``mask``-selected images) that share a
    pseudo-label. ``nan`` when no two selected images share an identity."""
    p, t = _check(pseudo_labels, true_labels, mask)
    same = _pairs(np.unique(t, return_counts=True)[1]) if t.size else 0.0
    if same == 0:
        return float("nan")
    return _pairs(_contingency(p, t)) / same


def kept_pair_recall(pseudo_labels: Any, true_labels: Any, kept: Any) -> float:
    """Of the correct pairs of the clustering (same pseudo-label and same identity, over all
    images), the fraction whose two images a selection keeps: what a selection gives up for
    its precision. ``nan`` when the clustering has no correct pair."""
    p, t = _check(pseudo_labels, true_labels, None)
    correct = _pairs(_contingency(p, t))
    if correct == 0:
        return float("nan")
    pk, tk = _check(pseudo_labels, true_labels, kept)
    return (_pairs(_contingency(pk, tk)) if pk.size else 0.0) / correct


def camera_pair_scores(pseudo_labels: Any, true_labels: Any, camids: Any,
                       mask: Any | None = None) -> dict[str, float]:
    """Pairs of ``mask``-selected images that share a pseudo-label, split by camera.

    Returns ``pairs_same_camera`` / ``pairs_cross_camera`` (how many such pairs lie in one
    camera / span two), ``precision_same_camera`` / ``precision_cross_camera`` (the fraction
    of each that are truly one person; ``nan`` without pairs), ``true_pairs_cross_camera``
    (cross-camera pairs that are truly one person) and ``cameras_per_pseudo_id``
    (mean number of cameras a selected pseudo-identity spans). Re-id is matched across
    cameras, so only the cross-camera pairs teach the fine-tuning what it is tested on.
    """
    p, t = _check(pseudo_labels, true_labels, mask)
    c = np.asarray(camids).reshape(-1)
    if c.shape[0] != np.asarray(pseudo_labels).reshape(-1).shape[0]:
        raise TCULError(f"camids ({c.shape[0]}) and pseudo-labels differ in length: give one "
                        "camera id per image")
    if mask is not None:
        c = c[np.asarray(mask, dtype=bool).reshape(-1)]
    # one unique pass per key: pseudo-label, and (pseudo-label, camera) cells, whose pairs
    # lie inside one camera; the rest of a pseudo-label's pairs span two cameras
    p_idx, p_counts = np.unique(p, return_inverse=True, return_counts=True)[1:]
    c_idx = np.unique(c, return_inverse=True)[1].reshape(-1)
    n_cam = int(c_idx.max()) + 1 if c_idx.size else 1
    pc = p_idx.reshape(-1).astype(np.int64) * n_cam + c_idx
    pc_counts = np.unique(pc, return_counts=True)[1]
    together, same = _pairs(p_counts), _pairs(pc_counts)
    true_together, true_same = _pairs(_contingency(p, t)), _pairs(_contingency(pc, t))
    cross, true_cross = together - same, true_together - true_same

    def ratio(a: float, b: float) -> float:
        return a / b if b else float("nan")

    return {
        "pairs_same_camera": same,
        "pairs_cross_camera": cross,
        "precision_same_camera": ratio(true_same, same),
        "precision_cross_camera": ratio(true_cross, cross),
        "true_pairs_cross_camera": true_cross,
        "cameras_per_pseudo_id": ratio(float(len(pc_counts)), float(len(p_counts))),
    }


def clustering_scores(pseudo_labels: Any, true_labels: Any) -> dict[str, float]:
    """``{"nmi", "ari"}`` of a clustering against the true identities (scikit-learn)."""
    p, t = _check(pseudo_labels, true_labels, None)
    return {
        "nmi": float(normalized_mutual_info_score(t, p)),
        "ari": float(adjusted_rand_score(t, p)),
    }


def cluster_purity(pseudo_labels: Any, true_labels: Any) -> float:
    """Fraction of images whose true identity is the majority identity of their cluster."""
    p, t = _check(pseudo_labels, true_labels, None)
    t_idx = np.unique(t, return_inverse=True)[1].reshape(-1)
    total = sum(int(np.bincount(t_idx[p == k]).max()) for k in np.unique(p))
    return float(total) / max(len(p), 1)
