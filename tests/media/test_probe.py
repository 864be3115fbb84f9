"""probe(): every figure checked against what the test put in the file."""

from __future__ import annotations

from fractions import Fraction
from pathlib import Path

import av
import numpy as np
import pytest

from pipelines.media import MediaInfo, NoVideoStreamError, probe
from tests.media import mediagen as gen


@pytest.mark.parametrize("path", gen.GRID, ids=[p.stem for p in gen.GRID])
def test_grid_clip(path: Path) -> None:
    info = probe(path)
    assert info.format_name == "mpeg"
    assert info.size == path.stat().st_size
    video = info.require_video()
    assert (video.width, video.height) == (360, 288)
    assert video.frame_rate == Fraction(25)
    assert isinstance(video.frame_rate, Fraction)
    assert video.frame_count == 75
    assert video.duration == 3
    assert video.codec == "mpeg1video"
    assert video.pix_fmt == "yuv420p"
    assert video.time_base == Fraction(1, 90000)
    assert not video.variable_frame_rate
    assert video.rotation == 0
    assert video.timecode is None
    assert video.color_range == "tv"
    assert len(info.audio) == 1
    audio = info.audio[0]
    assert (audio.codec, audio.sample_rate, audio.channels, audio.layout) == (
        "mp2", 44100, 2, "stereo")
    assert audio.duration is not None
    assert abs(audio.duration - Fraction(131328, 44100)) < Fraction(1, 44100) * 1152


def test_png_still() -> None:
    video = probe(gen.ASTRONAUT).require_video()
    assert (video.width, video.height, video.frame_count) == (512, 512, 1)
    assert video.pix_fmt == "rgb24"


def test_hd_clip_tags(clip_720p: Path) -> None:
    info = probe(clip_720p)
    video = info.require_video()
    assert (video.width, video.height, video.frame_count) == (1280, 720, 25)
    assert video.frame_rate == 25
    assert video.codec == "h264"
    assert (video.color_primaries, video.color_transfer, video.color_matrix,
            video.color_range) == ("bt709", "bt709", "bt709", "tv")
    assert video.timecode == "10:00:00:00"
    assert info.timecode == "10:00:00:00"
    assert info.audio[0].sample_rate == 48000
    assert info.audio[0].duration is not None
    assert abs(info.audio[0].duration - 1) < Fraction(1, 25)


def test_ntsc_drop_frame(clip_ntsc_df: Path) -> None:
    video = probe(clip_ntsc_df).require_video()
    assert video.frame_rate == Fraction(30000, 1001)
    assert video.time_base == Fraction(1, 30000)
    assert video.frame_count == 30
    assert video.timecode == "00:59:59;28"
    assert not video.variable_frame_rate


def test_frame_count_counted_when_container_is_silent(tmp_path: Path) -> None:
    # Matroska states no frame count; 29.97 fps in its 1/1000 time base gives 33/34 ms gaps.
    path = gen.write_video(tmp_path / "a.mkv", gen.grid_frames(37),
                           rate=Fraction(30000, 1001), timecode="01:00:00;00")
    video = probe(path).require_video()
    assert video.time_base == Fraction(1, 1000)
    assert video.frame_count == 37
    assert video.frame_rate == Fraction(30000, 1001)
    assert not video.variable_frame_rate
    assert video.timecode == "01:00:00;00"


def test_variable_frame_rate_detected(clip_vfr: Path) -> None:
    video = probe(clip_vfr).require_video()
    assert video.variable_frame_rate
    assert video.frame_count == 12


def test_a_dropped_frame_is_variable_rate(tmp_path: Path) -> None:
    pts = [0, 1, 2, 3, 5, 6, 7, 8]  # one 40 ms slot missing in an otherwise steady 25 fps
    path = gen.write_video(tmp_path / "gap.mkv", gen.grid_frames(8),
                           time_base=Fraction(1, 25), pts=pts)
    assert probe(path).require_video().variable_frame_rate


def test_rotation_from_display_matrix(clip_rotated: Path, tmp_path: Path) -> None:
    assert probe(clip_rotated).require_video().rotation == 90
    other = gen.write_video(tmp_path / "r270.mov", gen.grid_frames(3), rotation=-90)
    assert probe(other).require_video().rotation == 270


def test_rotation_from_legacy_rotate_tag(tmp_path: Path) -> None:
    """Older muxers wrote a clockwise ``rotate`` tag instead of a display matrix."""
    path = tmp_path / "tagged.mkv"
    with av.open(str(path), "w") as out:
        stream = out.add_stream("libx264", rate=25)
        stream.width, stream.height, stream.pix_fmt = 64, 48, "yuv420p"
        stream.metadata["rotate"] = "90"
        for i in range(3):
            frame = av.VideoFrame.from_ndarray(np.zeros((48, 64, 3), np.uint8), format="rgb24")
            frame.pts = i
            out.mux(stream.encode(frame))
        out.mux(stream.encode(None))
    assert probe(path).require_video().rotation == 270  # 90 clockwise = 270 counter-clockwise


def test_audio_only_and_video_only(audio_only: Path, clip_rotated: Path) -> None:
    info = probe(audio_only)
    assert info.video is None
    assert info.audio[0].channels == 2
    assert info.audio[0].duration is not None
    assert abs(info.audio[0].duration - Fraction(3, 2)) < Fraction(1, 25)
    with pytest.raises(NoVideoStreamError, match="audio-only"):
        info.require_video()
    with pytest.raises(NoVideoStreamError):
        probe(audio_only, require_video=True)
    assert probe(clip_rotated).audio == ()


def test_surround(audio_51: Path) -> None:
    (stream,) = probe(audio_51).audio
    assert (stream.channels, stream.layout, stream.sample_rate) == (6, "5.1", 48000)
    assert stream.duration == 2


def test_info_is_frozen(clip_rotated: Path) -> None:
    info: MediaInfo = probe(clip_rotated)
    with pytest.raises(AttributeError):
        info.size = 0  # type: ignore[misc]
