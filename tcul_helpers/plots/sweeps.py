"""Fig. 4a/4b of the paper and the continuity-break sweeps: a metric against one setting.

``points`` are the cached sweep points of :mod:`tcul_helpers.sweeps` (dicts holding at least
``value``, ``variant`` and the metric), e.g. ``load_sweeps(dir)["lambda_fr"]``.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
from matplotlib.figure import Figure

from ..errors import TCULError
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
