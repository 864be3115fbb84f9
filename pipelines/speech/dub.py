"""Preparing a recorded dub for its shot: length, rate, layout, mix and loudness (issue 4).

A dub actor's take arrives as a file of any common shape (8-96 kHz; mono, stereo or 5.1) and must
leave as audio that fits the shot sample for sample, because the picture is not retimed to the
voice: a dub that runs long either loses words or pushes every later shot off sync.

Length rule
===========

The dialogue, and the music-and-effects stem (M&E) when there is one, must each last as long as
the shot (``shot_duration``, exact seconds), within ``tolerance_s`` (0.5 s by default; the
comparison is inclusive):

* **Shorter by at most the tolerance**: padded with digital silence at the end. A take that stops
  early is normal (the actor stopped talking; the room tone need not run on).
* **Longer by at most the tolerance**: the excess is cut only if it is silent, i.e. its sample
  peak over all channels is below :data:`SILENCE_DBFS` (−50 dBFS, well under any speech or
  breath yet above dither and a quiet converter's noise). A tail that holds sound is refused:
  cutting it would cut a word or a breath in half.
* **Beyond the tolerance either way**: refused. A take half a second off is an editing slip; more
  is the wrong take or the wrong shot, which no automatic step should paper over.

A refusal is a :class:`DubLengthError` naming the stem, both lengths in seconds and as
``HH:MM:SS.mmm``, and what to do. Lengths are compared at the input's own rate before any
resampling (the shot's end is sample ``round(shot_duration · rate)``), so the decision does not
depend on the output rate.

Rates, layouts and loudness
===========================

* After the length rule each stem is resampled to ``output_rate`` (default 48 kHz, the rate of
  picture delivery) with :func:`pipelines.media.audio.resample`, then cut or padded by the odd
  rounding sample: :attr:`PreparedDub.mix` has exactly ``round(shot_duration · output_rate)``
  samples per channel.
* Layout: the M&E is the programme, so the mix keeps its layout and the dialogue is placed in it
  by :func:`pipelines.media.audio.mix` (mono to the centre of 5.1, or to both sides of stereo at
  −3 dB; a wider dialogue is folded down). Without an M&E the mix keeps the dialogue's own layout.
  ``layout`` overrides both: fewer channels are reached with the ITU-R BS.775 downmix, more by
  the same placement rules.
* Analysis copy: :attr:`PreparedDub.dialogue_mono_16k` is the length-conformed dialogue alone (no
  M&E, level untouched), folded to mono with the ITU-R BS.775 matrix
  (:func:`pipelines.media.audio.downmix`) and resampled to 16 kHz, exactly
  ``round(shot_duration · 16000)`` samples: the input of :mod:`pipelines.speech.recognition`, on
  the shot's timeline.
* Loudness: the finished mix is normalised to ``loudness_target`` LUFS with the true peak held at
  −1 dBTP (:func:`pipelines.media.audio.normalise`); ``None`` leaves the level alone. Shots under
  0.4 s cannot be measured (BS.1770 needs one 400 ms block): their level is left alone and
  :attr:`PreparedDub.loudness_lufs` is ``None``.

Other refusals (:class:`DubError`): empty, NaN or infinite samples, dialogue with no sound above
−50 dBFS (nothing was recorded), shots longer than :data:`MAX_SHOT_S`, and bad arguments.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from fractions import Fraction
from typing import Literal

import numpy as np
from numpy.typing import NDArray

from pipelines.errors import PipelineInputError
from pipelines.media.audio import (
    EBU_R128,
    MAX_RATE,
    MIN_RATE,
    Audio,
    Layout,
    downmix,
    measure_loudness,
    mix,
    normalise,
    resample,
)

__all__ = [
    "ANALYSIS_RATE",
    "DEFAULT_TOLERANCE_S",
    "MAX_SHOT_S",
    "SILENCE_DBFS",
    "DubError",
    "DubLengthError",
    "PreparedDub",
    "prepare_dub",
    "timecode",
]

DEFAULT_TOLERANCE_S = 0.5
SILENCE_DBFS = -50.0
"""A tail whose sample peak is below this (dBFS) is silence and may be trimmed."""
MAX_SHOT_S = 3 * 60 * 60
"""Longest shot accepted, seconds (3 hours: longer than any reel)."""
ANALYSIS_RATE = 16_000
_MIN_LOUDNESS_S = Fraction(2, 5)
_CHANNELS: dict[Layout, int] = {"mono": 1, "stereo": 2, "5.1": 6}


class DubError(PipelineInputError):
    """A dub that cannot be prepared for its shot, with a reason a person can act on."""


class DubLengthError(DubError):
    """A stem whose length does not fit the shot under the length rule (module docstring)."""

    def __init__(self, message: str, *, stem: str, measured_s: float, shot_s: float,
                 tolerance_s: float) -> None:
        super().__init__(message)
        self.stem = stem
        self.measured_s = measured_s
        self.shot_s = shot_s
        self.tolerance_s = tolerance_s


@dataclass(frozen=True, eq=False)
class PreparedDub:
    """A dub ready for its shot (see the module docstring for every field's rule)."""

    mix: Audio
    """What goes into the output file: ``round(shot_duration · output_rate)`` samples."""
    dialogue_mono_16k: Audio
    """The conformed dialogue alone, mono, 16 kHz, level untouched: for recognition."""
    padded_s: float
    """Silence added to the end of the dialogue, seconds (0 if none)."""
    trimmed_s: float
    """Silence cut from the end of the dialogue, seconds (0 if none)."""
    loudness_lufs: float | None
    """Integrated loudness of ``mix`` after normalisation; ``None`` for shots under 0.4 s."""
    notes: tuple[str, ...]
    """What was done, in order, for a person to read."""


def timecode(seconds: float) -> str:
    """``HH:MM:SS.mmm`` (wall-clock, not frame-based: a shot's frame rate is not known here)."""
    millis = round(abs(seconds) * 1000)
    sign = "-" if seconds < 0 and millis else ""
    hours, rest = divmod(millis, 3_600_000)
    minutes, rest = divmod(rest, 60_000)
    secs, millis = divmod(rest, 1000)
    return f"{sign}{hours:02d}:{minutes:02d}:{secs:02d}.{millis:03d}"


def _span(seconds: float) -> str:
    return f"{seconds:.3f} s ({timecode(seconds)})"


def _peak_dbfs(samples: NDArray[np.float32]) -> float:
    peak = float(np.max(np.abs(samples), initial=0.0))
    return 20 * math.log10(peak) if peak > 0 else -math.inf


def _check_stem(audio: Audio, stem: str) -> None:
    if not isinstance(audio, Audio):
        raise TypeError(f"{stem}: expected pipelines.media.audio.Audio, got "
                        f"{type(audio).__name__}")
    if audio.frames == 0:
        raise DubError(f"the {stem} is empty: there is nothing to lay on the shot")
    if not np.isfinite(audio.samples).all():
        raise DubError(f"the {stem} holds NaN or infinite samples: re-export it")


def _conform_length(audio: Audio, shot: Fraction, tolerance_s: float, stem: str,
                    notes: list[str]) -> tuple[Audio, float, float]:
    """Apply the length rule at ``audio``'s own rate; returns (audio, padded_s, trimmed_s)."""
    measured = audio.duration
    shot_s, measured_s = float(shot), float(measured)
    difference = measured_s - shot_s
    if abs(difference) > tolerance_s:
        longer = difference > 0
        advice = ("cut the take (or pick the take for this shot) so that it ends with the shot"
                  if longer else
                  "record or pick a take that fills the shot (or check that this is the right "
                  "shot)")
        raise DubLengthError(
            f"the {stem} lasts {_span(measured_s)} but the shot lasts {_span(shot_s)}: "
            f"{abs(difference):.3f} s {'longer' if longer else 'shorter'}, beyond the "
            f"{tolerance_s:g} s tolerance; {advice}",
            stem=stem, measured_s=measured_s, shot_s=shot_s, tolerance_s=tolerance_s)
    target = round(shot * audio.rate)
    if audio.frames < target:
        pad = target - audio.frames
        samples = np.zeros((audio.channels, target), dtype=np.float32)
        samples[:, : audio.frames] = audio.samples
        padded = pad / audio.rate
        notes.append(f"padded the {stem} with {padded:.3f} s of silence at the end")
        return Audio(samples, audio.rate), padded, 0.0
    if audio.frames > target:
        tail = audio.samples[:, target:]
        peak = _peak_dbfs(tail)
        excess = tail.shape[1] / audio.rate
        if peak >= SILENCE_DBFS:
            raise DubLengthError(
                f"the {stem} lasts {_span(measured_s)}, {excess:.3f} s past the shot's "
                f"{_span(shot_s)}, and that tail is not silent (peak {peak:.1f} dBFS; silence "
                f"is below {SILENCE_DBFS:g} dBFS); cutting it would cut sound off mid-way: edit "
                "the take so that it ends within the shot",
                stem=stem, measured_s=measured_s, shot_s=shot_s, tolerance_s=tolerance_s)
        notes.append(f"trimmed {excess:.3f} s of silence (peak "
                     f"{'-inf' if peak == -math.inf else f'{peak:.1f}'} dBFS) from the end of "
                     f"the {stem}")
        return Audio(np.ascontiguousarray(audio.samples[:, :target]), audio.rate), 0.0, excess
    return audio, 0.0, 0.0


def _at_rate(audio: Audio, rate: int, frames: int, stem: str, notes: list[str] | None) -> Audio:
    """``audio`` resampled to ``rate`` and cut/padded to exactly ``frames`` (rounding only)."""
    if audio.rate != rate and notes is not None:
        notes.append(f"resampled the {stem} from {audio.rate} Hz to {rate} Hz")
    out = resample(audio, rate)
    if out.frames == frames:
        return out
    samples = np.zeros((out.channels, frames), dtype=np.float32)
    n = min(frames, out.frames)
    samples[:, :n] = out.samples[:, :n]
    return Audio(samples, rate)


def _to_layout(audio: Audio, layout: Layout, stem: str, notes: list[str]) -> Audio:
    if audio.layout == layout:
        return audio
    if _CHANNELS[layout] < audio.channels:
        folded: Literal["mono", "stereo"] = "mono" if layout == "mono" else "stereo"
        notes.append(f"downmixed the {audio.layout} {stem} to {folded} (ITU-R BS.775)")
        return downmix(audio, folded)
    notes.append(f"placed the {audio.layout} {stem} in {layout}")
    silent = Audio(np.zeros((_CHANNELS[layout], audio.frames), dtype=np.float32), audio.rate)
    return mix(audio, silent)


def prepare_dub(
    dialogue: Audio,
    shot_duration: Fraction | int,
    *,
    m_and_e: Audio | None = None,
    tolerance_s: float = DEFAULT_TOLERANCE_S,
    output_rate: int = 48_000,
    loudness_target: float | None = EBU_R128,
    layout: Layout | None = None,
) -> PreparedDub:
    """Fit ``dialogue`` (over ``m_and_e``) to a shot of ``shot_duration`` seconds.

    Rules in the module docstring. Raises :class:`DubLengthError` when a stem's length does not
    fit, :class:`DubError` for unusable audio, ``ValueError``/``TypeError`` for bad arguments.
    """
    if isinstance(shot_duration, bool) or not isinstance(shot_duration, Fraction | int):
        raise TypeError(f"shot_duration must be exact (Fraction or int seconds), got "
                        f"{type(shot_duration).__name__}")
    shot = Fraction(shot_duration)
    if shot <= 0:
        raise ValueError(f"shot_duration must be positive, got {shot}")
    if shot > MAX_SHOT_S:
        raise DubError(f"a shot of {_span(float(shot))} is longer than the "
                       f"{MAX_SHOT_S // 3600} h accepted: split it")
    if not (isinstance(tolerance_s, int | float) and math.isfinite(tolerance_s)
            and tolerance_s >= 0):
        raise ValueError(f"tolerance_s must be a non-negative number, got {tolerance_s!r}")
    if not (isinstance(output_rate, int) and MIN_RATE <= output_rate <= MAX_RATE):
        raise ValueError(f"output_rate must be {MIN_RATE}-{MAX_RATE} Hz, got {output_rate!r}")
    if loudness_target is not None and not (
        isinstance(loudness_target, int | float) and math.isfinite(loudness_target)
        and loudness_target < 0
    ):
        raise ValueError(f"loudness_target must be negative LUFS or None, got "
                         f"{loudness_target!r}")
    if layout is not None and layout not in _CHANNELS:
        raise ValueError(f"layout must be mono, stereo or 5.1, got {layout!r}")

    _check_stem(dialogue, "dialogue")
    if _peak_dbfs(dialogue.samples) < SILENCE_DBFS:
        raise DubError(f"the dialogue has no sound above {SILENCE_DBFS:g} dBFS: it looks like "
                       "an empty recording (check the input channel and the take)")
    if m_and_e is not None:
        _check_stem(m_and_e, "M&E")

    notes: list[str] = []
    frames = round(shot * output_rate)
    conformed, padded_s, trimmed_s = _conform_length(
        dialogue, shot, tolerance_s, "dialogue", notes)
    bed: Audio | None = None
    if m_and_e is not None:
        bed, _, _ = _conform_length(m_and_e, shot, tolerance_s, "M&E", notes)

    # The analysis copy comes from the conformed take at its own rate: one resampling only.
    analysis_in = downmix(conformed, "mono") if conformed.layout != "mono" else conformed
    dialogue_mono_16k = _at_rate(analysis_in, ANALYSIS_RATE, round(shot * ANALYSIS_RATE),
                                 "dialogue", None)

    voice = _at_rate(conformed, output_rate, frames, "dialogue", notes)
    if bed is None:
        out_layout = layout or voice.layout
        result = _to_layout(voice, out_layout, "dialogue", notes)
    else:
        bed = _at_rate(bed, output_rate, frames, "M&E", notes)
        out_layout = layout or bed.layout
        bed = _to_layout(bed, out_layout, "M&E", notes)
        if voice.layout != out_layout:
            notes.append(f"placed the {voice.layout} dialogue in the {out_layout} M&E")
        result = mix(voice, bed)

    loudness: float | None = None
    if shot < _MIN_LOUDNESS_S:
        notes.append("the shot is shorter than 0.4 s: loudness cannot be measured, level left "
                     "alone")
    else:
        before = measure_loudness(result)
        if loudness_target is None:
            loudness = before
            notes.append(f"level left alone ({before:.1f} LUFS)")
        elif not math.isfinite(before):
            # Sound above -50 dBFS that BS.1770's -70 LUFS gate still calls silence.
            raise DubError("the dub is too quiet to measure its loudness (below -70 LUFS): "
                           "check the recording level")
        else:
            result = normalise(result, loudness_target)
            loudness = measure_loudness(result)
            notes.append(f"normalised from {before:.1f} LUFS to {loudness:.1f} LUFS "
                         f"(target {loudness_target:g}, true peak held at -1 dBTP)")
    return PreparedDub(result, dialogue_mono_16k, padded_s, trimmed_s, loudness, tuple(notes))
