"""Instructor solution: Eq. 6-7, the centre update (notebook 06)."""

import numpy as np


def my_update_centers(centers, features, labels, lambda_c, beta):
    """delta_c_k = sum_i I(l_i=k)(c_k - f(x_i)) / (beta + n_k); c_k <- c_k - lambda_c delta."""
    c = np.array(centers, dtype=np.float64)  # a copy
    x = np.asarray(features, dtype=np.float64)
    labels = np.asarray(labels)
    new = c.copy()
    for k in range(len(c)):
        members = x[labels == k]
        n_k = len(members)
        if n_k == 0:
            continue  # numerator 0: the centre stays
        delta = (n_k * c[k] - members.sum(axis=0)) / (beta + n_k)
        new[k] = c[k] - lambda_c * delta
    return new
