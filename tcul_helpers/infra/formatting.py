"""How the kit writes a score for people: the command line's tables, the demo's log and
the report all print a metric through :func:`number`."""

from __future__ import annotations

import math
from typing import Any


def number(value: Any, digits: int = 1, missing: str = "n/a") -> str:
    """``value`` with ``digits`` decimals (``64.4``); ``missing`` when it is None or not a
    finite number (a score that was not computed, or a precision with no pair to count)."""
    if value is None:
        return missing
    v = float(value)
    return f"{v:.{digits}f}" if math.isfinite(v) else missing
