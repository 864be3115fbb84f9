"""VideoWriter: decode -> encode keeps what a post house checks, within one frame."""

from __future__ import annotations

import math
from collections.abc import Iterator
from contextlib import contextmanager
from fractions import Fraction
from pathlib import Path

import numpy as np
import pytest

from pipelines.media import (
    Audio,
    MediaInfo,
    SourceAudio,
    VariableFrameRateWarning,
    VideoReader,
    VideoStreamInfo,
    VideoWriter,
    load_audio,
    probe,
)
from pipelines.media.writer import Codec
from tests.media import mediagen as gen

FORMATS: list[tuple[Codec, str]] = [("h264", ".mp4"), ("prores", ".mov")]


def _round_trip(src: Path, dst: Path, codec: Codec, **kw: object) -> tuple[MediaInfo, MediaInfo]:
    with VideoReader(src) as reader, VideoWriter(dst, reader.video, codec=codec,
                                                 **kw) as writer:  # type: ignore[arg-type]
        for frame in reader:
            writer.write(frame)
    return reader.info, probe(dst)


def _assert_same_timing(before: MediaInfo, after: MediaInfo) -> None:
    src, out = before.require_video(), after.require_video()
    assert out.frame_count == src.frame_count
    assert out.frame_rate == src.frame_rate
    assert out.time_base == src.time_base
    assert (out.width, out.height) == (src.width, src.height)
    assert not out.variable_frame_rate
    assert abs(out.duration - src.duration) < 1 / src.frame_rate
    assert len(after.audio) == len(before.audio)
    for a, b in zip(before.audio, after.audio, strict=True):
        assert a.duration is not None and b.duration is not None
        assert abs(a.duration - b.duration) < 1 / src.frame_rate, (a.duration, b.duration)
        assert (a.sample_rate, a.channels) == (b.sample_rate, b.channels)


@pytest.mark.parametrize(("codec", "suffix"), FORMATS)
def test_grid_round_trip(codec: Codec, suffix: str, tmp_path: Path) -> None:
    src = gen.GRID[0]
    before, after = _round_trip(src, tmp_path / f"out{suffix}", codec,
                                audio=SourceAudio(src), timecode="10:00:00:00")
    _assert_same_timing(before, after)
    assert after.require_video().timecode == "10:00:00:00"
    assert after.require_video().codec == {"h264": "h264", "prores": "prores"}[codec]


@pytest.mark.parametrize(("codec", "suffix"), FORMATS)
def test_drop_frame_round_trip(clip_ntsc_df: Path, codec: Codec, suffix: str,
                               tmp_path: Path) -> None:
    before, after = _round_trip(clip_ntsc_df, tmp_path / f"ntsc{suffix}", codec,
                                audio=SourceAudio(clip_ntsc_df))
    _assert_same_timing(before, after)
    assert after.require_video().timecode == "00:59:59;28"
    assert after.audio[0].codec == "aac"  # AAC fits both containers: remuxed, not re-encoded


@pytest.mark.parametrize(("codec", "suffix"), FORMATS)
def test_colour_tags_kept(clip_720p: Path, codec: Codec, suffix: str, tmp_path: Path) -> None:
    before, after = _round_trip(clip_720p, tmp_path / f"hd{suffix}", codec, preset="ultrafast",
                                audio=SourceAudio(clip_720p))
    _assert_same_timing(before, after)
    src, out = before.require_video(), after.require_video()
    tags = ("color_primaries", "color_transfer", "color_matrix", "color_range")
    assert [getattr(out, t) for t in tags] == [getattr(src, t) for t in tags]
    assert out.color_matrix == "bt709"
    assert out.timecode == "10:00:00:00"


def _psnr(a: Path, b: Path) -> float:
    """Whole-clip PSNR of the RGB frames (mean squared error over every frame)."""
    errors = []
    with VideoReader(a) as ra, VideoReader(b) as rb:
        for fa, fb in zip(ra, rb, strict=True):
            errors.append(np.mean((fa.rgb.astype(np.float64) - fb.rgb) ** 2))
    return 10 * math.log10(255**2 / float(np.mean(errors)))


@pytest.mark.parametrize("src", gen.GRID[:3], ids=[p.stem for p in gen.GRID[:3]])
def test_h264_pixel_fidelity(src: Path, tmp_path: Path) -> None:
    out = tmp_path / "out.mp4"
    _round_trip(src, out, "h264")  # defaults: crf 18, preset medium
    assert _psnr(src, out) >= 40.0


def test_prores_pixel_fidelity(tmp_path: Path) -> None:
    out = tmp_path / "out.mov"
    _round_trip(gen.GRID[3], out, "prores")
    assert _psnr(gen.GRID[3], out) >= 43.0  # 10-bit 4:2:2; the 8-bit RGB conversions bound it


def test_rotation_kept(clip_rotated: Path, tmp_path: Path) -> None:
    _, after = _round_trip(clip_rotated, tmp_path / "rot.mp4", "h264")
    video = after.require_video()
    assert video.rotation == 90
    assert (video.width, video.height) == (360, 288)


def test_odd_dimensions_h264_keeps_size(clip_odd: Path, tmp_path: Path) -> None:
    with pytest.warns(UserWarning, match="odd frame size 361x287"):
        before, after = _round_trip(clip_odd, tmp_path / "odd.mp4", "h264")
    _assert_same_timing(before, after)
    assert after.require_video().pix_fmt == "yuv444p"
    assert _psnr(clip_odd, tmp_path / "odd.mp4") >= 40.0


def test_odd_dimensions_prores(clip_odd: Path, tmp_path: Path) -> None:
    _, after = _round_trip(clip_odd, tmp_path / "odd.mov", "prores")
    video = after.require_video()
    assert (video.width, video.height, video.pix_fmt) == (361, 287, "yuv422p10le")


def test_audio_transcoded_to_aac_on_request(tmp_path: Path) -> None:
    src = gen.GRID[2]
    before, after = _round_trip(src, tmp_path / "aac.mp4", "h264",
                                audio=SourceAudio(src, codec="aac"))
    _assert_same_timing(before, after)
    assert after.audio[0].codec == "aac"
    assert abs(load_audio(tmp_path / "aac.mp4").duration - load_audio(src).duration) < Fraction(
        1, 25)


@pytest.mark.parametrize(("codec", "remuxed"), [("pcm_s16le", "pcm_s16le"),
                                                ("pcm_mulaw", "aac")])
def test_source_audio_copied_when_it_fits_else_aac(codec: str, remuxed: str,
                                                   tmp_path: Path) -> None:
    """MP4 takes 16-bit PCM as is; mu-law it cannot hold, so that becomes AAC."""
    wav = gen.write_audio(tmp_path / "dub.wav", gen.tone(300, 2.5, 16000), 16000, codec=codec)
    src = gen.GRID[4]
    with VideoReader(src) as reader, VideoWriter(tmp_path / "dub.mp4", reader.video,
                                                 preset="ultrafast",
                                                 audio=SourceAudio(wav)) as writer:
        for frame in reader:
            writer.write(frame)
    (track,) = probe(tmp_path / "dub.mp4").audio
    assert track.codec == remuxed
    assert track.duration is not None
    assert abs(track.duration - Fraction(5, 2)) < Fraction(1, 25)


@pytest.mark.parametrize("suffix", [".mp4", ".mkv"])
def test_new_audio_track_from_array(audio_51: Path, tmp_path: Path, suffix: str) -> None:
    surround = load_audio(audio_51)
    like = VideoStreamInfo.new(320, 240, 25, timecode="01:00:00:00")
    path = tmp_path / f"new{suffix}"
    with VideoWriter(path, like, audio=surround, preset="ultrafast") as writer:
        for i in range(50):
            writer.write(gen.marker_frame(i, 320, 240))
    info = probe(path)
    video = info.require_video()
    assert (video.frame_count, video.frame_rate, video.timecode) == (
        50, Fraction(25), "01:00:00:00")
    (track,) = info.audio
    assert (track.codec, track.channels, track.sample_rate) == ("aac", 6, 48000)
    back = load_audio(path)
    assert abs(back.duration - surround.duration) < Fraction(1, 25)
    # channel order survives: the LFE tone (60 Hz) is still in the fourth channel
    spectrum = np.abs(np.fft.rfft(back.samples[3, 4800:52800]))
    assert abs(np.argmax(spectrum) * back.rate / 48000 - 60) < 2


def test_conformed_vfr_writes_constant_rate(clip_vfr: Path, tmp_path: Path) -> None:
    with pytest.warns(VariableFrameRateWarning):
        reader = VideoReader(clip_vfr, on_vfr="conform", conform_rate=Fraction(25))
    assert reader.output.frame_count == 14
    with reader, VideoWriter(tmp_path / "cfr.mp4", reader.output, preset="ultrafast") as writer:
        for frame in reader:
            writer.write(frame)
    video = probe(tmp_path / "cfr.mp4").require_video()
    assert (video.frame_count, video.frame_rate, video.variable_frame_rate) == (
        14, Fraction(25), False)
    assert video.time_base == Fraction(1, 25)


def test_bad_frames_refused(tmp_path: Path) -> None:
    like = VideoStreamInfo.new(64, 48, 25)
    path = tmp_path / "x.mp4"
    with VideoWriter(path, like) as writer:
        with pytest.raises(ValueError, match="expected \\(48, 64, 3\\) uint8"):
            writer.write(np.zeros((48, 65, 3), np.uint8))
        with pytest.raises(ValueError, match="uint8"):
            writer.write(np.zeros((48, 64, 3), np.float32))
        with VideoReader(gen.GRID[0]) as reader:
            frames = iter(reader)
            next(frames)
            with pytest.raises(ValueError, match="in order"):
                writer.write(next(frames))  # index 1 before index 0


def test_crash_leaves_no_partial_file(tmp_path: Path) -> None:
    path = tmp_path / "partial.mp4"

    @contextmanager
    def failing() -> Iterator[None]:
        with VideoWriter(path, VideoStreamInfo.new(64, 48, 25), preset="ultrafast") as writer:
            for i in range(60):  # enough for packets to reach the file
                writer.write(gen.marker_frame(i, 64, 48))
            assert path.stat().st_size > 0
            yield

    with pytest.raises(KeyError), failing():
        raise KeyError("the render crashed")
    assert not path.exists()


def test_argument_checks(tmp_path: Path) -> None:
    like = VideoStreamInfo.new(64, 48, 25)
    with pytest.raises(ValueError, match="QuickTime"):
        VideoWriter(tmp_path / "a.mp4", like, codec="prores")
    with pytest.raises(ValueError, match="must end in"):
        VideoWriter(tmp_path / "a.avi", like)
    with pytest.raises(ValueError, match="drop-frame"):
        VideoWriter(tmp_path / "a.mp4", like, timecode="01:00:00;00")
    with pytest.raises(ValueError, match="out of range"):
        VideoWriter(tmp_path / "a.mp4", like, timecode="01:00:00:25")


def test_array_audio_must_be_supported() -> None:
    with pytest.raises(ValueError, match="channels"):
        Audio(np.zeros((3, 100), np.float32), 48000)
