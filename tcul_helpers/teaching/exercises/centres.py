"""Checker of Eq. 6-7 (notebook 06): the smoothed centre update."""

from __future__ import annotations

from collections.abc import Callable

import numpy as np

from ...method.center_update import update_centers
from .checking import Case, CheckResult, Mistake, compare_close, run_checks

CENTRE_MISTAKES = [
    Mistake("c_k + lambda_c * delta_c_k: the wrong sign moves the centre AWAY from its members",
            lambda c, x, lab, lam, beta: 2 * np.asarray(c, np.float64)
            - update_centers(c, x, lab, lam, beta)),
    Mistake("beta left out of the denominator of Eq. 6",
            lambda c, x, lab, lam, beta: update_centers(c, x, lab, lam, 1e-300)),
    Mistake("lambda_c ignored: every centre jumps to its members' mean",
            lambda c, x, lab, lam, beta: update_centers(c, x, lab, 1.0, beta)),
]


def update_centers_cases(seed: int = 0) -> list[Case]:
    """Inputs of :func:`check_update_centers`."""
    rng = np.random.default_rng(seed)
    c = rng.normal(size=(4, 3))
    x = rng.normal(size=(30, 3))
    lab = rng.integers(0, 4, 30)
    lab_empty = np.where(lab == 2, 0, lab)  # cluster 2 has no member
    one_c, one_x = np.zeros((1, 2)), np.array([[1.0, 0.0]])
    return [
        Case("one centre, one member", (one_c, one_x, np.zeros(1, np.int64), 0.5, 1e-6),
              "c_k <- c_k - lambda_c * delta_c_k with delta_c_k built from (c_k - f(x_i)): "
              "the minus moves the centre TOWARDS its member (here to (0.5, 0))."),
        Case("large beta", (c, x, lab, 0.5, 2.0),
              "beta belongs in the denominator of Eq. 6: beta + sum_i I(l_i = k)."),
        Case("empty cluster", (c, x, lab_empty, 0.5, 1e-6),
              "a cluster with no member keeps its centre (numerator 0): avoid NaN from 0/0."),
        Case("lambda_c = 1", (c, x, lab, 1.0, 1e-6),
              "with lambda_c = 1 (and tiny beta) every centre becomes its members' mean."),
        Case("lambda_c = 0", (c, x, lab, 0.0, 1e-6), "with lambda_c = 0 nothing moves."),
        Case("random", (c, x, lab, 0.5, 1e-6),
              "delta_c_k = sum_{i: l_i=k} (c_k - f(x_i)) / (beta + n_k); c_k <- c_k - "
              "lambda_c * delta_c_k (minus: the centre moves TOWARDS its members)."),
    ]


def check_update_centers(fn: Callable) -> CheckResult:
    """Eq. 6-7: ``fn(centers, features, labels, lambda_c, beta)`` -> new ``K x D`` centres."""
    return run_checks("check_update_centers (Eq. 6-7)", fn, update_centers,
                      update_centers_cases(), ("centers", "features", "labels", "lambda_c", "beta"),
                      compare_close(1e-6), CENTRE_MISTAKES)

