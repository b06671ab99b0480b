"""Evaluation primer: the ranked gallery lists behind rank-k (CMC) and mAP.

For a few queries, the gallery is ranked by Euclidean distance of the features and drawn
row by row: the query, then its top gallery images, with a green border on a true match
and a red one on another person, and per row the rank of the first true match and the
query's average precision.

The protocol is the kit's (:mod:`tcul_helpers.measurement.evaluation`, Market-1501
single query): the gallery images with the same pid **and** the same camera as the query
are removed from its list, and so are junk images (pid ``-1``); distractors (pid ``0``)
stay and never match a Market query. Ties in distance are broken by gallery index.
Rank-k is the fraction of queries whose first true match is at rank <= k, and mAP the
mean of the per-query AP, ``AP = (1/m) sum_i i / r_i`` over the ranks ``r_i`` of the ``m``
true matches; a query without a true match left is skipped by both.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
from matplotlib.figure import Figure
from matplotlib.patches import Rectangle

from ..data.records import ImageRecord
from ..infra.array_checks import to_numpy
from ..infra.errors import TCULError
from ..measurement.evaluation import JUNK_PID, _check_ids, pairwise_distances
from ..training.image_dataset import load_image
from .selection import KEPT_COLOR, REJECTED_COLOR

CORRECT_COLOR = KEPT_COLOR  # green: a true match (same person, another camera)
WRONG_COLOR = REJECTED_COLOR  # red: another person
QUERY_COLOR = "#1f77b4"  # blue: the query


def _query_indices(queries: Any, nq: int) -> list[int]:
    q = np.asarray(queries).reshape(-1)
    if q.size and q.dtype.kind not in "iu":
        raise TCULError(f"queries must be integer query indices, got dtype {q.dtype}")
    bad = [int(i) for i in q if not 0 <= i < nq]
    if bad:
        raise TCULError(f"query indices {bad} out of range: there are {nq} queries (0..{nq - 1})")
    return [int(i) for i in q]


def _average_precision(hit_ranks: np.ndarray) -> float:
    """Non-interpolated AP from the 1-based ranks of the true matches (sorted)."""
    return float(np.mean(np.arange(1, hit_ranks.size + 1) / hit_ranks))


def ranked_lists(
    query_features: Any,
    gallery_features: Any,
    q_pids: Any,
    g_pids: Any,
    q_camids: Any,
    g_camids: Any,
    queries: Sequence[int] | np.ndarray,
    top: int = 8,
) -> list[dict[str, Any]]:
    """The ranked gallery list of each query in ``queries``, under the kit's protocol.

    Distances are :func:`~tcul_helpers.measurement.evaluation.pairwise_distances`
    (Euclidean, float32); the ranking is a stable sort (ties by gallery index); same pid +
    same camera and junk (pid -1) gallery images are removed. One dict per query:

    * ``query``: the query index;
    * ``gallery``: the first ``top`` gallery indices of the filtered list, in rank order;
    * ``correct``: bool array, True where that gallery image is a true match;
    * ``first_correct_rank``: 1-based rank of the first true match in the whole filtered
      list, ``None`` when there is none (the query is skipped by CMC and mAP);
    * ``ap``: the query's average precision over the whole filtered list (the number
      :func:`~tcul_helpers.measurement.evaluation.evaluate` averages into mAP), ``None``
      when skipped;
    * ``n_relevant``: the number of true matches in the filtered list.
    """
    if isinstance(top, bool) or not isinstance(top, (int, np.integer)) or top < 1:
        raise TCULError(f"top must be an integer >= 1, got {top!r}")
    q_feats = to_numpy(query_features, "query_features")
    g_feats = to_numpy(gallery_features, "gallery_features")
    if q_feats.ndim != 2 or g_feats.ndim != 2:
        raise TCULError(
            f"features must be 2-D (images x dims), got shapes {q_feats.shape} and "
            f"{g_feats.shape}: stack the feature vectors"
        )
    nq, ng = q_feats.shape[0], g_feats.shape[0]
    qp, gp, qc, gc = _check_ids(nq, ng, q_pids, g_pids, q_camids, g_camids)
    idx = _query_indices(queries, nq)
    if not idx:
        return []
    dist = pairwise_distances(q_feats[idx], g_feats, "euclidean")
    out = []
    for row, q in enumerate(idx):
        order = np.argsort(dist[row], kind="stable")
        keep = (gp[order] != JUNK_PID) & ~((gp[order] == qp[q]) & (gc[order] == qc[q]))
        ranked = order[keep]
        correct = gp[ranked] == qp[q]
        hit_ranks = np.flatnonzero(correct) + 1.0
        found = hit_ranks.size > 0
        out.append({
            "query": q,
            "gallery": ranked[:top].astype(np.int64),
            "correct": correct[:top].copy(),
            "first_correct_rank": int(hit_ranks[0]) if found else None,
            "ap": _average_precision(hit_ranks) if found else None,
            "n_relevant": int(hit_ranks.size),
        })
    return out


def _row_label(entry: dict[str, Any]) -> str:
    if entry["first_correct_rank"] is None:
        return "no true match left: skipped by rank-k and mAP"
    return f"first correct at rank {entry['first_correct_rank']}, AP = {entry['ap']:.2f}"


def _draw(ax, record: ImageRecord, color: str, gid: str, title: str) -> None:
    ax.imshow(np.asarray(load_image(record.path)), interpolation="bilinear")
    ax.set_title(title, fontsize=6.5, color=color, pad=2)
    ax.add_patch(Rectangle((0, 0), 1, 1, transform=ax.transAxes, fill=False, edgecolor=color,
                           linewidth=3.0 if gid == "query" else 2.2, clip_on=False, gid=gid))
    ax.axis("off")


def plot_ranked_lists(
    records_query: Sequence[ImageRecord],
    records_gallery: Sequence[ImageRecord],
    lists: Sequence[dict[str, Any]],
    title: str = "",
) -> Figure:
    """One row per entry of ``lists`` (from :func:`ranked_lists`): the query (blue border),
    then its top gallery images, green when a true match and red when not, each titled with
    its rank, pid and camera; under the query, the rank of the first true match and the AP.

    ``records_query`` / ``records_gallery`` are the query and gallery records the features
    were extracted from (indexed as in ``lists``). Axes: ``len(lists) x (1 + longest list)``.
    """
    if not lists:
        raise TCULError("no ranked lists to plot: pass ranked_lists(...) for at least one query")
    n_cols = 1 + max(len(e["gallery"]) for e in lists)
    n_rows = len(lists)
    for e in lists:
        if not 0 <= e["query"] < len(records_query):
            raise TCULError(f"query {e['query']} has no record: {len(records_query)} queries")
        if any(not 0 <= g < len(records_gallery) for g in e["gallery"]):
            raise TCULError(f"a gallery index of query {e['query']} has no record: "
                            f"{len(records_gallery)} gallery records")
    height = 2.2 * n_rows + 0.7  # inches: images 2:1, the row label, the titles
    fig = Figure(figsize=(0.95 * n_cols + 0.4, height))
    axes = fig.subplots(n_rows, n_cols, squeeze=False,
                        gridspec_kw={"wspace": 0.12, "hspace": 0.3})
    for row, e in zip(axes, lists, strict=True):
        q = records_query[e["query"]]
        _draw(row[0], q, QUERY_COLOR, "query", f"query\nid {q.pid} c{q.camid}")
        label = row[0].text(0.0, -0.04, _row_label(e), transform=row[0].transAxes,
                            ha="left", va="top", fontsize=7, fontweight="bold")
        label.set_in_layout(False)
        for rank, (g, ok) in enumerate(zip(e["gallery"], e["correct"], strict=True), start=1):
            r = records_gallery[int(g)]
            _draw(row[rank], r, CORRECT_COLOR if ok else WRONG_COLOR,
                  "correct" if ok else "wrong", f"{rank}: id {r.pid} c{r.camid}")
        for ax in row[1 + len(e["gallery"]):]:
            ax.axis("off")
    key = ("green: true match (same person, other camera), red: other person; "
           "same person + same camera removed")
    fig.suptitle(f"{title}\n{key}" if title else key, fontsize=8)
    fig.subplots_adjust(left=0.02, right=0.98, top=1 - 0.7 / height, bottom=0.3 / height)
    return fig


__all__ = ["CORRECT_COLOR", "QUERY_COLOR", "WRONG_COLOR", "plot_ranked_lists", "ranked_lists"]
