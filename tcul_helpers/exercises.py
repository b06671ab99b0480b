"""Checkers for the notebooks' exercises: a student's function against the kit's reference.

Each ``check_*`` runs the student's function and the reference on a few random inputs and
on the edge cases the method meets (ties, empty clusters, a cluster seen by one camera only,
frames exactly ``lambda_fr`` apart, ...) and returns a :class:`CheckResult`. It never
raises: a stub that raises ``NotImplementedError`` is reported as "not implemented yet", any
other exception or a wrong answer is reported with the input, the expected and the obtained
value and a hint. In a notebook the result displays itself; ``bool(result)`` is the verdict.

=============================  ==========================================================
checker                         the student's function computes
=============================  ==========================================================
:func:`check_assign`            ``fn(features, centers) -> labels`` (Eq. 1-2)
:func:`check_select_temporal`   ``fn(features, labels, centers, camids, frames, lambda_fr)``
                                ``-> kept`` bool mask (Eq. 3)
:func:`check_triplet_loss`      ``fn(embeddings, labels, margin) -> loss`` (Eq. 4-5,
                                batch-hard, mean over anchors with a positive and a negative)
:func:`check_update_centers`    ``fn(centers, features, labels, lambda_c, beta) -> centres``
                                (Eq. 6-7)
:func:`check_pairwise_precision` ``fn(pseudo_labels, true_labels, mask=None) -> float``
=============================  ==========================================================
"""

from __future__ import annotations

import html
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np


@dataclass(frozen=True)
class CheckResult:
    """The verdict of a checker: ``passed`` and a human-readable ``message``."""

    passed: bool
    message: str
    name: str = ""
    n_cases: int = 0

    def __bool__(self) -> bool:
        return self.passed

    def __str__(self) -> str:
        mark = "PASSED" if self.passed else "NOT YET"
        return f"[{mark}] {self.name}: {self.message}"

    def _repr_html_(self) -> str:
        colour = "#1b7f3b" if self.passed else "#b03a2e"
        mark = "&#10004; passed" if self.passed else "&#10008; not yet"
        body = html.escape(self.message).replace("\n", "<br>")
        return (f"<div style='border-left:6px solid {colour};padding:6px 10px;"
                f"font-family:monospace'><b style='color:{colour}'>{html.escape(self.name)}: "
                f"{mark}</b><br>{body}</div>")


@dataclass
class _Case:
    name: str
    args: tuple
    hint: str
    kwargs: dict | None = None


def _fmt(x: Any, limit: int = 12) -> str:
    if hasattr(x, "detach"):
        x = x.detach().cpu().numpy()
    if isinstance(x, np.ndarray):
        flat = np.round(x, 4) if np.issubdtype(x.dtype, np.floating) else x
        text = np.array2string(flat, threshold=limit, edgeitems=3, separator=", ")
        return f"array{tuple(x.shape)} {text}"
    if isinstance(x, float):
        return f"{x:.6g}"
    return repr(x)


def _copy(args: tuple) -> tuple:
    out = []
    for a in args:
        if hasattr(a, "clone"):
            out.append(a.clone())
        elif isinstance(a, np.ndarray):
            out.append(a.copy())
        else:
            out.append(a)
    return tuple(out)


def _describe(case: _Case, names: tuple[str, ...]) -> str:
    parts = [f"{n} = {_fmt(a)}" for n, a in zip(names, case.args, strict=False)]
    return "\n  ".join(parts)


def _run(name: str, fn: Callable, ref: Callable, cases: list[_Case], names: tuple[str, ...],
         compare: Callable[[Any, Any], str | None]) -> CheckResult:
    if not callable(fn):
        return CheckResult(False, f"expected a function, got {type(fn).__name__}", name)
    # the targeted cases run first: a typical mistake then meets the case made for it and
    # its hint, not the generic checklist of a random input
    cases = sorted(cases, key=lambda c: c.name.startswith("random"))
    for i, case in enumerate(cases, 1):
        kwargs = case.kwargs or {}
        expected = ref(*_copy(case.args), **kwargs)
        args = _copy(case.args)
        try:
            got = fn(*args, **kwargs)
        except NotImplementedError:
            return CheckResult(False, "not implemented yet: replace `raise NotImplementedError` "
                                      "with your code and run this cell again.", name)
        except Exception as exc:  # noqa: BLE001 - reported to the student
            return CheckResult(
                False,
                f"case {i}/{len(cases)} ({case.name}) raised {type(exc).__name__}: {exc}\n"
                f"input:\n  {_describe(case, names)}\nhint: {case.hint}", name)
        for a, b in zip(args, case.args, strict=False):  # inputs must not be modified
            if isinstance(b, np.ndarray) and not np.array_equal(a, b, equal_nan=True):
                return CheckResult(False, f"case {i} ({case.name}): your function modified its "
                                          "input arrays in place; work on a copy.", name)
        problem = compare(expected, got)
        if problem:
            return CheckResult(
                False,
                f"case {i}/{len(cases)} ({case.name}) differs: {problem}\n"
                f"input:\n  {_describe(case, names)}\n"
                f"expected: {_fmt(expected)}\ngot:      {_fmt(got)}\nhint: {case.hint}", name)
    return CheckResult(True, f"all {len(cases)} cases agree with the reference "
                             f"({', '.join(c.name for c in cases)}).", name, len(cases))


def _to_np(x: Any) -> np.ndarray:
    if hasattr(x, "detach"):
        x = x.detach().cpu().numpy()
    return np.asarray(x)


def _compare_exact(expected: Any, got: Any) -> str | None:
    e, g = _to_np(expected), _to_np(got)
    if g.shape != e.shape:
        return f"shape {g.shape}, expected {e.shape}"
    if e.dtype == bool and g.dtype != bool:
        if not np.isin(g, (0, 1)).all():
            return "expected a boolean mask (True = kept)"
        g = g.astype(bool)
    bad = np.flatnonzero(e.reshape(-1) != g.reshape(-1))
    if bad.size:
        j = int(bad[0])
        return (f"{bad.size} of {e.size} entries differ; first at index {j}: "
                f"expected {e.reshape(-1)[j].item()!r}, got {g.reshape(-1)[j].item()!r}")
    return None


def _compare_close(tol: float) -> Callable[[Any, Any], str | None]:
    def compare(expected: Any, got: Any) -> str | None:
        e, g = _to_np(expected).astype(np.float64), _to_np(got)
        try:
            g = g.astype(np.float64)
        except (TypeError, ValueError):
            return f"expected numbers, got {type(got).__name__}"
        if g.shape != e.shape:
            return f"shape {g.shape}, expected {e.shape}"
        both_nan = np.isnan(e) & np.isnan(g)
        err = np.where(both_nan, 0.0, np.abs(e - g))
        err = np.where(np.isnan(err), np.inf, err)
        if (err > tol * (1 + np.abs(np.nan_to_num(e)))).any():
            j = int(np.argmax(err.reshape(-1)))
            return (f"largest difference {err.reshape(-1)[j]:.3g} at flat index {j}: "
                    f"expected {e.reshape(-1)[j]:.6g}, got {g.reshape(-1)[j]:.6g}")
        return None

    return compare


# --------------------------------------------------------------------------------------
# Eq. 1-2
# --------------------------------------------------------------------------------------
def assign_cases(seed: int = 0) -> list[_Case]:
    """Inputs of :func:`check_assign` (features, centers)."""
    rng = np.random.default_rng(seed)
    x = rng.normal(size=(20, 4)).astype(np.float32)
    c = rng.normal(size=(5, 4)).astype(np.float32)
    tie_c = np.array([[1, 0, 0], [1, 0, 0], [0, 1, 0]], np.float32)  # centres 0 and 1 equal
    tie_x = np.array([[2, 0, 0], [0, 3, 0], [1, 1, 0]], np.float32)
    # centres of very different norms: the dot product and the cosine disagree
    norm_c = np.array([[10, 1], [0.1, 1.0]], np.float32)
    norm_x = np.array([[0.2, 1.0], [1.0, 0.1], [0.05, 1.0]], np.float32)
    # each image equals one centre: argmin of the cosine picks the other one
    own_x = np.array([[1, 0], [0, 1], [0.9, 0.1]], np.float32)
    own_c = np.array([[1, 0], [0, 1]], np.float32)
    # targeted cases first, so that a typical mistake gets its own hint; random last
    return [
        _Case("each image on its own centre", (own_x, own_c),
              "Eq. 2 takes the MOST similar centre: argmax of the cosine, not argmin."),
        _Case("unnormalised centres", (norm_x, norm_c),
              "Eq. 1 divides by |f(x_i)| |c_k|: a plain dot product favours long centres."),
        _Case("tie between equal centres", (tie_x, tie_c),
              "when two centres are equally similar, take the lowest k (np.argmax does)."),
        _Case("one centre", (x[:5], c[:1]), "with K = 1 every image gets label 0."),
        _Case("random", (x, c), "l_i = argmax_k cos(f(x_i), c_k): divide by |f(x_i)| |c_k| "
              "(cosine, not a plain dot product or a distance) and take argmax, not argmin."),
    ]


def check_assign(fn: Callable) -> CheckResult:
    """Eq. 1-2: ``fn(features, centers)`` must return ``argmax_k cos(f(x_i), c_k)``."""
    from .clustering import assign_clusters

    return _run("check_assign (Eq. 1-2)", fn, assign_clusters, assign_cases(),
                ("features", "centers"), _compare_exact)


# --------------------------------------------------------------------------------------
# Eq. 3
# --------------------------------------------------------------------------------------
def select_temporal_cases(seed: int = 0) -> list[_Case]:
    """Inputs of :func:`check_select_temporal`."""
    rng = np.random.default_rng(seed)
    n, k = 40, 4
    x = rng.normal(size=(n, 3)).astype(np.float32)
    c = rng.normal(size=(k, 3)).astype(np.float32)
    lab = rng.integers(0, k, n)
    cams = rng.integers(1, 4, n)
    fr = rng.integers(0, 400, n)
    # a group whose anchor is image 0 (identical to its centre) and frames at the boundary
    bx = np.array([[1, 0], [0.9, 0.1], [0.8, 0.3], [0.7, 0.4], [0, 1]], np.float32)
    bc = np.array([[1, 0], [0, 1]], np.float32)
    blab = np.array([0, 0, 0, 0, 1])
    bcam = np.array([1, 1, 1, 1, 1])
    bfr = np.array([100, 150, 50, 151, 7])
    # one cluster seen by one camera only, the other by two cameras with reused frame ids
    # (camera 3's anchor, image 5 at frame 5000, is 4000 frames from camera 1's anchor: a
    # selection that ignores the camera keeps image 4 and drops image 5)
    ox = np.array([[1, 0], [0.9, 0.2], [0, 1], [0.1, 0.9], [0.3, 1], [0.2, 1]], np.float32)
    olab = np.array([0, 0, 1, 1, 1, 1])
    ocam = np.array([2, 2, 1, 1, 3, 3])
    ofr = np.array([10, 500, 1000, 1010, 1000, 5000])
    # two images equally similar to the centre: the anchor is the lower index
    tx = np.array([[1, 1], [2, 2], [1, 0.2]], np.float32)
    tc = np.array([[1, 1]], np.float32)
    tfr = np.array([0, 60, 30])
    # one group: the most similar image is far (in frames) from the least similar one
    ax = np.array([[1, 0], [0.6, 0.8], [0, 1]], np.float32)
    ac = np.array([[1, 0]], np.float32)
    one = np.zeros(3, np.int64)
    # targeted cases first, so that a typical mistake gets its own hint; random last
    return [
        _Case("anchor = the most similar image", (ax, one, ac, one + 1,
                                                  np.array([0, 500, 1000]), 100),
              "x_min is the image MOST similar to the centre c_k: argmax of the cosine, "
              "not argmin."),
        _Case("frames exactly lambda_fr away", (bx, blab, bc, bcam, bfr, 50),
              "Eq. 3 keeps frame distances equal to lambda_fr: use <=, not <."),
        _Case("cluster in one camera only", (ox, olab, bc, ocam, ofr, 20),
              "compare frame ids only inside one camera: every (camera, cluster) group has "
              "its own anchor, even when the cluster appears in a single camera."),
        _Case("lambda_fr = 0", (x, lab, c, cams, fr, 0),
              "with lambda_fr = 0 only the anchors (and images at the same frame) are kept; "
              "the anchor is always kept."),
        _Case("similarity tie for the anchor", (tx, np.zeros(3, np.int64), tc,
                                                np.ones(3, np.int64), tfr, 40),
              "images 0 and 1 are equally similar to the centre: the anchor is the lowest "
              "index (a stable sort or np.argmax gives it)."),
        _Case("random", (x, lab, c, cams, fr, 100),
              "group images by (camera, cluster); the anchor x_min is the image MOST similar "
              "to the centre (largest cosine); keep |fid(x_min) - fid(x)| <= lambda_fr."),
    ]


def check_select_temporal(fn: Callable) -> CheckResult:
    """Eq. 3: ``fn(features, labels, centers, camids, frames, lambda_fr)`` -> bool mask."""
    from .selection import select_temporal

    return _run("check_select_temporal (Eq. 3)", fn, select_temporal, select_temporal_cases(),
                ("features", "labels", "centers", "camids", "frames", "lambda_fr"),
                _compare_exact)


# --------------------------------------------------------------------------------------
# Eq. 4-5
# --------------------------------------------------------------------------------------
def triplet_cases(seed: int = 0) -> list[_Case]:
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
        _Case("Euclidean, not squared", (pairs, torch.tensor([0, 0, 1, 1]), 1.0),
              "d(a, b) is the Euclidean distance ||f(a) - f(b)||_2, not squared."),
        _Case("hardest positive = farthest", (line, torch.tensor([0, 0, 0, 1, 1, 1]), 2.0),
              "the hardest positive is the FARTHEST same-label image (max distance), the "
              "hardest negative the CLOSEST other-label image (min distance)."),
        _Case("large margin", (emb, lab, 5.0), "the margin m is added inside the hinge."),
        _Case("anchor without a positive", (emb, single, 0.5),
              "an anchor whose label appears once has no positive: leave it out of the mean "
              "(do not count it as 0)."),
        _Case("hand-made 2-D batch", (near, near_lab, 0.3),
              "an anchor must not be its own positive (distance 0)."),
        _Case("random PK batch", (emb, lab, 0.5),
              "for each anchor: hardest positive = FARTHEST same-label image (max distance), "
              "hardest negative = CLOSEST other-label image (min distance); Euclidean "
              "distance, not squared; loss = mean over anchors of [d_ap - d_an + m]_+."),
    ]


def check_triplet_loss(fn: Callable) -> CheckResult:
    """Eq. 4-5 with online hard mining: ``fn(embeddings, labels, margin)`` -> scalar."""
    from .losses import batch_hard_triplet_loss

    def ref(e, lab, m):
        return float(batch_hard_triplet_loss(e, lab, m))

    def as_float(expected, got):
        try:
            val = float(got.detach() if hasattr(got, "detach") else got)
        except (TypeError, ValueError):
            return f"expected a scalar loss, got {type(got).__name__}"
        return _compare_close(1e-6)(expected, val)

    return _run("check_triplet_loss (Eq. 4-5)", fn, ref, triplet_cases(),
                ("embeddings", "labels", "margin"), as_float)


# --------------------------------------------------------------------------------------
# Eq. 6-7
# --------------------------------------------------------------------------------------
def update_centers_cases(seed: int = 0) -> list[_Case]:
    """Inputs of :func:`check_update_centers`."""
    rng = np.random.default_rng(seed)
    c = rng.normal(size=(4, 3))
    x = rng.normal(size=(30, 3))
    lab = rng.integers(0, 4, 30)
    lab_empty = np.where(lab == 2, 0, lab)  # cluster 2 has no member
    one_c, one_x = np.zeros((1, 2)), np.array([[1.0, 0.0]])
    return [
        _Case("one centre, one member", (one_c, one_x, np.zeros(1, np.int64), 0.5, 1e-6),
              "c_k <- c_k - lambda_c * delta_c_k with delta_c_k built from (c_k - f(x_i)): "
              "the minus moves the centre TOWARDS its member (here to (0.5, 0))."),
        _Case("large beta", (c, x, lab, 0.5, 2.0),
              "beta belongs in the denominator of Eq. 6: beta + sum_i I(l_i = k)."),
        _Case("empty cluster", (c, x, lab_empty, 0.5, 1e-6),
              "a cluster with no member keeps its centre (numerator 0): avoid NaN from 0/0."),
        _Case("lambda_c = 1", (c, x, lab, 1.0, 1e-6),
              "with lambda_c = 1 (and tiny beta) every centre becomes its members' mean."),
        _Case("lambda_c = 0", (c, x, lab, 0.0, 1e-6), "with lambda_c = 0 nothing moves."),
        _Case("random", (c, x, lab, 0.5, 1e-6),
              "delta_c_k = sum_{i: l_i=k} (c_k - f(x_i)) / (beta + n_k); c_k <- c_k - "
              "lambda_c * delta_c_k (minus: the centre moves TOWARDS its members)."),
    ]


def check_update_centers(fn: Callable) -> CheckResult:
    """Eq. 6-7: ``fn(centers, features, labels, lambda_c, beta)`` -> new ``K x D`` centres."""
    from .clustering import update_centers

    return _run("check_update_centers (Eq. 6-7)", fn, update_centers, update_centers_cases(),
                ("centers", "features", "labels", "lambda_c", "beta"), _compare_close(1e-6))


# --------------------------------------------------------------------------------------
# pairwise precision
# --------------------------------------------------------------------------------------
def precision_cases(seed: int = 0) -> list[_Case]:
    """Inputs of :func:`check_pairwise_precision`."""
    rng = np.random.default_rng(seed)
    p = rng.integers(0, 5, 40)
    t = rng.integers(0, 8, 40)
    mask = rng.random(40) < 0.5
    return [
        _Case("random", (p, t), "precision = (#pairs with the same pseudo-label AND the same "
              "identity) / (#pairs with the same pseudo-label); a group of n has n(n-1)/2 pairs."),
        _Case("with a mask", (p, t), "count only the images where mask is True.",
              {"mask": mask}),
        _Case("perfect clustering", (t, t), "identical labellings have precision 1."),
        _Case("labels renamed", (t + 100, t), "only which images share a label matters, not "
              "the label values."),
        _Case("only singletons", (np.arange(6), np.zeros(6, np.int64)),
              "no two images share a pseudo-label: there is no pair, return nan (0/0)."),
    ]


def check_pairwise_precision(fn: Callable) -> CheckResult:
    """``fn(pseudo_labels, true_labels, mask=None)`` -> pairwise precision (nan if no pair)."""
    from .metrics import pairwise_precision

    return _run("check_pairwise_precision", fn, pairwise_precision, precision_cases(),
                ("pseudo_labels", "true_labels"), _compare_close(1e-9))


CHECKERS = {
    "assign": check_assign,
    "select_temporal": check_select_temporal,
    "triplet_loss": check_triplet_loss,
    "update_centers": check_update_centers,
    "pairwise_precision": check_pairwise_precision,
}

__all__ = ["CHECKERS", "CheckResult", "check_assign", "check_pairwise_precision",
           "check_select_temporal", "check_triplet_loss", "check_update_centers"]
