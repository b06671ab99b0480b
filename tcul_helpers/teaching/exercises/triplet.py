"""Checkers of step (d)'s batches and loss (notebook 05): Eq. 4-5 with batch-hard mining,
and the P x M sampler."""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
import torch

from ...method.triplet_loss import batch_hard_triplet_loss
from .checking import Case, CheckResult, Mistake, compare_close, fmt, run_checks


def _mined(e, lab, squared=False, positive="max", negative="min"):
    """Per-anchor d_ap, d_an and validity, with the choices a mistake may get wrong."""
    e, lab = torch.as_tensor(e, dtype=torch.float64), torch.as_tensor(lab)
    d = torch.cdist(e, e)
    d = d * d if squared else d
    same = lab[:, None] == lab[None, :]
    pos = same & ~torch.eye(len(lab), dtype=torch.bool)
    if positive == "max":
        d_ap = d.masked_fill(~pos, float("-inf")).max(1).values
    else:
        d_ap = d.masked_fill(~pos, float("inf")).min(1).values
    if negative == "min":
        d_an = d.masked_fill(same, float("inf")).min(1).values
    else:
        d_an = d.masked_fill(same, float("-inf")).max(1).values
    return d_ap, d_an, pos.any(1) & (~same).any(1)


def _wrong_triplet(squared=False, positive="max", negative="min", reduce="mean", hinge=True,
                   all_anchors=False):
    def loss(e, lab, m):
        d_ap, d_an, ok = _mined(e, lab, squared, positive, negative)
        per = d_ap - d_an + m
        per = torch.relu(per) if hinge else per
        if all_anchors:
            per = torch.where(ok, per, torch.zeros_like(per))
            return per.mean()
        return per[ok].sum() if reduce == "sum" else per[ok].mean()
    return loss


TRIPLET_MISTAKES = [
    Mistake("squared Euclidean distances (Eq. 4 uses D = ||f(a) - f(b)||_2)",
            _wrong_triplet(squared=True)),
    Mistake("the EASIEST positive (closest same-label image) instead of the hardest",
            _wrong_triplet(positive="min")),
    Mistake("the EASIEST negative (farthest other-label image) instead of the hardest",
            _wrong_triplet(negative="max")),
    Mistake("a sum over anchors instead of the mean (the kit averages; see the summary)",
            _wrong_triplet(reduce="sum")),
    Mistake("anchors without a positive counted as 0 in the mean instead of left out",
            _wrong_triplet(all_anchors=True)),
    Mistake("no hinge [.]_+: negative losses of easy triplets averaged in",
            _wrong_triplet(hinge=False)),
]


def triplet_cases(seed: int = 0) -> list[Case]:
    """Inputs of :func:`check_triplet_loss` (embeddings tensor, labels tensor, margin)."""
    import torch

    g = torch.Generator().manual_seed(seed)
    emb = torch.randn(12, 5, generator=g, dtype=torch.float64)
    lab = torch.tensor([0, 0, 0, 1, 1, 1, 2, 2, 2, 3, 3, 3])
    single = torch.tensor([0, 0, 1, 1, 2, 2, 3, 3, 4, 5, 5, 5])  # label 4 has no positive
    near = torch.tensor([[0.0, 0.0], [3.0, 0.0], [0.5, 0.0], [0.0, 4.0]], dtype=torch.float64)
    near_lab = torch.tensor([0, 0, 1, 1])
    # two images per label: the only positive is the hardest one; squaring moves the hinge
    pairs = torch.tensor([[0.0, 0.0], [1.0, 0.0], [1.5, 0.0], [2.6, 0.0]], dtype=torch.float64)
    # three per label on a line: the farthest and the nearest positive give other losses
    line = torch.tensor([[0.0, 0], [1, 0], [3, 0], [4, 0], [6, 0], [9, 0]], dtype=torch.float64)
    return [
        Case("Euclidean, not squared", (pairs, torch.tensor([0, 0, 1, 1]), 1.0),
              "d(a, b) is the Euclidean distance ||f(a) - f(b)||_2, not squared."),
        Case("hardest positive = farthest", (line, torch.tensor([0, 0, 0, 1, 1, 1]), 2.0),
              "the hardest positive is the FARTHEST same-label image (max distance), the "
              "hardest negative the CLOSEST other-label image (min distance)."),
        Case("large margin", (emb, lab, 5.0), "the margin m is added inside the hinge."),
        Case("anchor without a positive", (emb, single, 0.5),
              "an anchor whose label appears once has no positive: leave it out of the mean "
              "(do not count it as 0)."),
        Case("hand-made 2-D batch", (near, near_lab, 0.3),
              "an anchor must not be its own positive (distance 0)."),
        Case("random P x M batch", (emb, lab, 0.5),
              "for each anchor: hardest positive = FARTHEST same-label image (max distance), "
              "hardest negative = CLOSEST other-label image (min distance); Euclidean "
              "distance, not squared; loss = mean over anchors of [d_ap - d_an + m]_+."),
    ]


def check_triplet_loss(fn: Callable) -> CheckResult:
    """Eq. 4-5 with online hard mining: ``fn(embeddings, labels, margin)`` -> scalar."""
    def ref(e, lab, m):
        return float(batch_hard_triplet_loss(e, lab, m))

    def as_float(expected, got):
        try:
            val = float(got.detach() if hasattr(got, "detach") else got)
        except (TypeError, ValueError):
            return f"expected a scalar loss, got {type(got).__name__}"
        return compare_close(1e-6)(float(expected), val)

    return run_checks("check_triplet_loss (Eq. 4-5)", fn, ref, triplet_cases(),
                      ("embeddings", "labels", "margin"), as_float, TRIPLET_MISTAKES)



# --------------------------------------------------------------------------------------
# The P x M sampler
# --------------------------------------------------------------------------------------
def _pm_problem(batch, labels: np.ndarray, P: int, M: int) -> str | None:
    """What is wrong with one batch of the kit's P x M rule, or ``None``."""
    try:
        b = np.asarray(batch, dtype=np.int64).reshape(-1)
    except (TypeError, ValueError):
        return f"expected a list or array of image indices, got {type(batch).__name__}"
    if b.size != P * M:
        small = [int(v) for v, n in zip(*np.unique(labels, return_counts=True), strict=True)
                 if n < M]
        extra = (f" (labels {small} have fewer than M images: take all of them and repeat some "
                 "of its images up to M)" if small and b.size < P * M else "")
        return f"the batch has {b.size} images; P x M = {P} x {M} = {P * M}{extra}"
    if (b < 0).any() or (b >= len(labels)).any():
        return "an index is outside 0..N-1: return positions in `labels`, not label values"
    ids, counts = np.unique(labels[b], return_counts=True)
    if len(ids) != P:
        return f"the batch holds {len(ids)} different labels; it must hold P = {P}"
    if (counts != M).any():
        return f"labels appear {sorted(set(counts.tolist()))} times; each must appear M = {M} times"
    for lab in ids:
        mine = b[labels[b] == lab]
        pool = np.flatnonzero(labels == lab)
        if len(pool) >= M and len(np.unique(mine)) < M:
            return (f"label {lab} has {len(pool)} images but the batch repeats one: draw "
                    "without replacement when a label has at least M images")
        if len(pool) < M and set(pool.tolist()) - set(mine.tolist()):
            return (f"label {lab} has only {len(pool)} images (< M): take all of them, then "
                    "repeat some to reach M")
    return None


def check_pm_batch(fn: Callable, draws: int = 60) -> CheckResult:
    """``fn(labels, P, M, rng)`` -> one batch: indices of P distinct labels x M images each,
    drawn without replacement within a label that has at least M images (all of a smaller
    label's images, some repeated), labels and images chosen at random with ``rng`` (a
    ``np.random.Generator``). Checked on ``draws`` batches of two label sets."""
    name = "check_pm_batch (P x M sampler)"
    if not callable(fn):
        return CheckResult(False, f"expected a function, got {type(fn).__name__}", name)
    rng = np.random.default_rng(0)
    sets = {"8 labels, 2-6 images each": (np.repeat(np.arange(8), [2, 6, 3, 5, 4, 6, 2, 4]), 3, 3),
            "labels with gaps (3, 10, 42)": (np.array([42, 3, 10, 3, 42, 10, 10, 3, 42]), 2, 2)}
    for set_name, (labels, P, M) in sets.items():
        seen_labels, seen_images = set(), set()
        for d in range(draws):
            try:
                batch = fn(labels.copy(), P, M, np.random.default_rng(rng.integers(2**32)))
            except NotImplementedError:
                return CheckResult(False, "not implemented yet: replace `raise "
                                          "NotImplementedError` with your code and run this "
                                          "cell again.", name)
            except Exception as exc:  # noqa: BLE001 - reported to the student
                return CheckResult(False, f"{set_name}, draw {d + 1}: raised "
                                          f"{type(exc).__name__}: {exc}", name)
            problem = _pm_problem(batch, labels, P, M)
            if problem:
                return CheckResult(False, f"{set_name}, P={P}, M={M}, draw {d + 1}: {problem}\n"
                                          f"labels = {fmt(labels)}\n"
                                          f"got batch {fmt(np.asarray(batch))}", name)
            b = np.asarray(batch, dtype=np.int64).reshape(-1)
            seen_labels |= set(labels[b].tolist())
            seen_images |= set(b.tolist())
        if len(seen_labels) < len(np.unique(labels)):
            missing = sorted(set(np.unique(labels).tolist()) - seen_labels)
            return CheckResult(False, f"recognised mistake: the same labels in every batch\n"
                                      f"{set_name}: in {draws} batches, labels {missing} never "
                                      "appeared: draw the P labels at random with rng.", name)
        if len(seen_images) < len(labels):
            return CheckResult(False, f"recognised mistake: the same images of a label in every "
                                      f"batch\n{set_name}: in {draws} batches only "
                                      f"{len(seen_images)} of {len(labels)} images appeared: "
                                      "draw a label's M images at random with rng.", name)
    return CheckResult(True, f"all {2 * draws} batches follow the P x M rule (P distinct labels x "
                             "M images, no repeat unless a label has fewer than M images, "
                             "labels and images at random).", name, 2 * draws)
