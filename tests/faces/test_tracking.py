"""Tracking: stable ids on real clips, cuts, re-identification, and the bookkeeping rules."""

from __future__ import annotations

from collections.abc import Callable, Iterator

import av
import cv2
import numpy as np
import pytest

from pipelines.faces import (
    DlibEmbedder,
    FaceObservation,
    FaceTracker,
    ScanResult,
    ShotCutDetector,
    scan_video,
)
from pipelines.faces.geometry import CANONICAL_POINTS
from pipelines.faces.tracking import DEFAULT_CUT_THRESHOLD
from tests.faces.conftest import GRID_NAMES, MEDIA, Recorder, grid_frames

Scans = dict[str, tuple[ScanResult, Recorder]]


# -- real clips ------------------------------------------------------------------------------


def test_every_grid_clip_is_one_stable_track(grid_scans: Scans) -> None:
    for name in GRID_NAMES:
        result, rec = grid_scans[name]
        assert result.frame_count == 75
        assert result.cuts == [], name
        assert len(result.tracks) == 1, name
        track = result.tracks[0]
        assert track.frame_count >= 0.95 * 75, name
        assert track.last_frame - track.first_frame + 1 >= 0.95 * 75, name
        ids = rec.ids()
        assert sum(1 for f in ids if f == [track.track_id]) >= 0.95 * 75, name
        assert {i for f in ids for i in f} == {track.track_id}, name
        scores = [obs.score for faces in rec.frames for _, obs in faces]
        assert all(0.5 <= sc <= 1.0 for sc in scores), name  # detector score, carried over
        assert track.embedding is None and track.samples == ()  # no embedder given


def test_two_clips_back_to_back_make_a_cut_and_two_tracks(dlib_embedder: DlibEmbedder) -> None:
    # lbax4n → lrwp9a is the junction with the smallest colour change of all 30 orders
    # (both teal backdrops), and the two speakers are well apart in identity.
    frames = grid_frames("lbax4n") + grid_frames("lrwp9a")
    rec = Recorder()
    result = scan_video(frames, dlib_embedder, on_frame=rec)
    assert result.frame_count == 150
    assert result.cuts == [75]
    assert len(result.tracks) == 2
    first, second = result.tracks
    assert first.track_id != second.track_id
    assert first.segments == ((0, 74),) and second.segments == ((75, 149),)
    assert {i for f in rec.ids()[:75] for i in f} == {first.track_id}
    assert {i for f in rec.ids()[75:] for i in f} == {second.track_id}
    assert first.embedding is not None and second.embedding is not None
    assert dlib_embedder.distance(first.embedding, second.embedding) > 0.6
    for track in result.tracks:
        assert 8 <= len(track.samples) <= 16
        assert all(s.good for s in track.samples)


def test_a_speaker_coming_back_after_a_cut_keeps_their_id(dlib_embedder: DlibEmbedder) -> None:
    # A = brbk7n and B = lrwp9a are the two closest speakers of the six (dlib ≈ 0.58): B must
    # not be mistaken for A, and A's return must be.
    a, b = grid_frames("brbk7n"), grid_frames("lrwp9a")
    frames = a[:30] + b[:30] + a[30:60]
    rec = Recorder()
    result = scan_video(frames, dlib_embedder, on_frame=rec)
    assert result.cuts == [30, 60]
    assert len(result.tracks) == 2
    ids = rec.ids()
    a_id, b_id = ids[0][0], ids[30][0]
    assert a_id != b_id
    assert all(f == [a_id] for f in ids[:30])
    assert all(f == [b_id] for f in ids[30:60])
    assert all(f == [a_id] for f in ids[60:])
    track_a = next(t for t in result.tracks if t.track_id == a_id)
    assert track_a.segments == ((0, 29), (60, 89))
    assert track_a.frame_count == 60
    sample_frames = [s.frame_index for s in track_a.samples]
    assert any(f < 30 for f in sample_frames) and any(f >= 60 for f in sample_frames)


def test_two_faces_side_by_side_keep_two_ids(dlib_embedder: DlibEmbedder) -> None:
    left, right = grid_frames("bbaf2n"), grid_frames("lbbc2a")
    frames = [np.hstack([x, y]) for x, y in zip(left, right, strict=True)]
    rec = Recorder()
    result = scan_video(frames, dlib_embedder, on_frame=rec)
    assert len(result.tracks) == 2
    left_ids = [tid for faces in rec.frames for tid, obs in faces if obs.center[0] < 360]
    right_ids = [tid for faces in rec.frames for tid, obs in faces if obs.center[0] >= 360]
    assert len(set(left_ids)) == 1 and len(set(right_ids)) == 1
    assert left_ids[0] != right_ids[0]
    assert len(left_ids) >= 72 and len(right_ids) >= 72
    for track in result.tracks:
        assert track.frame_count >= 72


def test_tiny_faces_do_not_crash_the_scan(dlib_embedder: DlibEmbedder) -> None:
    frames = [cv2.resize(np.asarray(f), (64, 51), interpolation=cv2.INTER_AREA)
              for f in grid_frames("lbbc2a")[:25]]
    result = scan_video(frames, dlib_embedder)
    assert result.frame_count == 25
    assert len(result.tracks) <= 1
    for track in result.tracks:
        assert track.frame_count <= 25
        assert track.embedding is None or track.embedding.shape == (128,)


def test_frames_without_faces_make_no_tracks() -> None:
    rng = np.random.default_rng(3)
    frames = [rng.integers(0, 256, (288, 360, 3), dtype=np.uint8) for _ in range(5)]
    frames += [np.zeros((288, 360, 3), np.uint8)] * 5
    result = scan_video(frames, None)
    assert result.tracks == [] and result.frame_count == 10


def test_scan_streams_straight_from_a_decoder() -> None:
    seen: list[int] = []

    def frames() -> Iterator[np.ndarray]:
        with av.open(str(MEDIA / "grid" / "lbbc2a.mpg")) as container:
            for i, frame in enumerate(container.decode(video=0)):
                seen.append(i)
                yield frame.to_ndarray(format="rgb24")

    rec = Recorder()
    result = scan_video(frames(), None, on_frame=rec)
    assert seen == list(range(75)) and result.frame_count == 75
    assert len(rec.frames) == 75 and len(result.tracks) == 1


def test_an_empty_stream_is_an_empty_result() -> None:
    assert scan_video([], None) == ScanResult(tracks=[], frame_count=0, cuts=[])


def test_cut_detector_separates_every_junction_from_every_frame_step() -> None:
    worst_inside, easiest_cut = 0.0, 1.0
    for name in GRID_NAMES:
        det = ShotCutDetector()
        cuts = [det.update(f) for f in grid_frames(name)]
        assert not any(cuts), name
    for name in GRID_NAMES:
        det = ShotCutDetector()
        for f in grid_frames(name):
            det.update(f)
            worst_inside = max(worst_inside, det.last_score)
    for a in GRID_NAMES:
        for b in GRID_NAMES:
            if a != b:
                det = ShotCutDetector()
                det.update(grid_frames(a)[-1])
                assert det.update(grid_frames(b)[0]), (a, b)
                easiest_cut = min(easiest_cut, det.last_score)
    print(f"\ncut score: within clips ≤ {worst_inside:.3f}, at junctions ≥ {easiest_cut:.3f}, "
          f"threshold {DEFAULT_CUT_THRESHOLD}")
    assert worst_inside < DEFAULT_CUT_THRESHOLD / 1.5 < DEFAULT_CUT_THRESHOLD * 1.4 < easiest_cut


# -- bookkeeping on synthetic observations (no mediapipe, no dlib: fast and exact) ------------


class FakeEmbedder:
    """Identity = a vector chosen by the caller from the observation; counts calls."""

    name = "fake"
    licence = "test"
    dim = 4
    match_threshold = 0.5

    def __init__(self, identity: Callable[[FaceObservation], int]) -> None:
        self.identity = identity
        self.calls = 0

    def embed(self, rgb: np.ndarray, observation: FaceObservation) -> np.ndarray:
        self.calls += 1
        vec = np.zeros(4, np.float32)
        vec[self.identity(observation) % 4] = 1.0
        return vec

    def distance(self, a: np.ndarray, b: np.ndarray) -> float:
        return float(np.linalg.norm(a - b))


TEXTURE = np.random.default_rng(0).integers(0, 256, (480, 640, 3), dtype=np.uint8)


def face_at(x: float, y: float = 200.0, size: float = 100.0, tag: float = 0.0) -> FaceObservation:
    """A frontal synthetic face: the pose points of the canonical model in a box at (x, y).

    ``tag`` is carried in the score so a fake embedder can tell people apart."""
    mesh = np.zeros((478, 3), np.float32)
    model = np.array(list(CANONICAL_POINTS.values()), np.float32)
    mesh[list(CANONICAL_POINTS), 0] = x + size / 2 + model[:, 0] * size / 18
    mesh[list(CANONICAL_POINTS), 1] = y + size / 2 - model[:, 1] * size / 18
    return FaceObservation((x, y, x + size, y + size), mesh, tag, (640, 480))


def by_tag(obs: FaceObservation) -> int:
    return int(obs.score)


def test_a_track_ends_after_max_missed_frames() -> None:
    tracker = FaceTracker(None, max_missed=3)
    ids = []
    for i in range(12):
        present = i < 4 or i >= 8
        faces = [face_at(100 + i)] if present else []
        ids.append([tid for tid, _ in tracker.update(TEXTURE, faces, cut=False)])
    assert ids[:4] == [[1]] * 4 and ids[4:8] == [[]] * 4
    assert ids[8:] == [[2]] * 4  # 4 missed frames > 3: a new track (no embedder to re-id)
    tracks = tracker.finish()
    assert [(t.track_id, t.frame_count) for t in tracks] == [(1, 4), (2, 4)]

    tracker = FaceTracker(None, max_missed=3)
    got = [tracker.update(TEXTURE, [face_at(100)] if i != 2 else [], cut=False) for i in range(6)]
    assert {tid for faces in got for tid, _ in faces} == {1}  # 1 missed frame is bridged


def test_reidentification_after_an_occlusion_uses_the_embedding() -> None:
    fake = FakeEmbedder(by_tag)
    tracker = FaceTracker(fake, max_missed=2)
    seq = [[face_at(100, tag=1)]] * 5 + [[]] * 4 + [[face_at(300, tag=1)]] * 3
    seq += [[]] * 4 + [[face_at(300, tag=2)]] * 3
    ids = [[tid for tid, _ in tracker.update(TEXTURE, faces, cut=False)] for faces in seq]
    assert ids[9:12] == [[1]] * 3  # same identity, somewhere else: the id carries over
    assert ids[16:] == [[2]] * 3  # another identity: a new id
    tracks = tracker.finish()
    assert tracks[0].segments == ((0, 4), (9, 11))


def test_an_old_id_is_claimed_once_and_never_while_live() -> None:
    fake = FakeEmbedder(by_tag)
    tracker = FaceTracker(fake)
    tracker.update(TEXTURE, [face_at(100, tag=1)], cut=False)
    # After a cut, two faces of the same identity appear at once: only one takes id 1.
    out = tracker.update(TEXTURE, [face_at(50, tag=1), face_at(400, tag=1)], cut=True)
    assert sorted(tid for tid, _ in out) == [1, 2]
    # A third one while 1 is live: a fresh id, not 1.
    out = tracker.update(
        TEXTURE, [face_at(50, tag=1), face_at(400, tag=1), face_at(250, y=20, tag=1)], cut=False
    )
    assert sorted(tid for tid, _ in out) == [1, 2, 3]


def test_samples_stay_bounded_and_evenly_spread_on_a_long_track() -> None:
    fake = FakeEmbedder(by_tag)
    tracker = FaceTracker(fake, sample_every=5, max_samples=16)
    for i in range(2000):
        tracker.update(TEXTURE, [face_at(100 + (i % 7), tag=1)], cut=False)
    (track,) = tracker.finish()
    assert track.frame_count == 2000 and track.landmarks is None
    frames = [s.frame_index for s in track.samples]
    assert 8 <= len(frames) <= 16
    gaps = np.diff(frames)
    assert gaps.min() >= 64 and gaps.max() <= 2 * gaps.min()  # even spacing
    assert frames[0] < 200 and frames[-1] > 1700  # the whole track is covered
    assert fake.calls < 120  # logarithmic, not one embedding per 5 frames (400)


def test_landmarks_are_kept_only_when_asked() -> None:
    tracker = FaceTracker(None, keep_landmarks=True)
    for i in range(5):
        tracker.update(TEXTURE, [face_at(100 + i)], cut=False)
    (track,) = tracker.finish()
    assert track.landmarks is not None and sorted(track.landmarks) == [0, 1, 2, 3, 4]
    assert track.landmarks[4][1, 0] > track.landmarks[0][1, 0]


def test_non_frontal_and_soft_frames_are_not_templates() -> None:
    fake = FakeEmbedder(by_tag)
    tracker = FaceTracker(fake, sample_every=2)
    flat = np.full((480, 640, 3), 120, np.uint8)  # no texture: sharpness 0
    for _ in range(10):
        tracker.update(flat, [face_at(100, tag=1)], cut=False)
    (track,) = tracker.finish()
    # Only the birth frame was embedded (for re-identification), marked not good.
    assert fake.calls == 1
    assert [s.good for s in track.samples] == [False]
    assert track.embedding is not None


@pytest.mark.parametrize("bad", [{"sample_every": 0}, {"max_samples": 0}, {"max_missed": -1}])
def test_tracker_refuses_nonsense_settings(bad: dict[str, int]) -> None:
    with pytest.raises(ValueError, match="must be"):
        FaceTracker(None, **bad)  # type: ignore[arg-type]
