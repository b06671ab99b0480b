"""The kit's one-line errors in a notebook's words.

A message names its fix as the command line spells it (``--fresh``, ``--out / --runs``,
``--set key=value``); a notebook has no command line. :func:`in_notebook_terms` rewrites
those fixes into what a notebook can do (``lab.run(..., fresh=True)``,
``LabSession(home=...)``, ``LabSession(..., key=value)``) for every error a
:class:`~tcul_helpers.teaching.session.LabSession` method raises.
"""

from __future__ import annotations

import functools
import re
from collections.abc import Callable
from typing import Any, TypeVar

from ..infra.errors import TCULError

F = TypeVar("F", bound=Callable[..., Any])

HOME_FIX = "LabSession(home=...) or the TCUL_HOME environment variable"


def notebook_message(message: str, variant: str = "tcul") -> str:
    """``message`` with each command-line fix replaced by the notebook's (``variant``: the
    run a ``fresh=True`` would start over)."""
    message = message.replace("(--out / --runs)", f"({HOME_FIX})")
    message = message.replace("(--out DIR)", f"({HOME_FIX})")
    message = message.replace("(--fresh)", f"(lab.run({variant!r}, fresh=True))")

    def setting(m: re.Match) -> str:
        value = m.group(2)
        if value in ("true", "false"):
            value = value.title()
        elif not re.fullmatch(r"-?[\d.e+-]+", value):
            value = f'"{value}"'
        return f"LabSession(..., {m.group(1)}={value})"
    return re.sub(r"--set (\w+)=([^\s),;]+)", setting, message)


def in_notebook_terms(method: F) -> F:
    """Decorate a :class:`LabSession` method: a :class:`TCULError` it raises is raised again,
    same type, with :func:`notebook_message` (the variant is the call's first text argument
    or ``variant=``)."""
    @functools.wraps(method)
    def wrapper(self: Any, *args: Any, **kwargs: Any) -> Any:
        try:
            return method(self, *args, **kwargs)
        except TCULError as exc:
            variant = kwargs.get("variant", args[0] if args and isinstance(args[0], str)
                                 else "tcul")
            raise type(exc)(notebook_message(str(exc), variant)) from None
    return wrapper  # type: ignore[return-value]


__all__ = ["HOME_FIX", "in_notebook_terms", "notebook_message"]
