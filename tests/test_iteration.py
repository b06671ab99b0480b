"""One iteration of Algorithm 1 (method/iteration.py): the body the runner calls, composed of
the equations, for TCUL and the paper's baselines."""

from __future__ import annotations

import numpy as np
import pytest

from tcul_helpers.infra.errors import TCULError
from tcul_helpers.method.assignment import assign_clusters
from tcul_helpers.method.center_update import update_centers
from tcul_helpers.method.iteration import Iteration, tcul_iteration
from tcul_helpers.method.selection import select_by_similarity, select_temporal
from tcul_helpers.teaching.exercises.iteration import FakeFinetune, iteration_cases


def _network(seed=0, n=60, k=5, d=6):
    rng = np.random.default_rng(seed)
    z = rng.normal(size=(n, d))
    z /= np.linalg.norm(z, axis=1, keepdims=True)
    centers = z[rng.choice(n, k, replace=False)] + 0.05 * rng.normal(size=(k, d))
    return z, centers, rng.integers(1, 4, n), rng.integers(0, 500, n)


@pytest.mark.parametrize("case", iteration_cases(), ids=lambda c: c.name)
def test_tcul_is_eq_1_to_7_in_order(case):
    z, c, cams, fr, fake, lam_fr, lam_c, beta = case.args
    got = tcul_iteration(z, c, cams, fr, fake.fresh(), lam_fr, lam_c, beta)
    assert isinstance(got, Iteration)
    labels = assign_clusters(z, c)
    kept = select_temporal(z, labels, c, cams, fr, lam_fr)
    index = np.flatnonzero(kept)
    trained = fake.fresh()
    new_z = trained(index, labels[index])
    np.testing.assert_array_equal(got.labels, labels)
    np.testing.assert_array_equal(got.kept, kept)
    np.testing.assert_array_equal(got.features, new_z)
    np.testing.assert_array_equal(got.centers, update_centers(c, new_z, labels, lam_c, beta))


def test_fine_tuning_sees_only_the_reliable_images_with_their_labels():
    z, c, cams, fr = _network()
    fake = FakeFinetune(z)
    got = tcul_iteration(z, c, cams, fr, fake, lambda_fr=40)
    (index, pseudo), = fake.calls
    assert 0 < len(index) < len(z)  # a window of 40 frames keeps some, not all
    np.testing.assert_array_equal(index, np.flatnonzero(got.kept))
    np.testing.assert_array_equal(pseudo, got.labels[got.kept])


def test_sul_selects_by_similarity_and_none_keeps_everything():
    z, c, cams, fr = _network(1)
    sul = tcul_iteration(z, c, cams, None, FakeFinetune(z), selection="similarity",
                         sim_threshold=0.5)
    np.testing.assert_array_equal(sul.kept, select_by_similarity(z, sul.labels, c, 0.5))
    every = tcul_iteration(z, c, cams, None, FakeFinetune(z), selection="none")
    assert every.kept.all()


def test_pul_reclusters_instead_of_eq_1_2_and_skips_eq_6_7():
    z, c, cams, fr = _network(2)
    pul_centers = z[:5].copy()
    pul_labels = np.arange(len(z)) % 5

    got = tcul_iteration(z, c, cams, fr, FakeFinetune(z), selection="similarity",
                         recluster=lambda feats: (pul_labels, pul_centers))
    np.testing.assert_array_equal(got.labels, pul_labels)
    np.testing.assert_array_equal(got.centers, pul_centers)  # no centre update
    np.testing.assert_array_equal(got.kept, select_by_similarity(z, pul_labels, pul_centers))


def test_an_unknown_selection_is_refused_before_any_training():
    z, c, cams, fr = _network()
    fake = FakeFinetune(z)
    with pytest.raises(TCULError, match="unknown selection 'best': use one of temporal"):
        tcul_iteration(z, c, cams, fr, fake, selection="best")
    assert not fake.calls


def test_temporal_selection_without_frames_names_the_fix():
    z, c, cams, _ = _network()
    with pytest.raises(TCULError, match="no frame ids .*: use selection=similarity"):
        tcul_iteration(z, c, cams, None, FakeFinetune(z))
