"""Fit each synthesised line into its cue by time-stretching within bounds (issue 4, item 1).

The stretcher is ``audiotsm``'s WSOLA (waveform-similarity overlap-add), which changes the
duration of speech without changing its pitch. Its frame is about 23 ms at the TTS rate (512
samples at 22050 Hz), the usual size for speech.

Policy (``factor`` is the *speed* factor: above 1 the line is faster and shorter):

* The **natural duration** of a line is the span from the start of its first non-pause phoneme
  to the end of its last non-pause phoneme (espeak's leading and trailing silence is dropped;
  pauses *inside* the line are kept). A line with no spoken phoneme keeps all its audio.
* A line no longer than its cue is **kept at natural speed** (factor 1.0) and starts at the cue
  start: speech is never slowed down to fill a cue, since slowed speech sounds drawn out.
  Status ``"fits"``.
* A line longer than its cue is sped up by exactly ``natural / cue`` so that it ends at the cue
  end, when that is at most ``max_factor`` (default 1.25×). Status ``"stretched"``.
* A line that would need more than ``max_factor`` is sped up by ``max_factor`` only, still
  returned **whole** (never clipped) and flagged ``"too_long"``, with a message for people
  saying how long it is and what to change. It runs past its cue end.
* A line so short that even slowed to ``min_factor`` (default 0.85×) it would cover less than
  the cue (``natural < min_factor × cue``) is kept at natural speed but flagged
  ``"too_short"``: the picture shows a mouth moving for a while after the voice stops.
  ``min_factor`` is therefore a threshold for reporting, never applied to the audio.

:func:`render_dialogue` places every fitted line at its cue start on one mono track; lines of
different speakers that overlap are summed, and a line is never truncated: a line that would run
past the end of the track, or into another line of the same speaker, makes it raise
:class:`DialogueRenderError` listing every such problem.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass
from fractions import Fraction
from typing import Literal

import numpy as np
import numpy.typing as npt
from audiotsm import wsola  # type: ignore[import-untyped]
from audiotsm.io.array import ArrayReader, ArrayWriter  # type: ignore[import-untyped]
from scipy.signal import resample_poly  # type: ignore[import-untyped]

from pipelines.errors import PipelineInputError

from .script import Cue, Script
from .tts import PAUSE, Phoneme, Speech, Synthesizer

__all__ = [
    "DEFAULT_MAX_FACTOR",
    "DEFAULT_MIN_FACTOR",
    "DialogueRenderError",
    "FitReport",
    "FitStatus",
    "FittedLine",
    "fit_line",
    "fit_script",
    "render_dialogue",
    "stretch",
]

DEFAULT_MIN_FACTOR = 0.85
DEFAULT_MAX_FACTOR = 1.25

FitStatus = Literal["fits", "stretched", "too_long", "too_short"]


class DialogueRenderError(PipelineInputError):
    """The fitted lines cannot be placed on the track without truncating or overlapping."""

    def __init__(self, problems: list[str]) -> None:
        self.problems = tuple(problems)
        super().__init__("cannot render the dialogue: " + "; ".join(problems))


@dataclass(frozen=True, eq=False)
class FittedLine:
    """One cue's line, fitted: ``samples`` (float32 mono at ``rate``) start at ``start``.

    ``phonemes`` are in absolute seconds (cue start + retimed offset); ``natural_duration`` is the
    spoken span before stretching; ``factor`` is the speed factor applied (> 1: faster).
    """

    cue_index: int
    speaker: str | None
    start: Fraction
    natural_duration: float
    factor: float
    samples: npt.NDArray[np.float32]
    rate: int
    phonemes: tuple[Phoneme, ...]
    status: FitStatus
    message: str | None = None

    @property
    def duration(self) -> float:
        """Duration of the fitted audio, in seconds."""
        return float(self.samples.shape[0]) / float(self.rate)

    @property
    def end(self) -> float:
        """Where the fitted audio ends, in absolute seconds."""
        return float(self.start) + self.duration


@dataclass(frozen=True, eq=False)
class FitReport:
    """All fitted lines in cue order, and a message for each line that does not fit."""

    lines: tuple[FittedLine, ...]
    problems: tuple[str, ...]

    @property
    def ok(self) -> bool:
        return not self.problems


def _tc(seconds: Fraction) -> str:
    total_ms = int(seconds * 1000)
    h, rest = divmod(total_ms, 3_600_000)
    m, rest = divmod(rest, 60_000)
    s, ms = divmod(rest, 1000)
    return f"{h:02d}:{m:02d}:{s:02d},{ms:03d}"


def _where(cue: Cue) -> str:
    return f"cue {cue.index} ({_tc(cue.start)} --> {_tc(cue.end)})"


def _frame_length(rate: int) -> int:
    """A WSOLA frame of about 23 ms, rounded to a power of two (512 at 22050 Hz)."""
    return int(2 ** round(math.log2(rate * 0.0232)))


def stretch(samples: npt.NDArray[np.float32], factor: float, rate: int) -> npt.NDArray[np.float32]:
    """Play mono ``samples`` ``factor`` times faster, keeping the pitch (audiotsm WSOLA).

    The result has exactly ``round(len(samples) / factor)`` samples. The input is padded with
    silence on both sides so that WSOLA's start-up and its last frame do not eat speech.
    """
    if samples.ndim != 1:
        raise ValueError("stretch takes mono samples shaped [n]")
    if not (math.isfinite(factor) and factor > 0):
        raise ValueError(f"speed factor must be a positive number, got {factor!r}")
    n = int(samples.shape[0])
    target = round(n / factor)
    if factor == 1.0 or n == 0:
        return samples.astype(np.float32, copy=True)
    frame = _frame_length(rate)
    pad = 2 * frame
    padded = np.concatenate(
        [np.zeros(pad, np.float32), samples.astype(np.float32), np.zeros(2 * pad, np.float32)]
    )
    reader = ArrayReader(padded[np.newaxis, :])
    writer = ArrayWriter(1)
    wsola(1, speed=factor, frame_length=frame).run(reader, writer)
    out = np.asarray(writer.data, dtype=np.float32)[0]
    lead = round(pad / factor)
    result = out[lead : lead + target]
    if result.shape[0] < target:  # pragma: no cover - the tail padding covers WSOLA's last frame
        result = np.concatenate([result, np.zeros(target - result.shape[0], np.float32)])
    return np.ascontiguousarray(result, dtype=np.float32)


def _spoken_span(speech: Speech) -> tuple[int, int]:
    """Sample range from the first to the last non-pause phoneme (all audio if none)."""
    n = int(speech.samples.shape[0])
    spoken = [p for p in speech.phonemes if p.symbol != PAUSE]
    if not spoken:
        return 0, n
    a = min(max(round(spoken[0].start * speech.rate), 0), n)
    b = min(max(round(spoken[-1].end * speech.rate), a), n)
    return a, b


def fit_line(
    speech: Speech,
    cue: Cue,
    *,
    min_factor: float = DEFAULT_MIN_FACTOR,
    max_factor: float = DEFAULT_MAX_FACTOR,
    rate: int | None = None,
) -> FittedLine:
    """Fit one synthesised line into ``cue`` (see the module's policy).

    ``rate`` is the output sample rate; ``None`` keeps the TTS rate (``speech.rate``), otherwise
    the fitted samples are resampled to it (phoneme times are unaffected).
    """
    if not (0 < min_factor <= 1.0 <= max_factor) or not math.isfinite(max_factor):
        raise ValueError(
            f"need 0 < min_factor <= 1 <= max_factor, got min_factor={min_factor!r}, "
            f"max_factor={max_factor!r}"
        )
    a, b = _spoken_span(speech)
    segment = speech.samples[a:b]
    natural = (b - a) / speech.rate
    cue_s = float(cue.duration)
    needed = natural / cue_s
    message: str | None = None
    status: FitStatus
    if needed <= 1.0:
        factor = 1.0
        status = "fits"
        if needed < min_factor:
            status = "too_short"
            message = (
                f"{_where(cue)}: the line takes {natural:.2f} s at natural speed; even slowed "
                f"to {min_factor:g}× it would take {natural / min_factor:.2f} s < {cue_s:.2f} s "
                "cue; lengthen the translation or shorten the cue"
            )
    elif needed <= max_factor:
        factor = needed
        status = "stretched"
    else:
        factor = max_factor
        status = "too_long"
        message = (
            f"{_where(cue)}: the line needs {natural:.2f} s at natural speed; even at "
            f"{max_factor:g}× it takes {natural / max_factor:.2f} s > {cue_s:.2f} s cue; "
            "shorten the translation or lengthen the cue"
        )
    out = stretch(segment, factor, speech.rate)
    end_s = out.shape[0] / speech.rate
    t0 = a / speech.rate
    t1 = b / speech.rate
    offset = float(cue.start)
    phonemes: list[Phoneme] = []
    for p in speech.phonemes:
        if p.end <= t0 or p.start >= t1:
            continue  # leading / trailing silence that was trimmed
        s = min((max(p.start, t0) - t0) / factor, end_s)
        e = min((min(p.end, t1) - t0) / factor, end_s)
        if e > s:
            phonemes.append(Phoneme(p.symbol, offset + s, offset + e))
    out_rate = speech.rate if rate is None else rate
    if out_rate != speech.rate:
        g = math.gcd(out_rate, speech.rate)
        out = np.asarray(
            resample_poly(out, out_rate // g, speech.rate // g), dtype=np.float32
        )
    return FittedLine(
        cue_index=cue.index,
        speaker=cue.speaker,
        start=cue.start,
        natural_duration=natural,
        factor=factor,
        samples=out,
        rate=out_rate,
        phonemes=tuple(phonemes),
        status=status,
        message=message,
    )


def fit_script(
    script: Script,
    synthesizer: Synthesizer,
    *,
    language: str,
    voices: Mapping[str, tuple[str | None, int]] | None = None,
    min_factor: float = DEFAULT_MIN_FACTOR,
    max_factor: float = DEFAULT_MAX_FACTOR,
    rate: int | None = None,
) -> FitReport:
    """Speak every cue of ``script`` and fit it into its cue.

    ``voices`` maps a speaker name to ``(voice_variant, pitch)``; a cue whose speaker is not in it
    (or has none) uses espeak's default voice at pitch 50.
    """
    lines: list[FittedLine] = []
    problems: list[str] = []
    for cue in script.cues:
        variant, pitch = (None, 50)
        if voices is not None and cue.speaker is not None and cue.speaker in voices:
            variant, pitch = voices[cue.speaker]
        speech = synthesizer.speak(
            cue.text, language=language, voice_variant=variant, pitch=pitch
        )
        line = fit_line(speech, cue, min_factor=min_factor, max_factor=max_factor, rate=rate)
        lines.append(line)
        if line.message is not None:
            problems.append(line.message)
    return FitReport(lines=tuple(lines), problems=tuple(problems))


def render_dialogue(
    report: FitReport, total_duration: Fraction | float, rate: int
) -> npt.NDArray[np.float32]:
    """Mix the fitted lines into one mono track of ``round(total_duration * rate)`` samples.

    Each line starts at ``round(start * rate)``; overlapping lines of different speakers are
    summed. Nothing is truncated: a line running past ``total_duration`` or overlapping another
    line of the same (or an unnamed) speaker raises :class:`DialogueRenderError`.
    """
    total = round(Fraction(total_duration) * rate)
    if total < 0:
        raise ValueError("total_duration must not be negative")
    track = np.zeros(total, dtype=np.float32)
    problems: list[str] = []
    placed: list[tuple[int, int, FittedLine]] = []
    for line in report.lines:
        if line.rate != rate:
            problems.append(
                f"cue {line.cue_index}: line is at {line.rate} Hz, the track at {rate} Hz"
            )
            continue
        a = round(line.start * rate)
        b = a + int(line.samples.shape[0])
        if b > total:
            problems.append(
                f"cue {line.cue_index}: the line ends at {b / rate:.3f} s, after the end of the "
                f"track ({total / rate:.3f} s); shorten the line or lengthen the track"
            )
            continue
        for pa, pb, other in placed:
            same = line.speaker is None or other.speaker is None or line.speaker == other.speaker
            if same and a < pb and pa < b:
                who = line.speaker or "unnamed speaker"
                problems.append(
                    f"cue {line.cue_index} ({a / rate:.3f}-{b / rate:.3f} s) overlaps cue "
                    f"{other.cue_index} ({pa / rate:.3f}-{pb / rate:.3f} s) of the same voice "
                    f"({who}); shorten one of the lines"
                )
        placed.append((a, b, line))
        track[a:b] += line.samples
    if problems:
        raise DialogueRenderError(problems)
    return track
