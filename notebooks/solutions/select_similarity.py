"""Instructor solution: SUL's similarity selection (notebook 04)."""

import numpy as np


def my_select_similarity(features, labels, centers, threshold):
    """Keep x_i iff cos(f(x_i), c_{l_i}) > threshold (its OWN centre; strict >, as SUL/PUL)."""
    x = np.asarray(features, dtype=np.float64)
    c = np.asarray(centers, dtype=np.float64)
    xu = x / np.maximum(np.linalg.norm(x, axis=1, keepdims=True), 1e-12)
    cu = c / np.maximum(np.linalg.norm(c, axis=1, keepdims=True), 1e-12)
    own = cu[np.asarray(labels)]
    return np.einsum("ij,ij->i", xu, own) > threshold
