"""The LivePortrait backend end to end through ``run_reenact``, with random weights.

A reduced configuration (32² crops → 64² output, a few channels) stands in for the full one,
whose random-weight CPU speed (tens of seconds a frame) is too slow for a test; the plumbing —
crops from our meshes, the driver's frames, relative motion, stitching, batching, paste-back,
frame accounting and the sidecar — is the same. Sockets are blocked while the models are built
and the render runs: nothing may reach the network.
"""

from __future__ import annotations

import json
import socket
from collections.abc import Iterator
from fractions import Fraction
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from pipelines.edits import EditPermits
from pipelines.faces.analysis import ShotAnalysis
from pipelines.media import VideoReader, probe
from pipelines.reenact import Motion, ReenactJob, ReenactOptions, StillSource, run_reenact
from pipelines.reenact.liveportrait import (
    FULL,
    LivePortraitModels,
    LivePortraitReenact,
    LivePortraitSettings,
    reduced,
)
from pipelines.reenact.liveportrait.crop import CropParams, crop_params, paste_mask

from .conftest import ASTRONAUT


class NetworkUsed(AssertionError):
    pass


@pytest.fixture
def no_network(monkeypatch: pytest.MonkeyPatch) -> None:
    def refuse(*args: Any, **kwargs: Any) -> Any:
        raise NetworkUsed(f"network access attempted: {args[:2]}")

    monkeypatch.setattr(socket.socket, "connect", refuse)
    monkeypatch.setattr(socket.socket, "connect_ex", refuse)
    monkeypatch.setattr(socket, "create_connection", refuse)
    monkeypatch.setattr(socket, "getaddrinfo", refuse)


def test_sockets_are_really_blocked(no_network: None) -> None:
    with pytest.raises(NetworkUsed):
        socket.create_connection(("example.com", 80), timeout=1)


def _frames(path: Path) -> Iterator[np.ndarray]:
    with VideoReader(path) as reader:
        for frame in reader:
            yield frame.rgb


class Changes:
    def __init__(self, original: Iterator[np.ndarray]) -> None:
        self.original = original
        self.changed: list[np.ndarray] = []

    def __call__(self, index: int, rgb: np.ndarray) -> None:
        self.changed.append(np.argwhere(np.any(rgb != next(self.original), axis=2)))


def test_video_render_through_run_reenact(no_network: None, source: ShotAnalysis,
                                          driver: ShotAnalysis, motion: Motion,
                                          tmp_path: Path) -> None:
    models = LivePortraitModels.random(reduced(32), seed=1)
    track = source.tracks[0].track_id
    job = ReenactJob(source, {track: motion}, tmp_path / "lp.mp4",
                     ReenactOptions(base="frame"), permits=EditPermits.all_frames([track]))
    backend = LivePortraitReenact.for_job(models, job, {track: driver},
                                          LivePortraitSettings(batch_size=8,
                                                               retarget_eyes=True,
                                                               retarget_lip=True))
    changes = Changes(_frames(source.source))
    result = run_reenact(job, backend, frame_hook=changes)
    assert result.frame_count == probe(result.output).require_video().frame_count == 75
    (change,) = result.changes
    assert change.frames == 75
    x0, y0, x1, y1 = change.box
    assert 0 < (x1 - x0) * (y1 - y0) < 360 * 288
    for where in changes.changed:
        if len(where):
            assert where[:, 1].min() >= x0 and where[:, 1].max() < x1
            assert where[:, 0].min() >= y0 and where[:, 0].max() < y1
    assert sum(len(w) > 0 for w in changes.changed) >= 70
    doc = json.loads(result.sidecar.read_text())
    assert doc["backend"] == "liveportrait" and doc["frame_count"] == 75
    assert backend.software_agent["licence"] == "MIT"


def test_still_render_is_batched_and_local(no_network: None, motion: Motion,
                                           driver: ShotAnalysis, tmp_path: Path) -> None:
    models = LivePortraitModels.random(reduced(32), seed=2)
    job = ReenactJob(StillSource(ASTRONAUT, Fraction(10)), {0: motion}, tmp_path / "still.mp4",
                     ReenactOptions(head_pose=True), permits=EditPermits.all_frames([0]))
    backend = LivePortraitReenact.for_job(models, job, {0: driver},
                                          LivePortraitSettings(batch_size=16))
    result = run_reenact(job, backend)
    assert result.frame_count == 30  # the driver's 3 s at 10 fps
    (change,) = result.changes
    assert change.frames == 30
    x0, y0, x1, y1 = change.box
    assert (x1 - x0) * (y1 - y0) < 512 * 512


def test_full_models_build_without_network(no_network: None) -> None:
    models = LivePortraitModels.build(FULL, device="meta")
    assert models.config.output_size == 512


def test_a_wrong_driver_video_is_refused(source: ShotAnalysis, motion: Motion,
                                         tmp_path: Path) -> None:
    models = LivePortraitModels.random(reduced(64))
    track = source.tracks[0].track_id
    job = ReenactJob(source, {track: motion}, tmp_path / "x.mp4",
                     permits=EditPermits.all_frames([track]))
    with pytest.raises(ValueError, match="SHA-256"):
        LivePortraitReenact.for_job(models, job, {track: source})
    with pytest.raises(KeyError, match="no driver video"):
        LivePortraitReenact.for_job(models, job, {})


def test_crop_follows_the_reference_rule(source: ShotAnalysis) -> None:
    lm = source.landmarks(source.tracks[0].track_id)
    mesh = np.asarray(lm.meshes[0], dtype=np.float64)
    crop = crop_params(mesh, scale=2.3, vy_ratio=-0.125)
    eyes = mesh[[33, 133, 362, 263], :2].mean(axis=0)
    # The face sits inside the crop, eyes above its centre line, the crop ≈ 2.3 faces wide.
    m = crop.to_crop(256)
    e = m[:, :2] @ eyes + m[:, 2]
    assert 0 < e[0] < 256 and 0 < e[1] < 128 + 20
    width = np.ptp(mesh[:, 0])
    assert 1.6 * width < crop.size < 3.2 * width
    back = CropParams(*crop.as_array()).to_frame(256)
    assert np.allclose(back[:, :2] @ e + back[:, 2], eyes)
    mask = paste_mask(128)
    assert mask[0].max() == 0 and mask[:, -1].max() == 0 and mask[64, 64] == 1.0
