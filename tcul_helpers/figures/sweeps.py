"""Fig. 4a/4b of the paper and the continuity-break sweeps: a metric against one setting.

``points`` are the cached sweep points of :mod:`tcul_helpers.experiment.sweeps` (dicts holding at
least
``value``, ``variant`` and the metric), e.g. ``load_sweeps(dir)["lambda_fr"]``.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
from matplotlib.figure import Figure

from ..infra.errors import TCULError
from .iterations import METRIC_LABELS, VARIANT_STYLE

PARAM_LABELS = {
    "lambda_fr": "\u03bb_fr (frames)",
    "n_clusters": "K (number of clusters)",
    "crowd_density": "crowd density (people visible at once per camera)",
    "reappear_prob": "re-appearance probability",
}


def _x(point: dict, param: str) -> float:
    value = point.get("value", point.get(param))
    if value is None:
        raise TCULError(f"a sweep point has no 'value' nor {param!r}: {sorted(point)}")
    return float(value)


def _y(point: dict, metric: str) -> float | None:
    """The metric of a point; a per-iteration list (n_reliable, precision) gives its last."""
    value = point.get(metric)
    if isinstance(value, list | tuple):
        value = next((v for v in reversed(value) if v is not None), None)
    return None if value is None else float(value)


def plot_sweep(
    points: Sequence[dict],
    param: str,
    metric: str = "mAP",
    *,
    by: str = "variant",
    true_value: float | None = None,
    ax=None,
    log_x: bool | None = None,
    true_label: str = "true value",
) -> Figure:
    """``metric`` against ``param``, one line per ``points[i][by]`` (Fig. 4a/4b).

    A dashed vertical line marks ``true_value`` (e.g. the true number of identities),
    labelled ``true_label`` (e.g. "world default" for a world knob). Per-iteration lists
    (``n_reliable``, ``precision``) are plotted at their last iteration. The
    x axis is symmetric-log when the values span more than 20x (``log_x`` forces it).
    """
    points = [p for p in points if _y(p, metric) is not None]
    if not points:
        raise TCULError(f"no sweep point holds {metric!r}: run the {param} sweep first")
    created = ax is None
    if ax is None:
        fig = Figure(figsize=(6, 4))
        ax = fig.add_subplot(1, 1, 1)
    else:
        fig = ax.figure
    groups: dict[str, list[dict]] = {}
    for p in points:
        groups.setdefault(str(p.get(by, "")), []).append(p)
    xs_all = []
    for name, pts in groups.items():
        pts = sorted(pts, key=lambda p: _x(p, param))
        xs = [_x(p, param) for p in pts]
        ys = [_y(p, metric) for p in pts]
        xs_all += xs
        label, color = VARIANT_STYLE.get(name, (name, None))
        ax.plot(xs, ys, marker="o", label=label, color=color)
    positive = [x for x in xs_all if x > 0]
    if log_x is None:
        log_x = bool(positive) and max(positive) / min(positive) > 20
    if log_x:
        ax.set_xscale("symlog", linthresh=min(positive) if positive else 1.0)
    if true_value is not None:
        ax.axvline(float(true_value), color="0.3", linestyle="--", linewidth=1.2,
                   label=f"{true_label} ({true_value:g})")
    ax.set_xlabel(PARAM_LABELS.get(param, param))
    ax.set_ylabel(METRIC_LABELS.get(metric, metric))
    ax.set_title(f"{METRIC_LABELS.get(metric, metric)} vs {param}", fontsize=10)
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8)
    if np.isfinite(xs_all).all() and created:
        fig.tight_layout()
    return fig


def live_sweeps(features: np.ndarray, camids: Sequence[int], frames: Sequence[int],
                truth: Sequence[int], *, lambdas: Sequence[float], ks: Sequence[int], k: int,
                lambda_fr: float, seed: int = 0, kmeans_iters: int = 30) -> dict:
    """The sweeps' first step, in seconds instead of whole runs. On the source model's
    features (the start of iteration 1): ``by_k``, for each of ``ks`` the k-means clustering
    (Eq. 1-2 labels) scored against the true identities (NMI, ARI, pairwise precision and
    recall) with Eq. 3's kept count and precision at ``lambda_fr``; ``by_lambda``, at K =
    ``k``, for each of ``lambdas`` the images Eq. 3 keeps (count, pairwise precision,
    kept-pair recall). No network is trained: this is what each knob does to the
    pseudo-labels fine-tuning starts from, not the final mAP of Fig. 4."""
    from ..measurement.metrics import (
        clustering_scores,
        kept_pair_recall,
        pairwise_precision,
        pairwise_recall,
    )
    from ..method.assignment import assign_clusters
    from ..method.kmeans import kmeans_init
    from ..method.selection import temporal_anchors

    truth = np.asarray(truth)

    def cluster(n: int) -> tuple[np.ndarray, np.ndarray]:
        centers = kmeans_init(features, int(n), seed, n_iter=kmeans_iters).astype(np.float32)
        return assign_clusters(features, centers), centers

    def kept(labels, centers, lam) -> np.ndarray:
        return temporal_anchors(features, labels, centers, camids, frames, lam).kept

    by_k, clustered = [], {}
    for n in ks:
        labels, centers = clustered[int(n)] = cluster(n)
        s = kept(labels, centers, lambda_fr)
        by_k.append({"K": int(n), **clustering_scores(labels, truth),
                     "precision": pairwise_precision(labels, truth),
                     "recall": pairwise_recall(labels, truth), "kept": int(s.sum()),
                     "kept_precision": pairwise_precision(labels, truth, s)})
    labels, centers = clustered[int(k)] if int(k) in clustered else cluster(k)
    by_lambda = []
    for lam in lambdas:
        s = kept(labels, centers, lam)
        by_lambda.append({"lambda_fr": float(lam), "kept": int(s.sum()),
                          "precision": pairwise_precision(labels, truth, s),
                          "recall": kept_pair_recall(labels, truth, s)})
    return {"k": int(k), "by_k": by_k, "by_lambda": by_lambda}


def plot_live_sweeps(live: dict, *, true_k: int, lambda_fr: float) -> Figure:
    """Fig. 4's two knobs at the start of iteration 1 (:func:`live_sweeps`): left, Eq. 3's
    kept-label precision and kept-pair recall against lambda_fr; right, the clustering's
    NMI / ARI / pairwise precision and recall against K."""
    from ..settings.config import INFINITE_FRAMES

    fig = Figure(figsize=(10, 3.8))
    ax, ax2 = fig.subplots(1, 2)
    rows, k = live["by_lambda"], live["k"]
    xs = np.array([r["lambda_fr"] for r in rows], dtype=float)
    shown = np.where(xs >= INFINITE_FRAMES, np.nan, np.maximum(xs, 0.5))
    for key, style in (("precision", "o-"), ("recall", "s--")):
        ax.plot(shown, [r[key] for r in rows], style, ms=3, label=f"kept pairs: {key}")
    ax.axvline(lambda_fr, color="k", ls=":", lw=1, label=f"default \u03bb_fr = {lambda_fr:g}")
    ax.set_xscale("log")
    ax.set_xlabel("\u03bb_fr (frames; 0 drawn at 0.5)")
    ax.set_ylim(0, 1.02)
    ax.set_title(f"Eq. 3 at iteration 1, K = {k}", fontsize=9)
    ax.legend(fontsize=7)
    ax.grid(alpha=0.3)
    by_k = live["by_k"]
    ks = [r["K"] for r in by_k]
    for key, style in (("nmi", "o-"), ("ari", "^-"), ("precision", "s--"), ("recall", "d--")):
        ax2.plot(ks, [r[key] for r in by_k], style, ms=3, label=key if key in ("nmi", "ari")
                 else f"pairwise {key}")
    ax2.axvline(true_k, color="k", ls=":", lw=1, label=f"true count {true_k}")
    ax2.set_xlabel("K (k-means clusters)")
    ax2.set_ylim(0, 1.02)
    ax2.set_title("the clustering at iteration 1 against the true identities", fontsize=9)
    ax2.legend(fontsize=7)
    ax2.grid(alpha=0.3)
    fig.tight_layout()
    return fig
