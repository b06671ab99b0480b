"""Eq. 3: reliable samples by temporal continuity (TCUL), and SUL's similarity selection.

Step (c) of Algorithm 1 picks, from the images labelled by Eq. 1-2, those whose
pseudo-label is trusted for fine-tuning (Sec. 3.3):

* **temporal** (TCUL, Eq. 3): ``X_jk`` is the set of images of camera ``j`` labelled ``k``;
  ``x_min_jk`` is the image of ``X_jk`` most similar to ``c_k`` (the paper's "min" is the
  minimum distance); an image ``x`` of ``X_jk`` is kept iff its frame id lies within
  ``lambda_fr`` of ``x_min_jk``'s. ``x_min_jk`` itself is always kept.
* **similarity** (SUL, the paper's ablation, and PUL): keep ``x_i`` iff
  ``sim(x_i, c_{l_i}) > threshold``.

Frame ids are compared only inside one camera (for Market-1501 the loader lays the
sequences of a camera end to end, far apart, so that different sequences never fall in
one window). Inputs may be numpy arrays or torch tensors; outputs are numpy arrays.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from ..infra.array_checks import (
    check_camids,
    check_frames,
    check_lambda_fr,
    is_number,
    to_numpy,
)
from ..infra.errors import TCULError
from .assignment import similarity_to_own_center

SELECTIONS = ("temporal", "similarity", "none")


@dataclass(frozen=True)
class TemporalSelection:
    """Everything Eq. 3 computes, per image (what the paper's Fig. 3 draws).

    Attributes:
        anchor: ``(N,)`` index of ``x_min_jk`` of the image's (camera ``j``, cluster ``k``)
            group; an anchor is its own anchor.
        frame_distance: ``(N,)`` ``|fid(x_min_jk) - fid(x)|``.
        kept: ``(N,)`` bool, ``S(x)`` of Eq. 3.
        similarity: ``(N,)`` ``sim(x, c_{l(x)})``, the cosine similarity to the own centre.
        group: ``(N,)`` id of the image's (camera, cluster) group, ``0..G-1`` in order of
            (camera, cluster).
        lambda_fr: the frame window used.
    """

    anchor: np.ndarray
    frame_distance: np.ndarray
    kept: np.ndarray
    similarity: np.ndarray
    group: np.ndarray
    lambda_fr: float

    @property
    def is_anchor(self) -> np.ndarray:
        """``(N,)`` bool: True for the ``x_min_jk`` images."""
        return self.anchor == np.arange(len(self.anchor))

    @property
    def n_kept(self) -> int:
        """Number of reliable images (the count the paper's Fig. 5 follows)."""
        return int(np.count_nonzero(self.kept))


def temporal_anchors(features: Any, labels: Any, centers: Any, camids: Any, frames: Any,
                     lambda_fr: float) -> TemporalSelection:
    """Eq. 3 in full: ``x_min_jk`` of every (camera j, cluster k) group, and who is kept.

        x_min_jk = argmax_{x in X_jk} sim(x, c_k)        (ties: the lowest image index)
        S(x) = I(|fid(x_min_jk) - fid(x)| <= lambda_fr)
    """
    sim = similarity_to_own_center(features, labels, centers)  # checks the three inputs
    n = len(sim)
    lab = to_numpy(labels).astype(np.int64)
    cams, fid = check_camids(camids, n), check_frames(frames, n)
    lambda_fr = check_lambda_fr(lambda_fr)

    anchor = np.empty(n, dtype=np.int64)
    group = np.empty(n, dtype=np.int64)
    g = 0
    for j in np.unique(cams):
        in_camera_j = np.flatnonzero(cams == j)
        for k in np.unique(lab[in_camera_j]):
            X_jk = in_camera_j[lab[in_camera_j] == k]  # images of camera j labelled k
            x_min_jk = X_jk[np.argmax(sim[X_jk])]  # the one most similar to c_k
            anchor[X_jk] = x_min_jk
            group[X_jk] = g
            g += 1
    frame_distance = np.abs(fid[anchor] - fid)  # |fid(x_min_jk) - fid(x)|
    return TemporalSelection(anchor=anchor, frame_distance=frame_distance,
                             kept=frame_distance <= lambda_fr, similarity=sim, group=group,
                             lambda_fr=lambda_fr)


def select_temporal(features: Any, labels: Any, centers: Any, camids: Any, frames: Any,
                    lambda_fr: float) -> np.ndarray:
    """Eq. 3 (TCUL): the ``(N,)`` bool mask ``S(x)``. See :func:`temporal_anchors`."""
    return temporal_anchors(features, labels, centers, camids, frames, lambda_fr).kept


def select_by_similarity(features: Any, labels: Any, centers: Any,
                         threshold: float = 0.85) -> np.ndarray:
    """SUL / PUL: the ``(N,)`` bool mask ``sim(x_i, c_{l_i}) > threshold`` (strict, as PUL's
    code)."""
    if not is_number(threshold):
        raise TCULError(f"threshold must be a finite number, got {threshold!r}: e.g. 0.85")
    return similarity_to_own_center(features, labels, centers) > threshold
