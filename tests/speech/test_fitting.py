"""Tests for ``pipelines.speech.fitting``: fitting espeak-ng lines into their cues."""

from __future__ import annotations

from fractions import Fraction

import numpy as np
import numpy.typing as npt
import pytest

from pipelines.speech.fitting import (
    DialogueRenderError,
    FitReport,
    fit_line,
    fit_script,
    render_dialogue,
    stretch,
)
from pipelines.speech.script import Cue, load_script
from pipelines.speech.tts import PAUSE, Speech, Synthesizer

SHORT = "Hello there."
LONG = "Hello there, how are you today? I am very well, thank you for asking."


@pytest.fixture(scope="module")
def tts() -> Synthesizer:
    return Synthesizer()


def _speak(tts: Synthesizer, text: str) -> Speech:
    return tts.speak(text, language="en")


def _natural(speech: Speech) -> float:
    spoken = [p for p in speech.phonemes if p.symbol != PAUSE]
    return spoken[-1].end - spoken[0].start


def _cue(index: int, start: float, duration: float, text: str = "x") -> Cue:
    s = Fraction(start).limit_denominator(1000)
    return Cue(index, s, s + Fraction(duration).limit_denominator(1000), text, None)


def _rms(x: npt.NDArray[np.float32]) -> float:
    return float(np.sqrt(np.mean(np.square(x.astype(np.float64))))) if x.size else 0.0


def _f0(x: npt.NDArray[np.float32], rate: int) -> float:
    """Median F0 (Hz) of 40 ms windows by autocorrelation, searching 70-400 Hz."""
    win = int(0.04 * rate)
    lo, hi = int(rate / 400), int(rate / 70)
    estimates = []
    for a in range(0, x.shape[0] - win, win // 2):
        w = x[a : a + win].astype(np.float64)
        w = w - w.mean()
        if _rms(w.astype(np.float32)) < 0.02:
            continue
        ac = np.correlate(w, w, mode="full")[win - 1 :]
        seg = ac[lo:hi]
        # the shortest lag whose peak is near the best one (avoids sub-octave errors)
        peaks = [k for k in range(1, seg.size - 1)
                 if seg[k] >= seg[k - 1] and seg[k] >= seg[k + 1] and seg[k] > 0.85 * seg.max()]
        lag = lo + (peaks[0] if peaks else int(np.argmax(seg)))
        estimates.append(rate / lag)
    assert estimates, "no voiced windows"
    return float(np.median(estimates))


def test_line_that_fits_is_kept_at_natural_speed(tts: Synthesizer) -> None:
    speech = _speak(tts, SHORT)
    natural = _natural(speech)
    cue = _cue(3, 2.0, natural + 0.1)
    line = fit_line(speech, cue, rate=speech.rate)
    assert line.status == "fits" and line.message is None
    assert line.factor == 1.0
    assert line.start == cue.start and line.cue_index == 3
    assert line.natural_duration == pytest.approx(natural, abs=1 / speech.rate)
    assert line.samples.dtype == np.float32 and line.rate == speech.rate
    assert line.duration == pytest.approx(natural, abs=2 / speech.rate)
    # placed at the cue start: the first phoneme starts there
    assert line.phonemes[0].start == pytest.approx(float(cue.start), abs=1e-6)


def test_slightly_long_line_is_sped_up_into_its_cue(tts: Synthesizer) -> None:
    speech = _speak(tts, SHORT)
    natural = _natural(speech)
    cue = _cue(1, 1.0, natural / 1.15)
    line = fit_line(speech, cue)
    assert line.status == "stretched" and line.message is None
    assert 1.0 < line.factor <= 1.25
    assert line.factor == pytest.approx(1.15, abs=0.01)
    assert line.duration == pytest.approx(float(cue.duration), abs=0.02)
    assert line.end <= float(cue.end) + 0.02
    # there is still speech near the end of the stretched audio (not silenced or clipped)
    tail = line.samples[-int(0.1 * line.rate) :]
    assert _rms(tail) > 0.01


def test_far_too_long_line_is_flagged_and_not_clipped(tts: Synthesizer) -> None:
    speech = _speak(tts, LONG)
    natural = _natural(speech)
    cue = Cue(4, Fraction(12), Fraction(13), LONG, "ANA")
    line = fit_line(speech, cue)
    assert line.status == "too_long"
    assert line.factor == 1.25
    assert line.message is not None
    assert "cue 4 (00:00:12,000 --> 00:00:13,000)" in line.message
    assert f"{natural:.2f} s" in line.message and "1.00 s cue" in line.message
    assert "shorten the translation or lengthen the cue" in line.message
    # the whole line is there, at 1.25x: longer than the cue, nothing cut
    assert line.duration == pytest.approx(natural / 1.25, abs=0.005)
    assert line.duration > float(cue.duration)
    assert line.phonemes[-1].symbol == [p for p in speech.phonemes if p.symbol != PAUSE][-1].symbol


def test_very_short_line_is_flagged_too_short(tts: Synthesizer) -> None:
    speech = _speak(tts, "Hi.")
    natural = _natural(speech)
    cue = _cue(2, 0.0, natural * 3)
    line = fit_line(speech, cue)
    assert line.status == "too_short" and line.factor == 1.0
    assert line.message is not None and "cue 2 (" in line.message
    assert line.duration == pytest.approx(natural, abs=2 / speech.rate)


def test_phonemes_are_scaled_and_offset_consistently(tts: Synthesizer) -> None:
    speech = _speak(tts, SHORT)
    natural = _natural(speech)
    cue = _cue(1, 5.0, natural / 1.2)
    line = fit_line(speech, cue)
    spoken = [p for p in speech.phonemes if p.symbol != PAUSE]
    t0 = spoken[0].start
    assert [p.symbol for p in line.phonemes] == [
        p.symbol for p in speech.phonemes if p.end > t0 and p.start < spoken[-1].end
    ]
    for orig, new in zip(spoken, [p for p in line.phonemes if p.symbol != PAUSE], strict=True):
        assert new.start == pytest.approx(5.0 + (orig.start - t0) / line.factor, abs=1e-3)
        assert new.end - new.start == pytest.approx((orig.end - orig.start) / line.factor, abs=1e-3)
    for a, b in zip(line.phonemes, line.phonemes[1:], strict=False):
        assert a.end <= b.start + 1e-9
    assert line.phonemes[0].start >= float(cue.start)
    assert line.phonemes[-1].end <= line.end + 1e-9
    assert line.phonemes[-1].end == pytest.approx(line.end, abs=2 / line.rate)


def test_render_dialogue_places_lines_at_their_cues(tts: Synthesizer) -> None:
    srt = (
        b"1\n00:00:00,500 --> 00:00:01,500\nANA: Hello there.\n\n"
        b"2\n00:00:03,000 --> 00:00:04,000\nBEN: Good morning.\n"
    )
    script = load_script(srt, fmt="srt")
    report = fit_script(
        script, tts, language="en", voices={"ANA": ("f2", 60), "BEN": ("m3", 40)}
    )
    assert isinstance(report, FitReport)
    assert [ln.cue_index for ln in report.lines] == [1, 2]
    assert [ln.speaker for ln in report.lines] == ["ANA", "BEN"]
    rate = report.lines[0].rate
    total = Fraction(5)
    track = render_dialogue(report, total, rate)
    assert track.dtype == np.float32 and track.shape == (5 * rate,)
    inside = [track[round(ln.start * rate) : round(ln.start * rate) + ln.samples.size]
              for ln in report.lines]
    outside = np.concatenate([track[: int(0.45 * rate)],
                              track[int(1.6 * rate) : int(2.95 * rate)],
                              track[int(4.1 * rate) :]])
    for seg in inside:
        assert _rms(seg) > 0.02
        assert _rms(seg) > 20 * max(_rms(outside), 1e-6)
    # each line's audio is there unchanged
    a = round(report.lines[1].start * rate)
    np.testing.assert_array_equal(track[a : a + report.lines[1].samples.size],
                                  report.lines[1].samples)


def test_render_dialogue_reports_a_line_past_the_end(tts: Synthesizer) -> None:
    speech = _speak(tts, LONG)
    line = fit_line(speech, Cue(1, Fraction(0), Fraction(1), LONG, None))
    report = FitReport(lines=(line,), problems=(line.message or "",))
    with pytest.raises(DialogueRenderError, match="cue 1: the line ends at"):
        render_dialogue(report, Fraction(1), line.rate)
    # with room for it, nothing is cut
    track = render_dialogue(report, Fraction(10), line.rate)
    np.testing.assert_array_equal(track[: line.samples.size], line.samples)


def test_render_dialogue_sums_overlaps_of_different_speakers_only(tts: Synthesizer) -> None:
    speech = _speak(tts, SHORT)
    a = fit_line(speech, Cue(1, Fraction(0), Fraction(2), SHORT, "ANA"))
    b = fit_line(speech, Cue(2, Fraction(1, 10), Fraction(2), SHORT, "BEN"))
    track = render_dialogue(FitReport((a, b), ()), Fraction(3), a.rate)
    off = round(Fraction(1, 10) * a.rate)
    expected = np.zeros_like(track)
    expected[: a.samples.size] += a.samples
    expected[off : off + b.samples.size] += b.samples
    np.testing.assert_allclose(track, expected, atol=1e-7)
    c = fit_line(speech, Cue(2, Fraction(1, 10), Fraction(2), SHORT, "ANA"))
    with pytest.raises(DialogueRenderError, match="same voice"):
        render_dialogue(FitReport((a, c), ()), Fraction(3), a.rate)


def test_stretcher_preserves_pitch(tts: Synthesizer) -> None:
    speech = tts.speak("aaaaaaaaaah", language="en", pitch=50)
    x = speech.samples
    y = stretch(x, 1.2, speech.rate)
    assert y.shape[0] == round(x.shape[0] / 1.2)
    f_before, f_after = _f0(x, speech.rate), _f0(y, speech.rate)
    assert 70 < f_before < 400
    assert f_after == pytest.approx(f_before, rel=0.10)
    # a naive resample (what a stretcher that does not keep pitch would do) shifts it by 1.2x
    assert abs(f_after * 1.2 - f_before) > 0.1 * f_before


def test_fit_line_resamples_to_a_requested_rate(tts: Synthesizer) -> None:
    speech = _speak(tts, SHORT)
    line = fit_line(speech, _cue(1, 0.0, 2.0), rate=48_000)
    assert line.rate == 48_000
    assert line.duration == pytest.approx(_natural(speech), abs=0.002)


def test_bad_bounds_are_refused(tts: Synthesizer) -> None:
    speech = _speak(tts, SHORT)
    with pytest.raises(ValueError, match="min_factor"):
        fit_line(speech, _cue(1, 0.0, 1.0), min_factor=1.1)
    with pytest.raises(ValueError, match="max_factor"):
        fit_line(speech, _cue(1, 0.0, 1.0), max_factor=0.9)
