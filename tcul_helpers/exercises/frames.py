"""Checker of Market-1501's frame linearisation (notebook 08): the frame id ``fid(x)`` that
Eq. 3 compares, from a file name."""

from __future__ import annotations

from collections.abc import Callable

from ..data import SEQUENCE_STRIDE, market_frame, parse_market_name
from .checking import Case, CheckResult, Mistake, run_checks


def linear_frame(name: str) -> tuple[int, int, int]:
    """The kit's answer: ``(pid, camid, (sequence - 1) * SEQUENCE_STRIDE + raw_frame)``."""
    pid, cam, seq, raw = parse_market_name(name)
    return pid, cam, market_frame(seq, raw)


def _parts(name: str) -> tuple[int, int, int, int]:
    return parse_market_name(name)


FRAME_MISTAKES = [
    Mistake("the sequence ignored: raw frame counters of different sequences compared",
            lambda n: (_parts(n)[0], _parts(n)[1], _parts(n)[3])),
    Mistake("sequences counted from 0: s1 starts at SEQUENCE_STRIDE instead of 0",
            lambda n: (_parts(n)[0], _parts(n)[1], _parts(n)[2] * SEQUENCE_STRIDE + _parts(n)[3])),
    Mistake("the bounding-box number (the last field) read as the frame",
            lambda n: (_parts(n)[0], _parts(n)[1], int(n.rsplit(".", 1)[0].rsplit("_", 1)[1]))),
    Mistake("the pid's minus sign dropped (Market's distractors have pid -1)",
            lambda n: (abs(_parts(n)[0]),) + linear_frame(n)[1:]),
]


def _compare(expected, got) -> str | None:
    try:
        g = tuple(int(v) for v in got)
    except (TypeError, ValueError):
        return f"expected a tuple (pid, camid, frame) of integers, got {got!r}"
    if len(g) != 3:
        return f"expected 3 values (pid, camid, frame), got {len(g)}"
    fields = ("pid", "camid", "frame")
    bad = [f"{f}: expected {e}, got {v}" for f, e, v in zip(fields, expected, g, strict=True)
           if e != v]
    return "; ".join(bad) or None


def frame_cases() -> list[Case]:
    """Inputs of :func:`check_market_frame` (one file name each)."""
    rule = (f"frame = (sequence - 1) * {SEQUENCE_STRIDE:_} + raw frame: the 6-digit field after "
            "cCsS is the frame, S the sequence (from 1).")
    return [
        Case("a second sequence", ("0002_c1s2_000051_01.jpg",),
             "the frame counter restarts in every sequence sS: lay the sequences end to end, "
             + rule),
        Case("the first sequence", ("0002_c1s1_000451_03.jpg",),
             "sequence s1 starts at frame 0: " + rule),
        Case("a distractor (pid -1)", ("-1_c3s1_000401_02.jpg",),
             "Market's distractors have pid -1: keep the sign."),
        Case("two-digit box, camera 6, sequence 6", ("1501_c6s6_012345_07.jpg",),
             "read the camera after 'c' and the sequence after 's': " + rule),
        Case("random-looking name", ("0777_c4s3_123456_02.jpg",), rule),
    ]


def check_market_frame(fn: Callable) -> CheckResult:
    """``fn(file_name)`` -> ``(pid, camid, frame)`` with Market-1501's sequences laid end to
    end: ``frame = (sequence - 1) * SEQUENCE_STRIDE + raw_frame`` (``SEQUENCE_STRIDE`` =
    2,000,000, far beyond any lambda_fr)."""
    return run_checks("check_market_frame (fid(x) for Market-1501)", fn, linear_frame,
                      frame_cases(), ("file_name",), _compare, FRAME_MISTAKES)
