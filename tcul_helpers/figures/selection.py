"""Fig. 3 of the paper: the images of one camera in one cluster, and who Eq. 3 keeps.

For a (camera ``j``, cluster ``k``) group ``X_jk`` the images are drawn in order of frame
id; ``x_min_jk`` (the image most similar to the centre ``c_k``) has a gold border and the
label ``x_min``; every other image has a green border when it is kept
(``|fid(x_min_jk) - fid(x)| <= lambda_fr``) and a red one when it is rejected. Each image
is labelled with its frame id and its frame distance to ``x_min_jk``; with ``truth`` its
true identity is written above it (the method never sees it).
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import Any

import numpy as np
from matplotlib.figure import Figure
from matplotlib.patches import Rectangle

from ..data.records import ImageRecord, ReidDataset, camids_of
from ..infra.errors import TCULError
from ..method.selection import TemporalSelection
from ..training.image_dataset import load_image
from .fragments import _frame_label

KEPT_COLOR = "#2ca02c"  # green: kept by Eq. 3
REJECTED_COLOR = "#d62728"  # red: rejected by Eq. 3
ANCHOR_COLOR = "#d4a017"  # gold: x_min_jk (always kept)
SIMILARITY_COLOR = "#1f77b4"  # blue: kept by similarity selection (the comparison)
COLUMNS = 8  # images per row


def _as_records(records: Iterable[ImageRecord] | ReidDataset) -> list[ImageRecord]:
    if isinstance(records, ReidDataset):
        return list(records.train)
    return list(records)


def _group_indices(labels: np.ndarray, camids: np.ndarray, cluster: int, camid: int
                   ) -> np.ndarray:
    return np.flatnonzero((labels == cluster) & (camids == camid))


def plot_cluster_selection(
    records: Sequence[ImageRecord] | ReidDataset,
    selection: TemporalSelection,
    labels: Sequence[int] | np.ndarray,
    cluster: int,
    camid: int,
    *,
    truth: Sequence[int] | np.ndarray | None = None,
    similarity_kept: Sequence[bool] | np.ndarray | None = None,
    max_images: int = 24,
    ax=None,
) -> Figure:
    """Fig. 3: images of camera ``camid`` labelled ``cluster``, sorted by frame id.

    ``records``, ``selection`` (from :func:`tcul_helpers.method.selection.temporal_anchors`),
    ``labels`` and ``truth`` (true pid per record, optional) are aligned per image. Borders:
    gold = ``x_min_jk``, green = kept, red = rejected at ``selection.lambda_fr``. When the
    group holds more than ``max_images`` images, the window of ``max_images`` consecutive
    images (in frame order) centred on ``x_min_jk`` is shown. ``similarity_kept`` (a
    similarity selection's kept mask, optional) adds a mark under each image: a filled
    square where similarity selection keeps it, an open one where it does not.
    """
    recs = _as_records(records)
    labels = np.asarray(labels).reshape(-1)
    n = len(recs)
    if len(labels) != n or len(selection.kept) != n:
        raise TCULError(
            f"records ({n}), labels ({len(labels)}) and selection ({len(selection.kept)}) "
            "must describe the same images: pass the training records the selection was "
            "computed on"
        )
    if truth is not None:
        truth = np.asarray(truth).reshape(-1)
        if len(truth) != n:
            raise TCULError(f"truth has {len(truth)} entries for {n} records: one pid per image")
    if similarity_kept is not None:
        similarity_kept = np.asarray(similarity_kept, dtype=bool).reshape(-1)
        if len(similarity_kept) != n:
            raise TCULError(f"similarity_kept has {len(similarity_kept)} entries for {n} "
                            "records: one flag per image")
    if max_images < 1:
        raise TCULError(f"max_images must be >= 1, got {max_images}")
    camids = camids_of(recs)
    idx = _group_indices(labels, camids, cluster, camid)
    if idx.size == 0:
        raise TCULError(
            f"no image of camera {camid} is labelled {cluster}: pick a group with "
            "pick_example_group(selection, labels, camids)"
        )
    frames = np.array([recs[i].frame if recs[i].frame is not None else 0 for i in idx])
    idx = idx[np.lexsort((idx, frames))]
    anchor = int(selection.anchor[idx[0]])
    if len(idx) > max_images:
        pos = int(np.flatnonzero(idx == anchor)[0]) if anchor in idx else 0
        start = min(max(0, pos - max_images // 2), len(idx) - max_images)
        idx = idx[start:start + max_images]

    n_show = len(idx)
    n_cols = min(COLUMNS, n_show)
    n_rows = (n_show + n_cols - 1) // n_cols
    row_h = 2.0 + 1.1
    created = ax is None
    if ax is None:
        fig = Figure(figsize=(1.25 * max(n_cols, 4), 1.25 * row_h * n_rows * 0.8 + 0.8))
        ax = fig.add_subplot(1, 1, 1)
    else:
        fig = ax.figure
    for pos, i in enumerate(idx):
        x0, y0 = pos % n_cols, (pos // n_cols) * row_h + 0.55
        ax.imshow(np.asarray(load_image(recs[i].path)), extent=(x0 + 0.06, x0 + 0.94,
                  y0 + 2.0, y0), interpolation="bilinear")
        is_anchor = int(i) == anchor
        kept = bool(selection.kept[i])
        color = ANCHOR_COLOR if is_anchor else (KEPT_COLOR if kept else REJECTED_COLOR)
        border = Rectangle((x0 + 0.06, y0), 0.88, 2.0, fill=False, edgecolor=color,
                           linewidth=3.0 if is_anchor else 2.2)
        border.set_gid("anchor" if is_anchor else ("kept" if kept else "rejected"))
        ax.add_patch(border)
        ax.text(x0 + 0.5, y0 + 2.1, _frame_label(recs[i]), ha="center", va="top", fontsize=6.5)
        dist = "x_min" if is_anchor else _distance_label(recs[i], recs[anchor],
                                                          selection.frame_distance[i])
        ax.text(x0 + 0.5, y0 + 2.45, dist, ha="center", va="top", fontsize=6.5, color=color,
                fontweight="bold")
        if truth is not None:
            ax.text(x0 + 0.5, y0 - 0.05, f"id {int(truth[i])}", ha="center", va="bottom",
                    fontsize=6.5)
        if similarity_kept is not None:
            mark = Rectangle((x0 + 0.06, y0 + 2.47), 0.18, 0.18, linewidth=1.2,
                             edgecolor=SIMILARITY_COLOR,
                             facecolor=SIMILARITY_COLOR if similarity_kept[i] else "none")
            mark.set_gid("similarity-kept" if similarity_kept[i] else "similarity-rejected")
            ax.add_patch(mark)
    ax.set_xlim(-0.1, n_cols + 0.1)
    ax.set_ylim(n_rows * row_h + 0.3, -0.1)
    ax.set_aspect("equal")
    ax.axis("off")
    n_kept = int(selection.kept[idx].sum())
    title = (f"camera {camid}, cluster {cluster}: {n_show} images by frame id; {n_kept} kept "
             f"(gold x_min, green kept, red rejected; \u03bb_fr = {selection.lambda_fr:g})")
    if similarity_kept is not None:
        title += (f"\nsimilarity selection keeps {int(similarity_kept[idx].sum())} "
                  "(filled blue square: kept, open: rejected)")
    ax.set_title(title, fontsize=9)
    if created:
        fig.tight_layout()
    return fig


def _distance_label(r: ImageRecord, anchor: ImageRecord, distance: int) -> str:
    """``|fid(x_min) - fid(x)|`` as a student reads it: frames apart within one recording
    sequence; across sequences the kit's frame ids differ by its internal sequence offset
    (:data:`tcul_helpers.data.readers.SEQUENCE_STRIDE`), which is never shown."""
    if r.sequence is not None and anchor.sequence is not None and r.sequence != anchor.sequence:
        return f"s{r.sequence}\u2260s{anchor.sequence}"
    return f"\u0394{distance}"


def pick_example_group(
    selection: TemporalSelection,
    labels: Sequence[int] | np.ndarray,
    camids: Sequence[int] | np.ndarray,
    truth: Sequence[int] | np.ndarray | None = None,
) -> tuple[int, int]:
    """An informative ``(cluster, camid)`` for :func:`plot_cluster_selection`.

    Prefers groups with both kept and rejected images; among them (with ``truth``) the one
    where rejection removes the most images of another identity than ``x_min_jk``'s, then
    groups of 6-16 images, then larger groups. Without any mixed group, the largest group.
    """
    labels = np.asarray(labels).reshape(-1)
    camids = np.asarray(camids).reshape(-1)
    if len(labels) == 0:
        raise TCULError("no images: the selection is empty")
    if len(labels) != len(selection.kept) or len(camids) != len(labels):
        raise TCULError("selection, labels and camids must have one entry per image")
    tr = None if truth is None else np.asarray(truth).reshape(-1)
    best_key: tuple | None = None
    best: tuple[int, int] = (0, 0)
    for g in np.unique(selection.group):
        members = np.flatnonzero(selection.group == g)
        kept = selection.kept[members]
        n_kept = int(kept.sum())
        mixed = 0 < n_kept < len(members)
        wrong_removed = right_kept = 0
        if tr is not None:
            anchor_pid = tr[selection.anchor[members[0]]]
            wrong_removed = int(((tr[members] != anchor_pid) & ~kept).sum())
            right_kept = int(((tr[members] == anchor_pid) & kept).sum())
        size_ok = 6 <= len(members) <= 16
        key = (mixed, wrong_removed > 0, wrong_removed + right_kept, size_ok, len(members))
        if best_key is None or key > best_key:
            best_key = key
            i = members[0]
            best = (int(labels[i]), int(camids[i]))
    return best


def selection_tradeoff(features: Any, labels: Any, centers: Any, camids: Any, frames: Any,
                       truth: Any, lambdas: Sequence[float], thresholds: Sequence[float]
                       ) -> dict[str, dict[str, np.ndarray]]:
    """What each selection trades, on one clustering: for Eq. 3 at every ``lambdas`` value
    and for similarity selection at every ``thresholds`` value, the number of kept images,
    the pairwise precision of the kept pseudo-labels and the kept-pair recall (of the
    clustering's correct pairs, the fraction a selection keeps). Seconds on the classroom
    world: no network runs."""
    from ..measurement.metrics import kept_pair_recall, pairwise_precision
    from ..method.selection import select_by_similarity, temporal_anchors

    labels, truth = np.asarray(labels), np.asarray(truth)
    out: dict[str, dict[str, np.ndarray]] = {}
    for name, values, select in (
        ("temporal", lambdas,
         lambda v: temporal_anchors(features, labels, centers, camids, frames, v).kept),
        ("similarity", thresholds,
         lambda v: select_by_similarity(features, labels, centers, v)),
    ):
        rows = []
        for v in values:
            kept = np.asarray(select(v), dtype=bool)
            rows.append((float(v), int(kept.sum()), pairwise_precision(labels, truth, kept),
                         kept_pair_recall(labels, truth, kept)))
        arr = np.array(rows, dtype=float).reshape(-1, 4)
        out[name] = {"value": arr[:, 0], "kept": arr[:, 1], "precision": arr[:, 2],
                     "recall": arr[:, 3]}
    return out


def plot_selection_tradeoff(curves: dict[str, dict[str, np.ndarray]], own_similarity: Any,
                            kept: dict[str, Any], *, lambda_fr: float, threshold: float
                            ) -> Figure:
    """Left: precision against kept-pair recall of both selections (from
    :func:`selection_tradeoff`), their default operating points marked. Right: the
    similarity of each kept image to its own centre, ``sim(f(x), c_l)``, under each
    selection's default (``kept``: ``{"temporal": mask, "similarity": mask}``): similarity
    selection keeps only images near the centre (easy positives), Eq. 3 also keeps images
    far from it in feature space but close in time (hard positives), the paper's second
    argument for Eq. 3."""
    import seaborn as sns

    sim = np.asarray(own_similarity, dtype=float)
    fig = Figure(figsize=(10, 4))
    ax, ax2 = fig.subplots(1, 2)
    styles = {"temporal": (KEPT_COLOR, "o", f"Eq. 3, \u03bb_fr (default {lambda_fr:g})",
                           lambda_fr),
              "similarity": (SIMILARITY_COLOR, "s", f"similarity > t (default {threshold:g})",
                             threshold)}
    for name, c in curves.items():
        color, marker, label, default = styles[name]
        ax.plot(c["recall"], c["precision"], marker=marker, ms=3, color=color, label=label)
        at = int(np.argmin(np.abs(c["value"] - default)))
        ax.plot(c["recall"][at], c["precision"][at], marker=marker, ms=10, color=color,
                mfc="none", mew=2)
    ax.set_xlabel("kept-pair recall (correct pairs of the clustering that are kept)")
    ax.set_ylabel("pairwise precision of the kept pseudo-labels")
    ax.set_title("what each selection trades (circled: the defaults)", fontsize=9)
    ax.grid(alpha=0.3)
    ax.legend(fontsize=7)
    data = {"all clustered images": sim}
    for name in ("temporal", "similarity"):
        data[styles[name][2].split(" (")[0] + " keeps"] = sim[np.asarray(kept[name], bool)]
    palette = ["0.6", KEPT_COLOR, SIMILARITY_COLOR]
    for (name, values), color in zip(data.items(), palette, strict=True):
        if len(values) > 1:
            sns.kdeplot(x=values, ax=ax2, color=color, label=f"{name} ({len(values)})",
                        fill=name != "all clustered images", alpha=0.25, cut=0)
    ax2.axvline(threshold, color=SIMILARITY_COLOR, ls=":", lw=1)
    ax2.set_xlabel("sim(f(x), c_l): cosine similarity to its own centre")
    ax2.set_title("which images each selection keeps: near the centre, or also far", fontsize=9)
    ax2.legend(fontsize=7)
    fig.tight_layout()
    return fig
