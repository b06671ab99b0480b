"""Instructor solution: one P x K batch over (pseudo-)labels (notebook 05)."""

import numpy as np


def my_pk_batch(labels, P, K, rng):
    """P distinct labels at random; K images of each, without replacement when the label has
    at least K images, else all of its images and random repeats up to K."""
    labels = np.asarray(labels)
    chosen = rng.choice(np.unique(labels), size=P, replace=False)
    batch = []
    for lab in chosen:
        pool = np.flatnonzero(labels == lab)
        if len(pool) >= K:
            batch.extend(rng.choice(pool, size=K, replace=False))
        else:
            batch.extend(pool)
            batch.extend(rng.choice(pool, size=K - len(pool), replace=True))
    return np.asarray(batch, dtype=np.int64)
