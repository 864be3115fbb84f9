"""Hostile shots through the whole render: the stranger's pixels leave the edit guard exactly
as they came from the source, or the render is denied.

Each shot is built from GRID clips (``shots.py``); each render's frames are captured as the
guard leaves them (``RenderJob.frame_tap``, before the watermark, which marks every pixel of
every frame and is not an edit) and compared with the source's decoded frames.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from numpy.typing import NDArray

from consent.ledger import Ledger
from consent.registry import Registry
from studio.render import RenderDenied, RenderJob, RenderRequest
from studio.render.job import RenderOutcome
from studio.settings import Settings
from tests.consent_guard import shots
from tests.consent_guard.shots import Shot

pytestmark = pytest.mark.slow

DUB = shots.GRID / "brbk7n.mpg"
TOTAL = 75  # the GRID clips' length, so the 3 s dub fits


class Tap:
    def __init__(self) -> None:
        self.frames: dict[int, NDArray[np.uint8]] = {}

    def __call__(self, index: int, rgb: NDArray[np.uint8]) -> None:
        self.frames[index] = rgb.copy()


def _render(studio: tuple[Settings, Registry], shot: Shot, **extra: object
            ) -> tuple[RenderOutcome, Tap]:
    settings, registry = studio
    values: dict[str, object] = dict(
        operation="lipsync", source=shot.path, project_id="demo-dub", language="fr",
        territory="FR", operator="Test Operator", dub=DUB)
    values.update(extra)
    tap = Tap()
    outcome = RenderJob(RenderRequest(**values), settings, registry,  # type: ignore[arg-type]
                        frame_tap=tap).run()
    return outcome, tap


def _assert_stranger_untouched(shot: Shot, tap: Tap) -> int:
    """Every stranger pixel leaves the guard bit-identical; returns how many were compared."""
    source = shots.frames_of(shot.path)
    assert sorted(tap.frames) == list(range(len(source)))
    compared = 0
    for i, src in enumerate(source):
        box = shot.stranger(i)
        if box is None:
            continue
        x0, y0, x1, y1 = box
        out = tap.frames[i][y0:y1, x0:x1]
        assert np.array_equal(out, src[y0:y1, x0:x1]), f"frame {i}: the stranger was edited"
        compared += out.size
    return compared


def _edited_within_authorised(outcome: RenderOutcome) -> list[dict[str, int]]:
    assert outcome.sidecar is not None
    doc = json.loads(outcome.sidecar.read_text())
    authorised, edited = doc["segments"]["authorised"], doc["segments"]["edited"]
    for e in edited:  # every edited frame inside an authorised segment of its track
        frames = set(range(e["first_frame"], e["last_frame"] + 1))
        for a in authorised:
            if a["track_id"] == e["track_id"]:
                frames -= set(range(a["first_frame"], a["last_frame"] + 1))
        assert not frames, (e, authorised)
    return list(edited)


def _changed_frames(shot: Shot, tap: Tap) -> list[int]:
    return [i for i, src in enumerate(shots.frames_of(shot.path))
            if not np.array_equal(src, tap.frames[i])]


@pytest.fixture(scope="module")
def folder(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("shots")


# -- a slow transition inside one track ------------------------------------------------------


@pytest.fixture(scope="module")
def dissolved(studio: tuple[Settings, Registry], folder: Path
              ) -> tuple[Shot, RenderOutcome, Tap]:
    shot = shots.dissolve(folder, start=15, length=40, total=TOTAL)
    outcome, tap = _render(studio, shot)
    return shot, outcome, tap


def test_dissolve_edits_the_performer_and_never_the_stranger(
        dissolved: tuple[Shot, RenderOutcome, Tap]) -> None:
    shot, outcome, tap = dissolved
    # Once the stranger's face outweighs the performer's (blend ≥ 50 %, frame 35 on), every
    # frame leaves the guard bit-identical; the performer's own frames were edited.
    majority = Shot(shot.path, shot.frames, lambda i: (0, 0, 360, 288) if i >= 35 else None)
    assert _assert_stranger_untouched(majority, tap) > 0
    changed = _changed_frames(shot, tap)
    assert changed and max(changed) < 35 and min(changed) < 15
    edited = _edited_within_authorised(outcome)
    assert all(e["last_frame"] < 35 for e in edited)
    assert outcome.guard["applied"] == len(changed)
    # The stretch of the track that is not the performer is named, untouched.
    assert any(u.startswith("t1:") or u.startswith("t2") for u in outcome.untouched)


def test_wipe_never_reaches_the_stranger(studio: tuple[Settings, Registry],
                                         folder: Path) -> None:
    shot = shots.wipe(folder, start=15, length=40, total=TOTAL)
    outcome, tap = _render(studio, shot)
    assert _assert_stranger_untouched(shot, tap) > 0
    changed = _changed_frames(shot, tap)
    assert changed, "the performer's frames before the wipe are edited"
    _edited_within_authorised(outcome)


def test_hard_cut_to_the_closest_look_alike(studio: tuple[Settings, Registry],
                                            folder: Path) -> None:
    # lbax4n is the GRID speaker nearest to the performer (dlib distance 0.84).
    shot = shots.hard_cut(folder, at=38, total=TOTAL, stranger=shots.STRANGER)
    outcome, tap = _render(studio, shot)
    assert _assert_stranger_untouched(shot, tap) > 0
    assert 0 < len(_changed_frames(shot, tap)) <= 38
    assert "t2" in outcome.untouched


@pytest.fixture(scope="module")
def side(folder: Path) -> Shot:
    return shots.side_by_side(folder, enters=20, total=TOTAL)


def test_a_face_entering_beside_the_performer_is_left_alone(
        studio: tuple[Settings, Registry], side: Shot) -> None:
    outcome, tap = _render(studio, side)
    assert _assert_stranger_untouched(side, tap) > 0
    assert _changed_frames(side, tap)
    assert "t2" in outcome.untouched
    assert outcome.guard["dropped_total"] == 0  # nothing was even attempted on t2


def test_unmatched_faces_deny_refuses_the_render(studio: tuple[Settings, Registry],
                                                 side: Shot) -> None:
    settings, _ = studio
    before = sorted(p.name for p in settings.outputs_dir.iterdir()) \
        if settings.outputs_dir.exists() else []
    with pytest.raises(RenderDenied) as denied:
        _render(studio, side, unmatched_faces="deny")
    assert any("t2" in r and "denies" in r for r in denied.value.decision.reasons)
    after = sorted(p.name for p in settings.outputs_dir.iterdir()) \
        if settings.outputs_dir.exists() else []
    assert after == before


def test_two_faces_crossing(studio: tuple[Settings, Registry], folder: Path) -> None:
    shot = shots.crossing(folder, total=TOTAL)
    outcome, tap = _render(studio, shot, tracks=("t1",))
    assert _assert_stranger_untouched(shot, tap) > 0
    _edited_within_authorised(outcome)


# -- speaker maps --------------------------------------------------------------------------


SCRIPT = """1
00:00:00,200 --> 00:00:01,200
ANNA: Bonjour.

2
00:00:01,400 --> 00:00:02,600
BOB: Salut.
"""


@pytest.mark.parametrize(("args", "message"), [
    (["--track", "t1", "--speaker", "ANNA=t1", "--speaker", "BOB=t2"], "not among"),
    (["--speaker", "ANNA=t1", "--speaker", "BOB=t2"], "t2 matches no enrolled performer"),
    (["--speaker", "ANNA=t1", "--speaker", "BOB=t9"], "no face track t9"),
])
def test_a_speaker_map_can_only_choose_an_authorised_face(
        studio: tuple[Settings, Registry], side: Shot, tmp_path: Path,
        monkeypatch: pytest.MonkeyPatch, args: list[str], message: str) -> None:
    from typer.testing import CliRunner

    from studio.cli import app

    settings, registry = studio
    script = tmp_path / "dub.srt"
    script.write_text(SCRIPT, encoding="utf-8")
    with registry.store.session() as s:
        ledger_before = Ledger.size(s)
    monkeypatch.delenv("STUDIO_DATABASE_URL", raising=False)
    result = CliRunner().invoke(app, [
        "--data", str(settings.data_dir), "render", "lipsync", str(side.path), "--script",
        str(script), "--project", "demo-dub", "--language", "fr", "--territory", "FR",
        "--operator", "Op", *args])
    assert result.exit_code == 2, result.output
    assert message in " ".join(result.output.split())
    with registry.store.session() as s:
        assert Ledger.size(s) == ledger_before  # refused before the gate: nothing decided


def test_verify_checks_edited_within_authorised(studio: tuple[Settings, Registry],
                                                dissolved: tuple[Shot, RenderOutcome, Tap]
                                                ) -> None:
    from studio.provenance.identity import trust_anchors
    from studio.provenance.store import ManifestStore
    from studio.provenance.verify import verify_file

    settings, registry = studio
    _, outcome, _ = dissolved
    report = verify_file(outcome.output, registry, ManifestStore(settings.manifests_dir),
                         trust_anchors_pem=trust_anchors(settings), watermark=False)
    assert report.segments is not None
    assert report.segments.authorised and report.segments.edited
    assert all(g == "demo-grant-0001" for *_, g in report.segments.authorised)
    assert report.segments_check == "edited within authorised"
    assert report.to_json()["segments_check"] == "edited within authorised"
    assert report.ok, report.to_json()


def test_reenactment_goes_through_the_same_guard(studio: tuple[Settings, Registry],
                                                 side: Shot) -> None:
    # The performer drives their own face (performance_driving and face_reenactment are both
    # in the demo grant); the stranger beside them stays bit-identical.
    outcome, tap = _render(studio, side, operation="reenact", dub=None,
                           driver=shots.PERFORMER, tracks=("t1",))
    assert _assert_stranger_untouched(side, tap) > 0
    assert _changed_frames(side, tap)
    assert outcome.guard["applied"] > 0
    assert "t2" in outcome.untouched
    _edited_within_authorised(outcome)


def test_a_stranger_walking_into_the_performers_place(studio: tuple[Settings, Registry],
                                                      folder: Path) -> None:
    shot = shots.walk_in(folder, total=TOTAL)
    outcome, tap = _render(studio, shot)
    assert _assert_stranger_untouched(shot, tap) > 0
    changed = _changed_frames(shot, tap)
    assert changed and max(changed) < 34  # never once the stranger is in
    _edited_within_authorised(outcome)


def test_a_stranger_swapped_in_behind_a_passer_by(studio: tuple[Settings, Registry],
                                                  folder: Path) -> None:
    shot = shots.swap_behind(folder, total=TOTAL)
    outcome, tap = _render(studio, shot)
    assert _assert_stranger_untouched(shot, tap) > 0
    changed = _changed_frames(shot, tap)
    assert changed and max(changed) < 33
    _edited_within_authorised(outcome)
