"""P x M batches: P identities (or pseudo-identities) with M images each.

Batch-hard triplet loss (Eq. 4-5 with online hard mining) needs every anchor to have a
positive and a negative in its batch, so batches are built from P labels x M images
(Hermans et al.'s "P x M"; the paper uses 16 identities x 8 images, with the pseudo-labels
of Eq. 1-2 as labels). M is not the K of Eq. 2, the number of clusters.

Rules of :class:`IdentitySampler`:

* every batch has P distinct labels; a label with at least M images gives M distinct images
  drawn at random, a label with fewer than M gives all its images plus random repeats;
* what an epoch covers (``cfg.epoch``):

  - ``"identities"``: every label once, in a random order, P labels a batch; the last batch
    is filled up with other labels drawn at random: ``ceil(#labels / P)`` batches;
  - ``"images"``: about one pass over the images, as the re-id toolboxes count an epoch
    (torchreid's ``RandomIdentitySampler``): each label's images, shuffled, are cut into
    groups of M (a label with fewer than M images gives one group), and each batch takes
    the next group of P labels drawn at random, in proportion to the groups they have left:
    ``#groups // P`` batches;

* fewer than 2 labels -> TCULError (no negative exists); fewer than P labels -> a warning
  and P is lowered to the number of labels;
* the order depends only on ``(seed, epoch)``; call :meth:`IdentitySampler.set_epoch`
  before each epoch to get a new, reproducible order.

Single-image pseudo-identities (``cfg.singletons``): one image cannot form a positive pair
with itself, except as an augmented copy. ``"drop"`` (the default of every profile) leaves
them out of fine-tuning; ``"replace"`` keeps them and lets the sampler repeat the image M
times, so the positives are differently augmented views of one image.
See :func:`apply_singleton_rule`.
"""

from __future__ import annotations

import math
import warnings
from collections.abc import Iterator, Sequence

import numpy as np
from torch.utils.data import Sampler

from ..infra.errors import TCULError
from ..settings.config import EPOCHS, SINGLETON_RULES


def _labels_array(labels: Sequence[int] | np.ndarray) -> np.ndarray:
    arr = np.asarray(labels)
    if arr.ndim != 1:
        raise TCULError(f"labels must be a 1-D sequence of integers, got shape {arr.shape}")
    if len(arr) and not np.issubdtype(arr.dtype, np.integer):
        raise TCULError(f"labels must be integers, got dtype {arr.dtype}")
    arr = arr.astype(np.int64)
    if len(arr) and arr.min() < 0:
        raise TCULError(
            f"labels must be >= 0, found {int(arr.min())}: pass only the images that take part "
            "(e.g. the indices from apply_singleton_rule) with their labels"
        )
    return arr


def apply_singleton_rule(labels: Sequence[int] | np.ndarray, rule: str = "drop") -> np.ndarray:
    """Indices of the images that take part in fine-tuning under ``cfg.singletons``.

    ``"drop"``: images whose (pseudo-)label has a single image are left out.
    ``"replace"``: every image is kept; :class:`IdentitySampler` samples single images with
    replacement. Returns sorted indices into ``labels``.
    """
    if rule not in SINGLETON_RULES:
        raise TCULError(f"bad singletons rule {rule!r}: use one of {', '.join(SINGLETON_RULES)}")
    arr = _labels_array(labels)
    if rule == "replace" or len(arr) == 0:
        return np.arange(len(arr))
    _, inverse, counts = np.unique(arr, return_inverse=True, return_counts=True)
    return np.flatnonzero(counts[inverse] > 1)


class IdentitySampler(Sampler[list[int]]):
    """Yields batches (lists of dataset indices) of P distinct labels x M images each.

    Use it as ``DataLoader(dataset, batch_sampler=IdentitySampler(labels, P, M, seed))``;
    each batch is ordered label by label (M indices of the first label, then the next, ...).

    Args:
        labels: one integer label >= 0 per dataset index.
        P: labels per batch (``cfg.batch_ids``).
        M: images per label (``cfg.batch_instances`` or ``cfg.num_instances_source``).
        seed: the base seed; the order of epoch ``e`` depends on ``(seed, e)`` only.
        epoch: what one epoch covers, ``"identities"`` or ``"images"`` (``cfg.epoch``).
    """

    def __init__(self, labels: Sequence[int] | np.ndarray, P: int, M: int, seed: int = 0,
                 epoch: str = "identities") -> None:
        if int(P) < 2 or int(M) < 1:
            raise TCULError(f"P x M batches need P >= 2 and M >= 1, got P={P}, M={M}")
        if epoch not in EPOCHS:
            raise TCULError(f"unknown epoch {epoch!r}: use one of {', '.join(EPOCHS)}")
        arr = _labels_array(labels)
        self.labels = arr
        self.ids, inverse = np.unique(arr, return_inverse=True)
        if len(self.ids) < 2:
            raise TCULError(
                f"P x M batches need at least 2 different labels, got {len(self.ids)}: "
                "select more images or lower the number of clusters"
            )
        order = np.argsort(inverse, kind="stable")
        bounds = np.cumsum(np.bincount(inverse, minlength=len(self.ids)))[:-1]
        self.index_pools: list[np.ndarray] = np.split(order, bounds)
        self.requested_P = int(P)
        if len(self.ids) < int(P):
            warnings.warn(
                f"only {len(self.ids)} labels for P={P} labels a batch: using P={len(self.ids)}",
                stacklevel=2,
            )
        self.P = min(int(P), len(self.ids))
        self.M = int(M)
        self.seed = int(seed)
        self.unit = epoch
        self.epoch = 0

    @property
    def num_ids(self) -> int:
        """Number of distinct labels."""
        return len(self.ids)

    @property
    def batch_size(self) -> int:
        """Images per batch, ``P * M``."""
        return self.P * self.M

    def set_epoch(self, epoch: int) -> None:
        """Use the (reproducible) order of epoch ``epoch`` on the next iteration."""
        self.epoch = int(epoch)

    def _groups(self, pool: np.ndarray) -> int:
        """How many groups of M a label of these images gives in an ``"images"`` epoch."""
        return max(1, len(pool) // self.M)

    def __len__(self) -> int:
        if self.unit == "images":
            return max(1, sum(self._groups(pool) for pool in self.index_pools) // self.P)
        return math.ceil(self.num_ids / self.P)

    def _draw(self, rng: np.random.Generator, pool: np.ndarray) -> np.ndarray:
        if len(pool) >= self.M:
            return rng.choice(pool, size=self.M, replace=False)
        extra = rng.choice(pool, size=self.M - len(pool), replace=True)
        return np.concatenate([rng.permutation(pool), extra])

    def batches(self) -> list[list[int]]:
        """All batches of the current epoch (what iterating the sampler yields)."""
        rng = np.random.default_rng([self.seed, self.epoch])
        batches = self._image_batches(rng) if self.unit == "images" else self._id_batches(rng)
        return [[int(i) for i in batch] for batch in batches]

    def _id_batches(self, rng: np.random.Generator) -> list[np.ndarray]:
        """An ``"identities"`` epoch: every label once, M of its images."""
        order = rng.permutation(self.num_ids)
        out = []
        for start in range(0, self.num_ids, self.P):
            chunk = order[start:start + self.P]
            if len(chunk) < self.P:
                others = np.setdiff1d(np.arange(self.num_ids), chunk)
                fill = rng.choice(others, size=self.P - len(chunk), replace=False)
                chunk = np.concatenate([chunk, fill])
            out.append(np.concatenate([self._draw(rng, self.index_pools[c]) for c in chunk]))
        return out

    def _image_batches(self, rng: np.random.Generator) -> list[np.ndarray]:
        """An ``"images"`` epoch: every label's images in groups of M, about one pass."""
        groups = []
        for pool in self.index_pools:
            images = self._draw(rng, pool) if len(pool) < self.M else rng.permutation(pool)
            groups.append([images[g * self.M:(g + 1) * self.M]
                           for g in range(self._groups(pool))])
        left = np.array([len(g) for g in groups])
        out = []
        for _ in range(len(self)):
            have = np.flatnonzero(left)
            if len(have) >= self.P:
                chosen = rng.choice(have, size=self.P, replace=False,
                                    p=left[have] / left[have].sum())
            else:  # the last batch: the labels with groups left, then others afresh
                others = np.setdiff1d(np.arange(self.num_ids), have)
                chosen = np.concatenate(
                    [have, rng.choice(others, size=self.P - len(have), replace=False)])
            batch = []
            for c in chosen:
                if left[c]:
                    batch.append(groups[c][len(groups[c]) - left[c]])
                    left[c] -= 1
                else:
                    batch.append(self._draw(rng, self.index_pools[c]))
            out.append(np.concatenate(batch))
        return out

    def __iter__(self) -> Iterator[list[int]]:
        yield from self.batches()
