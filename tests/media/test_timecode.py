"""SMPTE timecode, drop-frame included, against an independent implementation of 12M."""

from __future__ import annotations

from fractions import Fraction

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from pipelines.media.timecode import (
    frame_to_timecode,
    frames_per_day,
    timecode_at,
    timecode_to_frame,
)

NTSC = Fraction(30000, 1001)
NTSC60 = Fraction(60000, 1001)
RATES = [Fraction(24000, 1001), Fraction(24), Fraction(25), NTSC, Fraction(30), Fraction(50),
         NTSC60, Fraction(60)]


def reference(frame: int, fps: int, drop: int) -> str:
    """SMPTE 12M counting, written from the rule: drop ``drop`` labels each minute but every
    tenth."""
    if drop:
        per_10 = fps * 600 - 9 * drop
        per_min = fps * 60 - drop
        tens, rest = divmod(frame, per_10)
        frame += 9 * drop * tens + (drop * ((rest - drop) // per_min) if rest > drop else 0)
    seconds, ff = divmod(frame, fps)
    sep = ";" if drop else ":"
    return f"{seconds // 3600 % 24:02d}:{seconds // 60 % 60:02d}:{seconds % 60:02d}{sep}{ff:02d}"


@pytest.mark.parametrize(("frame", "rate", "label"), [
    (0, NTSC, "00:00:00;00"),
    (1799, NTSC, "00:00:59;29"),
    (1800, NTSC, "00:01:00;02"),
    (17981, NTSC, "00:09:59;29"),
    (17982, NTSC, "00:10:00;00"),
    (107892, NTSC, "01:00:00;00"),
    (3599, NTSC60, "00:00:59;59"),
    (3600, NTSC60, "00:01:00;04"),
    (215784, NTSC60, "01:00:00;00"),
    (90000, Fraction(25), "01:00:00:00"),
    (86400, Fraction(24000, 1001), "01:00:00:00"),
])
def test_known_labels(frame: int, rate: Fraction, label: str) -> None:
    assert frame_to_timecode(frame, rate) == label
    assert timecode_to_frame(label, rate) == frame


def test_non_drop_at_2997_on_request() -> None:
    assert frame_to_timecode(108000, NTSC, drop_frame=False) == "01:00:00:00"
    assert timecode_to_frame("01:00:00:00", NTSC) == 108000
    assert timecode_to_frame("01:00:00;00", NTSC) == 107892


def test_minute_boundaries_of_the_first_hours() -> None:
    for rate, fps, drop in ((NTSC, 30, 2), (NTSC60, 60, 4)):
        per_min = fps * 60 - drop
        for minute in range(1, 130):
            start = minute * per_min + (minute // 10) * drop  # first frame of the minute
            for frame in range(start - 2, start + 3):
                label = frame_to_timecode(frame, rate)
                assert label == reference(frame, fps, drop)
                assert timecode_to_frame(label, rate) == frame


@settings(max_examples=300, deadline=None)
@given(rate=st.sampled_from(RATES), frame=st.integers(0, 30 * 60 * 60 * 24 * 2))
def test_matches_reference_and_round_trips(rate: Fraction, frame: int) -> None:
    drop = {NTSC: 2, NTSC60: 4}.get(rate, 0)
    fps = round(rate)
    wrapped = frame % frames_per_day(rate, bool(drop))
    label = frame_to_timecode(frame, rate)
    assert label == reference(wrapped, fps, drop)
    assert timecode_to_frame(label, rate) == wrapped


def test_day_wraps() -> None:
    assert frames_per_day(NTSC, True) == 2589408
    assert frame_to_timecode(2589408, NTSC) == "00:00:00;00"
    assert frame_to_timecode(2589407, NTSC) == "23:59:59;29"


def test_timecode_at() -> None:
    assert timecode_at("00:59:59;28", 2, NTSC) == "01:00:00;00"
    assert timecode_at("00:00:59;29", 1, NTSC) == "00:01:00;02"
    assert timecode_at("10:00:00:00", 25 * 61, Fraction(25)) == "10:01:01:00"


@pytest.mark.parametrize(("label", "rate", "message"), [
    ("00:01:00;00", NTSC, "drop-frame skips it"),
    ("00:01:00;03", NTSC60, "drop-frame skips it"),
    ("01:00:00;00", Fraction(25), "drop-frame, which exists only"),
    ("01:00:00:25", Fraction(25), "out of range"),
    ("24:00:00:00", Fraction(25), "out of range"),
    ("1:00:00:00", Fraction(25), "not a SMPTE timecode"),
])
def test_invalid_labels(label: str, rate: Fraction, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        timecode_to_frame(label, rate)


def test_drop_frame_only_where_defined() -> None:
    with pytest.raises(ValueError, match=r"only at 29\.97 and 59\.94"):
        frame_to_timecode(10, Fraction(25), drop_frame=True)
    with pytest.raises(ValueError, match="negative"):
        frame_to_timecode(-1, Fraction(25))
