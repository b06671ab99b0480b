"""Realism statistics: does a camera network look like a real one? (method notes, "Realism").

Computed for any dataset the readers load, synthetic or real (Market-1501, DukeMTMC-reID),
so a synthetic world can be held against a real folder. None of them involves a trained
network or the paper's claims:

* **person vs camera** - a whole-crop colour histogram (512-bin RGB, 8 bins a channel,
  cosine distance) ranked under the kit's protocol
  (:func:`tcul_helpers.measurement.evaluation.evaluate`),
  beside chance (random distances, same protocol, same queries); and how often its nearest
  gallery image (after the protocol's same-person-same-camera removal) is in the query's
  own camera, beside chance (1 / cameras). Real anchor (Zheng et al., ICCV 2015): Market-1501's
  whole-crop colour-names bag-of-words reaches rank-1 34.4 / mAP 14.1;
* **the crop** (synthetic worlds only, from the renderer's own mask) - the share of a crop
  the person covers, and how much a camera's background varies between its images (mean
  cosine similarity of the colour histograms of background-only crops, within one camera
  and across cameras);
* **time** (datasets with frame ids) - images per visit, a visit's span in frames, and the
  crowding: other people seen by the same camera within +-lambda_fr frames of an image.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image

from ..data.records import ImageRecord, ReidDataset, camids_of, pids_of
from ..infra.errors import TCULError
from .evaluation import evaluate

HIST_BINS = 8  # per channel: 8 x 8 x 8 = 512 bins

#: Market-1501's whole-crop colour-names bag-of-words (Zheng et al., ICCV 2015), percent
REAL_ANCHOR = {"dataset": "Market-1501 (colour names BoW, 750 test ids)", "rank1": 34.4,
               "mAP": 14.1}

#: the classroom target world's goals: far above chance, far from solved
GOALS = {"rank1_min": 10.0, "mAP_min": 5.0, "mAP_max": 35.0}


def colour_histogram(img: Image.Image | np.ndarray, mask: np.ndarray | None = None) -> np.ndarray:
    """The 512-bin RGB histogram (8 bins a channel) of an image, L1-normalised.

    ``mask`` (bool, the image's height x width) restricts it to some pixels.
    """
    a = np.asarray(img.convert("RGB") if isinstance(img, Image.Image) else img)
    q = (a.astype(np.int32) * HIST_BINS) // 256
    idx = (q[..., 0] * HIST_BINS + q[..., 1]) * HIST_BINS + q[..., 2]
    if mask is not None:
        idx = idx[mask]
    h = np.bincount(idx.ravel(), minlength=HIST_BINS**3).astype(np.float32)
    return h / max(float(h.sum()), 1.0)


def _histograms(records: list[ImageRecord]) -> np.ndarray:
    out = np.empty((len(records), HIST_BINS**3), dtype=np.float32)
    for i, r in enumerate(records):
        try:
            with Image.open(r.path) as im:
                out[i] = colour_histogram(im)
        except OSError as exc:
            raise TCULError(f"cannot read image {r.path} ({exc}): the dataset is damaged; "
                            "regenerate or restore it") from None
    return out


def _cosine_distances(q: np.ndarray, g: np.ndarray) -> np.ndarray:
    qn = q / np.maximum(np.linalg.norm(q, axis=1, keepdims=True), 1e-12)
    gn = g / np.maximum(np.linalg.norm(g, axis=1, keepdims=True), 1e-12)
    return (1.0 - qn @ gn.T).astype(np.float32)


def _nn_same_camera(dist: np.ndarray, qp: np.ndarray, gp: np.ndarray, qc: np.ndarray,
                    gc: np.ndarray) -> float:
    """Share of queries whose nearest gallery image, after the protocol's removal of the
    same person in the same camera and of junk, is in the query's own camera."""
    d = dist.astype(np.float64, copy=True)
    d[(qp[:, None] == gp[None, :]) & (qc[:, None] == gc[None, :])] = np.inf
    d[:, gp == -1] = np.inf
    nn = np.argmin(d, axis=1)
    return float(np.mean(gc[nn] == qc))


def histogram_retrieval(dataset: ReidDataset, seed: int = 0) -> dict[str, Any]:
    """Whole-crop colour-histogram re-id on ``dataset``'s query / gallery, beside chance.

    Returns percentages: ``rank1``, ``mAP``, ``nn_same_camera`` for the histogram, the same
    three for random distances (``chance_*``, same protocol and queries, ``seed``), and
    ``uniform_same_camera`` = 100 / cameras.
    """
    if not dataset.query or not dataset.gallery:
        raise TCULError(f"dataset {dataset.name} at {dataset.root} has no query or gallery "
                        "images: realism statistics need both")
    qp, gp = pids_of(dataset.query), pids_of(dataset.gallery)
    qc, gc = camids_of(dataset.query), camids_of(dataset.gallery)
    dist = _cosine_distances(_histograms(dataset.query), _histograms(dataset.gallery))
    rand = np.random.default_rng(seed).random(dist.shape, dtype=np.float32)
    out: dict[str, Any] = {}
    for prefix, d in (("", dist), ("chance_", rand)):
        cmc, mAP = evaluate(d, qp, gp, qc, gc, max_rank=10, progress=False)
        out[f"{prefix}rank1"] = 100.0 * float(cmc[0])
        out[f"{prefix}mAP"] = 100.0 * float(mAP)
        out[f"{prefix}nn_same_camera"] = 100.0 * _nn_same_camera(d, qp, gp, qc, gc)
    out["uniform_same_camera"] = 100.0 / len(set(qc.tolist()) | set(gc.tolist()))
    return out


def temporal_statistics(records: list[ImageRecord], lambda_fr: int = 100,
                        visit_gap: int | None = None) -> dict[str, float] | None:
    """Images per visit, visit span and crowding of ``records`` (``None`` without frames).

    A *visit* is a run of one identity's images in one camera whose consecutive frame ids
    are at most ``visit_gap`` apart (default ``lambda_fr``). Crowding: for each image, the
    number of *other* identities with an image in the same camera within +-lambda_fr frames.
    """
    recs = [r for r in records if r.frame is not None and r.pid >= 0]
    if not recs:
        return None
    gap = lambda_fr if visit_gap is None else visit_gap
    by_key: dict[tuple[int, int], list[int]] = {}
    by_cam: dict[int, list[tuple[int, int]]] = {}
    for r in recs:
        by_key.setdefault((r.pid, r.camid), []).append(int(r.frame))  # type: ignore[arg-type]
        by_cam.setdefault(r.camid, []).append((int(r.frame), r.pid))  # type: ignore[arg-type]
    sizes, spans = [], []
    for frames in by_key.values():
        f = np.sort(np.asarray(frames))
        cuts = np.flatnonzero(np.diff(f) > gap) + 1
        for part in np.split(f, cuts):
            sizes.append(len(part))
            spans.append(int(part[-1] - part[0]))
    crowd = []
    for items in by_cam.values():
        items.sort()
        fr = np.array([f for f, _ in items])
        pid = np.array([p for _, p in items])
        lo = np.searchsorted(fr, fr - lambda_fr, side="left")
        hi = np.searchsorted(fr, fr + lambda_fr, side="right")
        for i in range(len(fr)):
            crowd.append(len(set(pid[lo[i]:hi[i]].tolist()) - {pid[i]}))
    return {
        "images_per_visit": float(np.mean(sizes)),
        "visit_span_median": float(np.median(spans)),
        "visit_span_p90": float(np.percentile(spans, 90)),
        "crowding_mean": float(np.mean(crowd)),
        "crowding_zero_share": 100.0 * float(np.mean(np.asarray(crowd) == 0)),
        "lambda_fr": float(lambda_fr),
    }


def crop_statistics(root: str | Path, n_per_camera: int = 40, seed: int = 0) -> dict[str, Any]:
    """Person share of the crop and background variation of a synthetic world (re-rendered).

    ``n_per_camera`` training images of every camera are drawn again with the world's own
    renderer: once with the subject's mask (share of the crop it covers), once with nobody in
    view (the background alone). Background variation: mean cosine similarity of the
    background crops' colour histograms within one camera and across cameras (1 = always the
    same picture).
    """
    from ..data.synthetic.render import render_image  # the renderer is needed here only
    from ..data.synthetic.world import render_context_of

    ctx, plans = render_context_of(Path(root))
    rng = np.random.default_rng(seed)
    by_cam: dict[int, list] = {}
    for p in plans:
        if p.kind == "person" and p.split == "train":
            by_cam.setdefault(p.cam, []).append(p)
    shares, hists, cams = [], [], []
    for cam, ps in sorted(by_cam.items()):
        pick = rng.choice(len(ps), size=min(n_per_camera, len(ps)), replace=False)
        for j in pick:
            _, _, mask = render_image(ctx, ps[int(j)], with_mask=True)
            shares.append(float(mask.mean()))
            bg, _ = render_image(ctx, ps[int(j)], people=False)
            hists.append(colour_histogram(bg))
            cams.append(cam)
    h = np.stack(hists)
    h = h / np.maximum(np.linalg.norm(h, axis=1, keepdims=True), 1e-12)
    sim = h @ h.T
    c = np.asarray(cams)
    same = (c[:, None] == c[None, :]) & ~np.eye(len(c), dtype=bool)
    other = c[:, None] != c[None, :]
    return {
        "person_share_mean": 100.0 * float(np.mean(shares)),
        "person_share_p10": 100.0 * float(np.percentile(shares, 10)),
        "person_share_p90": 100.0 * float(np.percentile(shares, 90)),
        "background_similarity_within_camera": float(sim[same].mean()),
        "background_similarity_across_cameras": float(sim[other].mean()),
        "images_rendered": len(shares),
    }


def realism_statistics(dataset: ReidDataset, lambda_fr: int = 100, seed: int = 0,
                       n_per_camera: int = 40) -> dict[str, Any]:
    """Every statistic of this module for one dataset (crop statistics for synthetic ones)."""
    out: dict[str, Any] = {"dataset": dataset.name, "root": dataset.root,
                           "retrieval": histogram_retrieval(dataset, seed),
                           "time": temporal_statistics(dataset.train, lambda_fr)}
    manifest = dataset.extra.get("manifest")
    out["crop"] = (crop_statistics(dataset.root, n_per_camera, seed) if manifest else None)
    return out


def meets_goals(stats: dict[str, Any]) -> dict[str, bool]:
    """Which of the classroom target world's goals (:data:`GOALS`) ``stats`` meets."""
    r = stats["retrieval"]
    return {"rank1 >= 10": r["rank1"] >= GOALS["rank1_min"],
            "mAP >= 5": r["mAP"] >= GOALS["mAP_min"],
            "mAP <= 35": r["mAP"] <= GOALS["mAP_max"]}


def format_statistics(stats: dict[str, Any]) -> str:
    """A plain-text block of :func:`realism_statistics` for the terminal."""
    r = stats["retrieval"]
    lines = [
        f"realism statistics of {stats['dataset']} ({stats['root']})",
        "  person vs camera (whole-crop 512-bin RGB histogram, cosine, single-query protocol):",
        f"    histogram: rank-1 {r['rank1']:.1f}  mAP {r['mAP']:.1f}  "
        f"nearest gallery image in the query's camera {r['nn_same_camera']:.0f}%",
        f"    chance:    rank-1 {r['chance_rank1']:.1f}  mAP {r['chance_mAP']:.1f}  "
        f"nearest gallery image in the query's camera {r['chance_nn_same_camera']:.0f}% "
        f"(1 / cameras = {r['uniform_same_camera']:.0f}%)",
        f"    real anchor: {REAL_ANCHOR['dataset']}: rank-1 {REAL_ANCHOR['rank1']}  "
        f"mAP {REAL_ANCHOR['mAP']}",
    ]
    c = stats.get("crop")
    if c:
        lines += [
            f"  the crop (renderer's mask, {c['images_rendered']} training images re-drawn):",
            f"    person's share of the crop: mean {c['person_share_mean']:.0f}% "
            f"(10-90%: {c['person_share_p10']:.0f}-{c['person_share_p90']:.0f}%)",
            "    background histogram similarity: within a camera "
            f"{c['background_similarity_within_camera']:.3f}, across cameras "
            f"{c['background_similarity_across_cameras']:.3f}",
        ]
    t = stats.get("time")
    if t:
        lines += [
            f"  time (training split, lambda_fr = {t['lambda_fr']:.0f}):",
            f"    images per visit {t['images_per_visit']:.2f}; visit span median "
            f"{t['visit_span_median']:.0f} frames (90%: {t['visit_span_p90']:.0f})",
            f"    other people in the same camera within +-lambda_fr: mean "
            f"{t['crowding_mean']:.2f} ({t['crowding_zero_share']:.0f}% of images see nobody)",
        ]
    else:
        lines.append("  time: no frame ids in this dataset")
    return "\n".join(lines)
