"""The per-track lower-face model, the meshes it is measured from, and the mouth interior."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from pipelines.faces.analysis import ShotAnalysis
from pipelines.faces.geometry import mouth_opening
from pipelines.faces.landmark_file import LandmarkRecorder, TrackLandmarks
from pipelines.faces.landmarks import LIPS_INNER_LOWER, LIPS_INNER_UPPER, FaceObservation
from pipelines.faces.mouth import INNER_RING, MouthExemplar, MouthFrame, paint_interior
from pipelines.faces.warp import Roi
from pipelines.lipsync.model import LowerFaceModel
from pipelines.media import VideoReader
from pipelines.speech.visemes import SHAPES, Viseme


def _gap(model: LowerFaceModel, points: np.ndarray) -> float:
    index = {int(v): i for i, v in enumerate(model.vertices)}
    return float(points[index[LIPS_INNER_LOWER], 1] - points[index[LIPS_INNER_UPPER], 1])


def _width(model: LowerFaceModel, points: np.ndarray) -> float:
    index = {int(v): i for i, v in enumerate(model.vertices)}
    return float(points[index[291], 0] - points[index[61], 0])


# -- recorded meshes -------------------------------------------------------------------------


def _obs(value: float) -> FaceObservation:
    return FaceObservation((0, 0, 1, 1), np.full((478, 3), value, np.float32), 0.9)


def test_recorder_round_trip_and_runs(tmp_path: Path) -> None:
    with LandmarkRecorder(tmp_path) as rec:
        for frame in [0, 1, 2, 5, 6]:
            rec.add(frame, [(3, _obs(frame))])
        rec.add(7, [(4, _obs(70))])
    track = TrackLandmarks(tmp_path, 3)
    assert len(track) == 5 and (track.first_frame, track.last_frame) == (0, 6)
    assert track.mesh(5) is not None and float(track.mesh(5)[0, 0]) == 5.0  # type: ignore[index]
    assert track.mesh(3) is None
    assert list(track.runs()) == [(0, 3), (3, 5)]
    assert TrackLandmarks(tmp_path, 4).mesh(7) is not None


def test_recorder_refuses_frames_out_of_order(tmp_path: Path) -> None:
    with LandmarkRecorder(tmp_path) as rec:
        rec.add(4, [(1, _obs(0))])
        with pytest.raises(ValueError, match="out of order"):
            rec.add(4, [(1, _obs(0))])


def test_truncated_mesh_file_is_refused(tmp_path: Path) -> None:
    with LandmarkRecorder(tmp_path) as rec:
        rec.add(0, [(1, _obs(0))])
        rec.add(1, [(1, _obs(1))])
    data = (tmp_path / "track-1.f32").read_bytes()
    (tmp_path / "track-1.f32").write_bytes(data[:-10])
    with pytest.raises(ValueError, match="disagree"):
        TrackLandmarks(tmp_path, 1)
    with pytest.raises(FileNotFoundError):
        TrackLandmarks(tmp_path, 9)


# -- the shape model -------------------------------------------------------------------------


@pytest.fixture(scope="module")
def model(shot_a: ShotAnalysis) -> LowerFaceModel:
    return LowerFaceModel.measure(shot_a.landmarks(shot_a.tracks[0].track_id))


def test_model_is_measured_from_the_shot(model: LowerFaceModel) -> None:
    assert model.measured
    assert 0.08 <= model.open_gap <= 0.45
    assert model.closed_gap < 0.03
    # Canonical units: the outer eye corners are one unit apart, on the x axis.
    eyes = model.template[[33, 263]]
    assert np.linalg.norm(eyes[1] - eyes[0]) == pytest.approx(1.0, abs=0.02)
    assert abs(eyes[1, 1] - eyes[0, 1]) < 0.02
    # Jaw basis: the chin goes down with the lower lip, the upper lip stays.
    assert model.jaw_basis[152, 1] > 0.2
    assert model.jaw_basis[LIPS_INNER_UPPER, 1] == 0.0
    assert model.triangles.max() < len(model.vertices) + len(model.anchors)


def test_shapes_open_close_spread_and_round(model: LowerFaceModel) -> None:
    rest = model.displaced(SHAPES[Viseme.REST].as_array())
    pbm = model.displaced(SHAPES[Viseme.PBM].as_array())
    aa = model.displaced(SHAPES[Viseme.AA].as_array())
    iy = model.displaced(SHAPES[Viseme.IY].as_array())
    oo = model.displaced(SHAPES[Viseme.W_OO].as_array())
    assert _gap(model, pbm) < 0.01 and _gap(model, rest) < 0.01
    # The open vowel reaches the performer's own open gap.
    assert _gap(model, aa) == pytest.approx(model.open_gap, rel=0.2)
    assert _gap(model, aa) > 5 * _gap(model, rest) + 0.05
    assert _width(model, iy) > _width(model, rest) > _width(model, oo)


def test_a_track_that_never_opens_gets_a_procedural_jaw(shot_a: ShotAnalysis, tmp_path: Path
                                                        ) -> None:
    source = shot_a.landmarks(shot_a.tracks[0].track_id)
    closed = [r for r in range(len(source)) if mouth_opening(np.asarray(source.meshes[r])) < 0.02]
    assert len(closed) >= 5
    with LandmarkRecorder(tmp_path) as rec:
        for i, r in enumerate(closed):
            rec.add(i, [(1, FaceObservation((0, 0, 1, 1), np.asarray(source.meshes[r]), 1.0))])
    model = LowerFaceModel.measure(TrackLandmarks(tmp_path, 1))
    assert not model.measured
    aa = model.displaced(SHAPES[Viseme.AA].as_array())
    assert _gap(model, aa) > 0.1


# -- mouth interior --------------------------------------------------------------------------


@pytest.fixture(scope="module")
def open_frame(shot_a: ShotAnalysis) -> tuple[np.ndarray, np.ndarray]:
    exemplar = shot_a.exemplars[shot_a.tracks[0].track_id]
    with VideoReader(shot_a.source) as reader:
        for frame in reader:
            if frame.index == exemplar.frame_index:
                mesh = shot_a.landmarks(shot_a.tracks[0].track_id).mesh(frame.index)
                assert mesh is not None
                return frame.rgb, mesh
    raise AssertionError("exemplar frame not found")


def test_mouth_frame_round_trip(open_frame: tuple[np.ndarray, np.ndarray]) -> None:
    _, mesh = open_frame
    frame = MouthFrame.of(mesh)
    uv = frame.to_mouth(mesh.astype(np.float64))
    # Corners sit on the u axis, symmetric about the origin.
    assert uv[61, 1] == pytest.approx(-uv[291, 1], abs=0.03)
    assert uv[61, 0] == pytest.approx(-uv[291, 0], abs=1e-6)
    m = frame.patch_to_image()
    assert np.isfinite(m).all()


def test_exemplar_is_the_widest_open_frontal_mouth(shot_a: ShotAnalysis) -> None:
    exemplar = shot_a.exemplars[shot_a.tracks[0].track_id]
    assert not exemplar.synthetic and exemplar.gap > 0.06
    # The cavity is darker than the lips.
    assert exemplar.cavity_colour.mean() < exemplar.lip_colour.mean() - 30


def test_interior_changes_only_the_opening(open_frame: tuple[np.ndarray, np.ndarray],
                                           shot_a: ShotAnalysis) -> None:
    rgb, mesh = open_frame
    target = mesh[:, :2].astype(np.float64).copy()
    target[[14, 87, 178, 88, 95, 317, 402, 318, 324]] += (0.0, 6.0)  # open it further
    out = rgb.copy()
    roi = Roi(0, 0, rgb.shape[1], rgb.shape[0])
    for exemplar in (shot_a.exemplars[shot_a.tracks[0].track_id],
                     MouthExemplar.synthetic_for(rgb, mesh)):
        out = rgb.copy()
        paint_interior(out, exemplar, target, roi)
        changed = np.argwhere(np.any(out != rgb, axis=2))
        assert len(changed) > 20
        ring = target[list(INNER_RING)]
        lo, hi = ring.min(axis=0) - 1.5, ring.max(axis=0) + 1.5
        assert (changed[:, 1] >= lo[0]).all() and (changed[:, 1] <= hi[0]).all()
        assert (changed[:, 0] >= lo[1]).all() and (changed[:, 0] <= hi[1]).all()
