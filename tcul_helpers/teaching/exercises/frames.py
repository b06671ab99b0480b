"""Checker of Market-1501's frame linearisation (notebook 08): the frame id ``fid(x)`` that
Eq. 3 compares, from a file name."""

from __future__ import annotations

from collections.abc import Callable

from ...data.readers import SEQUENCE_STRIDE, market_frame, parse_market_name
from .checking import Case, CheckResult, Mistake, run_checks


def linear_frame(name: str) -> tuple[int, int, int]:
    """The kit's answer: ``(pid, camid, (sequence - 1) * SEQUENCE_STRIDE + raw_frame)``."""
    pid, cam, seq, raw = parse_market_name(name)
    return pid, cam, market_frame(seq, raw)


def _raw_frame(name: str) -> tuple[int, int, int]:
    pid, cam, _seq, raw = parse_market_name(name)
    return pid, cam, raw


def _sequence_from_zero(name: str) -> tuple[int, int, int]:
    pid, cam, seq, raw = parse_market_name(name)
    return pid, cam, seq * SEQUENCE_STRIDE + raw


def _box_as_frame(name: str) -> tuple[int, int, int]:
    pid, cam, _seq, _raw = parse_market_name(name)
    return pid, cam, int(name.rsplit(".", 1)[0].rsplit("_", 1)[1])


def _unsigned_pid(name: str) -> tuple[int, int, int]:
    pid, cam, frame = linear_frame(name)
    return abs(pid), cam, frame


FRAME_MISTAKES = [
    Mistake("the sequence ignored: raw frame counters of different sequences compared",
            _raw_frame),
    Mistake("sequences counted from 0: s1 starts at SEQUENCE_STRIDE instead of 0",
            _sequence_from_zero),
    Mistake("the bounding-box number (the last field) read as the frame", _box_as_frame),
    Mistake("the pid's minus sign dropped (Market's distractors have pid -1)", _unsigned_pid),
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
