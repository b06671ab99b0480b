"""Eq. 6-7: the smoothed centre update (Sec. 3.5).

After fine-tuning, every centre moves part of the way towards the mean of the images
labelled with it, using the fine-tuned model's features and this iteration's labels:

    delta_c_k = sum_i I(l_i = k) (c_k - f(x_i)) / (beta + sum_i I(l_i = k))    (Eq. 6)
    c_k <- c_k - lambda_c * delta_c_k                                          (Eq. 7)
"""

from __future__ import annotations

from typing import Any

import numpy as np
import torch

from ..infra.array_checks import check_features, check_labels, float_dtype, is_number
from ..infra.errors import TCULError


def member_sums(x: np.ndarray, labels: np.ndarray, K: int) -> np.ndarray:
    """``sum_i I(l_i = k) x_i`` for every k (``K x D``), in one pass over ``x``."""
    sums = torch.zeros(K, x.shape[1], dtype=torch.from_numpy(x[:1]).dtype)
    sums.index_add_(0, torch.from_numpy(labels), torch.from_numpy(np.ascontiguousarray(x)))
    return sums.numpy()


def update_centers(centers: Any, features: Any, labels: Any, lambda_c: float = 0.5,
                   beta: float = 1e-6) -> np.ndarray:
    """Eq. 6-7: the new centres ``{c_k}`` (``K x D``); the inputs are not modified.

    An empty cluster keeps its centre (the numerator of Eq. 6 is 0). ``lambda_c = 1`` and
    a tiny ``beta`` give almost the plain member mean; ``lambda_c = 0`` leaves the centres.
    """
    c = check_features(centers, "centers")
    x = check_features(features)
    if x.shape[1] != c.shape[1]:
        raise TCULError(f"centers have {c.shape[1]} dims but features have {x.shape[1]}: use "
                        "centres computed from features of the same model")
    K = c.shape[0]
    lab = check_labels(labels, x.shape[0], K)
    if not (is_number(lambda_c) and 0 <= lambda_c <= 1):
        raise TCULError(f"lambda_c must be in [0, 1], got {lambda_c!r}: the paper uses 0.5")
    if not (is_number(beta) and beta > 0):
        raise TCULError(f"beta must be a small positive number, got {beta!r}: it avoids the "
                        "division by zero in Eq. 6 (e.g. 1e-6)")
    dtype = float_dtype(x, c)
    c = c.astype(dtype)  # a copy: the caller's array is never written
    counts = np.bincount(lab, minlength=K).astype(dtype)  # sum_i I(l_i = k)
    sums = member_sums(x.astype(dtype, copy=False), lab, K)  # sum_i I(l_i = k) f(x_i)
    delta = (counts[:, None] * c - sums) / (beta + counts)[:, None]  # Eq. 6
    return c - dtype.type(lambda_c) * delta  # Eq. 7
