"""The lip-sync pipeline end to end on real GRID footage: what changes, what must not."""

from __future__ import annotations

import json
from collections.abc import Iterator
from fractions import Fraction
from pathlib import Path

import av
import numpy as np
import pytest

from pipelines.edits import EditPermits
from pipelines.faces import FaceMeshDetector, mouth_opening
from pipelines.faces.analysis import ShotAnalysis, analyse_shot
from pipelines.lipsync import (
    EmbeddedLipSync,
    LipSyncError,
    LipSyncJob,
    LipSyncResult,
    SpeechDrive,
    run_lipsync,
)
from pipelines.lipsync.drive import loudness_envelope
from pipelines.media import VideoReader, probe
from pipelines.speech.dub import PreparedDub
from tests.media.mediagen import write_video

from .conftest import GRID


def _frames(path: Path) -> Iterator[np.ndarray]:
    with VideoReader(path) as reader:
        for frame in reader:
            yield frame.rgb


def _pearson(a: np.ndarray, b: np.ndarray) -> float:
    return float(np.corrcoef(a, b)[0, 1])


class Capture:
    """Frame hook: keeps the rendered frames' mouth openings and checks locality."""

    def __init__(self, source: Path) -> None:
        self.source = _frames(source)
        self.detector = FaceMeshDetector(static=False, max_faces=2)
        self.openings: list[float] = []
        self.changed: list[tuple[int, np.ndarray]] = []

    def __call__(self, index: int, rgb: np.ndarray) -> None:
        original = next(self.source)
        diff = np.argwhere(np.any(rgb != original, axis=2))
        self.changed.append((index, diff))
        faces = self.detector.detect(rgb)
        self.openings.append(mouth_opening(faces[0].landmarks) if faces else np.nan)


@pytest.fixture(scope="module")
def rendered(shot_a: ShotAnalysis, drive_b: SpeechDrive, dub_b: PreparedDub,
             tmp_path_factory: pytest.TempPathFactory) -> tuple[LipSyncResult, Capture]:
    capture = Capture(shot_a.source)
    out = tmp_path_factory.mktemp("render") / "a_speaks_b.mp4"
    job = LipSyncJob(shot_a, {shot_a.tracks[0].track_id: drive_b}, dub_b.mix, out,
                     permits=EditPermits.all_frames([shot_a.tracks[0].track_id]))
    return run_lipsync(job, EmbeddedLipSync(), frame_hook=capture), capture


def test_output_keeps_the_shots_frames_rate_and_size(rendered: tuple[LipSyncResult, Capture],
                                                     shot_a: ShotAnalysis) -> None:
    result, _ = rendered
    source, output = probe(shot_a.source), probe(result.output)
    assert source.video is not None and output.video is not None
    assert output.video.frame_count == source.video.frame_count == 75
    assert output.video.frame_rate == source.video.frame_rate
    assert (output.video.width, output.video.height) == (source.video.width, source.video.height)
    (audio,) = output.audio
    assert float(audio.duration) == pytest.approx(3.0, abs=0.05)


def test_only_the_lower_face_changes(rendered: tuple[LipSyncResult, Capture]) -> None:
    result, capture = rendered
    (change,) = result.changes
    x0, y0, x1, y1 = change.box
    assert change.frames == 75
    assert (x1 - x0) * (y1 - y0) < 0.25 * 360 * 288
    changed_frames = 0
    for _, where in capture.changed:
        if len(where):
            changed_frames += 1
            assert where[:, 1].min() >= x0 and where[:, 1].max() < x1
            assert where[:, 0].min() >= y0 and where[:, 0].max() < y1
    assert changed_frames >= 60


def test_the_mouth_follows_the_new_dialogue(rendered: tuple[LipSyncResult, Capture],
                                            shot_a: ShotAnalysis, dub_b: PreparedDub,
                                            drive_b: SpeechDrive) -> None:
    """The swap test in small: the output's mouth tracks B's loudness, the source's does not."""
    _, capture = rendered
    loud = loudness_envelope(dub_b.dialogue_mono_16k, Fraction(25), 75)
    detector = FaceMeshDetector(static=False)
    source = np.array([mouth_opening(detector.detect(f)[0].landmarks)
                       for f in _frames(shot_a.source)])
    output = np.array(capture.openings)
    assert not np.isnan(output).any()
    r_out, r_src = _pearson(output, loud), _pearson(source, loud)
    assert r_out > 0.5, (r_out, r_src)
    # GRID sentences share their rhythm (silence, 2 s of speech, silence): A's own mouth
    # already correlates with B's loudness, so the margin is modest.
    assert r_out > r_src + 0.15, (r_out, r_src)
    # What the drive commands (jaw minus lip closure) is what the picture shows.
    commanded = drive_b.shapes[:, 0] * (1.0 - drive_b.shapes[:, 2])
    assert _pearson(output, commanded) > 0.8


def test_lips_close_on_bilabials_and_rest_in_silence(rendered: tuple[LipSyncResult, Capture],
                                                     drive_b: SpeechDrive) -> None:
    _, capture = rendered
    output = np.array(capture.openings)
    closed = drive_b.shapes[:, 2] >= 0.99
    assert closed.sum() >= 2  # "P" of "bin" misheard as P, "B" of "by"
    assert output[closed].max() < 0.05, output[closed]
    silent = np.ones(75, bool)
    for a, b in drive_b.voiced:
        silent[int(a * 25): int(np.ceil(b * 25)) + 1] = False
    assert silent.sum() >= 10
    assert float(np.mean(output[silent])) < 0.04


def test_sidecar_holds_the_viseme_timeline(rendered: tuple[LipSyncResult, Capture]) -> None:
    result, _ = rendered
    doc = json.loads(result.sidecar.read_text())
    assert doc["frame_count"] == 75 and doc["frame_rate"] == "25/1"
    assert doc["backend"] == "embedded-mesh"
    (face,) = doc["faces"]
    assert face["origin"] == "recording" and face["edited_frames"] == 75
    visemes = [v["viseme"] for v in face["visemes"]]
    assert "PBM" in visemes and "REST" in visemes
    starts = [v["start"] for v in face["visemes"]]
    assert starts == sorted(starts)


def test_timecode_and_untouched_faceless_frames(tmp_path: Path, drive_b: SpeechDrive,
                                                dub_b: PreparedDub) -> None:
    """A shot that starts on ten faceless frames, with a start timecode."""
    grey = [np.full((288, 360, 3), 128, np.uint8)] * 10
    with av.open(str(GRID / "bbaf2n.mpg")) as container:
        faces = [f.to_ndarray(format="rgb24") for f in container.decode(video=0)][:65]
    source = write_video(tmp_path / "tc.mp4", grey + faces, timecode="01:00:10:00",
                         options={"crf": "12"})
    shot = analyse_shot(source, tmp_path / "work", None)
    capture = Capture(source)
    out = tmp_path / "out.mov"
    result = run_lipsync(LipSyncJob(shot, {shot.tracks[0].track_id: drive_b}, dub_b.mix, out,
                                    permits=EditPermits.all_frames([shot.tracks[0].track_id])),
                         EmbeddedLipSync(), frame_hook=capture)
    info = probe(out)
    assert info.video is not None and info.video.timecode == "01:00:10:00"
    assert info.video.frame_count == 75
    assert all(len(where) == 0 for index, where in capture.changed if index < 10)
    assert result.changes[0].first_frame >= 10


def test_only_the_chosen_face_changes(tmp_path: Path, drive_b: SpeechDrive, dub_b: PreparedDub
                                      ) -> None:
    with av.open(str(GRID / "bbaf2n.mpg")) as a, av.open(str(GRID / "brbk7n.mpg")) as b:
        pairs = zip(a.decode(video=0), b.decode(video=0), strict=False)
        frames = [np.concatenate([x.to_ndarray(format="rgb24"), y.to_ndarray(format="rgb24")],
                                 axis=1) for x, y in pairs]
    source = write_video(tmp_path / "two.mp4", frames, options={"crf": "12"})
    shot = analyse_shot(source, tmp_path / "work", None)
    assert len(shot.tracks) == 2
    left = min(shot.tracks, key=lambda t: shot.landmarks(t.track_id).meshes[0][1, 0])
    capture = Capture(source)
    run_lipsync(LipSyncJob(shot, {left.track_id: drive_b}, dub_b.mix, tmp_path / "o.mp4",
                           permits=EditPermits.all_frames([left.track_id])),
                EmbeddedLipSync(), frame_hook=capture)
    touched = np.concatenate([w for _, w in capture.changed])
    assert len(touched) > 0
    assert touched[:, 1].max() < 360  # nothing in the right-hand speaker's half


def test_cancel_leaves_nothing(tmp_path: Path, shot_a: ShotAnalysis, drive_b: SpeechDrive,
                               dub_b: PreparedDub) -> None:
    out = tmp_path / "cancelled.mp4"
    calls = iter(range(100))
    with pytest.raises(InterruptedError):
        run_lipsync(LipSyncJob(shot_a, {shot_a.tracks[0].track_id: drive_b}, dub_b.mix, out,
                               permits=EditPermits.all_frames([shot_a.tracks[0].track_id])),
                    EmbeddedLipSync(), cancelled=lambda: next(calls) > 20)
    assert not out.exists()
    assert not list(tmp_path.iterdir())


def test_a_drive_of_another_length_is_refused(tmp_path: Path, shot_a: ShotAnalysis,
                                              drive_b: SpeechDrive) -> None:
    short = SpeechDrive(drive_b.frame_rate, 50, drive_b.shapes[:50], drive_b.dialogue)
    with pytest.raises(LipSyncError, match="50 frames"):
        run_lipsync(LipSyncJob(shot_a, {shot_a.tracks[0].track_id: short}, None,
                               tmp_path / "x.mp4",
                               permits=EditPermits.all_frames([shot_a.tracks[0].track_id])),
                    EmbeddedLipSync())
    with pytest.raises(KeyError, match="no face track 99"):
        run_lipsync(LipSyncJob(shot_a, {99: drive_b}, None, tmp_path / "x.mp4",
                               permits=EditPermits.all_frames([99])),
                    EmbeddedLipSync())
