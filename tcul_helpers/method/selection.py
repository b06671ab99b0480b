"""Reliable-sample selection: temporal continuity (Eq. 3, TCUL) and similarity (SUL / PUL).

Step (c) of Algorithm 1 picks, from the images labelled by Eq. 1-2, those whose
pseudo-label is trusted for fine-tuning:

* **temporal** (TCUL, Eq. 3): for every camera ``j`` and cluster ``k``, ``X_jk`` is the set of
  images of camera ``j`` labelled ``k``; ``x_min_jk`` is the image of ``X_jk`` *most* similar
  (cosine) to ``c_k`` -- the paper writes "min" as in minimum distance -- and an image
  ``x`` of ``X_jk`` is kept iff ``|fid(x_min_jk) - fid(x)| <= lambda_fr``. ``x_min_jk`` is
  always kept (distance 0). Ties for ``x_min_jk`` go to the lowest image index.
* **similarity** (SUL, the paper's ablation; PUL): keep ``x_i`` iff
  ``sim(f(x_i), c_{l_i}) > threshold`` (0.85).
* **none**: keep everything.

Frame ids are compared only inside one camera (and, for Market-1501, the loader has laid
the sequences of a camera end to end, see ``tcul_helpers.data.readers``). Everything is
vectorised: one sort of the images by (camera, cluster, similarity) finds every
``x_min_jk`` at once. Inputs may be numpy arrays or torch tensors; outputs are numpy arrays.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from ..infra.array_checks import check_centers, check_features, check_labels, is_number, to_numpy
from ..infra.errors import TCULError
from .assignment import similarity_to_own_center

SELECTIONS = ("temporal", "similarity", "none")

#: Why Eq. 3 cannot run on a dataset without frame ids, and the fix.
NO_FRAMES = "this dataset has no frame ids (e.g. MSMT17): use selection=similarity"


@dataclass(frozen=True)
class TemporalSelection:
    """Everything Eq. 3 computes, per image (what the notebooks draw for the paper's Fig. 3).

    Attributes:
        anchor: ``(N,)`` index of ``x_min_jk`` of the image's (camera ``j``, cluster ``k``)
            group; an anchor is its own anchor.
        frame_distance: ``(N,)`` ``|fid(x_min_jk) - fid(x)|`` (int64 for integer frame ids).
        kept: ``(N,)`` bool, ``frame_distance <= lambda_fr`` (Eq. 3).
        similarity: ``(N,)`` cosine similarity ``sim(f(x), c_{l(x)})`` to the own centre.
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
        """Number of reliable images (the count the paper's Fig. 5 follows over iterations)."""
        return int(np.count_nonzero(self.kept))


# --------------------------------------------------------------------------------------
# input checks
# --------------------------------------------------------------------------------------
def _check_camids(camids: Any, n: int) -> np.ndarray:
    if camids is None:
        raise TCULError("camids are missing: pass the camera id of every image (record.camid)")
    arr = to_numpy(camids, "camids")
    if arr.ndim != 1 or len(arr) != n:
        raise TCULError(
            f"camids have shape {tuple(arr.shape)} but features have {n} rows: pass one "
            "camera id per image"
        )
    if arr.dtype == object:
        if any(v is None for v in arr.tolist()):
            raise TCULError("camids contain None: every image needs its camera id (record.camid)")
        arr = arr.astype(str) if any(isinstance(v, str) for v in arr.tolist()) else arr
    if np.issubdtype(arr.dtype, np.floating) and np.isnan(arr).any():
        raise TCULError("camids contain NaN: every image needs its camera id (record.camid)")
    return arr


def _check_frames(frames: Any, n: int) -> np.ndarray:
    """Frame ids as int64 (or float64 when fractional), or TCULError."""
    if frames is None:
        raise TCULError(f"frame ids are missing: {NO_FRAMES}")
    arr = to_numpy(frames, "frames")
    if arr.ndim != 1 or len(arr) != n:
        raise TCULError(
            f"frames have shape {tuple(arr.shape)} but features have {n} rows: pass one frame "
            "id per image (record.frame)"
        )
    if arr.dtype == object:
        missing = sum(v is None for v in arr.tolist())
        if missing:
            raise TCULError(f"frame ids contain None ({missing} of {n} images): {NO_FRAMES}")
        try:
            arr = arr.astype(np.float64)
        except (TypeError, ValueError):
            raise TCULError("frame ids must be numbers: pass record.frame of every image") from None
    if np.issubdtype(arr.dtype, np.integer):
        return arr.astype(np.int64, copy=False)
    if not np.issubdtype(arr.dtype, np.floating) or arr.dtype == bool:
        raise TCULError(f"frame ids must be numbers (got dtype {arr.dtype}): pass record.frame")
    nan = int(np.isnan(arr).sum())
    if nan:
        raise TCULError(f"frame ids contain NaN ({nan} of {n} images): {NO_FRAMES}")
    if not np.isfinite(arr).all():
        raise TCULError("frame ids contain inf: pass the finite frame number of every image")
    if np.all(arr == np.round(arr)) and np.abs(arr).max(initial=0) < 2**62:
        return arr.astype(np.int64)
    return arr.astype(np.float64, copy=False)


def _check_lambda_fr(lambda_fr: Any) -> float:
    if not is_number(lambda_fr) or lambda_fr < 0:
        raise TCULError(
            f"lambda_fr must be a number >= 0, got {lambda_fr!r}: use a frame window such as "
            "100 (the paper's value)"
        )
    return float(lambda_fr)


def _check_inputs(features: Any, labels: Any, centers: Any):
    x = check_features(features)
    c = check_centers(centers, x.shape[1])
    lab = check_labels(labels, x.shape[0], c.shape[0])
    return x, lab, c


# --------------------------------------------------------------------------------------
# Eq. 3: temporal continuity
# --------------------------------------------------------------------------------------
def temporal_anchors(
    features: Any,
    labels: Any,
    centers: Any,
    camids: Any,
    frames: Any,
    lambda_fr: float,
) -> TemporalSelection:
    """Eq. 3 in full: ``x_min_jk`` of every (camera, cluster) group and who is kept.

    ``x_min_jk = argmax_{x in X_jk} sim(f(x), c_k)`` (ties -> lowest image index) and
    ``S(x) = I(|fid(x_min_jk) - fid(x)| <= lambda_fr)``. Vectorised: one lexicographic sort
    by (group, -similarity, index); the first image of each group is its anchor.
    """
    x, lab, c = _check_inputs(features, labels, centers)
    n = x.shape[0]
    cams = _check_camids(camids, n)
    fr = _check_frames(frames, n)
    lam = _check_lambda_fr(lambda_fr)

    sim = similarity_to_own_center(x, lab, c)
    _, cam_idx = np.unique(cams, return_inverse=True)
    key = cam_idx.reshape(-1).astype(np.int64) * c.shape[0] + lab  # (camera j, cluster k)
    _, group = np.unique(key, return_inverse=True)
    group = group.reshape(-1).astype(np.int64)
    order = np.lexsort((np.arange(n), -sim, group))  # last key is the primary one
    g_sorted = group[order]
    starts = np.flatnonzero(np.r_[True, g_sorted[1:] != g_sorted[:-1]])
    anchor = order[starts][group]  # group ids are 0..G-1 in sorted order
    frame_distance = np.abs(fr[anchor] - fr)
    return TemporalSelection(
        anchor=anchor.astype(np.int64),
        frame_distance=frame_distance,
        kept=frame_distance <= lam,
        similarity=sim,
        group=group,
        lambda_fr=lam,
    )


def select_temporal(
    features: Any,
    labels: Any,
    centers: Any,
    camids: Any,
    frames: Any,
    lambda_fr: float,
) -> np.ndarray:
    """Eq. 3 (TCUL): ``(N,)`` bool, keep ``x`` in ``X_jk`` iff
    ``|fid(x_min_jk) - fid(x)| <= lambda_fr``. See :func:`temporal_anchors`."""
    return temporal_anchors(features, labels, centers, camids, frames, lambda_fr).kept


# --------------------------------------------------------------------------------------
# SUL / PUL and none
# --------------------------------------------------------------------------------------
def select_by_similarity(
    features: Any, labels: Any, centers: Any, threshold: float = 0.85
) -> np.ndarray:
    """SUL / PUL: ``(N,)`` bool, keep ``x_i`` iff ``sim(f(x_i), c_{l_i}) > threshold``
    (cosine similarity of Eq. 1 to its own centre; strict ``>`` as PUL's code)."""
    if not is_number(threshold):
        raise TCULError(f"threshold must be a finite number, got {threshold!r}: e.g. 0.85")
    x, lab, c = _check_inputs(features, labels, centers)
    return similarity_to_own_center(x, lab, c) > threshold


def select_all(labels: Any) -> np.ndarray:
    """No selection (``selection=none``): every image is kept. ``(N,)`` bool of True."""
    arr = to_numpy(labels, "labels")
    if arr.ndim != 1:
        raise TCULError(
            f"labels must be a 1-D array (one per image), got shape {tuple(arr.shape)}: flatten it"
        )
    return np.ones(len(arr), dtype=bool)


def select_reliable(
    method: str,
    features: Any,
    labels: Any,
    centers: Any,
    *,
    camids: Any = None,
    frames: Any = None,
    lambda_fr: float = 100,
    threshold: float = 0.85,
) -> np.ndarray:
    """Step (c) of Algorithm 1 for ``cfg.selection``: ``temporal`` (Eq. 3), ``similarity``
    (SUL/PUL) or ``none``. Returns the ``(N,)`` bool mask of reliable images."""
    if method == "temporal":
        return select_temporal(features, labels, centers, camids, frames, lambda_fr)
    if method == "similarity":
        return select_by_similarity(features, labels, centers, threshold)
    if method == "none":
        check_labels(labels, len(to_numpy(labels, "labels")))
        return select_all(labels)
    raise TCULError(f"unknown selection {method!r}: use one of {', '.join(SELECTIONS)}")
