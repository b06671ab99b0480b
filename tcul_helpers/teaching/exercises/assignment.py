"""Checker of Eq. 1-2 (notebook 03): ``l_i = argmax_k cos(f(x_i), c_k)``."""

from __future__ import annotations

from collections.abc import Callable

import numpy as np

from .checking import Case, CheckResult, Mistake, compare_exact, run_checks


def unit_rows(a) -> np.ndarray:
    """Rows of ``a`` scaled to unit length (float64)."""
    a = np.asarray(a, dtype=np.float64)
    return a / np.maximum(np.linalg.norm(a, axis=1, keepdims=True), 1e-12)


ASSIGN_MISTAKES = [
    Mistake("argmin instead of argmax: the LEAST similar centre",
            lambda x, c: np.argmin(unit_rows(x) @ unit_rows(c).T, axis=1)),
    Mistake("a plain dot product f(x_i) . c_k instead of the cosine (no division by |c_k|)",
            lambda x, c: np.argmax(np.asarray(x, np.float64) @ np.asarray(c, np.float64).T,
                                   axis=1)),
    Mistake("the nearest centre by Euclidean distance on vectors of different lengths",
            lambda x, c: np.argmin(((np.asarray(x, np.float64)[:, None]
                                     - np.asarray(c, np.float64)[None]) ** 2).sum(-1), axis=1)),
]


def assign_cases(seed: int = 0) -> list[Case]:
    """Inputs of :func:`check_assign` (features, centers)."""
    rng = np.random.default_rng(seed)
    x = rng.normal(size=(20, 4)).astype(np.float32)
    c = rng.normal(size=(5, 4)).astype(np.float32)
    tie_c = np.array([[1, 0, 0], [1, 0, 0], [0, 1, 0]], np.float32)  # centres 0 and 1 equal
    tie_x = np.array([[2, 0, 0], [0, 3, 0], [1, 1, 0]], np.float32)
    # centres of very different norms: the dot product and the cosine disagree
    norm_c = np.array([[10, 1], [0.1, 1.0]], np.float32)
    norm_x = np.array([[0.2, 1.0], [1.0, 0.1], [0.05, 1.0]], np.float32)
    # each image equals one centre: argmin of the cosine picks the other one
    own_x = np.array([[1, 0], [0, 1], [0.9, 0.1]], np.float32)
    own_c = np.array([[1, 0], [0, 1]], np.float32)
    # targeted cases first, so that a typical mistake gets its own hint; random last
    return [
        Case("each image on its own centre", (own_x, own_c),
              "Eq. 2 takes the MOST similar centre: argmax of the cosine, not argmin."),
        Case("unnormalised centres", (norm_x, norm_c),
              "Eq. 1 divides by |f(x_i)| |c_k|: a plain dot product favours long centres."),
        Case("tie between equal centres", (tie_x, tie_c),
              "when two centres are equally similar, take the lowest k (np.argmax does)."),
        Case("one centre", (x[:5], c[:1]), "with K = 1 every image gets label 0."),
        Case("random", (x, c), "l_i = argmax_k cos(f(x_i), c_k): divide by |f(x_i)| |c_k| "
              "(cosine, not a plain dot product or a distance) and take argmax, not argmin."),
    ]


def check_assign(fn: Callable) -> CheckResult:
    """Eq. 1-2: ``fn(features, centers)`` must return ``argmax_k cos(f(x_i), c_k)``."""
    from ...method.assignment import assign_clusters

    return run_checks("check_assign (Eq. 1-2)", fn, assign_clusters, assign_cases(),
                      ("features", "centers"), compare_exact, ASSIGN_MISTAKES)

