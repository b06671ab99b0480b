"""Checker of one whole iteration of Algorithm 1 (notebook 07), steps (b) to (e):

    (b) l_i = argmax_k cos(z_i, c_k)                Eq. 1-2
    (c) D = Eq. 3's reliable images
    (d) fine-tune on D with their pseudo-labels      Eq. 4-5 (done by ``finetune``), which
        returns z'_i, the fine-tuned model's features (step (a) of the next iteration)
    (e) c_k <- c_k - lambda_c * delta_c_k            Eq. 6-7 with z' and this iteration's l_i

The student's ``fn(features, centers, camids, frames, finetune, lambda_fr, lambda_c, beta)``
returns ``(labels, kept, new_centers, new_features)``; ``finetune(index, pseudo_labels)``
fine-tunes on the images ``index`` and returns every image's new features. The checker
passes a :class:`FakeFinetune` whose "training" is a fixed, known move of the features, so
the whole iteration has one right answer.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np

from ...method.assignment import assign_clusters
from ...method.center_update import update_centers
from ...method.iteration import tcul_iteration
from ...method.selection import select_temporal
from .checking import Case, CheckResult, Mistake, compare_close, compare_exact, run_checks


class FakeFinetune:
    """Stands in for step (d): each pseudo-identity's trained images move halfway to their
    mean, every image shifts a little, rows are re-normalised. Records its calls."""

    def __init__(self, features: np.ndarray) -> None:
        self.features = np.asarray(features, dtype=np.float64)
        self.calls: list[tuple[np.ndarray, np.ndarray]] = []

    def __repr__(self) -> str:
        return f"FakeFinetune(over {len(self.features)} images)"

    def fresh(self) -> FakeFinetune:
        """A new fake over the same features, with no call recorded."""
        return FakeFinetune(self.features)

    def __call__(self, index, pseudo_labels) -> np.ndarray:
        index, pseudo_labels = np.asarray(index).reshape(-1), np.asarray(pseudo_labels).reshape(-1)
        if len(index) != len(pseudo_labels):
            raise ValueError(f"finetune got {len(index)} images but {len(pseudo_labels)} "
                             "pseudo-labels: give the labels of the images you train on, "
                             "labels[index]")
        if self.calls:
            raise ValueError("finetune was called twice: an iteration fine-tunes once")
        self.calls.append((index.copy(), pseudo_labels.copy()))
        z = self.features.copy()
        for lab in np.unique(pseudo_labels):
            members = index[pseudo_labels == lab]
            z[members] = 0.5 * z[members] + 0.5 * z[members].mean(0)
        z += 0.1 * np.linspace(1.0, -1.0, z.shape[1])
        return z / np.linalg.norm(z, axis=1, keepdims=True)


def _variant(*, train_all=False, old_features=False, reassign=False, kept_only=False,
             stale=False):
    def wrong(z, c, cams, fr, ft, lam_fr, lam_c, beta):
        labels = assign_clusters(z, c)
        kept = select_temporal(z, labels, c, cams, fr, lam_fr)
        index = np.arange(len(labels)) if train_all else np.flatnonzero(kept)
        z2 = ft(index, labels[index])
        used = z if old_features else z2
        lab = assign_clusters(z2, c) if reassign else labels
        if kept_only:
            new_c = update_centers(c, used[kept], lab[kept], lam_c, beta)
        else:
            new_c = update_centers(c, used, lab, lam_c, beta)
        return labels, kept, new_c, (z if stale else z2)
    return wrong


ITERATION_MISTAKES = [
    Mistake("fine-tuned on every image instead of the reliable ones (step (d) trains on D)",
            _variant(train_all=True)),
    Mistake("centres updated with the features from BEFORE fine-tuning (Eq. 6-7 uses the "
            "fine-tuned model's features)", _variant(old_features=True)),
    Mistake("labels re-assigned after fine-tuning before the update (Eq. 6-7 uses this "
            "iteration's labels l_i)", _variant(reassign=True)),
    Mistake("centres updated from the reliable images only (Eq. 6 sums over every image with "
            "l_i = k)", _variant(kept_only=True)),
    Mistake("the features from before fine-tuning returned: the next iteration must start from "
            "the fine-tuned model's features", _variant(stale=True)),
]


def _compare(expected, got) -> str | None:
    if not isinstance(got, tuple | list) or len(got) != 4:
        return "return four things: (labels, kept, new_centers, new_features)"
    for what, cmp, e, g in zip(("labels", "kept", "new_centers", "new_features"),
                               (compare_exact, compare_exact, compare_close(1e-6),
                                compare_close(1e-6)), expected, got, strict=True):
        problem = cmp(e, g)
        if problem:
            return f"{what}: {problem}"
    return None


def iteration_cases(seed: int = 0) -> list[Case]:
    """Inputs of :func:`check_tcul_iteration`: two small camera networks."""
    out = []
    for i, (n, k, d) in enumerate(((24, 3, 4), (40, 5, 6), (30, 4, 3), (16, 6, 5))):
        rng = np.random.default_rng(seed + i)
        z = rng.normal(size=(n, d))
        z /= np.linalg.norm(z, axis=1, keepdims=True)
        c = z[rng.choice(n, k, replace=False)] + 0.05 * rng.normal(size=(k, d))
        cams = rng.integers(1, 3, n)
        fr = rng.integers(0, 300, n)
        out.append(Case(f"network {i + 1}: {n} images, K = {k}",
                        (z, c, cams, fr, FakeFinetune(z), 60, 0.5, 1e-6),
                        "follow lines (b) to (e) of Algorithm 1 in their order. Which images "
                        "does step (d) train on, and with which labels? Which features does "
                        "Eq. 6 average (before or after fine-tuning), and over which images? "
                        "What must the next iteration receive?"))
    return out


def check_tcul_iteration(fn: Callable) -> CheckResult:
    """One iteration of Algorithm 1: ``fn(features, centers, camids, frames, finetune,
    lambda_fr, lambda_c, beta)`` -> ``(labels, kept, new_centers, new_features)``, held
    against the kit's own :func:`tcul_helpers.method.iteration.tcul_iteration`."""
    return run_checks("check_tcul_iteration (Algorithm 1, steps b-e)", fn, tcul_iteration,
                      iteration_cases(), ("features", "centers", "camids", "frames", "finetune",
                                          "lambda_fr", "lambda_c", "beta"),
                      _compare, ITERATION_MISTAKES)
