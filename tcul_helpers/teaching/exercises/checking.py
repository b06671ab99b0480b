"""The checkers' machinery: a student's function against the kit's reference, case by case."""


from __future__ import annotations

import html
from collections.abc import Callable, Sequence
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
class Case:
    """One input of a checker: ``args`` (and ``kwargs``) for the student's function, and the
    ``hint`` shown when the function gets this case wrong."""

    name: str
    args: tuple
    hint: str
    kwargs: dict | None = None


@dataclass(frozen=True)
class Mistake:
    """A common wrong answer, written out: ``fn`` has the student's signature. When the
    student's output equals ``fn``'s on a failing case, the checker names the mistake."""

    name: str
    fn: Callable


def fmt(x: Any, limit: int = 12) -> str:
    """A short printable form of a checker's input or output."""
    if hasattr(x, "detach"):
        x = x.detach().cpu().numpy()
    if isinstance(x, np.ndarray):
        flat = np.round(x, 4) if np.issubdtype(x.dtype, np.floating) else x
        text = np.array2string(flat, threshold=limit, edgeitems=3, separator=", ")
        return f"array{tuple(x.shape)} {text}"
    if isinstance(x, float):
        return f"{x:.6g}"
    return repr(x)


def copy_args(args: tuple) -> tuple:
    """Fresh copies of tensors, arrays and probes (anything with ``fresh()``)."""
    out = []
    for a in args:
        if hasattr(a, "fresh"):
            out.append(a.fresh())
        elif hasattr(a, "clone"):
            out.append(a.clone())
        elif isinstance(a, np.ndarray):
            out.append(a.copy())
        else:
            out.append(a)
    return tuple(out)


def describe(case: Case, names: tuple[str, ...]) -> str:
    """The case's inputs, one ``name = value`` per line."""
    parts = [f"{n} = {fmt(a)}" for n, a in zip(names, case.args, strict=False)]
    return "\n  ".join(parts)


def recognise(got: Any, case: Case, mistakes: Sequence[Mistake],
              compare: Callable[[Any, Any], str | None]) -> Mistake | None:
    """The first of ``mistakes`` whose output on ``case`` equals the student's ``got``."""
    for mistake in mistakes:
        try:
            wrong = mistake.fn(*copy_args(case.args), **(case.kwargs or {}))
        except Exception:  # noqa: BLE001 - a mistake that cannot run this case is no match
            continue
        if compare(wrong, got) is None:
            return mistake
    return None


def run_checks(name: str, fn: Callable, ref: Callable, cases: list[Case], names: tuple[str, ...],
               compare: Callable[[Any, Any], str | None],
               mistakes: Sequence[Mistake] = ()) -> CheckResult:
    """Run ``fn`` and ``ref`` on every case (targeted cases first, ``random*`` last) and
    stop at the first difference: its message names the case, the input, the expected and
    obtained values, the case's hint and, when the output is one of ``mistakes``'s, the
    mistake by name."""
    if not callable(fn):
        return CheckResult(False, f"expected a function, got {type(fn).__name__}", name)
    # the targeted cases run first: a typical mistake then meets the case made for it and
    # its hint, not the generic checklist of a random input
    cases = sorted(cases, key=lambda c: c.name.startswith("random"))
    for i, case in enumerate(cases, 1):
        kwargs = case.kwargs or {}
        expected = ref(*copy_args(case.args), **kwargs)
        args = copy_args(case.args)
        try:
            got = fn(*args, **kwargs)
        except NotImplementedError:
            return CheckResult(False, "not implemented yet: replace `raise NotImplementedError` "
                                      "with your code and run this cell again.", name)
        except Exception as exc:  # noqa: BLE001 - reported to the student
            return CheckResult(
                False,
                f"case {i}/{len(cases)} ({case.name}) raised {type(exc).__name__}: {exc}\n"
                f"input:\n  {describe(case, names)}\nhint: {case.hint}", name)
        for a, b in zip(args, case.args, strict=False):  # inputs must not be modified
            if isinstance(b, np.ndarray) and not np.array_equal(a, b, equal_nan=True):
                return CheckResult(False, f"case {i} ({case.name}): your function modified its "
                                          "input arrays in place; work on a copy.", name)
        problem = compare(expected, got)
        if problem:
            known = recognise(got, case, mistakes, compare)
            named = f"recognised mistake: {known.name}\n" if known else ""
            return CheckResult(
                False,
                f"{named}case {i}/{len(cases)} ({case.name}) differs: {problem}\n"
                f"input:\n  {describe(case, names)}\n"
                f"expected: {fmt(expected)}\ngot:      {fmt(got)}\nhint: {case.hint}", name)
    return CheckResult(True, f"all {len(cases)} cases agree with the reference "
                             f"({', '.join(c.name for c in cases)}).", name, len(cases))


def to_np(x: Any) -> np.ndarray:
    """``x`` (tensor, list or array) as a NumPy array."""
    if hasattr(x, "detach"):
        x = x.detach().cpu().numpy()
    return np.asarray(x)


def compare_exact(expected: Any, got: Any) -> str | None:
    """``None`` when ``got`` equals ``expected`` entry by entry, else what differs."""
    e, g = to_np(expected), to_np(got)
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


def compare_close(tol: float) -> Callable[[Any, Any], str | None]:
    """A comparison that accepts relative differences up to ``tol`` (nan equals nan)."""
    def compare(expected: Any, got: Any) -> str | None:
        e, g = to_np(expected).astype(np.float64), to_np(got)
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

