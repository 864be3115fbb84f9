"""Script lines no render speaks are voiced in the reel's mix (``studio.reels.voiceover``):
which lines, and that each is real speech at its own reel time, on its character's track."""

from __future__ import annotations

from fractions import Fraction

import numpy as np

from pipelines.reel import DialogueLine, ShotList, Transition, assign_dialogue
from studio.reels.voiceover import speak_lines, unspoken_lines

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
    _line(4, "ANA", "1.8", "2.6", "Attends."),          # crosses the cut at 2.0 s
    _line(5, None, "3.5", "3.9", "Narration."),
    _line(6, "BEN", "2.1", "2.3", "", origin="BEN.wav"),  # a stem's line: no text
)


def test_only_lines_no_render_speaks_are_returned_in_time_order() -> None:
    assignment = assign_dialogue(LINES, SHOTS, crossing="split")
    # Shot 0 rendered for ANA only (BEN left out); nothing rendered in shot 1.
    out = unspoken_lines(assignment, [(0, "ANA")])
    assert [line.index for line in out] == [2, 3]
    # ANA's line across the cut is hers while any part of it is rendered; with nothing
    # rendered, every named line with words is voiced, the crossing one once.
    assert [line.index for line in unspoken_lines(assignment, [])] == [1, 2, 4, 3]
    assert unspoken_lines(assignment, [(0, "ANA"), (0, "BEN"), (1, "CARL")]) == ()


def test_each_line_is_speech_placed_in_its_cue_on_its_characters_track() -> None:
    lines = [LINES[1], LINES[2]]
    voiced = speak_lines(lines, language="fr", rate=RATE, length=REEL_S * RATE)
    assert set(voiced.tracks) == {"BEN", "CARL"}
    for line in lines:
        track = voiced.tracks[str(line.character)]
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
    assert voiced.tracks["CARL"].shape == (REEL_S * RATE,)
    assert any("cut at the reel's end" in n for n in voiced.notes), voiced.notes
    assert any("spoken off screen" in n for n in voiced.notes), voiced.notes
    # The note names the cue where it is in the reel (it said 00:00:00,000 for every line).
    note = next(n for n in voiced.notes if "spoken off screen" in n)
    assert "00:00:03,700 --> 00:00:03,990" in note, note


def test_a_language_the_synthesiser_lacks_is_noted_not_raised() -> None:
    voiced = speak_lines([LINES[2]], language="x-klingon", rate=RATE, length=REEL_S * RATE)
    assert voiced.tracks == {}
    assert voiced.notes and "not spoken" in voiced.notes[0], voiced.notes
