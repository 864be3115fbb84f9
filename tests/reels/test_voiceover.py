"""Script lines no render speaks are voiced in the reel's mix (``studio.reels.voiceover``):
which lines, and that each is real speech at its own reel time, on its character's track."""

from __future__ import annotations

import itertools
from fractions import Fraction

import numpy as np
from numpy.typing import NDArray

from pipelines.reel import DialogueLine, ShotList, Transition, assign_dialogue
from studio.reels.voiceover import SpokenLines, as_read, speak_lines, unspoken_lines

RATE = 48_000
REEL_S = 4
SHOTS = ShotList.from_transitions([Transition.cut(50)], 25 * REEL_S, Fraction(25))


def _line(index: int, character: str | None, start: str, end: str, text: str,
          origin: str = "reel.fr.srt") -> DialogueLine:
    return DialogueLine(index, character, Fraction(start), Fraction(end), text,
                        f"{origin} cue {index}")


LINES = (
    _line(1, "ANA", "0.2", "1.2", "Bonjour, Ben."),
    _line(2, "BEN", "1.3", "1.9", "Salut."),
    _line(3, "CARL", "2.2", "3.4", "Il n'est pas là."),
    _line(4, "ANA", "1.8", "2.6", "Attends, je reviens tout de suite."),  # cut at 2.0 s
    _line(5, None, "3.5", "3.9", "Narration."),
    _line(6, "BEN", "2.1", "2.3", "", origin="BEN.wav"),  # a stem's line: no text
)


def test_only_lines_no_render_speaks_are_returned_in_time_order() -> None:
    assignment = assign_dialogue(LINES, SHOTS, crossing="split")
    rate = SHOTS.frame_rate
    # Shot 0 rendered for ANA only (BEN left out); nothing rendered in shot 1.
    out = unspoken_lines(assignment, [(0, "ANA")], rate)
    assert [(line.index, line.text) for line in out] == [
        (2, "Salut."), (4, "reviens tout de suite."), (3, "Il n'est pas là.")]
    # The part of ANA's line after the cut, in its own time: shot 1 starts at 2.0 s.
    assert (out[1].start, out[1].end) == (Fraction(2), Fraction("2.6"))
    # Nothing rendered: every named line with words, the crossing one whole again (its
    # parts, both unspoken, joined: not voiced in two pieces cut at the cut).
    nothing = unspoken_lines(assignment, [], rate)
    assert [(line.index, line.text) for line in nothing] == [
        (1, "Bonjour, Ben."), (2, "Salut."), (4, "Attends, je reviens tout de suite."),
        (3, "Il n'est pas là.")]
    assert (nothing[2].start, nothing[2].end) == (Fraction("1.8"), Fraction("2.6"))
    # ANA rendered after the cut only: the part before it is voiced.
    before = unspoken_lines(assignment, [(1, "ANA")], rate)
    assert [(line.index, line.text) for line in before if line.index == 4] == [
        (4, "Attends, je")]
    everyone = [(0, "ANA"), (0, "BEN"), (1, "ANA"), (1, "CARL")]
    assert unspoken_lines(assignment, everyone, rate) == ()


def test_a_line_across_cuts_says_each_word_once_whatever_its_parts() -> None:
    """The parts of a split line partition its words (each said once, by the render of its
    shot or the voice-over), in proportion to the frames of each part."""
    shots = ShotList.from_transitions([Transition.cut(c) for c in (30, 37, 60)], 100,
                                      Fraction(25))
    text = "un deux trois quatre cinq six sept huit neuf dix onze douze"
    for start, end in (("0.5", "3.9"), ("1.0", "2.6"), ("1.44", "1.6"), ("0.0", "4.0")):
        line = _line(9, "ANA", start, end, text)
        assignment = assign_dialogue([line], shots, crossing="split")
        parts = [sl for sd in assignment.shots for sl in sd.by_character.get("ANA", ())]
        assert " ".join(p.words() for p in parts if p.words()).split() == text.split()
        times = [p.seconds(shots.frame_rate) for p in parts]
        assert times[0][0] == line.start and times[-1][1] == line.end
        assert all(a[1] == b[0] for a, b in itertools.pairwise(times))


def _tracks(voiced: SpokenLines) -> dict[str, NDArray[np.float32]]:
    tracks: dict[str, NDArray[np.float32]] = {}
    voiced.add_to(tracks, REEL_S * RATE)
    return tracks


def test_each_line_is_speech_placed_in_its_cue_on_its_characters_track() -> None:
    lines = [LINES[1], LINES[2]]
    voiced = speak_lines(lines, language="fr", rate=RATE, length=REEL_S * RATE)
    tracks = _tracks(voiced)
    assert set(tracks) == {"BEN", "CARL"}
    # Only the lines' own samples are held, not a reel of silence per character.
    assert all(v.samples.shape[0] < 2 * RATE for v in voiced.lines)
    for line in lines:
        track = tracks[str(line.character)][0]
        assert track.shape == (REEL_S * RATE,) and track.dtype == np.float32
        a, b = round(line.start * RATE), round(line.end * RATE)
        inside = float(np.sqrt(np.mean(track[a:b] ** 2)))
        outside = np.concatenate([track[:a], track[b + RATE // 10:]])
        assert inside > 0.01, (line, inside)  # speech, not near-silence
        # Nothing before the cue; after it at most the fitter's allowed overrun (none here).
        assert float(np.abs(outside).max(initial=0.0)) == 0.0, line


def test_a_line_past_the_reels_end_is_cut_there_and_noted() -> None:
    long = _line(7, "CARL", "3.7", "3.99", "Une phrase bien trop longue pour sa place.")
    voiced = speak_lines([long], language="fr", rate=RATE, length=REEL_S * RATE)
    (carl,) = voiced.lines
    assert carl.first + carl.samples.shape[0] == REEL_S * RATE
    assert _tracks(voiced)["CARL"].shape == (1, REEL_S * RATE)
    assert any("cut at the reel's end" in n for n in voiced.notes), voiced.notes
    assert any("spoken off screen" in n for n in voiced.notes), voiced.notes
    # The note names the cue where it is in the reel (it said 00:00:00,000 for every line).
    note = next(n for n in voiced.notes if "spoken off screen" in n)
    assert "00:00:03,700 --> 00:00:03,990" in note, note


def test_a_language_the_synthesiser_lacks_is_noted_not_raised() -> None:
    voiced = speak_lines([LINES[2]], language="x-klingon", rate=RATE, length=REEL_S * RATE)
    assert voiced.lines == ()
    assert voiced.notes and "not spoken" in voiced.notes[0], voiced.notes


def test_lines_are_voiced_with_the_words_a_render_would_speak() -> None:
    """The render reads its script through the script reader, which drops subtitle style
    overrides and reads escaped text back as written; the voice-over speaks the same."""
    assert as_read("{\\an8}Bonjour <i>Ben</i> & Co") == "Bonjour <i>Ben</i> & Co"
    assert as_read("{\\an8}") == ""
    voiced = speak_lines([_line(8, "CARL", "1.0", "2.0", "{\\an8}")], language="fr",
                         rate=RATE, length=REEL_S * RATE)
    assert voiced.lines == () and "nothing to speak" in voiced.notes[0], voiced.notes


def test_rendered_parts_and_voiced_pieces_say_every_word_once() -> None:
    """Whatever shots are rendered, the words the renders say (each rendered part's share)
    and the words voiced over (the unspoken parts, joined where neighbours) are the line's
    words, each once, in order."""
    import random

    rng = random.Random(17)
    shots = ShotList.from_transitions([Transition.cut(c) for c in (20, 31, 45, 70, 82)],
                                      100, Fraction(25))
    words = [f"w{i}" for i in range(11)]
    for _ in range(300):
        a = rng.randrange(0, 95)
        b = rng.randrange(a + 1, 101)
        line = DialogueLine(1, "ANA", Fraction(a, 25), Fraction(b, 25),
                            " ".join(words[:rng.randrange(1, 12)]), "t cue 1")
        assignment = assign_dialogue([line], shots, crossing="split")
        rendered = {(s.index, "ANA") for s in shots if rng.random() < 0.5}
        said: list[tuple[Fraction, str]] = []
        for sd in assignment.shots:
            for sl in sd.by_character.get("ANA", ()):
                if (sd.shot, "ANA") in rendered and sl.words():
                    said.append((sl.seconds(shots.frame_rate)[0], sl.words()))
        said += [(v.start, v.text) for v in
                 unspoken_lines(assignment, rendered, shots.frame_rate)]
        spoken = " ".join(text for _, text in sorted(said)).split()
        assert spoken == line.text.split(), (a, b, rendered, said)
