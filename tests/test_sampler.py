"""P x K sampler invariants and the single-image pseudo-identity rule."""

from __future__ import annotations

import math
import warnings
from collections import Counter

import numpy as np
import pytest
from torch.utils.data import DataLoader

from tcul_helpers.infra.errors import TCULError
from tcul_helpers.training.sampler import PKSampler, apply_singleton_rule


def uneven_labels(seed: int = 0, n_ids: int = 23) -> np.ndarray:
    """Labels 0..n_ids-1 (scrambled ids) with 1..12 images each, shuffled."""
    rng = np.random.default_rng(seed)
    counts = rng.integers(1, 13, size=n_ids)
    ids = rng.permutation(1000)[:n_ids] * 3 + 7  # non-contiguous label values
    labels = np.repeat(ids, counts)
    return rng.permutation(labels)


@pytest.mark.parametrize("P,K", [(4, 4), (5, 3), (8, 2)])
def test_every_batch_has_P_distinct_labels_times_K(P, K):
    labels = uneven_labels()
    sampler = PKSampler(labels, P, K, seed=1)
    counts = Counter(labels.tolist())
    batches = list(sampler)
    assert len(batches) == len(sampler) == math.ceil(len(counts) / P)
    for batch in batches:
        assert len(batch) == P * K == sampler.batch_size
        batch_labels = labels[batch]
        per_label = Counter(batch_labels.tolist())
        assert len(per_label) == P and set(per_label.values()) == {K}
        # grouped label by label
        for j in range(P):
            assert len(set(batch_labels[j * K:(j + 1) * K].tolist())) == 1
        for j in range(P):
            group = batch[j * K:(j + 1) * K]
            lab = labels[group[0]]
            if counts[lab] >= K:  # enough images: K distinct ones
                assert len(set(group)) == K
            else:  # too few: every image at least once, the rest repeats
                assert set(group) == set(np.flatnonzero(labels == lab).tolist())


def test_epoch_covers_every_label():
    labels = uneven_labels(seed=3, n_ids=30)
    sampler = PKSampler(labels, 4, 2, seed=0)
    for epoch in range(3):
        sampler.set_epoch(epoch)
        batches = sampler.batches()
        seen = Counter()
        for b in batches:
            seen.update(set(labels[b].tolist()))
        assert set(seen) == set(labels.tolist())
        # every label once; only the last batch's filler labels appear twice
        extra = sum(seen.values()) - len(seen)
        assert extra == len(batches) * 4 - 30


def test_deterministic_for_a_seed_and_set_epoch_changes_order():
    labels = uneven_labels(seed=5)
    a = PKSampler(labels, 4, 3, seed=11)
    b = PKSampler(labels, 4, 3, seed=11)
    assert list(a) == list(b)
    first = list(a)
    a.set_epoch(1)
    second = list(a)
    assert second != first
    a.set_epoch(0)
    assert list(a) == first
    assert list(PKSampler(labels, 4, 3, seed=12)) != first


def test_works_as_batch_sampler_of_a_dataloader():
    labels = uneven_labels(seed=2)
    sampler = PKSampler(labels, 4, 2, seed=0)
    loader = DataLoader(list(range(len(labels))), batch_sampler=sampler)
    got = [b.tolist() for b in loader]
    assert got == sampler.batches()


def test_too_few_labels():
    with pytest.raises(TCULError, match="at least 2"):
        PKSampler([3, 3, 3], 2, 2)
    with pytest.warns(UserWarning, match="using P=3"):
        s = PKSampler([0, 0, 1, 2, 2], 8, 2, seed=0)
    assert s.P == 3 and s.batch_size == 6
    batch = next(iter(s))
    assert sorted(Counter(np.array([0, 0, 1, 2, 2])[batch].tolist()).values()) == [2, 2, 2]
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        PKSampler([0, 1, 2], 2, 2)  # enough labels: no warning


def test_bad_inputs():
    with pytest.raises(TCULError, match=">= 0"):
        PKSampler([0, -1, 1], 2, 2)
    with pytest.raises(TCULError, match="P >= 2"):
        PKSampler([0, 1], 1, 2)
    with pytest.raises(TCULError, match="integers"):
        PKSampler([0.5, 1.0], 2, 2)


def test_singleton_rule():
    labels = np.array([4, 4, 9, 1, 1, 1, 7])
    assert apply_singleton_rule(labels, "drop").tolist() == [0, 1, 3, 4, 5]
    assert apply_singleton_rule(labels, "replace").tolist() == list(range(7))
    assert apply_singleton_rule([], "drop").tolist() == []
    with pytest.raises(TCULError, match="drop, replace"):
        apply_singleton_rule(labels, "keep")


def test_replace_rule_repeats_a_single_image():
    labels = np.array([0, 1, 1, 2, 2, 2])
    sampler = PKSampler(labels, 3, 4, seed=0)
    batch = sampler.batches()[0]
    single = [i for i in batch if labels[i] == 0]
    assert single == [0, 0, 0, 0]
