"""One iteration of Algorithm 1, as a pure function of arrays, with fine-tuning passed in.

::

    Train f_theta0 on S                                   (step 1, before the loop)
    k-means: initialise {c_k}                             (step 2, kmeans.kmeans_init)
    for iter = 1..N_iter:
        (a) z_i = f_theta_{iter-1}(x_i)                    the features the call receives
        (b) l_i: assign clusters using Eq. 2               assignment.assign_clusters
        (c) D_iter: select reliable data using Eq. 3       selection.temporal_anchors
        (d) f_theta_iter = train the model on D_iter       finetune(...), Eq. 4-5
        (e) update centres {c_k} using Eq. 6-7              center_update.update_centers

:func:`tcul_iteration` is the body of that loop; the kit's runner calls it once per
iteration. Fine-tuning is the one step that needs images and a network, so the caller
passes it in: ``finetune(index, pseudo_labels)`` trains on the images ``index`` (the
reliable ones) with their pseudo-labels and returns every image's features under the
fine-tuned model, ``f_theta_iter(x_i)``. Those features serve Eq. 6-7 now and are the next
iteration's ``z_i`` (step (a)): features are extracted once per iteration.

The paper's two baselines run through the same body: SUL selects by similarity to the own
centre instead of Eq. 3 (``selection="similarity"``); the PUL-style variant re-runs k-means
instead of Eq. 1-2 and Eq. 6-7 (``recluster``).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import NamedTuple

import numpy as np

from ..infra.errors import TCULError
from .assignment import assign_clusters
from .center_update import update_centers
from .selection import SELECTIONS, select_by_similarity, temporal_anchors

#: ``finetune(index, pseudo_labels) -> f_theta_iter(x_i)`` for every image.
Finetune = Callable[[np.ndarray, np.ndarray], np.ndarray]


class Iteration(NamedTuple):
    """What one iteration produces."""

    labels: np.ndarray  # l_i of Eq. 2, every image
    kept: np.ndarray  # D_iter: True for the reliable images (Eq. 3)
    centers: np.ndarray  # {c_k} after Eq. 6-7
    features: np.ndarray  # f_theta_iter(x_i): the next iteration's z_i


def tcul_iteration(features: np.ndarray, centers: np.ndarray, camids: np.ndarray,
                   frames: np.ndarray | None, finetune: Finetune, lambda_fr: float = 100,
                   lambda_c: float = 0.5, beta: float = 1e-6, *, selection: str = "temporal",
                   sim_threshold: float = 0.85,
                   recluster: Callable[[np.ndarray], tuple[np.ndarray, np.ndarray]] | None = None,
                   ) -> Iteration:
    """Steps (b)-(e) of Algorithm 1 on the features ``z_i`` of step (a).

    TCUL by default. ``selection="similarity"`` keeps ``sim(z_i, c_{l_i}) > sim_threshold``
    instead of Eq. 3 (SUL, PUL) and ``"none"`` keeps every image; ``recluster(z)`` returns
    ``(labels, centres)`` from a fresh k-means, used instead of Eq. 1-2, with no Eq. 6-7
    (PUL-style).
    """
    z = features
    if selection not in SELECTIONS:
        raise TCULError(f"unknown selection {selection!r}: use one of {', '.join(SELECTIONS)}")

    # (b) Eq. 1-2: l_i = argmax_k sim(z_i, c_k)
    if recluster is None:
        labels = assign_clusters(z, centers)
    else:
        labels, centers = recluster(z)

    # (c) Eq. 3: keep x in X_jk iff |fid(x_min_jk) - fid(x)| <= lambda_fr
    if selection == "temporal":
        kept = temporal_anchors(z, labels, centers, camids, frames, lambda_fr).kept
    elif selection == "similarity":
        kept = select_by_similarity(z, labels, centers, sim_threshold)
    else:
        kept = np.ones(len(labels), dtype=bool)

    # (d) Eq. 4-5: fine-tune on D_iter with the pseudo-labels l_i; new features f_theta_iter
    index = np.flatnonzero(kept)
    new_features = finetune(index, labels[index])

    # (e) Eq. 6-7 with the fine-tuned model's features and this iteration's labels
    if recluster is None:
        centers = update_centers(centers, new_features, labels, lambda_c, beta)
    return Iteration(labels, kept, centers, new_features)
