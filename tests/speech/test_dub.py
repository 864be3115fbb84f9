"""Tests for ``pipelines.speech.dub``: fitting a real recorded take (GRID) to a shot."""

from __future__ import annotations

import math
from fractions import Fraction
from pathlib import Path

import numpy as np
import pytest

from pipelines.media.audio import (
    EBU_R128,
    NETFLIX_DIALOG,
    Audio,
    load_audio,
    measure_loudness,
    resample,
    true_peak,
)
from pipelines.speech.dub import (
    SILENCE_DBFS,
    DubError,
    DubLengthError,
    PreparedDub,
    prepare_dub,
    timecode,
)
from pipelines.speech.recognition import detect_voice

CLIP = Path(__file__).resolve().parents[2] / "assets" / "media" / "grid" / "id2_vcd_swwp2s.mpg"


@pytest.fixture(scope="module")
def grid() -> Audio:
    """Stereo, 44.1 kHz, 131328 samples (2.978 s); speech from 0.49 s to 2.21 s."""
    return load_audio(CLIP)


def _with_tail(audio: Audio, seconds: float, level_dbfs: float | None) -> Audio:
    """``audio`` followed by ``seconds`` of digital silence or noise peaking at ``level_dbfs``."""
    n = round(seconds * audio.rate)
    tail = np.zeros((audio.channels, n), dtype=np.float32)
    if level_dbfs is not None:
        noise = np.random.default_rng(3).uniform(-1, 1, tail.shape)
        tail = (noise / np.abs(noise).max() * 10 ** (level_dbfs / 20)).astype(np.float32)
    return Audio(np.concatenate([audio.samples, tail], axis=1), audio.rate)


def _check(dub: PreparedDub, shot: Fraction, rate: int = 48_000, *,
           normalised: bool = True) -> None:
    assert dub.mix.rate == rate
    assert dub.mix.frames == round(shot * rate)
    assert dub.dialogue_mono_16k.rate == 16_000
    assert dub.dialogue_mono_16k.channels == 1
    assert dub.dialogue_mono_16k.frames == round(shot * 16_000)
    assert np.isfinite(dub.mix.samples).all()
    if normalised and dub.loudness_lufs is not None:
        assert true_peak(dub.mix) <= -1.0 + 0.05


def test_exact_length_passes_through(grid: Audio) -> None:
    shot = grid.duration
    dub = prepare_dub(grid, shot)
    _check(dub, shot)
    assert dub.padded_s == dub.trimmed_s == 0.0
    assert dub.mix.layout == "stereo"
    assert dub.loudness_lufs == pytest.approx(EBU_R128, abs=0.5)
    assert any("resampled the dialogue from 44100 Hz to 48000 Hz" in n for n in dub.notes)


def test_shorter_within_tolerance_is_padded(grid: Audio) -> None:
    shot = Fraction(32, 10)
    dub = prepare_dub(grid, shot)
    _check(dub, shot)
    assert dub.padded_s == pytest.approx(3.2 - 131328 / 44100, abs=1e-4)
    assert dub.trimmed_s == 0.0
    assert not dub.mix.samples[:, -round(0.2 * 48_000):].any()  # digital silence at the end
    assert any("padded the dialogue" in n for n in dub.notes)


def test_silent_excess_within_tolerance_is_trimmed(grid: Audio) -> None:
    take = _with_tail(grid, 0.3, SILENCE_DBFS - 10)  # -60 dBFS: below the silence line
    dub = prepare_dub(take, grid.duration)
    _check(dub, grid.duration)
    assert dub.trimmed_s == pytest.approx(0.3, abs=1e-4)
    assert dub.padded_s == 0.0
    assert any("trimmed 0.300 s of silence" in n for n in dub.notes)
    # Digital silence is trimmed too.
    assert prepare_dub(_with_tail(grid, 0.5, None), grid.duration).trimmed_s == pytest.approx(
        0.5, abs=1e-4)


def test_excess_with_sound_is_refused(grid: Audio) -> None:
    loud_tail = _with_tail(grid, 0.3, SILENCE_DBFS + 10)
    with pytest.raises(DubLengthError, match="not silent") as caught:
        prepare_dub(loud_tail, grid.duration)
    assert caught.value.stem == "dialogue"
    # Speech in the tail: the take cut 1.7 s after 0.5 s, "soon" (1.73-2.21 s) in its tail.
    take = Audio(np.ascontiguousarray(grid.samples[:, 22_050:97_020]), grid.rate)
    with pytest.raises(DubLengthError, match=r"past the shot's 1\.500 s \(00:00:01\.500\)"):
        prepare_dub(take, Fraction(3, 2))
    # GRID's own "silence" is room noise at about -36 dBFS: not silence under the rule.
    with pytest.raises(DubLengthError, match="peak -3"):
        prepare_dub(grid, Fraction(26, 10))


@pytest.mark.parametrize(
    ("shot", "word", "measured"),
    [(Fraction(2), "longer", "0.978 s longer"), (Fraction(4), "shorter", "1.022 s shorter")],
)
def test_beyond_tolerance_is_refused(grid: Audio, shot: Fraction, word: str,
                                     measured: str) -> None:
    with pytest.raises(DubLengthError) as caught:
        prepare_dub(grid, shot)
    message = str(caught.value)
    assert "the dialogue lasts 2.978 s (00:00:02.978)" in message
    assert f"the shot lasts {float(shot):.3f} s ({timecode(float(shot))})" in message
    assert measured in message
    assert "0.5 s tolerance" in message
    assert ("cut the take" if word == "longer" else "record or pick a take") in message
    assert caught.value.measured_s == pytest.approx(131328 / 44100)
    assert caught.value.shot_s == float(shot)
    # A wider tolerance accepts the shorter take.
    if word == "shorter":
        _check(prepare_dub(grid, shot, tolerance_s=1.1), shot)


@pytest.mark.parametrize("rate", [8000, 96_000])
def test_any_rate_in(grid: Audio, rate: int) -> None:
    take = resample(grid, rate)
    shot = Fraction(3)
    dub = prepare_dub(take, shot)
    _check(dub, shot)
    assert any(f"from {rate} Hz to 48000 Hz" in n for n in dub.notes)
    voice = detect_voice(dub.dialogue_mono_16k)
    assert voice
    assert voice[0].start == pytest.approx(0.5, abs=0.15)


def test_output_rate_is_honoured(grid: Audio) -> None:
    shot = Fraction(3)
    _check(prepare_dub(grid, shot, output_rate=44_100), shot, 44_100)


def test_51_dialogue(grid: Audio) -> None:
    surround = np.zeros((6, grid.frames), dtype=np.float32)
    surround[2] = grid.samples[0]  # dialogue in the centre
    surround[4:] = grid.samples[:, ::-1] * np.float32(0.01)  # a little reversed ambience
    shot = Fraction(3)
    dub = prepare_dub(Audio(surround, grid.rate), shot)
    _check(dub, shot)
    assert dub.mix.layout == "5.1"
    # BS.775 to mono: the centre at unity plus the surrounds at 0.5.
    expected = resample(Audio(surround[2:3] + 0.5 * (surround[4:5] + surround[5:6]),
                              grid.rate), 16_000).samples[0]
    got = dub.dialogue_mono_16k.samples[0, : expected.shape[0]]
    np.testing.assert_allclose(got, expected[: got.shape[0]], atol=1e-5)
    assert detect_voice(dub.dialogue_mono_16k)


def _m_and_e(layout_channels: int, seconds: Fraction, rate: int = 48_000) -> Audio:
    """Music and effects: a chord and soft noise, about -30 dBFS RMS."""
    n = round(seconds * rate)
    t = np.arange(n) / rate
    chord = sum(np.sin(2 * np.pi * f * t) for f in (220.0, 277.2, 329.6)) * 0.02
    noise = np.random.default_rng(7).standard_normal((layout_channels, n)) * 0.005
    return Audio((chord + noise).astype(np.float32), rate)


@pytest.mark.parametrize("target", [EBU_R128, NETFLIX_DIALOG])
def test_mixed_over_m_and_e_at_target_loudness(grid: Audio, target: float) -> None:
    shot = Fraction(3)
    bed = _m_and_e(2, shot)
    dub = prepare_dub(grid, shot, m_and_e=bed, loudness_target=target)
    _check(dub, shot)
    assert dub.mix.layout == "stereo"
    assert dub.loudness_lufs is not None
    assert dub.loudness_lufs == pytest.approx(target, abs=0.5)
    assert measure_loudness(dub.mix) == pytest.approx(target, abs=0.5)


def test_mono_dialogue_in_51_m_and_e(grid: Audio) -> None:
    shot = Fraction(3)
    mono = Audio(np.ascontiguousarray(grid.samples[:1]), grid.rate)
    bed = _m_and_e(6, Fraction(29, 10), rate=44_100)  # 0.1 s short: padded too
    dub = prepare_dub(mono, shot, m_and_e=bed)
    _check(dub, shot)
    assert dub.mix.layout == "5.1"
    assert dub.loudness_lufs == pytest.approx(EBU_R128, abs=0.5)
    assert any("padded the M&E" in n for n in dub.notes)
    # The centre carries the dialogue: louder there than in the front left during speech.
    speech = slice(round(1.0 * 48_000), round(2.0 * 48_000))
    centre = float(np.sqrt(np.mean(np.square(dub.mix.samples[2, speech]))))
    left = float(np.sqrt(np.mean(np.square(dub.mix.samples[0, speech]))))
    assert centre > 2 * left


def test_layout_override(grid: Audio) -> None:
    shot = Fraction(3)
    dub = prepare_dub(grid, shot, m_and_e=_m_and_e(6, shot), layout="mono")
    _check(dub, shot)
    assert dub.mix.layout == "mono"
    assert any("downmixed the 5.1 M&E to mono" in n for n in dub.notes)
    up = prepare_dub(grid, shot, layout="5.1")
    assert up.mix.layout == "5.1"


def test_m_and_e_length_is_checked(grid: Audio) -> None:
    with pytest.raises(DubLengthError, match=r"the M&E lasts 2\.000 s") as caught:
        prepare_dub(grid, Fraction(3), m_and_e=_m_and_e(2, Fraction(2)))
    assert caught.value.stem == "M&E"


def test_level_left_alone(grid: Audio) -> None:
    shot = grid.duration
    dub = prepare_dub(grid, shot, loudness_target=None, output_rate=44_100)
    _check(dub, shot, 44_100, normalised=False)
    np.testing.assert_array_equal(dub.mix.samples, grid.samples)
    assert dub.loudness_lufs == pytest.approx(measure_loudness(grid))


def test_very_short_shot_is_not_normalised(grid: Audio) -> None:
    take = Audio(np.ascontiguousarray(grid.samples[:, 60_000:73_230]), grid.rate)  # 0.3 s
    shot = Fraction(3, 10)
    dub = prepare_dub(take, shot)
    _check(dub, shot)
    assert dub.loudness_lufs is None
    assert any("shorter than 0.4 s" in n for n in dub.notes)


def test_unusable_audio_is_refused(grid: Audio) -> None:
    shot = Fraction(3)
    with pytest.raises(DubError, match="empty"):
        prepare_dub(Audio(np.zeros((1, 0), dtype=np.float32), 48_000), shot)
    nan = grid.samples.copy()
    nan[0, 500] = np.nan
    with pytest.raises(DubError, match="NaN"):
        prepare_dub(Audio(nan, grid.rate), shot)
    with pytest.raises(DubError, match="NaN"):
        prepare_dub(grid, shot, m_and_e=Audio(nan, grid.rate))
    with pytest.raises(DubError, match="no sound above -50 dBFS"):
        prepare_dub(Audio(np.zeros((2, 144_000), dtype=np.float32), 48_000), shot)
    assert issubclass(DubLengthError, DubError)
    assert issubclass(DubError, ValueError)


def test_bad_arguments(grid: Audio) -> None:
    with pytest.raises(TypeError, match="exact"):
        prepare_dub(grid, 3.0)  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="positive"):
        prepare_dub(grid, Fraction(0))
    with pytest.raises(ValueError, match="tolerance_s"):
        prepare_dub(grid, Fraction(3), tolerance_s=math.nan)
    with pytest.raises(ValueError, match="output_rate"):
        prepare_dub(grid, Fraction(3), output_rate=4000)
    with pytest.raises(ValueError, match="loudness_target"):
        prepare_dub(grid, Fraction(3), loudness_target=math.inf)
    with pytest.raises(DubError, match="split it"):
        prepare_dub(grid, Fraction(4 * 3600))
    assert prepare_dub(grid, 3).mix.frames == 144_000  # int seconds are exact too


def test_timecode() -> None:
    assert timecode(0) == "00:00:00.000"
    assert timecode(3723.0456) == "01:02:03.046"
    assert timecode(-1.5) == "-00:00:01.500"
