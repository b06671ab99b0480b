"""Instructor solution: one iteration of Algorithm 1, steps (b)-(e) (notebook 07), assembled
from the solutions of notebooks 03, 04 and 06."""

try:  # imported as solutions.tcul_iteration (from notebooks/)
    from .assign import my_assign
    from .select_temporal import my_select_temporal
    from .update_centers import my_update_centers
except ImportError:  # imported with notebooks/solutions/ on sys.path
    from assign import my_assign
    from select_temporal import my_select_temporal
    from update_centers import my_update_centers

import numpy as np


def my_tcul_iteration(features, centers, camids, frames, finetune, lambda_fr, lambda_c, beta):
    """(b) assign, (c) select, (d) fine-tune on the kept images, (e) new features and the
    centre update with them and this iteration's labels of every image."""
    labels = my_assign(features, centers)                                          # Eq. 1-2
    kept = my_select_temporal(features, labels, centers, camids, frames, lambda_fr)  # Eq. 3
    index = np.flatnonzero(kept)
    new_features = finetune(index, labels[index])                                  # Eq. 4-5
    new_centers = my_update_centers(centers, new_features, labels, lambda_c, beta)  # Eq. 6-7
    return labels, kept, new_centers, new_features
