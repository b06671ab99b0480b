"""The one formatter of scores for people (tables, log lines, the report)."""

from __future__ import annotations

import math

import numpy as np

from tcul_helpers.infra.formatting import number


def test_number_rounds_and_marks_what_is_missing():
    assert number(64.449) == "64.4" and number(np.float32(0.5), 3) == "0.500"
    assert number(7, 0) == "7"
    assert number(None) == number(math.nan) == number(math.inf) == "n/a"
    assert number(None, missing="-") == "-"
