"""Checker of the pairwise precision of pseudo-labels (notebook 07)."""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable

import numpy as np

from ...measurement.metrics import pairwise_precision, pairwise_recall
from .checking import Case, CheckResult, Mistake, compare_close, run_checks


def _with_self_pairs(p, t, mask=None):
    p, t = np.asarray(p), np.asarray(t)
    if mask is not None:
        p, t = p[np.asarray(mask, bool)], t[np.asarray(mask, bool)]
    same_pseudo = sum(n * n for n in Counter(p.tolist()).values())
    same_both = sum(n * n for n in Counter(zip(p.tolist(), t.tolist(), strict=True)).values())
    return same_both / same_pseudo


def _nan_as_zero(p, t, mask=None):
    v = pairwise_precision(p, t, mask)
    return 0.0 if np.isnan(v) else v


PRECISION_MISTAKES = [
    Mistake("every image paired with itself too (n^2 pairs in a group of n, not n(n-1)/2)",
            _with_self_pairs),
    Mistake("0 instead of nan when no two images share a pseudo-label", _nan_as_zero),
    Mistake("recall (pairs of the same person that share a pseudo-label) instead of precision",
            pairwise_recall),
]


def precision_cases(seed: int = 0) -> list[Case]:
    """Inputs of :func:`check_pairwise_precision`."""
    rng = np.random.default_rng(seed)
    p = rng.integers(0, 5, 40)
    t = rng.integers(0, 8, 40)
    mask = rng.random(40) < 0.5
    return [
        Case("random", (p, t), "precision = (#pairs with the same pseudo-label AND the same "
              "identity) / (#pairs with the same pseudo-label); a group of n has n(n-1)/2 pairs."),
        Case("with a mask", (p, t), "count only the images where mask is True.",
              {"mask": mask}),
        Case("perfect clustering", (t, t), "identical labellings have precision 1."),
        Case("labels renamed", (t + 100, t), "only which images share a label matters, not "
              "the label values."),
        Case("only singletons", (np.arange(6), np.zeros(6, np.int64)),
              "no two images share a pseudo-label: there is no pair, return nan (0/0)."),
    ]


def check_pairwise_precision(fn: Callable) -> CheckResult:
    """``fn(pseudo_labels, true_labels, mask=None)`` -> pairwise precision (nan if no pair)."""
    return run_checks("check_pairwise_precision", fn, pairwise_precision, precision_cases(),
                      ("pseudo_labels", "true_labels"), compare_close(1e-9), PRECISION_MISTAKES)

