"""The exercise checkers accept the instructors' solutions and catch typical mistakes."""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path

import numpy as np
import pytest
import torch

from tcul_helpers.method.center_update import update_centers
from tcul_helpers.method.selection import temporal_anchors
from tcul_helpers.teaching import exercises as ex

SOLUTIONS = Path(__file__).resolve().parents[1] / "notebooks" / "solutions"


@pytest.fixture(autouse=True)
def _home(tmp_path, monkeypatch):
    """A passing check keeps the student's part under the kit home: a temporary one here."""
    monkeypatch.setenv("TCUL_HOME", str(tmp_path))
    return tmp_path


def _solution(name: str, func: str):
    sys.path.insert(0, str(SOLUTIONS))  # tcul_iteration.py assembles its siblings
    try:
        spec = importlib.util.spec_from_file_location(f"sol_{name}", SOLUTIONS / f"{name}.py")
        mod = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(mod)
    finally:
        sys.path.remove(str(SOLUTIONS))
    return getattr(mod, func)


CASES = [
    (ex.check_assign, "assign", "my_assign"),
    (ex.check_select_temporal, "select_temporal", "my_select_temporal"),
    (ex.check_triplet_loss, "triplet_loss", "my_triplet_loss"),
    (ex.check_update_centers, "update_centers", "my_update_centers"),
    (ex.check_pairwise_precision, "pairwise_precision", "my_pairwise_precision"),
    (ex.check_select_similarity, "select_similarity", "my_select_similarity"),
    (ex.check_pm_batch, "pm_batch", "my_pm_batch"),
    (ex.check_market_frame, "market_frame", "my_market_frame"),
    (ex.check_tcul_iteration, "tcul_iteration", "my_tcul_iteration"),
]


@pytest.mark.parametrize(("checker", "module", "func"), CASES, ids=[c[1] for c in CASES])
def test_solutions_pass(checker, module, func):
    if not SOLUTIONS.is_dir():  # an instructor's student copy has no solutions
        pytest.skip("notebooks/solutions/ is not here (a student copy)")
    res = checker(_solution(module, func))
    assert res.passed, res.message
    assert "all" in res.message and res.n_cases >= 4
    assert "passed" in res._repr_html_() and "PASSED" in str(res)


@pytest.mark.parametrize(("checker", "module", "func"), CASES, ids=[c[1] for c in CASES])
def test_package_reference_passes(checker, module, func):
    from tcul_helpers.measurement import metrics
    from tcul_helpers.method import assignment, center_update, selection
    from tcul_helpers.method import triplet_loss as losses
    from tcul_helpers.teaching.exercises.frames import linear_frame
    from tcul_helpers.teaching.exercises.iteration import tcul_iteration
    from tcul_helpers.training.sampler import IdentitySampler

    def kit_pm_batch(labels, P, M, rng):
        return IdentitySampler(labels, P, M, seed=int(rng.integers(2**31))).batches()[0]

    ref = {"assign": assignment.assign_clusters, "select_temporal": selection.select_temporal,
           "triplet_loss": losses.batch_hard_triplet_loss,
           "update_centers": center_update.update_centers,
           "pairwise_precision": metrics.pairwise_precision,
           "select_similarity": selection.select_by_similarity,
           "pm_batch": kit_pm_batch, "market_frame": linear_frame,
           "tcul_iteration": tcul_iteration}[module]
    res = checker(ref)
    assert res.passed, res.message


ALL_MISTAKES = [(name, m) for name, ms in ex.MISTAKES.items() for m in ms]


@pytest.mark.parametrize(("name", "mistake"), ALL_MISTAKES,
                         ids=[f"{n}: {m.name[:40]}" for n, m in ALL_MISTAKES])
def test_every_listed_mistake_is_recognised_by_name(name, mistake):
    """Each common wrong answer fails its checker, and the message names that mistake."""
    res = ex.CHECKERS[name](mistake.fn)
    assert not res.passed, f"{mistake.name!r} passes {name}'s checker"
    assert f"recognised mistake: {mistake.name}" in res.message, res.message


def test_every_checker_but_pk_lists_its_mistakes():
    assert set(ex.MISTAKES) == set(ex.CHECKERS) - {"pm_batch"}
    assert all(len(ms) >= 3 for ms in ex.MISTAKES.values())


@pytest.mark.parametrize("checker", [c[0] for c in CASES])
def test_stub_reports_not_implemented(checker):
    def stub(*args, **kwargs):
        raise NotImplementedError

    res = checker(stub)
    assert not res.passed and "not implemented yet" in res.message
    assert "not yet" in res._repr_html_()


def test_assign_argmin_is_caught():
    def wrong(x, c):
        xu = x / np.linalg.norm(x, axis=1, keepdims=True)
        cu = c / np.linalg.norm(c, axis=1, keepdims=True)
        return np.argmin(xu @ cu.T, axis=1)

    res = ex.check_assign(wrong)
    assert not res.passed
    assert "case 1/" in res.message and "expected" in res.message and "argmax" in res.message
    assert "(each image on its own centre)" in res.message  # the case made for this mistake


def test_assign_dot_product_is_caught():
    res = ex.check_assign(lambda x, c: np.argmax(x @ c.T, axis=1))
    assert not res.passed and "|f(x_i)| |c_k|" in res.message


def test_select_strict_inequality_is_caught():
    def strict(f, lab, c, cams, fr, lam):
        sel = temporal_anchors(f, lab, c, cams, fr, lam)
        return sel.frame_distance < lam

    res = ex.check_select_temporal(strict)
    assert not res.passed
    assert "(frames exactly lambda_fr away)" in res.message and "use <=, not <" in res.message


def test_select_ignoring_cameras_is_caught():
    def no_cams(f, lab, c, cams, fr, lam):
        return temporal_anchors(f, lab, c, np.zeros_like(cams), fr, lam).kept

    res = ex.check_select_temporal(no_cams)
    assert not res.passed and "(cluster in one camera only)" in res.message
    assert "inside one camera" in res.message


def test_select_least_similar_anchor_is_caught():
    def argmin_anchor(f, lab, c, cams, fr, lam):
        return temporal_anchors(-np.asarray(f), lab, c, cams, fr, lam).kept

    res = ex.check_select_temporal(argmin_anchor)
    assert not res.passed and "(anchor = the most similar image)" in res.message
    assert "not argmin" in res.message


def test_update_forgetting_beta_is_caught():
    def no_beta(c, x, lab, lam, beta):
        return update_centers(c, x, lab, lam, 1e-12)

    res = ex.check_update_centers(no_beta)
    assert not res.passed and "large beta" in res.message and "beta" in res.message


def test_update_wrong_sign_is_caught():
    def plus(c, x, lab, lam, beta):
        return 2 * np.asarray(c) - update_centers(c, x, lab, lam, beta)

    res = ex.check_update_centers(plus)
    assert not res.passed and "TOWARDS" in res.message


def test_update_modifying_input_is_caught():
    def in_place(c, x, lab, lam, beta):
        c[:] = update_centers(c, x, lab, lam, beta)
        return c

    res = ex.check_update_centers(in_place)
    assert not res.passed and "in place" in res.message


def test_triplet_squared_distance_is_caught():
    def squared(e, lab, m):
        lab = torch.as_tensor(lab)
        d = torch.cdist(e, e) ** 2
        same = lab[:, None] == lab[None, :]
        pos = same & ~torch.eye(len(lab), dtype=torch.bool)
        d_ap = d.masked_fill(~pos, float("-inf")).max(1).values
        d_an = d.masked_fill(same, float("inf")).min(1).values
        ok = pos.any(1)
        return torch.relu(d_ap[ok] - d_an[ok] + m).mean()

    res = ex.check_triplet_loss(squared)
    assert not res.passed and "not squared" in res.message


def test_triplet_easiest_positive_is_caught():
    def easy(e, lab, m):
        lab = torch.as_tensor(lab)
        d = torch.cdist(e, e)
        same = lab[:, None] == lab[None, :]
        pos = same & ~torch.eye(len(lab), dtype=torch.bool)
        d_ap = d.masked_fill(~pos, float("inf")).min(1).values
        d_an = d.masked_fill(same, float("inf")).min(1).values
        ok = pos.any(1)
        return torch.relu(d_ap[ok] - d_an[ok] + m).mean()

    res = ex.check_triplet_loss(easy)
    assert not res.passed and "FARTHEST" in res.message


def test_precision_counting_singletons_as_zero_is_caught():
    from tcul_helpers.measurement.metrics import pairwise_precision

    def zero(p, t, mask=None):
        v = pairwise_precision(p, t, mask)
        return 0.0 if np.isnan(v) else v

    res = ex.check_pairwise_precision(zero)
    assert not res.passed and "only singletons" in res.message and "nan" in res.message


def test_exception_is_reported_not_raised():
    def broken(x, c):
        raise ValueError("shapes do not match")

    res = ex.check_assign(broken)
    assert not res.passed and "ValueError: shapes do not match" in res.message


def test_not_a_function():
    assert not ex.check_assign(42).passed


def test_similarity_strict_threshold_case_is_exact():
    from tcul_helpers.method.selection import select_by_similarity
    from tcul_helpers.teaching.exercises.selection import select_similarity_cases

    case = next(c for c in select_similarity_cases() if "threshold" in c.name)
    kept = select_by_similarity(*case.args)
    assert kept.tolist() == [False, True, False]  # cos 0.6 at threshold 0.6 is not kept


def _pm(mode):
    def batch(labels, P, M, rng):
        labels = np.asarray(labels)
        ids = np.unique(labels)
        chosen = ids[:P] if mode == "first labels" else rng.choice(ids, P, replace=False)
        out = []
        for lab in chosen:
            pool = np.flatnonzero(labels == lab)
            if mode == "with replacement":
                out.extend(rng.choice(pool, M, replace=True))
            elif mode == "first images":
                out.extend(np.resize(pool, M))
            elif mode == "too few":
                out.extend(rng.choice(pool, min(M, len(pool)), replace=False))
            else:  # a right draw of M images
                out.extend(rng.choice(pool, M, replace=len(pool) < M) if len(pool) < M
                           else rng.choice(pool, M, replace=False))
                if len(pool) < M:
                    out[-M:] = list(pool) + list(rng.choice(pool, M - len(pool)))
        return np.array(out)
    return batch


@pytest.mark.parametrize(("mode", "message"), [
    ("with replacement", "draw without replacement"),
    ("first labels", "recognised mistake: the same labels in every batch"),
    ("first images", "recognised mistake: the same images of a label in every batch"),
    ("too few", "repeat some of its images"),
])
def test_pk_checker_names_the_wrong_sampler(mode, message):
    res = ex.check_pm_batch(_pm(mode))
    assert not res.passed and message in res.message, res.message


def test_iteration_checker_reports_wrong_label_count():
    from tcul_helpers.method.assignment import assign_clusters

    def all_labels(z, c, cams, fr, ft, lam_fr, lam_c, beta):
        labels = assign_clusters(z, c)
        return labels, None, None, ft(np.arange(3), labels)

    res = ex.check_tcul_iteration(all_labels)
    assert not res.passed and "labels[index]" in res.message


def test_student_copy_without_solutions(tmp_path):
    """An instructor deletes notebooks/solutions/ for the student copy: the exercise tests
    then skip the solutions with a reason and everything else passes, and no notebook
    imports from the solutions."""
    import json
    import shutil
    import subprocess

    repo = Path(__file__).resolve().parents[1]
    copy = tmp_path / "student-kit"
    (copy / "tests").mkdir(parents=True)
    (copy / "notebooks").mkdir()
    shutil.copy(repo / "tests" / "test_exercises.py", copy / "tests")
    proc = subprocess.run([sys.executable, "-m", "pytest", "-q", "-rs", "-p", "no:cacheprovider",
                           "-k", "not student_copy",  # this test would run itself again
                           str(copy / "tests" / "test_exercises.py")],
                          capture_output=True, text=True, cwd=copy, timeout=300)
    tail = proc.stdout.strip().splitlines()[-1]
    assert proc.returncode == 0, proc.stdout[-3000:]
    assert "skipped" in tail and "failed" not in tail, tail
    assert "notebooks/solutions/ is not here (a student copy)" in proc.stdout
    for nb in sorted((repo / "notebooks").glob("*.ipynb")):
        code = "".join("".join(c["source"]) for c in json.loads(nb.read_text())["cells"]
                       if c["cell_type"] == "code")
        assert "solutions" not in code, f"{nb.name} needs notebooks/solutions/"


# ----------------------------------------------------------------- the student's own parts
def test_a_passing_part_is_kept_and_runs_in_notebook_07(_home):
    """A part that passes its check is kept; load_parts gives it back as the student's, and
    the kit's function stands in for the parts not passed yet, saying so."""
    from tcul_helpers.method.assignment import assign_clusters
    from tcul_helpers.teaching.exercises.my_parts import load_parts, parts_dir

    before = load_parts()
    assert all(p.whose == "kit" and "not passed" in p.why for p in before.values())

    def my_assign(features, centers):
        f = features / np.linalg.norm(features, axis=1, keepdims=True)
        c = centers / np.linalg.norm(centers, axis=1, keepdims=True)
        return np.argmax(f @ c.T, axis=1)

    assert ex.check_assign(my_assign)
    assert (parts_dir() / "assign.py").is_file() and parts_dir().parent == _home
    parts = load_parts()
    assert parts["assign"].whose == "yours" and parts["assign"].fn is not assign_clusters
    z = np.random.default_rng(0).normal(size=(30, 4))
    c = z[:5]
    np.testing.assert_array_equal(parts["assign"].fn(z, c), assign_clusters(z, c))
    assert parts["select_temporal"].whose == "kit"


def test_a_failing_part_is_not_kept(_home):
    from tcul_helpers.teaching.exercises.my_parts import parts_dir

    def my_assign(features, centers):
        return np.argmin(features @ centers.T, axis=1)  # argmin: a recognised mistake

    assert not ex.check_assign(my_assign)
    assert not (parts_dir() / "assign.py").exists()


def test_a_kept_part_that_breaks_falls_back_with_the_reason(_home):
    from tcul_helpers.teaching.exercises.my_parts import load_parts, parts_dir

    parts_dir().mkdir(parents=True)
    (parts_dir() / "assign.py").write_text("def my_assign(features, centers):\n"
                                           "    return helper(features)\n")
    (parts_dir() / "update_centers.py").write_text("def my_update_centers(*a):\n    return 0\n")
    (parts_dir() / "select_temporal.py").write_text("def (:")
    parts = load_parts()
    assert parts["assign"].whose == "kit" and "no longer passes" in parts["assign"].why
    assert parts["update_centers"].whose == "kit"
    assert parts["select_temporal"].whose == "kit" and "SyntaxError" in parts["select_temporal"].why


def test_a_triplet_loss_without_gradient_does_not_train(_home):
    """A loss that passes on values but leaves torch (``.item()``) cannot train step (d)."""
    from tcul_helpers.teaching.exercises.my_parts import load_parts

    def good(embeddings, labels, margin):
        d = torch.cdist(embeddings, embeddings)
        same = labels[:, None] == labels[None, :]
        eye = torch.eye(len(labels), dtype=torch.bool)
        pos = (same & ~eye).any(1) & (~same).any(1)
        d_ap = torch.where(same & ~eye, d, torch.full_like(d, -1e9)).max(1).values
        d_an = torch.where(~same, d, torch.full_like(d, 1e9)).min(1).values
        return torch.relu(d_ap - d_an + margin)[pos].mean()

    # written out again, not calling good(): a kept part is saved alone, without its
    # notebook's other names, and must load by itself
    def my_triplet_loss(embeddings, labels, margin):  # the same loss, through .item()
        d = torch.cdist(embeddings, embeddings)
        same = labels[:, None] == labels[None, :]
        eye = torch.eye(len(labels), dtype=torch.bool)
        pos = (same & ~eye).any(1) & (~same).any(1)
        d_ap = torch.where(same & ~eye, d, torch.full_like(d, -1e9)).max(1).values
        d_an = torch.where(~same, d, torch.full_like(d, 1e9)).min(1).values
        return torch.tensor(torch.relu(d_ap - d_an + margin)[pos].mean().item())

    assert ex.check_triplet_loss(my_triplet_loss)
    part = load_parts()["triplet_loss"]
    assert part.whose == "kit" and "no gradient" in part.why
    assert ex.check_triplet_loss(good)
    assert load_parts()["triplet_loss"].whose == "yours"
