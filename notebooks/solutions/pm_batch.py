"""Instructor solution: one P x M batch over (pseudo-)labels (notebook 05)."""

import numpy as np


def my_pm_batch(labels, P, M, rng):
    """P distinct labels at random; M images of each, without replacement when the label has
    at least M images, else all of its images and random repeats up to M."""
    labels = np.asarray(labels)
    chosen = rng.choice(np.unique(labels), size=P, replace=False)
    batch = []
    for lab in chosen:
        pool = np.flatnonzero(labels == lab)
        if len(pool) >= M:
            batch.extend(rng.choice(pool, size=M, replace=False))
        else:
            batch.extend(pool)
            batch.extend(rng.choice(pool, size=M - len(pool), replace=True))
    return np.asarray(batch, dtype=np.int64)
