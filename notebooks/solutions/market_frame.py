"""Instructor solution: Market-1501's frame id, sequences laid end to end (notebook 01)."""

import re
from pathlib import Path

STRIDE = 2_000_000  # raw frames have six digits: consecutive sequences stay >= 1e6 apart


def my_market_frame(file_name):
    """``PPPP_cCsS_FFFFFF_BB.jpg`` -> (pid, camid, (S - 1) * STRIDE + FFFFFF)."""
    m = re.match(r"^(-?\d+)_c(\d+)s(\d+)_(\d+)_(\d+)$", Path(file_name).stem)
    pid, cam, seq, raw, _box = (int(g) for g in m.groups())
    return pid, cam, (seq - 1) * STRIDE + raw
