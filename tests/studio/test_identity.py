"""Enrolment and matching on real faces (GRID speakers): the identity half of the gate."""

from __future__ import annotations

import hashlib
import os
from pathlib import Path

import numpy as np
import pytest

from consent.keys import PrivateKey
from consent.registry import Registry
from consent.store import Store
from pipelines.faces.embedding import DlibEmbedder
from pipelines.faces.landmarks import FaceMeshDetector
from studio.identity import TrackEvidence, enrol, match_tracks, reference_frames
from tests.factory import Clock, request, signed_grant

GRID = Path(__file__).resolve().parents[2] / "assets" / "media" / "grid"
CLIPS = sorted(GRID.glob("*.mpg"))
ENROLLED = ("bbaf2n", "brbk7n")


@pytest.fixture(scope="module")
def embedder() -> DlibEmbedder:
    return DlibEmbedder()


@pytest.fixture(scope="module")
def tracks(embedder: DlibEmbedder) -> list[TrackEvidence]:
    """One track per clip: embeddings of every 9th frame (8 frames over 3 s)."""
    out = []
    with FaceMeshDetector(static=True) as detector:
        for clip in CLIPS:
            embs = []
            for _, rgb in reference_frames(clip, every=9):
                faces = detector.detect(rgb)
                assert len(faces) == 1
                embs.append(embedder.embed(rgb, faces[0]))
            out.append(TrackEvidence(clip.stem, embs))
    return out


@pytest.fixture
def reg(tmp_path: Path) -> Registry:
    registry = Registry(Store.open(f"sqlite:///{tmp_path / 'r.db'}"), PrivateKey.generate(),
                        "test.local/ledger", clock=Clock(), template_key=os.urandom(32))
    for clip in CLIPS:
        key = PrivateKey.generate()
        registry.register_performer(clip.stem, f"GRID speaker {clip.stem}", officer="O")
        registry.add_key(clip.stem, key.public_key, officer="O")
        sha = hashlib.sha256(clip.read_bytes()).hexdigest()
        registry.import_grant(signed_grant(key, performer_id=clip.stem, grant_id=f"g-{clip.stem}",
                                           evidence={"identity_template_sha256": [sha]}).raw,
                              officer="O")
    return registry


def test_enrolment_keeps_good_frames_only(reg: Registry, embedder: DlibEmbedder,
                                          tmp_path: Path) -> None:
    report = enrol(reg, "bbaf2n", [GRID / "bbaf2n.mpg"], embedder, officer="O", per_file=6)
    (entry,) = report.files
    assert entry.frames_examined == 15 and entry.accepted >= 12
    assert len(entry.templates) == 6
    blank = tmp_path / "blank.png"
    import cv2
    cv2.imwrite(str(blank), np.full((200, 200, 3), 128, np.uint8))
    empty = enrol(reg, "bbaf2n", [blank], embedder, officer="O")
    assert empty.template_count == 0
    assert empty.files[0].rejected == {"no face": 1}


def test_enrolled_speakers_match_and_nobody_else_does(reg: Registry, embedder: DlibEmbedder,
                                                      tracks: list[TrackEvidence]) -> None:
    for pid in ENROLLED:
        enrol(reg, pid, [GRID / f"{pid}.mpg"], embedder, officer="O")
    templates = reg.consented_templates(embedder.name)
    assert sorted(templates) == list(ENROLLED)
    verdicts = {m.track_id: m for m in match_tracks(tracks, templates, embedder)}
    for clip in CLIPS:
        m = verdicts[clip.stem]
        if clip.stem in ENROLLED:
            assert m.performer_id == clip.stem
            assert m.distance is not None and m.distance < 0.3
            assert m.margin is not None and m.margin > 0.3
        else:
            assert m.performer_id is None, (clip.stem, m)
            assert m.distance is not None and m.distance > embedder.match_threshold


def test_someone_elses_face_under_a_valid_grant_is_denied(reg: Registry,
                                                          embedder: DlibEmbedder,
                                                          tracks: list[TrackEvidence]) -> None:
    enrol(reg, "bbaf2n", [GRID / "bbaf2n.mpg"], embedder, officer="O")
    templates = reg.consented_templates(embedder.name)
    verdicts = {m.track_id: m for m in match_tracks(tracks, templates, embedder)}
    own = verdicts["bbaf2n"].model_copy(update={"track_id": "t1"})
    decision = reg.authorize(request("bbaf2n"), [own])
    assert decision.allowed, decision.reasons
    other = verdicts["lbax4n"].model_copy(update={"track_id": "t1"})
    decision = reg.authorize(request("bbaf2n"), [other])
    assert not decision.allowed
    assert any("matches no enrolled performer" in r for r in decision.reasons)


def test_too_few_frames_is_no_verdict(reg: Registry, embedder: DlibEmbedder,
                                      tracks: list[TrackEvidence]) -> None:
    enrol(reg, "bbaf2n", [GRID / "bbaf2n.mpg"], embedder, officer="O")
    short = TrackEvidence("t9", tracks[0].embeddings[:2])
    (m,) = match_tracks([short], reg.consented_templates(embedder.name), embedder)
    assert m.performer_id is None and m.distance is None


def _mosaic_clip(path: Path, rows: int, cols: int, frames: int = 3) -> Path:
    """A short clip whose frames tile GRID speakers ``rows`` x ``cols`` (many faces at once)."""
    from fractions import Fraction

    from pipelines.media import VideoStreamInfo, VideoWriter

    tiles = [next(reference_frames(CLIPS[i % len(CLIPS)]))[1] for i in range(rows * cols)]
    mosaic = np.vstack([np.hstack(tiles[r * cols:(r + 1) * cols]) for r in range(rows)])
    like = VideoStreamInfo.new(mosaic.shape[1], mosaic.shape[0], Fraction(25))
    with VideoWriter(path, like) as writer:
        for _ in range(frames):
            writer.write(np.ascontiguousarray(mosaic))
    return path


def test_identify_tracks_every_face_and_matches_only_the_enrolled(
        reg: Registry, embedder: DlibEmbedder, tmp_path: Path) -> None:
    from studio.identity import identify

    enrol(reg, "bbaf2n", [GRID / "bbaf2n.mpg"], embedder, officer="O")
    clip = _mosaic_clip(tmp_path / "pair.mp4", 1, 2, frames=20)  # bbaf2n beside brbk7n
    result = identify(clip, reg, embedder)
    assert result.frame_count == 20 and len(result.tracks) == 2
    by_performer = {t.match.performer_id for t in result.tracks}
    assert by_performer == {"bbaf2n", None}
    assert result.saturated_frames == 0


def test_more_faces_than_the_tracker_holds_are_reported(reg: Registry,
                                                        embedder: DlibEmbedder,
                                                        tmp_path: Path) -> None:
    from studio.identity import identify

    clip = _mosaic_clip(tmp_path / "four.mp4", 2, 2, frames=2)
    result = identify(clip, reg, embedder, max_faces=2)
    assert result.frame_count == 2
    assert len(result.tracks) == 2
    assert result.saturated_frames == 2  # the operator is told that faces were left out


def test_twenty_faces_give_a_clear_result(reg: Registry, embedder: DlibEmbedder,
                                          tmp_path: Path) -> None:
    from studio.identity import identify

    clip = _mosaic_clip(tmp_path / "crowd.mp4", 4, 5, frames=2)
    result = identify(clip, reg, embedder, max_faces=8)
    assert result.frame_count == 2
    assert len(result.tracks) <= 8
    assert all(t.match.performer_id is None for t in result.tracks)  # nobody enrolled
