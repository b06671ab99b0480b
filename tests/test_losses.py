"""Batch-hard triplet loss (Eq. 4-5 + online hard mining) against hand values and loops."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F

from tcul_helpers.infra.errors import TCULError
from tcul_helpers.method.triplet_loss import (
    baseline_loss,
    batch_hard_triplet_loss,
    naive_batch_hard_triplet_loss,
    pairwise_euclidean,
)


def test_hand_computed_one_dimensional_example():
    # points on a line: labels 0 at {0, 2}, labels 1 at {1, 5}; margin 0.5
    # anchor 0: d_ap=2, d_an=min(1,5)=1 -> 1.5; anchor 2: d_ap=2, d_an=min(1,3)=1 -> 1.5
    # anchor 1: d_ap=4, d_an=min(1,1)=1 -> 3.5; anchor 5: d_ap=4, d_an=min(5,3)=3 -> 1.5
    x = torch.tensor([[0.0], [2.0], [1.0], [5.0]], dtype=torch.float64)
    labels = torch.tensor([0, 0, 1, 1])
    loss, det = batch_hard_triplet_loss(x, labels, 0.5, return_details=True)
    assert loss.item() == pytest.approx(2.0, abs=1e-6)
    assert det.positive.tolist() == [1, 0, 3, 2]
    assert det.negative[0].item() == 2 and det.negative[3].item() == 1
    assert det.losses.tolist() == pytest.approx([1.5, 1.5, 3.5, 1.5], abs=1e-6)
    assert det.active_fraction == 1.0
    assert naive_batch_hard_triplet_loss(x, labels, 0.5).item() == pytest.approx(2.0, abs=1e-6)
    # a large gap between the groups: every triplet satisfies the margin
    far = torch.tensor([[0.0], [1.0], [10.0], [11.0]], dtype=torch.float64)
    loss, det = batch_hard_triplet_loss(far, labels, 0.5, return_details=True)
    assert loss.item() == 0.0 and det.active_fraction == 0.0


def test_pairwise_distance_matches_cdist():
    x = torch.randn(9, 5, dtype=torch.float64, generator=torch.Generator().manual_seed(0))
    d = pairwise_euclidean(x)
    ref = torch.cdist(x, x)
    off = ~torch.eye(9, dtype=torch.bool)
    assert torch.allclose(d[off], ref[off], atol=1e-10)
    assert (d.diagonal() < 1e-5).all()


def _pk_labels(P: int, K: int, gen: torch.Generator) -> torch.Tensor:
    return torch.randperm(50, generator=gen)[:P].repeat_interleave(K)


@pytest.mark.parametrize("seed", range(6))
def test_vectorised_equals_naive_values_and_gradients(seed):
    gen = torch.Generator().manual_seed(seed)
    if seed % 2 == 0:
        labels = _pk_labels(3, 3, gen)
    else:  # irregular batch: uneven groups and one label with a single image
        labels = torch.tensor([0, 0, 0, 1, 1, 2, 3, 3, 3, 3, 4])
    x = torch.randn(len(labels), 6, dtype=torch.float64, generator=gen) * (1 + seed)
    margin = [0.5, 0.3, 1.0, 2.0, 0.0, 5.0][seed]
    a = x.clone().requires_grad_(True)
    b = x.clone().requires_grad_(True)
    fast = batch_hard_triplet_loss(a, labels, margin)
    slow = naive_batch_hard_triplet_loss(b, labels, margin)
    assert fast.item() == pytest.approx(slow.item(), rel=1e-9, abs=1e-9)
    fast.backward()
    slow.backward()
    assert torch.allclose(a.grad, b.grad, atol=1e-8)


def test_float32_agrees_with_naive():
    gen = torch.Generator().manual_seed(7)
    labels = _pk_labels(4, 4, gen)
    x = torch.randn(16, 32, generator=gen)
    fast = batch_hard_triplet_loss(x, labels, 0.5)
    slow = naive_batch_hard_triplet_loss(x.double(), labels, 0.5)
    assert fast.item() == pytest.approx(slow.item(), rel=1e-5, abs=1e-5)


def test_details_match_brute_force_choices():
    gen = torch.Generator().manual_seed(3)
    labels = torch.tensor([0, 0, 1, 1, 1, 2, 5])
    x = torch.randn(7, 4, dtype=torch.float64, generator=gen)
    _, det = batch_hard_triplet_loss(x, labels, 0.5, return_details=True)
    for a in range(7):
        pos = [p for p in range(7) if p != a and labels[p] == labels[a]]
        neg = [n for n in range(7) if labels[n] != labels[a]]
        dist = [torch.linalg.vector_norm(x[a] - x[j]).item() for j in range(7)]
        if pos:
            assert det.positive[a].item() == max(pos, key=lambda j: dist[j])
            assert det.d_ap[a].item() == pytest.approx(max(dist[j] for j in pos), abs=1e-9)
        else:
            assert det.positive[a].item() == -1 and torch.isnan(det.d_ap[a])
        assert det.negative[a].item() == min(neg, key=lambda j: dist[j])
        assert det.valid[a].item() == bool(pos)
    assert det.valid.tolist() == [True, True, True, True, True, False, False]
    assert det.losses[~det.valid].eq(0).all()


def test_anchor_without_positive_is_left_out():
    gen = torch.Generator().manual_seed(1)
    x = torch.randn(5, 3, dtype=torch.float64, generator=gen)
    labels = torch.tensor([0, 0, 1, 1, 9])  # label 9 has no positive
    with_single = batch_hard_triplet_loss(x, labels, 0.7, return_details=True)[1]
    # the singleton still serves as a negative for others but is not an anchor
    assert not with_single.valid[4]
    expected = with_single.losses[:4].mean()
    assert batch_hard_triplet_loss(x, labels, 0.7).item() == pytest.approx(expected.item())
    assert naive_batch_hard_triplet_loss(x, labels, 0.7).item() == pytest.approx(expected.item())


@pytest.mark.parametrize("labels", [[2, 2, 2, 2], [0, 1, 2, 3]])
def test_no_valid_anchor_gives_zero_loss_and_finite_zero_gradient(labels):
    x = torch.randn(4, 3, requires_grad=True)
    loss = batch_hard_triplet_loss(x, torch.tensor(labels), 0.5)
    assert loss.item() == 0.0
    loss.backward()
    assert torch.equal(x.grad, torch.zeros_like(x))
    assert naive_batch_hard_triplet_loss(x.detach(), torch.tensor(labels), 0.5).item() == 0.0


def test_identical_embeddings_keep_gradients_finite():
    x = torch.zeros(4, 3, requires_grad=True)  # every distance is 0
    loss = batch_hard_triplet_loss(x, torch.tensor([0, 0, 1, 1]), 0.5)
    assert loss.item() == pytest.approx(0.5, abs=1e-5)
    loss.backward()
    assert torch.isfinite(x.grad).all()


def test_bad_shapes():
    with pytest.raises(TCULError, match="B x D"):
        batch_hard_triplet_loss(torch.randn(4), torch.tensor([0, 0, 1, 1]), 0.5)
    with pytest.raises(TCULError, match="one entry per embedding"):
        batch_hard_triplet_loss(torch.randn(4, 2), torch.tensor([0, 1]), 0.5)


def test_baseline_loss_is_cross_entropy_plus_triplet():
    gen = torch.Generator().manual_seed(4)
    emb = torch.randn(8, 5, generator=gen)
    logits = torch.randn(8, 4, generator=gen)
    labels = torch.tensor([0, 0, 1, 1, 2, 2, 3, 3])
    total, ce, trip = baseline_loss(emb, logits, labels, 0.5)
    assert ce.item() == pytest.approx(F.cross_entropy(logits, labels).item())
    assert trip.item() == pytest.approx(naive_batch_hard_triplet_loss(emb, labels, 0.5).item(),
                                        rel=1e-5)
    assert total.item() == pytest.approx(ce.item() + trip.item())
    with pytest.raises(TCULError, match="logits"):
        baseline_loss(emb, None, labels, 0.5)
