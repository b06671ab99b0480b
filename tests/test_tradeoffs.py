"""The selection trade-off curves (notebook 04) and the live sweeps (notebook 08)."""

from __future__ import annotations

import matplotlib

matplotlib.use("Agg")

import numpy as np  # noqa: E402
import pytest  # noqa: E402

from tcul_helpers.figures.selection import plot_selection_tradeoff, selection_tradeoff  # noqa: E402
from tcul_helpers.figures.sweeps import live_sweeps, plot_live_sweeps  # noqa: E402
from tcul_helpers.measurement.metrics import kept_pair_recall  # noqa: E402


def test_kept_pair_recall_counts_the_clusterings_correct_pairs_that_are_kept():
    pseudo = np.array([0, 0, 0, 1, 1])
    truth = np.array([5, 5, 6, 7, 7])  # correct pairs: (0, 1) and (3, 4)
    assert kept_pair_recall(pseudo, truth, np.ones(5, bool)) == 1.0
    assert kept_pair_recall(pseudo, truth, np.zeros(5, bool)) == 0.0
    assert kept_pair_recall(pseudo, truth, np.array([1, 1, 0, 1, 0], bool)) == 0.5
    assert kept_pair_recall(pseudo, truth, np.array([1, 0, 1, 1, 0], bool)) == 0.0
    assert np.isnan(kept_pair_recall(np.arange(3), np.zeros(3), np.ones(3, bool)))


@pytest.fixture()
def world():
    """Two people per camera, each a short visit; features near their person's direction."""
    rng = np.random.default_rng(0)
    people = np.eye(4)
    truth = np.repeat([0, 1, 2, 3], 6)
    camids = np.repeat([1, 1, 2, 2], 6)
    frames = np.concatenate([np.arange(6) * 5 + 1000 * p for p in range(4)])
    features = (people[truth] + 0.2 * rng.normal(size=(24, 4))).astype(np.float32)
    centers = people.astype(np.float32)
    labels = truth.copy()
    labels[[5, 11]] = labels[[11, 5]]  # two images in the wrong cluster
    return features, labels, centers, camids, frames, truth


def test_selection_tradeoff_runs_both_selections_over_their_parameter(world):
    features, labels, centers, camids, frames, truth = world
    curves = selection_tradeoff(features, labels, centers, camids, frames, truth,
                                lambdas=[0, 10, 10**7], thresholds=[-1.0, 0.5, 1.0])
    t, s = curves["temporal"], curves["similarity"]
    assert list(t["value"]) == [0, 10, 10**7] and t["kept"][-1] == 24 and t["recall"][-1] == 1.0
    assert np.all(np.diff(t["kept"]) >= 0)  # a wider window keeps more
    assert s["kept"][0] == 24 and s["kept"][-1] == 0 and s["recall"][0] == 1.0
    kept = {"temporal": np.ones(24, bool), "similarity": np.ones(24, bool)}
    fig = plot_selection_tradeoff(curves, np.linspace(0.5, 1, 24), kept, lambda_fr=10,
                                  threshold=0.5)
    assert len(fig.axes) == 2 and len(fig.axes[0].lines) == 4  # 2 curves + 2 defaults


def test_live_sweeps_score_each_k_and_each_window(world):
    features, _labels, _centers, camids, frames, truth = world
    live = live_sweeps(features, camids, frames, truth, lambdas=[0, 25, 10**7], ks=[2, 4],
                       k=4, lambda_fr=25, kmeans_iters=10)
    by_k = {r["K"]: r for r in live["by_k"]}
    assert by_k[4]["nmi"] > by_k[2]["nmi"] and by_k[2]["recall"] >= by_k[4]["recall"]
    assert [r["lambda_fr"] for r in live["by_lambda"]] == [0, 25, 10**7]
    assert live["by_lambda"][-1]["kept"] == 24 and live["by_lambda"][-1]["recall"] == 1.0
    fig = plot_live_sweeps(live, true_k=4, lambda_fr=25)
    assert len(fig.axes) == 2
