"""Fig. 2 of the paper: the images of one camera sorted by frame id, in fragments.

A *fragment* is a run of images whose consecutive frame ids are at most ``gap`` apart:
images captured by one camera during a short period. The figure shows that several
images of one person fall inside one fragment (temporal continuity, Sec. 3.3), which is
what the temporal selection of Eq. 3 relies on.
"""

from __future__ import annotations

import math
from collections.abc import Iterable

import numpy as np
from matplotlib.figure import Figure
from matplotlib.patches import Rectangle
from PIL import Image

from ..data.records import ImageRecord, ReidDataset
from ..infra.errors import TCULError

COLUMNS = 10  # images per row before wrapping
FRAGMENT_SPACE = 0.7  # empty space between two fragments, in image widths


def default_gap(frames: list[int]) -> int:
    """A gap that separates bursts: 3x the median step between consecutive images, >= 10."""
    steps = np.diff(np.asarray(frames))
    steps = steps[steps > 0]
    if len(steps) == 0:
        return 10
    return max(10, int(round(3 * float(np.median(steps)))))


def split_fragments(frames: list[int], gap: int) -> list[list[int]]:
    """Indices of sorted ``frames`` grouped into runs whose consecutive steps are <= gap."""
    groups: list[list[int]] = []
    for i, f in enumerate(frames):
        if not groups or f - frames[i - 1] > gap:
            groups.append([])
        groups[-1].append(i)
    return groups


def _frame_label(r: ImageRecord) -> str:
    if r.sequence is not None and r.raw_frame is not None:
        return f"s{r.sequence} f{r.raw_frame}"
    return f"f{r.frame}"


def identity_color(pid: int) -> tuple:
    """The colour of identity ``pid`` in every view (tab20; the pid is written beside it,
    since 20 colours repeat): fixed by the pid, so a person keeps a colour while the view
    scrolls. Consecutive pids get far-apart slots (7 is coprime with 20)."""
    from matplotlib import colormaps

    # even slots first (the saturated half of tab20), then the light half
    slots = list(range(0, 20, 2)) + list(range(1, 20, 2))
    return colormaps["tab20"](slots[(7 * int(pid)) % 20])


def plot_fragments(
    records: Iterable[ImageRecord] | ReidDataset,
    camid: int,
    *,
    start_frame: int | None = None,
    max_images: int = 40,
    gap: int | None = None,
    show_identity: bool = True,
    ax=None,
) -> Figure:
    """Fig. 2: images of camera ``camid`` sorted by frame id ``fid(x)``, in fragments.

    ``records``: image records (or a dataset: its training split). Starts at the first
    image with ``frame >= start_frame`` (default: the camera's first image) and shows up to
    ``max_images``. A new fragment starts where consecutive frame ids differ by more than
    ``gap`` (default: 3x the median step, at least 10 frames). Each image is labelled with
    its frame id; with ``show_identity`` its true identity is marked by a coloured border
    and its pid (distractors, pid 0, in grey; junk, pid -1, unmarked).
    """
    if isinstance(records, ReidDataset):
        records = records.train
    records = list(records)
    if not records:
        raise TCULError("no records to plot: pass a dataset or a non-empty list of records")
    if max_images < 1:
        raise TCULError(f"max_images must be >= 1, got {max_images}")
    if gap is not None and gap < 0:
        raise TCULError(f"gap must be >= 0 frames, got {gap}")
    if all(r.frame is None for r in records):
        raise TCULError(
            "these records have no frame ids (e.g. MSMT17): Fig. 2 needs a dataset with frame "
            "ids such as Market-1501, DukeMTMC-reID or the synthetic world"
        )
    cams = sorted({r.camid for r in records})
    cam_recs = [r for r in records if r.camid == camid and r.frame is not None]
    if not cam_recs:
        raise TCULError(
            f"camera {camid} has no images with frame ids: use one of cameras "
            f"{', '.join(map(str, cams))}"
        )
    cam_recs.sort(key=lambda r: (r.frame, r.path))
    if start_frame is not None:
        cam_recs = [r for r in cam_recs if r.frame >= start_frame]
        if not cam_recs:
            raise TCULError(
                f"camera {camid} has no image at frame >= {start_frame}: choose a smaller "
                "start_frame"
            )
    shown = cam_recs[:max_images]
    frames = [int(r.frame) for r in shown]
    gap = default_gap(frames) if gap is None else int(gap)
    fragments = split_fragments(frames, gap)

    # lay the images out left to right, wrapping rows, with space between fragments
    positions: list[tuple[float, int]] = []
    x, row = 0.0, 0
    for k, frag in enumerate(fragments):
        if k > 0:
            x += FRAGMENT_SPACE
        for _ in frag:
            if x + 1.0 > COLUMNS + FRAGMENT_SPACE * 2 + 1e-9:
                x, row = 0.0, row + 1
            positions.append((x, row))
            x += 1.0
    width = COLUMNS + FRAGMENT_SPACE * 2
    # the height of max_images images when every one is its own fragment: the figure keeps
    # one size while a student scrolls through a camera
    n_rows = max(row + 1, math.ceil(max_images * (1.0 + FRAGMENT_SPACE) / width))
    row_h = 2.0 + 0.8  # image (aspect 2:1) + labels
    created = ax is None
    if ax is None:
        fig = Figure(figsize=(1.15 * width, 1.15 * row_h * n_rows * 0.85 + 0.6))
        ax = fig.add_subplot(1, 1, 1)
    else:
        fig = ax.figure
    frag_of = {i: k for k, frag in enumerate(fragments) for i in frag}
    for i, rec in enumerate(shown):
        x0, r = positions[i]
        y0 = r * row_h + 0.4
        with Image.open(rec.path) as im:
            arr = np.asarray(im.convert("RGB"))
        ax.imshow(arr, extent=(x0 + 0.04, x0 + 0.96, y0 + 2.0, y0), interpolation="bilinear")
        ax.text(x0 + 0.5, y0 + 2.12, _frame_label(rec), ha="center", va="top", fontsize=6)
        if show_identity and rec.raw_pid >= 0:
            color = (0.5, 0.5, 0.5) if rec.raw_pid == 0 else identity_color(rec.raw_pid)
            ax.add_patch(Rectangle((x0 + 0.04, y0), 0.92, 2.0, fill=False, edgecolor=color,
                                   linewidth=2.2))
            ax.text(x0 + 0.5, y0 - 0.05, f"{rec.raw_pid:04d}", ha="center", va="bottom",
                    fontsize=6.5, color=color, fontweight="bold")
        # a dashed separator before the first image of each fragment (not at a row start)
        if i > 0 and frag_of[i] != frag_of[i - 1] and x0 > 0:
            sx = x0 - FRAGMENT_SPACE / 2
            ax.plot([sx, sx], [y0 - 0.3, y0 + 2.3], color="0.3", linestyle="--", linewidth=1)
    ax.set_xlim(-0.1, width + 0.1)
    ax.set_ylim(n_rows * row_h + 0.2, -0.1)
    ax.set_aspect("equal")
    ax.axis("off")
    n_frag = len(fragments)
    ax.set_title(
        f"camera {camid}: {len(shown)} images sorted by frame id, {n_frag} fragment"
        f"{'s' if n_frag != 1 else ''} (new fragment after a gap > {gap} frames)",
        fontsize=9,
    )
    if created:
        fig.tight_layout()
    return fig
