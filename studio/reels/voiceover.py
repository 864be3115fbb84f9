"""The script lines no render speaks, spoken for the reel's mix.

With per-character stems the dub is recorded audio and every word is in the mix whatever
the picture shows. With a timed script the words are synthesised inside each shot's render,
so the lines of a character who is off screen, not cast, in a shot the gate refused, or
left out of a two-person render would be silent in the delivered language version: the
original picture stays (nothing of it may change without consent), but a dubbing house
still ships the translated words over it, as conventional dubbing does.

:func:`unspoken_lines` finds those lines (a line some render speaks, even in part, is
left to it: a line split across a cut is one text, and speaking the rest again would say it
twice); :func:`speak_lines` synthesises each with the renders' own voice (espeak-ng, the
release's language, the default voice), fitted into its cue by the renders' own rule
(``pipelines.speech.fitting.fit_line``), and lays it on its character's track at the
line's reel time.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass

import numpy as np
from numpy.typing import NDArray

from pipelines.errors import PipelineError
from pipelines.reel import DialogueAssignment, DialogueLine
from pipelines.speech.fitting import fit_line
from pipelines.speech.script import Cue
from pipelines.speech.tts import Synthesizer

__all__ = ["SpokenLines", "speak_lines", "unspoken_lines"]


def unspoken_lines(assignment: DialogueAssignment,
                   spoken: Iterable[tuple[int, str]]) -> tuple[DialogueLine, ...]:
    """The named lines of ``assignment`` that no render speaks, in time order.

    ``spoken``: the ``(shot, character)`` pairs a finished render speaks for. A line with
    any part in such a pair is the render's (module docstring). Lines from stems (no text)
    are never returned: their audio is in the character's stem already.
    """
    said = set(spoken)
    parts: dict[tuple[str, int], list[tuple[int, str]]] = {}
    lines: dict[tuple[str, int], DialogueLine] = {}
    for shot in assignment.shots:
        for character, shot_lines in shot.by_character.items():
            for sl in shot_lines:
                key = (sl.line.origin, sl.line.index)
                lines[key] = sl.line
                parts.setdefault(key, []).append((shot.shot, character))
    out = [line for key, line in lines.items()
           if line.character is not None and line.text.strip()
           and not any(p in said for p in parts[key])]
    return tuple(sorted(out, key=lambda line: (line.start, line.index)))


@dataclass(frozen=True)
class SpokenLines:
    """Per character, mono samples at ``rate`` over the whole reel; and what was said of
    lines that could not be spoken whole (for the job's notes)."""

    tracks: dict[str, NDArray[np.float32]]
    notes: tuple[str, ...]


def speak_lines(lines: Sequence[DialogueLine], *, language: str, rate: int, length: int,
                synthesizer: Synthesizer | None = None) -> SpokenLines:
    """Each line synthesised, fitted into its cue and placed at ``round(start · rate)`` on
    its character's track of ``length`` samples; lines of one character never overlap (the
    script readers refuse that), so placing is adding. A line that runs past the reel's end
    is cut there, and a line the synthesiser refuses is left silent; both are noted."""
    tracks: dict[str, NDArray[np.float32]] = {}
    notes: list[str] = []
    if not lines:
        return SpokenLines(tracks, ())
    tts = synthesizer or Synthesizer()
    for line in lines:
        assert line.character is not None  # unspoken_lines returns named lines only
        # At the line's reel time (the fitter's note names it; the samples do not depend on it).
        cue = Cue(line.index, line.start, line.end, line.text, line.character)
        try:
            fitted = fit_line(tts.speak(line.text, language=language), cue, rate=rate)
        except (PipelineError, ValueError) as exc:
            notes.append(f"{line.origin} ({line.character}): not spoken: {exc}")
            continue
        if fitted.message is not None:
            notes.append(f"{line.origin} ({line.character}), spoken off screen: "
                         f"{fitted.message}")
        first = round(line.start * rate)
        samples = fitted.samples[:max(0, length - first)]
        if samples.shape[0] < fitted.samples.shape[0]:
            notes.append(f"{line.origin} ({line.character}): cut at the reel's end")
        track = tracks.setdefault(line.character, np.zeros(length, dtype=np.float32))
        track[first:first + samples.shape[0]] += samples
    return SpokenLines(tracks, tuple(notes))
