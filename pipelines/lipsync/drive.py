"""From new dialogue to a :class:`SpeechDrive`: what the mouth must do at each frame of the shot.

Two sources, one result:

* **A recorded dub** (``drive_from_recording``): the dialogue stem, prepared for the shot by
  ``speech.dub.prepare_dub`` (length rule, rates, downmix, M&E, loudness), is cut into timed
  phones by pocketsphinx's phonetic mode, gated by silero's voice activity (the mouth rests
  where nobody speaks), each utterance's first phone started :data:`ONSET_LEAD_S` early (a
  mouth moves before its voice), mapped to visemes and sampled at the shot's frames. The jaw is then
  scaled by the dialogue's own loudness envelope (``jaw × (1 − k + k · envelope)``, ``k`` =
  :data:`ENVELOPE_DEPTH`): a phone recogniser trained on English hears a French or Japanese dub
  only approximately, but louder syllables are wider everywhere, and lips still close on every
  bilabial because closure is a separate parameter the envelope does not touch.
* **A translated script** (``drive_from_script``): each cue is spoken by espeak-ng in the target
  language, fitted into its cue (``speech.fitting``), and espeak's own phoneme timings drive the
  visemes; the rendered dialogue is the dub track. Cues may name their speaker: each speaker
  gets a drive of their own lines only, so two faces in one shot can speak different parts.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from fractions import Fraction
from typing import Final

import numpy as np
from numpy.typing import NDArray

from pipelines.lipsync.interface import SpeechDrive
from pipelines.media.audio import Audio, resample
from pipelines.speech.dub import PreparedDub
from pipelines.speech.fitting import FitReport, fit_script, render_dialogue
from pipelines.speech.recognition import FILLERS, timed_phones_for_dub
from pipelines.speech.script import Script
from pipelines.speech.tts import PAUSE, Synthesizer
from pipelines.speech.visemes import VisemeTrack

ENVELOPE_DEPTH: Final = 0.4
RECORDING_SMOOTHING_S: Final = 0.09
"""Coarticulation of a recorded dub's visemes (``VisemeTrack`` ``smoothing``; TTS keeps the
50 ms default). Recognised phone boundaries are approximate and real mouths move smoothly:
on the 6 GRID clips the drive's jaw correlates with the speaker's own mouth (dlib, issue 16)
at r 0.543 with 50 ms, 0.555 with 70 ms, 0.563 with 90 ms, 0.563 with 120 ms."""
ONSET_LEAD_S: Final = 0.2
"""How far ahead of its sound the mouth starts an utterance's first gesture (recorded dubs).
A speaker's lips and jaw move before the voice starts: the visible mouth opening leads the
acoustic onset by 100-300 ms (Chandrasekaran et al., "The natural statistics of audiovisual
speech", PLoS Comput Biol 2009); 200 ms is the middle of that span. On the 6 GRID clips the
drive's jaw vs the speaker's own mouth (dlib) reads r 0.561 with no lead, 0.580 at 100 ms,
0.607 at 200 ms; it keeps rising past the physiology (0.650 at 400 ms) only because GRID
speakers hold the mouth ajar before they speak, which is not a gesture to copy. Silence
further from speech than this stays closed."""
ANALYSIS_RATE: Final = 16_000
TTS_MIX_RATE: Final = 48_000


def loudness_envelope(mono: Audio, frame_rate: Fraction, frame_count: int
                      ) -> NDArray[np.float64]:
    """Per frame, the dialogue's RMS over the frame's span in dB, mapped to 0..1.

    0 at or below 40 dB under the loudest frame, 1 at the loudest (the 98th percentile, so one
    shout does not flatten the rest).
    """
    samples = mono.samples[0].astype(np.float64)
    edges = np.round(np.arange(frame_count + 1) * mono.rate / float(frame_rate)).astype(np.int64)
    edges = np.clip(edges, 0, samples.shape[0])
    energy = np.concatenate([[0.0], np.cumsum(samples**2)])
    counts = np.maximum(edges[1:] - edges[:-1], 1)
    rms = np.sqrt((energy[edges[1:]] - energy[edges[:-1]]) / counts)
    db = 20.0 * np.log10(np.maximum(rms, 1e-7))
    top = float(np.percentile(db, 98)) if frame_count else 0.0
    out: NDArray[np.float64] = np.clip((db - (top - 40.0)) / 40.0, 0.0, 1.0)
    return out


def _modulate(shapes: NDArray[np.float64], envelope: NDArray[np.float64], depth: float
              ) -> NDArray[np.float64]:
    out = shapes.copy()
    out[:, 0] *= (1.0 - depth) + depth * envelope
    return out


def anticipated(units: Sequence[tuple[str, float, float]], lead: float
                ) -> list[tuple[str, float, float]]:
    """``units`` with each utterance's first phone started ``lead`` s earlier, into the
    silence before it (never before that silence begins: a short pause gives what it has)."""
    out = [(str(s), float(a), float(b)) for s, a, b in units]
    for i in range(1, len(out)):
        symbol, start, end = out[i]
        before = out[i - 1]
        if symbol in FILLERS or before[0] not in FILLERS:
            continue
        moved = max(before[1], start - lead)
        out[i - 1] = (before[0], before[1], moved)
        out[i] = (symbol, moved, end)
    return [u for u in out if u[2] > u[1]]


def drive_from_recording(dub: PreparedDub, frame_rate: Fraction, frame_count: int, *,
                         envelope_depth: float = ENVELOPE_DEPTH,
                         onset_lead: float = ONSET_LEAD_S) -> SpeechDrive:
    """The drive of a recorded dub (module docstring)."""
    if not 0.0 <= envelope_depth <= 1.0:
        raise ValueError("envelope_depth must be within 0..1")
    if not 0.0 <= onset_lead <= 0.5:
        raise ValueError("onset_lead must be within 0..0.5 s")
    mono = dub.dialogue_mono_16k
    heard = timed_phones_for_dub(mono)
    visemes = VisemeTrack(anticipated(heard.units(), onset_lead),
                          smoothing=RECORDING_SMOOTHING_S)
    shapes = visemes.shapes_at_frames(frame_rate, frame_count)
    if envelope_depth > 0:
        shapes = _modulate(shapes, loudness_envelope(mono, frame_rate, frame_count),
                           envelope_depth)
    return SpeechDrive(Fraction(frame_rate), frame_count, shapes, mono, visemes.timeline(),
                       tuple((v.start, v.end) for v in heard.voice), "recording")


@dataclass(frozen=True, eq=False)
class ScriptDub:
    """A translated script made speakable: the dialogue track and one drive per speaker."""

    dialogue: Audio
    """Mono dialogue at :data:`TTS_MIX_RATE`, exactly the shot's length."""
    drives: dict[str | None, SpeechDrive]
    """Per speaker named in the cues (``None``: cues without a speaker)."""
    fit: FitReport


def drive_from_script(script: Script, language: str, frame_rate: Fraction, frame_count: int,
                      *, synthesizer: Synthesizer | None = None,
                      voices: Mapping[str, tuple[str | None, int]] | None = None,
                      min_factor: float = 0.85, max_factor: float = 1.25) -> ScriptDub:
    """Speak ``script`` in ``language`` and derive each speaker's drive (module docstring).

    Lines that cannot fit their cue are reported in ``fit.problems``; a line that would run past
    the end of the shot or into the same speaker's next line makes ``render_dialogue`` raise.
    """
    tts = synthesizer or Synthesizer()
    fit = fit_script(script, tts, language=language, voices=voices, min_factor=min_factor,
                     max_factor=max_factor, rate=TTS_MIX_RATE)
    duration = Fraction(frame_count) / Fraction(frame_rate)
    track = render_dialogue(fit, duration, TTS_MIX_RATE)
    dialogue = Audio(track[None, :], TTS_MIX_RATE)
    drives: dict[str | None, SpeechDrive] = {}
    for speaker in dict.fromkeys(line.speaker for line in fit.lines):
        lines = [line for line in fit.lines if line.speaker == speaker]
        units = [(p.symbol, p.start, p.end) for line in lines for p in line.phonemes
                 if p.symbol != PAUSE]
        visemes = VisemeTrack(units)
        own = np.zeros_like(track)
        for line in lines:
            a = round(line.start * TTS_MIX_RATE)
            own[a:a + line.samples.shape[0]] += line.samples
        mono = resample(Audio(own[None, :], TTS_MIX_RATE), ANALYSIS_RATE)
        voiced = tuple((float(line.start), line.end) for line in lines)
        drives[speaker] = SpeechDrive(Fraction(frame_rate), frame_count,
                                      visemes.shapes_at_frames(frame_rate, frame_count), mono,
                                      visemes.timeline(), voiced, "script")
    return ScriptDub(dialogue, drives, fit)
