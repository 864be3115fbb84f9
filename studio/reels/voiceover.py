"""The script lines no render speaks, spoken for the reel's mix.

With per-character stems the dub is recorded audio and every word is in the mix whatever
the picture shows. With a timed script the words are synthesised inside each shot's render,
so the lines of a character who is off screen, not cast, in a shot the gate refused, or
left out of a two-person render would be silent in the delivered language version: the
original picture stays (nothing of it may change without consent), but a dubbing house
still ships the translated words over it, as conventional dubbing does.

:func:`unspoken_lines` finds those lines (a line split across a cut by its parts: each
part's share of the words, ``ShotLine.words``, is what a render of that shot says, so the
parts no render says are voiced and every word is said once); :func:`speak_lines`
synthesises each with the renders' own voice (espeak-ng, the release's language, the
default voice), fitted into its cue by the renders' own rule
(``pipelines.speech.fitting.fit_line``), at the line's reel time on its character's
track.
"""

from __future__ import annotations

import html
from collections.abc import Iterable, MutableMapping, Sequence
from dataclasses import dataclass, replace
from fractions import Fraction

import numpy as np
from numpy.typing import NDArray

from pipelines.errors import PipelineError
from pipelines.reel import DialogueAssignment, DialogueLine
from pipelines.reel.dialogue import ShotLine
from pipelines.speech.fitting import fit_line
from pipelines.speech.script import Cue, ScriptError, load_script
from pipelines.speech.tts import Synthesizer

__all__ = ["SpokenLine", "SpokenLines", "as_read", "speak_lines", "unspoken_lines"]


def unspoken_lines(assignment: DialogueAssignment, spoken: Iterable[tuple[int, str]],
                   rate: Fraction) -> tuple[DialogueLine, ...]:
    """What of the named lines of ``assignment`` no render speaks, in time order.

    ``spoken``: the ``(shot, character)`` pairs a finished render speaks for. A line in one
    shot is returned whole when its pair is not spoken; a line split across a cut by its
    parts (``ShotLine.words`` in ``ShotLine.seconds``: the share a render of that shot would
    say), and neighbouring parts no render says are joined into one line, so that a line
    rendered nowhere is voiced whole rather than in pieces cut at the cuts. Lines from stems
    (no text) are never returned: their audio is in the character's stem already.
    """
    said = set(spoken)
    # Each named line's parts in shot order, with whether a render says them.
    parts: dict[tuple[str, int], list[tuple[ShotLine, bool]]] = {}
    for shot in assignment.shots:
        for character, shot_lines in shot.by_character.items():
            for sl in shot_lines:
                if sl.line.character is not None:
                    key = (sl.line.origin, sl.line.index)
                    parts.setdefault(key, []).append((sl, (shot.shot, character) in said))
    out: list[DialogueLine] = []
    for line_parts in parts.values():
        run: list[ShotLine] = []
        for sl, rendered in [*line_parts, (line_parts[-1][0], True)]:  # a sentinel ends a run
            if not rendered:
                run.append(sl)
                continue
            if run:
                out.extend(_joined(run, rate))
                run = []
    return tuple(sorted(out, key=lambda line: (line.start, line.index)))


def _joined(run: list[ShotLine], rate: Fraction) -> list[DialogueLine]:
    """Consecutive unspoken parts of one line as one line (their words, their time)."""
    text = " ".join(w for w in (sl.words() for sl in run) if w.strip())
    if not text.strip():
        return []
    if len(run) == 1 and not run[0].split:
        return [run[0].line]
    start, end = run[0].seconds(rate)[0], run[-1].seconds(rate)[1]
    return [replace(run[0].line, start=start, end=end, text=text)]


@dataclass(frozen=True)
class SpokenLine:
    """One voiced line: mono ``samples`` to add to ``character``'s track from sample
    ``first`` on (already cut at the reel's end)."""

    character: str
    first: int
    samples: NDArray[np.float32]


@dataclass(frozen=True)
class SpokenLines:
    """The voiced lines (only their own samples: a reel's worth of silence per character
    would cost 230 MB for 20 minutes at 48 kHz), and what was said of lines that could not
    be spoken whole (for the job's notes)."""

    lines: tuple[SpokenLine, ...]
    notes: tuple[str, ...]

    def add_to(self, tracks: MutableMapping[str, NDArray[np.float32]], length: int) -> None:
        """Add each line into ``tracks[character]`` (``channels × length``; made silent
        when missing): lines of one character never overlap (the script readers refuse
        that), so placing is adding."""
        for line in self.lines:
            track = tracks.get(line.character)
            if track is None:
                track = tracks[line.character] = np.zeros((1, length), dtype=np.float32)
            track[:, line.first:line.first + line.samples.shape[0]] += line.samples


def as_read(text: str) -> str:
    """``text`` as a shot's render reads it from the script the reel job writes for it
    (``studio.reels.job._shot_script``: escaped, under a speaker label, then read back by
    ``load_script``, which drops subtitle style overrides such as ``{\\an8}``), so that a
    line is voiced with the words a render would speak; ``""`` when nothing speakable is
    left."""
    probe = (f"1\n00:00:00,000 --> 00:00:01,000\n"
             f"SPEAKER 1: {html.escape(text, quote=False)}\n")
    try:
        cues = load_script(probe.encode(), fmt="srt").cues
    except ScriptError:
        return ""
    # Nothing after the label once the markup is gone: the reader takes the label itself
    # as the text, under no speaker.
    return " ".join(c.text for c in cues if c.speaker == "SPEAKER 1").strip()


def speak_lines(lines: Sequence[DialogueLine], *, language: str, rate: int, length: int,
                synthesizer: Synthesizer | None = None) -> SpokenLines:
    """Each line synthesised (``as_read``), fitted into its cue and placed at
    ``round(start · rate)`` on a reel of ``length`` samples. A line that runs past the
    reel's end is cut there, and a line the synthesiser refuses (or with nothing speakable)
    is left silent; both are noted."""
    spoken: list[SpokenLine] = []
    notes: list[str] = []
    if not lines:
        return SpokenLines((), ())
    tts = synthesizer or Synthesizer()
    for line in lines:
        assert line.character is not None  # unspoken_lines returns named lines only
        # At the line's reel time (the fitter's note names it; the samples do not depend on it).
        text = as_read(line.text)
        cue = Cue(line.index, line.start, line.end, text or line.text, line.character)
        try:
            if not text:
                raise ValueError("nothing to speak once the script's markup is read")
            fitted = fit_line(tts.speak(text, language=language), cue, rate=rate)
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
        spoken.append(SpokenLine(line.character, first, samples))
    return SpokenLines(tuple(spoken), tuple(notes))
