"""The MuseTalk 1.5-compatible backend with random weights at a reduced configuration.

What the reference computes is checked piece by piece (audio windows, positional encoding,
masking, batching); the end-to-end render on a GRID clip proves the plumbing: every frame
kept, nothing outside the crop boxes changed, and no network connection anywhere.
"""

from __future__ import annotations

import math
import socket
from collections.abc import Iterator
from fractions import Fraction
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import torch
from numpy.typing import NDArray

from pipelines.edits import EditPermits
from pipelines.faces.analysis import ShotAnalysis
from pipelines.lipsync import LipSyncJob, SpeechDrive, run_lipsync
from pipelines.lipsync.musetalk import MuseTalkBackend, MuseTalkEdit, crop_image, face_box
from pipelines.lipsync.musetalk_audio import AudioWindows, pad_frames, window_start
from pipelines.lipsync.musetalk_net import positional_encoding, tiny_configs
from pipelines.media import VideoReader
from pipelines.speech.dub import PreparedDub


@pytest.fixture(scope="module")
def backend() -> MuseTalkBackend:
    return MuseTalkBackend.from_configs(*tiny_configs(), seed=0, device="cpu", batch_size=4)


# -- audio conditioning ---------------------------------------------------------------------


class _FakeWindows(AudioWindows):
    """Segment features whose value is their global feature-frame index + 1 (layer-major)."""

    def _segment(self, index: int) -> torch.Tensor:
        self.segments_computed += 1
        frames = torch.arange(index * 1500, (index + 1) * 1500, dtype=torch.float32) + 1
        layers = torch.arange(5, dtype=torch.float32) * 1e6
        return (frames[:, None, None] + layers[None, :, None]).expand(1500, 5, 384).clone()


def _reference_windows(length: int, fps: int, frames: int) -> NDArray[np.float64]:
    """``get_whisper_chunk`` restated on the fake features' values: pad, then slice."""
    feats = np.arange(length, dtype=np.float64) + 1
    per = math.ceil(50 / fps)
    padded = np.concatenate([np.zeros(2 * per), feats, np.zeros(per * 3 * 2)])
    return np.stack([padded[math.floor(i * 50 / fps): math.floor(i * 50 / fps) + 10]
                     for i in range(frames)])


@pytest.mark.parametrize("fps", [25, 30, 24])
def test_audio_windows_follow_the_reference(backend: MuseTalkBackend, fps: int) -> None:
    seconds = 3.3
    samples = np.zeros(int(seconds * 16000), dtype=np.float32)
    windows = _FakeWindows(samples, Fraction(fps), backend.net)
    frames = int(seconds * fps)
    expected = _reference_windows(int(seconds * 50), fps, frames)
    got = windows.windows(list(range(frames)))
    assert got.shape == (frames, 50, 384)
    tokens = got[:, :, 0].reshape(frames, 10, 5).numpy()
    # token t = feature frame t // 5, layer t % 5 (frame-major, as rearrange 'c h w -> (c h) w')
    layer_offset = np.arange(5) * 1e6
    zero = expected == 0
    want = np.where(zero[:, :, None], 0, expected[:, :, None] + layer_offset)
    assert np.array_equal(tokens, want)
    assert pad_frames(Fraction(fps)) == (2 * math.ceil(50 / fps), 6 * math.ceil(50 / fps))


def test_long_audio_is_chunked_in_30s_segments(backend: MuseTalkBackend) -> None:
    samples = np.zeros(16000 * 70, dtype=np.float32)
    windows = _FakeWindows(samples, Fraction(25), backend.net, cache=2)
    frame = 749  # window starts at padded 1498 → feature frames 1494..1503 straddle 1500
    assert window_start(frame, Fraction(25)) == 1498
    tokens = windows.window(frame)[:, 0].reshape(10, 5)[:, 0]
    assert tokens.tolist() == [float(k + 1) for k in range(1494, 1504)]
    last = windows.window(70 * 25 - 1)[:, 0].reshape(10, 5)[:, 0]
    assert last[-1] == 0.0 and windows.length == 3500  # zero padding past the end
    assert windows.segments_computed == 3


def test_real_whisper_features_and_positional_encoding(backend: MuseTalkBackend) -> None:
    rng = np.random.default_rng(0)
    samples = (0.1 * rng.standard_normal(16000 * 2)).astype(np.float32)
    windows = AudioWindows(samples, Fraction(25), backend.net)
    first = windows.window(0)
    assert first.shape == (50, 384)
    assert torch.count_nonzero(first[:20]) == 0  # 2·ceil(50/25) = 4 zero frames of 5 layers
    assert torch.count_nonzero(first[20:]) > 0
    pe = positional_encoding(50)
    position, i = 7, 10
    assert pe[position, 2 * i].item() == pytest.approx(
        math.sin(position * math.exp(-2 * i * math.log(10000.0) / 384)), abs=1e-6)
    assert pe[position, 2 * i + 1].item() == pytest.approx(
        math.cos(position * math.exp(-2 * i * math.log(10000.0) / 384)), abs=1e-6)


# -- the network ----------------------------------------------------------------------------


def _inputs(n: int) -> tuple[NDArray[np.uint8], torch.Tensor]:
    crops = np.random.default_rng(1).integers(0, 256, (n, 256, 256, 3), dtype=np.uint8)
    audio = torch.randn(n, 50, 384, generator=torch.Generator().manual_seed(2))
    return crops, audio


def test_shapes_and_determinism(backend: MuseTalkBackend) -> None:
    crops, audio = _inputs(2)
    net = backend.net
    x = torch.from_numpy(crops).permute(0, 3, 1, 2).float() / 255
    latents = net.encode(x)
    assert latents.shape == (2, 8, 32, 32)
    predicted = net.predict(latents, audio)
    assert predicted.shape == (2, 4, 32, 32)
    out = net.generate(crops, audio)
    assert out.shape == (2, 256, 256, 3) and out.dtype == np.uint8
    assert np.array_equal(out, net.generate(crops, audio))


def test_lower_half_is_masked(backend: MuseTalkBackend) -> None:
    crops, _ = _inputs(1)
    other = crops.copy()
    other[:, 128:] = 255 - other[:, 128:]
    net = backend.net
    a = net.encode(torch.from_numpy(crops).permute(0, 3, 1, 2).float() / 255)
    b = net.encode(torch.from_numpy(other).permute(0, 3, 1, 2).float() / 255)
    # the masked latent sees only the upper half (its receptive field reaches a little past
    # the middle, so compare the top rows); the reference latent sees everything
    assert torch.allclose(a[:, :4, :12], b[:, :4, :12])
    assert not torch.allclose(a[:, 4:], b[:, 4:])


def test_batched_equals_unbatched(backend: MuseTalkBackend) -> None:
    crops, audio = _inputs(3)
    together = backend.net.generate(crops, audio)
    alone = np.concatenate([backend.net.generate(crops[i:i + 1], audio[i:i + 1])
                            for i in range(3)])
    assert np.abs(together.astype(int) - alone.astype(int)).max() <= 1


def test_crop_box_and_out_of_frame_crop(shot_a: ShotAnalysis) -> None:
    mesh = shot_a.landmarks(shot_a.tracks[0].track_id).meshes[0]
    x1, y1, x2, y2 = face_box(mesh)
    assert x1 < mesh[61, 0] < mesh[291, 0] < x2  # the mouth corners are inside
    assert y1 < mesh[1, 1] < mesh[13, 1] < mesh[152, 1] < y2
    rgb = np.zeros((40, 30, 3), dtype=np.uint8)
    rgb[:, :, 0] = 200
    crop = crop_image(rgb, (-10, -10, 40, 50))
    assert crop.shape == (256, 256, 3) and crop[..., 0].min() >= 199


# -- end to end -----------------------------------------------------------------------------


class _NoNetwork:
    def __init__(self, monkeypatch: pytest.MonkeyPatch) -> None:
        self.attempts: list[Any] = []

        def refuse(*args: Any, **kwargs: Any) -> Any:
            self.attempts.append(args)
            raise OSError("network access attempted")

        class Refused(socket.socket):
            def __init__(self, *args: Any, **kwargs: Any) -> None:
                refuse(*args)

        monkeypatch.setattr(socket, "socket", Refused)
        monkeypatch.setattr(socket, "create_connection", refuse)


def _frames(path: Path) -> Iterator[NDArray[np.uint8]]:
    with VideoReader(path, on_vfr="conform") as reader:
        for frame in reader:
            yield frame.rgb.copy()


def test_render_on_a_grid_clip_offline(tmp_path: Path, shot_a: ShotAnalysis,
                                       drive_b: SpeechDrive, dub_b: PreparedDub,
                                       monkeypatch: pytest.MonkeyPatch) -> None:
    guard = _NoNetwork(monkeypatch)
    backend = MuseTalkBackend.from_configs(*tiny_configs(), seed=1, device="cpu",
                                           batch_size=4).bind_source(shot_a.source)
    track = shot_a.tracks[0].track_id
    source = _frames(shot_a.source)
    changed: list[int] = []
    boxes: dict[int, tuple[int, int, int, int]] = {}
    edits_seen: list[MuseTalkEdit] = []
    original_render = backend.render

    def render(rgb: NDArray[np.uint8], edits: Any) -> None:
        edits_seen.extend(edits)
        for e in edits:
            boxes[e.frame_index] = (e.region.x0, e.region.y0, e.region.x1, e.region.y1)
        original_render(rgb, edits)

    monkeypatch.setattr(backend, "render", render)

    def capture(index: int, rgb: NDArray[np.uint8]) -> None:
        before = next(source)
        diff = np.any(before != rgb, axis=2)
        if index in boxes:
            x0, y0, x1, y1 = boxes[index]
            diff[y0:y1, x0:x1] = False
        assert not diff.any(), f"frame {index}: pixels outside the crop changed"
        if np.any(before != rgb):
            changed.append(index)

    job = LipSyncJob(shot_a, {track: drive_b}, dub_b.mix, tmp_path / "musetalk.mp4",
                     permits=EditPermits.all_frames([track]))
    result = run_lipsync(job, backend, frame_hook=capture)
    assert not guard.attempts
    assert result.frame_count == shot_a.scan.frame_count == 75
    assert result.backend == "musetalk-1.5"
    with VideoReader(result.output) as reader:
        assert reader.frame_count == 75
    assert len(edits_seen) == result.changes[0].frames > 70
    assert len(changed) > 70  # random weights: the mouth region does change
    stats = backend.stats
    assert stats.frames == len(edits_seen)  # every frame generated once
    assert stats.batches < len(edits_seen) / 2  # and in batches (frames decoded ahead)
    assert stats.ahead_used > len(edits_seen) / 2


def test_frames_decoded_ahead_are_checked(shot_a: ShotAnalysis, drive_b: SpeechDrive) -> None:
    """A result computed ahead is used only for the very crop it was computed from."""
    from pipelines.lipsync.interface import FaceTrackInput

    track = shot_a.tracks[0].track_id
    face = FaceTrackInput(track, shot_a.landmarks(track), None,
                          (shot_a.info.video.width, shot_a.info.video.height)
                          if shot_a.info.video else (0, 0))
    ahead = MuseTalkBackend.from_configs(*tiny_configs(), seed=5, device="cpu", batch_size=3,
                                         source=shot_a.source)
    alone = MuseTalkBackend.from_configs(*tiny_configs(), seed=5, device="cpu", batch_size=1)
    edits_a = ahead.edits(ahead.prepare(face, drive_b))
    edits_b = alone.edits(alone.prepare(face, drive_b))
    for index, rgb in zip(range(5), _frames(shot_a.source), strict=False):
        if index == 1:
            rgb[:, :, 1] = 255 - rgb[:, :, 1]  # not the picture the lookahead decoded
        first, second = next(edits_a), next(edits_b)
        assert first.frame_index == second.frame_index == index
        out_a, out_b = rgb.copy(), rgb.copy()
        ahead.render(out_a, [first])
        alone.render(out_b, [second])
        assert np.abs(out_a.astype(int) - out_b.astype(int)).max() <= 1
    # batches: [0, 1, 2] → frame 1 differs, recomputed alone: [1] → 2 from the first batch
    # → [3, 4, 5] → 4 from it
    assert ahead.stats.ahead_discarded == 1
    assert ahead.stats.ahead_used == 2
    assert ahead.stats.batches == 3 and ahead.stats.frames == 7
    assert alone.stats.batches == 5
