"""Hostile two-speaker shots (issue 17), rendered: a stranger speaking beside a consenting
performer, and a second speaker whose grant does not cover the release."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from consent.registry import Registry
from pipelines.media.audio import load_audio
from studio.reels.job import ReelRelease
from studio.reels.store import ShotState
from studio.services import reels
from studio.services.context import AppContext
from studio.settings import Settings
from tests.media import mediagen as gen
from tests.reel import reelgen
from tests.reels.speakers import consented, frames, tap_renders

pytestmark = pytest.mark.slow

GRID = gen.ASSETS / "grid"
DEMO = gen.ASSETS.parent / "demo"
RELEASE = ReelRelease("fr", "FR", "Test Operator", source_language="en")
SCRIPT = """1
00:00:00,080 --> 00:00:00,840
ANA: Bonjour, Ben.

2
00:00:00,500 --> 00:00:01,700
BEN: Merci bien.
"""


def _reel(ctx: AppContext, tmp_path: Path, source: str) -> Any:
    path = reelgen.build_reel(tmp_path / "reel.mp4", (reelgen.Segment(source, 0, 45),
                                                      reelgen.Segment("lavfi:testsrc2", 0, 20)),
                              timecode="01:00:00:00")
    reel = reels.import_reel(ctx, reels.ReelImport(path, "demo-dub", detect=True))
    assert [(s.start, s.end) for s in reel.shots] == [(0, 45), (45, 65)]
    return reel


def _only_anas_face_changed(settings: Settings, reel_id: str, shot: Any, outcome: Any,
                            tap: Any, other: str) -> None:
    """The render edited ANA's face only: every pixel outside its region, and all of the
    right half (the other person's), leaves the edit guard as in the shot, bit for bit."""
    doc = json.loads(outcome.sidecar.read_text())
    faces = {f"t{f['track_id']}": f for f in doc["faces"]}
    assert set(faces) == {shot.outcome["tracks"]["ANA"]}
    src = frames(settings.data_dir / "reels" / reel_id / "shots" / "s000-0-45.mp4")
    x0, y0, x1, y1 = (int(v) for v in faces[shot.outcome["tracks"]["ANA"]]["region"])
    outside = np.ones(src[0].shape[:2], bool)
    outside[max(0, y0):y1, max(0, x0):x1] = False
    right = np.zeros_like(outside)
    right[:, src[0].shape[1] // 2:] = True
    for i, frame in enumerate(src):
        diff = np.any(tap.frames[i] != frame, axis=2)
        assert not np.any(diff & outside), f"frame {i}: a pixel outside ANA's face changed"
        assert not np.any(diff & right), f"frame {i}: {other} half changed"


def test_a_second_speaker_outside_their_grant_is_left_untouched_and_voiced_over(
        settings: Settings, registry: Registry, tmp_path: Path,
        monkeypatch: pytest.MonkeyPatch) -> None:
    """ANA (covered) and BEN (his grant covers German only) speak together in a French
    release. The decision that asks about both faces denies, of record (it names both
    subjects and BEN's grant); the gate is then asked about ANA alone, a decision of its
    own: her face is rendered, BEN's is an untouched track whose every pixel leaves the edit
    guard as in the shot, and his line is voiced over it in the mix."""
    consented(registry, "ben-performer", "Ben", "lbbc2a", "ben-grant-de",
              scope={"languages": ["de"]})
    ctx = AppContext(settings, registry)
    reel = _reel(ctx, tmp_path, "two:bbaf2n+lbbc2a")
    reels.cast(ctx, reel.reel_id, "ANA", "demo-performer")
    reels.cast(ctx, reel.reel_id, "BEN", "ben-performer")
    script = tmp_path / "reel.fr.srt"
    script.write_text(SCRIPT, encoding="utf-8")
    tap = tap_renders(monkeypatch)
    done = reels.render_reel(ctx, reels.ReelRender(reel.reel_id, RELEASE, script=script))
    monkeypatch.undo()
    shot = done.shots[0]
    assert shot.state is ShotState.RENDERED, (shot.reason, done.notes)
    assert shot.outcome["characters"] == ["ANA"], shot.outcome
    left_out = shot.outcome["left_out"]
    assert left_out["characters"] == ["BEN"]
    assert any("ben-grant-de does not cover language fr" in r for r in left_out["reasons"])
    assert any("BEN refused by the gate" in n for n in done.notes), done.notes

    # The deny of record asked about both faces; the allow about ANA's alone.
    denied = registry.decision_document(left_out["decision_id"])
    assert denied["allowed"] is False and denied["ledger_index"] is not None
    both = {s["track_id"]: s["performer_id"] for s in denied["request"]["subjects"]}
    assert set(both.values()) == {"demo-performer", "ben-performer"}
    ben_track = next(t for t, p in both.items() if p == "ben-performer")
    allowed = shot.outcome["decision"]
    assert allowed["allowed"] is True
    assert {s["performer_id"] for s in allowed["request"]["subjects"]} == {"demo-performer"}
    assert {g["grant_id"] for g in allowed["grants_used"]} == {"demo-grant-0001"}

    # Only ANA's face changed: BEN's half of the frame is as in the shot, bit for bit.
    outcome = tap.outcomes[-1]
    assert ben_track in outcome.untouched
    _only_anas_face_changed(settings, reel.reel_id, shot, outcome, tap, "BEN's")

    # BEN's line is in the mix and his stem, over his untouched face.
    items = {(i["kind"], i["character"]): i for i in done.deliverables["items"]}
    assert ("stem", "BEN") in items and ("master", None) in items, sorted(items)
    ben = load_audio(Path(items[("stem", "BEN")]["path"]))
    a, b = (round(t * ben.rate) for t in (0.5, 1.7))
    assert float(np.sqrt(np.mean(ben.samples.mean(axis=0)[a:b] ** 2))) > 0.01

    # Run again: both are asked about again (BEN may have consented since), and the render
    # of ANA alone, still good, is kept.
    again = reels.render_reel(ctx, reels.ReelRender(reel.reel_id, RELEASE, script=script))
    assert again.shots[0].outcome["output"] == shot.outcome["output"]
    assert again.shots[0].outcome["left_out"]["decision_id"] != left_out["decision_id"]
    assert again.rendered_now == ()

    # BEN's grant is revoked (his face is no longer recognised): nobody is refused beside
    # ANA any more, so her kept render no longer names a deny as the reason BEN was left out.
    registry.revoke_grant("ben-grant-de", reason="withdrawn", officer="Test Officer",
                          performer_request_reference="REQ-1")
    third = reels.render_reel(ctx, reels.ReelRender(reel.reel_id, RELEASE, script=script))
    assert third.shots[0].outcome["output"] == shot.outcome["output"]
    assert third.rendered_now == ()
    assert "left_out" not in third.shots[0].outcome, third.shots[0].outcome["left_out"]
    assert any("BEN not on screen" in n for n in third.notes), third.notes


def test_a_stranger_speaking_beside_a_performer_is_untouched(
        settings: Settings, registry: Registry, tmp_path: Path,
        monkeypatch: pytest.MonkeyPatch) -> None:
    """ANA (bbaf2n) beside a stranger (lbax4n, never enrolled) while the script has BEN, whose
    performer (lbbc2a) is enrolled but not on screen, speak over her: only ANA's face is
    edited, every pixel outside it (the stranger's half included) leaves the edit guard
    bit-identical, the stranger is an untouched track, and the notes say BEN was not
    rendered."""
    consented(registry, "ben-performer", "Ben", "lbbc2a", "ben-grant-0001")
    ctx = AppContext(settings, registry)
    reel = _reel(ctx, tmp_path, "two:bbaf2n+lbax4n")  # lbax4n: never enrolled
    reels.cast(ctx, reel.reel_id, "ANA", "demo-performer")
    reels.cast(ctx, reel.reel_id, "BEN", "ben-performer")  # BEN's performer is not on screen
    script = tmp_path / "reel.fr.srt"
    script.write_text(SCRIPT, encoding="utf-8")
    tap = tap_renders(monkeypatch)
    done = reels.render_reel(ctx, reels.ReelRender(reel.reel_id, RELEASE, script=script))
    monkeypatch.undo()
    shot = done.shots[0]
    assert shot.state is ShotState.RENDERED, (shot.reason, done.notes)
    assert shot.outcome["characters"] == ["ANA"]
    (outcome,) = tap.outcomes
    assert list(outcome.untouched) and shot.outcome["tracks"]["ANA"] not in outcome.untouched
    _only_anas_face_changed(settings, reel.reel_id, shot, outcome, tap, "the stranger's")
    assert any("BEN" in n and "not on screen" in n for n in done.notes), done.notes


def test_characters_whose_names_make_the_same_file_name_get_a_stem_each(
        settings: Settings, registry: Registry, tmp_path: Path) -> None:
    """Zoé and Zoë (neither cast, off screen) each have a line the mix voices: each gets a
    stem file of its own holding only its own line (their names are both ``Zo`` as a
    file-name part; one file for both gave Zoé's stem Zoë's words and refused the second
    publication, every run). The script is one ingredient of the mix, not one per
    character it names."""
    from studio.provenance.identity import trust_anchors
    from studio.provenance.signing import read_manifest

    ctx = AppContext(settings, registry)
    reel = _reel(ctx, tmp_path, "grid:bbaf2n")
    reels.cast(ctx, reel.reel_id, "ANA", "demo-performer")
    script = tmp_path / "reel.fr.csv"
    script.write_text("character,tc_in,tc_out,text\n"
                      "ANA,00:00:00.200,00:00:01.400,Bonjour tout le monde.\n"
                      "Zoé,00:00:01.850,00:00:02.150,Oui.\n"
                      "Zoë,00:00:02.250,00:00:02.550,Non.\n", encoding="utf-8")
    done = reels.render_reel(ctx, reels.ReelRender(reel.reel_id, RELEASE, script=script))
    assert done.shots[0].state is ShotState.RENDERED, (done.shots[0].reason, done.notes)
    items = {(i["kind"], i["character"]): Path(i["path"]) for i in done.deliverables["items"]}
    zoe_acute, zoe_umlaut = items[("stem", "Zoé")], items[("stem", "Zoë")]
    assert zoe_acute != zoe_umlaut
    windows = {"Zoé": (1.85, 2.15), "Zoë": (2.25, 2.55)}
    for character, path in (("Zoé", zoe_acute), ("Zoë", zoe_umlaut)):
        sound = load_audio(path)
        mono = sound.samples.mean(axis=0)
        for who, (a, b) in windows.items():
            rms = float(np.sqrt(np.mean(mono[round(a * sound.rate):round(b * sound.rate)]
                                        ** 2)))
            assert (rms > 0.01) == (who == character), (character, who, rms)
    mix = read_manifest(items[("mix", None)], trust_anchors_pem=trust_anchors(settings))
    scripts = [i for i in mix.ingredients if i.title == "translated script"]
    assert len(scripts) == 1, [i.title for i in mix.ingredients]
