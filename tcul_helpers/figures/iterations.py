"""Fig. 5 of the paper and friends: what changes from one iteration of Algorithm 1 to the next.

``histories`` maps a variant name (``tcul``, ``sul``, ``pul``...) to the content of its run
folder's ``history.json``: ``{"status", "baseline": {...}, "iterations": [{...}, ...]}``.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import numpy as np
from matplotlib.figure import Figure

from ..infra.errors import TCULError
from ..settings.config import VARIANT_NAMES

#: Display names and colours of the variants (others get the default cycle).
VARIANT_STYLE = {key: (VARIANT_NAMES[key], colour) for key, colour in (
    ("tcul", "#1f77b4"), ("sul", "#ff7f0e"), ("pul", "#2ca02c"), ("baseline", "0.4"))}

METRIC_LABELS = {
    "mAP": "mAP (%)",
    "rank1": "rank-1 (%)",
    "rank5": "rank-5 (%)",
    "rank10": "rank-10 (%)",
    "precision": "pairwise precision of kept labels",
    "precision_all": "pairwise precision, all labels",
    "recall": "pairwise recall of kept labels",
    "nmi": "NMI",
    "ari": "ARI",
    "n_reliable": "reliable samples",
    "n_pseudo_ids": "pseudo-identities",
}


def _style(name: str) -> dict:
    label, color = VARIANT_STYLE.get(name, (name, None))
    return {"label": label, "color": color}


def _iterations(history: Mapping | Sequence) -> list[dict]:
    if isinstance(history, Mapping):
        return list(history.get("iterations", []))
    return list(history)


def _series(history: Mapping, key: str, with_baseline: bool) -> tuple[list[int], list[float]]:
    xs: list[int] = []
    ys: list[float] = []
    base = history.get("baseline", {}) if isinstance(history, Mapping) else {}
    if with_baseline and base.get(key) is not None:
        xs.append(0)
        ys.append(float(base[key]))
    for rec in _iterations(history):
        value = rec.get(key)
        if value is not None and np.isfinite(value):
            xs.append(int(rec["iteration"]))
            ys.append(float(value))
    return xs, ys


def _check(histories: Mapping) -> None:
    if not histories:
        raise TCULError("no histories to plot: pass {variant: history.json content}")


def plot_reliable_counts(histories: dict[str, dict]) -> Figure:
    """Fig. 5: reliable samples per iteration for each variant (left) and the pairwise
    precision of the kept pseudo-labels (right, from the ground truth)."""
    _check(histories)
    fig = Figure(figsize=(10, 3.8))
    ax_n, ax_p = fig.subplots(1, 2)
    for name, hist in histories.items():
        xs, ys = _series(hist, "n_reliable", False)
        ax_n.plot(xs, ys, marker="o", **_style(name))
        xs, ys = _series(hist, "precision", False)
        ax_p.plot(xs, ys, marker="o", **_style(name))
    ax_n.set_title("reliable samples per iteration (Fig. 5)", fontsize=10)
    ax_n.set_ylabel("reliable samples")
    ax_p.set_title("pairwise precision of the kept pseudo-labels", fontsize=10)
    ax_p.set_ylabel("precision")
    for ax in (ax_n, ax_p):
        ax.set_xlabel("iteration")
        ax.grid(alpha=0.3)
        ax.legend(fontsize=8)
        ax.xaxis.get_major_locator().set_params(integer=True)
    fig.tight_layout()
    return fig


def plot_iteration_metrics(
    histories: dict[str, dict],
    metrics: Sequence[str] = ("mAP", "rank1", "precision", "nmi"),
) -> Figure:
    """One panel per metric, one line per variant, against the iteration. Iteration 0 is
    the baseline (``history['baseline']``) for the metrics it holds (mAP, rank-k)."""
    _check(histories)
    metrics = list(metrics)
    if not metrics:
        raise TCULError("metrics is empty: name at least one, e.g. ('mAP',)")
    n_cols = min(2, len(metrics))
    n_rows = (len(metrics) + n_cols - 1) // n_cols
    fig = Figure(figsize=(5.2 * n_cols, 3.4 * n_rows))
    axes = np.atleast_1d(fig.subplots(n_rows, n_cols, squeeze=False)).ravel()
    for ax, metric in zip(axes, metrics, strict=False):
        for name, hist in histories.items():
            xs, ys = _series(hist, metric, True)
            ax.plot(xs, ys, marker="o", **_style(name))
        ax.set_title(METRIC_LABELS.get(metric, metric), fontsize=10)
        ax.set_xlabel("iteration (0 = baseline)")
        ax.grid(alpha=0.3)
        ax.legend(fontsize=8)
        ax.xaxis.get_major_locator().set_params(integer=True)
    for ax in axes[len(metrics):]:
        ax.axis("off")
    fig.tight_layout()
    return fig


def plot_seed_bands(
    histories_by_seed: Mapping[int, Mapping[str, Mapping]],
    metrics: Sequence[str] = ("mAP", "precision"),
) -> Figure:
    """``metric`` against the iteration, one line per variant with a band across seeds
    (seaborn ``lineplot``: the mean and its 95% bootstrap interval, the seeds' spread).
    ``histories_by_seed`` maps a seed to ``{variant: history}``; iteration 0 is the
    baseline where the metric has one."""
    import pandas as pd
    import seaborn as sns

    if not histories_by_seed:
        raise TCULError("no histories to plot: pass {seed: {variant: history}}")
    rows = [{"seed": seed, "variant": _style(name)["label"], "iteration": x, "metric": m,
             "value": y}
            for seed, hists in histories_by_seed.items() for name, hist in hists.items()
            for m in metrics for x, y in zip(*_series(hist, m, True), strict=True)]
    data = pd.DataFrame(rows)
    palette = {label: color for label, color in VARIANT_STYLE.values() if color}
    fig = Figure(figsize=(5.2 * len(metrics), 3.4), layout="constrained")
    axes = np.atleast_1d(fig.subplots(1, len(metrics)))
    for ax, m in zip(axes, metrics, strict=True):
        part = data[data["metric"] == m]
        if part.empty:
            ax.axis("off")
            continue
        sns.lineplot(data=part, x="iteration", y="value", hue="variant", palette=palette,
                     errorbar=("ci", 95), marker="o", ax=ax)
        ax.set(title=f"{METRIC_LABELS.get(m, m)}, {len(histories_by_seed)} seed(s)",
               xlabel="iteration (0 = baseline)", ylabel=METRIC_LABELS.get(m, m))
        ax.grid(alpha=0.3)
        ax.xaxis.get_major_locator().set_params(integer=True)
    return fig
