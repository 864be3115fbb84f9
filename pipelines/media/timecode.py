"""SMPTE timecode <-> frame index, drop-frame included.

Arithmetic comes from the ``timecode`` package (checked against the SMPTE 12M counting rule
frame by frame over a day at every standard rate; see tests/media/test_timecode.py). This
module pins down what the package leaves loose: frame indices are 0-based, drop-frame applies
only to 29.97 and 59.94 fps and is announced by the ``;`` separator (as in the ``timecode``
tags FFmpeg reads and writes), labels that drop-frame skips are rejected instead of silently
shifted, and fields out of range are errors.
"""

from __future__ import annotations

import re
from fractions import Fraction

from timecode.timecode import Timecode as _Timecode

_DROP_RATES = {Fraction(30000, 1001): 2, Fraction(60000, 1001): 4}
_PATTERN = re.compile(r"^(\d{2}):(\d{2}):(\d{2})([:;.,])(\d{2})$")


def nominal_fps(rate: Fraction) -> int:
    """Frames counted per timecode second: the rate rounded (29.97 -> 30, 23.976 -> 24)."""
    fps = round(Fraction(rate))
    if fps <= 0:
        raise ValueError(f"frame rate {rate} has no timecode")
    return fps


def is_drop_frame_rate(rate: Fraction) -> bool:
    """True for 30000/1001 and 60000/1001, the only rates with SMPTE drop-frame counting."""
    return Fraction(rate) in _DROP_RATES


def frames_per_day(rate: Fraction, drop_frame: bool) -> int:
    """Frames before timecode wraps at 24:00:00:00."""
    fps = nominal_fps(rate)
    if drop_frame:
        drop = _DROP_RATES[Fraction(rate)]
        return 24 * 6 * (fps * 600 - 9 * drop)
    return 24 * 3600 * fps


def _package(rate: Fraction, drop_frame: bool) -> _Timecode:
    # The package reads drop-frame from the rate itself; 29.97 non-drop must be forced.
    return _Timecode(Fraction(rate), force_non_drop_frame=not drop_frame)


def frame_to_timecode(frame: int, rate: Fraction, *, drop_frame: bool | None = None) -> str:
    """The timecode label of 0-based ``frame`` (wrapping at 24 h).

    ``drop_frame`` defaults to True at 29.97/59.94 fps and must be False at other rates.
    """
    rate = Fraction(rate)
    df = is_drop_frame_rate(rate) if drop_frame is None else drop_frame
    if df and not is_drop_frame_rate(rate):
        raise ValueError(f"drop-frame timecode exists only at 29.97 and 59.94 fps, not {rate}")
    if frame < 0:
        raise ValueError(f"frame index {frame} is negative")
    tc = _package(rate, df)
    tc.frames = frame % frames_per_day(rate, df) + 1  # the package counts from 1
    return str(tc)


def parse(label: str, rate: Fraction) -> tuple[int, int, int, int, bool]:
    """(hours, minutes, seconds, frames, drop_frame) of a label, validated for ``rate``."""
    match = _PATTERN.match(label.strip())
    if match is None:
        raise ValueError(f"{label!r} is not a SMPTE timecode HH:MM:SS:FF (or ;FF)")
    hh, mm, ss, sep, ff = match.groups()
    h, m, s, f = int(hh), int(mm), int(ss), int(ff)
    df = sep in ";.,"
    fps = nominal_fps(rate)
    if h >= 24 or m >= 60 or s >= 60 or f >= fps:
        raise ValueError(f"{label!r} is out of range at {fps} frames per second")
    if df:
        if not is_drop_frame_rate(rate):
            raise ValueError(f"{label!r} is drop-frame, which exists only at 29.97 and "
                             f"59.94 fps, not {rate}")
        if s == 0 and m % 10 and f < _DROP_RATES[Fraction(rate)]:
            raise ValueError(f"{label!r} does not exist: drop-frame skips it")
    return h, m, s, f, df


def timecode_to_frame(label: str, rate: Fraction) -> int:
    """The 0-based frame index of ``label`` (drop-frame if its separator is ``;``)."""
    rate = Fraction(rate)
    h, m, s, f, df = parse(label, rate)
    tc = _package(rate, df)
    return int(tc.tc_to_frames(f"{h:02d}:{m:02d}:{s:02d}{';' if df else ':'}{f:02d}")) - 1


def timecode_at(start: str, index: int, rate: Fraction) -> str:
    """The label of frame ``index`` of a clip whose first frame is labelled ``start``.

    Keeps the start's counting (drop-frame or not).
    """
    rate = Fraction(rate)
    df = parse(start, rate)[4]
    return frame_to_timecode(timecode_to_frame(start, rate) + index, rate, drop_frame=df)
