"""Audio: load, resample, downmix (BS.775), mix rules, loudness (BS.1770) and normalisation."""

from __future__ import annotations

import math
import wave
from pathlib import Path

import numpy as np
import pytest

from pipelines.media import (
    DOWNMIX,
    EBU_R128,
    NETFLIX_DIALOG,
    Audio,
    downmix,
    load_audio,
    load_channels,
    measure_loudness,
    mix,
    normalise,
    resample,
    true_peak,
)
from tests.media import mediagen as gen

K = 1 / math.sqrt(2)


def _peak_hz(samples: np.ndarray, rate: int) -> float:
    spectrum = np.abs(np.fft.rfft(samples * np.hanning(samples.size)))
    return float(np.argmax(spectrum) * rate / samples.size)


def _speechlike(seconds: float, rate: int, channels: int, seed: int = 1) -> Audio:
    """Noise in syllable-like bursts: a crest factor that makes the limiter work."""
    rng = np.random.default_rng(seed)
    n = round(seconds * rate)
    envelope = np.clip(np.sin(2 * np.pi * 3.0 * np.arange(n) / rate), 0, None) ** 2
    noise = rng.standard_normal((channels, n)) * envelope * 0.2
    return Audio(noise.astype(np.float32), rate)


def test_load_grid_audio() -> None:
    audio = load_audio(gen.GRID[0])
    assert (audio.rate, audio.layout, audio.frames) == (44100, "stereo", 131328)
    assert audio.samples.dtype == np.float32
    assert 0.1 < np.abs(audio.samples).max() <= 1.0


def test_load_surround_keeps_channel_order(audio_51: Path) -> None:
    audio = load_audio(audio_51)
    assert (audio.layout, audio.rate, audio.frames) == ("5.1", 48000, 96000)
    for channel, hz in enumerate((300, 500, 700, 60, 900, 1100)):
        assert abs(_peak_hz(audio.samples[channel], 48000) - hz) < 2


def test_load_channels_takes_discrete_channels_apart(tmp_path: Path) -> None:
    """A dub with a speaker per channel (three here: no loudspeaker layout has that count):
    each channel comes back alone, in the file's order, nothing downmixed; a layout
    ``load_audio`` refuses."""
    rate, n = 48000, 24000
    t = np.arange(n) / rate
    tones = [Audio((0.3 * np.sin(2 * np.pi * hz * t))[None, :].astype(np.float32), rate)
             for hz in (300, 700, 1300)]
    path = _wav(tmp_path / "three.wav", np.concatenate([a.samples for a in tones]), rate)
    with pytest.raises(Exception, match="3 channels"):
        load_audio(path)
    channels = load_channels(path)
    assert [(c.channels, c.rate, c.frames) for c in channels] == [(1, rate, n)] * 3
    for channel, hz in zip(channels, (300, 700, 1300), strict=True):
        assert abs(_peak_hz(channel.samples[0], rate) - hz) < 2
        assert 0.29 < np.abs(channel.samples).max() < 0.31
    # A stereo file is two.
    assert len(load_channels(gen.GRID[0])) == 2


@pytest.mark.parametrize("count", [7, 8])
def test_load_channels_takes_apart_up_to_its_maximum(tmp_path: Path, count: int) -> None:
    """Every count up to MAX_DISCRETE_CHANNELS (8) comes back, each channel alone and in
    order: eight channels decoded as planar float crashed the process (PyAV's to_ndarray,
    a segmentation fault) rather than returning or raising."""
    from pipelines.media.audio import MAX_DISCRETE_CHANNELS

    assert count <= MAX_DISCRETE_CHANNELS
    rate, n = 48000, 9000
    levels = np.arange(1, count + 1, dtype=np.float32) / 10
    path = _wav(tmp_path / f"c{count}.wav", np.repeat(levels[:, None], n, axis=1), rate)
    channels = load_channels(path)
    assert [(c.channels, c.rate, c.frames) for c in channels] == [(1, rate, n)] * count
    for channel, level in zip(channels, levels, strict=True):
        assert np.allclose(channel.samples, level, atol=1e-3)


def test_load_channels_refuses_more_than_it_takes_apart(tmp_path: Path) -> None:
    from pipelines.media import UnsupportedMediaError

    with pytest.raises(UnsupportedMediaError, match="9 channels: 1 to 8"):
        load_channels(_wav(tmp_path / "nine.wav", np.zeros((9, 4800), np.float32), 48000))


def _wav(path: Path, samples: np.ndarray, rate: int) -> Path:
    """16-bit PCM WAV of any channel count (the stdlib writer: no layout named)."""
    with wave.open(str(path), "wb") as fh:
        fh.setnchannels(samples.shape[0])
        fh.setsampwidth(2)
        fh.setframerate(rate)
        fh.writeframes((np.clip(samples, -1, 1) * 32767).astype("<i2").T.tobytes())
    return path


@pytest.mark.parametrize(("src", "dst", "n", "expected"), [
    (8000, 48000, 8000, 48000),      # x6 exactly
    (96000, 48000, 96001, 48001),    # /2, rounding up
    (44100, 48000, 44100, 48000),
    (48000, 16000, 4801, 1601),
])
def test_resample_lengths(src: int, dst: int, n: int, expected: int) -> None:
    audio = Audio(np.zeros((2, n), np.float32), src)
    out = resample(audio, dst)
    assert (out.rate, out.frames, out.channels) == (dst, expected, 2)
    assert out.samples.dtype == np.float32


def test_resample_keeps_pitch_and_level() -> None:
    tone = Audio(gen.tone(1000, 1.0, 8000), 8000)
    up = resample(tone, 48000)
    assert abs(_peak_hz(up.samples[0], 48000) - 1000) < 2
    middle = slice(4800, 43200)  # away from the filter's edges
    rms = float(np.sqrt(np.mean(up.samples[0, middle] ** 2)))
    assert abs(rms - 0.25 / math.sqrt(2)) < 0.25 * 0.01


def test_resample_down_removes_what_cannot_be_kept() -> None:
    ultrasonic = Audio(gen.tone(30000, 0.5, 96000), 96000)  # above 24 kHz: would alias
    down = resample(ultrasonic, 48000)                     # to 18 kHz without the filter
    assert np.abs(down.samples[:, 1000:-1000]).max() < 0.25 * 10 ** (-55 / 20)
    audible = Audio(gen.tone(18000, 0.5, 96000), 96000)    # and the audio band passes
    kept = np.abs(resample(audible, 48000).samples[:, 1000:-1000]).max()
    assert kept == pytest.approx(0.25, rel=0.01)


def test_resample_refuses_out_of_range() -> None:
    with pytest.raises(ValueError, match="outside 8000-96000"):
        resample(Audio(np.zeros((1, 10), np.float32), 48000), 192000)


def test_downmix_51_matrix() -> None:
    impulses = Audio(np.eye(6, dtype=np.float32), 48000)  # channel i fires at sample i
    stereo = downmix(impulses, "stereo").samples
    np.testing.assert_allclose(stereo, [[1, 0, K, 0, K, 0], [0, 1, K, 0, 0, K]], atol=1e-6)
    mono = downmix(impulses, "mono").samples
    np.testing.assert_allclose(mono, [[K, K, 1, 0, 0.5, 0.5]], atol=1e-6)
    assert np.array_equal(DOWNMIX[("5.1", "stereo")][:, 3], [0, 0])  # LFE not carried


def test_downmix_stereo_to_mono_and_refusals() -> None:
    stereo = Audio(np.array([[1, 0], [0, 1]], np.float32), 44100)
    np.testing.assert_allclose(downmix(stereo, "mono").samples, [[K, K]], atol=1e-6)
    assert downmix(stereo, "stereo") is stereo
    with pytest.raises(ValueError, match="cannot downmix mono to stereo"):
        downmix(Audio(np.zeros((1, 4), np.float32), 44100), "stereo")


def test_mix_lengths() -> None:
    rate = 48000
    m_e = Audio(np.full((2, 1000), 0.1, np.float32), rate)
    short = Audio(np.full((2, 400), 0.2, np.float32), rate)
    out = mix(short, m_e)
    assert out.frames == 1000
    np.testing.assert_allclose(out.samples[:, :400], 0.3, atol=1e-6)
    np.testing.assert_allclose(out.samples[:, 400:], 0.1, atol=1e-6)

    long = Audio(np.full((2, 1500), 0.2, np.float32), rate)
    with pytest.raises(ValueError, match=r"0\.010 s past the end"):
        mix(long, m_e)
    assert mix(long, m_e, overrun="trim").frames == 1000
    extended = mix(long, m_e, overrun="extend")
    assert extended.frames == 1500
    np.testing.assert_allclose(extended.samples[:, 1200], 0.2, atol=1e-6)


def test_mix_placement_and_gain() -> None:
    rate = 48000
    dialogue = Audio(np.full((1, 100), 0.5, np.float32), rate)
    surround = mix(dialogue, Audio(np.zeros((6, 100), np.float32), rate))
    assert np.allclose(surround.samples[2], 0.5)  # mono dialogue -> centre
    assert not surround.samples[[0, 1, 3, 4, 5]].any()
    stereo = mix(dialogue, Audio(np.zeros((2, 100), np.float32), rate), dialogue_gain_db=-6)
    np.testing.assert_allclose(stereo.samples, 0.5 * K * 10 ** (-6 / 20), rtol=1e-5)
    with pytest.raises(ValueError, match="resample"):
        mix(dialogue, Audio(np.zeros((2, 100), np.float32), 44100))


def test_loudness_calibration() -> None:
    # BS.1770: a 1 kHz sine of amplitude A in one channel reads 20 log10(A) - 3.01 LUFS.
    sine = Audio(gen.tone(1000, 3.0, 48000, amplitude=0.1), 48000)
    assert measure_loudness(sine) == pytest.approx(-23.01, abs=0.1)


def test_surround_weighting() -> None:
    tone = gen.tone(1000, 2.0, 48000, amplitude=0.1)[0]
    front, rear, lfe = (np.zeros((6, tone.size), np.float32) for _ in range(3))
    front[0], rear[4], lfe[3] = tone, tone, tone
    diff = measure_loudness(Audio(rear, 48000)) - measure_loudness(Audio(front, 48000))
    assert diff == pytest.approx(10 * math.log10(1.41), abs=0.05)  # surrounds +1.5 dB
    assert measure_loudness(Audio(lfe, 48000)) == -math.inf  # LFE not measured


@pytest.mark.parametrize("target", [EBU_R128, NETFLIX_DIALOG])
def test_normalise_grid_dialogue(target: float) -> None:
    out = normalise(load_audio(gen.GRID[1]), target)
    assert measure_loudness(out) == pytest.approx(target, abs=0.5)
    assert true_peak(out) <= -1.0 + 1e-6


@pytest.mark.parametrize(("rate", "channels"), [(8000, 1), (44100, 2), (96000, 2), (48000, 6)])
def test_normalise_rates_and_layouts(rate: int, channels: int) -> None:
    audio = _speechlike(3.0, rate, channels)
    for target in (EBU_R128, NETFLIX_DIALOG):
        out = normalise(audio, target)
        assert measure_loudness(out) == pytest.approx(target, abs=0.5)
        assert true_peak(out) <= -1.0 + 1e-6


def test_normalise_limits_true_peak_when_loudness_demands_it() -> None:
    grid = load_audio(gen.GRID[0])
    out = normalise(grid, -10.0)  # +6 dB over the source: peaks must be limited
    assert true_peak(grid) > -1.0
    assert measure_loudness(out) == pytest.approx(-10.0, abs=0.5)
    assert true_peak(out) <= -1.0 + 1e-6


def test_normalise_refuses_silence_and_short_audio() -> None:
    silence = Audio(np.zeros((2, 48000), np.float32), 48000)
    assert measure_loudness(silence) == -math.inf
    with pytest.raises(ValueError, match="silent"):
        normalise(silence)
    with pytest.raises(ValueError, match=r">= 0\.4 s"):
        measure_loudness(Audio(np.ones((1, 1000), np.float32), 48000))
