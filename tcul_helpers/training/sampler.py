"""P x K batches: P identities (or pseudo-identities) with K images each.

Batch-hard triplet loss (Eq. 4-5 with online hard mining) needs every anchor to have a
positive and a negative in its batch, so batches are built from P labels x K images
(Hermans et al.; the paper uses P=16, K=8 with the pseudo-labels of Eq. 1-2 as labels).

Rules of :class:`PKSampler`:

* an epoch visits every label once, in a random order, P labels a batch; the last batch is
  filled up with other labels drawn at random, so every batch has exactly P distinct labels
  and there are ``ceil(#labels / P)`` batches;
* a label with at least K images gives K distinct images drawn at random; a label with
  fewer than K gives all its images once plus random repeats (sampling with replacement);
* fewer than 2 labels -> TCULError (no negative exists); fewer than P labels -> a warning
  and P is lowered to the number of labels;
* the order depends only on ``(seed, epoch)``; call :meth:`PKSampler.set_epoch` before each
  epoch to get a new, reproducible order.

Single-image pseudo-identities (``cfg.singletons``): one image cannot form a positive pair
with itself, except as an augmented copy. ``"drop"`` (the default of every profile) leaves
them out of fine-tuning; ``"replace"`` keeps them and lets the sampler repeat the image K
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
from ..settings.config import SINGLETON_RULES


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
    ``"replace"``: every image is kept; :class:`PKSampler` samples single images with
    replacement. Returns sorted indices into ``labels``.
    """
    if rule not in SINGLETON_RULES:
        raise TCULError(f"bad singletons rule {rule!r}: use one of {', '.join(SINGLETON_RULES)}")
    arr = _labels_array(labels)
    if rule == "replace" or len(arr) == 0:
        return np.arange(len(arr))
    _, inverse, counts = np.unique(arr, return_inverse=True, return_counts=True)
    return np.flatnonzero(counts[inverse] > 1)


class PKSampler(Sampler[list[int]]):
    """Yields batches (lists of dataset indices) of P distinct labels x K images each.

    Use it as ``DataLoader(dataset, batch_sampler=PKSampler(labels, P, K, seed))``; each
    batch is ordered label by label (K indices of the first label, then the next, ...).

    Args:
        labels: one integer label >= 0 per dataset index.
        P: labels per batch (``cfg.batch_ids``).
        K: images per label (``cfg.batch_instances`` or ``cfg.num_instances_source``).
        seed: the base seed; the order of epoch ``e`` depends on ``(seed, e)`` only.
    """

    def __init__(self, labels: Sequence[int] | np.ndarray, P: int, K: int, seed: int = 0) -> None:
        if int(P) < 2 or int(K) < 1:
            raise TCULError(f"PK batches need P >= 2 and K >= 1, got P={P}, K={K}")
        arr = _labels_array(labels)
        self.labels = arr
        self.ids, inverse = np.unique(arr, return_inverse=True)
        if len(self.ids) < 2:
            raise TCULError(
                f"PK batches need at least 2 different labels, got {len(self.ids)}: "
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
        self.K = int(K)
        self.seed = int(seed)
        self.epoch = 0

    @property
    def num_ids(self) -> int:
        """Number of distinct labels."""
        return len(self.ids)

    @property
    def batch_size(self) -> int:
        """Images per batch, ``P * K``."""
        return self.P * self.K

    def set_epoch(self, epoch: int) -> None:
        """Use the (reproducible) order of epoch ``epoch`` on the next iteration."""
        self.epoch = int(epoch)

    def __len__(self) -> int:
        return math.ceil(self.num_ids / self.P)

    def _draw(self, rng: np.random.Generator, pool: np.ndarray) -> np.ndarray:
        if len(pool) >= self.K:
            return rng.choice(pool, size=self.K, replace=False)
        extra = rng.choice(pool, size=self.K - len(pool), replace=True)
        return np.concatenate([rng.permutation(pool), extra])

    def batches(self) -> list[list[int]]:
        """All batches of the current epoch (what iterating the sampler yields)."""
        rng = np.random.default_rng([self.seed, self.epoch])
        order = rng.permutation(self.num_ids)
        out: list[list[int]] = []
        for start in range(0, self.num_ids, self.P):
            chunk = order[start:start + self.P]
            if len(chunk) < self.P:
                others = np.setdiff1d(np.arange(self.num_ids), chunk)
                fill = rng.choice(others, size=self.P - len(chunk), replace=False)
                chunk = np.concatenate([chunk, fill])
            batch = np.concatenate([self._draw(rng, self.index_pools[c]) for c in chunk])
            out.append([int(i) for i in batch])
        return out

    def __iter__(self) -> Iterator[list[int]]:
        yield from self.batches()
