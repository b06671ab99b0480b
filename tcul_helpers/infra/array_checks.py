"""Input checks shared by the method (Eq. 1-7, k-means) and the evaluation.

Each turns an array-like or torch tensor (any device) into a numpy array of the expected
shape and kind, or raises a one-line :class:`~tcul_helpers.infra.errors.TCULError` that names the
problem and the fix. torch is never imported here: a tensor is recognised by its methods.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np

from .errors import TCULError

#: Why Eq. 3 cannot run on a dataset without frame ids, and the fix.
NO_FRAMES = "this dataset has no frame ids (e.g. MSMT17): use selection=similarity"


def to_numpy(x: Any, name: str = "input") -> np.ndarray:
    """numpy view of an array-like or torch tensor (bfloat16 tensors become float32)."""
    if hasattr(x, "detach") and hasattr(x, "cpu"):
        x = x.detach().cpu()
        if str(x.dtype) == "torch.bfloat16":
            x = x.float()
        x = x.numpy()
    try:
        return np.asarray(x)
    except (TypeError, ValueError) as exc:
        raise TCULError(
            f"{name} is not an array ({exc}): pass a numpy array or torch tensor"
        ) from None


def float_dtype(*arrays: np.ndarray) -> np.dtype:
    """float64 when any input is float64, float32 otherwise."""
    if any(a.dtype == np.float64 for a in arrays):
        return np.dtype(np.float64)
    return np.dtype(np.float32)


def is_number(v: Any) -> bool:
    """A finite real number (Python or numpy), not a bool."""
    return (
        not isinstance(v, bool | np.bool_)
        and isinstance(v, int | float | np.integer | np.floating)
        and math.isfinite(float(v))
    )


def check_features(features: Any, name: str = "features") -> np.ndarray:
    """A finite, non-empty 2-D float array (rows = images), or TCULError."""
    arr = to_numpy(features, name)
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


def check_labels(labels: Any, n: int, K: int | None = None) -> np.ndarray:
    """Integer labels, one per image (and in ``0..K-1`` when ``K`` is given), or TCULError."""
    arr = to_numpy(labels, "labels")
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


def check_centers(centers: Any, dim: int) -> np.ndarray:
    """``K x dim`` centres, checked as :func:`check_features`, or TCULError."""
    arr = check_features(centers, "centers")
    if arr.shape[1] != dim:
        raise TCULError(
            f"centers have {arr.shape[1]} dims but features have {dim}: use centres computed "
            "from features of the same model"
        )
    return arr


def check_k(K: Any, n: int) -> int:
    """The number of clusters, an integer in ``1..n``, or TCULError."""
    if isinstance(K, bool) or not isinstance(K, int | np.integer):
        raise TCULError(f"K (n_clusters) must be an integer, got {K!r}: e.g. K=750")
    if K < 1 or K > n:
        raise TCULError(
            f"K (n_clusters) must be between 1 and the number of images ({n}), got {K}: "
            "choose n_clusters <= the number of target images"
        )
    return int(K)


def check_camids(camids: Any, n: int) -> np.ndarray:
    """One camera id per image (any hashable kind numpy can sort), or TCULError."""
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


def check_frames(frames: Any, n: int) -> np.ndarray:
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


def check_lambda_fr(lambda_fr: Any) -> float:
    """Eq. 3's frame window, a number >= 0, or TCULError."""
    if not is_number(lambda_fr) or lambda_fr < 0:
        raise TCULError(
            f"lambda_fr must be a number >= 0, got {lambda_fr!r}: use a frame window such as "
            "100 (the paper's value)"
        )
    return float(lambda_fr)


def check_assignment(features: Any, labels: Any,
                     centers: Any) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """``(features, labels, centers)`` checked together: ``N x D`` features, one label in
    ``0..K-1`` per row, ``K x D`` centres."""
    x = check_features(features)
    c = check_centers(centers, x.shape[1])
    lab = check_labels(labels, x.shape[0], c.shape[0])
    return x, lab, c
