"""Two consented speakers in one shot (issue 17): a two-person shot (GRID bbaf2n beside
lbbc2a) where ANA (the demo performer) and BEN (lbbc2a, enrolled here with a grant of his own)
each have a dub stem. The reel job renders both faces in one pass, each to its own voice,
under one gate decision that names both performers' grants: pixels outside the two edited
face regions leave the edit guard bit-identical to the shot, the shot's and the master's C2PA
name both consents. A speaker map that gives a voice to a stranger's face is refused."""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from consent.registry import Registry
from pipelines.media.audio import load_audio, resample
from studio.errors import SelectionError
from studio.reels.job import ReelRelease
from studio.reels.store import ShotState
from studio.render import RenderJob, RenderRequest
from studio.services import reels
from studio.services.context import AppContext
from studio.settings import Settings
from tests.consent_guard import shots
from tests.media import mediagen as gen
from tests.reel import reelgen
from tests.reels.speakers import consented, frames, tap_renders

pytestmark = pytest.mark.slow

GRID = gen.ASSETS / "grid"
DEMO = gen.ASSETS.parent / "demo"
SEGMENTS = (reelgen.Segment("two:bbaf2n+lbbc2a", 0, 45),
            reelgen.Segment("lavfi:testsrc2", 0, 20))
FRAMES = 65
RATE = 16000
BEN_GRANT = "ben-grant-0001"


def _stem(path: Path, clip: str, at: float, seconds: float = 1.2) -> Path:
    audio = resample(load_audio(GRID / f"{clip}.mpg"), RATE)
    speech = audio.samples.mean(axis=0).astype(np.float32)[int(0.49 * RATE):
                                                           int((0.49 + seconds) * RATE)]
    track = np.zeros((1, int(FRAMES / 25 * RATE)), np.float32)
    track[0, int(at * RATE):int(at * RATE) + speech.size] = speech
    return gen.write_audio(path, track, RATE)


def _consented_ben(registry: Registry) -> None:
    """lbbc2a as BEN's performer."""
    consented(registry, "ben-performer", "Ben", "lbbc2a", BEN_GRANT)


def test_two_consented_speakers_render_in_one_pass_each_under_their_own_grant(
        settings: Settings, registry: Registry, tmp_path: Path,
        monkeypatch: pytest.MonkeyPatch) -> None:
    from studio.provenance.identity import trust_anchors
    from studio.provenance.signing import read_manifest

    _consented_ben(registry)
    ctx = AppContext(settings, registry)
    source = reelgen.build_reel(tmp_path / "reel.mp4", SEGMENTS, timecode="01:00:00:00")
    reel = reels.import_reel(ctx, reels.ReelImport(source, "demo-dub", detect=True))
    assert [(s.start, s.end) for s in reel.shots] == [(0, 45), (45, 65)]
    reels.cast(ctx, reel.reel_id, "ANA", "demo-performer")
    reels.cast(ctx, reel.reel_id, "BEN", "ben-performer")
    ana = _stem(tmp_path / "ana.fr.wav", "brbk7n", 0.2)
    ben = _stem(tmp_path / "ben.fr.wav", "lbax4n", 0.3)

    # The frames as the edit guard leaves them (before the watermark, which marks every
    # pixel and is no edit), and the render's outcome.
    tap = tap_renders(monkeypatch)
    release = ReelRelease("fr", "FR", "Test Operator", source_language="en")
    started = time.perf_counter()
    done = reels.render_reel(ctx, reels.ReelRender(reel.reel_id, release,
                                                   {"ANA": ana, "BEN": ben}))
    wall = time.perf_counter() - started
    monkeypatch.undo()
    shot = done.shots[0]
    assert shot.state is ShotState.RENDERED, (shot.reason, done.notes)
    assert sorted(shot.outcome["characters"]) == ["ANA", "BEN"], (shot.characters, done.notes)
    assert shot.outcome["performers"] == {"ANA": "demo-performer", "BEN": "ben-performer"}
    (outcome,) = tap.outcomes

    # One decision, each face under its own performer's grant.
    decision = shot.outcome["decision"]
    by_track = {s["track_id"]: s["performer_id"] for s in decision["request"]["subjects"]}
    assert by_track == {shot.outcome["tracks"]["ANA"]: "demo-performer",
                        shot.outcome["tracks"]["BEN"]: "ben-performer"}
    used = {(g["performer_id"], g["grant_id"]) for g in decision["grants_used"]}
    assert used == {("demo-performer", "demo-grant-0001"), ("ben-performer", BEN_GRANT)}

    # Both faces edited; every pixel outside their two regions as in the shot.
    doc = json.loads(outcome.sidecar.read_text())
    faces = {f"t{f['track_id']}": f for f in doc["faces"]}
    assert set(faces) == set(shot.outcome["tracks"].values())
    assert all(f["edited_frames"] > 0 for f in faces.values())
    cut = settings.data_dir / "reels" / reel.reel_id / "shots" / "s000-0-45.mp4"
    src = frames(cut)
    assert sorted(tap.frames) == list(range(len(src)))
    outside = np.ones(src[0].shape[:2], bool)
    for f in faces.values():
        x0, y0, x1, y1 = (int(v) for v in f["region"])
        outside[max(0, y0):y1, max(0, x0):x1] = False
    changed_inside = 0
    for i, frame in enumerate(src):
        diff = np.any(tap.frames[i] != frame, axis=2)
        assert not np.any(diff & outside), f"frame {i}: a pixel outside both faces changed"
        changed_inside += int(diff.sum())
    assert changed_inside > 0
    print(f"two faces in one pass: render {shot.outcome['seconds']} s, reel job {wall:.1f} s;"
          f" {int(outside.sum())} pixels/frame outside the two faces bit-identical")

    # The shot's C2PA and the master's name both consents.
    anchors = trust_anchors(settings)
    grants = {"demo-grant-0001", BEN_GRANT}
    shot_manifest = read_manifest(outcome.output, trust_anchors_pem=anchors)
    assert shot_manifest.consent is not None and set(shot_manifest.consent.grant_ids) == grants
    items = {i["kind"]: i for i in done.deliverables["items"]}
    master = read_manifest(Path(items["master"]["path"]), trust_anchors_pem=anchors)
    assert master.consent is not None and set(master.consent.grant_ids) == grants

    # A speaker map that gives the second voice to a stranger's face (lbax4n, never
    # enrolled) is refused before anything renders, whichever label the stranger has.
    hostile = shots.side_by_side(tmp_path, enters=0, total=45)
    two_voices = tmp_path / "two.wav"
    gen.write_audio(two_voices, np.stack([load_audio(ana).samples[0][:int(1.8 * RATE)],
                                          load_audio(ben).samples[0][:int(1.8 * RATE)]]),
                    RATE)
    outputs = sorted(settings.outputs_dir.iterdir())
    with pytest.raises(SelectionError, match="matches no enrolled performer"):
        RenderJob(RenderRequest(
            operation="lipsync", source=hostile.path, project_id="demo-dub", language="fr",
            territory="FR", operator="Test Operator", dub=two_voices,
            dub_channels=("ANA", "X"), speakers={"ANA": "t1", "X": "t2"},
            tracks=("t1", "t2")), settings, registry).run()
    assert sorted(settings.outputs_dir.iterdir()) == outputs


SCRIPT = """1
00:00:00,080 --> 00:00:00,840
ANA: Bonjour, Ben.

2
00:00:00,900 --> 00:00:01,700
BEN: Merci bien.

3
00:00:01,950 --> 00:00:02,500
CARL: Il n'est pas là.
"""


def _scripted_reel(settings: Settings, registry: Registry, tmp_path: Path
                   ) -> tuple[AppContext, Any, Path]:
    """The two-person reel with ANA and BEN cast (BEN consented) and ``SCRIPT`` to say."""
    _consented_ben(registry)
    ctx = AppContext(settings, registry)
    source = reelgen.build_reel(tmp_path / "reel.mp4", SEGMENTS, timecode="01:00:00:00")
    reel = reels.import_reel(ctx, reels.ReelImport(source, "demo-dub", detect=True))
    reels.cast(ctx, reel.reel_id, "ANA", "demo-performer")
    reels.cast(ctx, reel.reel_id, "BEN", "ben-performer")
    script = tmp_path / "reel.fr.srt"
    script.write_text(SCRIPT, encoding="utf-8")
    return ctx, reel, script


def test_a_script_naming_two_speakers_on_screen_renders_both_faces_each_to_its_lines(
        settings: Settings, registry: Registry, tmp_path: Path) -> None:
    """Issue 17: a timed script whose lines name two characters on screen together renders
    both faces in one pass (one script, its cues under the characters' names, each name given
    its performer's face), each face moving to its own lines; a character not cast is
    reported, not rendered."""
    ctx, reel, script = _scripted_reel(settings, registry, tmp_path)
    release = ReelRelease("fr", "FR", "Test Operator", source_language="en")
    done = reels.render_reel(ctx, reels.ReelRender(reel.reel_id, release, script=script))
    shot = done.shots[0]
    assert shot.state is ShotState.RENDERED, (shot.reason, done.notes)
    assert shot.outcome["characters"] == ["ANA", "BEN"], (shot.outcome, done.notes)
    assert shot.outcome["performers"] == {"ANA": "demo-performer", "BEN": "ben-performer"}
    assert any("CARL" in n and "not cast" in n for n in done.notes), done.notes
    assert done.shots[1].state is ShotState.COPIED

    decision = shot.outcome["decision"]
    used = {(g["performer_id"], g["grant_id"]) for g in decision["grants_used"]}
    assert used == {("demo-performer", "demo-grant-0001"), ("ben-performer", BEN_GRANT)}

    # Each face is driven by its own character's lines: it is voiced inside them and never
    # inside the other's (the render's viseme sidecar, per face).
    output = Path(shot.outcome["output"])
    doc = json.loads(output.with_name(output.name + ".visemes.json").read_text())
    faces = {f"t{f['track_id']}": f for f in doc["faces"]}
    tracks = shot.outcome["tracks"]
    assert set(faces) == set(tracks.values())
    lines = {"ANA": (0.08, 0.84), "BEN": (0.90, 1.70)}
    for character, track in tracks.items():
        face = faces[track]
        assert face["origin"] == "script" and face["edited_frames"] > 0, face
        voiced = face["voiced"]
        assert voiced, face
        a, b = lines[character]
        assert all(a - 0.05 <= start and end <= b + 0.05 for start, end in voiced), (
            character, voiced)

    # CARL is not cast and nobody renders his line: it is voiced in the mix and his stem
    # over the untouched picture, at its own time (the rendered shot's speech is ANA+BEN's).
    items = {(i["kind"], i["character"]): Path(i["path"]) for i in done.deliverables["items"]}
    assert ("stem", "CARL") in items, sorted(items)
    assert any("voiced over the untouched picture" in n for n in done.notes), done.notes
    for key in (("stem", "CARL"), ("mix", None)):
        sound = load_audio(items[key])
        mono = sound.samples.mean(axis=0)
        a, b = (round(t * sound.rate) for t in (1.95, 2.5))
        carl = float(np.sqrt(np.mean(mono[a:b] ** 2)))
        assert carl > 0.01, (key, carl)
    carl_only = load_audio(items[("stem", "CARL")]).samples.mean(axis=0)
    assert float(np.abs(carl_only[:round(1.9 * 48_000)]).max()) == 0.0
    # The words voiced come from the script: the mix's manifest carries it as an ingredient.
    from studio.provenance.identity import trust_anchors
    from studio.provenance.signing import read_manifest

    mix = read_manifest(items[("mix", None)], trust_anchors_pem=trust_anchors(settings))
    assert "translated script" in {i.title for i in mix.ingredients}, mix.ingredients


def test_three_speakers_on_screen_render_in_one_pass(
        settings: Settings, registry: Registry, tmp_path: Path) -> None:
    """Issue 17, more than two speakers: a three-person shot (bbaf2n, lbbc2a, lrwp9a side by
    side) where ANA, BEN and CLEO each have a stem: one render edits the three faces, each to
    its own channel of one dub, under one decision naming the three grants."""
    _consented_ben(registry)
    consented(registry, "cleo-performer", "Cleo", "lrwp9a", "cleo-grant-0001")
    ctx = AppContext(settings, registry)
    segments = (reelgen.Segment("two:bbaf2n+lbbc2a+lrwp9a", 0, 45),
                reelgen.Segment("lavfi:testsrc2", 0, 20))
    source = reelgen.build_reel(tmp_path / "reel.mp4", segments, size=(540, 288),
                                timecode="01:00:00:00")
    reel = reels.import_reel(ctx, reels.ReelImport(source, "demo-dub", detect=True))
    assert [(s.start, s.end) for s in reel.shots] == [(0, 45), (45, 65)]
    for character, performer in (("ANA", "demo-performer"), ("BEN", "ben-performer"),
                                 ("CLEO", "cleo-performer")):
        reels.cast(ctx, reel.reel_id, character, performer)
    stems = {"ANA": _stem(tmp_path / "ana.fr.wav", "brbk7n", 0.1, 0.5),
             "BEN": _stem(tmp_path / "ben.fr.wav", "lbax4n", 0.7, 0.5),
             "CLEO": _stem(tmp_path / "cleo.fr.wav", "id2_vcd_swwp2s", 1.3, 0.45)}
    release = ReelRelease("fr", "FR", "Test Operator", source_language="en")
    done = reels.render_reel(ctx, reels.ReelRender(reel.reel_id, release, stems))
    shot = done.shots[0]
    assert shot.state is ShotState.RENDERED, (shot.reason, done.notes)
    assert shot.outcome["characters"] == ["ANA", "BEN", "CLEO"], (shot.outcome, done.notes)
    tracks = shot.outcome["tracks"]
    assert len(set(tracks.values())) == 3
    decision = shot.outcome["decision"]
    used = {g["grant_id"] for g in decision["grants_used"]}
    assert used == {"demo-grant-0001", BEN_GRANT, "cleo-grant-0001"}
    output = Path(shot.outcome["output"])
    doc = json.loads(output.with_name(output.name + ".visemes.json").read_text())
    faces = {f"t{f['track_id']}": f for f in doc["faces"]}
    assert set(faces) == set(tracks.values())
    # Each face voiced only where its own stem speaks.
    spoken = {"ANA": (0.1, 0.6), "BEN": (0.7, 1.2), "CLEO": (1.3, 1.75)}
    for character, track in tracks.items():
        voiced = faces[track]["voiced"]
        a, b = spoken[character]
        assert voiced and all(a - 0.1 <= start and end <= b + 0.1 for start, end in voiced), (
            character, voiced)


def test_a_shot_rendered_for_one_of_two_speakers_is_rendered_again_once_the_other_consents(
        settings: Settings, registry: Registry, tmp_path: Path) -> None:
    """BEN speaks in the two-person shot but is not enrolled yet: the shot is rendered for
    ANA alone (BEN's face untouched, said so). Once BEN consents and is enrolled, the next
    run renders the shot again for both; a run after that keeps it (nothing rendered)."""
    ctx = AppContext(settings, registry)
    source = reelgen.build_reel(tmp_path / "reel.mp4", SEGMENTS, timecode="01:00:00:00")
    reel = reels.import_reel(ctx, reels.ReelImport(source, "demo-dub", detect=True))
    registry.register_performer("ben-performer", "Ben Example (GRID speaker lbbc2a)",
                                professional_name="Ben", officer="Test Officer")
    reels.cast(ctx, reel.reel_id, "ANA", "demo-performer")
    reels.cast(ctx, reel.reel_id, "BEN", "ben-performer")
    stems = {"ANA": _stem(tmp_path / "ana.fr.wav", "brbk7n", 0.2),
             "BEN": _stem(tmp_path / "ben.fr.wav", "lbax4n", 0.3)}
    release = ReelRelease("fr", "FR", "Test Operator", source_language="en")
    job = reels.ReelRender(reel.reel_id, release, stems)

    first = reels.render_reel(ctx, job)
    shot = first.shots[0]
    assert shot.state is ShotState.RENDERED and shot.outcome["characters"] == ["ANA"], (
        shot, first.notes)
    assert any("BEN not on screen" in n for n in first.notes), first.notes
    assert first.rendered_now == (0,)

    # BEN consents (his key, grant and face), nothing else changes: asked again, the shot
    # renders both faces.
    consented(registry, "ben-performer", "Ben", "lbbc2a", BEN_GRANT, register=False)
    second = reels.render_reel(ctx, job)
    shot = second.shots[0]
    assert shot.state is ShotState.RENDERED, (shot.reason, second.notes)
    assert sorted(shot.outcome["characters"]) == ["ANA", "BEN"], (shot.outcome, second.notes)
    assert second.rendered_now == (0,)

    third = reels.render_reel(ctx, job)
    assert third.rendered_now == ()
    assert third.shots[0].outcome["output"] == shot.outcome["output"]


def test_a_render_whose_sound_cannot_be_read_has_its_lines_voiced_over(
        settings: Settings, registry: Registry, tmp_path: Path,
        monkeypatch: pytest.MonkeyPatch) -> None:
    """The mix takes each rendered shot's speech from its output; a render whose sound
    cannot be read is silence there, so its lines are voiced over like any unspoken line
    (they were counted as spoken and lost)."""
    from pipelines.media import MediaError
    from studio.reels import job as job_module

    ctx, reel, script = _scripted_reel(settings, registry, tmp_path)
    real = job_module.load_audio

    def no_sound_from_renders(path: Path, *args: object, **kwargs: object) -> object:
        if Path(path).parent == settings.outputs_dir:
            raise MediaError(path, "no audio stream")
        return real(path, *args, **kwargs)  # type: ignore[arg-type]

    monkeypatch.setattr(job_module, "load_audio", no_sound_from_renders)
    release = ReelRelease("fr", "FR", "Test Operator", source_language="en")
    done = reels.render_reel(ctx, reels.ReelRender(reel.reel_id, release, script=script))
    assert done.shots[0].state is ShotState.RENDERED, done.notes
    assert any("script: 3 line(s) no render speaks" in n for n in done.notes), done.notes
    items = {(i["kind"], i["character"]): Path(i["path"]) for i in done.deliverables["items"]}
    for character, (a, b) in {"ANA": (0.08, 0.84), "BEN": (0.9, 1.7)}.items():
        stem = load_audio(items[("stem", character)])
        mono = stem.samples.mean(axis=0)
        level = float(np.sqrt(np.mean(mono[round(a * stem.rate):round(b * stem.rate)] ** 2)))
        assert level > 0.01, (character, level)
