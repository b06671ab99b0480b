"""The student's own parts of the method, kept from the notebook where each was written.

When a student's ``my_assign`` (03), ``my_select_temporal`` (04), ``my_triplet_loss`` (05) or
``my_update_centers`` (06) passes its check, the checker keeps the function's source in
``<kit home>/my_parts/<part>.py``. Notebook 07 assembles Algorithm 1 from them with
:func:`load_parts`: each part is the student's when it was kept and still passes its check,
and the kit's own function otherwise, with the reason, so the notebook can say which ran.
"""

from __future__ import annotations

import inspect
import textwrap
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from ...infra.atomic_files import check_writable, write_text
from ...infra.errors import TCULError
from .checking import CheckResult

#: part -> (the notebook that writes it, the student's function name)
PARTS: dict[str, tuple[str, str]] = {
    "assign": ("03", "my_assign"),
    "select_temporal": ("04", "my_select_temporal"),
    "triplet_loss": ("05", "my_triplet_loss"),
    "update_centers": ("06", "my_update_centers"),
}
#: what a kept part's file starts with: the imports a notebook cell can assume
_HEADER = "import numpy as np\nimport torch\n\n\n"


def parts_dir(home: str | Path | None = None) -> Path:
    """``<home>/my_parts`` (default home: :func:`tcul_helpers.teaching.session.kit_home`);
    ``~/.tcul/my_parts`` when the home cannot be written to (a class's read-only shared
    home: each student's parts stay in the student's own folder)."""
    from ..session import kit_home

    base = Path(home if home is not None else kit_home())
    try:
        check_writable(base, "kit home")
    except TCULError:
        return Path.home() / ".tcul" / "my_parts"
    return base / "my_parts"


def keep_part(part: str, fn: Callable, home: str | Path | None = None) -> Path | None:
    """Keep the source of ``fn`` as the student's ``part``; ``None`` when its source cannot
    be read (a lambda, a built-in) or the folder cannot be written."""
    try:
        source = textwrap.dedent(inspect.getsource(fn))
    except (OSError, TypeError):
        return None
    name = PARTS[part][1]
    if getattr(fn, "__name__", name) != name:
        source += f"\n\n{name} = {fn.__name__}\n"
    path = parts_dir(home) / f"{part}.py"
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        write_text(path, _HEADER + source)
    except (OSError, TCULError):  # no folder to keep it in: the check's verdict stands
        return None
    return path


def keeping(part: str, checker: Callable[..., CheckResult]) -> Callable[..., CheckResult]:
    """``checker`` that also keeps the student's function when it passes."""
    def check(fn: Callable, *args, **kwargs) -> CheckResult:
        result = checker(fn, *args, **kwargs)
        if result.passed:
            keep_part(part, fn)
        return result
    check.__name__, check.__doc__ = checker.__name__, checker.__doc__
    check.__wrapped__ = checker  # type: ignore[attr-defined]
    return check


@dataclass(frozen=True)
class Part:
    """One part as it will run: the function, and whose it is (``yours`` / ``kit``)."""

    name: str
    fn: Callable
    whose: str
    why: str


def _kit(part: str) -> Callable:
    from ...method.assignment import assign_clusters
    from ...method.center_update import update_centers
    from ...method.selection import select_temporal
    from ...method.triplet_loss import batch_hard_triplet_loss

    return {"assign": assign_clusters, "select_temporal": select_temporal,
            "triplet_loss": batch_hard_triplet_loss, "update_centers": update_centers}[part]


def _differentiable(loss_fn: Callable) -> bool:
    """Whether a triplet loss lets gradients reach the embeddings (step (d) trains with it)."""
    import torch

    emb = torch.linspace(-1.0, 1.0, 24).reshape(6, 4).requires_grad_(True)
    try:
        loss = loss_fn(emb, torch.tensor([0, 0, 1, 1, 2, 2]), 10.0)
        loss.backward()
    except Exception:  # noqa: BLE001 - a student's function: any failure means no
        return False
    return emb.grad is not None and bool(torch.isfinite(emb.grad).all())


def load_parts(home: str | Path | None = None) -> dict[str, Part]:
    """Every part of :data:`PARTS`: the student's kept function when it loads and passes its
    check again, else the kit's (``why`` says which and why)."""
    from . import CHECKERS

    out: dict[str, Part] = {}
    for part, (nb, name) in PARTS.items():
        path = parts_dir(home) / f"{part}.py"
        if not path.is_file():
            out[part] = Part(name, _kit(part), "kit",
                             f"not passed in notebook {nb} yet: the kit's function runs")
            continue
        namespace: dict = {}
        try:
            exec(compile(path.read_text(encoding="utf-8"), str(path), "exec"), namespace)
            fn = namespace[name]
        except Exception as exc:  # noqa: BLE001 - a student's file: any failure falls back
            out[part] = Part(name, _kit(part), "kit",
                             f"yours from notebook {nb} does not load here "
                             f"({type(exc).__name__}: {exc}); the kit's function runs")
            continue
        check = CHECKERS[part]
        verdict = getattr(check, "__wrapped__", check)(fn)
        trains = part != "triplet_loss" or _differentiable(fn)
        if verdict.passed and not trains:
            out[part] = Part(name, _kit(part), "kit",
                             f"yours from notebook {nb} passes its check but gives no gradient "
                             "(keep the computation in torch, no .item() or numpy): the kit's "
                             "function runs")
        elif verdict.passed:
            out[part] = Part(name, fn, "yours", f"yours, from notebook {nb}")
        else:
            out[part] = Part(name, _kit(part), "kit",
                             f"yours from notebook {nb} no longer passes its check; the kit's "
                             "function runs")
    return out


__all__ = ["PARTS", "Part", "keep_part", "keeping", "load_parts", "parts_dir"]
