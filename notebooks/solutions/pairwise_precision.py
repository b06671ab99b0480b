"""Instructor solution: pairwise precision of pseudo-labels (notebook 04)."""

from collections import Counter

import numpy as np


def my_pairwise_precision(pseudo_labels, true_labels, mask=None):
    """Among selected pairs sharing a pseudo-label, the fraction with the same identity."""
    p, t = np.asarray(pseudo_labels), np.asarray(true_labels)
    if mask is not None:
        m = np.asarray(mask, dtype=bool)
        p, t = p[m], t[m]
    together = sum(n * (n - 1) // 2 for n in Counter(p.tolist()).values())
    if together == 0:
        return float("nan")
    pairs = Counter(zip(p.tolist(), t.tolist(), strict=True))
    correct = sum(n * (n - 1) // 2 for n in pairs.values())
    return correct / together
