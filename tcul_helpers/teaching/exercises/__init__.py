"""Checkers for the notebooks' exercises: a student's function against the kit's reference.

Each ``check_*`` runs the student's function and the reference on the edge cases the method
meets (ties, empty clusters, a cluster seen by one camera only, frames exactly ``lambda_fr``
apart, ...) first and on random inputs last, and returns a :class:`CheckResult`. It never
raises: a stub that raises ``NotImplementedError`` is reported as "not implemented yet", any
other exception or a wrong answer is reported with the input, the expected and the obtained
value and a hint; when the wrong answer is one of the common mistakes written out in
``MISTAKES``, the message names it ("recognised mistake: ..."). In a notebook the result
displays itself; ``bool(result)`` is the verdict.

==============================  ====  =====================================================
checker                          nb    the student's function computes
==============================  ====  =====================================================
:func:`check_assign`             03    ``fn(features, centers) -> labels`` (Eq. 1-2)
:func:`check_select_temporal`    04    ``fn(features, labels, centers, camids, frames,
                                       lambda_fr) -> kept`` bool mask (Eq. 3)
:func:`check_select_similarity`  04    ``fn(features, labels, centers, threshold) -> kept``
                                       (SUL: cosine to the own centre > threshold)
:func:`check_triplet_loss`       05    ``fn(embeddings, labels, margin) -> loss`` (Eq. 4-5,
                                       batch-hard, mean over anchors with a positive)
:func:`check_pm_batch`           05    ``fn(labels, P, K, rng) -> batch`` (the P x M sampler)
:func:`check_update_centers`     06    ``fn(centers, features, labels, lambda_c, beta)``
                                       ``-> centres`` (Eq. 6-7)
:func:`check_pairwise_precision` 04    ``fn(pseudo_labels, true_labels, mask=None) -> float``
:func:`check_market_frame`       01    ``fn(file_name) -> (pid, camid, frame)``, Market-1501's
                                       sequences laid end to end (the fid(x) of Eq. 3)
:func:`check_tcul_iteration`     07    one iteration of Algorithm 1, steps (b)-(e)
==============================  ====  =====================================================

A part of the method that passes its check (Eq. 1-2, 3, 4-5, 6-7) is kept for notebook 07,
which runs Algorithm 1 with the student's own parts (:mod:`.my_parts`).

The machinery lives in :mod:`.checking`; each stage's checker and its mistakes in its own
module (:mod:`.assignment`, :mod:`.selection`, :mod:`.triplet`, :mod:`.centres`,
:mod:`.precision`, :mod:`.frames`, :mod:`.iteration`).
"""

from .assignment import ASSIGN_MISTAKES, check_assign
from .centres import CENTRE_MISTAKES, check_update_centers
from .checking import CheckResult, Mistake
from .frames import FRAME_MISTAKES, check_market_frame
from .iteration import ITERATION_MISTAKES, check_tcul_iteration
from .my_parts import keeping, load_parts
from .precision import PRECISION_MISTAKES, check_pairwise_precision
from .selection import (
    SIMILARITY_MISTAKES,
    TEMPORAL_MISTAKES,
    check_select_similarity,
    check_select_temporal,
)
from .triplet import TRIPLET_MISTAKES, check_pm_batch, check_triplet_loss

# a part of the method that passes its check is kept for notebook 07 (see .my_parts)
check_assign = keeping("assign", check_assign)
check_select_temporal = keeping("select_temporal", check_select_temporal)
check_triplet_loss = keeping("triplet_loss", check_triplet_loss)
check_update_centers = keeping("update_centers", check_update_centers)

CHECKERS = {
    "assign": check_assign,
    "select_temporal": check_select_temporal,
    "select_similarity": check_select_similarity,
    "triplet_loss": check_triplet_loss,
    "pm_batch": check_pm_batch,
    "update_centers": check_update_centers,
    "pairwise_precision": check_pairwise_precision,
    "market_frame": check_market_frame,
    "tcul_iteration": check_tcul_iteration,
}

#: The common wrong answers each checker recognises by name (the P x M checker recognises
#: its own by the properties of the batches, see :func:`check_pm_batch`).
MISTAKES: dict[str, list[Mistake]] = {
    "assign": ASSIGN_MISTAKES,
    "select_temporal": TEMPORAL_MISTAKES,
    "select_similarity": SIMILARITY_MISTAKES,
    "triplet_loss": TRIPLET_MISTAKES,
    "update_centers": CENTRE_MISTAKES,
    "pairwise_precision": PRECISION_MISTAKES,
    "market_frame": FRAME_MISTAKES,
    "tcul_iteration": ITERATION_MISTAKES,
}

__all__ = ["CHECKERS", "MISTAKES", "CheckResult", "Mistake", "check_assign",
           "check_market_frame", "check_pairwise_precision", "check_pm_batch",
           "check_select_similarity", "check_select_temporal", "check_tcul_iteration",
           "check_triplet_loss", "check_update_centers", "load_parts"]
