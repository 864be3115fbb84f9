"""Hostile and broken inputs: each gets its own MediaError with a readable reason, no crash."""

from __future__ import annotations

import contextlib
import shutil
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from pipelines.media import (
    EmptyMediaError,
    FrameTooLargeError,
    MediaError,
    MediaNotFoundError,
    NoAudioStreamError,
    NotMediaError,
    NoVideoStreamError,
    TruncatedMediaError,
    UnsupportedMediaError,
    VideoReader,
    load_audio,
    probe,
)
from tests.media import mediagen as gen


@pytest.fixture(scope="module")
def small_mp4(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """An H.264 MP4 with its index (moov) at the end, as FFmpeg writes by default."""
    folder = tmp_path_factory.mktemp("bad")
    return gen.write_video(folder / "small.mp4", gen.grid_frames(20, size=(160, 128)),
                           audio=(gen.tone(440, 0.8, 16000), 16000))


def _cut(src: Path, dst: Path, fraction: float) -> Path:
    data = src.read_bytes()
    dst.write_bytes(data[: int(len(data) * fraction)])
    return dst


def test_zero_length(tmp_path: Path) -> None:
    empty = tmp_path / "empty.mp4"
    empty.touch()
    for call in (probe, VideoReader, load_audio):
        with pytest.raises(EmptyMediaError, match="zero-length"):
            call(empty)


def test_missing_and_directory(tmp_path: Path) -> None:
    with pytest.raises(MediaNotFoundError, match="no such file"):
        probe(tmp_path / "nope.mov")
    with pytest.raises(NotMediaError, match="not a regular file"):
        probe(tmp_path)


@pytest.mark.parametrize("content", [b"hello, world\n" * 200, bytes(range(256)) * 64,
                                     np.random.default_rng(7).bytes(50_000)],
                         ids=["text", "bytes", "random"])
def test_not_media(tmp_path: Path, content: bytes) -> None:
    path = tmp_path / "clip.mp4"
    path.write_bytes(content)
    with pytest.raises(NotMediaError, match="not an audio or video file"):
        probe(path)
    with pytest.raises(NotMediaError):
        VideoReader(path)


def test_truncated_mp4_without_index(small_mp4: Path, tmp_path: Path) -> None:
    cut = _cut(small_mp4, tmp_path / "cut.mp4", 0.5)
    with pytest.raises(TruncatedMediaError, match="starts like MP4/QuickTime"):
        probe(cut)


def test_truncated_faststart_mp4(tmp_path: Path) -> None:
    whole = gen.write_video(tmp_path / "fs.mp4", gen.grid_frames(20, size=(160, 128)),
                            container_options={"movflags": "faststart"})
    cut = _cut(whole, tmp_path / "cut.mp4", 0.6)
    with pytest.raises(TruncatedMediaError, match="truncated"):
        probe(cut)
    with pytest.raises(TruncatedMediaError):
        VideoReader(cut)


def test_truncated_matroska(tmp_path: Path) -> None:
    whole = gen.write_video(tmp_path / "a.mkv", gen.grid_frames(25, size=(160, 128)))
    cut = _cut(whole, tmp_path / "cut.mkv", 0.5)
    with pytest.raises(TruncatedMediaError, match=r"header says 1\.000 s"):
        probe(cut)


def test_16k_refused_before_decoding(tmp_path: Path) -> None:
    path = gen.y4m_header_only(tmp_path / "16k.y4m", 15360, 8640)
    with pytest.raises(FrameTooLargeError, match=r"15360x8640 .* refused before decoding"):
        probe(path)
    with pytest.raises(FrameTooLargeError):
        VideoReader(path)


def test_pixel_limit_is_configurable() -> None:
    grid = gen.GRID[0]
    with pytest.raises(FrameTooLargeError, match="limit of 103,679 pixels"):
        probe(grid, max_pixels=360 * 288 - 1)
    assert probe(grid, max_pixels=360 * 288).require_video().pixels == 360 * 288


def test_audio_only_has_no_frames(audio_only: Path) -> None:
    with pytest.raises(NoVideoStreamError):
        VideoReader(audio_only)


def test_video_only_has_no_audio(clip_rotated: Path) -> None:
    with pytest.raises(NoAudioStreamError, match="the file has 0"):
        load_audio(clip_rotated)
    with pytest.raises(NoAudioStreamError, match="audio stream 1 requested"):
        load_audio(gen.GRID[0], stream=1)


def test_unsupported_channel_layout(tmp_path: Path) -> None:
    quad = gen.write_audio(tmp_path / "quad.wav", gen.tone(440, 0.5, 48000, 4), 48000)
    with pytest.raises(UnsupportedMediaError, match="'quad'"):
        load_audio(quad)


def test_unsupported_sample_rate(tmp_path: Path) -> None:
    low = gen.write_audio(tmp_path / "low.wav", gen.tone(100, 0.5, 4000), 4000)
    with pytest.raises(UnsupportedMediaError, match="4000 Hz"):
        load_audio(low)


def test_media_error_names_the_file(tmp_path: Path) -> None:
    path = tmp_path / "notes.txt"
    path.write_text("not a film")
    with pytest.raises(MediaError) as caught:
        probe(path)
    assert caught.value.path == path
    assert str(path) in str(caught.value)


_FUZZ = settings(max_examples=30, deadline=None,
                 suppress_health_check=[HealthCheck.function_scoped_fixture])


@_FUZZ
@given(fraction=st.floats(min_value=0.0, max_value=1.0))
def test_any_truncation_is_handled(small_mp4: Path, tmp_path: Path, fraction: float) -> None:
    """Cut anywhere: a MediaError or a readable file, never another exception."""
    path = _cut(small_mp4, tmp_path / "fuzz.mp4", fraction)
    _read_all_or_media_error(path)


@_FUZZ
@given(data=st.data())
def test_corrupted_bytes_are_handled(small_mp4: Path, tmp_path: Path,
                                     data: st.DataObject) -> None:
    """Overwrite a few byte ranges: a MediaError or a readable file, never a crash."""
    raw = bytearray(small_mp4.read_bytes())
    for _ in range(data.draw(st.integers(1, 4))):
        at = data.draw(st.integers(0, len(raw) - 1))
        raw[at:at + 16] = data.draw(st.binary(min_size=16, max_size=16))
    path = tmp_path / "corrupt.mp4"
    path.write_bytes(bytes(raw))
    _read_all_or_media_error(path)


def _read_all_or_media_error(path: Path) -> None:
    try:
        with VideoReader(path) as reader:
            for frame in reader:
                assert frame.rgb.shape == (128, 160, 3)
    except MediaError:
        pass
    with contextlib.suppress(MediaError):
        load_audio(path)


def test_grid_copy_is_fine(tmp_path: Path) -> None:
    """Control: the fuzz helpers do not reject a good file."""
    copy = tmp_path / "copy.mpg"
    shutil.copy(gen.GRID[0], copy)
    assert probe(copy).require_video().frame_count == 75


@pytest.mark.parametrize("fraction", [0.3, 0.55, 0.8, 0.95])
def test_read_ahead_fails_as_the_plain_reader_does(small_mp4: Path, tmp_path: Path,
                                                  fraction: float,
                                                  monkeypatch: pytest.MonkeyPatch) -> None:
    """A file that stops decoding part way, read with ``read_ahead``: the same frames, then
    the same error, raised in the consumer (not lost on the decode thread)."""
    decoded = VideoReader._decoded
    stop_after = int(20 * fraction)

    def failing(self: VideoReader) -> Any:
        for n, frame in enumerate(decoded(self)):
            if n == stop_after:
                raise TruncatedMediaError(self.path, f"reading stopped after {n} frames")
            yield frame

    monkeypatch.setattr(VideoReader, "_decoded", failing)
    outcomes = []
    for depth in (0, 2):
        got: list[int] = []
        error: str | None = None
        try:
            with VideoReader(small_mp4, read_ahead=depth) as reader:
                got.extend(f.index for f in reader)
        except TruncatedMediaError as exc:
            error = str(exc)
        outcomes.append((got, error))
    assert outcomes[0] == outcomes[1]
    assert outcomes[0] == (list(range(stop_after)), outcomes[0][1]) and outcomes[0][1]
