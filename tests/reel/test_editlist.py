"""Edit-list import: the hand-written EDL of the test reel, its OpenTimelineIO twin, refusals."""

from __future__ import annotations

from fractions import Fraction
from pathlib import Path

import opentimelineio as otio  # type: ignore[import-untyped]
import pytest

from pipelines.reel.editlist import load_edit_list
from pipelines.reel.errors import (
    EditListError,
    EditListMismatchError,
    ReelInputError,
    ReelNotFoundError,
)
from pipelines.reel.shots import ShotList, TransitionKind

DATA = Path(__file__).resolve().parents[1] / "data" / "reel"
EDL = DATA / "test_reel.edl"


def _without_head_fade(shots: ShotList) -> list[tuple[str, int, int, int]]:
    return [(t.kind.value, t.boundary, t.start, t.end) for t in shots.transitions
            if t.boundary > 0]


def test_edl_gives_the_labelled_shots(test_reel: Path, test_reel_truth: ShotList) -> None:
    shots = load_edit_list(EDL, test_reel)
    # every boundary, kind and span as labelled (the CMX adapter cannot hold the head fade)
    assert _without_head_fade(shots) == _without_head_fade(test_reel_truth)
    assert shots.frame_count == 386 and shots.frame_rate == 25
    assert shots.start_timecode == "01:00:00:00"
    assert [s.start for s in shots] == [s.start for s in test_reel_truth]
    # a dissolve's boundary is its middle; the incoming source in moves with it
    lrwp = shots[3]
    assert (lrwp.source, lrwp.start, lrwp.source_in) == ("LRWP9A", 79, 24)
    assert lrwp.transition_in is not None
    assert (lrwp.transition_in.start, lrwp.transition_in.end) == (75, 83)
    assert (lrwp.record_tc_in, lrwp.record_tc_out) == ("01:00:03:04", "01:00:04:05")
    # black between two dissolves is a fade; the black belongs to the outgoing shot
    fade = shots[8].transition_in
    assert fade is not None and fade.kind is TransitionKind.FADE
    assert (fade.start, fade.boundary, fade.end) == (191, 207, 217)
    assert shots[7].end == 207 and shots[8].source == "LBBC2A"
    assert shots.tail is not None and (shots.tail.start, shots.tail.end) == (376, 386)
    assert shots.shot_at(385).index == 13 and shots.shot_at(0).source == "BBAF2N"


def test_otio_file_gives_the_same_shots(test_reel: Path, tmp_path: Path) -> None:
    timeline = otio.adapters.read_from_file(str(EDL), rate=25)
    timeline.global_start_time = otio.opentime.from_timecode("01:00:00:00", 25)
    path = tmp_path / "reel.otio"
    otio.adapters.write_to_file(timeline, str(path))
    assert load_edit_list(path, test_reel) == load_edit_list(EDL, test_reel)
    # the record start must be the reel's start timecode
    timeline.global_start_time = otio.opentime.from_timecode("02:00:00:00", 25)
    otio.adapters.write_to_file(timeline, str(path))
    with pytest.raises(EditListMismatchError, match=r"starts at 02:00:00:00.*01:00:00:00"):
        load_edit_list(path, test_reel)


def test_otio_head_black_is_a_fade_in(test_reel: Path, tmp_path: Path) -> None:
    """OTIO (unlike the CMX adapter) holds a fade from black on the first clip."""
    timeline = otio.adapters.read_from_file(str(EDL), rate=25)
    track = timeline.tracks[0]
    first = track[0]
    first.source_range = otio.opentime.TimeRange(
        otio.opentime.RationalTime(0, 25), otio.opentime.RationalTime(30, 25))
    track.insert(0, otio.schema.Clip(
        name="black", media_reference=otio.schema.GeneratorReference(generator_kind="black"),
        source_range=otio.opentime.TimeRange(otio.opentime.RationalTime(0, 25),
                                             otio.opentime.RationalTime(0, 25))))
    track.insert(1, otio.schema.Transition(
        transition_type="SMPTE_Dissolve", in_offset=otio.opentime.RationalTime(0, 25),
        out_offset=otio.opentime.RationalTime(8, 25)))
    path = tmp_path / "head.otio"
    otio.adapters.write_to_file(timeline, str(path))
    shots = load_edit_list(path, test_reel)
    head = shots[0].transition_in
    assert head is not None and (head.kind, head.boundary, head.start, head.end) == (
        TransitionKind.FADE, 0, 0, 8)


def _edl(tmp_path: Path, text: str, name: str = "cut.edl") -> Path:
    path = tmp_path / name
    path.write_text(text)
    return path


def test_an_edl_for_another_reel_is_refused(test_reel: Path, tmp_path: Path) -> None:
    lines = EDL.read_text().splitlines()
    short = _edl(tmp_path, "\n".join(lines[:-3]) + "\n")  # the tail fade and last shot gone
    with pytest.raises(EditListMismatchError, match="reel holds 386 frames, the shot list 346"):
        load_edit_list(short, test_reel)
    moved = _edl(tmp_path, EDL.read_text().replace(" 01:", " 10:"), "moved.edl")
    with pytest.raises(EditListMismatchError, match="starts at 10:00:00:00"):
        load_edit_list(moved, test_reel)
    timeline = otio.adapters.read_from_file(str(EDL), rate=25)
    for clip in timeline.find_clips():  # the same edit at 24 fps: off the reel's frames
        r = clip.source_range
        clip.source_range = otio.opentime.TimeRange(
            otio.opentime.RationalTime(r.start_time.value, 24),
            otio.opentime.RationalTime(r.duration.value, 24))
    other = tmp_path / "other.otio"
    otio.adapters.write_to_file(timeline, str(other))
    with pytest.raises(EditListMismatchError, match="not on a frame"):
        load_edit_list(other, test_reel)


@pytest.mark.parametrize(("text", "match"), [
    ("", "empty"),
    ("hello, this is not an edit list\n", "not a CMX 3600 EDL"),
    ("TITLE: X\n\n001  AX       V     C        00:00:00:00 00:00:01:00 01:00:00:00 "
     "01:00:00:10\n", "Source and record duration"),
])
def test_bad_edls_are_refused(test_reel: Path, tmp_path: Path, text: str, match: str) -> None:
    with pytest.raises(EditListError, match=match):
        load_edit_list(_edl(tmp_path, text), test_reel)


def test_bad_files_are_refused(test_reel: Path, tmp_path: Path) -> None:
    with pytest.raises(ReelNotFoundError):
        load_edit_list(tmp_path / "missing.edl", test_reel)
    with pytest.raises(ReelNotFoundError):
        load_edit_list(EDL, tmp_path / "missing.mp4")
    with pytest.raises(EditListError, match=r"\.edl\) or an OpenTimelineIO"):
        load_edit_list(_edl(tmp_path, "x", "cut.xml"), test_reel)
    binary = tmp_path / "bin.edl"
    binary.write_bytes(b"\xff\xfe\x00garbage")
    with pytest.raises(EditListError, match="not UTF-8"):
        load_edit_list(binary, test_reel)
    bad_json = _edl(tmp_path, "{not json", "bad.otio")
    with pytest.raises(EditListError, match="not an OpenTimelineIO file"):
        load_edit_list(bad_json, test_reel)
    assert issubclass(EditListError, ReelInputError)
    assert Fraction(25) == load_edit_list(EDL, test_reel).frame_rate
