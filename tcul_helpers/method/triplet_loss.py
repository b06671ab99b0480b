"""Eq. 4-5: the batch-hard triplet loss of fine-tuning (Sec. 3.4), and the source
baseline's loss (Sec. 4.1: cross-entropy + the same triplet loss).

Eq. 4: ``L_trip(x_a, x_p, x_n) = [D(x_a, x_p) - D(x_a, x_n) + m]_+`` with ``D`` the
Euclidean distance between embeddings. Eq. 5 sums it over the mini-batch; with online hard
mining (Hermans et al., "In defense of the triplet loss") each anchor keeps only its hardest
triplet: the *farthest* image with the same label (hardest positive) and the *closest*
image with another label (hardest negative). The kit averages over the anchors that have
both (the usual batch-hard normalisation; a sum would only rescale the learning rate).

:func:`batch_hard_triplet_loss` is the vectorised lesson version; with
``return_details=True`` it also says which positive and negative each anchor picked.
:func:`naive_batch_hard_triplet_loss` writes the same thing as explicit loops over every
triplet: the reference the vectorised version is held against.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F

from ..infra.errors import TCULError


@dataclass(frozen=True)
class TripletMining:
    """What online hard mining chose in one batch (all tensors detached, length B).

    ``positive[a]`` / ``negative[a]``: batch index of anchor a's hardest positive / negative
    (-1 when it has none); ``d_ap``, ``d_an``: their distances; ``valid``: the anchor has a
    positive and a negative; ``losses``: ``[d_ap - d_an + m]_+`` per anchor (0 when not valid);
    ``distances``: the B x B Euclidean distance matrix.
    """

    distances: torch.Tensor
    positive: torch.Tensor
    negative: torch.Tensor
    d_ap: torch.Tensor
    d_an: torch.Tensor
    valid: torch.Tensor
    losses: torch.Tensor

    @property
    def active_fraction(self) -> float:
        """Fraction of valid anchors whose hardest triplet still violates the margin (loss > 0)."""
        n = int(self.valid.sum())
        return float((self.losses[self.valid] > 0).sum()) / n if n else 0.0


def _check_batch(embeddings: torch.Tensor, labels: torch.Tensor | list) -> torch.Tensor:
    if embeddings.ndim != 2:
        raise TCULError(
            f"embeddings must be a B x D matrix, got shape {tuple(embeddings.shape)}"
        )
    labels = torch.as_tensor(labels, device=embeddings.device)
    if labels.ndim != 1 or labels.shape[0] != embeddings.shape[0]:
        raise TCULError(
            f"labels must have one entry per embedding ({embeddings.shape[0]}), "
            f"got shape {tuple(labels.shape)}"
        )
    return labels


def _at_least_float32(x: torch.Tensor) -> torch.Tensor:
    return x if x.dtype == torch.float64 else x.float()


def pairwise_euclidean(x: torch.Tensor, eps: float = 1e-12) -> torch.Tensor:
    """The B x B matrix ``D(x_i, x_j) = ||x_i - x_j||_2`` (Eq. 4's distance).

    Uses ``||a||^2 + ||b||^2 - 2 a.b``, clamped at ``eps`` before the square root so that the
    gradient stays finite on the diagonal and for identical embeddings.
    """
    sq = (x * x).sum(dim=1)
    d2 = sq[:, None] + sq[None, :] - 2.0 * (x @ x.T)
    return d2.clamp_min(eps).sqrt()


def batch_hard_triplet_loss(
    embeddings: torch.Tensor,
    labels: torch.Tensor | list,
    margin: float,
    return_details: bool = False,
):
    """Batch-hard triplet loss (Eq. 4-5 with online hard mining) of a B x D batch.

    For each anchor a: hardest positive ``p* = argmax_{p != a, l_p = l_a} D(a, p)``, hardest
    negative ``n* = argmin_{l_n != l_a} D(a, n)``, loss ``[D(a, p*) - D(a, n*) + m]_+``;
    the result is the mean over anchors that have a positive and a negative (0, still part
    of the graph, when none has). Computed in float32 (float64 inputs stay float64) even
    under autocast.
    With ``return_details=True`` returns ``(loss, TripletMining)``.
    """
    labels = _check_batch(embeddings, labels)
    x = _at_least_float32(embeddings)
    dist = pairwise_euclidean(x)
    same = labels[:, None] == labels[None, :]
    eye = torch.eye(len(labels), dtype=torch.bool, device=x.device)
    pos_mask = same & ~eye
    neg_mask = ~same
    d_ap, pos_idx = dist.masked_fill(~pos_mask, float("-inf")).max(dim=1)
    d_an, neg_idx = dist.masked_fill(~neg_mask, float("inf")).min(dim=1)
    valid = pos_mask.any(dim=1) & neg_mask.any(dim=1)
    if valid.any():
        per_anchor = F.relu(d_ap[valid] - d_an[valid] + margin)
        loss = per_anchor.mean()
    else:
        loss = x.sum() * 0.0
    if not return_details:
        return loss
    with torch.no_grad():
        losses = torch.zeros_like(d_ap)
        if valid.any():
            losses[valid] = per_anchor.detach()
        details = TripletMining(
            distances=dist.detach(),
            positive=torch.where(pos_mask.any(dim=1), pos_idx, -1),
            negative=torch.where(neg_mask.any(dim=1), neg_idx, -1),
            d_ap=torch.where(pos_mask.any(dim=1), d_ap, torch.nan).detach(),
            d_an=torch.where(neg_mask.any(dim=1), d_an, torch.nan).detach(),
            valid=valid,
            losses=losses,
        )
    return loss, details


def naive_batch_hard_triplet_loss(
    embeddings: torch.Tensor, labels: torch.Tensor | list, margin: float
) -> torch.Tensor:
    """Reference version of :func:`batch_hard_triplet_loss` with explicit Python loops.

    Every triplet (a, p, n) with ``l_p = l_a``, ``p != a``, ``l_n != l_a`` is visited; each
    anchor keeps its hardest one (largest ``D(a, p) - D(a, n)``, hence the largest Eq. 4
    value); the loss is the mean of ``[D(a, p) - D(a, n) + m]_+`` over anchors that have a
    triplet. Distances are ``||x_a - x_p||`` computed pair by pair. Slow: for tests only.
    """
    labels = _check_batch(embeddings, labels).tolist()
    x = _at_least_float32(embeddings)
    n = len(labels)
    dist = [[torch.linalg.vector_norm(x[i] - x[j]) for j in range(n)] for i in range(n)]
    per_anchor = []
    for a in range(n):
        hardest = None
        for p in range(n):
            if p == a or labels[p] != labels[a]:
                continue
            for q in range(n):
                if labels[q] == labels[a]:
                    continue
                gap = dist[a][p] - dist[a][q]
                if hardest is None or gap.item() > hardest.item():
                    hardest = gap
        if hardest is not None:
            per_anchor.append(torch.clamp(hardest + margin, min=0.0))
    if not per_anchor:
        return x.sum() * 0.0
    return torch.stack(per_anchor).mean()


def baseline_loss(
    embeddings: torch.Tensor,
    logits: torch.Tensor,
    labels: torch.Tensor,
    margin: float,
    return_details: bool = False,
):
    """The source baseline's loss (Sec. 4.1): cross-entropy on the logits + batch-hard
    triplet loss (Eq. 4-5) on the embedding.

    Returns ``(total, cross_entropy, triplet)``, plus the :class:`TripletMining` as a fourth
    element with ``return_details=True``.
    """
    if logits is None:
        raise TCULError("the baseline loss needs logits: build the model with num_classes > 0")
    ce = F.cross_entropy(logits.float(), labels)
    trip, mined = batch_hard_triplet_loss(embeddings, labels, margin, return_details=True)
    if return_details:
        return ce + trip, ce, trip, mined
    return ce + trip, ce, trip
