"""Tests of tcul_helpers.measurement.evaluation: CMC / mAP under the Market single-query
protocol."""

from __future__ import annotations

import numpy as np
import pytest
from sklearn.metrics import average_precision_score
from sklearn.metrics import pairwise_distances as sk_pairwise

import tcul_helpers.measurement.evaluation as ev
from tcul_helpers.infra.errors import TCULError
from tcul_helpers.measurement.evaluation import (
    evaluate,
    evaluate_features,
    evaluate_reference,
    pairwise_distances,
    summarize,
)

BOTH = [
    pytest.param(lambda *a, **k: evaluate(*a, progress=False, **k), id="vectorised"),
    pytest.param(lambda *a, **k: evaluate_reference(*a, progress=False, **k), id="reference"),
]


def naive_eval(dist, q_pids, g_pids, q_cams, g_cams, max_rank):
    """The protocol written out with Python lists: an independent check of both versions."""
    cmc_sum = [0.0] * max_rank
    aps = []
    for q in range(len(q_pids)):
        ranked = sorted(range(len(g_pids)), key=lambda j: (float(dist[q][j]), j))
        ranked = [
            j
            for j in ranked
            if g_pids[j] != -1 and not (g_pids[j] == q_pids[q] and g_cams[j] == q_cams[q])
        ]
        hits = [pos + 1 for pos, j in enumerate(ranked) if g_pids[j] == q_pids[q]]
        if not hits:
            continue
        aps.append(sum((i + 1) / r for i, r in enumerate(hits)) / len(hits))
        for k in range(max_rank):
            cmc_sum[k] += 1.0 if hits[0] <= k + 1 else 0.0
    if not aps:
        return None
    return np.array(cmc_sum) / len(aps), sum(aps) / len(aps)


def market_like(rng, n_ids, nq, ng, n_cams=6, dim=16, noise=1.0, tie_decimals=None):
    """Small Market-like split: identities in several cameras, pid-0 distractors, junk."""
    g_pids = rng.integers(1, n_ids + 1, ng)
    g_pids[rng.random(ng) < 0.15] = 0  # distractors
    g_pids[rng.random(ng) < 0.05] = -1  # junk
    g_cams = rng.integers(1, n_cams + 1, ng)
    q_pids = rng.integers(1, n_ids + 1, nq)
    q_cams = rng.integers(1, n_cams + 1, nq)
    centres = rng.standard_normal((n_ids + 1, dim))
    qf = centres[q_pids] + noise * rng.standard_normal((nq, dim))
    gf = centres[np.maximum(g_pids, 0)] + noise * rng.standard_normal((ng, dim))
    dist = np.sqrt(((qf[:, None, :] - gf[None, :, :]) ** 2).sum(-1))
    if tie_decimals is not None:
        dist = np.round(dist, tie_decimals)
    return dist.astype(np.float32), q_pids, g_pids, q_cams, g_cams


# --------------------------------------------------------------------------------------
# hand-computed toy cases
# --------------------------------------------------------------------------------------
# gallery: (pid, cam)
TOY_G_PIDS = [1, 2, 1, 0, 1, -1]
TOY_G_CAMS = [1, 2, 2, 3, 3, 2]
TOY_Q_PIDS = [1, 2, 3]
TOY_Q_CAMS = [1, 1, 1]
TOY_DIST = [
    # q0 (pid 1, cam 1): g0 same pid+cam removed, g5 junk removed ->
    #   valid ranking g1 (0.2, pid 2), g2 (0.3, match), g3 (0.4, distractor), g4 (0.5, match)
    #   true matches at ranks 2 and 4: AP = (1/2 + 2/4) / 2 = 0.5, first match at rank 2
    [0.1, 0.2, 0.3, 0.4, 0.5, 0.05],
    # q1 (pid 2, cam 1): ranking g2 0.1, g3 0.2, g4 0.3, g1 0.8 (match), g0 0.9
    #   AP = 1/4, first match at rank 4
    [0.9, 0.8, 0.1, 0.2, 0.3, 0.7],
    # q2 (pid 3): no pid 3 in the gallery -> skipped
    [0.5, 0.5, 0.5, 0.5, 0.5, 0.5],
]
TOY_CMC = [0.0, 0.5, 0.5, 1.0, 1.0, 1.0]  # over the 2 queries left
TOY_MAP = (0.5 + 0.25) / 2


@pytest.mark.parametrize("fn", BOTH)
def test_toy_hand_computed(fn):
    cmc, mAP = fn(TOY_DIST, TOY_Q_PIDS, TOY_G_PIDS, TOY_Q_CAMS, TOY_G_CAMS, max_rank=6)
    np.testing.assert_allclose(cmc, TOY_CMC, atol=1e-12)
    assert mAP == pytest.approx(TOY_MAP, abs=1e-12)


@pytest.mark.parametrize("fn", BOTH)
def test_toy_single_queries(fn):
    d = np.array(TOY_DIST)
    cmc, mAP = fn(d[:1], TOY_Q_PIDS[:1], TOY_G_PIDS, TOY_Q_CAMS[:1], TOY_G_CAMS, max_rank=4)
    np.testing.assert_allclose(cmc, [0, 1, 1, 1])
    assert mAP == pytest.approx(0.5)
    cmc, mAP = fn(d[1:2], TOY_Q_PIDS[1:2], TOY_G_PIDS, TOY_Q_CAMS[1:2], TOY_G_CAMS, max_rank=4)
    np.testing.assert_allclose(cmc, [0, 0, 0, 1])
    assert mAP == pytest.approx(0.25)


@pytest.mark.parametrize("fn", BOTH)
def test_same_pid_same_camera_removed_not_counted(fn):
    # Without the removal, g0 (same pid, same camera, nearest) would give rank-1 = 1, AP = 1.
    g_pids, g_cams = [5, 7, 5], [1, 2, 2]
    cmc, mAP = fn([[0.1, 0.2, 0.3]], [5], g_pids, [1], g_cams, max_rank=3)
    np.testing.assert_allclose(cmc, [0, 1, 1])  # list is g1 (pid 7), g2 (match)
    assert mAP == pytest.approx(1 / 2)


@pytest.mark.parametrize("fn", BOTH)
def test_junk_removed_and_distractors_count_as_wrong(fn):
    # gallery: junk nearest, then a distractor (pid 0), then the true match
    cmc, mAP = fn([[0.1, 0.2, 0.3]], [4], [-1, 0, 4], [1], [2, 2, 2], max_rank=3)
    np.testing.assert_allclose(cmc, [0, 1, 1])  # junk gone, distractor at rank 1
    assert mAP == pytest.approx(1 / 2)


@pytest.mark.parametrize("fn", BOTH)
def test_query_without_cross_camera_match_is_skipped(fn):
    # q1's only same-pid image is in its own camera -> skipped; q0 finds its match at rank 1
    g_pids, g_cams = [1, 2, 3], [2, 1, 3]
    dist = [[0.1, 0.2, 0.3], [0.3, 0.1, 0.2]]
    cmc, mAP = fn(dist, [1, 2], g_pids, [1, 1], g_cams, max_rank=3)
    np.testing.assert_allclose(cmc, [1, 1, 1])
    assert mAP == pytest.approx(1.0)


@pytest.mark.parametrize("fn", BOTH)
def test_pid_zero_is_an_ordinary_pid(fn):
    # Market has no pid-0 query, so distractors never match; MSMT17 uses pid 0 for a person.
    cmc, mAP = fn([[0.2, 0.1]], [0], [0, 3], [1], [2, 2], max_rank=2)
    np.testing.assert_allclose(cmc, [0, 1])
    assert mAP == pytest.approx(0.5)


@pytest.mark.parametrize("fn", BOTH)
def test_ties_are_broken_by_gallery_index(fn):
    q, qc = [1], [1]
    # all tied: the list is g0..g3 in index order
    cmc, mAP = fn([[1.0] * 4], q, [2, 1, 3, 1], qc, [2, 2, 3, 3], max_rank=4)
    np.testing.assert_allclose(cmc, [0, 1, 1, 1])
    assert mAP == pytest.approx((1 / 2 + 2 / 4) / 2)
    cmc, mAP = fn([[1.0] * 4], q, [1, 2, 1, 3], qc, [2, 2, 3, 3], max_rank=4)
    np.testing.assert_allclose(cmc, [1, 1, 1, 1])
    assert mAP == pytest.approx((1 / 1 + 2 / 3) / 2)
    # -0.0 and 0.0 tie too
    cmc, mAP = fn([[0.0, -0.0]], q, [2, 1], qc, [2, 2], max_rank=2)
    assert mAP == pytest.approx(1 / 2)


@pytest.mark.parametrize("fn", BOTH)
def test_cmc_longer_than_gallery_is_padded(fn):
    cmc, mAP = fn(TOY_DIST, TOY_Q_PIDS, TOY_G_PIDS, TOY_Q_CAMS, TOY_G_CAMS, max_rank=10)
    assert cmc.shape == (10,)
    np.testing.assert_allclose(cmc, TOY_CMC + [1.0] * 4)
    cmc, _ = fn(TOY_DIST, TOY_Q_PIDS, TOY_G_PIDS, TOY_Q_CAMS, TOY_G_CAMS, max_rank=1)
    np.testing.assert_allclose(cmc, [0.0])


def test_summarize_percentages():
    cmc = np.linspace(0.1, 1.0, 10)
    s = summarize(cmc, 0.25)
    assert s == pytest.approx({"rank1": 10.0, "rank5": 50.0, "rank10": 100.0, "mAP": 25.0})
    assert all(isinstance(v, float) for v in s.values())


# --------------------------------------------------------------------------------------
# vectorised == reference == naive on random data
# --------------------------------------------------------------------------------------
@pytest.mark.parametrize(
    "seed,n_ids,nq,ng,ties",
    [(0, 5, 7, 13, None), (1, 30, 60, 300, None), (2, 40, 90, 500, 1), (3, 3, 20, 40, 0)],
)
def test_vectorised_equals_reference_and_naive(seed, n_ids, nq, ng, ties):
    rng = np.random.default_rng(seed)
    dist, qp, gp, qc, gc = market_like(rng, n_ids, nq, ng, tie_decimals=ties)
    want = naive_eval(dist, qp, gp, qc, gc, 20)
    ref = evaluate_reference(dist, qp, gp, qc, gc, max_rank=20, progress=False)
    np.testing.assert_allclose(ref[0], want[0], atol=1e-12)
    assert ref[1] == pytest.approx(want[1], abs=1e-12)
    for dtype in (np.float32, np.float64):
        for chunk in (None, 1, 7):
            got = evaluate(
                dist.astype(dtype), qp, gp, qc, gc, max_rank=20, chunk_size=chunk, progress=False
            )
            np.testing.assert_allclose(got[0], ref[0], atol=1e-12)
            assert got[1] == pytest.approx(ref[1], abs=1e-12)
    if ties is not None:  # integer distances (ties everywhere): same numbers
        got = evaluate(
            np.round(dist * 10**ties).astype(np.int32), qp, gp, qc, gc, max_rank=20, progress=False
        )
        np.testing.assert_allclose(got[0], ref[0], atol=1e-12)
        assert got[1] == pytest.approx(ref[1], abs=1e-12)


def test_vectorised_equals_reference_with_heavy_ties_and_infinities():
    rng = np.random.default_rng(7)
    values = np.array([-np.inf, -1.0, -0.0, 0.0, 1.0, 2.0, np.inf], dtype=np.float32)
    nq, ng = 25, 60
    dist = rng.choice(values, (nq, ng))
    qp, gp = rng.integers(0, 4, nq), rng.integers(-1, 4, ng)
    qc, gc = rng.integers(0, 3, nq), rng.integers(0, 3, ng)
    ref = evaluate_reference(dist, qp, gp, qc, gc, max_rank=8, progress=False)
    want = naive_eval(dist, qp, gp, qc, gc, 8)
    np.testing.assert_allclose(ref[0], want[0], atol=1e-12)
    assert ref[1] == pytest.approx(want[1], abs=1e-12)
    for dist_in in (dist, dist.astype(np.float64), dist.T.copy().T):  # also non-contiguous
        got = evaluate(dist_in, qp, gp, qc, gc, max_rank=8, chunk_size=4, progress=False)
        np.testing.assert_allclose(got[0], ref[0], atol=1e-12)
        assert got[1] == pytest.approx(ref[1], abs=1e-12)


def test_threads_and_chunks_give_identical_numbers():
    rng = np.random.default_rng(4)
    dist, qp, gp, qc, gc = market_like(rng, 50, 120, 400)
    base = evaluate(dist, qp, gp, qc, gc, progress=False, num_threads=1)
    for threads, chunk in ((2, 5), (3, 17), (1, 1000)):
        got = evaluate(dist, qp, gp, qc, gc, progress=False, num_threads=threads, chunk_size=chunk)
        np.testing.assert_array_equal(got[0], base[0])
        assert got[1] == base[1]


def test_torch_and_list_inputs():
    torch = pytest.importorskip("torch")
    rng = np.random.default_rng(5)
    dist, qp, gp, qc, gc = market_like(rng, 10, 15, 50)
    want = evaluate(dist, qp, gp, qc, gc, progress=False)
    got = evaluate(
        torch.from_numpy(dist), torch.from_numpy(qp), torch.from_numpy(gp), qc.tolist(),
        gc.tolist(), progress=False,
    )
    np.testing.assert_array_equal(got[0], want[0])
    assert got[1] == want[1]
    cmc, mAP = evaluate_features(
        torch.randn(6, 8), torch.randn(20, 8), [0] * 6, [0] * 20, [1] * 6, [2] * 20,
        max_rank=5, progress=False,
    )
    np.testing.assert_allclose(cmc, 1.0)
    assert mAP == pytest.approx(1.0)


def test_ap_equals_sklearn_without_ties():
    rng = np.random.default_rng(6)
    dist, qp, gp, qc, gc = market_like(rng, 20, 40, 200)
    dist = dist + rng.random(dist.shape).astype(np.float32) * 1e-3  # no ties
    aps = []
    for q in range(len(qp)):
        keep = (gp != -1) & ~((gp == qp[q]) & (gc == qc[q]))
        y = gp[keep] == qp[q]
        if y.any():
            aps.append(average_precision_score(y, -dist[q, keep]))
    _, mAP = evaluate(dist, qp, gp, qc, gc, progress=False)
    assert mAP == pytest.approx(np.mean(aps), abs=1e-12)


def test_ap_differs_from_sklearn_with_ties():
    # All four distances tie, true matches at g0 and g2. The kit ranks by gallery index:
    # matches at ranks 1 and 3, AP = (1 + 2/3) / 2. sklearn scores a tied group as one
    # threshold: AP = precision of the whole group = 2/4.
    _, mAP = evaluate([[1.0] * 4], [1], [1, 2, 1, 3], [1], [2, 2, 3, 3], progress=False)
    sk = average_precision_score([1, 0, 1, 0], [-1.0] * 4)
    assert sk == pytest.approx(0.5)
    assert mAP == pytest.approx((1 + 2 / 3) / 2)


# --------------------------------------------------------------------------------------
# features
# --------------------------------------------------------------------------------------
def test_pairwise_distances_match_sklearn():
    rng = np.random.default_rng(8)
    q = rng.standard_normal((9, 5)).astype(np.float32)
    g = rng.standard_normal((14, 5)).astype(np.float32)
    g[3] = q[2]  # an exact zero distance
    for metric in ("euclidean", "cosine"):
        want = sk_pairwise(q.astype(np.float64), g.astype(np.float64), metric=metric)
        for chunk in (None, 1, 4):
            got = pairwise_distances(q, g, metric, chunk_size=chunk)
            assert got.dtype == np.float32 and got.shape == (9, 14)
            np.testing.assert_allclose(got, want, atol=2e-5)


def test_euclidean_self_distance_is_zero_not_nan():
    # |q|^2 + |q|^2 - 2 q.q rounds below 0 for many float32 vectors: must clamp, not NaN
    q = (np.random.default_rng(12).standard_normal((50, 64)) * 10).astype(np.float32)
    d = pairwise_distances(q, q)
    assert np.isfinite(d).all() and (d >= 0).all()
    assert np.abs(np.diag(d)).max() < 1e-2 * np.abs(d).mean()
    cmc, mAP = evaluate_features(q, q, np.arange(50), np.arange(50), np.zeros(50, int),
                                 np.ones(50, int), max_rank=1, progress=False)
    assert cmc[0] == 1.0 and mAP == 1.0


@pytest.mark.parametrize("metric", ["euclidean", "cosine"])
def test_evaluate_features_equals_evaluate_of_distances(monkeypatch, metric):
    rng = np.random.default_rng(9)
    _, qp, gp, qc, gc = market_like(rng, 15, 40, 150)
    # integer-valued features: every dot product is exact, so chunking cannot change a bit
    q = rng.integers(-3, 4, (40, 6)).astype(np.float32)
    g = rng.integers(-3, 4, (150, 6)).astype(np.float32)
    want = evaluate(pairwise_distances(q, g, metric), qp, gp, qc, gc, progress=False)
    np.testing.assert_allclose(
        want[0], evaluate_reference(pairwise_distances(q, g, metric), qp, gp, qc, gc,
                                    progress=False)[0]
    )
    rows_seen = []
    block = ev._distance_block

    def spy(qb, *args):
        rows_seen.append(qb.shape[0])
        return block(qb, *args)

    monkeypatch.setattr(ev, "_distance_block", spy)
    for chunk in (1, 7, 40, 1000):
        rows_seen.clear()
        got = evaluate_features(q, g, qp, gp, qc, gc, metric=metric, chunk_size=chunk,
                                progress=False)
        np.testing.assert_array_equal(got[0], want[0])
        assert got[1] == pytest.approx(want[1], abs=1e-12)
        assert max(rows_seen) == min(chunk, 40) and sum(rows_seen) == 40  # never all at once


def test_evaluate_features_random_real_features():
    rng = np.random.default_rng(10)
    _, qp, gp, qc, gc = market_like(rng, 15, 30, 120)
    q = rng.standard_normal((30, 32)).astype(np.float32)
    g = rng.standard_normal((120, 32)).astype(np.float32)
    for metric in ("euclidean", "cosine"):
        want = evaluate(pairwise_distances(q, g, metric), qp, gp, qc, gc, progress=False)
        for chunk in (3, 11):
            got = evaluate_features(q, g, qp, gp, qc, gc, metric=metric, chunk_size=chunk,
                                    progress=False)
            np.testing.assert_allclose(got[0], want[0], atol=1e-6)
            assert got[1] == pytest.approx(want[1], abs=1e-6)


def test_cosine_equals_euclidean_on_unit_features_and_differs_otherwise():
    rng = np.random.default_rng(11)
    _, qp, gp, qc, gc = market_like(rng, 12, 30, 100)
    centres = rng.standard_normal((13, 8))
    q = (centres[qp] + rng.standard_normal((30, 8))).astype(np.float32)
    g = (centres[np.maximum(gp, 0)] + rng.standard_normal((100, 8))).astype(np.float32)
    scale = rng.uniform(0.1, 10.0, (100, 1)).astype(np.float32)  # norms carry no identity
    cos = evaluate_features(q, g * scale, qp, gp, qc, gc, metric="cosine", progress=False)
    qn = q / np.linalg.norm(q, axis=1, keepdims=True)
    gn = g / np.linalg.norm(g, axis=1, keepdims=True)
    euc_unit = evaluate_features(qn, gn, qp, gp, qc, gc, metric="euclidean", progress=False)
    euc_raw = evaluate_features(q, g * scale, qp, gp, qc, gc, metric="euclidean", progress=False)
    # ||a - b||^2 = 2 (1 - cos) on unit vectors: same ranking
    np.testing.assert_allclose(cos[0], euc_unit[0], atol=1e-12)
    assert cos[1] == pytest.approx(euc_unit[1], abs=1e-6)
    assert euc_raw[1] != pytest.approx(cos[1], abs=1e-3)  # random norms hurt euclidean only


# --------------------------------------------------------------------------------------
# bad input
# --------------------------------------------------------------------------------------
def _one_line_error(fn, match):
    with pytest.raises(TCULError, match=match) as info:
        fn()
    assert "\n" not in str(info.value)


GOOD = dict(q_pids=[1, 2], g_pids=[1, 2, 3], q_camids=[1, 1], g_camids=[2, 2, 2])


@pytest.mark.parametrize("fn", BOTH)
@pytest.mark.parametrize(
    "dist,changes,match",
    [
        (np.zeros(3), {}, "2-D"),
        (np.zeros((2, 3, 1)), {}, "2-D"),
        (np.zeros((0, 3)), {"q_pids": [], "q_camids": []}, "empty query"),
        (np.zeros((2, 0)), {"g_pids": [], "g_camids": []}, "empty gallery"),
        (np.zeros((2, 3)), {"q_pids": [1, 2, 3]}, "q_pids has 3 entries"),
        (np.zeros((2, 3)), {"g_pids": [1, 2]}, "g_pids has 2 entries"),
        (np.zeros((2, 3)), {"q_camids": [1]}, "q_camids has 1 entries"),
        (np.zeros((2, 3)), {"g_camids": [1, 2, 3, 4]}, "g_camids has 4 entries"),
        (np.zeros((2, 3)), {"q_pids": [[1], [2]]}, "q_pids must be 1-D"),
        (np.zeros((2, 3)), {"g_pids": [1.5, 2, 3]}, "g_pids must hold integers"),
        (np.array([[0, 1, np.nan], [0, 1, 2]]), {}, "contains NaN"),
        (np.zeros((2, 3), dtype=complex), {}, "real-valued"),
        (np.zeros((2, 3)), {"g_camids": [1, 1, 1]}, "no query has a cross-camera true match"),
        (np.zeros((2, 3)), {"max_rank": 0}, "max_rank must be"),
        (np.zeros((2, 3)), {"max_rank": 2.0}, "max_rank must be"),
    ],
)
def test_bad_distmat_input(fn, dist, changes, match):
    kwargs = {**GOOD, **changes}
    _one_line_error(lambda: fn(dist, **kwargs), match)


def test_no_match_message_is_the_documented_one():
    with pytest.raises(TCULError) as info:
        evaluate(np.zeros((1, 2)), [9], [1, 2], [1], [2, 2], progress=False)
    assert str(info.value) == (
        "no query has a cross-camera true match in the gallery: check pids/camids"
    )


def test_nan_with_infinities_detected_and_infinities_alone_accepted():
    d = np.array([[np.inf, -np.inf, 1.0], [0.0, np.nan, 1.0]])
    _one_line_error(lambda: evaluate(d, progress=False, **GOOD), "NaN")
    d[1, 1] = 2.0  # +inf and -inf without NaN are valid distances, ranked as such:
    cmc, mAP = evaluate(d, progress=False, **GOOD)
    # query 1's match (gallery 0) is at +inf, behind -inf and 1; query 2's (gallery 1) at 2,
    # behind 0 and 1: both first matches at rank 3, both APs 1/3
    np.testing.assert_array_equal(cmc[:3], [0.0, 0.0, 1.0])
    assert mAP == pytest.approx(1 / 3)


def test_bad_options():
    d = np.zeros((2, 3))
    _one_line_error(lambda: evaluate(d, chunk_size=0, progress=False, **GOOD), "chunk_size")
    _one_line_error(lambda: evaluate(d, num_threads=0, progress=False, **GOOD), "num_threads")


@pytest.mark.parametrize(
    "q,g,kwargs,match",
    [
        (np.zeros(4), np.zeros((3, 4)), {}, "q_feats must be 2-D"),
        (np.zeros((2, 4)), np.zeros((0, 4)), {}, "g_feats is empty"),
        (np.zeros((2, 4)), np.zeros((3, 5)), {}, "4 dims but g_feats has 5"),
        (np.full((2, 4), np.nan), np.zeros((3, 4)), {}, "q_feats contains NaN"),
        (np.zeros((2, 4)), np.full((3, 4), np.inf), {}, "g_feats contains NaN or inf"),
        (np.zeros((2, 4)), np.zeros((3, 4)), {"metric": "manhattan"}, "unknown metric"),
        (np.zeros((2, 4)), np.zeros((3, 4)), {"q_pids": [1]}, "q_pids has 1 entries"),
        (np.zeros((2, 4)), np.zeros((3, 4)), {"chunk_size": -1}, "chunk_size"),
    ],
)
def test_bad_feature_input(q, g, kwargs, match):
    kw = {**GOOD, **kwargs}
    _one_line_error(lambda: evaluate_features(q, g, progress=False, **kw), match)
    if set(kwargs) <= {"metric"}:
        _one_line_error(lambda: pairwise_distances(q, g, kwargs.get("metric", "euclidean")), match)


def test_bad_summarize_input():
    _one_line_error(lambda: summarize(np.ones(5), 0.5), "length >= 10")
    _one_line_error(lambda: summarize(np.ones((10, 2)), 0.5), "length >= 10")
    _one_line_error(lambda: summarize(np.ones(10), 51.0), r"mAP must be a fraction")
