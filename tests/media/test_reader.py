"""VideoReader: frame-accurate streaming, VFR policy, odd sizes, rotation, bounded memory."""

from __future__ import annotations

import os
import tracemalloc
from fractions import Fraction
from pathlib import Path

import numpy as np
import pytest

from pipelines.media import (
    VariableFrameRateError,
    VariableFrameRateWarning,
    VideoReader,
    VideoWriter,
    probe,
    upright,
)
from tests.media import mediagen as gen
from tests.media.conftest import VFR_PTS_MS


def test_grid_frames_in_order() -> None:
    with VideoReader(gen.GRID[0]) as reader:
        frames = [(f.index, f.pts, f.rgb.shape, f.rgb.dtype, f.rgb.flags.c_contiguous)
                  for f in reader]
    assert len(frames) == 75
    assert [f[0] for f in frames] == list(range(75))
    assert [f[1] for f in frames] == [Fraction(i, 25) for i in range(75)]
    assert {f[2:] for f in frames} == {((288, 360, 3), np.dtype(np.uint8), True)}


def test_frames_are_owned_and_writable() -> None:
    with VideoReader(gen.GRID[1]) as reader:
        it = iter(reader)
        first = next(it)
        first.rgb[:] = 0  # a stage may paint in place
        second = next(it)
    assert first.rgb.flags.writeable
    assert not first.rgb.any()
    assert second.rgb.any()  # painting one frame did not touch the decoder's next one


def test_reader_iterates_once() -> None:
    reader = VideoReader(gen.GRID[0])
    with reader:
        assert sum(1 for _ in reader) == 75
        with pytest.raises(RuntimeError, match="iterates once"):
            next(iter(reader))


def test_vfr_refused_by_default(clip_vfr: Path) -> None:
    with pytest.raises(VariableFrameRateError, match="on_vfr='conform'"):
        VideoReader(clip_vfr)


def test_vfr_conformed_by_timestamp(clip_vfr: Path) -> None:
    with pytest.warns(VariableFrameRateWarning, match="conforming 12 frames to 14 frames"):
        reader = VideoReader(clip_vfr, on_vfr="conform", conform_rate=Fraction(25))
    with reader:
        frames = list(reader)
    # Slots of the 12 source frames at 25 fps: 0 1 2 4 5 6 6 7 8 11 12 13. Each output slot
    # shows the latest source frame at or before it: slot 3 repeats frame 2, frame 5 loses
    # slot 6 to frame 6, slots 9-10 repeat frame 8.
    assert [gen.read_marker(f.rgb) for f in frames] == [0, 1, 2, 2, 3, 4, 6, 7, 8, 8, 8, 9,
                                                          10, 11]
    assert [f.index for f in frames] == list(range(14))
    assert [f.pts for f in frames] == [Fraction(i, 25) for i in range(14)]
    assert reader.frame_count == 14
    assert len({id(f.rgb) for f in frames}) == 14  # repeats are copies, not aliases
    assert len(VFR_PTS_MS) == 12


def test_vfr_conform_default_rate(clip_vfr: Path) -> None:
    with pytest.warns(VariableFrameRateWarning):
        reader = VideoReader(clip_vfr, on_vfr="conform")
    with reader:
        count = sum(1 for _ in reader)
    assert count == reader.frame_count
    assert reader.frame_rate == probe(clip_vfr).require_video().frame_rate


def test_odd_dimensions(clip_odd: Path) -> None:
    with VideoReader(clip_odd) as reader:
        shapes = {f.rgb.shape for f in reader if f.rgb.flags.c_contiguous}
    assert shapes == {(287, 361, 3)}


def test_rotated_frames_stay_as_stored(clip_rotated: Path) -> None:
    with VideoReader(clip_rotated) as reader:
        assert reader.video.rotation == 90
        frame = next(iter(reader))
    assert frame.rgb.shape == (288, 360, 3)
    shown = upright(frame.rgb, reader.video.rotation)
    assert shown.shape == (360, 288, 3)
    assert np.array_equal(shown[0, :], frame.rgb[:, -1])  # 90 ccw: right column on top


def _rss_bytes() -> int:
    with open("/proc/self/statm") as fh:
        return int(fh.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")


@pytest.fixture(scope="module")
def long_clip(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """30 s (750 frames) made by concatenating the GRID clips' frames."""
    path = tmp_path_factory.mktemp("long") / "long.mp4"
    return gen.write_video(path, gen.grid_frames(750), options={"crf": "28"})


def test_memory_does_not_grow_with_length(long_clip: Path, tmp_path: Path) -> None:
    """Decode -> encode 30 s: RSS after the first second is within 50 MB of the peak."""
    tracemalloc.start()
    try:
        with VideoReader(long_clip) as reader, VideoWriter(
                tmp_path / "out.mp4", reader.video, preset="ultrafast") as writer:
            baseline = peak = 0
            for frame in reader:
                writer.write(frame)
                if frame.index == 25:
                    baseline = _rss_bytes()
                    tracemalloc.reset_peak()
                elif frame.index > 25:
                    peak = max(peak, _rss_bytes())
        _, traced_peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert writer.frames_written == 750
    assert peak - baseline < 50 * 2**20, f"RSS grew {(peak - baseline) / 2**20:.1f} MB"
    # Python-level allocations (numpy frames included): a handful of 311 kB frames.
    assert traced_peak < 10 * 2**20, f"traced peak {traced_peak / 2**20:.1f} MB"


def _read(path: Path, **kwargs: object) -> list[tuple[int, Fraction, bytes]]:
    with VideoReader(path, **kwargs) as reader:  # type: ignore[arg-type]
        return [(f.index, f.pts, f.rgb.tobytes()) for f in reader]


@pytest.mark.parametrize("depth", [1, 3])
def test_read_ahead_gives_the_same_frames(clip_vfr: Path, depth: int) -> None:
    """Decoding on a thread of its own (``read_ahead``) changes nothing a consumer sees:
    indices, timestamps and pixels, for a constant-rate file and a conformed VFR one."""
    assert _read(gen.GRID[0], read_ahead=depth) == _read(gen.GRID[0])
    with pytest.warns(VariableFrameRateWarning):
        plain = _read(clip_vfr, on_vfr="conform")
    with pytest.warns(VariableFrameRateWarning):
        ahead = _read(clip_vfr, on_vfr="conform", read_ahead=depth)
    assert ahead == plain


def test_read_ahead_stops_its_thread_when_the_consumer_stops() -> None:
    import threading

    reader = VideoReader(gen.GRID[0], read_ahead=2)
    with reader:
        for frame in reader:
            if frame.index == 3:
                break
    assert reader._container is None  # the file is closed, after the decode thread
    assert not [t for t in threading.enumerate() if t.name == "video-reader"]
    with pytest.raises(ValueError, match="read_ahead"):
        VideoReader(gen.GRID[0], read_ahead=-1)


def test_read_ahead_is_stopped_before_the_file_closes_when_the_consumer_raises() -> None:
    """A consumer that raises leaves its iteration unfinished while the traceback holds it;
    leaving the ``with`` block must still stop the decode thread before closing the file."""
    import threading

    kept: list[BaseException] = []
    try:
        with VideoReader(gen.GRID[0], read_ahead=2) as reader:
            for frame in reader:
                if frame.index == 5:
                    raise RuntimeError("an edit failed")
    except RuntimeError as exc:
        kept.append(exc)  # the traceback (and with it the suspended iteration) lives on
    assert reader._container is None
    assert not [t for t in threading.enumerate() if t.name == "video-reader"]
    assert kept


@pytest.mark.parametrize("depth", [0, 2])
def test_conformed_repeats_are_the_source_not_the_consumers_edit(clip_vfr: Path,
                                                                  depth: int) -> None:
    """A consumer edits each frame in place (the guard, the watermark); a repeated slot must
    still show the decoded source, not a copy of the frame the consumer already edited (with
    ``read_ahead`` that copy would even race the edit)."""
    with pytest.warns(VariableFrameRateWarning):
        plain = _read(clip_vfr, on_vfr="conform")
    seen: list[tuple[int, Fraction, bytes]] = []
    with pytest.warns(VariableFrameRateWarning):
        reader = VideoReader(clip_vfr, on_vfr="conform", read_ahead=depth)
    with reader:
        for frame in reader:
            seen.append((frame.index, frame.pts, frame.rgb.tobytes()))
            frame.rgb[...] = 255 - frame.rgb  # an edit, in place, after reading
    assert seen == plain
