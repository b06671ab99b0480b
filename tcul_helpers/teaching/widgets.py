"""Interactive explorers for the notebooks (ipywidgets 8).

Every function returns an :class:`Explorer` (an ``ipywidgets.VBox``) whose attributes tests
and students can reach:

* ``controls``: a dict of the sliders / dropdowns / buttons by name;
* ``state``: a dict of the latest numbers (updated on every change);
* ``numbers``: the same numbers as the HTML table shown above the figure;
* ``figure``: the latest :class:`matplotlib.figure.Figure`, shown as a PNG in an
  ``ipywidgets.Image`` (:func:`figure_png`);
* ``update()``: recompute from the controls' current values (called on every change).

The figure is drawn into PNG bytes, not into an ``ipywidgets.Output``: a cell that displays
an explorer sends no output-capture traffic, so ``jupyter nbconvert --execute``, papermill
and ``pytest --nbmake`` run the notebooks unpatched (jupyter/nbclient#312 is how an Output
widget drawn into while its cell runs made them wait out the whole cell timeout). A saved
notebook reopened without a kernel shows the last figure as a plain PNG instead of a
widget that cannot be found.

Callbacks stay cheap: no model runs inside them (except the sweep explorer's explicit
"compute" button), figures are plain ``Figure`` objects (no pyplot state to leak).
"""

from __future__ import annotations

import base64
import html
import io
from collections.abc import Callable, Mapping, Sequence
from typing import Any

import ipywidgets as W
import numpy as np
from matplotlib.figure import Figure
from matplotlib.ticker import MaxNLocator

#: Resolution of the explorers' PNG figures.
FIGURE_DPI = 90


def figure_png(fig: Figure, dpi: int = FIGURE_DPI) -> bytes:
    """``fig`` rendered to PNG bytes (no pyplot, no display)."""
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=dpi, bbox_inches="tight")
    return buf.getvalue()


class Explorer(W.VBox):
    """Controls, a numbers table and a figure (``controls``, ``state``, ``numbers``,
    ``figure``, ``error``, ``update()``)."""

    def __init__(self, controls: dict[str, W.Widget], draw: Callable[[Explorer], Figure | None],
                 title: str = "") -> None:
        self.controls = controls
        self.numbers = ""
        self.state: dict[str, Any] = {}
        self.figure: Figure | None = None
        self.error: str | None = None
        self._draw = draw
        self._numbers_view = W.HTML()
        self._figure_view = W.Image(format="png", layout=W.Layout(max_width="100%"))
        rows = [W.HTML(f"<b>{title}</b>")] if title else []
        boxes = [c for c in controls.values() if isinstance(c, W.Widget)]
        super().__init__(rows + [W.HBox(boxes[:3]), W.HBox(boxes[3:]), self._numbers_view,
                                 self._figure_view])
        for c in boxes:
            if hasattr(c, "value") and not isinstance(c, W.Button):
                c.observe(lambda _change: self.update(), names="value")
        self.update()

    def update(self) -> None:
        """Recompute numbers and figure from the controls (exceptions are shown, not raised)."""
        self.error = None
        try:
            fig = self._draw(self)
        except Exception as exc:  # noqa: BLE001 - shown in the widget
            self.error = f"{type(exc).__name__}: {exc}"
            fig = None
        if fig is not None:
            self.figure = fig
            self._figure_view.value = figure_png(fig)
        if self.error:
            self._numbers_view.value = (f"<pre style='color:#b00'>{html.escape(self.error)}</pre>"
                                        + self.numbers)
        else:
            self._numbers_view.value = self.numbers

    def set_numbers(self, table: str) -> None:
        """Show ``table`` (HTML: this view's numbers) above the figure."""
        self.numbers = table
        self._numbers_view.value = table

    def _show(self, rows: Mapping[str, Any]) -> None:
        cells = "".join(f"<tr><td>{k}</td><td><b>{_fmt(v)}</b></td></tr>"
                        for k, v in rows.items())
        self.set_numbers(f"<table>{cells}</table>")

    def _repr_mimebundle_(self, **kwargs: Any) -> dict:
        """The widget view, plus the last figure as a plain PNG: what viewers that ignore
        widget state show (an untrusted notebook, nbconvert's HTML, GitHub)."""
        bundle = dict(super()._repr_mimebundle_(**kwargs) or {})
        png = bytes(self._figure_view.value)
        if png:
            bundle["image/png"] = base64.b64encode(png).decode("ascii")
        return bundle


def _fmt(v: Any) -> str:
    """A number as the explorers' tables show it: 3 decimals, integers as integers,
    lists element by element, the "no window" lambda_fr as such."""
    if isinstance(v, list | tuple):
        return "[" + ", ".join(_fmt(x) for x in v) + "]"
    if isinstance(v, float | np.floating):
        if not np.isfinite(v):
            return "nan"
        if float(v).is_integer():
            return _fmt(int(v))
        return f"{v:.3f}"
    if isinstance(v, int | np.integer) and not isinstance(v, bool):
        from ..settings.config import INFINITE_FRAMES

        return "no window (10^7)" if int(v) == INFINITE_FRAMES else str(int(v))
    return str(v)


# --------------------------------------------------------------------------------------
# Fig. 2: fragments
# --------------------------------------------------------------------------------------
def fragments_explorer(dataset, max_images: int = 30) -> Explorer:
    """Fig. 2 interactively: a camera dropdown and a time-window slider (the position, in
    frame order, of the first image shown) and the number of images shown."""
    from ..figures.fragments import _frame_label, plot_fragments

    records = dataset.train if hasattr(dataset, "train") else list(dataset)
    frames_by_cam: dict[int, np.ndarray] = {}
    label_of: dict[tuple[int, int], str] = {}  # (camera, frame id) -> "s<seq> f<raw frame>"
    for r in records:
        if r.frame is not None:
            frames_by_cam.setdefault(r.camid, []).append(r.frame)
            label_of[(r.camid, int(r.frame))] = _frame_label(r)
    frames_by_cam = {c: np.sort(np.asarray(f)) for c, f in sorted(frames_by_cam.items())}
    cams = list(frames_by_cam)
    camera = W.Dropdown(options=cams, value=cams[0], description="camera")
    start = W.IntSlider(value=0, min=0, description="first image", continuous_update=False)
    count = W.IntSlider(value=min(max_images, 40), min=4, max=60, description="images",
                        continuous_update=False)

    def set_range(cam: int) -> None:
        start.value = 0
        start.max = max(len(frames_by_cam[cam]) - 1, 0)

    set_range(cams[0])
    camera.observe(lambda ch: set_range(ch["new"]), names="value")

    def draw(ex: Explorer) -> Figure:
        f = frames_by_cam[camera.value]
        first = int(f[min(start.value, len(f) - 1)])
        shown = f[f >= first][: count.value]
        ex.state = {"camid": camera.value, "start_frame": first,
                    "n_images": int(len(shown)),
                    "frame_range": (int(shown[0]), int(shown[-1])) if len(shown) else None}
        span = ex.state["frame_range"]
        ex._show({"camera": camera.value, "images shown": len(shown),
                  "frames": "-" if span is None else
                  f"{label_of[(camera.value, span[0])]} to {label_of[(camera.value, span[1])]}"})
        return plot_fragments(records, camera.value, start_frame=first,
                              max_images=count.value)

    return Explorer({"camera": camera, "start": start, "count": count}, draw,
                    "Fig. 2: one camera's images in frame order")


# --------------------------------------------------------------------------------------
# Fig. 3: Eq. 3 vs similarity
# --------------------------------------------------------------------------------------
def selection_explorer(records, features, labels, centers, camids, frames, truth,
                       lambda_fr: int = 100, threshold: float = 0.85) -> Explorer:
    """Eq. 3 interactively: ``lambda_fr`` slider, (cluster, camera) choice, similarity
    threshold slider. ``state`` holds the kept counts and pairwise precision of both
    selections (from ``truth``) and the chosen group's numbers."""
    from ..figures.selection import pick_example_group, plot_cluster_selection
    from ..measurement.metrics import pairwise_precision
    from ..method.selection import select_by_similarity, temporal_anchors

    records = records.train if hasattr(records, "train") else list(records)
    labels, camids = np.asarray(labels), np.asarray(camids)
    frames, truth = np.asarray(frames), np.asarray(truth)
    base = temporal_anchors(features, labels, centers, camids, frames, lambda_fr)
    keys, sizes = np.unique(np.stack([labels, camids], 1), axis=0, return_counts=True)
    order = np.argsort(-sizes, kind="stable")[:60]
    options = [(f"cluster {k} / camera {c} ({n} images)", (int(k), int(c)))
               for (k, c), n in zip(keys[order], sizes[order], strict=True)]
    default = tuple(int(v) for v in pick_example_group(base, labels, camids, truth))
    if default not in [o[1] for o in options]:
        n_def = int(((labels == default[0]) & (camids == default[1])).sum())
        options.insert(0, (f"cluster {default[0]} / camera {default[1]} ({n_def} images)",
                           default))
    span = int(max(frames.max() - frames.min(), 1))
    lam = W.IntSlider(value=int(lambda_fr), min=0, max=int(min(max(4 * lambda_fr, 50), span)),
                      description="\u03bb_fr", continuous_update=False)
    group = W.Dropdown(options=options, value=default, description="group")
    thr = W.FloatSlider(value=threshold, min=0.0, max=1.0, step=0.01,
                        description="sim. thr.", continuous_update=False)
    sim_cache: dict[float, np.ndarray] = {}

    def draw(ex: Explorer) -> Figure:
        sel = temporal_anchors(features, labels, centers, camids, frames, lam.value)
        if thr.value not in sim_cache:
            sim_cache[thr.value] = select_by_similarity(features, labels, centers, thr.value)
        sim_kept = sim_cache[thr.value]
        k, c = group.value
        members = (labels == k) & (camids == c)
        ex.state = {
            "lambda_fr": lam.value, "threshold": thr.value, "cluster": k, "camid": c,
            "n_kept_temporal": int(sel.kept.sum()),
            "precision_temporal": pairwise_precision(labels, truth, sel.kept),
            "n_kept_similarity": int(sim_kept.sum()),
            "precision_similarity": pairwise_precision(labels, truth, sim_kept),
            "precision_all": pairwise_precision(labels, truth),
            "group_size": int(members.sum()),
            "group_kept": int((members & sel.kept).sum()),
            "n_anchors": int(sel.is_anchor.sum()),
        }
        s = ex.state
        ex._show({
            "Eq. 3 (temporal) kept": f"{s['n_kept_temporal']} / {len(labels)}",
            "  pairwise precision": s["precision_temporal"],
            f"similarity > {thr.value:.2f} kept": f"{s['n_kept_similarity']} / {len(labels)}",
            "  pairwise precision ": s["precision_similarity"],
            "no selection: precision": s["precision_all"],
            "this group: kept": f"{s['group_kept']} / {s['group_size']}",
        })
        return plot_cluster_selection(records, sel, labels, k, c, truth=truth,
                                      similarity_kept=sim_kept)

    return Explorer({"lambda_fr": lam, "group": group, "threshold": thr}, draw,
                    "Fig. 3: temporal selection (Eq. 3) vs similarity selection")


# --------------------------------------------------------------------------------------
# Eq. 6-7: centres moving
# --------------------------------------------------------------------------------------
def center_update_explorer(centers, features, labels, truth, steps: int = 4,
                           max_points: int = 1500) -> Explorer:
    """Eq. 6-7 interactively: ``lambda_c`` and ``beta`` sliders (beta damps the step of a
    cluster with few members: n_k / (beta + n_k) of it); the centres are updated ``steps`` times
    (features fixed, labels re-assigned by Eq. 1-2 after each update) and their paths drawn
    on a 2-D PCA projection. ``state``: purity / NMI per step and the distance moved."""
    from sklearn.decomposition import PCA

    from ..measurement.metrics import cluster_purity, clustering_scores
    from ..method.assignment import assign_clusters
    from ..method.center_update import update_centers

    c0 = np.asarray(centers, dtype=np.float64)
    x = np.asarray(features, dtype=np.float64)
    labels0, truth = np.asarray(labels), np.asarray(truth)
    pca = PCA(n_components=2, random_state=0).fit(np.vstack([x, c0]))
    rng = np.random.default_rng(0)
    shown = rng.choice(len(x), min(len(x), max_points), replace=False)
    x2 = pca.transform(x[shown])
    lam = W.FloatSlider(value=0.5, min=0.0, max=1.0, step=0.05, description="\u03bb_c",
                        continuous_update=False)
    n_steps = W.IntSlider(value=steps, min=1, max=10, description="steps",
                          continuous_update=False)
    beta = W.FloatLogSlider(value=1e-6, base=10, min=-6, max=3, step=0.5, description="\u03b2",
                            readout_format=".0e", continuous_update=False)

    def draw(ex: Explorer) -> Figure:
        path, lab = [c0], labels0
        purity = [cluster_purity(lab, truth)]
        nmi = [clustering_scores(lab, truth)["nmi"]]
        for _ in range(n_steps.value):
            path.append(update_centers(path[-1], x, lab, lam.value, beta.value))
            lab = assign_clusters(x, path[-1])
            purity.append(cluster_purity(lab, truth))
            nmi.append(clustering_scores(lab, truth)["nmi"])
        moved = float(np.linalg.norm(path[-1] - c0, axis=1).mean())
        ex.state = {"lambda_c": lam.value, "beta": beta.value, "steps": n_steps.value,
                    "purity": purity,
                    "nmi": nmi, "mean_shift": moved, "centers": path[-1]}
        ex._show({"purity (before -> after)": f"{purity[0]:.3f} -> {purity[-1]:.3f}",
                  "NMI (before -> after)": f"{nmi[0]:.3f} -> {nmi[-1]:.3f}",
                  "mean distance moved by a centre": moved})
        fig = Figure(figsize=(9, 4))
        ax, ax2 = fig.subplots(1, 2)
        ax.scatter(x2[:, 0], x2[:, 1], s=4, c="0.8", label="features")
        p2 = np.stack([pca.transform(c) for c in path])  # steps+1 x K x 2
        for k in range(p2.shape[1]):
            ax.plot(p2[:, k, 0], p2[:, k, 1], "-", lw=0.8, color="tab:blue", alpha=0.6)
        ax.scatter(p2[0, :, 0], p2[0, :, 1], s=12, c="tab:blue", label="start")
        ax.scatter(p2[-1, :, 0], p2[-1, :, 1], s=18, c="tab:red", marker="x", label="end")
        ax.set_title(f"centres over {n_steps.value} steps of Eq. 6-7 (PCA)", fontsize=9)
        ax.legend(fontsize=7)
        ax2.plot(purity, marker="o", label="purity")
        ax2.plot(nmi, marker="s", label="NMI")
        ax2.set_xlabel("step")
        ax2.xaxis.set_major_locator(MaxNLocator(integer=True))  # no half steps
        ax2.set_title("cluster quality against the true identities", fontsize=9)
        ax2.legend(fontsize=7)
        ax2.grid(alpha=0.3)
        fig.tight_layout()
        return fig

    return Explorer({"lambda_c": lam, "steps": n_steps, "beta": beta}, draw,
                    "Eq. 6-7: how lambda_c (and beta, for small clusters) move the centres")


# --------------------------------------------------------------------------------------
# Fig. 5: iterations
# --------------------------------------------------------------------------------------
def _as_history(h: Any) -> dict:
    if hasattr(h, "history"):
        return {"baseline": getattr(h, "baseline", {}), "iterations": list(h.history)}
    if isinstance(h, list):
        return {"baseline": {}, "iterations": h}
    return dict(h)


def iteration_scrubber(histories: Mapping[str, Any], trace: Mapping | None = None,
                       keys: Sequence[str] = ("n_reliable", "precision", "nmi", "mAP",
                                              "rank1")) -> Explorer:
    """Fig. 5 with an iteration slider: a marker at the chosen iteration and the numbers of
    every variant there (iteration 0 = the baseline). ``trace`` (``trace.npz`` of one run)
    adds the number of clusters in use and of kept images from the saved arrays."""
    from ..figures.iterations import plot_reliable_counts

    hists = {name: _as_history(h) for name, h in histories.items()}
    n_max = max((len(h["iterations"]) for h in hists.values()), default=0)
    it = W.IntSlider(value=n_max, min=0, max=max(n_max, 1), description="iteration",
                     continuous_update=False)

    def draw(ex: Explorer) -> Figure:
        t = it.value
        rows: dict[str, dict] = {}
        for name, h in hists.items():
            rec = h["baseline"] if t == 0 else next(
                (r for r in h["iterations"] if r.get("iteration") == t), {})
            rows[name] = {k: rec.get(k) for k in keys}
        extra: dict[str, Any] = {}
        if trace is not None and f"labels_{t}" in trace:
            extra = {"clusters_used": int(len(np.unique(trace[f"labels_{t}"]))),
                     "kept_in_trace": int(np.asarray(trace[f"kept_{t}"]).sum())}
        ex.state = {"iteration": t, "rows": rows, **extra}
        head = "".join(f"<th>{k}</th>" for k in keys)
        body = "".join(f"<tr><td>{n}</td>" + "".join(
            f"<td>{_fmt(v) if v is not None else '-'}</td>" for v in r.values()) + "</tr>"
            for n, r in rows.items())
        note = "".join(f" &nbsp; {k}: <b>{v}</b>" for k, v in extra.items())
        ex.set_numbers(f"<b>iteration {t}</b>{' (baseline)' if t == 0 else ''}{note}"
                       f"<table><tr><th></th>{head}</tr>{body}</table>")
        fig = plot_reliable_counts(hists)
        for ax in fig.axes:
            ax.axvline(t, color="k", ls="--", lw=1)
        return fig

    return Explorer({"iteration": it}, draw, "Fig. 5: the loop, iteration by iteration")


# --------------------------------------------------------------------------------------
# Fig. 4: sweeps
# --------------------------------------------------------------------------------------
def sweep_explorer(sweeps: Mapping[str, list[dict]], *, cfg=None, plan: Mapping | None = None,
                   out_dir: str | Any = None, metric: str = "mAP",
                   run_kwargs: Mapping | None = None) -> Explorer:
    """Cached sweep points (``load_sweeps``) interactively: a sweep dropdown, a value slider
    and a variant dropdown; the numbers of the chosen point; the sweep's curve. With ``cfg``
    (and ``plan`` from ``sweeps.sweep_plan``), the button computes a missing point via
    :func:`tcul_helpers.experiment.sweeps.run_point` (slow: one whole adaptation run) into
    ``out_dir``
    (default: :func:`tcul_helpers.experiment.sweeps.default_dir` of ``cfg``)."""
    from ..figures.sweeps import plot_sweep

    points = {name: list(pts) for name, pts in sweeps.items()}
    plan = dict(plan or {})
    names = sorted(set(points) | set(plan))
    if not names:
        names = ["lambda_fr"]

    def values_of(name: str) -> list[tuple[str, float]]:
        """The slider's options: (readout, value), e.g. ("100", 100.0), ("\u221e", 1e7: no
        window), so that the readout is short and never a raw float."""
        vals = {float(p["value"]) for p in points.get(name, [])}
        vals |= {float(v) for v in plan.get(name, {}).get("values", [])}
        from ..settings.config import INFINITE_FRAMES

        return [("\u221e" if v == INFINITE_FRAMES else _fmt(v), v)
                for v in sorted(vals)] or [("0", 0.0)]

    def variants_of(name: str) -> list:
        vs = {p.get("variant", "") for p in points.get(name, [])}
        vs |= set(plan.get(name, {}).get("variants", []))
        return sorted(vs) or ["tcul"]

    def cached_start(name: str) -> tuple[float, str] | None:
        """The point the view opens on: the cached one nearest the sweep's default."""
        pts = [p for p in points.get(name, []) if p.get(metric) is not None]
        if not pts:
            return None
        ref = plan.get(name, {}).get("true_value")
        p = min(pts, key=lambda q: (q.get("variant", "") != "tcul",
                                    abs(float(q["value"]) - float(ref)) if ref else 0.0))
        return float(p["value"]), p.get("variant", "")

    first = next((n for n in names if cached_start(n) is not None), names[0])
    start = cached_start(first)
    sweep = W.Dropdown(options=names, value=first, description="sweep")
    value = W.SelectionSlider(options=values_of(first), description="value",
                              continuous_update=False)
    variant = W.Dropdown(options=variants_of(first), description="variant")
    if start is not None:
        value.value, variant.value = start
    button = W.Button(description="compute this point", disabled=cfg is None,
                      tooltip="runs one adaptation (minutes on the classroom profile)")
    metric_box = W.Dropdown(options=["mAP", "rank1", "precision", "n_reliable"], value=metric,
                            description="metric")

    def on_sweep(ch) -> None:
        value.options = values_of(ch["new"])
        variant.options = variants_of(ch["new"])
        there = cached_start(ch["new"])
        if there is not None:
            value.value, variant.value = there

    sweep.observe(on_sweep, names="value")

    def find() -> dict | None:
        return next((p for p in points.get(sweep.value, [])
                     if float(p["value"]) == float(value.value)
                     and p.get("variant", "") == variant.value), None)

    def draw(ex: Explorer) -> Figure | None:
        p = find()
        ex.state = {"sweep": sweep.value, "value": value.value, "variant": variant.value,
                    "point": p, "missing": p is None,
                    "n_points": len(points.get(sweep.value, []))}
        if p is None:
            ex.set_numbers("<i>this point is not cached yet: press the button "
                           + ("" if cfg is not None else "(pass cfg=... to enable it) ")
                           + "or run <code>make sweeps</code></i>")
        else:
            ex._show({k: p.get(k) for k in ("value", "variant", "mAP", "rank1",
                                             "precision", "n_reliable") if k in p})
        pts = points.get(sweep.value, [])
        if not any(q.get(metric_box.value) is not None for q in pts):
            return None
        true_value = plan.get(sweep.value, {}).get("true_value")
        fig = plot_sweep(pts, sweep.value, metric_box.value, true_value=true_value)
        fig.axes[0].axvline(float(value.value), color="k", ls=":", lw=1)
        return fig

    ex = Explorer({"sweep": sweep, "value": value, "variant": variant, "metric": metric_box,
                   "compute": button}, draw, "Fig. 4: parameter sweeps")

    def compute(_b=None) -> dict:
        from ..experiment.sweeps import default_dir, run_point

        res = run_point(cfg, sweep.value, variant.value, float(value.value),
                        out_dir if out_dir is not None else default_dir(cfg),
                        **dict(run_kwargs or {}))
        pts = [q for q in points.get(sweep.value, [])
               if not (float(q["value"]) == float(res["value"])
                       and q.get("variant") == res.get("variant"))]
        points[sweep.value] = sorted(pts + [res], key=lambda q: (q.get("variant", ""),
                                                                   q["value"]))
        ex.update()
        return res

    button.on_click(compute)
    ex.compute = compute
    return ex


__all__ = ["FIGURE_DPI", "Explorer", "center_update_explorer", "figure_png",
           "fragments_explorer", "iteration_scrubber", "selection_explorer", "sweep_explorer"]
