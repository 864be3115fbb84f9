"""Hostile speaker names and line texts in a scripted shot (issue 17), at the seam between the
reel job and the render, without rendering: the reel job writes the shot's lines of every
speaker on screen into one script and maps each speaker to a face; the render reads that
script back and drives each face with the cues whose speaker its map names. Every cue must
come back under the face of the character who says it, with the text the character says:

* a line whose text carries a WebVTT voice span (``&lt;v BEN&gt;`` in an SRT script, or
  ``<v BEN>`` in a CSV table's text) was read back as BEN's line, moving BEN's face during
  ANA's line;
* a character whose name the script reader does not read back as a speaker (``Dr Kim`` from
  a ``<v Dr Kim>`` voice span or a CSV table, ``t1``, a lower-case or over-long name,
  ``ANA: BEN``) failed the shot when two speakers were on screen, and alone had its name
  spoken as part of the line.

The render itself is replaced by a stub that keeps the request (``start_render``), and the
shot's faces are given (``_identify``): each case runs in milliseconds."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from fractions import Fraction
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest

from pipelines.reel import Shot
from pipelines.reel.dialogue import DialogueLine, ShotLine
from pipelines.speech.script import load_script
from studio.reels.job import ReelJob, ReelRelease, ShotPlan
from studio.render.request import RenderRequest

RATE = Fraction(25)
SHOT = Shot(0, 0, 50, None, "01:00:00:00", "01:00:02:00")


@dataclass(frozen=True)
class _Match:
    performer_id: str | None


@dataclass(frozen=True)
class _Track:
    track_id: str
    match: _Match


class _Stop(Exception):
    """Raised by the stub render once it has the request."""


def _job(tmp_path: Path, cast: dict[str, str]) -> ReelJob:
    ctx: Any = SimpleNamespace(settings=SimpleNamespace(data_dir=tmp_path / "data"))
    reel: Any = SimpleNamespace(reel_id="r1", project_id="demo-dub", cast=cast,
                                shots=SimpleNamespace(frame_rate=RATE))
    job = ReelJob(ctx, None, reel, ReelRelease("fr", "FR", "Op"), [])  # type: ignore[arg-type]
    job.lang_folder.mkdir(parents=True)
    return job


def _line(character: str, start: float, end: float, text: str) -> ShotLine:
    line = DialogueLine(1, character, Fraction(str(start)), Fraction(str(end)), text, "test")
    return ShotLine(line, 0, round(line.start * RATE), round(line.end * RATE))


def _requested(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, cast: dict[str, str],
               faces: Mapping[str, str | None], said: Mapping[str, tuple[ShotLine, ...]]
               ) -> RenderRequest:
    """The render request the reel job makes for a scripted shot where ``said`` are the
    cast characters' lines and ``faces`` the shot's tracks (label → performer)."""
    from studio.services import render as render_service

    job = _job(tmp_path, cast)
    cut = tmp_path / "cut.mp4"
    cut.write_bytes(b"not read")
    seen: list[RenderRequest] = []

    def start_render(ctx: Any, request: RenderRequest) -> Any:
        seen.append(request)
        raise _Stop

    monkeypatch.setattr(render_service, "start_render", start_render)
    identity = SimpleNamespace(tracks=[_Track(t, _Match(p)) for t, p in faces.items()],
                               matches=())
    monkeypatch.setattr(job, "_identify", lambda cut: identity)
    plan = ShotPlan(SHOT, tuple(said), "k" * 64, {}, dict.fromkeys(said, cut), dict(said))
    with pytest.raises(_Stop):
        job._render(plan, cut)
    (request,) = seen
    return request


def _read_back(request: RenderRequest) -> list[tuple[str | None, str]]:
    """Each cue of the render's script as the render takes it: (face it drives, text)."""
    assert request.script is not None
    script = load_script(request.script, duration=Fraction(SHOT.frames) / RATE)
    speakers = request.speakers
    return [(speakers.get(c.speaker) if c.speaker is not None
             else (request.tracks[0] if len(request.tracks) == 1 else None), c.text)
            for c in script.cues]


CAST = {"ANA": "ana-p", "BEN": "ben-p"}
FACES = {"t1": "ana-p", "t2": "ben-p"}


@pytest.mark.parametrize("text", [
    "<v BEN>Bonjour",  # an SRT cue "ANA: &lt;v BEN&gt;Bonjour", or a CSV cell as is
    "<v.loud BEN>Bonjour",
    "Bonjour <v BEN>toi",
])
def test_a_voice_span_in_a_line_never_moves_another_speakers_face(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch, text: str) -> None:
    said = {"ANA": (_line("ANA", 0.1, 0.7, text),),
            "BEN": (_line("BEN", 1.0, 1.6, "Merci"),)}
    request = _requested(tmp_path, monkeypatch, CAST, FACES, said)
    assert request.tracks == ("t1", "t2")
    # ANA's line drives ANA's face (t1), with its text as written, and never BEN's (t2).
    assert _read_back(request) == [("t1", text), ("t2", "Merci")]


@pytest.mark.parametrize("text", ["1 < 2 & 3 > 2", "A --> B", "&amp; &lt;i&gt;"])
def test_a_lines_text_comes_back_as_written(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch, text: str) -> None:
    said = {"ANA": (_line("ANA", 0.1, 0.7, text),),
            "BEN": (_line("BEN", 1.0, 1.6, "Merci"),)}
    request = _requested(tmp_path, monkeypatch, CAST, FACES, said)
    assert _read_back(request) == [("t1", text), ("t2", "Merci")]


@pytest.mark.parametrize("name", [
    "Dr Kim", "t1", "T2", "ana", "ANA: BEN", "2ND GUARD", "O'BRIEN & CO", "A" * 64,
    "<v BEN>", "SPEAKER 1", "Zoë", "JEAN-LUC",
])
def test_any_cast_name_comes_back_as_its_own_speaker(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch, name: str) -> None:
    """Two speakers on screen, one of them with a name the script reader would not read back
    as itself (or would read as someone else): both faces are driven, each by its own lines,
    overlapping lines included, and no name is spoken as part of a line."""
    cast = {name: "ana-p", "BEN": "ben-p"}
    said = {name: (_line(name, 0.1, 0.9, "Bonjour"),),
            "BEN": (_line("BEN", 0.5, 1.6, "Merci"),)}
    request = _requested(tmp_path, monkeypatch, cast, FACES, said)
    assert request.tracks == ("t1", "t2")
    assert _read_back(request) == [("t1", "Bonjour"), ("t2", "Merci")]


def test_a_lone_speaker_whose_name_is_not_read_as_one_does_not_say_it(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    said = {"Dr Kim": (_line("Dr Kim", 0.1, 0.9, "Bonjour"),)}
    request = _requested(tmp_path, monkeypatch, {"Dr Kim": "ana-p"}, {"t1": "ana-p"}, said)
    assert request.tracks == ("t1",)
    assert _read_back(request) == [("t1", "Bonjour")]


def test_five_speakers_on_screen_four_rendered_the_fifth_reported(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    names = ["ANA", "BEN", "CLEO", "DAN", "EVE"]
    cast = {n: f"{n.lower()}-p" for n in names}
    faces = {f"t{i}": f"{n.lower()}-p" for i, n in enumerate(names, start=1)}
    said = {n: (_line(n, 0.1 + 0.3 * i, 0.35 + 0.3 * i, f"Ligne {i}"),)
            for i, n in enumerate(names)}
    job_notes: list[str] = []
    monkeypatch.setattr(ReelJob, "__post_init__", _keep_notes(job_notes))
    request = _requested(tmp_path, monkeypatch, cast, faces, said)
    assert request.tracks == ("t1", "t2", "t3", "t4")
    assert _read_back(request) == [(f"t{i + 1}", f"Ligne {i}") for i in range(4)]
    assert any("EVE" in n and "only ANA, BEN, CLEO, DAN rendered" in n for n in job_notes), \
        job_notes


def test_a_speaker_not_recognised_on_screen_is_reported(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """BEN speaks and is cast, but his face is not recognised (never enrolled, or his grant
    revoked and his templates deleted): only ANA's face is rendered, ANA's lines only, and the
    notes say BEN was not."""
    said = {"ANA": (_line("ANA", 0.1, 0.7, "Bonjour"),),
            "BEN": (_line("BEN", 1.0, 1.6, "Merci"),)}
    job_notes: list[str] = []
    monkeypatch.setattr(ReelJob, "__post_init__", _keep_notes(job_notes))
    request = _requested(tmp_path, monkeypatch, CAST, {"t1": "ana-p", "t2": None}, said)
    assert request.tracks == ("t1",)
    assert _read_back(request) == [("t1", "Bonjour")]
    assert any("BEN" in n and "shot 0" in n for n in job_notes), job_notes


def _keep_notes(notes: list[str]) -> Any:
    original = ReelJob.__post_init__

    def post_init(self: ReelJob) -> None:
        original(self)
        self.notes = notes
    return post_init



def test_a_name_taken_by_another_speaker_is_never_an_alias(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """``Dr Kim`` goes under an alias, and the alias is never a name on screen."""
    cast = {"Dr Kim": "ana-p", "SPEAKER 1": "ben-p"}
    said = {"Dr Kim": (_line("Dr Kim", 0.1, 0.9, "Bonjour"),),
            "SPEAKER 1": (_line("SPEAKER 1", 0.5, 1.6, "Merci"),)}
    request = _requested(tmp_path, monkeypatch, cast, FACES, said)
    assert _read_back(request) == [("t1", "Bonjour"), ("t2", "Merci")]
    assert len(set(request.speakers)) == 2


def test_a_line_split_across_the_cut_says_its_share_of_the_words_in_each_shot() -> None:
    """A line crossing the cut used to be written whole into both shots' scripts (each word
    said twice, squeezed into each part); each script now says its part's words, in its
    part's time, and a part too short for a word has no cue."""
    from pipelines.reel import ShotList, Transition, assign_dialogue
    from studio.reels.job import _shot_script

    shots = ShotList.from_transitions([Transition.cut(50)], 100, RATE)
    line = DialogueLine(1, "ANA", Fraction("1.2"), Fraction("2.8"),
                        "un deux trois quatre cinq six sept huit", "test")
    assignment = assign_dialogue([line], shots, crossing="split")
    said = []
    for shot in shots:
        srt = _shot_script({"ANA": assignment.lines(shot.index, "ANA")}, shot, RATE)
        cues = load_script(srt.encode(), fmt="srt").cues
        said.append([(c.start, c.end, c.speaker, c.text) for c in cues])
    assert said == [[(Fraction("1.2"), Fraction(2), "ANA", "un deux trois quatre")],
                     [(Fraction(0), Fraction("0.8"), "ANA", "cinq six sept huit")]]
    sliver = DialogueLine(2, "ANA", Fraction("1.84"), Fraction("2.4"), "Attends.", "test")
    parts = assign_dialogue([sliver], shots, crossing="split")
    first = _shot_script({"ANA": parts.lines(0, "ANA")}, shots[0], RATE)
    second = _shot_script({"ANA": parts.lines(1, "ANA")}, shots[1], RATE)
    assert first == "" and "ANA: Attends." in second


def test_a_line_with_no_text_across_the_cut_is_still_a_cue_in_each_shot(tmp_path: Path) -> None:
    """A CSV row may name its character and leave the text empty. Crossing the cut, its
    character speaks in both shots (``_plan``), but each part's share of no words was
    dropped from the scripts: the render was given an empty script (EmptyScriptError). Each
    part says ``...``, as a line without text in one shot does."""
    from pipelines.reel import ShotList, Transition, assign_dialogue, load_dialogue
    from studio.reels.job import _shot_script

    shots = ShotList.from_transitions([Transition.cut(50)], 100, RATE)
    table = tmp_path / "lines.csv"
    table.write_text("character,tc_in,tc_out,text\nANA,00:00:01.000,00:00:03.000,\n")
    assignment = assign_dialogue(load_dialogue(table, shots), shots, crossing="split")
    for shot in shots:
        srt = _shot_script({"ANA": assignment.lines(shot.index, "ANA")}, shot, RATE)
        cues = load_script(srt.encode(), fmt="srt").cues
        assert [(c.speaker, c.text) for c in cues] == [("ANA", "...")]


def test_no_part_of_a_split_line_is_only_punctuation_or_markup() -> None:
    """A part's share of the words was counted in whitespace tokens, so a part could get
    ``—`` or ``{\\an8}`` alone: its character was a speaker of the shot (a render of a face
    with nothing to say; a style override alone even read back as the label spoken by no
    speaker). A token that says nothing now goes with the word beside it."""
    from pipelines.reel import ShotList, Transition, assign_dialogue

    shots = ShotList.from_transitions([Transition.cut(50)], 100, RATE)
    for text in ("— Non, attends, je reviens.", "{\\an8} Non , attends ... je reviens !"):
        for first in range(30, 48):
            line = DialogueLine(1, "ANA", Fraction(first, 25), Fraction(3), text, "test")
            assignment = assign_dialogue([line], shots, crossing="split")
            parts = [sl.words() for sd in assignment.shots
                     for sl in sd.by_character.get("ANA", ())]
            assert " ".join(p for p in parts if p).split() == text.split()
            assert all(p == "" or any(ch.isalpha() for ch in p.replace("\\an8", ""))
                       for p in parts), (first, parts)


def test_a_text_the_reader_reads_as_nothing_is_not_the_label_said_by_no_one() -> None:
    """A CSV text that is a style override alone (``{\\an8}``) was written as ``ANA:
    {\\an8}``, which the script reader reads back as the text ``ANA:`` under no speaker:
    the label spoken by nobody's face. It says ``...``, as a line without text does."""
    from studio.reels.job import _shot_script

    line = DialogueLine(1, "ANA", Fraction("0.2"), Fraction("1.2"), "{\\an8}", "test")
    srt = _shot_script({"ANA": (ShotLine(line, 0, 5, 30),)}, SHOT, RATE)
    cues = load_script(srt.encode(), fmt="srt").cues
    assert [(c.speaker, c.text) for c in cues] == [("ANA", "...")]


def test_a_speaker_refused_by_the_gate_makes_room_for_the_fifth(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Five speakers on screen, four edited at most: when the gate refuses BEN's face, the
    retry chooses again without him, so EVE (the fifth) takes his place and is asked about
    in the new decision; BEN's face is not asked about again and his line is not in it."""
    from studio.errors import RenderDenied
    from studio.render.events import Stage
    from studio.services import render as render_service

    names = ["ANA", "BEN", "CLEO", "DAN", "EVE"]
    cast = {n: f"{n.lower()}-p" for n in names}
    faces = {f"t{i}": f"{n.lower()}-p" for i, n in enumerate(names, start=1)}
    said = {n: (_line(n, 0.1 + 0.3 * i, 0.35 + 0.3 * i, f"Ligne {i}"),)
            for i, n in enumerate(names)}
    job = _job(tmp_path, cast)
    cut = tmp_path / "cut.mp4"
    cut.write_bytes(b"not read")
    seen: list[RenderRequest] = []
    deny = SimpleNamespace(
        decision_id="dec-1", reasons=["ben-grant does not cover language fr"],
        rules=[SimpleNamespace(passed=True, performer_id="ana-p"),
               SimpleNamespace(passed=False, performer_id="ben-p")])

    def start_render(ctx: Any, request: RenderRequest) -> Any:
        seen.append(request)
        if len(seen) == 1:
            raise RenderDenied(deny, Stage.AUTHORIZE)  # type: ignore[arg-type]
        raise _Stop

    monkeypatch.setattr(render_service, "start_render", start_render)
    identity = SimpleNamespace(tracks=[_Track(t, _Match(p)) for t, p in faces.items()],
                               matches=())
    monkeypatch.setattr(job, "_identify", lambda cut: identity)
    plan = ShotPlan(SHOT, tuple(said), "k" * 64, {}, dict.fromkeys(said, cut), dict(said))
    with pytest.raises(_Stop):
        job._render(plan, cut)
    first, retry = seen
    assert first.tracks == ("t1", "t2", "t3", "t4")
    assert retry.tracks == ("t1", "t3", "t4", "t5")
    assert [text for _, text in _read_back(retry)] == ["Ligne 0", "Ligne 2", "Ligne 3",
                                                       "Ligne 4"]
    assert any("BEN refused by the gate" in n for n in job.notes), job.notes
