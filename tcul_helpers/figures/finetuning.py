"""Step (d) in front of the student (notebook 05): a few SGD steps of Eq. 4-5, watched.

* :func:`plot_probe_curves` - per selection, the triplet loss and the fraction of anchors
  whose hardest positive is another person, step by step (from
  :func:`tcul_helpers.teaching.finetune_probe.probe_finetune`);
* :func:`plot_mined_distances` - the distributions of ``d(a, p*)`` and ``d(a, n*)`` before
  and after the steps (from :func:`tcul_helpers.teaching.finetune_probe.mined_distances`), the
  positives split into the same person and another person.
"""

from __future__ import annotations

from collections.abc import Mapping

import numpy as np
from matplotlib.figure import Figure

from ..infra.errors import TCULError

SELECTION_STYLE = {"temporal": ("#2ca02c", "temporal (Eq. 3, TCUL)"),
                   "similarity": ("#1f77b4", "similarity (SUL)"),
                   "none": ("#7f7f7f", "no selection")}


def _smooth(values, window: int) -> np.ndarray:
    v = np.asarray(values, dtype=float)
    if window <= 1 or len(v) < window:
        return v
    kernel = np.ones(window) / window
    return np.convolve(np.nan_to_num(v, nan=np.nanmean(v)), kernel, mode="valid")


def plot_probe_curves(results: Mapping[str, object], window: int = 5) -> Figure:
    """Loss and wrong-positive rate per step, one line per selection in ``results``
    (``{selection: ProbeResult}``), smoothed over ``window`` steps (raw values faint)."""
    if not results:
        raise TCULError("no fine-tuning probe to plot: run probe_finetune first")
    fig = Figure(figsize=(10, 3.4), layout="constrained")
    axes = fig.subplots(1, 2)
    for name, res in results.items():
        colour, label = SELECTION_STYLE.get(name, (None, name))
        for ax, values in ((axes[0], res.loss), (axes[1], res.wrong_positive)):
            steps = np.arange(1, len(values) + 1)
            ax.plot(steps, values, color=colour, alpha=0.2, lw=1)
            sm = _smooth(values, window)
            ax.plot(steps[len(steps) - len(sm):], sm, color=colour, lw=2, label=label)
    axes[0].set(title="triplet loss (Eq. 4-5) per SGD step", xlabel="step", ylabel="loss")
    axes[1].set(title="anchors whose hardest positive is another person",
                xlabel="step", ylabel="fraction of anchors", ylim=(0, 1))
    axes[1].legend(fontsize=8, loc="lower right")
    return fig


def plot_mined_distances(before: Mapping[str, np.ndarray], after: Mapping[str, np.ndarray],
                         title: str = "") -> Figure:
    """Kernel density of ``d(a, p*)`` (same person / another person) and ``d(a, n*)``,
    before (left) and after (right) fine-tuning, on the same axes (seaborn ``kdeplot``)."""
    import pandas as pd
    import seaborn as sns

    frames = []
    for when, d in (("before", before), ("after", after)):
        same = np.asarray(d.get("positive_is_same", np.ones(len(d["d_ap"]), bool)))
        frames.append(pd.DataFrame({"distance": d["d_ap"], "when": when, "pair": np.where(
            same, "d(a, p*): same person", "d(a, p*): another person")}))
        frames.append(pd.DataFrame({"distance": d["d_an"], "when": when,
                                    "pair": "d(a, n*): hardest negative"}))
    data = pd.concat(frames, ignore_index=True)
    palette = {"d(a, p*): same person": "#2ca02c", "d(a, p*): another person": "#d62728",
               "d(a, n*): hardest negative": "#1f77b4"}
    fig = Figure(figsize=(10, 3.4), layout="constrained")
    axes = fig.subplots(1, 2, sharex=True, sharey=True)
    for ax, when in zip(axes, ("before", "after"), strict=True):
        sns.kdeplot(data=data[data["when"] == when], x="distance", hue="pair", palette=palette,
                    common_norm=False, fill=True, alpha=0.25, ax=ax, warn_singular=False,
                    legend=when == "after")
        ax.set(title=f"{when} fine-tuning", xlabel="Euclidean distance in the embedding")
        if ax.get_legend() is not None:
            sns.move_legend(ax, "upper right", fontsize=7, title=None)
    if title:
        fig.suptitle(title, fontsize=10)
    return fig


__all__ = ["SELECTION_STYLE", "plot_mined_distances", "plot_probe_curves"]
